//! Your own tests for task 4.
//!
//! Tests here run against your `src/exercise.rs` like any `cargo test` test.
//! The grader also runs them against each buggy checker in `src/mutants/`:
//! once every grading check passes, a test of yours that passes on your
//! checker and fails on at least one buggy one earns the task's third point.
//!
//! The example below tests a broker, not your checker, so it passes on every
//! version and earns nothing. It shows how to drive a broker from a test.
//! Your own tests should call `check_isolation` on brokers from
//! `task04_isolation::brokers` and assert on what it returns.
//!
//! `cargo test -p task04_isolation --test mine` runs this file alone, also
//! while grading checks still fail.

use task04_isolation::PubSub;
use task04_isolation::brokers::CorrectBroker;

#[tokio::test]
async fn correct_broker_delivers_then_ends() {
    // One subscriber, one message.
    let broker = CorrectBroker::new();
    let mut receiver = broker.subscribe("news");
    broker.publish("news", "hello".to_owned()).await;

    // After close the receiver yields what it is owed, then ends.
    broker.close();
    assert_eq!(receiver.recv().await.as_deref(), Some("hello"));
    assert_eq!(receiver.recv().await, None);
}

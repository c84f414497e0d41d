//! Your own tests for task 2.
//!
//! Tests here run against your `src/exercise.rs` like any `cargo test` test.
//! The grader also runs them against each buggy version in `src/mutants/`:
//! once every grading check passes, a test of yours that passes on your
//! solution and fails on at least one buggy version earns the task's third
//! point. The example below passes on every version, so it earns nothing yet;
//! use it as a pattern for tests about unsubscribing.
//!
//! `cargo test -p task02_unsubscribe --test mine` runs this file alone, also
//! while grading checks still fail.

use task02_unsubscribe::Broker;

#[tokio::test]
async fn subscriber_receives_published_message() {
    // Subscribe. Calling unsubscribe() on the handle would end the subscription.
    let broker = Broker::new();
    let (mut receiver, _handle) = broker.subscribe("greetings");

    // Publish, then read the message back.
    broker.publish("greetings", "hello".to_owned());
    assert_eq!(receiver.recv().await.as_deref(), Some("hello"));
}

//! Your own tests for task 3.
//!
//! Tests here run against your `src/exercise.rs` like any `cargo test` test.
//! The grader also runs them against each buggy version in `src/mutants/`:
//! once every grading check passes, a test of yours that passes on your
//! solution and fails on at least one buggy version earns the task's third
//! point. The example below passes on every version, so it earns nothing yet;
//! use it as a pattern for tests about policies.
//!
//! A test that waits for a publisher should run on paused time,
//! `#[tokio::test(start_paused = true)]`, and wrap each wait in
//! `tokio::time::timeout`. Then a publisher that is never released makes the
//! test fail at once instead of hanging.
//!
//! `cargo test -p task03_policies --test mine` runs this file alone, also
//! while grading checks still fail.

use task03_policies::{Broker, SubscribeOptions};

#[tokio::test]
async fn subscriber_receives_published_message() {
    // The default options: the Drop policy and a buffer of 16.
    let broker = Broker::new();
    let (mut receiver, _) = broker.subscribe("greetings", SubscribeOptions::default());

    // Publish is async, because a Block subscriber can make it wait.
    broker.publish("greetings", "hello".to_owned()).await;
    assert_eq!(receiver.recv().await.as_deref(), Some("hello"));
}

//! Your own tests for task 5.
//!
//! Tests here run against your `src/exercise.rs` like any `cargo test` test.
//! The grader also runs them against each buggy version in `src/mutants/`:
//! once every grading check passes, a test of yours that passes on your
//! solution and fails on at least one buggy version earns the task's third
//! point. The example below passes on every version, so it earns nothing yet;
//! use it as a pattern for tests about cancellation.
//!
//! `#[tokio::test(start_paused = true)]` runs a test on paused time, so a
//! `tokio::time::timeout` around a wait fails at once, in virtual time,
//! instead of hanging when a receiver never ends.
//!
//! `cargo test -p task05_cancel --test mine` runs this file alone, also
//! while grading checks still fail.

use std::time::Duration;

use task05_cancel::{Broker, SubscribeOptions};
use tokio_util::sync::CancellationToken;

#[tokio::test(start_paused = true)]
async fn subscriber_receives_published_message() {
    // Subscribe with a token that stays uncancelled.
    let broker = Broker::new();
    let token = CancellationToken::new();
    let mut receiver = broker.subscribe(token.clone(), "greetings", SubscribeOptions::default());

    // Publish, then read the message back within a second of virtual time.
    broker.publish("greetings", "hello".to_owned());
    let received = tokio::time::timeout(Duration::from_secs(1), receiver.recv()).await;
    assert_eq!(received, Ok(Some("hello".to_owned())));
}

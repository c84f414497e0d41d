//! Your own tests for task 6.
//!
//! Tests here run against your `src/exercise.rs` like any `cargo test` test.
//! The grader also runs them against each buggy version in `src/mutants/`:
//! once every grading check passes, a test of yours that passes on your
//! solution and fails on at least one buggy version earns the task's third
//! point. The example below passes on every version, so it earns nothing yet;
//! use it as a pattern.
//!
//! `#[tokio::test(start_paused = true)]` runs a test on paused time, so a
//! `tokio::time::timeout` around a wait fails at once, in virtual time,
//! instead of hanging when a message never comes.
//!
//! `cargo test -p task06_generic --test mine` runs this file alone, also
//! while grading checks still fail.

use std::time::Duration;

use task06_generic::{Broker, SubscribeOptions};
use tokio_util::sync::CancellationToken;

/// A typed message: the broker carries it as it is, with no conversion.
#[derive(Clone, Debug, PartialEq)]
struct Reading {
    sensor: u32,
    celsius: f32,
}

#[tokio::test(start_paused = true)]
async fn subscriber_receives_typed_message() {
    // A broker of `Reading` values and one subscriber.
    let broker: Broker<Reading> = Broker::new();
    let token = CancellationToken::new();
    let mut receiver = broker.subscribe(token.clone(), "kitchen", SubscribeOptions::default());

    // Publish a reading, then read the same reading back within a second
    // of virtual time.
    let reading = Reading {
        sensor: 4,
        celsius: 21.5,
    };
    broker.publish("kitchen", reading.clone());
    let received = tokio::time::timeout(Duration::from_secs(1), receiver.recv()).await;
    assert_eq!(received, Ok(Some(reading)));
}

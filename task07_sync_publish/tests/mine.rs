//! Your own tests for task 7.
//!
//! Tests here run against your `src/exercise.rs` like any `cargo test` test.
//! The grader also runs them against each buggy version in `src/mutants/`:
//! once every grading check passes, a test of yours that passes on your
//! solution and fails on at least one buggy version earns the task's third
//! point. The example below passes on every version, so it earns nothing yet;
//! use it as a pattern for tests about waiting, deadlines and stalls.
//!
//! `#[tokio::test(start_paused = true)]` runs a test on paused time: sleeps
//! and timeouts finish at once in virtual time, and `tokio::time::Instant`
//! measures that virtual time exactly, so a test can assert that a call took
//! 50 ms and not 100.
//!
//! `cargo test -p task07_sync_publish --test mine` runs this file alone, also
//! while grading checks still fail.

use std::time::Duration;

use task07_sync_publish::Broker;
use tokio_util::sync::CancellationToken;

#[tokio::test(start_paused = true)]
async fn publish_sync_reaches_subscriber_with_room() {
    // One subscriber with room in its buffer of 4.
    let broker = Broker::new();
    let token = CancellationToken::new();
    let mut subscription = broker.subscribe(token.clone(), "audit", 4);

    // The call returns Ok, and the message is already in the buffer.
    let result = broker
        .publish_sync("audit", "login".to_owned(), Duration::from_secs(1))
        .await;
    assert_eq!(result, Ok(()));
    assert_eq!(subscription.try_recv().as_deref(), Ok("login"));
}

//! Your own tests for task 10.
//!
//! Tests here run against your `src/exercise.rs` like any `cargo test` test.
//! The grader also runs them against each buggy version in `src/mutants/`:
//! once every grading check passes, a test of yours that passes on your
//! solution and fails on at least one buggy version earns the task's third
//! point. The example below passes on every version, so it earns nothing yet;
//! use it as a pattern for tests about replay, live delivery and lag.
//!
//! `#[tokio::test(start_paused = true)]` runs a test on paused time, so a
//! `tokio::time::timeout` around a `recv()` fails at once, in virtual time,
//! instead of hanging when no item arrives.
//!
//! `cargo test -p task10_replay_log --test mine` runs this file alone, also
//! while grading checks still fail.

use std::time::Duration;

use task10_replay_log::Log;
use tokio_util::sync::CancellationToken;

#[tokio::test(start_paused = true)]
async fn replay_starts_at_requested_offset() {
    // Three appends get the offsets 0, 1 and 2.
    let log = Log::new(8);
    assert_eq!(log.append("a"), 0);
    assert_eq!(log.append("b"), 1);
    assert_eq!(log.append("c"), 2);

    // A subscription from offset 1 replays "b" first, within a second of
    // virtual time.
    let mut subscription = log.subscribe(CancellationToken::new(), 1).unwrap();
    let first = tokio::time::timeout(Duration::from_secs(1), subscription.recv()).await;
    assert_eq!(first, Ok(Some(Ok((1, "b")))));
}

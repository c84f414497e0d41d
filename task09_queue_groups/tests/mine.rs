//! Your own tests for task 9.
//!
//! Tests here run against your `src/exercise.rs` like any `cargo test` test.
//! The grader also runs them against each buggy version in `src/mutants/`:
//! once every grading check passes, a test of yours that passes on your
//! solution and fails on at least one buggy version earns the task's third
//! point. The example below passes on every version, so it earns nothing yet;
//! use it as a pattern for tests about queue groups.
//!
//! `#[tokio::test(start_paused = true)]` runs a test on paused time, so a
//! `tokio::time::timeout` around a wait fails at once, in virtual time,
//! instead of hanging when a message never arrives.
//!
//! `cargo test -p task09_queue_groups --test mine` runs this file alone, also
//! while grading checks still fail.

use std::time::Duration;

use task09_queue_groups::{Broker, SubscribeOptions};
use tokio_util::sync::CancellationToken;

#[tokio::test(start_paused = true)]
async fn member_receives_published_message() {
    // One member forms the group "workers" of the topic "jobs".
    let broker = Broker::new();
    let token = CancellationToken::new();
    let mut worker = broker.subscribe_queue(
        token.clone(),
        "jobs",
        "workers",
        SubscribeOptions::default(),
    );

    // Publish, then read the job back within a second of virtual time.
    broker.publish("jobs", "build".to_owned());
    let received = tokio::time::timeout(Duration::from_secs(1), worker.recv()).await;
    assert_eq!(received, Ok(Some("build".to_owned())));
}

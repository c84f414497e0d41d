//! The reference's own tests, written the way a learner could write them.
//!
//! Each one passes on the reference and fails on at least one buggy version
//! in `src/mutants/`. When the grader grades the reference, it runs them
//! together with `tests/mine.rs`. Cargo builds this file only with
//! `--features reference`, because Cargo.toml lists that feature in its
//! `required-features`.
//!
//! Every test runs on paused time, so each `timeout` fails at once in
//! virtual time instead of hanging.

#![cfg(feature = "reference")]

use std::collections::HashSet;
use std::time::Duration;

use task09_queue_groups::{Broker, QueueReceiver, SubscribeOptions};
use tokio::sync::mpsc::error::TryRecvError;
use tokio_util::sync::CancellationToken;

/// Virtual time to wait for a message or the end of a receiver.
const WAIT: Duration = Duration::from_secs(1);

/// Takes every message queued for `member` right now.
fn take_queued(member: &mut QueueReceiver<String>) -> Vec<String> {
    let mut taken = Vec::new();
    while let Ok(message) = member.try_recv() {
        taken.push(message);
    }
    taken
}

#[tokio::test(start_paused = true)]
async fn each_job_goes_to_one_worker() {
    let broker = Broker::new();
    let token = CancellationToken::new();
    let mut first = broker.subscribe_queue(token.clone(), "jobs", "workers", Default::default());
    let mut second = broker.subscribe_queue(token.clone(), "jobs", "workers", Default::default());

    for index in 0..4 {
        broker.publish("jobs", format!("job-{index}"));
    }

    // Between them, the workers got each job exactly once.
    let mut all = take_queued(&mut first);
    all.extend(take_queued(&mut second));
    let distinct: HashSet<&String> = all.iter().collect();
    assert_eq!(all.len(), 4, "got {all:?}");
    assert_eq!(distinct.len(), 4, "got {all:?}");
}

#[tokio::test(start_paused = true)]
async fn leaving_worker_leaves_jobs_to_others() {
    let broker = Broker::new();
    let leaving_token = CancellationToken::new();
    let staying_token = CancellationToken::new();
    let options = SubscribeOptions::default;
    let mut leaving = broker.subscribe_queue(leaving_token.clone(), "jobs", "workers", options());
    let mut staying = broker.subscribe_queue(staying_token, "jobs", "workers", options());
    for index in 0..4 {
        broker.publish("jobs", format!("job-{index}"));
    }

    leaving_token.cancel();

    // The worker that left takes nothing; the other one gets every job.
    assert_eq!(tokio::time::timeout(WAIT, leaving.recv()).await, Ok(None));
    assert_eq!(
        take_queued(&mut staying),
        ["job-0", "job-1", "job-2", "job-3"]
    );
}

#[tokio::test(start_paused = true)]
async fn last_leave_removes_group_and_counts_queued() {
    let broker = Broker::new();
    let token = CancellationToken::new();
    let mut worker = broker.subscribe_queue(token.clone(), "jobs", "workers", Default::default());
    broker.publish("jobs", "never done".to_owned());

    token.cancel();
    assert_eq!(tokio::time::timeout(WAIT, worker.recv()).await, Ok(None));
    // Let the broker process the leave.
    tokio::time::sleep(Duration::from_millis(1)).await;

    assert_eq!(broker.group_count("jobs"), 0);
    assert_eq!(broker.topic_count(), 0);
    assert_eq!(broker.dropped(), 1, "the queued job must count as dropped");
}

#[tokio::test(start_paused = true)]
async fn group_and_subscriber_both_receive() {
    let broker = Broker::new();
    let token = CancellationToken::new();
    let mut audit = broker.subscribe(token.clone(), "orders", SubscribeOptions::default());
    let mut billing = broker.subscribe_queue(
        token.clone(),
        "orders",
        "billing",
        SubscribeOptions::default(),
    );

    let routed = broker.publish("orders", "order-1".to_owned());

    assert_eq!(routed, 2);
    assert_eq!(audit.try_recv().as_deref(), Ok("order-1"));
    assert_eq!(billing.try_recv().as_deref(), Ok("order-1"));
}

#[tokio::test(start_paused = true)]
async fn publish_after_last_receiver_dropped_is_counted() {
    let broker = Broker::new();
    let worker = broker.subscribe_queue(
        CancellationToken::new(),
        "jobs",
        "workers",
        Default::default(),
    );

    // No await between the drop and the publish.
    drop(worker);
    let routed = broker.publish("jobs", "too late".to_owned());
    tokio::time::sleep(Duration::from_millis(1)).await;

    assert_eq!(broker.dropped(), routed as u64);
    assert_eq!(broker.group_count("jobs"), 0);
}

#[tokio::test(start_paused = true)]
async fn member_that_left_reports_disconnected() {
    let broker = Broker::new();
    let token = CancellationToken::new();
    let mut worker = broker.subscribe_queue(token.clone(), "jobs", "workers", Default::default());
    assert_eq!(worker.try_recv(), Err(TryRecvError::Empty));

    broker.publish("jobs", "queued".to_owned());
    token.cancel();

    assert_eq!(worker.try_recv(), Err(TryRecvError::Disconnected));
}

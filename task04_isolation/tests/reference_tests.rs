//! The reference's own tests, written the way a learner could write them.
//!
//! Each one passes on the reference checker and fails on at least one buggy
//! checker in `src/mutants/`. When the grader grades the reference, it runs
//! them together with `tests/mine.rs`. Cargo builds this file only with
//! `--features reference`, because Cargo.toml lists that feature in the
//! target's `required-features`.
//!
//! The tests run on tokio's paused clock, so the slow broker's latency costs
//! no real time.

use std::sync::Arc;

use task04_isolation::brokers::{
    CappedFanOutBroker, CorrectBroker, DuplicatingBroker, FirstInBucketBroker, LossyCloseBroker,
    ReorderingBroker, SharedBucketBroker, SlowBroker,
};
use task04_isolation::{IsolationError, TOTAL_DELIVERED, check_isolation};

#[tokio::test(start_paused = true)]
async fn correct_broker_passes_with_every_delivery() {
    let report = check_isolation(Arc::new(CorrectBroker::new())).await;
    assert_eq!(
        report.expect("the correct broker passes").delivered,
        TOTAL_DELIVERED
    );
}

#[tokio::test(start_paused = true)]
async fn slow_broker_passes() {
    // Its deliveries come long after publish returned; nothing is lost.
    let report = check_isolation(Arc::new(SlowBroker::new())).await;
    assert_eq!(
        report.expect("the slow broker passes").delivered,
        TOTAL_DELIVERED
    );
}

#[tokio::test(start_paused = true)]
async fn shared_buckets_leak_foreign_messages() {
    let verdict = check_isolation(Arc::new(SharedBucketBroker::new())).await;
    assert!(
        matches!(verdict, Err(IsolationError::Foreign { .. })),
        "{verdict:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn misrouting_with_right_total_is_caught() {
    // The grand total is exact, but one topic gets another's messages.
    let verdict = check_isolation(Arc::new(FirstInBucketBroker::new())).await;
    assert!(
        matches!(
            verdict,
            Err(IsolationError::Foreign { .. } | IsolationError::Missing { .. })
        ),
        "{verdict:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn lossy_close_is_caught() {
    let verdict = check_isolation(Arc::new(LossyCloseBroker::new())).await;
    assert!(
        matches!(verdict, Err(IsolationError::Missing { .. })),
        "{verdict:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn trailing_duplicate_is_caught() {
    let verdict = check_isolation(Arc::new(DuplicatingBroker::new())).await;
    assert!(
        matches!(verdict, Err(IsolationError::Duplicate { .. })),
        "{verdict:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn reversed_batches_are_caught() {
    let verdict = check_isolation(Arc::new(ReorderingBroker::new())).await;
    assert!(
        matches!(verdict, Err(IsolationError::Reordered { .. })),
        "{verdict:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn starved_late_subscribers_are_caught() {
    let verdict = check_isolation(Arc::new(CappedFanOutBroker::new())).await;
    assert!(
        matches!(verdict, Err(IsolationError::Missing { subscriber, received: 0, .. }) if subscriber >= 64),
        "{verdict:?}"
    );
}

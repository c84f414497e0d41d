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

use std::time::Duration;

use task10_replay_log::{Lagged, Log, SubscribeError, Subscription};
use tokio_util::sync::CancellationToken;

/// Virtual time to wait for an item that should arrive, or to show that
/// none does.
const WAIT: Duration = Duration::from_secs(1);

/// The outcome of one `recv()` within [`WAIT`]: `None` when it timed out.
type Next = Option<Option<Result<(u64, &'static str), Lagged>>>;

async fn next(subscription: &mut Subscription<&'static str>) -> Next {
    tokio::time::timeout(WAIT, subscription.recv()).await.ok()
}

#[tokio::test(start_paused = true)]
async fn append_during_replay_arrives_once() {
    let log = Log::new(8);
    log.append("a");
    log.append("b");
    let mut subscription = log.subscribe(CancellationToken::new(), 0).unwrap();

    // "c" is appended after subscribe, while "a" and "b" wait to be read.
    log.append("c");
    assert_eq!(next(&mut subscription).await, Some(Some(Ok((0, "a")))));
    assert_eq!(next(&mut subscription).await, Some(Some(Ok((1, "b")))));
    assert_eq!(next(&mut subscription).await, Some(Some(Ok((2, "c")))));

    // Nothing else: no gap before "c" and no duplicate after it.
    assert_eq!(next(&mut subscription).await, None);
}

#[tokio::test(start_paused = true)]
async fn live_delivery_follows_replay_without_duplicate() {
    let log = Log::new(8);
    log.append("a");
    let mut subscription = log.subscribe(CancellationToken::new(), 0).unwrap();
    assert_eq!(next(&mut subscription).await, Some(Some(Ok((0, "a")))));

    log.append("b");
    assert_eq!(next(&mut subscription).await, Some(Some(Ok((1, "b")))));
}

#[tokio::test(start_paused = true)]
async fn subscribe_at_head_gets_only_new() {
    let log = Log::new(4);
    log.append("old");

    // The head is a valid start; an offset past it is not.
    let mut subscription = log.subscribe(CancellationToken::new(), 1).unwrap();
    let error = log.subscribe(CancellationToken::new(), 2).unwrap_err();
    assert_eq!(
        error,
        SubscribeError::Future {
            requested: 2,
            head: 1
        }
    );

    log.append("new");
    assert_eq!(next(&mut subscription).await, Some(Some(Ok((1, "new")))));
}

#[test]
fn evicted_start_names_oldest_offset() {
    let log = Log::new(2);
    for message in ["a", "b", "c", "d"] {
        log.append(message);
    }

    let error = log.subscribe(CancellationToken::new(), 0).unwrap_err();
    assert_eq!(
        error,
        SubscribeError::Evicted {
            requested: 0,
            oldest: 2
        }
    );
}

#[tokio::test(start_paused = true)]
async fn lagging_subscriber_gets_lagged_then_continues() {
    let log = Log::new(2);
    let mut subscription = log.subscribe(CancellationToken::new(), 0).unwrap();

    // Four appends to a log of capacity 2 evict offsets 0 and 1 unread.
    for message in ["a", "b", "c", "d"] {
        log.append(message);
    }

    let lagged = Lagged { missed: 0..2 };
    assert_eq!(next(&mut subscription).await, Some(Some(Err(lagged))));
    assert_eq!(next(&mut subscription).await, Some(Some(Ok((2, "c")))));
    assert_eq!(next(&mut subscription).await, Some(Some(Ok((3, "d")))));
}

#[tokio::test(start_paused = true)]
async fn cancel_ends_waiting_subscription() {
    let log: Log<&'static str> = Log::new(4);
    let token = CancellationToken::new();
    let mut subscription = log.subscribe(token.clone(), 0).unwrap();

    // Cancel from another task while recv() waits for an append.
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        token.cancel();
    });
    assert_eq!(next(&mut subscription).await, Some(None));
}

//! The reference's own tests, written the way a learner could write them.
//!
//! Each one passes on the reference and fails on at least one buggy version
//! in `src/mutants/`. When the grader grades the reference, it runs them
//! together with `tests/mine.rs`. Cargo builds this file only with
//! `--features reference`, because Cargo.toml lists that feature in its
//! `required-features`.
//!
//! Every test runs on paused time, so waits cost no real time and
//! `tokio::time::Instant` measures virtual time exactly. A subscriber whose
//! buffer of 1 contains one message has no room until something reads it.

#![cfg(feature = "reference")]

use std::sync::Arc;
use std::time::Duration;

use task07_sync_publish::{Broker, PublishError, Subscription};
use tokio::time::{Instant, sleep, timeout};
use tokio_util::sync::CancellationToken;

const TOPIC: &str = "audit";

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Returns `count` subscribers of `TOPIC` whose buffers of 1 are full.
fn full_subscribers(
    broker: &Broker<&'static str>,
    count: usize,
) -> Vec<Subscription<&'static str>> {
    let subscriptions = (0..count)
        .map(|_| broker.subscribe(CancellationToken::new(), TOPIC, 1))
        .collect();
    broker.publish(TOPIC, "old");
    subscriptions
}

/// Reads one message at `at` after `start` to make room, then returns when
/// the next message arrived, counted from `start`.
fn make_room_at(
    mut subscription: Subscription<&'static str>,
    start: Instant,
    at: Duration,
) -> tokio::task::JoinHandle<Option<Duration>> {
    tokio::spawn(async move {
        tokio::time::sleep_until(start + at).await;
        assert_eq!(subscription.try_recv(), Ok("old"));
        let next = timeout(Duration::from_secs(1), subscription.recv()).await;
        next.ok().flatten().map(|_| start.elapsed())
    })
}

#[tokio::test(start_paused = true)]
async fn slow_subscriber_does_not_hold_back_fast_one() {
    let broker = Broker::new();
    let mut subscriptions = full_subscribers(&broker, 2).into_iter();
    let slow = subscriptions.next().unwrap();
    let fast = subscriptions.next().unwrap();
    let start = Instant::now();
    let slow_reader = make_room_at(slow, start, ms(50));
    let fast_reader = make_room_at(fast, start, ms(10));

    let result = broker
        .publish_sync(TOPIC, "new", Duration::from_secs(1))
        .await;

    assert_eq!(result, Ok(()));
    assert_eq!(start.elapsed(), ms(50));
    assert_eq!(slow_reader.await.unwrap(), Some(ms(50)));
    // The fast one has the message as soon as it has room.
    assert_eq!(fast_reader.await.unwrap(), Some(ms(10)));
}

#[tokio::test(start_paused = true)]
async fn timeout_counts_once_for_all_subscribers() {
    let broker = Broker::new();
    let _stalled = full_subscribers(&broker, 3);
    let start = Instant::now();

    let result = broker.publish_sync(TOPIC, "new", ms(50)).await;

    assert!(result.is_err());
    assert_eq!(start.elapsed(), ms(50), "not 3 x 50 ms");
}

#[tokio::test(start_paused = true)]
async fn deadline_does_not_restart_on_progress() {
    let broker = Broker::new();
    let mut subscriptions = full_subscribers(&broker, 2).into_iter();
    let early = subscriptions.next().unwrap();
    let late = subscriptions.next().unwrap();
    let (early_id, late_id) = (early.id(), late.id());
    let start = Instant::now();
    let early_reader = make_room_at(early, start, ms(30));
    let late_reader = make_room_at(late, start, ms(60));

    let result = broker.publish_sync(TOPIC, "new", ms(50)).await;

    assert_eq!(start.elapsed(), ms(50));
    let expected = PublishError::Timeout {
        topic: TOPIC.to_owned(),
        timeout: ms(50),
        delivered: vec![early_id],
        stalled: vec![late_id],
    };
    assert_eq!(result, Err(expected));
    assert_eq!(early_reader.await.unwrap(), Some(ms(30)));
    // The late one was reported stalled, so the message never reaches it.
    assert_eq!(late_reader.await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn timeout_names_stalled_and_delivered() {
    let broker = Broker::new();
    let mut ready = broker.subscribe(CancellationToken::new(), TOPIC, 1);
    let stalled = broker.subscribe(CancellationToken::new(), TOPIC, 1);
    broker.publish(TOPIC, "old");
    assert_eq!(ready.try_recv(), Ok("old"));

    let result = broker.publish_sync(TOPIC, "new", ms(50)).await;

    let expected = PublishError::Timeout {
        topic: TOPIC.to_owned(),
        timeout: ms(50),
        delivered: vec![ready.id()],
        stalled: vec![stalled.id()],
    };
    assert_eq!(result, Err(expected));
    assert_eq!(ready.try_recv(), Ok("new"));
}

#[tokio::test(start_paused = true)]
async fn timeout_leaves_no_task_and_no_late_delivery() {
    let before = alive_tasks();
    let broker = Broker::new();
    let mut stalled = full_subscribers(&broker, 1).pop().unwrap();

    let result = broker.publish_sync(TOPIC, "new", ms(50)).await;
    assert!(result.is_err());
    assert_eq!(alive_tasks(), before, "a delivery task outlived the call");

    // Making room later does not bring the message.
    assert_eq!(stalled.try_recv(), Ok("old"));
    sleep(Duration::from_secs(1)).await;
    assert!(stalled.try_recv().is_err());
}

#[tokio::test(start_paused = true)]
async fn subscriber_that_leaves_is_not_named() {
    let broker = Broker::new();
    let mut subscriptions = full_subscribers(&broker, 3).into_iter();
    let mut ready = subscriptions.next().unwrap();
    let leaving = subscriptions.next().unwrap();
    let stalled = subscriptions.next().unwrap();
    assert_eq!(ready.try_recv(), Ok("old"));
    let dropper = tokio::spawn(async move {
        sleep(ms(20)).await;
        drop(leaving);
    });

    let result = broker.publish_sync(TOPIC, "new", ms(50)).await;

    let expected = PublishError::Timeout {
        topic: TOPIC.to_owned(),
        timeout: ms(50),
        delivered: vec![ready.id()],
        stalled: vec![stalled.id()],
    };
    assert_eq!(result, Err(expected));
    dropper.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn cancel_while_waiting_is_not_a_stall() {
    let broker = Broker::new();
    let token = CancellationToken::new();
    let _stuck = broker.subscribe(token.clone(), TOPIC, 1);
    broker.publish(TOPIC, "old");
    let start = Instant::now();
    let canceller = tokio::spawn(async move {
        sleep(ms(20)).await;
        token.cancel();
    });

    let result = broker.publish_sync(TOPIC, "new", ms(100)).await;

    assert_eq!(result, Ok(()));
    assert_eq!(start.elapsed(), ms(20));
    canceller.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn publish_sync_after_close_is_an_error() {
    let broker: Broker<&str> = Broker::new();
    broker.close();

    let result = broker.publish_sync(TOPIC, "new", ms(50)).await;

    assert_eq!(result, Err(PublishError::Closed));
}

#[tokio::test(start_paused = true)]
async fn close_stops_a_waiting_publish_sync() {
    let broker = Arc::new(Broker::new());
    let _stuck = full_subscribers(&broker, 1);
    let start = Instant::now();
    let closer = {
        let broker = Arc::clone(&broker);
        tokio::spawn(async move {
            sleep(ms(20)).await;
            broker.close();
        })
    };

    let result = broker
        .publish_sync(TOPIC, "new", Duration::from_secs(10))
        .await;

    assert_eq!(result, Err(PublishError::Closed));
    assert_eq!(start.elapsed(), ms(20));
    closer.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn cancelled_subscriber_gets_nothing_from_publish_sync() {
    let broker = Broker::new();
    let token = CancellationToken::new();
    let mut gone = broker.subscribe(token.clone(), TOPIC, 4);
    token.cancel();

    assert_eq!(broker.publish_sync(TOPIC, "late", ms(50)).await, Ok(()));
    assert_eq!(gone.recv().await, None);
}

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

use std::sync::{Arc, Mutex};
use std::time::Duration;

use task05_cancel::{Broker, SubscribeOptions};
use tokio::sync::mpsc::error::TryRecvError;
use tokio_util::sync::CancellationToken;

/// Virtual time to wait for a receiver that should end or receive.
const WAIT: Duration = Duration::from_secs(1);

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

#[tokio::test(start_paused = true)]
async fn cancelled_token_registers_nothing() {
    let broker = Broker::new();
    let token = CancellationToken::new();
    token.cancel();

    let mut receiver = broker.subscribe(token, "t", SubscribeOptions::default());

    // Nothing was registered, even for a moment.
    assert_eq!(broker.subscriber_count("t"), 0);
    assert_eq!(receiver.try_recv(), Err(TryRecvError::Disconnected));
}

#[tokio::test(start_paused = true)]
async fn cancel_removes_subscriber_and_topic() {
    let broker = Broker::new();
    let token = CancellationToken::new();
    let mut receiver = broker.subscribe(token.clone(), "t", SubscribeOptions::default());

    token.cancel();
    let end = tokio::time::timeout(WAIT, receiver.recv()).await;
    assert_eq!(end, Ok(None), "the receiver must end after cancel");

    assert_eq!(broker.subscriber_count("t"), 0);
    assert_eq!(broker.topic_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn parent_cancel_ends_child_subscriptions() {
    let broker = Broker::new();
    let parent = CancellationToken::new();
    let mut first = broker.subscribe(parent.child_token(), "a", SubscribeOptions::default());
    let mut second = broker.subscribe(parent.child_token(), "b", SubscribeOptions::default());

    parent.cancel();

    assert_eq!(tokio::time::timeout(WAIT, first.recv()).await, Ok(None));
    assert_eq!(tokio::time::timeout(WAIT, second.recv()).await, Ok(None));
}

#[tokio::test(start_paused = true)]
async fn publish_after_cancel_is_not_delivered() {
    let broker = Broker::new();
    let token = CancellationToken::new();
    let mut receiver = broker.subscribe(token.clone(), "t", SubscribeOptions::default());

    // No await between the cancel and the publish.
    token.cancel();
    broker.publish("t", "too late".to_owned());

    let first = tokio::time::timeout(WAIT, receiver.recv()).await;
    assert_eq!(first, Ok(None));
}

#[tokio::test(start_paused = true)]
async fn buffered_messages_arrive_before_end() {
    let broker = Broker::new();
    let token = CancellationToken::new();
    let mut receiver = broker.subscribe(token.clone(), "t", SubscribeOptions::default());
    broker.publish("t", "one".to_owned());
    broker.publish("t", "two".to_owned());

    token.cancel();

    let mut received = Vec::new();
    while let Ok(Some(message)) = tokio::time::timeout(WAIT, receiver.recv()).await {
        received.push(message);
    }
    assert_eq!(received, ["one", "two"]);
}

#[tokio::test(start_paused = true)]
async fn full_buffer_hands_message_to_on_drop() {
    let dropped = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&dropped);
    let options = SubscribeOptions::default()
        .with_buffer(1)
        .with_on_drop(move |message| record.lock().unwrap().push(message));
    let broker = Broker::new();
    let _receiver = broker.subscribe(CancellationToken::new(), "t", options);

    broker.publish("t", "kept".to_owned());
    broker.publish("t", "dropped".to_owned());

    assert_eq!(*dropped.lock().unwrap(), ["dropped"]);
}

#[tokio::test(start_paused = true)]
async fn close_returns_with_no_task_left() {
    let before = alive_tasks();
    let broker = Broker::new();
    let token = CancellationToken::new();
    let _first = broker.subscribe(token.clone(), "a", SubscribeOptions::default());
    let _second = broker.subscribe(token.child_token(), "b", SubscribeOptions::default());

    let closed = tokio::time::timeout(WAIT, broker.close()).await;
    assert!(closed.is_ok(), "close() must return");
    assert_eq!(alive_tasks(), before, "close() must leave no task behind");
}

#[tokio::test(start_paused = true)]
async fn close_leaves_caller_token_alone() {
    let broker = Broker::new();
    let token = CancellationToken::new();
    let mut receiver = broker.subscribe(token.clone(), "t", SubscribeOptions::default());

    let closed = tokio::time::timeout(WAIT, broker.close()).await;
    assert!(closed.is_ok(), "close() must return");

    assert_eq!(tokio::time::timeout(WAIT, receiver.recv()).await, Ok(None));
    assert!(
        !token.is_cancelled(),
        "close() must not cancel the caller's token"
    );
}

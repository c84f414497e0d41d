//! The reference's own tests, written the way a learner could write them.
//!
//! Each one passes on the reference and fails on at least one buggy version
//! in `src/mutants/`. When the grader grades the reference, it runs them
//! together with `tests/mine.rs`. Cargo builds this file only with
//! `--features reference`, because Cargo.toml lists that feature in its
//! `required-features`.
//!
//! Clones are counted with a message type whose `Clone` increments a shared
//! counter. Heap allocations are counted with testkit's counting allocator,
//! which counts per thread, so tests running in parallel do not disturb each
//! other's counts.

#![cfg(feature = "reference")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use task06_generic::{Broker, SubscribeOptions};
use testkit::alloc::{CountingAllocator, count_allocations};
use tokio_util::sync::CancellationToken;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Virtual time to wait for a receiver that should end or receive.
const WAIT: Duration = Duration::from_secs(1);

/// A message whose clones all increment one shared counter.
#[derive(Debug)]
struct Counted {
    id: u32,
    clones: Arc<AtomicUsize>,
}

impl Clone for Counted {
    fn clone(&self) -> Counted {
        self.clones.fetch_add(1, Ordering::SeqCst);
        Counted {
            id: self.id,
            clones: Arc::clone(&self.clones),
        }
    }
}

fn counted(id: u32, clones: &Arc<AtomicUsize>) -> Counted {
    Counted {
        id,
        clones: Arc::clone(clones),
    }
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

#[tokio::test(start_paused = true)]
async fn publish_to_nobody_clones_nothing() {
    let clones = Arc::new(AtomicUsize::new(0));
    let broker: Broker<Counted> = Broker::new();
    let _other = broker.subscribe(
        CancellationToken::new(),
        "other",
        SubscribeOptions::default(),
    );

    broker.publish("t", counted(0, &clones));

    assert_eq!(clones.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn publish_clones_at_most_once_per_subscriber() {
    let clones = Arc::new(AtomicUsize::new(0));
    let broker: Broker<Counted> = Broker::new();
    let token = CancellationToken::new();
    let mut receivers: Vec<_> = (0..3)
        .map(|_| broker.subscribe(token.clone(), "t", SubscribeOptions::default()))
        .collect();

    broker.publish("t", counted(7, &clones));

    assert!(clones.load(Ordering::SeqCst) <= 3);
    for receiver in &mut receivers {
        let received = tokio::time::timeout(WAIT, receiver.recv()).await;
        assert_eq!(received.ok().flatten().map(|message| message.id), Some(7));
    }
}

#[tokio::test(start_paused = true)]
async fn cancelled_subscriber_costs_no_clone() {
    let clones = Arc::new(AtomicUsize::new(0));
    let broker: Broker<Counted> = Broker::new();
    let token = CancellationToken::new();
    let _receiver = broker.subscribe(token.clone(), "t", SubscribeOptions::default());

    // No await between the cancel and the publish.
    token.cancel();
    broker.publish("t", counted(0, &clones));

    assert_eq!(clones.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn full_subscriber_costs_one_clone() {
    let clones = Arc::new(AtomicUsize::new(0));
    let broker: Broker<Counted> = Broker::new();
    let options = SubscribeOptions::default()
        .with_buffer(1)
        .with_on_drop(|_missed: Counted| {});
    let _receiver = broker.subscribe(CancellationToken::new(), "t", options);
    broker.publish("t", counted(0, &clones));

    // The buffer is full: the one copy goes to on_drop.
    let before = clones.load(Ordering::SeqCst);
    broker.publish("t", counted(1, &clones));

    assert!(clones.load(Ordering::SeqCst) - before <= 1);
}

#[tokio::test(start_paused = true)]
async fn on_drop_gets_dropped_message() {
    let dropped = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&dropped);
    let options = SubscribeOptions::default()
        .with_buffer(1)
        .with_on_drop(move |id: u32| record.lock().unwrap().push(id));
    let broker: Broker<u32> = Broker::new();
    let _receiver = broker.subscribe(CancellationToken::new(), "t", options);

    broker.publish("t", 1);
    broker.publish("t", 2);
    broker.publish("t", 3);

    assert_eq!(*dropped.lock().unwrap(), [2, 3]);
}

#[tokio::test(start_paused = true)]
async fn publish_to_nobody_allocates_nothing() {
    let broker: Broker<u64> = Broker::new();
    let _other = broker.subscribe(
        CancellationToken::new(),
        "other",
        SubscribeOptions::default(),
    );
    broker.publish("warm-up", 0);

    let allocations = count_allocations(|| broker.publish("nobody", 1));

    assert_eq!(allocations, 0);
}

#[tokio::test(start_paused = true)]
async fn cancelled_topic_publish_allocates_nothing() {
    let broker: Broker<u64> = Broker::new();
    let token = CancellationToken::new();
    let _first = broker.subscribe(token.child_token(), "t", SubscribeOptions::default());
    let _second = broker.subscribe(token.child_token(), "t", SubscribeOptions::default());
    broker.publish("warm-up", 0);

    // No await between the cancel and the publish.
    token.cancel();
    let allocations = count_allocations(|| broker.publish("t", 1));

    assert_eq!(allocations, 0);
}

#[tokio::test(start_paused = true)]
async fn cancel_removes_subscriber_and_topic() {
    let broker: Broker<u64> = Broker::new();
    let token = CancellationToken::new();
    let mut receiver = broker.subscribe(token.clone(), "t", SubscribeOptions::default());

    token.cancel();
    let end = tokio::time::timeout(WAIT, receiver.recv()).await;
    assert_eq!(end, Ok(None), "the receiver must end after cancel");

    assert_eq!(broker.subscriber_count("t"), 0);
    assert_eq!(broker.topic_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn close_returns_with_no_task_left() {
    let before = alive_tasks();
    let broker: Broker<u64> = Broker::new();
    let token = CancellationToken::new();
    let _first = broker.subscribe(token.clone(), "a", SubscribeOptions::default());
    let _second = broker.subscribe(token.child_token(), "b", SubscribeOptions::default());

    let closed = tokio::time::timeout(WAIT, broker.close()).await;
    assert!(closed.is_ok(), "close() must return");
    assert_eq!(alive_tasks(), before, "close() must leave no task behind");
    assert!(
        !token.is_cancelled(),
        "close() must not cancel the caller's token"
    );
}

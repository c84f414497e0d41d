//! The reference's own tests, written the way a learner could write them.
//!
//! Each one passes on the reference and fails on at least one buggy version
//! in `src/mutants/`. When the grader grades the reference, it runs them
//! together with `tests/mine.rs`. Cargo builds this file only with
//! `--features reference`, which its `[[test]]` entry in Cargo.toml requires.

use std::time::Duration;

use task02_unsubscribe::Broker;
use testkit::alloc::{CountingAllocator, count_allocations};
use tokio::sync::mpsc::error::TryRecvError;

// Counts allocations for `short_lived_topics_reach_steady_allocations`.
#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[test]
fn no_message_after_unsubscribe() {
    let broker = Broker::new();
    let (mut receiver, handle) = broker.subscribe("t");

    handle.unsubscribe();
    broker.publish("t", "late".to_owned());

    // Nothing arrives: the receiver has ended.
    assert_eq!(receiver.try_recv(), Err(TryRecvError::Disconnected));
    assert_eq!(broker.subscriber_count("t"), 0);
}

#[tokio::test(start_paused = true)]
async fn receiver_ends_after_buffered_messages() {
    let broker = Broker::new();
    let (mut receiver, handle) = broker.subscribe("t");
    broker.publish("t", "kept".to_owned());
    handle.unsubscribe();

    // The buffered message comes first, then the end. The timeout turns a
    // receiver that never ends into a failure instead of a hang.
    let limit = Duration::from_secs(1);
    let first = tokio::time::timeout(limit, receiver.recv()).await;
    assert_eq!(first, Ok(Some("kept".to_owned())));
    let second = tokio::time::timeout(limit, receiver.recv()).await;
    assert_eq!(second, Ok(None), "the receiver must end after unsubscribe");
}

#[test]
fn removing_first_two_keeps_third() {
    let broker = Broker::new();
    let (_a, a_handle) = broker.subscribe("t");
    let (_b, b_handle) = broker.subscribe("t");
    let (mut c, _c_handle) = broker.subscribe("t");

    a_handle.unsubscribe();
    b_handle.unsubscribe();
    broker.publish("t", "for c".to_owned());

    assert_eq!(c.try_recv().as_deref(), Ok("for c"));
}

#[test]
fn leaving_middle_then_last_keeps_others() {
    let broker = Broker::new();
    let (mut a, _a_handle) = broker.subscribe("t");
    let (_b, b_handle) = broker.subscribe("t");
    let (mut c, _c_handle) = broker.subscribe("t");
    let (mut d, d_handle) = broker.subscribe("t");

    b_handle.unsubscribe();
    d_handle.unsubscribe();
    broker.publish("t", "hi".to_owned());

    assert_eq!(a.try_recv().as_deref(), Ok("hi"));
    assert_eq!(c.try_recv().as_deref(), Ok("hi"));
    assert_eq!(d.try_recv(), Err(TryRecvError::Disconnected));
}

#[test]
fn dropping_handle_keeps_subscription() {
    let broker = Broker::new();
    let (mut receiver, handle) = broker.subscribe("t");
    drop(handle);

    broker.publish("t", "still here".to_owned());
    assert_eq!(receiver.try_recv().as_deref(), Ok("still here"));
    assert_eq!(broker.subscriber_count("t"), 1);
}

#[test]
fn stale_handle_spares_newcomer() {
    let broker = Broker::new();
    let (_old, old_handle) = broker.subscribe("t");
    old_handle.unsubscribe();
    let (mut newcomer, _newcomer_handle) = broker.subscribe("t");

    // The second call must not hit the subscriber that came after.
    old_handle.unsubscribe();
    broker.publish("t", "hi".to_owned());

    assert_eq!(newcomer.try_recv().as_deref(), Ok("hi"));
}

#[test]
fn unsubscribe_after_close_does_not_panic() {
    let broker = Broker::new();
    let (_receiver, handle) = broker.subscribe("t");
    broker.close();
    handle.unsubscribe();
}

#[test]
fn empty_topic_entry_is_removed() {
    let broker = Broker::new();
    let (_receiver, handle) = broker.subscribe("t");
    assert_eq!(broker.topic_count(), 1);

    handle.unsubscribe();
    assert_eq!(broker.topic_count(), 0);
}

#[test]
fn short_lived_topics_reach_steady_allocations() {
    let broker = Broker::new();
    let topics: Vec<String> = (0..2_000).map(|index| format!("short-{index}")).collect();

    // Subscribe to a new topic and leave it again, counting allocations.
    let counts: Vec<usize> = topics
        .iter()
        .map(|topic| {
            count_allocations(|| {
                let (_receiver, handle) = broker.subscribe(topic);
                handle.unsubscribe();
            })
        })
        .collect();

    // Once warmed up, every cycle allocates the same. A map that keeps the
    // entries of empty topics grows, and reallocates now and then.
    let steady = counts[100..].iter().copied().min().unwrap();
    let growing = counts[100..]
        .iter()
        .filter(|&&count| count > steady)
        .count();
    assert_eq!(growing, 0, "cycles that allocated more than {steady} times");
}

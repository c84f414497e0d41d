//! Learner-style tests that come with the reference solution.
//!
//! These are tests a learner could write in tests/mine.rs, each aimed at one
//! way a broker goes wrong. They pass on the reference, and each fails on at
//! least one buggy version in src/mutants/, so grading the reference shows
//! the whole scale, score 3 included. Cargo builds this file only with
//! `--features reference`, which its `[[test]]` entry in Cargo.toml requires.

use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use task01_basic::{BUFFER, Broker};
use testkit::alloc::{CountingAllocator, count_allocations};
use tokio::sync::mpsc::error::TryRecvError;
use tokio::time::timeout;

// Counts allocations for `publish_to_empty_topic_allocates_nothing`.
#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[tokio::test(start_paused = true)]
async fn receiver_ends_after_close() {
    let broker = Broker::new();
    let mut inbox = broker.subscribe("news");
    broker.publish("news", "last words".to_owned());
    broker.close();

    // The buffered message still arrives, then the receiver ends.
    assert_eq!(inbox.recv().await.as_deref(), Some("last words"));
    // Time is paused, so this timeout costs nothing when the receiver ends,
    // and fails at once instead of hanging when it never does.
    let end = timeout(Duration::from_secs(1), inbox.recv()).await;
    assert_eq!(end, Ok(None), "the receiver should end after close");
}

#[tokio::test(start_paused = true)]
async fn late_subscriber_gets_ended_receiver() {
    let broker = Broker::new();
    broker.close();

    let mut late = broker.subscribe("news");
    let end = timeout(Duration::from_secs(1), late.recv()).await;
    assert_eq!(
        end,
        Ok(None),
        "a subscribe after close should return an ended receiver"
    );
}

#[test]
fn publish_matches_whole_topic_only() {
    let broker = Broker::new();
    let mut sports = broker.subscribe("news.sports");
    let mut news = broker.subscribe("news");

    // "news" is a prefix of "news.sports", but a different topic.
    broker.publish("news", "headline".to_owned());
    assert_eq!(news.try_recv().as_deref(), Ok("headline"));
    assert_eq!(sports.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn many_topics_keep_messages_apart() {
    // With 200 topics, a broker that hashes topics into a small fixed table
    // without keeping their names mixes up topics that share a bucket.
    let broker = Broker::new();
    let topics: Vec<String> = (0..200).map(|index| format!("topic-{index}")).collect();
    let mut inboxes: Vec<_> = topics.iter().map(|topic| broker.subscribe(topic)).collect();
    for topic in &topics {
        broker.publish(topic, topic.clone());
    }

    // Each subscriber gets the message of its own topic and nothing else.
    for (topic, inbox) in topics.iter().zip(inboxes.iter_mut()) {
        assert_eq!(inbox.try_recv().as_ref(), Ok(topic));
        assert_eq!(
            inbox.try_recv(),
            Err(TryRecvError::Empty),
            "the subscriber of {topic} received a message of another topic"
        );
    }
}

#[test]
fn dropped_subscriber_does_not_stop_delivery() {
    let broker = Broker::new();
    let dropped = broker.subscribe("chat");
    let mut staying = broker.subscribe("chat");
    drop(dropped);

    broker.publish("chat", "still here?".to_owned());
    assert_eq!(staying.try_recv().as_deref(), Ok("still here?"));
}

#[test]
fn publish_to_empty_topic_allocates_nothing() {
    let broker = Broker::new();
    let message = "nobody listens".to_owned();

    // The message was allocated above, so only publish itself is counted.
    let allocations = count_allocations(|| broker.publish("empty", message));
    assert_eq!(allocations, 0);
}

#[test]
fn publish_returns_while_buffer_is_full() {
    let broker = Arc::new(Broker::new());
    let _never_read = broker.subscribe("jobs");

    // Publish on another thread, so a publish that waits for room makes this
    // test fail instead of hang.
    let (done, finished) = mpsc::channel();
    let publisher = Arc::clone(&broker);
    thread::spawn(move || {
        for index in 0..=BUFFER {
            publisher.publish("jobs", format!("job {index}"));
        }
        let _ = done.send(());
    });

    let outcome = finished.recv_timeout(Duration::from_secs(5));
    assert!(
        outcome.is_ok(),
        "publishing {} messages to a subscriber that never reads did not return within 5 s",
        BUFFER + 1
    );
}

//! Faulty broker: topics hashed into shared buckets.

use std::sync::Mutex;

use tokio::sync::mpsc;

use super::BUFFER;
use super::shared::{bucket_of, deliver, lock};
use crate::PubSub;

/// Number of buckets. It is below [`TOPICS`](crate::TOPICS), so at least two
/// of the workload's topics share a bucket, whatever their names.
const BUCKETS: usize = 3;

/// A faulty broker that keeps subscribers in a few buckets chosen by a hash
/// of the topic, and publishes to a whole bucket.
///
/// Fault: subscribers of one topic also get the messages of every other topic
/// that hashes to the same bucket. A checker that compares only the grand
/// total of deliveries notices that there are too many. A checker that looks
/// at each message can name the foreign one. It is meant for the grading suite and for
/// learners' tests: it shows the bug that the isolation checker exists to
/// catch.
#[derive(Debug, Default)]
pub struct SharedBucketBroker {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    closed: bool,
    // Senders of every topic that hashes to the bucket, in one list.
    buckets: [Vec<mpsc::Sender<String>>; BUCKETS],
}

impl SharedBucketBroker {
    /// Creates an open broker with no subscribers.
    pub fn new() -> SharedBucketBroker {
        SharedBucketBroker::default()
    }
}

impl PubSub for SharedBucketBroker {
    fn subscribe(&self, topic: &str) -> mpsc::Receiver<String> {
        let (sender, receiver) = mpsc::channel(BUFFER);
        let mut state = lock(&self.state);
        if !state.closed {
            state.buckets[bucket_of(topic, BUCKETS)].push(sender);
        }
        receiver
    }

    async fn publish(&self, topic: &str, msg: String) {
        // The fault: the bucket's list does not say which topic each sender
        // subscribed to, so every subscriber in the bucket gets the message.
        let senders = lock(&self.state).buckets[bucket_of(topic, BUCKETS)].clone();
        deliver(&senders, &msg).await;
    }

    fn close(&self) {
        let mut state = lock(&self.state);
        state.closed = true;
        state.buckets = Default::default();
    }
}

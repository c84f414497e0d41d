//! Faulty broker: publish trusts the topic's hash and skips comparing names.

use std::sync::Mutex;

use tokio::sync::mpsc;

use super::BUFFER;
use super::shared::{bucket_of, deliver, lock};
use crate::PubSub;

/// Number of buckets. It is below [`TOPICS`](crate::TOPICS), so at least two
/// of the workload's topics share a bucket, whatever their names.
const BUCKETS: usize = 3;

/// A faulty broker with a hash table of topics whose `publish` takes the
/// first topic in the bucket without comparing its name.
///
/// Fault: when two topics share a bucket, every message published to either
/// of them goes to the subscribers of the one that was subscribed to first,
/// and the other topic's subscribers get nothing. Every topic has the same
/// number of subscribers in the workload, so the grand total of deliveries is
/// exactly right. Only a checker that looks at each subscriber's messages
/// notices. It is meant for the grading suite and for learners' tests.
#[derive(Debug, Default)]
pub struct FirstInBucketBroker {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    closed: bool,
    // Each bucket chains its topics, in the order of their first subscribe.
    buckets: [Vec<Chain>; BUCKETS],
}

#[derive(Debug)]
struct Chain {
    topic: String,
    senders: Vec<mpsc::Sender<String>>,
}

impl FirstInBucketBroker {
    /// Creates an open broker with no subscribers.
    pub fn new() -> FirstInBucketBroker {
        FirstInBucketBroker::default()
    }
}

impl PubSub for FirstInBucketBroker {
    fn subscribe(&self, topic: &str) -> mpsc::Receiver<String> {
        let (sender, receiver) = mpsc::channel(BUFFER);
        let mut state = lock(&self.state);
        if state.closed {
            return receiver;
        }

        // Subscribe compares names, so each topic gets a chain of its own.
        let bucket = &mut state.buckets[bucket_of(topic, BUCKETS)];
        match bucket.iter_mut().find(|chain| chain.topic == topic) {
            Some(chain) => chain.senders.push(sender),
            None => bucket.push(Chain {
                topic: topic.to_owned(),
                senders: vec![sender],
            }),
        }
        receiver
    }

    async fn publish(&self, topic: &str, msg: String) {
        // The fault: a shortcut that assumes one topic per bucket and never
        // compares `chain.topic` with `topic`.
        let senders = lock(&self.state).buckets[bucket_of(topic, BUCKETS)]
            .first()
            .map(|chain| chain.senders.clone())
            .unwrap_or_default();
        deliver(&senders, &msg).await;
    }

    fn close(&self) {
        let mut state = lock(&self.state);
        state.closed = true;
        state.buckets = Default::default();
    }
}

//! Faulty broker: subscribers past a fan-out limit never receive anything.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::mpsc;

use super::BUFFER;
use super::shared::{deliver, lock};
use crate::PubSub;

/// Number of subscribers per topic that `publish` delivers to.
pub const FAN_OUT_LIMIT: usize = 64;

/// A faulty broker that delivers to at most [`FAN_OUT_LIMIT`] subscribers
/// per topic.
///
/// Each topic keeps a fan-out list sized for the common case, and further
/// subscribers go to an overflow list.
///
/// Fault: `publish` walks only the fan-out list. A subscriber in the overflow
/// list stays subscribed, and its receiver ends normally on close, but it
/// never receives a message. The workload has more subscribers per topic
/// than the limit, so the last ones of every topic get nothing. A checker
/// that checks only the first subscriber of each topic passes this broker.
/// It is meant for the grading suite and for learners' tests.
#[derive(Debug, Default)]
pub struct CappedFanOutBroker {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    closed: bool,
    topics: HashMap<String, Subscribers>,
}

#[derive(Debug, Default)]
struct Subscribers {
    fan_out: Vec<mpsc::Sender<String>>,
    overflow: Vec<mpsc::Sender<String>>,
}

impl CappedFanOutBroker {
    /// Creates an open broker with no subscribers.
    pub fn new() -> CappedFanOutBroker {
        CappedFanOutBroker::default()
    }
}

impl PubSub for CappedFanOutBroker {
    fn subscribe(&self, topic: &str) -> mpsc::Receiver<String> {
        let (sender, receiver) = mpsc::channel(BUFFER);
        let mut state = lock(&self.state);
        if state.closed {
            return receiver;
        }

        let subscribers = state.topics.entry(topic.to_owned()).or_default();
        if subscribers.fan_out.len() < FAN_OUT_LIMIT {
            subscribers.fan_out.push(sender);
        } else {
            subscribers.overflow.push(sender);
        }
        receiver
    }

    async fn publish(&self, topic: &str, msg: String) {
        // The fault: the overflow list is never read.
        let senders = lock(&self.state)
            .topics
            .get(topic)
            .map(|subscribers| subscribers.fan_out.clone())
            .unwrap_or_default();
        deliver(&senders, &msg).await;
    }

    fn close(&self) {
        let mut state = lock(&self.state);
        state.closed = true;
        state.topics = HashMap::new();
    }
}

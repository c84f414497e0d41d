//! Mutant: the last subscriber leaves but its topic entry stays, and the
//! counts skip empty entries, so they look right.
//!
//! Unsubscribe and publish remove the subscriber's sender, and `topic_count`
//! counts only topics with at least one subscriber, which is what its doc
//! promises. But the entry of an empty topic, its key and its empty inner
//! map are never removed. A program that subscribes to short-lived topics,
//! one per request or per user, grows the map without bound, and no count
//! shows it. Only the memory does: the map reallocates again and again as it
//! grows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use tokio::sync::mpsc;

/// Number of messages a subscriber's channel buffers before publish drops.
pub const BUFFER: usize = 16;

/// An in-process publish/subscribe broker for `String` messages.
#[derive(Debug, Default)]
pub struct Broker {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    closed: bool,
    next_id: u64,
    topics: HashMap<String, HashMap<u64, mpsc::Sender<String>>>,
}

impl Broker {
    /// Creates an open broker with no subscribers.
    pub fn new() -> Broker {
        Broker::default()
    }

    /// Subscribes to `topic` and returns the receiver with its handle.
    pub fn subscribe(&self, topic: &str) -> (mpsc::Receiver<String>, Unsubscribe) {
        let (sender, receiver) = mpsc::channel(BUFFER);
        let mut state = self.lock();
        if state.closed {
            return (receiver, Unsubscribe::inert());
        }

        let id = state.next_id;
        state.next_id += 1;
        state
            .topics
            .entry(topic.to_owned())
            .or_default()
            .insert(id, sender);
        let handle = Unsubscribe {
            state: Arc::downgrade(&self.state),
            topic: topic.to_owned(),
            id,
        };
        (receiver, handle)
    }

    /// Sends `msg` to every current subscriber of `topic`.
    pub fn publish(&self, topic: &str, msg: String) {
        let mut state = self.lock();
        let Some(subscribers) = state.topics.get_mut(topic) else {
            return;
        };
        subscribers.retain(|_, sender| match sender.try_send(msg.clone()) {
            Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => true,
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
    }

    /// Closes the broker: every receiver yields what is buffered, then ends.
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.topics = HashMap::new();
    }

    /// Returns the number of subscribers of `topic`.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        self.lock().topics.get(topic).map_or(0, HashMap::len)
    }

    /// Returns the number of topics that have at least one subscriber.
    pub fn topic_count(&self) -> usize {
        self.lock()
            .topics
            .values()
            .filter(|subscribers| !subscribers.is_empty())
            .count()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

/// A handle that removes one subscriber from its topic.
#[must_use = "dropping the handle keeps the subscription; call .unsubscribe() to leave the topic"]
#[derive(Debug)]
pub struct Unsubscribe {
    state: Weak<Mutex<State>>,
    topic: String,
    id: u64,
}

impl Unsubscribe {
    fn inert() -> Unsubscribe {
        Unsubscribe {
            state: Weak::new(),
            topic: String::new(),
            id: 0,
        }
    }

    /// Removes this handle's subscriber from its topic.
    pub fn unsubscribe(&self) {
        let Some(state) = self.state.upgrade() else {
            return;
        };
        let mut state = lock(&state);
        if let Some(subscribers) = state.topics.get_mut(&self.topic) {
            subscribers.remove(&self.id);
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

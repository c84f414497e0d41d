//! Mutant: a stale handle clears a slot that a newcomer has reused.
//!
//! This version has already fixed the index shift: an unsubscribe leaves a
//! `None` in its slot instead of moving the others, and to keep the `Vec`
//! short a new subscriber takes the first free slot. The handle still
//! identifies its subscriber by slot number alone. A second `unsubscribe()`
//! after someone else moved into that slot clears the newcomer's sender, so
//! calling it twice detaches another subscriber.

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
    topics: HashMap<String, Vec<Option<mpsc::Sender<String>>>>,
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

        let slots = state.topics.entry(topic.to_owned()).or_default();
        let slot = match slots.iter().position(Option::is_none) {
            Some(free) => {
                slots[free] = Some(sender);
                free
            }
            None => {
                slots.push(Some(sender));
                slots.len() - 1
            }
        };
        let handle = Unsubscribe {
            state: Arc::downgrade(&self.state),
            topic: topic.to_owned(),
            slot,
        };
        (receiver, handle)
    }

    /// Sends `msg` to every current subscriber of `topic`.
    pub fn publish(&self, topic: &str, msg: String) {
        let mut state = self.lock();
        let Some(slots) = state.topics.get_mut(topic) else {
            return;
        };
        for slot in slots.iter_mut() {
            let Some(sender) = slot else { continue };
            if let Err(mpsc::error::TrySendError::Closed(_)) = sender.try_send(msg.clone()) {
                *slot = None;
            }
        }
        if slots.iter().all(Option::is_none) {
            state.topics.remove(topic);
        }
    }

    /// Closes the broker: every receiver yields what is buffered, then ends.
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.topics = HashMap::new();
    }

    /// Returns the number of subscribers of `topic`.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        self.lock()
            .topics
            .get(topic)
            .map_or(0, |slots| slots.iter().flatten().count())
    }

    /// Returns the number of topics that have at least one subscriber.
    pub fn topic_count(&self) -> usize {
        self.lock().topics.len()
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
    slot: usize,
}

impl Unsubscribe {
    fn inert() -> Unsubscribe {
        Unsubscribe {
            state: Weak::new(),
            topic: String::new(),
            slot: 0,
        }
    }

    /// Removes this handle's subscriber from its topic.
    pub fn unsubscribe(&self) {
        let Some(state) = self.state.upgrade() else {
            return;
        };
        let mut state = lock(&state);
        let Some(slots) = state.topics.get_mut(&self.topic) else {
            return;
        };
        if let Some(slot) = slots.get_mut(self.slot) {
            *slot = None;
        }
        if slots.iter().all(Option::is_none) {
            state.topics.remove(&self.topic);
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

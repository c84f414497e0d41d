//! Mutant: swap-remove by the position saved at subscribe time, clamped to
//! the last position.
//!
//! Each topic keeps its subscribers in a `Vec`, and the handle remembers the
//! position its sender had at subscribe time. `swap_remove` is O(1) and keeps
//! the others where they are, except the last subscriber, which moves into
//! the hole. An index past the end is clamped to the last position instead
//! of panicking, and a `done` flag ignores a second call. With A, B, C and D
//! subscribed, B leaves and D moves to position 1. Then D's handle, which
//! saved position 3, is clamped to position 2 and removes C, while D stays
//! subscribed. When the first two of three subscribers leave in the order
//! they joined, each handle still removes its own subscriber, so a test of
//! that order passes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
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
    topics: HashMap<String, Vec<mpsc::Sender<String>>>,
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

        let subscribers = state.topics.entry(topic.to_owned()).or_default();
        let index = subscribers.len();
        subscribers.push(sender);
        let handle = Unsubscribe {
            state: Arc::downgrade(&self.state),
            topic: topic.to_owned(),
            index,
            done: AtomicBool::new(false),
        };
        (receiver, handle)
    }

    /// Sends `msg` to every current subscriber of `topic`.
    pub fn publish(&self, topic: &str, msg: String) {
        let mut state = self.lock();
        let Some(subscribers) = state.topics.get_mut(topic) else {
            return;
        };
        subscribers.retain(|sender| match sender.try_send(msg.clone()) {
            Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => true,
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
        if subscribers.is_empty() {
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
        self.lock().topics.get(topic).map_or(0, Vec::len)
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
    index: usize,
    done: AtomicBool,
}

impl Unsubscribe {
    fn inert() -> Unsubscribe {
        Unsubscribe {
            state: Weak::new(),
            topic: String::new(),
            index: 0,
            done: AtomicBool::new(true),
        }
    }

    /// Removes this handle's subscriber from its topic.
    pub fn unsubscribe(&self) {
        if self.done.swap(true, Ordering::SeqCst) {
            return;
        }
        let Some(state) = self.state.upgrade() else {
            return;
        };
        let mut state = lock(&state);
        let Some(subscribers) = state.topics.get_mut(&self.topic) else {
            return;
        };
        // Clamp to the last position, which is where a subscriber whose
        // position ran past the end is assumed to have moved.
        let index = self.index.min(subscribers.len() - 1);
        subscribers.swap_remove(index);
        if subscribers.is_empty() {
            state.topics.remove(&self.topic);
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

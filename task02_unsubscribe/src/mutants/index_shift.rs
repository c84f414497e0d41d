//! Mutant: index-shift removal that detaches the wrong subscriber.
//!
//! Each topic keeps its subscribers in a `Vec`, and the handle remembers the
//! position its sender had at subscribe time. That works until an earlier
//! subscriber leaves: `remove` shifts everyone behind it one place forward,
//! so the next handle removes its neighbour, or nothing when its index has
//! run past the end. The `index < len` guard and the `done` flag look like
//! care (no out-of-bounds panic, a second call is ignored) but only hide it.

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
        if self.index < subscribers.len() {
            subscribers.remove(self.index);
        }
        if subscribers.is_empty() {
            state.topics.remove(&self.topic);
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

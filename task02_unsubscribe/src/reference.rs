//! Reference solution: a topic broker whose subscribers can leave one by one.
//!
//! Subscribers live in a map from topic to a map from subscriber id to the
//! sending half of that subscriber's channel. Ids come from one counter for
//! the whole broker and are never reused, so an [`Unsubscribe`] handle names
//! exactly one subscriber for the broker's lifetime: removing by id can
//! neither shift another subscriber's position nor hit a newcomer.

#![deny(clippy::todo)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use tokio::sync::mpsc;

/// Number of messages a subscriber's channel buffers before publish drops.
pub const BUFFER: usize = 16;

/// An in-process publish/subscribe broker for `String` messages.
///
/// All methods take `&self`, and the broker is `Send + Sync`, so it can be
/// shared between tasks and threads in an `Arc`.
#[derive(Debug, Default)]
pub struct Broker {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    closed: bool,
    next_id: u64,
    // A topic has an entry only while it has at least one subscriber.
    topics: HashMap<String, HashMap<u64, mpsc::Sender<String>>>,
}

impl Broker {
    /// Creates an open broker with no subscribers.
    pub fn new() -> Broker {
        Broker::default()
    }

    /// Subscribes to `topic` and returns the receiver with its handle.
    ///
    /// The receiver buffers up to [`BUFFER`] messages. Calling
    /// [`Unsubscribe::unsubscribe`] on the handle removes this subscriber,
    /// and dropping the handle does not. After [`Broker::close`] the receiver
    /// is already ended and the handle does nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use task02_unsubscribe::Broker;
    ///
    /// let broker = Broker::new();
    /// let (mut rx, handle) = broker.subscribe("news");
    /// broker.publish("news", "first".to_owned());
    ///
    /// // Leaving keeps what is buffered, then the receiver ends.
    /// handle.unsubscribe();
    /// broker.publish("news", "second".to_owned());
    /// assert_eq!(rx.try_recv().ok(), Some("first".to_owned()));
    /// assert!(rx.try_recv().is_err());
    /// assert_eq!(broker.subscriber_count("news"), 0);
    /// ```
    pub fn subscribe(&self, topic: &str) -> (mpsc::Receiver<String>, Unsubscribe) {
        let (sender, receiver) = mpsc::channel(BUFFER);
        let mut state = self.lock();

        // Dropping the only sender ends the receiver at once.
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
    ///
    /// Never blocks and never panics. A subscriber whose buffer is full misses
    /// this message. A subscriber whose receiver was dropped is removed here.
    /// After [`Broker::close`] this does nothing. With no subscribers on
    /// `topic` it allocates nothing.
    pub fn publish(&self, topic: &str, msg: String) {
        let mut state = self.lock();
        let Some(subscribers) = state.topics.get_mut(topic) else {
            return;
        };

        // `try_send` never waits, so sending under the lock cannot stall
        // other callers. It also means that once an unsubscribe has returned,
        // no later publish can reach its receiver.
        subscribers.retain(|_, sender| match sender.try_send(msg.clone()) {
            Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => true,
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
        if subscribers.is_empty() {
            state.topics.remove(topic);
        }
    }

    /// Closes the broker: every receiver yields what is buffered, then ends.
    ///
    /// Calling it again does nothing. Afterwards publish does nothing and
    /// subscribe returns receivers that are already ended.
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        // Dropping the senders ends the receivers and frees the map.
        state.topics = HashMap::new();
    }

    /// Returns the number of subscribers of `topic`.
    ///
    /// It is 0 for a topic without subscribers and after close. A subscriber
    /// whose receiver was dropped counts until the next publish on its topic
    /// or its own unsubscribe removes it.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        self.lock().topics.get(topic).map_or(0, HashMap::len)
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
///
/// Dropping the handle does not unsubscribe, because
/// `let (rx, _) = broker.subscribe(…)` drops it at once, and the subscriber
/// would leave before it received anything. The handle does not keep the
/// broker alive.
#[must_use = "dropping the handle keeps the subscription; call .unsubscribe() to leave the topic"]
#[derive(Debug)]
pub struct Unsubscribe {
    state: Weak<Mutex<State>>,
    topic: String,
    id: u64,
}

impl Unsubscribe {
    // A handle for a subscription that was never registered.
    fn inert() -> Unsubscribe {
        Unsubscribe {
            state: Weak::new(),
            topic: String::new(),
            id: 0,
        }
    }

    /// Removes this handle's subscriber from its topic.
    ///
    /// Once this returns, no message published later reaches the receiver: it
    /// yields what was already buffered, then ends. Calling it again, after
    /// [`Broker::close`], or after the broker was dropped does nothing. It
    /// never affects any other subscriber.
    pub fn unsubscribe(&self) {
        let Some(state) = self.state.upgrade() else {
            return;
        };
        let mut state = lock(&state);
        let Some(subscribers) = state.topics.get_mut(&self.topic) else {
            return;
        };

        // Removing drops the sender, which ends the receiver once drained.
        subscribers.remove(&self.id);
        if subscribers.is_empty() {
            state.topics.remove(&self.topic);
        }
    }
}

// Every critical section leaves the state consistent, so a panic elsewhere
// while the lock was held does not make the data unusable.
fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

//! Mutant: unsubscribe only marks the subscriber inactive.
//!
//! Removing from the map under a lock felt heavy, so the handle shares an
//! `active` flag with the broker's entry and clears it. Publish skips
//! inactive entries and the counts ignore them. No later message arrives,
//! but the entry and its sender stay in the map for good: the receiver never
//! ends, and a consumer looping on `recv().await` waits forever.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::mpsc;

/// Number of messages a subscriber's channel buffers before publish drops.
pub const BUFFER: usize = 16;

/// An in-process publish/subscribe broker for `String` messages.
#[derive(Debug, Default)]
pub struct Broker {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    closed: bool,
    topics: HashMap<String, Vec<Subscriber>>,
}

#[derive(Debug)]
struct Subscriber {
    sender: mpsc::Sender<String>,
    active: Arc<AtomicBool>,
}

impl Subscriber {
    fn is_active(&self) -> bool {
        self.active.load(Ordering::SeqCst)
    }
}

impl Broker {
    /// Creates an open broker with no subscribers.
    pub fn new() -> Broker {
        Broker::default()
    }

    /// Subscribes to `topic` and returns the receiver with its handle.
    pub fn subscribe(&self, topic: &str) -> (mpsc::Receiver<String>, Unsubscribe) {
        let (sender, receiver) = mpsc::channel(BUFFER);
        let active = Arc::new(AtomicBool::new(true));
        let mut state = self.lock();
        if state.closed {
            active.store(false, Ordering::SeqCst);
            return (receiver, Unsubscribe { active });
        }

        state
            .topics
            .entry(topic.to_owned())
            .or_default()
            .push(Subscriber {
                sender,
                active: Arc::clone(&active),
            });
        (receiver, Unsubscribe { active })
    }

    /// Sends `msg` to every current subscriber of `topic`.
    pub fn publish(&self, topic: &str, msg: String) {
        let mut state = self.lock();
        let Some(subscribers) = state.topics.get_mut(topic) else {
            return;
        };
        subscribers.retain(|subscriber| {
            if !subscriber.is_active() {
                return true;
            }
            match subscriber.sender.try_send(msg.clone()) {
                Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => true,
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
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
        self.lock().topics.get(topic).map_or(0, |subscribers| {
            subscribers.iter().filter(|s| s.is_active()).count()
        })
    }

    /// Returns the number of topics that have at least one subscriber.
    pub fn topic_count(&self) -> usize {
        self.lock()
            .topics
            .values()
            .filter(|subscribers| subscribers.iter().any(Subscriber::is_active))
            .count()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A handle that removes one subscriber from its topic.
#[must_use = "dropping the handle keeps the subscription; call .unsubscribe() to leave the topic"]
#[derive(Debug)]
pub struct Unsubscribe {
    active: Arc<AtomicBool>,
}

impl Unsubscribe {
    /// Removes this handle's subscriber from its topic.
    pub fn unsubscribe(&self) {
        self.active.store(false, Ordering::SeqCst);
    }
}

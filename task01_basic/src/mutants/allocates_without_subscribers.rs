//! Mutant: `publish` looks the topic up with `entry(topic.to_owned())`, which
//! allocates a `String` key on every call, also for a topic without
//! subscribers.
//!
//! The learner reuses the lookup from `subscribe`. It delivers correctly, but
//! a publisher on a topic without subscribers now pays for an allocation
//! with every message.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::mpsc::{self, error::TrySendError};

/// Capacity of each subscriber's channel, in messages.
pub const BUFFER: usize = 16;

/// An in-process publish/subscribe broker for `String` messages.
///
/// Each subscriber gets its own channel of [`BUFFER`] messages. Publishing
/// never waits. A subscriber whose channel is full misses the message, and
/// the others still get it. Share a broker between threads or tasks by
/// putting it in an [`Arc`](std::sync::Arc).
#[derive(Debug, Default)]
pub struct Broker {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    // Senders of each topic's subscribers, including any whose receiver was
    // dropped since the last publish or subscribe on that topic. A topic is
    // present only while it has at least one sender.
    subscribers: HashMap<String, Vec<mpsc::Sender<String>>>,
    closed: bool,
}

impl Broker {
    /// Creates an open broker with no subscribers.
    pub fn new() -> Broker {
        Broker::default()
    }

    /// Subscribes to `topic` and returns the receiving end of a new channel
    /// that holds up to [`BUFFER`] messages.
    ///
    /// After [`close`](Broker::close), the returned receiver has already
    /// ended, so its first `recv()` returns `None`.
    pub fn subscribe(&self, topic: &str) -> mpsc::Receiver<String> {
        let (sender, receiver) = mpsc::channel(BUFFER);
        let mut state = self.lock();

        // Dropping the only sender ends the receiver at once.
        if state.closed {
            return receiver;
        }

        // Forget subscribers that dropped their receivers, so that senders of
        // dead subscribers do not pile up on a topic without publishers.
        let senders = state.subscribers.entry(topic.to_owned()).or_default();
        senders.retain(|sender| !sender.is_closed());
        senders.push(sender);
        receiver
    }

    /// Sends `msg` to every current subscriber of exactly `topic`, without
    /// waiting.
    ///
    /// When this returns, the message is in the buffer of every subscriber
    /// that had room for it. A subscriber whose buffer is full misses this
    /// message, and the others still get it. Publishing to a topic without
    /// subscribers, or after [`close`](Broker::close), does nothing and
    /// allocates nothing.
    pub fn publish(&self, topic: &str, msg: String) {
        let mut state = self.lock();
        if state.closed {
            return;
        }

        let senders = state.subscribers.entry(topic.to_owned()).or_default();
        senders.retain(|sender| match sender.try_send(msg.clone()) {
            Ok(()) => true,
            // The subscriber is behind, so it misses this message only.
            Err(TrySendError::Full(_)) => true,
            // The subscriber dropped its receiver and will never read again.
            Err(TrySendError::Closed(_)) => false,
        });
        if senders.is_empty() {
            state.subscribers.remove(topic);
        }
    }

    /// Closes the broker, so that every receiver yields the messages already
    /// in its buffer and then ends.
    ///
    /// Later calls to [`publish`](Broker::publish) do nothing, and later
    /// calls to [`subscribe`](Broker::subscribe) return ended receivers.
    /// Closing again does nothing.
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        // Dropping the senders is what ends the receivers.
        state.subscribers.clear();
    }

    // Each update is one call on the map or on a vector, and those leave the
    // collection valid even when they panic, so the state behind a poisoned
    // lock is still usable.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

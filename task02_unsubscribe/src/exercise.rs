//! Task 2: let one subscriber leave a topic without closing the broker.
//!
//! Start from your task 1 broker. `subscribe` now also returns an
//! `Unsubscribe` handle. Calling `unsubscribe()` on it removes exactly that
//! subscriber: its receiver yields what was already buffered and then ends,
//! no message published later reaches it, and every other subscriber keeps
//! receiving. When the last subscriber of a topic leaves, the broker removes
//! the topic's entry, so `subscriber_count` and `topic_count` both drop to 0.

// The parameters are unused until you write the bodies. Delete this line then.
#![allow(unused_variables)]

use tokio::sync::mpsc;

/// Number of messages a subscriber's channel buffers before publish drops.
pub const BUFFER: usize = 16;

/// An in-process publish/subscribe broker for `String` messages.
///
/// All methods take `&self`, and the broker is `Send + Sync`, so it can be
/// shared between tasks and threads in an `Arc`.
#[derive(Debug)]
pub struct Broker {
    // Your fields go here. The handle must be able to reach the broker's
    // subscribers, so an `Arc<Mutex<…>>` shared with it is one way.
}

impl Default for Broker {
    fn default() -> Broker {
        Broker::new()
    }
}

impl Broker {
    /// Creates an open broker with no subscribers.
    pub fn new() -> Broker {
        // TODO: create the broker's empty state.
        todo!("return a Broker with no subscribers that is not closed")
    }

    /// Subscribes to `topic` and returns the receiver with its handle.
    ///
    /// The receiver buffers up to [`BUFFER`] messages. Calling
    /// [`Unsubscribe::unsubscribe`] on the handle removes this subscriber,
    /// and dropping the handle does not. After [`Broker::close`] the receiver
    /// is already ended and the handle does nothing.
    pub fn subscribe(&self, topic: &str) -> (mpsc::Receiver<String>, Unsubscribe) {
        // TODO: register a new sender under a unique id and hand out that id.
        todo!("register a channel of BUFFER under 'topic'; return its receiver and a handle")
    }

    /// Sends `msg` to every current subscriber of `topic`.
    ///
    /// Never blocks and never panics. A subscriber whose buffer is full misses
    /// this message. A subscriber whose receiver was dropped is removed here.
    /// After [`Broker::close`] this does nothing. With no subscribers on
    /// `topic` it allocates nothing.
    pub fn publish(&self, topic: &str, msg: String) {
        // TODO: deliver with `try_send` to each subscriber of the topic.
        todo!("try_send a clone of 'msg' to every subscriber of 'topic'; skip full buffers")
    }

    /// Closes the broker: every receiver yields what is buffered, then ends.
    ///
    /// Calling it again does nothing. Afterwards publish does nothing and
    /// subscribe returns receivers that are already ended.
    pub fn close(&self) {
        // TODO: mark the broker closed and drop every sender.
        todo!("set the closed flag and drop all senders so every receiver ends")
    }

    /// Returns the number of subscribers of `topic`.
    ///
    /// It is 0 for a topic without subscribers and after close. A subscriber
    /// whose receiver was dropped counts until the next publish on its topic
    /// or its own unsubscribe removes it.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        // TODO: look the topic up.
        todo!("return how many subscribers 'topic' has, 0 when it has no entry")
    }

    /// Returns the number of topics that have at least one subscriber.
    pub fn topic_count(&self) -> usize {
        // TODO: count the topic entries.
        todo!("return how many topics have at least one subscriber")
    }
}

/// A handle that removes one subscriber from its topic.
///
/// Dropping the handle does not unsubscribe, because
/// `let (rx, _) = broker.subscribe(…)` drops it at once, and the subscriber
/// would leave before it received anything.
#[must_use = "dropping the handle keeps the subscription; call .unsubscribe() to leave the topic"]
#[derive(Debug)]
pub struct Unsubscribe {
    // Your fields go here: what identifies this one subscriber, and a way
    // back to the broker's state.
}

impl Unsubscribe {
    /// Removes this handle's subscriber from its topic.
    ///
    /// Once this returns, no message published later reaches the receiver: it
    /// yields what was already buffered, then ends. Calling it again, after
    /// [`Broker::close`], or after the broker was dropped does nothing. It
    /// never affects any other subscriber.
    pub fn unsubscribe(&self) {
        // TODO: remove this subscriber by its id, and its topic once empty.
        todo!("remove this sender by id, then its topic if empty; no-op if already gone")
    }
}

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
    // TODO: add the fields that the methods below and `Unsubscribe` work on.
}

impl Default for Broker {
    fn default() -> Broker {
        Broker::new()
    }
}

impl Broker {
    /// Creates an open broker with no subscribers.
    pub fn new() -> Broker {
        // TODO: create a broker that is open and has no subscribers.
        todo!("return an open Broker with no subscribers")
    }

    /// Subscribes to `topic` and returns the receiver with its handle.
    ///
    /// The receiver buffers up to [`BUFFER`] messages. Calling
    /// [`Unsubscribe::unsubscribe`] on the handle removes this subscriber,
    /// and dropping the handle does not. After [`Broker::close`] the receiver
    /// is already ended and the handle does nothing.
    pub fn subscribe(&self, topic: &str) -> (mpsc::Receiver<String>, Unsubscribe) {
        // TODO: add a subscriber of `topic`, unless the broker is closed.
        todo!("return a receiver for 'topic' and a handle that removes exactly this subscriber")
    }

    /// Sends `msg` to every current subscriber of `topic`.
    ///
    /// Never blocks and never panics. A subscriber whose buffer is full misses
    /// this message. A subscriber whose receiver was dropped is removed here.
    /// After [`Broker::close`] this does nothing. With no subscribers on
    /// `topic` it allocates nothing.
    pub fn publish(&self, topic: &str, msg: String) {
        // TODO: deliver `msg` to the subscribers of exactly `topic`.
        todo!("put 'msg' in the buffer of every subscriber of 'topic' with room; return at once")
    }

    /// Closes the broker: every receiver yields what is buffered, then ends.
    ///
    /// Calling it again does nothing. Afterwards publish does nothing and
    /// subscribe returns receivers that are already ended.
    pub fn close(&self) {
        // TODO: close the broker for good.
        todo!("end every receiver after its buffered messages, also ones subscribed later")
    }

    /// Returns the number of subscribers of `topic`.
    ///
    /// It is 0 for a topic without subscribers and after close. A subscriber
    /// whose receiver was dropped counts until the next publish on its topic
    /// or its own unsubscribe removes it.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        // TODO: count the current subscribers of `topic`.
        todo!("return how many subscribers 'topic' has now, 0 for a topic without any")
    }

    /// Returns the number of topics that have at least one subscriber.
    pub fn topic_count(&self) -> usize {
        // TODO: count the topics that have subscribers.
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
    // TODO: add what `unsubscribe` needs to remove exactly this subscriber.
}

impl Unsubscribe {
    /// Removes this handle's subscriber from its topic.
    ///
    /// Once this returns, no message published later reaches the receiver: it
    /// yields what was already buffered, then ends. Calling it again, after
    /// [`Broker::close`], or after the broker was dropped does nothing. It
    /// never affects any other subscriber.
    pub fn unsubscribe(&self) {
        // TODO: remove this subscriber, and its topic when none is left.
        todo!("end this receiver after its buffered messages; do nothing on a repeated call")
    }
}

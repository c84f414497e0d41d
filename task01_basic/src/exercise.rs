//! Task 1: a first in-process broker.
//!
//! Goal: build a broker that hands each published `String` to every
//! subscriber of its topic through a bounded tokio channel. It drops the
//! message for a subscriber whose buffer is full instead of waiting, and
//! closing it ends every receiver once its buffered messages are read.
//!
//! When it works, `cargo test -p task01_basic` marks every check `ok` and
//! ends with a score line. The task's README.md explains the rest.

// The parameters stay unused while the bodies are `todo!()`. Delete this line
// once every method uses them.
#![allow(unused_variables)]

use tokio::sync::mpsc;

/// Capacity of each subscriber's channel, in messages.
pub const BUFFER: usize = 16;

/// An in-process publish/subscribe broker for `String` messages.
///
/// Every method takes `&self`, and the type must be `Send + Sync`, so that
/// one broker can be shared between threads in an `Arc`.
#[derive(Debug)]
pub struct Broker {
    // TODO: add the fields that `subscribe`, `publish` and `close` work on.
}

impl Broker {
    /// Creates an open broker with no subscribers.
    pub fn new() -> Broker {
        // TODO: create a broker that is open and has no subscribers.
        todo!("return an open Broker with no subscribers")
    }

    /// Subscribes to `topic` and returns the receiving end of a new channel
    /// that holds up to [`BUFFER`] messages.
    ///
    /// After [`close`](Broker::close), the returned receiver has already
    /// ended, so its first `recv()` returns `None`.
    pub fn subscribe(&self, topic: &str) -> mpsc::Receiver<String> {
        // TODO: add a subscriber of `topic`, unless the broker is closed.
        todo!("return a receiver for the messages later published on 'topic'")
    }

    /// Sends `msg` to every current subscriber of exactly `topic`, without
    /// waiting.
    ///
    /// - When `publish` returns, the message is already in the buffer of
    ///   every subscriber that had room for it.
    /// - A subscriber whose buffer is full misses this message, and the
    ///   others still get it.
    /// - A subscriber that dropped its receiver is skipped and may be
    ///   forgotten. It never stops delivery to the others.
    /// - Messages published one after another reach each subscriber in that
    ///   order.
    /// - It never blocks and never panics, also with no subscribers and
    ///   after [`close`](Broker::close), where it does nothing.
    /// - With no subscribers for `topic`, it makes no heap allocation.
    pub fn publish(&self, topic: &str, msg: String) {
        // TODO: deliver `msg` to the subscribers of exactly `topic`.
        todo!("put 'msg' in the buffer of every subscriber of 'topic' with room; return at once")
    }

    /// Closes the broker, so that every receiver yields the messages already
    /// in its buffer and then ends.
    ///
    /// Later calls to [`publish`](Broker::publish) do nothing, and later
    /// calls to [`subscribe`](Broker::subscribe) return ended receivers.
    /// Closing again does nothing.
    pub fn close(&self) {
        // TODO: close the broker for good.
        todo!("end every receiver after its buffered messages, also ones subscribed later")
    }
}

impl Default for Broker {
    /// Creates an open broker with no subscribers, like [`Broker::new`].
    fn default() -> Broker {
        Broker::new()
    }
}

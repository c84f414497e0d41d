//! The broker interface that the isolation checker drives.
//!
//! Every broker in [`crate::brokers`] implements [`PubSub`], the correct ones
//! and the faulty ones alike, so one checker can run against all of them and
//! must tell them apart by what their receivers yield.

use std::future::Future;

use tokio::sync::mpsc;

/// A topic-based publish/subscribe broker for `String` messages.
///
/// A correct broker keeps this contract:
///
/// - A message published to a topic reaches every receiver that subscribed
///   to that topic before the publish started, exactly once, and no receiver
///   of any other topic.
/// - Messages published one after another (each `publish` awaited before the
///   next starts) arrive at every receiver in the order they were published.
/// - `publish` never drops a message. When a receiver's buffer is full, it
///   waits until that receiver makes room, so a receiver that nobody reads
///   stalls every publisher of its topic. A dropped receiver is skipped.
/// - Delivery may lag behind `publish`: a message may reach the receivers
///   some time after `publish` returned.
/// - After [`close`](PubSub::close), each receiver yields every message whose
///   publish returned before the close, and then ends: `recv()` returns
///   `None`. A later `subscribe` returns a receiver that has already ended.
///
/// Because delivery may lag, the only way to know that every message has
/// arrived is to close the broker after the last publish returned and then
/// read each receiver until it ends.
pub trait PubSub: Send + Sync + 'static {
    /// Subscribes to `topic` and returns the receiver of its messages.
    fn subscribe(&self, topic: &str) -> mpsc::Receiver<String>;

    /// Publishes `msg` to every current subscriber of `topic`.
    ///
    /// The future waits while a subscriber's buffer is full, and never
    /// drops the message.
    fn publish(&self, topic: &str, msg: String) -> impl Future<Output = ()> + Send;

    /// Closes the broker: every receiver ends after the messages it is owed.
    fn close(&self);
}

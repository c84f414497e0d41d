//! Task 3: let each subscriber choose what happens when it falls behind.
//!
//! Start from your task 2 broker. `subscribe` now takes `SubscribeOptions`:
//! a `Policy`, a buffer size, and an `on_drop` callback. When a subscriber's
//! buffer is full, a `Policy::Drop` subscriber loses the message and its
//! `on_drop` gets it, while a `Policy::Block` subscriber makes `publish` wait
//! for space, which is why `publish` is now `async`. A waiting publisher is
//! released as soon as that subscriber unsubscribes, drops its receiver, or
//! the broker closes.
//!
//! `Policy` and `SubscribeOptions` are complete. The broker is yours. One
//! rule above all: never hold the broker's lock across an `.await`. A
//! publisher that waits for space while holding it keeps `unsubscribe()`
//! and `close()` from taking the lock, and they are what should release it.

// The parameters are unused until you write the bodies. Delete this line then.
#![allow(unused_variables)]

use std::fmt;
use std::sync::Arc;

use tokio::sync::mpsc;

/// Buffer size, in messages, that a subscriber gets when its options set
/// `buffer` to 0.
pub const DEFAULT_BUFFER: usize = 16;

/// Rule that publish follows for a subscriber whose buffer is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Policy {
    /// The subscriber loses the message, and its `on_drop` callback gets it.
    /// Publish never waits for this subscriber.
    #[default]
    Drop,
    /// Publish waits until the subscriber has space, leaves, or the broker
    /// closes. The subscriber loses nothing, but it slows every publisher of
    /// its topic down to its own pace.
    Block,
}

/// Options of one subscription: its policy, buffer size and drop callback.
///
/// `SubscribeOptions::default()` is a [`Policy::Drop`] subscriber with a
/// buffer of [`DEFAULT_BUFFER`] and no callback.
#[derive(Clone, Default)]
pub struct SubscribeOptions {
    /// Rule that publish follows when this subscriber's buffer is full.
    pub policy: Policy,
    /// Number of messages the subscriber's buffer holds; 0 means
    /// [`DEFAULT_BUFFER`].
    pub buffer: usize,
    /// Callback that gets each message this subscriber loses because its
    /// buffer is full. Only [`Policy::Drop`] subscribers lose messages that
    /// way, so a [`Policy::Block`] subscriber's callback is never called.
    pub on_drop: Option<Arc<dyn Fn(String) + Send + Sync>>,
}

impl SubscribeOptions {
    /// Returns the options of a [`Policy::Block`] subscriber with the
    /// default buffer.
    pub fn block() -> SubscribeOptions {
        SubscribeOptions {
            policy: Policy::Block,
            ..SubscribeOptions::default()
        }
    }

    /// Sets the buffer size in messages; 0 means [`DEFAULT_BUFFER`].
    pub fn buffer(mut self, buffer: usize) -> SubscribeOptions {
        self.buffer = buffer;
        self
    }

    /// Sets the callback that gets each message lost to a full buffer.
    ///
    /// Publish calls it on the publishing task, so it should be quick, such
    /// as incrementing a counter or logging a line.
    pub fn on_drop(
        mut self,
        callback: impl Fn(String) + Send + Sync + 'static,
    ) -> SubscribeOptions {
        self.on_drop = Some(Arc::new(callback));
        self
    }
}

impl fmt::Debug for SubscribeOptions {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("SubscribeOptions")
            .field("policy", &self.policy)
            .field("buffer", &self.buffer)
            .field("on_drop", &self.on_drop.as_ref().map(|_| "Fn(String)"))
            .finish()
    }
}

/// An in-process publish/subscribe broker for `String` messages, with a
/// policy per subscriber for when it falls behind.
///
/// All methods take `&self`, and the broker is `Send + Sync`, so it can be
/// shared between tasks and threads in an `Arc`. No method holds the
/// broker's lock across an `.await`.
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

    /// Subscribes to `topic` with `options` and returns the receiver with
    /// its handle.
    ///
    /// The receiver buffers `options.buffer` messages, or [`DEFAULT_BUFFER`]
    /// when that is 0. When a [`Policy::Block`] subscriber joins a topic that
    /// already has one, this logs a warning naming the topic with
    /// `tracing::warn!`, because any one of them can now hold back every
    /// publisher of the topic. Calling [`Unsubscribe::unsubscribe`] on the
    /// handle removes this subscriber, and dropping the handle does not.
    /// After [`Broker::close`] the receiver is already ended and the handle
    /// does nothing.
    pub fn subscribe(
        &self,
        topic: &str,
        options: SubscribeOptions,
    ) -> (mpsc::Receiver<String>, Unsubscribe) {
        // TODO: add a subscriber of `topic` with these options, unless closed.
        todo!("return a receiver with the options' buffer and a handle for this subscriber")
    }

    /// Sends `msg` to every current subscriber of `topic`.
    ///
    /// Every [`Policy::Drop`] subscriber gets the message at once if its
    /// buffer has room. Otherwise it loses the message, and its `on_drop`
    /// callback is called with it before publish returns. Only then does
    /// publish wait for space in each [`Policy::Block`] subscriber's buffer,
    /// so a slow `Block` subscriber never delays a `Drop` subscriber. A wait
    /// ends without delivering as soon as that subscriber unsubscribes,
    /// drops its receiver, or the broker closes.
    ///
    /// A subscriber whose receiver was dropped is removed, and its `on_drop`
    /// is not called. With no subscribers on `topic`, or after
    /// [`Broker::close`], publish returns at once. It never panics.
    ///
    /// The broker's lock must be released before any wait, and the
    /// callbacks must run after it is released, so they may call the broker.
    /// The returned future must be `Send`, so that it can be spawned.
    pub async fn publish(&self, topic: &str, msg: String) {
        // TODO: deliver to Drop subscribers, then wait for Block subscribers.
        todo!("try_send to Drop subscribers, call on_drop for losses, then await Block ones")
    }

    /// Closes the broker: every receiver yields what is buffered, then ends.
    ///
    /// Every publisher waiting for a [`Policy::Block`] subscriber is released
    /// without delivering. Calling it again does nothing. Afterwards publish
    /// does nothing and subscribe returns receivers that are already ended.
    pub fn close(&self) {
        // TODO: close the broker for good and release waiting publishers.
        todo!("end every receiver after its buffered messages and release waiting publishers")
    }

    /// Returns the number of subscribers of `topic`.
    ///
    /// It is 0 for a topic without subscribers and after close. A subscriber
    /// whose receiver was dropped counts until a publish on its topic or its
    /// own unsubscribe removes it.
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
    /// It returns at once, also while a publisher waits for this
    /// subscriber, and that publisher then stops waiting without delivering.
    /// Once this returns, no message published later reaches the receiver:
    /// it yields what was already buffered, then ends. Calling it again,
    /// after [`Broker::close`], or after the broker was dropped does nothing.
    /// It never affects any other subscriber.
    pub fn unsubscribe(&self) {
        // TODO: remove this subscriber and release publishers waiting for it.
        todo!("end this receiver after its buffered messages and release publishers waiting on it")
    }
}

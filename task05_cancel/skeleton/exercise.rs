//! Task 5: end each subscription when its cancellation token is cancelled.
//!
//! `subscribe` takes a `CancellationToken` instead of returning an
//! unsubscribe handle. Cancelling that token, or a parent it was derived
//! from, removes the subscription: its receiver yields what it has buffered
//! and then ends, without waiting for a publish. A token that is already
//! cancelled yields an ended receiver and registers nothing. `close().await`
//! ends every receiver and returns only after every background task of the
//! broker has finished. Publish keeps the drop policy: it never blocks, and
//! when a subscriber's buffer is full, its `on_drop` callback receives the
//! message instead.

// The parameters are unused until you write the bodies. Delete this line then.
#![allow(unused_variables)]

use std::fmt;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Buffer size of a subscription whose options ask for a buffer of 0.
pub const DEFAULT_BUFFER: usize = 16;

/// Options for one subscription.
///
/// The default is a buffer of [`DEFAULT_BUFFER`] messages and no `on_drop`
/// callback. This type is complete; the work is in [`Broker`].
#[derive(Clone, Default)]
pub struct SubscribeOptions {
    /// Number of messages the receiver buffers; 0 means [`DEFAULT_BUFFER`].
    pub buffer: usize,
    /// Callback that receives each message this subscriber misses because
    /// its buffer is full.
    pub on_drop: Option<Arc<dyn Fn(String) + Send + Sync>>,
}

impl SubscribeOptions {
    /// Sets the buffer size; 0 means [`DEFAULT_BUFFER`].
    pub fn with_buffer(mut self, buffer: usize) -> SubscribeOptions {
        self.buffer = buffer;
        self
    }

    /// Sets the callback that receives each message dropped for a full buffer.
    pub fn with_on_drop<F>(mut self, on_drop: F) -> SubscribeOptions
    where
        F: Fn(String) + Send + Sync + 'static,
    {
        self.on_drop = Some(Arc::new(on_drop));
        self
    }
}

impl fmt::Debug for SubscribeOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscribeOptions")
            .field("buffer", &self.buffer)
            .field("on_drop", &self.on_drop.as_ref().map(|_| "Fn(String)"))
            .finish()
    }
}

/// An in-process publish/subscribe broker whose subscriptions end when their
/// cancellation token is cancelled.
///
/// All methods take `&self`, and the broker is `Send + Sync`, so it can be
/// shared between tasks in an `Arc`.
#[derive(Debug)]
pub struct Broker {
    // TODO: add the fields that the methods below work on.
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

    /// Subscribes to `topic` until `cancel` is cancelled, and returns the
    /// receiver.
    ///
    /// Cancelling `cancel`, or any token it was derived from with
    /// [`CancellationToken::child_token`], removes the subscription: the
    /// receiver yields what it has buffered, then ends, without waiting for a
    /// publish. No message published after the cancellation reaches it. When
    /// `cancel` is already cancelled, or the broker is closed, the receiver
    /// has already ended and nothing is registered. The broker never cancels
    /// `cancel` itself.
    pub fn subscribe(
        &self,
        cancel: CancellationToken,
        topic: &str,
        options: SubscribeOptions,
    ) -> mpsc::Receiver<String> {
        // TODO: register a subscriber that leaves when `cancel` fires.
        todo!("return a receiver for 'topic' that ends once 'cancel' is cancelled")
    }

    /// Sends `msg` to every current subscriber of `topic`.
    ///
    /// Never blocks and never panics. A subscriber whose buffer is full
    /// misses this message, and its `on_drop` callback receives it. A
    /// subscriber whose token is cancelled, or whose receiver was dropped,
    /// gets nothing and is removed here. After [`Broker::close`] this does
    /// nothing.
    pub fn publish(&self, topic: &str, msg: String) {
        // TODO: deliver `msg` to the live subscribers of exactly `topic`.
        todo!("try_send 'msg' to each subscriber of 'topic'; pass it to on_drop when full")
    }

    /// Closes the broker: every receiver yields what it has buffered, then
    /// ends, and every background task of the broker finishes.
    ///
    /// Returns once the last background task has finished. Calling it again
    /// does nothing. Afterwards publish does nothing and subscribe returns
    /// receivers that have already ended. Close never cancels a token that
    /// the caller passed to subscribe.
    pub async fn close(&self) {
        // TODO: end every subscription and wait for the broker's tasks.
        todo!("end every receiver, then return once no task of the broker is alive")
    }

    /// Returns the number of subscribers of `topic`.
    ///
    /// It is 0 for a topic without subscribers and after close. A cancelled
    /// subscriber may count until the broker has had a moment to remove it,
    /// but not once its receiver has ended.
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

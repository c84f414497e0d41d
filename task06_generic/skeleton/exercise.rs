//! Task 6: make the cancellable broker generic over its message type.
//!
//! `Broker<T>` carries messages of any type `T: Clone + Send + 'static`
//! instead of `String`: a `Broker<Order>` accepts only `Order` values, and its
//! receivers yield `Order` values with no parsing or downcasting. Everything
//! else is task 5's contract. Each subscription ends when its cancellation
//! token is cancelled. Publish never blocks, and it hands what a full buffer
//! cannot take to `on_drop`. `close().await` ends every receiver and returns
//! only after every background task of the broker has finished.
//!
//! Fan-out now has a visible cost. Publishing to N subscribers may clone the
//! message at most N times, and publishing to a topic without live
//! subscribers may neither clone it nor allocate on the heap.

// The parameters are unused until you write the bodies. Delete this line then.
#![allow(unused_variables)]

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Buffer size of a subscription whose options ask for a buffer of 0.
pub const DEFAULT_BUFFER: usize = 16;

/// Options for one subscription to a broker of messages of type `T`.
///
/// The default is a buffer of [`DEFAULT_BUFFER`] messages and no `on_drop`
/// callback. This type is complete; the work is in [`Broker`].
pub struct SubscribeOptions<T> {
    /// Number of messages the receiver buffers; 0 means [`DEFAULT_BUFFER`].
    pub buffer: usize,
    /// Callback that receives each message this subscriber misses because
    /// its buffer is full.
    pub on_drop: Option<Arc<dyn Fn(T) + Send + Sync>>,
}

impl<T> SubscribeOptions<T> {
    /// Sets the buffer size; 0 means [`DEFAULT_BUFFER`].
    pub fn with_buffer(mut self, buffer: usize) -> SubscribeOptions<T> {
        self.buffer = buffer;
        self
    }

    /// Sets the callback that receives each message dropped for a full buffer.
    ///
    /// The callback receives the dropped message itself, by value.
    pub fn with_on_drop<F>(mut self, on_drop: F) -> SubscribeOptions<T>
    where
        F: Fn(T) + Send + Sync + 'static,
    {
        self.on_drop = Some(Arc::new(on_drop));
        self
    }
}

// Written out because the derives would require `T: Default` and `T: Clone`,
// which the options do not need.
impl<T> Default for SubscribeOptions<T> {
    fn default() -> SubscribeOptions<T> {
        SubscribeOptions {
            buffer: 0,
            on_drop: None,
        }
    }
}

impl<T> Clone for SubscribeOptions<T> {
    fn clone(&self) -> SubscribeOptions<T> {
        SubscribeOptions {
            buffer: self.buffer,
            on_drop: self.on_drop.clone(),
        }
    }
}

impl<T> fmt::Debug for SubscribeOptions<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscribeOptions")
            .field("buffer", &self.buffer)
            .field("on_drop", &self.on_drop.as_ref().map(|_| "Fn(T)"))
            .finish()
    }
}

/// An in-process publish/subscribe broker for messages of type `T`, whose
/// subscriptions end when their cancellation token is cancelled.
///
/// `T` needs only `Clone + Send + 'static`: neither `Sync`, nor `Debug`, nor
/// `Default`. All methods take `&self`, and the broker is `Send + Sync`, so it
/// can be shared between tasks in an `Arc`.
pub struct Broker<T> {
    // TODO: replace this placeholder with the fields the methods below need.
    _messages: PhantomData<T>,
}

impl<T: Clone + Send + 'static> Default for Broker<T> {
    fn default() -> Broker<T> {
        Broker::new()
    }
}

// Complete, and it shows no fields, so it needs nothing from `T`. Add
// fields to it if you like.
impl<T> fmt::Debug for Broker<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broker").finish_non_exhaustive()
    }
}

impl<T: Clone + Send + 'static> Broker<T> {
    /// Creates an open broker with no subscribers.
    pub fn new() -> Broker<T> {
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
        options: SubscribeOptions<T>,
    ) -> mpsc::Receiver<T> {
        // TODO: register a subscriber that leaves when `cancel` fires.
        todo!("return a receiver for 'topic' that ends once 'cancel' is cancelled")
    }

    /// Sends `msg` to every current subscriber of `topic`.
    ///
    /// Never blocks and never panics. A subscriber whose buffer is full
    /// misses this message, and its `on_drop` callback receives it. A
    /// subscriber whose token is cancelled, or whose receiver was dropped,
    /// gets nothing. After [`Broker::close`] this does nothing.
    ///
    /// Clones `msg` at most once per subscriber, and not at all for a
    /// cancelled subscriber. When `topic` has no live subscriber, it clones
    /// nothing and makes no heap allocation.
    pub fn publish(&self, topic: &str, msg: T) {
        // TODO: give each live subscriber of `topic` its own copy of `msg`.
        todo!("try_send a copy of 'msg' to each live subscriber of 'topic'; clone only for them")
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

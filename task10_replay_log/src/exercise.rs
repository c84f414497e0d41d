//! Task 10: a replay log with offsets.
//!
//! Build a log that keeps the last `capacity` messages in a ring buffer and
//! numbers each one with an offset: the number of messages appended before it.
//! `subscribe(cancel, from)` first delivers the held messages from offset
//! `from` (the replay), then every message appended later (live), each with
//! its offset, with no gap and no duplicate where the replay meets live
//! delivery, even while other threads append. A subscription is a cursor into
//! the shared log, not a copy of it, so messages are cloned only as `recv()`
//! returns them. A start offset that was evicted, or that lies beyond the
//! head, is an error naming the offset to use instead. A subscriber that falls
//! so far behind that its next message is evicted gets a `Lagged` item naming
//! the offsets it missed, then goes on with the oldest held message.

// The parameters are unused until you write the bodies. Delete this line then.
#![allow(unused_variables)]

use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;

use tokio_util::sync::CancellationToken;

/// An in-memory log that keeps the most recent messages and numbers each one
/// with an offset.
///
/// The offset of a message is the number of messages appended before it: the
/// first message has offset 0, and offsets never repeat or skip. The log
/// keeps the last `capacity` messages in a ring buffer. Appending to a full
/// log evicts the oldest message, so the held offsets are always
/// [`oldest()`](Log::oldest) up to, but not including, [`head()`](Log::head).
///
/// All methods take `&self`, and the log must be `Send + Sync`, so it can be
/// shared between tasks in an `Arc`.
///
/// Keep the state that `append`, `subscribe` and `recv` share behind a
/// [`crate::sync::Mutex`] rather than a `std::sync::Mutex` or atomics. It
/// has the same API, and the grader pauses a subscriber or a writer right
/// before or after each use of it, to append or close at exactly that
/// moment.
pub struct Log<T> {
    // TODO: replace this placeholder with the fields the methods below need.
    placeholder: PhantomData<T>,
}

/// The error of [`Log::subscribe`] for a start offset the log cannot serve.
///
/// This type is complete; the work is in [`Log`] and [`Subscription`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    /// The requested offset was evicted. `oldest` is the oldest offset the
    /// log still keeps, the earliest start that can succeed.
    #[error(
        "offset {requested} was evicted; the oldest offset still held is {oldest}, so \
         subscribe from {oldest} or later"
    )]
    Evicted {
        /// The start offset that was requested.
        requested: u64,
        /// The oldest offset still held when subscribe ran.
        oldest: u64,
    },
    /// The requested offset lies beyond the head, the offset that the next
    /// append will get.
    #[error(
        "offset {requested} is beyond the head {head}; subscribe from {head} or earlier, \
         where {head} means only messages appended from now on"
    )]
    Future {
        /// The start offset that was requested.
        requested: u64,
        /// The head when subscribe ran.
        head: u64,
    },
}

/// The error item of a subscription that fell behind: the offsets in
/// `missed` were evicted before it read them.
///
/// The subscription goes on with offset `missed.end`, the oldest offset the
/// log held at that moment. This type is complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "lagged behind the log: offsets {}..{} were evicted before they were read; \
     the subscription continues at offset {}",
    .missed.start,
    .missed.end,
    .missed.end
)]
pub struct Lagged {
    /// The offsets that this subscription will never receive.
    pub missed: Range<u64>,
}

/// A subscription to a [`Log`]: the held messages from its start offset, then
/// each new message as it is appended.
///
/// It must be `Send`, so a task on a multi-thread runtime can read it.
pub struct Subscription<T> {
    // TODO: replace this placeholder with the fields `recv` needs.
    placeholder: PhantomData<T>,
}

impl<T: Clone + Send + 'static> Log<T> {
    /// Creates an open, empty log that keeps up to `capacity` messages.
    ///
    /// # Panics
    ///
    /// Panics when `capacity` is 0.
    pub fn new(capacity: usize) -> Log<T> {
        // TODO: create an empty ring buffer with room for `capacity` messages.
        todo!("return an open, empty Log holding at most 'capacity' messages")
    }

    /// Appends `message` and returns its offset.
    ///
    /// When the log is full, the oldest message is evicted. Append never
    /// blocks, never waits for a subscriber, and takes the same time however
    /// many messages the log contains: no step may move or copy the held
    /// messages. A subscriber that had not yet read an evicted message gets a
    /// [`Lagged`] item for it.
    ///
    /// After [`Log::close`] it stores nothing and returns [`Log::head`], an
    /// offset that no message will ever have.
    pub fn append(&self, message: T) -> u64 {
        // TODO: store the message, evicting the oldest one when full.
        todo!("store 'message', wake waiting subscribers, and return its offset")
    }

    /// Subscribes from offset `from`: the subscription delivers the held
    /// messages from `from` on, then every message appended later, each with
    /// its offset, in order, with no gap and no duplicate.
    ///
    /// `from` may be any held offset, or the head, which means "only messages
    /// appended from now on". This is true even while other threads append: an
    /// append that races the subscribe either is part of the replay or is
    /// delivered live, exactly once. The subscription ends once `cancel` is
    /// cancelled; a token that is already cancelled gives a subscription that
    /// has ended. Subscribing to a closed log replays its messages from
    /// `from`, then ends.
    ///
    /// A subscription is a cursor into the log: the offset it delivers next.
    /// Subscribe clones no message, even when `from` is the oldest of
    /// `capacity` held messages, and append clones none either. A message is
    /// cloned only when [`Subscription::recv`] returns it, once for each
    /// subscription that reads it. So a subscription takes the same small
    /// memory however many messages the log holds.
    ///
    /// # Errors
    ///
    /// [`SubscribeError::Evicted`] when `from` is older than the oldest held
    /// offset; it names that oldest offset. [`SubscribeError::Future`] when
    /// `from` lies beyond the head; it names the head.
    pub fn subscribe(
        &self,
        cancel: CancellationToken,
        from: u64,
    ) -> Result<Subscription<T>, SubscribeError> {
        // TODO: check `from` against the oldest offset and the head.
        todo!("return a Subscription that reads from offset 'from', or the SubscribeError")
    }

    /// Returns the head: the offset that the next append will get, which is
    /// also the number of messages appended so far.
    pub fn head(&self) -> u64 {
        // TODO: return the offset of the next append.
        todo!("return the offset that the next append will get")
    }

    /// Returns the oldest offset the log still keeps, or the head when the
    /// log is empty.
    pub fn oldest(&self) -> u64 {
        // TODO: return the offset of the oldest held message.
        todo!("return the oldest held offset, or the head when the log is empty")
    }

    /// Closes the log: appends are ignored from now on, and every
    /// subscription ends once it has read the messages up to the head.
    ///
    /// Calling it again does nothing.
    pub fn close(&self) {
        // TODO: mark the log closed and wake every waiting subscription.
        todo!("mark the log closed so subscriptions end after the head")
    }
}

impl<T> fmt::Debug for Log<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Log").finish_non_exhaustive()
    }
}

impl<T: Clone + Send + 'static> Subscription<T> {
    /// Receives the next item: `Ok((offset, message))`, or `Err(Lagged)`
    /// when the messages at the next offsets were evicted before this
    /// subscription read them. Returns `None` once the subscription has
    /// ended.
    ///
    /// Offsets arrive in increasing order, each once. After a [`Lagged`]
    /// item for `a..b`, the next message has offset `b`, so every offset from
    /// the start is either delivered or named as missed. The subscription
    /// ends, and every later call returns `None`, when its token is
    /// cancelled (even with messages left to read), or when the log is
    /// closed and every message up to the head has been delivered. Dropping
    /// the future of an unfinished call loses no message.
    pub async fn recv(&mut self) -> Option<Result<(u64, T), Lagged>> {
        // TODO: deliver the message at this subscription's next offset.
        todo!("return the next (offset, message), a Lagged item, or None once ended")
    }
}

impl<T> fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}

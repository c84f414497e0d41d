//! Mutant: append wakes the waiting subscriptions before it stores the
//! message.
//!
//! Waking first looks harmless, since the message is stored a moment later.
//! But a woken subscription may run in that moment: it looks at the log,
//! finds nothing new, and registers to wait again. The append that follows
//! stores the message and wakes no one, because it already did. The bug is
//! in `wakes_before_storing/shared.rs`.

#![deny(clippy::todo)]

#[path = "wakes_before_storing/shared.rs"]
mod shared;

use std::fmt;
use std::future::poll_fn;
use std::ops::Range;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use shared::{Read, Reader, Shared, StartError};

/// An in-memory log that keeps the most recent messages and numbers each one
/// with an offset.
///
/// The offset of a message is the number of messages appended before it: the
/// first message has offset 0, and offsets never repeat or skip. The log
/// keeps the last `capacity` messages in a ring buffer. Appending to a full
/// log evicts the oldest message, so the held offsets are always
/// [`oldest()`](Log::oldest) up to, but not including, [`head()`](Log::head).
///
/// All methods take `&self`, and the log is `Send + Sync`, so it can be
/// shared between tasks in an `Arc`. Dropping the log closes it.
pub struct Log<T> {
    shared: Arc<Shared<T>>,
}

/// The error of [`Log::subscribe`] for a start offset the log cannot serve.
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
/// log held at that moment.
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
/// It keeps no messages, only a cursor into the log's ring. Read it with
/// [`Subscription::recv`]. It ends when its cancellation token is
/// cancelled, or when the log is closed and it has read every message up to
/// the head.
pub struct Subscription<T> {
    reader: Reader<T>,
    cancel: CancellationToken,
    ended: bool,
}

impl<T: Clone + Send + 'static> Log<T> {
    /// Creates an open, empty log that keeps up to `capacity` messages.
    ///
    /// It reserves room for `capacity` messages at once, so that
    /// [`Log::append`] never allocates.
    ///
    /// # Panics
    ///
    /// Panics when `capacity` is 0.
    pub fn new(capacity: usize) -> Log<T> {
        Log {
            shared: Arc::new(Shared::new(capacity)),
        }
    }

    /// Appends `message` and returns its offset.
    ///
    /// When the log is full, the oldest message is evicted. Append never
    /// blocks, never waits for a subscriber, and takes the same time however
    /// many messages the log contains. A subscriber that had not yet read an
    /// evicted message gets a [`Lagged`] item for it.
    ///
    /// After [`Log::close`] it stores nothing and returns [`Log::head`], an
    /// offset that no message will ever have.
    ///
    /// # Examples
    ///
    /// ```
    /// use task10_replay_log::Log;
    ///
    /// let log = Log::new(2);
    /// assert_eq!(log.append("a"), 0);
    /// assert_eq!(log.append("b"), 1);
    /// // The log keeps 2 messages, so this evicts offset 0.
    /// assert_eq!(log.append("c"), 2);
    /// assert_eq!((log.oldest(), log.head()), (1, 3));
    /// ```
    pub fn append(&self, message: T) -> u64 {
        self.shared.append(message)
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
    ///
    /// # Examples
    ///
    /// ```
    /// use task10_replay_log::{Log, SubscribeError};
    /// use tokio_util::sync::CancellationToken;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let log = Log::new(8);
    /// for message in ["a", "b", "c"] {
    ///     log.append(message);
    /// }
    ///
    /// // Replay from offset 1, then continue live.
    /// let token = CancellationToken::new();
    /// let mut subscription = log.subscribe(token, 1).unwrap();
    /// assert_eq!(subscription.recv().await, Some(Ok((1, "b"))));
    /// assert_eq!(subscription.recv().await, Some(Ok((2, "c"))));
    /// log.append("d");
    /// assert_eq!(subscription.recv().await, Some(Ok((3, "d"))));
    ///
    /// // An offset beyond the head is an error that names the head.
    /// let error = log.subscribe(CancellationToken::new(), 9).unwrap_err();
    /// assert_eq!(error, SubscribeError::Future { requested: 9, head: 4 });
    /// # }
    /// ```
    pub fn subscribe(
        &self,
        cancel: CancellationToken,
        from: u64,
    ) -> Result<Subscription<T>, SubscribeError> {
        let reader = Reader::start(Arc::clone(&self.shared), from).map_err(|err| match err {
            StartError::Evicted { oldest } => SubscribeError::Evicted {
                requested: from,
                oldest,
            },
            StartError::Future { head } => SubscribeError::Future {
                requested: from,
                head,
            },
        })?;
        Ok(Subscription {
            reader,
            cancel,
            ended: false,
        })
    }

    /// Returns the head: the offset that the next append will get, which is
    /// also the number of messages appended so far.
    pub fn head(&self) -> u64 {
        self.shared.head()
    }

    /// Returns the oldest offset the log still keeps, or the head when the
    /// log is empty.
    pub fn oldest(&self) -> u64 {
        self.shared.oldest()
    }

    /// Closes the log: appends are ignored from now on, and every
    /// subscription ends once it has read the messages up to the head.
    ///
    /// Calling it again does nothing.
    pub fn close(&self) {
        self.shared.close();
    }
}

impl<T> Drop for Log<T> {
    fn drop(&mut self) {
        // With the log gone nothing can append, so a subscription waiting at
        // the head would wait forever. Closing ends it instead.
        self.shared.close();
    }
}

impl<T> fmt::Debug for Log<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Log").field("shared", &self.shared).finish()
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
    /// closed and every message up to the head has been delivered.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: when the future is dropped before it completes, no
    /// message is lost, and the next call delivers it.
    pub async fn recv(&mut self) -> Option<Result<(u64, T), Lagged>> {
        if self.ended {
            return None;
        }
        let reader = &mut self.reader;
        let read = tokio::select! {
            // Checking the token first ends a cancelled subscription at once,
            // even when messages are waiting.
            biased;
            () = self.cancel.cancelled() => None,
            read = poll_fn(|cx| reader.poll_read(cx)) => Some(read),
        };

        match read {
            Some(Read::Message(offset, message)) => Some(Ok((offset, message))),
            Some(Read::Lagged(missed)) => Some(Err(Lagged { missed })),
            Some(Read::Closed) | None => {
                self.ended = true;
                None
            }
        }
    }
}

impl<T> fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("reader", &self.reader)
            .field("cancel", &self.cancel)
            .field("ended", &self.ended)
            .finish()
    }
}

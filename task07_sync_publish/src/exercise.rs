//! Task 7: publish a message and wait until every subscriber has it.
//!
//! `publish_sync(topic, msg, timeout).await` returns `Ok(())` once every
//! subscriber of `topic` has accepted `msg` into its buffer. The waits for
//! full buffers run at the same time, and one deadline, `timeout` after the
//! call, covers them all: two subscribers that each make room after 50 ms
//! make the call take 50 ms, not 100. When the deadline passes first, it
//! returns `PublishError::Timeout`, which names the subscribers that stalled
//! and the ones that already have the message. The stalled ones never
//! receive it. A subscriber that leaves during the wait counts as neither.
//! After `close()` it returns `PublishError::Closed`, and no task it started
//! is alive once it returns. The rest of the broker is task 5's, kept small:
//! subscribe with a token and a buffer size, publish that drops on a full
//! buffer, and close.

// The parameters are unused until you write the bodies. Delete this line then.
#![allow(unused_variables)]

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;
use tokio_util::sync::CancellationToken;

/// Buffer size used when `subscribe` is called with a buffer of 0.
pub const DEFAULT_BUFFER: usize = 16;

/// The identity of one subscriber, unique within its broker.
///
/// Ids grow in the order of the `subscribe` calls, and an id is never reused,
/// so a subscriber keeps its id for as long as it lives. It displays as `#`
/// and a number, for example `#3`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubscriberId(u64);

impl fmt::Display for SubscriberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The receiving end of one subscription, with the subscriber's id.
///
/// It ends, yielding `None`, once the broker has closed, or once the
/// subscription's token is cancelled, in both cases after it has yielded
/// every message already in its buffer. Dropping it leaves the topic.
///
/// This type is complete. `subscribe` builds one as
/// `Subscription { id, receiver, cancel }`, with the receiver of the
/// subscriber's channel and the token it was given.
pub struct Subscription<T> {
    id: SubscriberId,
    receiver: mpsc::Receiver<T>,
    cancel: CancellationToken,
}

impl<T> Subscription<T> {
    /// Returns the subscriber's id, which error reports use to name it.
    pub fn id(&self) -> SubscriberId {
        self.id
    }

    /// Receives the next message, or `None` once the subscription has ended.
    ///
    /// # Cancel safety
    ///
    /// This method is cancel safe: dropping the future before it completes
    /// loses no message.
    pub async fn recv(&mut self) -> Option<T> {
        tokio::select! {
            message = self.receiver.recv() => return message,
            () = self.cancel.cancelled() => {}
        }

        // Closing rejects new messages but keeps the buffered ones, so a
        // cancelled subscription drains and then ends.
        self.receiver.close();
        self.receiver.recv().await
    }

    /// Receives a buffered message without waiting.
    ///
    /// # Errors
    ///
    /// Returns [`TryRecvError::Empty`] when nothing is buffered and the
    /// subscription is live, and [`TryRecvError::Disconnected`] once it has
    /// ended and its buffer is empty.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        if self.cancel.is_cancelled() {
            self.receiver.close();
        }
        self.receiver.try_recv()
    }
}

impl<T> fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .field("receiver", &self.receiver)
            .field("cancel", &self.cancel)
            .finish()
    }
}

/// The reason [`Broker::publish_sync`] did not deliver to every subscriber.
///
/// This type is complete, including its message; the work is in [`Broker`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublishError {
    /// The timeout passed before every subscriber accepted the message.
    ///
    /// The message is half-delivered: the subscribers in `delivered` hold it
    /// and keep it, and those in `stalled` never receive it. Publishing it
    /// again reaches the `delivered` ones a second time.
    Timeout {
        /// The topic the message was published to.
        topic: String,
        /// The timeout the caller passed.
        timeout: Duration,
        /// Subscribers that accepted the message, in subscription order.
        delivered: Vec<SubscriberId>,
        /// Subscribers whose buffers stayed full until the deadline, in
        /// subscription order.
        stalled: Vec<SubscriberId>,
    },
    /// The broker was closed before the call, or while it waited.
    ///
    /// When the broker closed during the wait, some subscribers may already
    /// hold the message.
    Closed,
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishError::Timeout {
                topic,
                timeout,
                delivered,
                stalled,
            } => {
                let noun = if stalled.len() == 1 {
                    "subscriber"
                } else {
                    "subscribers"
                };
                write!(
                    f,
                    "publish_sync to {topic:?} timed out after {timeout:?}: {noun} {} stalled",
                    list_ids(stalled)
                )?;
                if delivered.is_empty() {
                    write!(f, ", and no subscriber accepted the message")
                } else {
                    write!(
                        f,
                        ", but {} already accepted the message, so publishing it again \
                         delivers it to them twice",
                        list_ids(delivered)
                    )
                }
            }
            PublishError::Closed => write!(
                f,
                "the broker is closed, so publish_sync could not deliver the message to every \
                 subscriber"
            ),
        }
    }
}

impl std::error::Error for PublishError {}

/// Joins ids for an error message: "#1, #3".
fn list_ids(ids: &[SubscriberId]) -> String {
    let names: Vec<String> = ids.iter().map(SubscriberId::to_string).collect();
    names.join(", ")
}

/// An in-process publish/subscribe broker for messages of type `T`, with a
/// publish that waits for every subscriber.
///
/// All methods take `&self`, and the broker is `Send + Sync`, so it can be
/// shared between tasks in an `Arc`.
pub struct Broker<T> {
    // TODO: replace this placeholder with the fields the methods below use.
    _messages: PhantomData<T>,
}

impl<T: Clone + Send + 'static> Broker<T> {
    /// Creates an open broker with no subscribers.
    pub fn new() -> Broker<T> {
        // TODO: create a broker that is open and has no subscribers.
        todo!("return an open Broker with no subscribers")
    }

    /// Subscribes to `topic` until `cancel` is cancelled, with a buffer of
    /// `buffer` messages (0 means [`DEFAULT_BUFFER`]).
    ///
    /// Every call returns a subscription with a new id. When `cancel` is
    /// already cancelled, or the broker is closed, the subscription has
    /// already ended and nothing is registered. Cancelling `cancel` later
    /// ends the subscription after its buffered messages, and no message
    /// published after the cancellation reaches it.
    pub fn subscribe(
        &self,
        cancel: CancellationToken,
        topic: &str,
        buffer: usize,
    ) -> Subscription<T> {
        // TODO: register a subscriber with a new id and return its handle.
        todo!("return Subscription {{ id, receiver, cancel }} for a new subscriber of 'topic'")
    }

    /// Sends `msg` to every current subscriber of `topic` without waiting.
    ///
    /// A subscriber whose buffer is full misses this message. Never blocks
    /// and never panics, and after [`Broker::close`] it does nothing.
    pub fn publish(&self, topic: &str, msg: T) {
        // TODO: try_send a clone of `msg` to each live subscriber of `topic`.
        todo!("try_send 'msg' to each subscriber of 'topic'; skip the full ones")
    }

    /// Sends `msg` to every current subscriber of `topic` and returns once
    /// each one has accepted it into its buffer.
    ///
    /// The deliveries run at the same time, and `timeout`, counted from the
    /// call, bounds them all, so the call takes as long as the slowest
    /// subscriber and never more than `timeout`. A timeout of
    /// [`Duration::MAX`] waits without limit. A subscriber that cancels its
    /// token or drops its subscription while the call waits has left: it
    /// counts as neither delivered nor stalled, and the call returns `Ok`
    /// once everybody else accepted. With no subscribers it returns `Ok` at
    /// once. No task started by the call is alive when it returns.
    ///
    /// # Errors
    ///
    /// Returns [`PublishError::Timeout`] when some subscribers still had no
    /// room at the deadline. It names them in `stalled`, which never receive
    /// the message, and names in `delivered` those that hold it. Returns
    /// [`PublishError::Closed`] when the broker was closed before the call or
    /// closes while it waits.
    pub async fn publish_sync(
        &self,
        topic: &str,
        msg: T,
        timeout: Duration,
    ) -> Result<(), PublishError> {
        // TODO: wait for every subscriber at once, under one deadline.
        todo!("deliver 'msg' to all subscribers at once; after 'timeout', Err naming the stalled")
    }

    /// Closes the broker: every subscription yields what it has buffered,
    /// then ends.
    ///
    /// A `publish_sync` that is waiting stops and returns
    /// [`PublishError::Closed`]. Calling close again does nothing. Afterwards
    /// publish does nothing, publish_sync returns [`PublishError::Closed`],
    /// and subscribe returns subscriptions that have already ended.
    pub fn close(&self) {
        // TODO: end every subscription and stop any waiting publish_sync.
        todo!("drop every subscriber's sender and wake each waiting publish_sync")
    }

    /// Returns the number of live subscribers of `topic`.
    ///
    /// A subscriber that cancelled its token or dropped its subscription does
    /// not count. After close it is 0.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        // TODO: count the subscribers of `topic` that have not left.
        todo!("return how many live subscribers 'topic' has, 0 for a topic without any")
    }
}

impl<T: Clone + Send + 'static> Default for Broker<T> {
    fn default() -> Broker<T> {
        Broker::new()
    }
}

impl<T> fmt::Debug for Broker<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Add the fields worth seeing once the broker has some.
        f.debug_struct("Broker").finish_non_exhaustive()
    }
}

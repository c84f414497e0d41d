//! Task 9: share each message among the members of a queue group.
//!
//! The broker has two kinds of subscription. `subscribe` works as in tasks 5
//! and 6: the subscriber gets its own copy of every message of its topic.
//! `subscribe_queue` joins a queue group instead: each group on a topic gets
//! each message once, and exactly one of its members takes it, namely the
//! one that calls `recv` first. The group owns one queue that its members
//! pull from. So when a member leaves (its token is cancelled or its receiver
//! dropped), what is queued stays for the others. When the last member
//! leaves, the group disappears, and whatever it still had queued counts in
//! `dropped()`.
//! `publish` never blocks and never panics, not even while a group's last
//! member is leaving, and it returns how many recipients (subscribers plus
//! groups) it routed the message to. Every one of them either delivers the
//! message once or counts it as dropped.

// The parameters are unused until you write the bodies. Delete this line then.
#![allow(unused_variables)]

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;
use tokio_util::sync::CancellationToken;

/// Buffer size of a subscriber or group whose options ask for a buffer of 0.
pub const DEFAULT_BUFFER: usize = 16;

/// Options for one subscription.
///
/// The default is a buffer of [`DEFAULT_BUFFER`] messages and no `on_drop`
/// callback. For [`Broker::subscribe_queue`] the options configure the group,
/// and only when that call creates it. This type is complete; the work is in
/// [`Broker`] and [`QueueReceiver`].
pub struct SubscribeOptions<T> {
    /// Number of messages the subscriber's channel, or the group's queue,
    /// holds; 0 means [`DEFAULT_BUFFER`].
    pub buffer: usize,
    /// Callback that receives each message the subscriber or group drops.
    pub on_drop: Option<Arc<dyn Fn(T) + Send + Sync>>,
}

impl<T> SubscribeOptions<T> {
    /// Sets the buffer size; 0 means [`DEFAULT_BUFFER`].
    pub fn with_buffer(mut self, buffer: usize) -> SubscribeOptions<T> {
        self.buffer = buffer;
        self
    }

    /// Sets the callback that receives each dropped message.
    pub fn with_on_drop<F>(mut self, on_drop: F) -> SubscribeOptions<T>
    where
        F: Fn(T) + Send + Sync + 'static,
    {
        self.on_drop = Some(Arc::new(on_drop));
        self
    }
}

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

/// The receiving end of one member of a queue group.
///
/// Every member of a group pulls from the group's one queue, so each message
/// goes to whichever member calls `recv` or `try_recv` first. Dropping the
/// receiver makes the member leave the group, as cancelling its token does.
pub struct QueueReceiver<T> {
    // TODO: add the fields that recv and try_recv work on.
    // Placeholder that uses `T`; replace it with your fields.
    _messages: PhantomData<T>,
}

impl<T> QueueReceiver<T> {
    /// Receives the next message of the group, waiting while its queue is
    /// empty.
    ///
    /// Returns `None` once this member has left the group: its token was
    /// cancelled, or it never joined because the token was already cancelled
    /// or the broker was closed. A member that left takes nothing more, and
    /// what is queued stays for the other members. After [`Broker::close`],
    /// the members share what the group had queued and then get `None`.
    pub async fn recv(&mut self) -> Option<T> {
        // TODO: take the next message from the group's queue, or wait for one.
        todo!("return the next queued message of the group, or None once this member has left")
    }

    /// Takes the next message of the group if one is queued.
    ///
    /// # Errors
    ///
    /// Returns [`TryRecvError::Empty`] when the queue is empty and this
    /// member may still receive, and [`TryRecvError::Disconnected`] when it
    /// never will: the member left, or the broker was closed and the queue
    /// is empty.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        // TODO: take a queued message without waiting.
        todo!("pop the group's next queued message; Empty if none, Disconnected after leaving")
    }
}

impl<T> fmt::Debug for QueueReceiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueReceiver").finish_non_exhaustive()
    }
}

/// An in-process publish/subscribe broker with broadcast subscribers and
/// queue groups.
///
/// All methods take `&self`, and the broker is `Send + Sync`, so it can be
/// shared between tasks in an `Arc`.
///
/// Keep each group's queue behind a [`crate::sync::Mutex`] rather than a
/// `std::sync::Mutex` or a channel. It has the same API as the std mutex,
/// and the grader pauses a member right before or after each use of one,
/// to publish or close at exactly that moment.
pub struct Broker<T> {
    // TODO: add the fields that the methods below work on.
    // Placeholder that uses `T`; replace it with your fields.
    _messages: PhantomData<T>,
}

impl<T: Clone + Send + 'static> Broker<T> {
    /// Creates an open broker with no subscribers and no groups.
    pub fn new() -> Broker<T> {
        // TODO: create a broker that is open and has nobody subscribed.
        todo!("return an open Broker with no subscribers and no groups")
    }

    /// Subscribes to every message of `topic` until `cancel` is cancelled,
    /// and returns the receiver.
    ///
    /// Cancelling `cancel`, or a token it was derived from, removes the
    /// subscription: the receiver yields what it has buffered, then ends.
    /// No message published after the cancellation reaches it. When `cancel`
    /// is already cancelled, or the broker is closed, the receiver has
    /// already ended and nothing is registered.
    pub fn subscribe(
        &self,
        cancel: CancellationToken,
        topic: &str,
        options: SubscribeOptions<T>,
    ) -> mpsc::Receiver<T> {
        // TODO: register a subscriber that leaves when `cancel` fires.
        todo!("return a receiver of every message of 'topic' that ends once 'cancel' is cancelled")
    }

    /// Joins the queue group `group` of `topic` until `cancel` is cancelled,
    /// and returns the member's receiver.
    ///
    /// The group gets every message of `topic` once, and exactly one member
    /// takes each. Messages wait in the group's own queue, which every
    /// member pulls from, so "which member" is whichever calls `recv` first.
    /// When this call creates the group, `options` configure it: `buffer` is
    /// the size of the group's queue, and `on_drop` receives each message the
    /// group drops. A member that joins an existing group shares its queue,
    /// and its own options are ignored. The group keeps its settings after
    /// the member that created it leaves.
    ///
    /// Cancelling `cancel`, or dropping the receiver, makes the member leave:
    /// its receiver ends at once and takes nothing more, and what is queued
    /// stays for the other members. When the last member leaves, the group
    /// is removed and every message still in its queue counts as dropped.
    /// When `cancel` is already cancelled, or the broker is closed, the
    /// receiver has already ended and nothing is registered.
    pub fn subscribe_queue(
        &self,
        cancel: CancellationToken,
        topic: &str,
        group: &str,
        options: SubscribeOptions<T>,
    ) -> QueueReceiver<T> {
        // TODO: add a member to the group, creating the group if needed.
        todo!("return a receiver that pulls from the shared queue of 'group' on 'topic'")
    }

    /// Sends `msg` to every subscriber of `topic` and to one member of each
    /// of its groups, and returns how many recipients it was routed to.
    ///
    /// A recipient is a subscriber or a whole group. Each recipient counted
    /// in the return value either delivers the message once or drops it,
    /// and every drop increments [`Broker::dropped`] and reaches the
    /// recipient's `on_drop`. A subscriber drops a message when its buffer
    /// is full. A group drops it when its queue is full, or when the message
    /// is still queued as the group's last member leaves.
    ///
    /// Never blocks and never panics. A subscriber whose token is cancelled,
    /// or whose receiver was dropped, is skipped and removed. After
    /// [`Broker::close`] this does nothing and returns 0.
    pub fn publish(&self, topic: &str, msg: T) -> usize {
        // TODO: copy `msg` to each subscriber and into each group's queue.
        todo!("try_send to each subscriber, push into each group's queue; return the recipients")
    }

    /// Closes the broker: every receiver yields what is queued for it, then
    /// ends, and every background task of the broker finishes.
    ///
    /// A subscriber's receiver yields its own buffer. The members of a group
    /// share what the group had queued, and each gets `None` once it is
    /// empty. Returns once the last background task has finished. Calling it
    /// again does nothing. Afterwards publish does nothing and both kinds
    /// of subscribe return receivers that have already ended. Close never
    /// cancels a token that the caller passed in.
    pub async fn close(&self) {
        // TODO: end every subscription and wait for the broker's tasks.
        todo!("end every receiver and group, then return once no task of the broker is alive")
    }

    /// Returns the number of broadcast subscribers of `topic`.
    ///
    /// A cancelled subscriber may count until the broker has had a moment
    /// to remove it, but not once its receiver has ended.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        // TODO: count the broadcast subscribers of `topic`.
        todo!("return how many broadcast subscribers 'topic' has now")
    }

    /// Returns the number of queue groups of `topic`.
    ///
    /// A group counts from its first member's subscribe until its last
    /// member's leave has been processed, which takes the broker a moment
    /// after the cancel.
    pub fn group_count(&self, topic: &str) -> usize {
        // TODO: count the groups of `topic`.
        todo!("return how many queue groups 'topic' has now")
    }

    /// Returns the number of members of the group `group` of `topic`.
    ///
    /// It is 0 when there is no such group. A member that left may count
    /// until the broker has had a moment to remove it.
    pub fn member_count(&self, topic: &str, group: &str) -> usize {
        // TODO: count the members of one group.
        todo!("return how many members 'group' of 'topic' has now, 0 without such a group")
    }

    /// Returns the number of topics that have a subscriber or a group.
    pub fn topic_count(&self) -> usize {
        // TODO: count the topics that have subscribers or groups.
        todo!("return how many topics have at least one subscriber or group")
    }

    /// Returns how many messages were dropped since the broker was created.
    ///
    /// Each message counts once per subscriber or group that dropped it: a
    /// subscriber with a full buffer, a group with a full queue, and a group
    /// whose last member left while the message was still queued.
    pub fn dropped(&self) -> u64 {
        // TODO: return the running count of dropped messages.
        todo!("return how many messages subscribers and groups have dropped so far")
    }
}

impl<T: Clone + Send + 'static> Default for Broker<T> {
    fn default() -> Broker<T> {
        Broker::new()
    }
}

impl<T> fmt::Debug for Broker<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broker").finish_non_exhaustive()
    }
}

//! Mutant: a member's `recv` looks at the group's queue under the lock,
//! releases it, and only then creates the `Notified` future it waits on.
//!
//! Publish wakes a member with `notify_one()`, which stores a permit when
//! no member waits, so a message that lands in that gap still wakes the
//! member. Close wakes members with `notify_waiters()`, which reaches only
//! the `Notified` futures that exist when it runs. A close that lands after
//! the look and before `notified()` wakes no one, and the member waits
//! forever on a closed, empty queue. No await lies in the gap, so the
//! grading suite reaches it by pausing the member right after it releases
//! the lock.

#![deny(clippy::todo)]

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, PoisonError};

use tokio::sync::Notify;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::{TryRecvError, TrySendError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::sync::{Mutex, MutexGuard};

/// Buffer size of a subscriber or group whose options ask for a buffer of 0.
pub const DEFAULT_BUFFER: usize = 16;

/// Callback that receives a message its subscriber or group dropped.
type OnDrop<T> = Arc<dyn Fn(T) + Send + Sync>;

/// Options for one subscription.
///
/// The default is a buffer of [`DEFAULT_BUFFER`] messages and no `on_drop`
/// callback. For [`Broker::subscribe_queue`] the options configure the group,
/// and only when that call creates it.
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
    ///
    /// The broker calls it after it has released its own lock, so the
    /// callback may call the broker.
    pub fn with_on_drop<F>(mut self, on_drop: F) -> SubscribeOptions<T>
    where
        F: Fn(T) + Send + Sync + 'static,
    {
        self.on_drop = Some(Arc::new(on_drop));
        self
    }

    fn capacity(&self) -> usize {
        match self.buffer {
            0 => DEFAULT_BUFFER,
            buffer => buffer,
        }
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
    inbox: Arc<Inbox<T>>,
    // A child of the caller's token. Dropping the receiver cancels it too.
    left: CancellationToken,
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
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: a message is taken from the queue only in the poll that
    /// returns it, so dropping the future loses nothing.
    pub async fn recv(&mut self) -> Option<T> {
        loop {
            match self.take() {
                Ok(message) => return Some(message),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) => {}
            }
            let ready = self.inbox.ready.notified();
            tokio::pin!(ready);

            tokio::select! {
                biased;
                () = self.left.cancelled() => return None,
                () = &mut ready => {}
            }
        }
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
        self.take()
    }

    fn take(&self) -> Result<T, TryRecvError> {
        if self.left.is_cancelled() {
            return Err(TryRecvError::Disconnected);
        }
        let mut queue = self.inbox.lock();
        match queue.messages.pop_front() {
            Some(message) => Ok(message),
            None if queue.closed => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    /// Returns a receiver that has already ended.
    fn ended() -> QueueReceiver<T> {
        let left = CancellationToken::new();
        left.cancel();
        QueueReceiver {
            inbox: Arc::new(Inbox::new(0)),
            left,
        }
    }
}

impl<T> Drop for QueueReceiver<T> {
    fn drop(&mut self) {
        // The member's watcher waits on a child of `left`, so this makes the
        // member leave its group.
        self.left.cancel();
    }
}

impl<T> fmt::Debug for QueueReceiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueReceiver")
            .field("queued", &self.inbox.lock().messages.len())
            .field("left", &self.left.is_cancelled())
            .finish()
    }
}

/// The queue of one group, shared by the group's entry in the broker and
/// every member's receiver.
struct Inbox<T> {
    queue: Mutex<Queue<T>>,
    // Woken once per pushed message, and for every waiting member on close.
    ready: Notify,
}

struct Queue<T> {
    messages: VecDeque<T>,
    capacity: usize,
    // Set when the group leaves the broker's map; nothing is pushed after.
    closed: bool,
}

impl<T> Inbox<T> {
    fn new(capacity: usize) -> Inbox<T> {
        Inbox {
            queue: Mutex::new(Queue {
                messages: VecDeque::new(),
                capacity,
                closed: false,
            }),
            ready: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue<T>> {
        // Every critical section leaves the queue consistent.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends `message` and wakes one waiting member, or hands the message
    /// back when the queue is full or closed.
    fn push(&self, message: T) -> Result<(), T> {
        {
            let mut queue = self.lock();
            if queue.closed || queue.messages.len() >= queue.capacity {
                return Err(message);
            }
            queue.messages.push_back(message);
        }
        self.ready.notify_one();
        Ok(())
    }

    /// Closes the queue and returns what was still in it.
    fn close_and_take(&self) -> VecDeque<T> {
        let stranded = {
            let mut queue = self.lock();
            queue.closed = true;
            std::mem::take(&mut queue.messages)
        };
        self.ready.notify_waiters();
        stranded
    }

    /// Closes the queue but leaves its messages for the members to take.
    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_waiters();
    }
}

/// An in-process publish/subscribe broker with broadcast subscribers and
/// queue groups.
///
/// All methods take `&self`, and the broker is `Send + Sync` when `T` is
/// `Send`, so it can be shared between tasks in an `Arc`. Call
/// [`Broker::close`] when done with it: close waits until every background
/// task of the broker has finished. Dropping the broker without close stops
/// those tasks too, but nothing waits for them.
pub struct Broker<T> {
    state: Arc<Mutex<State<T>>>,
    watchers: TaskTracker,
}

struct State<T> {
    closed: bool,
    next_id: u64,
    dropped: u64,
    // A topic has an entry only while it has a subscriber or a group.
    topics: HashMap<String, Topic<T>>,
}

struct Topic<T> {
    subscribers: HashMap<u64, Subscriber<T>>,
    // A group has an entry only while it has at least one member.
    groups: HashMap<String, Group<T>>,
}

impl<T> Topic<T> {
    fn is_empty(&self) -> bool {
        self.subscribers.is_empty() && self.groups.is_empty()
    }
}

struct Subscriber<T> {
    sender: mpsc::Sender<T>,
    on_drop: Option<OnDrop<T>>,
    // A child of the caller's token. Cancelling it stops only this
    // subscription's watcher.
    stop: CancellationToken,
}

struct Group<T> {
    inbox: Arc<Inbox<T>>,
    on_drop: Option<OnDrop<T>>,
    // The watcher token of each member, by member id.
    members: HashMap<u64, CancellationToken>,
}

impl<T: Clone + Send + 'static> Broker<T> {
    /// Creates an open broker with no subscribers and no groups.
    pub fn new() -> Broker<T> {
        Broker {
            state: Arc::new(Mutex::new(State {
                closed: false,
                next_id: 0,
                dropped: 0,
                topics: HashMap::new(),
            })),
            watchers: TaskTracker::new(),
        }
    }

    /// Subscribes to every message of `topic` until `cancel` is cancelled,
    /// and returns the receiver.
    ///
    /// Cancelling `cancel`, or a token it was derived from, removes the
    /// subscription: the receiver yields what it has buffered, then ends.
    /// No message published after the cancellation reaches it. When `cancel`
    /// is already cancelled, or the broker is closed, the receiver has
    /// already ended and nothing is registered.
    ///
    /// # Panics
    ///
    /// Panics when called outside a Tokio runtime, unless the token is
    /// already cancelled or the broker is closed, because it spawns the
    /// subscription's watcher task.
    pub fn subscribe(
        &self,
        cancel: CancellationToken,
        topic: &str,
        options: SubscribeOptions<T>,
    ) -> mpsc::Receiver<T> {
        let (sender, receiver) = mpsc::channel(options.capacity());
        let mut state = self.lock();

        // Dropping the only sender ends the receiver at once.
        if state.closed || cancel.is_cancelled() {
            return receiver;
        }

        let id = state.next_id;
        state.next_id += 1;
        let stop = cancel.child_token();
        self.watchers.spawn(watch_subscriber(
            Arc::clone(&self.state),
            topic.to_owned(),
            id,
            stop.clone(),
            sender.clone(),
        ));
        let subscriber = Subscriber {
            sender,
            on_drop: options.on_drop,
            stop,
        };
        state
            .topics
            .entry(topic.to_owned())
            .or_insert_with(Topic::new)
            .subscribers
            .insert(id, subscriber);
        receiver
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
    ///
    /// # Panics
    ///
    /// Panics when called outside a Tokio runtime, unless the token is
    /// already cancelled or the broker is closed, because it spawns the
    /// member's watcher task.
    ///
    /// # Examples
    ///
    /// ```
    /// use task09_queue_groups::{Broker, SubscribeOptions};
    /// use tokio_util::sync::CancellationToken;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let broker = Broker::new();
    /// let first = CancellationToken::new();
    /// let options = SubscribeOptions::default;
    /// let mut alice =
    ///     broker.subscribe_queue(first.clone(), "jobs", "workers", options());
    /// let mut bob =
    ///     broker.subscribe_queue(first.child_token(), "jobs", "workers", options());
    ///
    /// // The group gets each job once; the member that calls recv first
    /// // takes it.
    /// broker.publish("jobs", "build");
    /// broker.publish("jobs", "test");
    /// assert_eq!(bob.recv().await, Some("build"));
    /// assert_eq!(alice.recv().await, Some("test"));
    ///
    /// // Cancelling the token that both used ends the group.
    /// first.cancel();
    /// assert_eq!(alice.recv().await, None);
    /// broker.close().await;
    /// assert_eq!(broker.group_count("jobs"), 0);
    /// # }
    /// ```
    pub fn subscribe_queue(
        &self,
        cancel: CancellationToken,
        topic: &str,
        group: &str,
        options: SubscribeOptions<T>,
    ) -> QueueReceiver<T> {
        let mut state = self.lock();
        if state.closed || cancel.is_cancelled() {
            return QueueReceiver::ended();
        }

        let id = state.next_id;
        state.next_id += 1;
        // Close cancels `stop` to end the watcher, and leaves `left` alone so
        // that the members can still take what the group had queued.
        let left = cancel.child_token();
        let stop = left.child_token();
        self.watchers.spawn(watch_member(
            Arc::clone(&self.state),
            topic.to_owned(),
            group.to_owned(),
            id,
            stop.clone(),
        ));

        let entry = state
            .topics
            .entry(topic.to_owned())
            .or_insert_with(Topic::new)
            .groups
            .entry(group.to_owned())
            .or_insert_with(|| Group {
                inbox: Arc::new(Inbox::new(options.capacity())),
                on_drop: options.on_drop,
                members: HashMap::new(),
            });
        entry.members.insert(id, stop);
        QueueReceiver {
            inbox: Arc::clone(&entry.inbox),
            left,
        }
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
    /// Never blocks and never panics. The message is cloned once per
    /// recipient. A subscriber whose token is cancelled, or whose receiver
    /// was dropped, is skipped and removed. After [`Broker::close`] this
    /// does nothing and returns 0.
    pub fn publish(&self, topic: &str, msg: T) -> usize {
        let mut missed: Vec<(OnDrop<T>, T)> = Vec::new();
        let mut routed = 0;
        {
            let mut guard = self.lock();
            let State {
                topics, dropped, ..
            } = &mut *guard;
            let Some(entry) = topics.get_mut(topic) else {
                return 0;
            };

            entry.subscribers.retain(|_, subscriber| {
                // The watcher removes a cancelled subscriber soon, but not
                // before cancel() returns.
                if subscriber.stop.is_cancelled() {
                    return false;
                }
                match subscriber.sender.try_send(msg.clone()) {
                    Ok(()) => routed += 1,
                    Err(TrySendError::Full(message)) => {
                        routed += 1;
                        *dropped += 1;
                        if let Some(on_drop) = &subscriber.on_drop {
                            missed.push((Arc::clone(on_drop), message));
                        }
                    }
                    Err(TrySendError::Closed(_)) => return false,
                }
                true
            });

            // Every group in the map has an open queue, because a group
            // leaves the map under this same lock before its queue closes.
            for group in entry.groups.values() {
                routed += 1;
                if let Err(message) = group.inbox.push(msg.clone()) {
                    *dropped += 1;
                    if let Some(on_drop) = &group.on_drop {
                        missed.push((Arc::clone(on_drop), message));
                    }
                }
            }
            if entry.is_empty() {
                topics.remove(topic);
            }
        }

        // Callbacks run without the lock, so one that publishes cannot
        // deadlock.
        for (on_drop, message) in missed {
            on_drop(message);
        }
        routed
    }

    /// Closes the broker: every receiver yields what is queued for it, then
    /// ends, and every background task of the broker finishes.
    ///
    /// A subscriber's receiver yields its own buffer. The members of a group
    /// share what the group had queued, and each gets `None` once it is
    /// empty. Returns once the last watcher task has finished. Calling it
    /// again does nothing. Afterwards publish does nothing and both kinds
    /// of subscribe return receivers that have already ended. Close never
    /// cancels a token that the caller passed in.
    ///
    /// # Cancel safety
    ///
    /// If the returned future is dropped before it completes, the broker is
    /// closed all the same and its watchers still stop, but nothing waits
    /// for them. Awaiting `close()` again waits for them.
    pub async fn close(&self) {
        let topics = {
            let mut state = self.lock();
            state.closed = true;
            std::mem::take(&mut state.topics)
        };

        // Cancelling the watcher tokens leaves the caller's tokens alone.
        // Dropping `topics` drops the subscribers' senders.
        for topic in topics.values() {
            topic.stop_all();
        }
        drop(topics);

        // `wait` returns only when the tracker is closed and empty.
        self.watchers.close();
        self.watchers.wait().await;
    }

    /// Returns the number of broadcast subscribers of `topic`.
    ///
    /// A cancelled subscriber may count until the broker has had a moment
    /// to remove it, but not once its receiver has ended.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        self.lock()
            .topics
            .get(topic)
            .map_or(0, |entry| entry.subscribers.len())
    }

    /// Returns the number of queue groups of `topic`.
    ///
    /// A group counts from its first member's subscribe until its last
    /// member's leave has been processed, which takes the broker a moment
    /// after the cancel.
    pub fn group_count(&self, topic: &str) -> usize {
        self.lock()
            .topics
            .get(topic)
            .map_or(0, |entry| entry.groups.len())
    }

    /// Returns the number of members of the group `group` of `topic`.
    ///
    /// It is 0 when there is no such group. A member that left may count
    /// until the broker has had a moment to remove it.
    pub fn member_count(&self, topic: &str, group: &str) -> usize {
        self.lock()
            .topics
            .get(topic)
            .and_then(|entry| entry.groups.get(group))
            .map_or(0, |entry| entry.members.len())
    }

    /// Returns the number of topics that have a subscriber or a group.
    pub fn topic_count(&self) -> usize {
        self.lock().topics.len()
    }

    /// Returns how many messages were dropped since the broker was created.
    ///
    /// Each message counts once per subscriber or group that dropped it: a
    /// subscriber with a full buffer, a group with a full queue, and a group
    /// whose last member left while the message was still queued.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        lock(&self.state)
    }
}

impl<T: Clone + Send + 'static> Default for Broker<T> {
    fn default() -> Broker<T> {
        Broker::new()
    }
}

impl<T> fmt::Debug for Broker<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.state);
        f.debug_struct("Broker")
            .field("closed", &state.closed)
            .field("topics", &state.topics.len())
            .field("dropped", &state.dropped)
            .field("watchers", &self.watchers.len())
            .finish()
    }
}

impl<T> Drop for Broker<T> {
    fn drop(&mut self) {
        // Without this, the watchers of a broker dropped without close would
        // wait for tokens that may never be cancelled, and members would
        // wait for messages that never come.
        for topic in lock(&self.state).topics.values() {
            topic.stop_all();
        }
    }
}

impl<T> Topic<T> {
    fn new() -> Topic<T> {
        Topic {
            subscribers: HashMap::new(),
            groups: HashMap::new(),
        }
    }

    /// Stops every watcher of the topic and closes its groups' queues.
    fn stop_all(&self) {
        for subscriber in self.subscribers.values() {
            subscriber.stop.cancel();
        }
        for group in self.groups.values() {
            group.inbox.close();
            for stop in group.members.values() {
                stop.cancel();
            }
        }
    }
}

/// Waits until one broadcast subscription ends, then removes it from the
/// map.
///
/// `sender` is a copy of the subscription's sender, kept to notice a dropped
/// receiver. Returning drops it, so the receiver ends only after the entry is
/// gone.
async fn watch_subscriber<T>(
    state: Arc<Mutex<State<T>>>,
    topic: String,
    id: u64,
    stop: CancellationToken,
    sender: mpsc::Sender<T>,
) {
    tokio::select! {
        () = stop.cancelled() => {}
        () = sender.closed() => {}
    }

    let mut state = lock(&state);
    let Some(entry) = state.topics.get_mut(&topic) else {
        return;
    };
    entry.subscribers.remove(&id);
    if entry.is_empty() {
        state.topics.remove(&topic);
    }
}

/// Waits until one member leaves its group, then removes it, and the group
/// too when it was the last member.
async fn watch_member<T>(
    state: Arc<Mutex<State<T>>>,
    topic: String,
    group: String,
    id: u64,
    stop: CancellationToken,
) {
    stop.cancelled().await;

    let stranded = leave_group(&mut lock(&state), &topic, &group, id);
    if let Some((on_drop, messages)) = stranded {
        for message in messages {
            on_drop(message);
        }
    }
}

/// Removes member `id` from its group. When it was the last member, removes
/// the group, counts what was still queued as dropped, and returns those
/// messages with the group's `on_drop` for the caller to call without the
/// lock.
fn leave_group<T>(
    state: &mut State<T>,
    topic: &str,
    group: &str,
    id: u64,
) -> Option<(OnDrop<T>, VecDeque<T>)> {
    // After close, the map is empty and there is nothing to remove.
    let entry = state.topics.get_mut(topic)?;
    let members = &mut entry.groups.get_mut(group)?.members;
    members.remove(&id)?;
    if !members.is_empty() {
        return None;
    }

    let removed = entry.groups.remove(group)?;
    if entry.is_empty() {
        state.topics.remove(topic);
    }
    let stranded = removed.inbox.close_and_take();
    state.dropped += stranded.len() as u64;
    removed.on_drop.map(|on_drop| (on_drop, stranded))
}

// Every critical section leaves the state consistent, so a panic elsewhere
// while the lock was held does not make the data unusable.
fn lock<T>(state: &Mutex<State<T>>) -> MutexGuard<'_, State<T>> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

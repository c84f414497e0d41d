//! Mutant: each member of a group has its own buffer.
//!
//! Giving every member its own channel reuses the subscriber code of task 5,
//! and publish hands each message to one member, in turn, so each message
//! still reaches exactly one member. But a message handed to a member waits
//! in that member's channel. When the member leaves, what was queued for it
//! goes with it, although other members could have done the work, and
//! nothing counts it as dropped. The group's buffer also grows with every
//! member that joins, and each member's options decide the size of its part.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, PoisonError};

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
pub struct QueueReceiver<T> {
    // The member's own channel, which publish fills.
    receiver: mpsc::Receiver<T>,
    // A child of the caller's token. Dropping the receiver cancels it too.
    left: CancellationToken,
}

impl<T> QueueReceiver<T> {
    /// Receives the next message of the group, waiting while its queue is
    /// empty.
    pub async fn recv(&mut self) -> Option<T> {
        tokio::select! {
            biased;
            () = self.left.cancelled() => None,
            message = self.receiver.recv() => message,
        }
    }

    /// Takes the next message of the group if one is queued.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        if self.left.is_cancelled() {
            return Err(TryRecvError::Disconnected);
        }
        self.receiver.try_recv()
    }

    /// Returns a receiver that has already ended.
    fn ended() -> QueueReceiver<T> {
        let (_, receiver) = mpsc::channel(1);
        let left = CancellationToken::new();
        left.cancel();
        QueueReceiver { receiver, left }
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
            .field("queued", &self.receiver.len())
            .field("left", &self.left.is_cancelled())
            .finish()
    }
}

/// An in-process publish/subscribe broker with broadcast subscribers and
/// queue groups.
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
    // Each member with its own channel, by member id.
    members: BTreeMap<u64, Member<T>>,
    // Counts the messages so far; the member whose turn it is gets the next.
    next: usize,
}

struct Member<T> {
    sender: mpsc::Sender<T>,
    on_drop: Option<OnDrop<T>>,
    // Cancelled to stop this member's watcher.
    stop: CancellationToken,
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

        // Each member brings its own buffer.
        let (sender, receiver) = mpsc::channel(options.capacity());
        let member = Member {
            sender,
            on_drop: options.on_drop,
            stop,
        };
        state
            .topics
            .entry(topic.to_owned())
            .or_insert_with(Topic::new)
            .groups
            .entry(group.to_owned())
            .or_insert_with(|| Group {
                members: BTreeMap::new(),
                next: 0,
            })
            .members
            .insert(id, member);
        QueueReceiver { receiver, left }
    }

    /// Sends `msg` to every subscriber of `topic` and to one member of each
    /// of its groups, and returns how many recipients it was routed to.
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

            // The members of a group take turns: one message each, in order.
            for group in entry.groups.values_mut() {
                let turn = group.next % group.members.len().max(1);
                group.next = group.next.wrapping_add(1);
                let Some(member) = group.members.values().nth(turn) else {
                    continue;
                };
                routed += 1;
                if let Err(TrySendError::Full(message) | TrySendError::Closed(message)) =
                    member.sender.try_send(msg.clone())
                {
                    *dropped += 1;
                    if let Some(on_drop) = &member.on_drop {
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
    pub fn subscriber_count(&self, topic: &str) -> usize {
        self.lock()
            .topics
            .get(topic)
            .map_or(0, |entry| entry.subscribers.len())
    }

    /// Returns the number of queue groups of `topic`.
    pub fn group_count(&self, topic: &str) -> usize {
        self.lock()
            .topics
            .get(topic)
            .map_or(0, |entry| entry.groups.len())
    }

    /// Returns the number of members of the group `group` of `topic`.
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
            for member in group.members.values() {
                member.stop.cancel();
            }
        }
    }
}

/// Waits until one broadcast subscription ends, then removes it from the
/// map.
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
    leave_group(&mut lock(&state), &topic, &group, id);
}

/// Removes member `id` from its group, and the group too when it was the
/// last member.
fn leave_group<T>(state: &mut State<T>, topic: &str, group: &str, id: u64) -> Option<()> {
    // After close, the map is empty and there is nothing to remove. Dropping
    // the member's sender leaves what was queued for it in its channel.
    let entry = state.topics.get_mut(topic)?;
    let members = &mut entry.groups.get_mut(group)?.members;
    members.remove(&id)?;
    if !members.is_empty() {
        return None;
    }

    entry.groups.remove(group)?;
    if entry.is_empty() {
        state.topics.remove(topic);
    }
    Some(())
}

// Every critical section leaves the state consistent, so a panic elsewhere
// while the lock was held does not make the data unusable.
fn lock<T>(state: &Mutex<State<T>>) -> MutexGuard<'_, State<T>> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

//! Mutant: publish_sync delivers to a subscriber whose token is cancelled.
//!
//! publish checks each subscriber's token, but publish_sync gathers its
//! subscribers through a helper that only checks whether the subscription was
//! dropped. A subscriber that cancelled before the call still has an open
//! receiver, so it takes the message and is listed as delivered, although
//! it has left.

#![deny(clippy::todo)]

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::{TryRecvError, TrySendError};
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;
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
    state: Mutex<State<T>>,
    // Cancelled by close. A waiting publish_sync watches it to stop early.
    closed: CancellationToken,
}

struct State<T> {
    next_id: u64,
    // The subscribers of each topic, in subscription order. A topic has an
    // entry only while it has at least one subscriber.
    topics: HashMap<String, Vec<Subscriber<T>>>,
}

struct Subscriber<T> {
    id: SubscriberId,
    sender: mpsc::Sender<T>,
    cancel: CancellationToken,
}

impl<T> Subscriber<T> {
    /// Returns whether the subscriber cancelled its token or dropped its
    /// subscription.
    fn has_left(&self) -> bool {
        self.cancel.is_cancelled() || self.sender.is_closed()
    }
}

// Derived Clone would require `T: Clone`, which a sender does not need.
impl<T> Clone for Subscriber<T> {
    fn clone(&self) -> Subscriber<T> {
        Subscriber {
            id: self.id,
            sender: self.sender.clone(),
            cancel: self.cancel.clone(),
        }
    }
}

/// Outcome of one delivery that had to wait for room.
enum Outcome {
    /// The message is in the subscriber's buffer.
    Accepted,
    /// The subscriber cancelled or dropped its subscription first.
    Left,
}

impl<T: Clone + Send + 'static> Broker<T> {
    /// Creates an open broker with no subscribers.
    pub fn new() -> Broker<T> {
        Broker {
            state: Mutex::new(State {
                next_id: 1,
                topics: HashMap::new(),
            }),
            closed: CancellationToken::new(),
        }
    }

    /// Subscribes to `topic` until `cancel` is cancelled, with a buffer of
    /// `buffer` messages (0 means [`DEFAULT_BUFFER`]).
    ///
    /// Every call returns a subscription with a new id. When `cancel` is
    /// already cancelled, or the broker is closed, the subscription has
    /// already ended and nothing is registered. Cancelling `cancel` later
    /// ends the subscription after its buffered messages, and no message
    /// published after the cancellation reaches it.
    ///
    /// # Examples
    ///
    /// ```
    /// use task07_sync_publish::Broker;
    /// use tokio_util::sync::CancellationToken;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let broker = Broker::new();
    /// let token = CancellationToken::new();
    /// let mut audit = broker.subscribe(token.clone(), "audit", 4);
    /// broker.publish("audit", "login".to_owned());
    ///
    /// // Cancelling ends the subscription once it has drained.
    /// token.cancel();
    /// assert_eq!(audit.recv().await.as_deref(), Some("login"));
    /// assert_eq!(audit.recv().await, None);
    /// # }
    /// ```
    pub fn subscribe(
        &self,
        cancel: CancellationToken,
        topic: &str,
        buffer: usize,
    ) -> Subscription<T> {
        let capacity = if buffer == 0 { DEFAULT_BUFFER } else { buffer };
        let (sender, receiver) = mpsc::channel(capacity);
        let mut state = self.lock();
        let id = SubscriberId(state.next_id);
        state.next_id += 1;
        let subscription = Subscription {
            id,
            receiver,
            cancel: cancel.clone(),
        };

        // Dropping the only sender ends the receiver at once.
        if self.closed.is_cancelled() || cancel.is_cancelled() {
            return subscription;
        }

        // NOTE: nothing removes a subscriber that left until the next walk
        // of its topic's list; an idle topic keeps such entries until then.
        let subscribers = state.topics.entry(topic.to_owned()).or_default();
        subscribers.retain(|subscriber| !subscriber.has_left());
        subscribers.push(Subscriber { id, sender, cancel });
        subscription
    }

    /// Sends `msg` to every current subscriber of `topic` without waiting.
    ///
    /// A subscriber whose buffer is full misses this message. Never blocks
    /// and never panics, and after [`Broker::close`] it does nothing.
    pub fn publish(&self, topic: &str, msg: T) {
        let mut state = self.lock();
        let Some(subscribers) = state.topics.get_mut(topic) else {
            return;
        };
        subscribers.retain(|subscriber| {
            if subscriber.cancel.is_cancelled() {
                return false;
            }
            match subscriber.sender.try_send(msg.clone()) {
                Ok(()) | Err(TrySendError::Full(_)) => true,
                Err(TrySendError::Closed(_)) => false,
            }
        });
        if subscribers.is_empty() {
            state.topics.remove(topic);
        }
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
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops the deliveries that still wait, but the
    /// message may already be with some subscribers, and the tasks that
    /// waited end only when the runtime next gets to them.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use task07_sync_publish::{Broker, PublishError};
    /// use tokio_util::sync::CancellationToken;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let broker = Broker::new();
    /// let token = CancellationToken::new();
    /// let mut ready = broker.subscribe(token.clone(), "audit", 1);
    /// let stuck = broker.subscribe(token.clone(), "audit", 1);
    ///
    /// // The first publish fills both buffers; only `ready` is read.
    /// let timeout = Duration::from_millis(50);
    /// broker.publish_sync("audit", 1, timeout).await.unwrap();
    /// assert_eq!(ready.recv().await, Some(1));
    ///
    /// // `stuck` never makes room, so the second publish times out.
    /// let result = broker.publish_sync("audit", 2, timeout).await;
    /// let expected = PublishError::Timeout {
    ///     topic: "audit".to_owned(),
    ///     timeout,
    ///     delivered: vec![ready.id()],
    ///     stalled: vec![stuck.id()],
    /// };
    /// assert_eq!(result, Err(expected));
    /// # }
    /// ```
    pub async fn publish_sync(
        &self,
        topic: &str,
        msg: T,
        timeout: Duration,
    ) -> Result<(), PublishError> {
        // One deadline for every delivery, counted from the call. A timeout
        // too large to add to the clock means no deadline.
        let deadline = Instant::now().checked_add(timeout);
        let subscribers = self.live_subscribers(topic)?;

        // A subscriber with room takes the message now. Each full one gets a
        // task that waits for room, so the waits overlap.
        let mut delivered = Vec::new();
        let mut waiting = Vec::new();
        let mut deliveries = JoinSet::new();
        for subscriber in subscribers {
            match subscriber.sender.try_send(msg.clone()) {
                Ok(()) => delivered.push(subscriber.id),
                Err(TrySendError::Full(msg)) => {
                    waiting.push(subscriber.id);
                    deliveries.spawn(wait_for_room(subscriber, msg));
                }
                // The subscription was dropped, so the subscriber left.
                Err(TrySendError::Closed(_)) => {}
            }
        }

        // Wait for every delivery, but no longer than the deadline, and stop
        // early if the broker closes.
        let mut settled = Vec::new();
        let interrupted_by_close = tokio::select! {
            biased;
            () = collect(&mut deliveries, &mut settled) => false,
            () = self.closed.cancelled() => true,
            () = deadline_passed(deadline) => false,
        };

        // Abort what still waits, then join every task, so none outlives the
        // call. A task that finished just before the abort keeps its result.
        deliveries.abort_all();
        collect(&mut deliveries, &mut settled).await;

        let mut left = HashSet::new();
        for (id, outcome) in settled {
            match outcome {
                Outcome::Accepted => delivered.push(id),
                Outcome::Left => {
                    left.insert(id);
                }
            }
        }
        delivered.sort_unstable();
        let stalled: Vec<SubscriberId> = waiting
            .into_iter()
            .filter(|id| !left.contains(id) && delivered.binary_search(id).is_err())
            .collect();

        if stalled.is_empty() {
            Ok(())
        } else if interrupted_by_close {
            Err(PublishError::Closed)
        } else {
            Err(PublishError::Timeout {
                topic: topic.to_owned(),
                timeout,
                delivered,
                stalled,
            })
        }
    }

    /// Closes the broker: every subscription yields what it has buffered,
    /// then ends.
    ///
    /// A `publish_sync` that is waiting stops and returns
    /// [`PublishError::Closed`]. Calling close again does nothing. Afterwards
    /// publish does nothing, publish_sync returns [`PublishError::Closed`],
    /// and subscribe returns subscriptions that have already ended.
    pub fn close(&self) {
        let topics = {
            let mut state = self.lock();
            self.closed.cancel();
            std::mem::take(&mut state.topics)
        };

        // Dropping the senders outside the lock ends the receivers.
        drop(topics);
    }

    /// Returns the number of live subscribers of `topic`.
    ///
    /// A subscriber that cancelled its token or dropped its subscription does
    /// not count. After close it is 0.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        let state = self.lock();
        state.topics.get(topic).map_or(0, |subscribers| {
            subscribers
                .iter()
                .filter(|subscriber| !subscriber.has_left())
                .count()
        })
    }

    /// Returns copies of the live subscribers of `topic`, in subscription
    /// order, and drops the ones that left.
    fn live_subscribers(&self, topic: &str) -> Result<Vec<Subscriber<T>>, PublishError> {
        let mut state = self.lock();
        if self.closed.is_cancelled() {
            return Err(PublishError::Closed);
        }
        let Some(subscribers) = state.topics.get_mut(topic) else {
            return Ok(Vec::new());
        };
        // The subscription is checked, but not the token.
        subscribers.retain(|subscriber| !subscriber.sender.is_closed());
        let live = subscribers.clone();
        if subscribers.is_empty() {
            state.topics.remove(topic);
        }
        Ok(live)
    }
}

impl<T> Broker<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Every critical section leaves the state consistent, so a panic
        // elsewhere while the lock was held does not make the data unusable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T: Clone + Send + 'static> Default for Broker<T> {
    fn default() -> Broker<T> {
        Broker::new()
    }
}

impl<T> fmt::Debug for Broker<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        let subscribers: usize = state.topics.values().map(Vec::len).sum();
        f.debug_struct("Broker")
            .field("closed", &self.closed.is_cancelled())
            .field("topics", &state.topics.len())
            .field("subscribers", &subscribers)
            .finish()
    }
}

/// Waits until `subscriber` has room for `msg` or leaves.
async fn wait_for_room<T>(subscriber: Subscriber<T>, msg: T) -> (SubscriberId, Outcome) {
    // `biased` checks the token first, so a subscriber that has cancelled
    // gets nothing even if its buffer has room again.
    let outcome = tokio::select! {
        biased;
        () = subscriber.cancel.cancelled() => Outcome::Left,
        sent = subscriber.sender.send(msg) => match sent {
            Ok(()) => Outcome::Accepted,
            Err(_) => Outcome::Left,
        },
    };
    (subscriber.id, outcome)
}

/// Joins the tasks of `deliveries` as they finish and records their results
/// in `settled`; an aborted task has no result.
///
/// Cancel safe: a task joined before the future is dropped is in `settled`.
async fn collect(
    deliveries: &mut JoinSet<(SubscriberId, Outcome)>,
    settled: &mut Vec<(SubscriberId, Outcome)>,
) {
    while let Some(joined) = deliveries.join_next().await {
        settled.extend(result_of(joined));
    }
}

/// Returns the result of a joined delivery task, or `None` for an aborted one.
///
/// # Panics
///
/// Re-raises the panic of a task that panicked; the delivery code has no
/// panicking path, so that would be a bug.
fn result_of<R>(joined: Result<R, JoinError>) -> Option<R> {
    match joined {
        Ok(result) => Some(result),
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(_) => None,
    }
}

/// Waits until `deadline`, or forever when there is none.
async fn deadline_passed(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

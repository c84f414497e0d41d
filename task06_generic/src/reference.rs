//! Reference solution: a broker generic over its message type, whose
//! subscriptions end when a cancellation token fires.
//!
//! The structure is task 5's: a map from topic to subscribers, a watcher task
//! per subscription that removes it once its token is cancelled or its
//! receiver dropped, and a [`TaskTracker`] that close waits on. What is new is
//! the cost of fan-out. Each subscriber needs a value of its own, so publish
//! clones the message for every live subscriber but the last, which gets the
//! original. A subscriber whose buffer is full gets a copy only when it has an
//! `on_drop` callback, and that callback receives the copy. A topic without
//! live subscribers costs no clone and no heap allocation: publish looks the
//! topic up by `&str` and collects nothing.

#![deny(clippy::todo)]

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Buffer size of a subscription whose options ask for a buffer of 0.
pub const DEFAULT_BUFFER: usize = 16;

/// Callback that receives the messages a subscriber misses.
type OnDrop<T> = Arc<dyn Fn(T) + Send + Sync>;

/// Options for one subscription to a broker of messages of type `T`.
///
/// The default is a buffer of [`DEFAULT_BUFFER`] messages and no `on_drop`
/// callback.
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
    /// The callback receives the dropped message itself, by value. The
    /// broker calls it from inside `publish`, after it has released its own
    /// lock, so the callback may call the broker.
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
/// can be shared between tasks in an `Arc`. Call [`Broker::close`] when done
/// with it: close waits until every background task of the broker has
/// finished. Dropping the broker without close stops those tasks too, but
/// nothing waits for them.
pub struct Broker<T> {
    state: Arc<Mutex<State<T>>>,
    watchers: TaskTracker,
}

struct State<T> {
    closed: bool,
    next_id: u64,
    // A topic has an entry only while it has at least one subscriber.
    topics: HashMap<String, HashMap<u64, Subscriber<T>>>,
}

struct Subscriber<T> {
    sender: mpsc::Sender<T>,
    on_drop: Option<OnDrop<T>>,
    // A child of the caller's token. Cancelling it stops only this
    // subscription's watcher.
    stop: CancellationToken,
}

impl<T> Subscriber<T> {
    /// Returns whether the subscription still reads: its token is not
    /// cancelled and its receiver still exists.
    fn is_live(&self) -> bool {
        !self.stop.is_cancelled() && !self.sender.is_closed()
    }

    /// Delivers the value that `copy` makes if the buffer has room, or
    /// returns it with the `on_drop` callback if the buffer is full.
    ///
    /// Calls `copy` at most once, and not at all when the buffer is full and
    /// there is no callback, so a dropped message costs a clone only when
    /// someone receives it.
    fn offer(&self, copy: impl FnOnce() -> T) -> Option<(OnDrop<T>, T)> {
        match self.sender.try_reserve() {
            Ok(permit) => {
                permit.send(copy());
                None
            }
            Err(TrySendError::Full(())) => {
                let on_drop = self.on_drop.as_ref()?;
                Some((Arc::clone(on_drop), copy()))
            }
            // The receiver went away after the liveness check; its watcher
            // removes this subscriber.
            Err(TrySendError::Closed(())) => None,
        }
    }
}

impl<T: Clone + Send + 'static> Broker<T> {
    /// Creates an open broker with no subscribers.
    pub fn new() -> Broker<T> {
        let state = State {
            closed: false,
            next_id: 0,
            topics: HashMap::new(),
        };
        Broker {
            state: Arc::new(Mutex::new(state)),
            watchers: TaskTracker::new(),
        }
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
    ///
    /// # Panics
    ///
    /// Panics when called outside a Tokio runtime, unless the token is
    /// already cancelled or the broker is closed, because it spawns the
    /// subscription's watcher task. Also panics when `options.buffer` is
    /// larger than `usize::MAX >> 3`, the most a Tokio channel can hold.
    ///
    /// # Examples
    ///
    /// ```
    /// use task06_generic::{Broker, SubscribeOptions};
    /// use tokio_util::sync::CancellationToken;
    ///
    /// #[derive(Clone, Debug, PartialEq)]
    /// struct Order {
    ///     id: u32,
    ///     quantity: u16,
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// // The type parameter fixes what every topic of this broker carries.
    /// let broker: Broker<Order> = Broker::new();
    /// let token = CancellationToken::new();
    /// let mut orders = broker.subscribe(token.clone(), "orders", SubscribeOptions::default());
    ///
    /// // The receiver yields `Order` values: no parsing, no downcasting.
    /// broker.publish("orders", Order { id: 7, quantity: 2 });
    /// assert_eq!(orders.recv().await, Some(Order { id: 7, quantity: 2 }));
    ///
    /// token.cancel();
    /// assert_eq!(orders.recv().await, None);
    /// broker.close().await;
    /// # }
    /// ```
    pub fn subscribe(
        &self,
        cancel: CancellationToken,
        topic: &str,
        options: SubscribeOptions<T>,
    ) -> mpsc::Receiver<T> {
        let capacity = match options.buffer {
            0 => DEFAULT_BUFFER,
            buffer => buffer,
        };
        let (sender, receiver) = mpsc::channel(capacity);
        let mut state = self.lock();

        // Dropping the only sender ends the receiver at once. Checking the
        // token before registering means no publish can ever see this
        // subscriber.
        if state.closed || cancel.is_cancelled() {
            return receiver;
        }

        let id = state.next_id;
        state.next_id += 1;
        let stop = cancel.child_token();

        // Spawning under the lock means close, which takes the lock first,
        // either finds this watcher in the tracker or rejects the subscribe.
        self.watchers.spawn(watch(
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
            .or_default()
            .insert(id, subscriber);
        receiver
    }

    /// Sends `msg` to every current subscriber of `topic`.
    ///
    /// Never blocks and never panics. A subscriber whose buffer is full
    /// misses this message, and its `on_drop` callback receives it. A
    /// subscriber whose token is cancelled, or whose receiver was dropped,
    /// gets nothing and is removed here. After [`Broker::close`] this does
    /// nothing.
    ///
    /// The contract is at most one clone of `msg` per subscriber. This
    /// implementation clones it for every live subscriber but the last one,
    /// which receives `msg` itself, so N live subscribers cost N - 1 clones.
    /// A full subscriber costs a clone only when it has an `on_drop`
    /// callback. When `topic` has no live subscriber, publish clones nothing
    /// and makes no heap allocation.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    ///
    /// use task06_generic::{Broker, SubscribeOptions};
    /// use tokio_util::sync::CancellationToken;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let broker: Broker<u64> = Broker::new();
    /// let missed = Arc::new(Mutex::new(Vec::new()));
    /// let record = Arc::clone(&missed);
    /// let options = SubscribeOptions::default()
    ///     .with_buffer(1)
    ///     .with_on_drop(move |reading| record.lock().unwrap().push(reading));
    /// let mut readings = broker.subscribe(CancellationToken::new(), "temperature", options);
    ///
    /// // The buffer has room for one reading, so the second goes to on_drop.
    /// broker.publish("temperature", 21);
    /// broker.publish("temperature", 22);
    /// assert_eq!(readings.recv().await, Some(21));
    /// assert_eq!(*missed.lock().unwrap(), [22]);
    /// broker.close().await;
    /// # }
    /// ```
    pub fn publish(&self, topic: &str, msg: T) {
        // Stays empty, and so unallocated, unless a full buffer has a
        // callback.
        let mut dropped = Vec::new();
        {
            let mut state = self.lock();
            let Some(subscribers) = state.topics.get_mut(topic) else {
                return;
            };

            // The watcher removes a cancelled subscriber soon, but not before
            // cancel() returns, so publish checks the token too. Removing the
            // dead first leaves only live subscribers, so the last one is
            // known and no copy is made for a subscriber that will not read.
            subscribers.retain(|_, subscriber| subscriber.is_live());

            // Every live subscriber but the last gets a clone; the last one
            // gets the original.
            let mut live = subscribers.values();
            if let Some(mut current) = live.next() {
                for next in live {
                    if let Some(missed) = current.offer(|| msg.clone()) {
                        dropped.push(missed);
                    }
                    current = next;
                }
                if let Some(missed) = current.offer(|| msg) {
                    dropped.push(missed);
                }
            }
            if subscribers.is_empty() {
                state.topics.remove(topic);
            }
        }

        // Callbacks run without the lock, so one that publishes cannot
        // deadlock.
        for (on_drop, msg) in dropped {
            on_drop(msg);
        }
    }

    /// Closes the broker: every receiver yields what it has buffered, then
    /// ends, and every background task of the broker finishes.
    ///
    /// Returns once the last watcher task has finished. Calling it again
    /// does nothing. Afterwards publish does nothing and subscribe returns
    /// receivers that have already ended. Close never cancels a token that
    /// the caller passed to subscribe.
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

        // Cancelling each child token stops its watcher and leaves the
        // caller's tokens alone. Dropping `topics` drops the senders.
        for subscriber in topics.values().flat_map(HashMap::values) {
            subscriber.stop.cancel();
        }
        drop(topics);

        // `wait` returns only when the tracker is closed and empty.
        self.watchers.close();
        self.watchers.wait().await;
    }

    /// Returns the number of subscribers of `topic`.
    ///
    /// It is 0 for a topic without subscribers and after close. A cancelled
    /// subscriber may count until the broker has had a moment to remove it,
    /// but not once its receiver has ended.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        self.lock().topics.get(topic).map_or(0, HashMap::len)
    }

    /// Returns the number of topics that have at least one subscriber.
    pub fn topic_count(&self) -> usize {
        self.lock().topics.len()
    }
}

impl<T> Broker<T> {
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
        let state = self.lock();
        f.debug_struct("Broker")
            .field("closed", &state.closed)
            .field("topic_count", &state.topics.len())
            .field("watchers", &self.watchers.len())
            .finish()
    }
}

impl<T> Drop for Broker<T> {
    fn drop(&mut self) {
        // Without this, the watchers of a broker dropped without close would
        // wait for tokens that may never be cancelled.
        for subscriber in self.lock().topics.values().flat_map(HashMap::values) {
            subscriber.stop.cancel();
        }
    }
}

/// Waits until one subscription ends, then removes it from the map.
///
/// `sender` is a copy of the subscription's sender, kept to notice a dropped
/// receiver. Returning drops it, so the receiver ends only after the entry is
/// gone.
async fn watch<T>(
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
    let Some(subscribers) = state.topics.get_mut(&topic) else {
        return;
    };
    subscribers.remove(&id);
    if subscribers.is_empty() {
        state.topics.remove(&topic);
    }
}

// Every critical section leaves the state consistent, so a panic elsewhere
// while the lock was held does not make the data unusable.
fn lock<T>(state: &Mutex<State<T>>) -> MutexGuard<'_, State<T>> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

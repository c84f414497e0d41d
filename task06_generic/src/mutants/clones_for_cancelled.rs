//! Mutant: publish clones the message for a subscriber before checking that
//! it is still live.
//!
//! Each subscriber's copy is made first, and only then does publish look at
//! the subscriber's token. A cancelled subscriber that its watcher has not
//! removed yet still costs a clone, which is dropped at once. Right after a
//! parent token ends many subscriptions, every publish to their topics
//! clones the message for each of them until the watchers have run.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Buffer size of a subscription whose options ask for a buffer of 0.
pub const DEFAULT_BUFFER: usize = 16;

type OnDrop<T> = Arc<dyn Fn(T) + Send + Sync>;

/// Options for one subscription.
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

/// An in-process publish/subscribe broker for messages of type `T`, whose
/// subscriptions end when their cancellation token is cancelled.
pub struct Broker<T> {
    state: Arc<Mutex<State<T>>>,
    watchers: TaskTracker,
}

struct State<T> {
    closed: bool,
    next_id: u64,
    topics: HashMap<String, HashMap<u64, Subscriber<T>>>,
}

struct Subscriber<T> {
    sender: mpsc::Sender<T>,
    on_drop: Option<OnDrop<T>>,
    stop: CancellationToken,
}

impl<T> Subscriber<T> {
    fn is_live(&self) -> bool {
        !self.stop.is_cancelled() && !self.sender.is_closed()
    }

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
        if state.closed || cancel.is_cancelled() {
            return receiver;
        }

        let id = state.next_id;
        state.next_id += 1;
        let stop = cancel.child_token();
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
    pub fn publish(&self, topic: &str, msg: T) {
        let mut dropped = Vec::new();
        {
            let mut state = self.lock();
            let Some(subscribers) = state.topics.get_mut(topic) else {
                return;
            };
            subscribers.retain(|_, subscriber| {
                let copy = msg.clone();
                if !subscriber.is_live() {
                    return false;
                }
                if let Some(missed) = subscriber.offer(|| copy) {
                    dropped.push(missed);
                }
                true
            });
            if subscribers.is_empty() {
                state.topics.remove(topic);
            }
        }

        for (on_drop, msg) in dropped {
            on_drop(msg);
        }
    }

    /// Closes the broker: every receiver yields what it has buffered, then
    /// ends, and every background task of the broker finishes.
    pub async fn close(&self) {
        let topics = {
            let mut state = self.lock();
            state.closed = true;
            std::mem::take(&mut state.topics)
        };
        for subscriber in topics.values().flat_map(HashMap::values) {
            subscriber.stop.cancel();
        }
        drop(topics);

        self.watchers.close();
        self.watchers.wait().await;
    }

    /// Returns the number of subscribers of `topic`.
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
        f.debug_struct("Broker").finish_non_exhaustive()
    }
}

impl<T> Drop for Broker<T> {
    fn drop(&mut self) {
        for subscriber in self.lock().topics.values().flat_map(HashMap::values) {
            subscriber.stop.cancel();
        }
    }
}

/// Waits until one subscription ends, then removes it from the map.
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

fn lock<T>(state: &Mutex<State<T>>) -> MutexGuard<'_, State<T>> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

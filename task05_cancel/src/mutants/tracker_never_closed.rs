//! Mutant: close waits on a task tracker that it never closed.
//!
//! `TaskTracker::wait` returns once the tracker is closed *and* empty; a
//! tracker that is still open may receive new tasks, so it is never done.
//! This close stops every watcher and then waits, but it never calls
//! `TaskTracker::close`, so the wait never returns, even though every watcher
//! has finished. Every caller of `close().await` hangs.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Buffer size of a subscription whose options ask for a buffer of 0.
pub const DEFAULT_BUFFER: usize = 16;

/// Options for one subscription.
#[derive(Clone, Default)]
pub struct SubscribeOptions {
    /// Number of messages the receiver buffers; 0 means [`DEFAULT_BUFFER`].
    pub buffer: usize,
    /// Callback that receives each message this subscriber misses because
    /// its buffer is full.
    pub on_drop: Option<Arc<dyn Fn(String) + Send + Sync>>,
}

impl SubscribeOptions {
    /// Sets the buffer size; 0 means [`DEFAULT_BUFFER`].
    pub fn with_buffer(mut self, buffer: usize) -> SubscribeOptions {
        self.buffer = buffer;
        self
    }

    /// Sets the callback that receives each message dropped for a full buffer.
    pub fn with_on_drop<F>(mut self, on_drop: F) -> SubscribeOptions
    where
        F: Fn(String) + Send + Sync + 'static,
    {
        self.on_drop = Some(Arc::new(on_drop));
        self
    }
}

impl fmt::Debug for SubscribeOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscribeOptions")
            .field("buffer", &self.buffer)
            .field("on_drop", &self.on_drop.as_ref().map(|_| "Fn(String)"))
            .finish()
    }
}

/// An in-process publish/subscribe broker whose subscriptions end when their
/// cancellation token is cancelled.
#[derive(Debug, Default)]
pub struct Broker {
    state: Arc<Mutex<State>>,
    watchers: TaskTracker,
}

#[derive(Debug, Default)]
struct State {
    closed: bool,
    next_id: u64,
    // A topic has an entry only while it has at least one subscriber.
    topics: HashMap<String, HashMap<u64, Subscriber>>,
}

struct Subscriber {
    sender: mpsc::Sender<String>,
    on_drop: Option<Arc<dyn Fn(String) + Send + Sync>>,
    // A child of the caller's token. Cancelling it stops only this
    // subscription's watcher.
    stop: CancellationToken,
}

impl fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("sender", &self.sender)
            .field("on_drop", &self.on_drop.as_ref().map(|_| "Fn(String)"))
            .field("stop", &self.stop)
            .finish()
    }
}

impl Broker {
    /// Creates an open broker with no subscribers.
    pub fn new() -> Broker {
        Broker::default()
    }

    /// Subscribes to `topic` until `cancel` is cancelled, and returns the
    /// receiver.
    pub fn subscribe(
        &self,
        cancel: CancellationToken,
        topic: &str,
        options: SubscribeOptions,
    ) -> mpsc::Receiver<String> {
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
    pub fn publish(&self, topic: &str, msg: String) {
        let mut dropped = Vec::new();
        {
            let mut state = self.lock();
            let Some(subscribers) = state.topics.get_mut(topic) else {
                return;
            };

            // The watcher removes a cancelled subscriber soon, but not before
            // cancel() returns, so publish checks the token too.
            subscribers.retain(|_, subscriber| {
                if subscriber.stop.is_cancelled() {
                    return false;
                }
                match subscriber.sender.try_send(msg.clone()) {
                    Ok(()) => true,
                    Err(TrySendError::Full(msg)) => {
                        if let Some(on_drop) = &subscriber.on_drop {
                            dropped.push((Arc::clone(on_drop), msg));
                        }
                        true
                    }
                    Err(TrySendError::Closed(_)) => false,
                }
            });
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

        // `wait` returns once every watcher has finished.
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

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        // Without this, the watchers of a broker dropped without close would
        // wait for tokens that may never be cancelled.
        for subscriber in self.lock().topics.values().flat_map(HashMap::values) {
            subscriber.stop.cancel();
        }
    }
}

/// Waits until one subscription ends, then removes it from the map.
async fn watch(
    state: Arc<Mutex<State>>,
    topic: String,
    id: u64,
    stop: CancellationToken,
    sender: mpsc::Sender<String>,
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
fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

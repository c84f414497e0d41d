//! Mutant: publish holds the subscriber lock across an `.await`, which
//! deadlocks unsubscribe and close.
//!
//! Holding a `std::sync::MutexGuard` across `send(..).await` makes the
//! publish future non-`Send`, and `tokio::spawn` rejects it. The tempting fix
//! is `tokio::sync::Mutex`, whose guard is `Send`, and the compiler goes
//! quiet. Publish now keeps the lock for as long as it waits for a Block
//! subscriber. The synchronous methods cannot `.await` the lock, and
//! `blocking_lock` panics inside a runtime, so they spin on `try_lock`.
//! Unsubscribe and close are what would release the waiting publisher, and
//! they never get the lock: the thread that calls them spins forever.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Weak};

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Mutex, MutexGuard, mpsc, watch};

/// Buffer size, in messages, that a subscriber gets when its options set
/// `buffer` to 0.
pub const DEFAULT_BUFFER: usize = 16;

/// Rule that publish follows for a subscriber whose buffer is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Policy {
    /// The subscriber loses the message, and its `on_drop` callback gets it.
    #[default]
    Drop,
    /// Publish waits until the subscriber has space.
    Block,
}

type DropCallback = Arc<dyn Fn(String) + Send + Sync>;

/// Options of one subscription: its policy, buffer size and drop callback.
#[derive(Clone, Default)]
pub struct SubscribeOptions {
    /// Rule that publish follows when this subscriber's buffer is full.
    pub policy: Policy,
    /// Number of messages the buffer holds; 0 means [`DEFAULT_BUFFER`].
    pub buffer: usize,
    /// Callback that gets each message lost to a full buffer.
    pub on_drop: Option<Arc<dyn Fn(String) + Send + Sync>>,
}

impl SubscribeOptions {
    /// Returns the options of a [`Policy::Block`] subscriber.
    pub fn block() -> SubscribeOptions {
        SubscribeOptions {
            policy: Policy::Block,
            ..SubscribeOptions::default()
        }
    }

    /// Sets the buffer size in messages; 0 means [`DEFAULT_BUFFER`].
    pub fn buffer(mut self, buffer: usize) -> SubscribeOptions {
        self.buffer = buffer;
        self
    }

    /// Sets the callback that gets each message lost to a full buffer.
    pub fn on_drop(
        mut self,
        callback: impl Fn(String) + Send + Sync + 'static,
    ) -> SubscribeOptions {
        self.on_drop = Some(Arc::new(callback));
        self
    }
}

impl fmt::Debug for SubscribeOptions {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("SubscribeOptions")
            .field("policy", &self.policy)
            .field("buffer", &self.buffer)
            .field("on_drop", &self.on_drop.as_ref().map(|_| "Fn(String)"))
            .finish()
    }
}

/// An in-process publish/subscribe broker for `String` messages.
#[derive(Debug, Default)]
pub struct Broker {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    closed: bool,
    next_id: u64,
    topics: HashMap<String, HashMap<u64, Subscriber>>,
}

enum Subscriber {
    Drop {
        sender: mpsc::Sender<String>,
        on_drop: Option<DropCallback>,
    },
    Block {
        sender: mpsc::Sender<String>,
        presence: watch::Sender<()>,
    },
}

impl fmt::Debug for Subscriber {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subscriber::Drop { sender, .. } => formatter
                .debug_struct("Drop")
                .field("sender", sender)
                .finish_non_exhaustive(),
            Subscriber::Block { sender, .. } => formatter
                .debug_struct("Block")
                .field("sender", sender)
                .finish_non_exhaustive(),
        }
    }
}

struct BlockWait {
    sender: mpsc::Sender<String>,
    presence: watch::Receiver<()>,
}

enum WaitEnd {
    Delivered,
    Released,
    ReceiverDropped,
}

impl BlockWait {
    async fn send(mut self, msg: String) -> WaitEnd {
        tokio::select! {
            biased;
            _ = self.presence.changed() => WaitEnd::Released,
            result = self.sender.send(msg) => match result {
                Ok(()) => WaitEnd::Delivered,
                Err(_) => WaitEnd::ReceiverDropped,
            },
        }
    }
}

impl Broker {
    /// Creates an open broker with no subscribers.
    pub fn new() -> Broker {
        Broker::default()
    }

    /// Subscribes to `topic` with `options` and returns the receiver with
    /// its handle.
    pub fn subscribe(
        &self,
        topic: &str,
        options: SubscribeOptions,
    ) -> (mpsc::Receiver<String>, Unsubscribe) {
        let buffer = if options.buffer == 0 {
            DEFAULT_BUFFER
        } else {
            options.buffer
        };
        let (sender, receiver) = mpsc::channel(buffer);
        let mut state = self.lock();
        if state.closed {
            return (receiver, Unsubscribe::inert());
        }

        let id = state.next_id;
        state.next_id += 1;
        let subscribers = state.topics.entry(topic.to_owned()).or_default();
        let earlier_block_subscribers = subscribers
            .values()
            .filter(|subscriber| matches!(subscriber, Subscriber::Block { .. }))
            .count();
        let subscriber = match options.policy {
            Policy::Drop => Subscriber::Drop {
                sender,
                on_drop: options.on_drop,
            },
            Policy::Block => Subscriber::Block {
                sender,
                presence: watch::Sender::new(()),
            },
        };
        subscribers.insert(id, subscriber);
        drop(state);

        if options.policy == Policy::Block && earlier_block_subscribers > 0 {
            tracing::warn!(
                topic,
                block_subscribers = earlier_block_subscribers + 1,
                "topic has more than one Block subscriber"
            );
        }
        let handle = Unsubscribe {
            state: Arc::downgrade(&self.state),
            topic: topic.to_owned(),
            id,
        };
        (receiver, handle)
    }

    /// Sends `msg` to every current subscriber of `topic`.
    pub async fn publish(&self, topic: &str, msg: String) {
        let mut state = self.state.lock().await;
        let Some(subscribers) = state.topics.get_mut(topic) else {
            return;
        };

        // Drop subscribers first, so a slow Block subscriber cannot delay them.
        let mut dropped = Vec::new();
        let mut receivers_dropped = Vec::new();
        for (&id, subscriber) in subscribers.iter() {
            if let Subscriber::Drop { sender, on_drop } = subscriber {
                match sender.try_send(msg.clone()) {
                    Ok(()) => {}
                    Err(TrySendError::Full(lost)) => {
                        if let Some(on_drop) = on_drop {
                            dropped.push((Arc::clone(on_drop), lost));
                        }
                    }
                    Err(TrySendError::Closed(_)) => receivers_dropped.push(id),
                }
            }
        }

        // Then wait for each Block subscriber. The tokio guard is `Send`, so
        // this compiles with the lock still held.
        for (&id, subscriber) in subscribers.iter() {
            if let Subscriber::Block { sender, presence } = subscriber {
                let wait = BlockWait {
                    sender: sender.clone(),
                    presence: presence.subscribe(),
                };
                if let WaitEnd::ReceiverDropped = wait.send(msg.clone()).await {
                    receivers_dropped.push(id);
                }
            }
        }
        for id in receivers_dropped {
            subscribers.remove(&id);
        }
        if subscribers.is_empty() {
            state.topics.remove(topic);
        }
        drop(state);

        for (on_drop, lost) in dropped {
            on_drop(lost);
        }
    }

    /// Closes the broker: every receiver yields what is buffered, then ends.
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.topics = HashMap::new();
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

/// A handle that removes one subscriber from its topic.
#[must_use = "dropping the handle keeps the subscription; call .unsubscribe() to leave the topic"]
#[derive(Debug)]
pub struct Unsubscribe {
    state: Weak<Mutex<State>>,
    topic: String,
    id: u64,
}

impl Unsubscribe {
    fn inert() -> Unsubscribe {
        Unsubscribe {
            state: Weak::new(),
            topic: String::new(),
            id: 0,
        }
    }

    /// Removes this handle's subscriber from its topic.
    pub fn unsubscribe(&self) {
        let Some(state) = self.state.upgrade() else {
            return;
        };
        let mut state = lock(&state);
        let Some(subscribers) = state.topics.get_mut(&self.topic) else {
            return;
        };
        subscribers.remove(&self.id);
        if subscribers.is_empty() {
            state.topics.remove(&self.topic);
        }
    }
}

// `Mutex::blocking_lock` panics inside a tokio runtime, so the synchronous
// methods spin on `try_lock` until the lock is free.
fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    loop {
        if let Ok(guard) = state.try_lock() {
            return guard;
        }
        std::thread::yield_now();
    }
}

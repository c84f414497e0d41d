//! Mutant: `on_drop` runs while publish holds the broker's lock.
//!
//! Calling the callback right where `try_send` reports a full buffer is the
//! shortest code, and it works as long as the callback only counts or logs.
//! A callback that calls the broker, for example to unsubscribe a subscriber
//! that cannot keep up, needs the lock that its own caller holds. A
//! `std::sync::Mutex` is not reentrant, so that thread waits for itself
//! forever.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, watch};

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

#[derive(Default)]
struct Pending {
    waits: Vec<BlockWait>,
}

struct BlockWait {
    id: u64,
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
        let pending = self.deliver_without_waiting(topic, &msg);

        let mut receivers_dropped = Vec::new();
        for wait in pending.waits {
            let id = wait.id;
            if let WaitEnd::ReceiverDropped = wait.send(msg.clone()).await {
                receivers_dropped.push(id);
            }
        }
        if !receivers_dropped.is_empty() {
            self.remove(topic, &receivers_dropped);
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

    fn deliver_without_waiting(&self, topic: &str, msg: &str) -> Pending {
        let mut pending = Pending::default();
        let mut state = self.lock();
        let Some(subscribers) = state.topics.get_mut(topic) else {
            return pending;
        };

        subscribers.retain(|&id, subscriber| match subscriber {
            Subscriber::Drop { sender, on_drop } => match sender.try_send(msg.to_owned()) {
                Ok(()) => true,
                Err(TrySendError::Full(lost)) => {
                    if let Some(on_drop) = on_drop {
                        on_drop(lost);
                    }
                    true
                }
                Err(TrySendError::Closed(_)) => false,
            },
            Subscriber::Block { sender, presence } => {
                if sender.is_closed() {
                    return false;
                }
                pending.waits.push(BlockWait {
                    id,
                    sender: sender.clone(),
                    presence: presence.subscribe(),
                });
                true
            }
        });
        if subscribers.is_empty() {
            state.topics.remove(topic);
        }
        pending
    }

    fn remove(&self, topic: &str, ids: &[u64]) {
        let mut state = self.lock();
        let Some(subscribers) = state.topics.get_mut(topic) else {
            return;
        };
        for id in ids {
            subscribers.remove(id);
        }
        if subscribers.is_empty() {
            state.topics.remove(topic);
        }
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

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

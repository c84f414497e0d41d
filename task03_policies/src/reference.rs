//! Reference solution: a topic broker whose subscribers choose how they fall
//! behind.
//!
//! Subscribers live in a map from topic to a map from subscriber id to the
//! subscriber, as in task 2. Publishing runs in two phases. The first runs
//! under the lock and never waits: every `Drop` subscriber gets the message
//! with `try_send`, and the `Block` subscribers are copied out. The second
//! runs after the lock is released and waits for space in each `Block`
//! subscriber's buffer. Holding the lock during that wait would deadlock:
//! `unsubscribe` and `close` need the lock, and they are what should release
//! the waiting publisher.
//!
//! Each `Block` subscriber's map entry owns the sending half of a `watch`
//! channel, and a waiting publisher holds a receiver of it. Removing the
//! entry, by unsubscribe or close, drops the sender, so the receiver's
//! `changed()` resolves with an error and the publisher stops waiting.

#![deny(clippy::todo)]

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
    /// Publish never waits for this subscriber.
    #[default]
    Drop,
    /// Publish waits until the subscriber has space, leaves, or the broker
    /// closes. The subscriber loses nothing, but it slows every publisher of
    /// its topic down to its own pace.
    Block,
}

/// The callback that gets each message a subscriber lost to a full buffer.
type DropCallback = Arc<dyn Fn(String) + Send + Sync>;

/// Options of one subscription: its policy, buffer size and drop callback.
///
/// `SubscribeOptions::default()` is a [`Policy::Drop`] subscriber with a
/// buffer of [`DEFAULT_BUFFER`] and no callback.
///
/// # Examples
///
/// ```
/// use task03_policies::{Policy, SubscribeOptions};
///
/// let options = SubscribeOptions::block().buffer(4);
/// assert_eq!(options.policy, Policy::Block);
/// assert_eq!(options.buffer, 4);
/// ```
#[derive(Clone, Default)]
pub struct SubscribeOptions {
    /// Rule that publish follows when this subscriber's buffer is full.
    pub policy: Policy,
    /// Number of messages the subscriber's buffer holds; 0 means
    /// [`DEFAULT_BUFFER`].
    pub buffer: usize,
    /// Callback that gets each message this subscriber loses because its
    /// buffer is full. Only [`Policy::Drop`] subscribers lose messages that
    /// way, so a [`Policy::Block`] subscriber's callback is never called.
    pub on_drop: Option<Arc<dyn Fn(String) + Send + Sync>>,
}

impl SubscribeOptions {
    /// Returns the options of a [`Policy::Block`] subscriber with the
    /// default buffer.
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
    ///
    /// Publish calls it on the publishing task, so it should be quick, such
    /// as incrementing a counter or logging a line.
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

/// An in-process publish/subscribe broker for `String` messages, with a
/// policy per subscriber for when it falls behind.
///
/// All methods take `&self`, and the broker is `Send + Sync`, so it can be
/// shared between tasks and threads in an `Arc`. No method holds the
/// broker's lock across an `.await`.
#[derive(Debug, Default)]
pub struct Broker {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    closed: bool,
    next_id: u64,
    // A topic has an entry only while it has at least one subscriber.
    topics: HashMap<String, HashMap<u64, Subscriber>>,
}

/// One subscriber as the broker stores it.
enum Subscriber {
    Drop {
        sender: mpsc::Sender<String>,
        on_drop: Option<DropCallback>,
    },
    Block {
        sender: mpsc::Sender<String>,
        // Never sent on. Dropping it with the entry releases the publishers
        // that wait for this subscriber.
        presence: watch::Sender<()>,
    },
}

impl fmt::Debug for Subscriber {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subscriber::Drop { sender, on_drop } => formatter
                .debug_struct("Drop")
                .field("sender", sender)
                .field("on_drop", &on_drop.as_ref().map(|_| "Fn(String)"))
                .finish(),
            Subscriber::Block { sender, .. } => formatter
                .debug_struct("Block")
                .field("sender", sender)
                .finish_non_exhaustive(),
        }
    }
}

/// Work that the first phase of a publish leaves for the second.
#[derive(Default)]
struct Pending {
    // Callbacks to call, each with the message its subscriber lost.
    dropped: Vec<(DropCallback, String)>,
    // Block subscribers to wait for.
    waits: Vec<BlockWait>,
}

/// A publisher's hold on one `Block` subscriber, taken under the lock and
/// used after it is released.
struct BlockWait {
    id: u64,
    sender: mpsc::Sender<String>,
    presence: watch::Receiver<()>,
}

/// Outcome of a wait for one `Block` subscriber.
enum WaitEnd {
    Delivered,
    // The subscriber unsubscribed or the broker closed.
    Released,
    ReceiverDropped,
}

impl BlockWait {
    /// Waits until `msg` fits the subscriber's buffer or the subscriber is
    /// gone.
    async fn send(mut self, msg: String) -> WaitEnd {
        tokio::select! {
            // Checked first, so a subscriber that has left never gets the
            // message, even when its buffer frees up at the same moment.
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
    ///
    /// The receiver buffers `options.buffer` messages, or [`DEFAULT_BUFFER`]
    /// when that is 0. When a [`Policy::Block`] subscriber joins a topic that
    /// already has one, this logs a warning naming the topic, because any
    /// one of them can now hold back every publisher of the topic. Calling
    /// [`Unsubscribe::unsubscribe`] on the handle removes this subscriber,
    /// and dropping the handle does not. After [`Broker::close`] the receiver
    /// is already ended and the handle does nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use task03_policies::{Broker, SubscribeOptions};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let broker = Broker::new();
    /// let lost = Arc::new(Mutex::new(Vec::new()));
    /// let record = Arc::clone(&lost);
    /// let options = SubscribeOptions::default()
    ///     .buffer(1)
    ///     .on_drop(move |msg| record.lock().unwrap().push(msg));
    /// let (mut rx, _handle) = broker.subscribe("news", options);
    ///
    /// // The buffer has room for one message, so the second is dropped.
    /// broker.publish("news", "first".to_owned()).await;
    /// broker.publish("news", "second".to_owned()).await;
    /// assert_eq!(rx.recv().await.as_deref(), Some("first"));
    /// assert_eq!(*lost.lock().unwrap(), ["second"]);
    /// # }
    /// ```
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

        // Dropping the only sender ends the receiver at once.
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
                "topic has more than one Block subscriber; any one of them can stall every \
                 publisher of the topic"
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
    ///
    /// Every [`Policy::Drop`] subscriber gets the message at once if its
    /// buffer has room. Otherwise it loses the message, and its `on_drop`
    /// callback is called with it before publish returns. Only then does
    /// publish wait, in turn, for space in each [`Policy::Block`]
    /// subscriber's buffer, so a slow `Block` subscriber never delays a
    /// `Drop` subscriber. A wait ends without delivering as soon as that
    /// subscriber unsubscribes, drops its receiver, or the broker closes.
    ///
    /// A subscriber whose receiver was dropped is removed, and its `on_drop`
    /// is not called. With no subscribers on `topic`, or after
    /// [`Broker::close`], publish returns at once. It never panics.
    ///
    /// The broker's lock is released before any wait, and the callbacks run
    /// after it is released, so they may call the broker. The returned
    /// future is `Send`.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future while it waits leaves the message undelivered to
    /// the `Block` subscribers it has not reached yet. `Drop` subscribers
    /// already have it by then.
    ///
    /// # Examples
    ///
    /// ```
    /// use task03_policies::{Broker, SubscribeOptions};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let broker = std::sync::Arc::new(Broker::new());
    /// let (mut rx, _handle) = broker.subscribe("jobs", SubscribeOptions::block().buffer(1));
    /// broker.publish("jobs", "one".to_owned()).await;
    ///
    /// // The buffer is full, so this publish waits until the receiver reads.
    /// let publisher = tokio::spawn({
    ///     let broker = std::sync::Arc::clone(&broker);
    ///     async move { broker.publish("jobs", "two".to_owned()).await }
    /// });
    /// assert_eq!(rx.recv().await.as_deref(), Some("one"));
    /// publisher.await.unwrap();
    /// assert_eq!(rx.recv().await.as_deref(), Some("two"));
    /// # }
    /// ```
    pub async fn publish(&self, topic: &str, msg: String) {
        // The guard lives only inside this call, so no `.await` below can
        // hold it. The compiler checks that by scope: a std `MutexGuard` is
        // not `Send`, and a `drop(guard)` before an `.await` would not
        // satisfy the check, but the end of a function does.
        let pending = self.deliver_without_waiting(topic, &msg);

        for (on_drop, lost) in pending.dropped {
            on_drop(lost);
        }

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
    ///
    /// Every publisher waiting for a [`Policy::Block`] subscriber is released
    /// without delivering. Calling it again does nothing. Afterwards publish
    /// does nothing and subscribe returns receivers that are already ended.
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        // Dropping the senders ends the receivers, and dropping the presence
        // senders releases the waiting publishers.
        state.topics = HashMap::new();
    }

    /// Returns the number of subscribers of `topic`.
    ///
    /// It is 0 for a topic without subscribers and after close. A subscriber
    /// whose receiver was dropped counts until a publish on its topic or its
    /// own unsubscribe removes it.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        self.lock().topics.get(topic).map_or(0, HashMap::len)
    }

    /// Returns the number of topics that have at least one subscriber.
    pub fn topic_count(&self) -> usize {
        self.lock().topics.len()
    }

    /// Delivers to the `Drop` subscribers of `topic` under the lock and
    /// returns what publish must do after releasing it.
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
                        pending.dropped.push((Arc::clone(on_drop), lost));
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

    /// Removes the subscribers `ids` of `topic`, and the topic when it is
    /// left empty. Ids that are already gone are skipped.
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
///
/// Dropping the handle does not unsubscribe, because
/// `let (rx, _) = broker.subscribe(…)` drops it at once, and the subscriber
/// would leave before it received anything. The handle does not keep the
/// broker alive.
#[must_use = "dropping the handle keeps the subscription; call .unsubscribe() to leave the topic"]
#[derive(Debug)]
pub struct Unsubscribe {
    state: Weak<Mutex<State>>,
    topic: String,
    id: u64,
}

impl Unsubscribe {
    // A handle for a subscription that was never registered.
    fn inert() -> Unsubscribe {
        Unsubscribe {
            state: Weak::new(),
            topic: String::new(),
            id: 0,
        }
    }

    /// Removes this handle's subscriber from its topic.
    ///
    /// It returns at once, also while a publisher waits for this
    /// subscriber, and that publisher then stops waiting without delivering.
    /// Once this returns, no message published later reaches the receiver:
    /// it yields what was already buffered, then ends. Calling it again,
    /// after [`Broker::close`], or after the broker was dropped does nothing.
    /// It never affects any other subscriber.
    pub fn unsubscribe(&self) {
        let Some(state) = self.state.upgrade() else {
            return;
        };
        let mut state = lock(&state);
        let Some(subscribers) = state.topics.get_mut(&self.topic) else {
            return;
        };

        // Removing drops the sender, which ends the receiver once drained,
        // and for a Block subscriber the presence sender, which releases
        // its waiting publishers.
        subscribers.remove(&self.id);
        if subscribers.is_empty() {
            state.topics.remove(&self.topic);
        }
    }
}

// Every critical section leaves the state consistent, so a panic elsewhere
// while the lock was held does not make the data unusable.
fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

//! Mutant: cancelled subscriptions are removed later, by the next publish.
//!
//! A task per subscription felt expensive, so the broker starts none. It
//! notices a cancelled token the next time it looks: publish removes such
//! subscribers, and the counts skip them. The counts are right at once, but
//! nothing ends a cancelled receiver until someone publishes to its topic,
//! which may be never, so a consumer looping on `recv().await` waits forever.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::CancellationToken;

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
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    closed: bool,
    topics: HashMap<String, Vec<Subscriber>>,
}

struct Subscriber {
    sender: mpsc::Sender<String>,
    on_drop: Option<Arc<dyn Fn(String) + Send + Sync>>,
    cancel: CancellationToken,
}

impl Subscriber {
    fn is_live(&self) -> bool {
        !self.cancel.is_cancelled() && !self.sender.is_closed()
    }
}

impl fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("sender", &self.sender)
            .field("on_drop", &self.on_drop.as_ref().map(|_| "Fn(String)"))
            .field("cancel", &self.cancel)
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
        if state.closed || cancel.is_cancelled() {
            return receiver;
        }

        // No task watches the token; publish and the counts check it.
        state
            .topics
            .entry(topic.to_owned())
            .or_default()
            .push(Subscriber {
                sender,
                on_drop: options.on_drop,
                cancel,
            });
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

            // Removing a cancelled subscriber drops its sender, which ends
            // its receiver.
            subscribers.retain(|subscriber| {
                if subscriber.cancel.is_cancelled() {
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
        for (on_drop, msg) in dropped {
            on_drop(msg);
        }
    }

    /// Closes the broker: every receiver yields what it has buffered, then
    /// ends.
    pub async fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.topics.clear();
    }

    /// Returns the number of subscribers of `topic`, skipping cancelled ones.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        let state = self.lock();
        state.topics.get(topic).map_or(0, |subscribers| {
            subscribers
                .iter()
                .filter(|subscriber| subscriber.is_live())
                .count()
        })
    }

    /// Returns the number of topics that have at least one live subscriber.
    pub fn topic_count(&self) -> usize {
        let state = self.lock();
        state
            .topics
            .values()
            .filter(|subscribers| subscribers.iter().any(Subscriber::is_live))
            .count()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

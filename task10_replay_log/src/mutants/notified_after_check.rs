//! Mutant: recv() checks the ring under the lock, releases it, and only
//! then creates the Notify's `Notified` future it waits on.
//!
//! The design is otherwise sound: one `Notify` that append and close wake
//! with `notify_waiters()`, and a cursor per subscription. But
//! `notify_waiters()` wakes only the `Notified` futures that exist when it
//! runs. An append that lands after the check and before `notified()` wakes
//! no subscription, and the subscription sleeps with a message waiting. No
//! await lies in that gap, so paused time never reaches it, and real threads
//! hit it about once in tens of thousands of tries. The grading suite
//! reaches it by pausing the subscriber right after it releases the lock.

#![deny(clippy::todo)]

use std::collections::VecDeque;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use crate::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The error of [`Log::subscribe`] for a start offset the log cannot serve.
///
/// This type is complete; the work is in [`Log`] and [`Subscription`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    /// The requested offset was evicted. `oldest` is the oldest offset the
    /// log still keeps, the earliest start that can succeed.
    #[error(
        "offset {requested} was evicted; the oldest offset still held is {oldest}, so \
         subscribe from {oldest} or later"
    )]
    Evicted {
        /// The start offset that was requested.
        requested: u64,
        /// The oldest offset still held when subscribe ran.
        oldest: u64,
    },
    /// The requested offset lies beyond the head, the offset that the next
    /// append will get.
    #[error(
        "offset {requested} is beyond the head {head}; subscribe from {head} or earlier, \
         where {head} means only messages appended from now on"
    )]
    Future {
        /// The start offset that was requested.
        requested: u64,
        /// The head when subscribe ran.
        head: u64,
    },
}

/// The error item of a subscription that fell behind: the offsets in
/// `missed` were evicted before it read them.
///
/// The subscription goes on with offset `missed.end`, the oldest offset the
/// log held at that moment. This type is complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "lagged behind the log: offsets {}..{} were evicted before they were read; \
     the subscription continues at offset {}",
    .missed.start,
    .missed.end,
    .missed.end
)]
pub struct Lagged {
    /// The offsets that this subscription will never receive.
    pub missed: Range<u64>,
}

struct State<T> {
    ring: VecDeque<T>,
    capacity: usize,
    head: u64,
    closed: bool,
}

impl<T> State<T> {
    fn oldest(&self) -> u64 {
        self.head - self.ring.len() as u64
    }
}

struct Inner<T> {
    state: Mutex<State<T>>,
    notify: Notify,
}

impl<T> Inner<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic elsewhere while the lock was held leaves it usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A log of the most recent messages, numbered by offset.
pub struct Log<T> {
    inner: Arc<Inner<T>>,
}

/// A cursor into a [`Log`] that replays, then follows new messages.
pub struct Subscription<T> {
    inner: Arc<Inner<T>>,
    cursor: u64,
    cancel: CancellationToken,
    ended: bool,
}

impl<T: Clone + Send + 'static> Log<T> {
    /// Creates an open, empty log that keeps up to `capacity` messages.
    pub fn new(capacity: usize) -> Log<T> {
        assert!(capacity > 0, "capacity must be at least 1");
        Log {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    ring: VecDeque::with_capacity(capacity),
                    capacity,
                    head: 0,
                    closed: false,
                }),
                notify: Notify::new(),
            }),
        }
    }

    /// Appends `message` and returns its offset.
    pub fn append(&self, message: T) -> u64 {
        let mut state = self.inner.lock();
        if state.closed {
            return state.head;
        }
        if state.ring.len() == state.capacity {
            state.ring.pop_front();
        }
        state.ring.push_back(message);
        let offset = state.head;
        state.head += 1;
        drop(state);
        self.inner.notify.notify_waiters();
        offset
    }

    /// Subscribes from offset `from`.
    pub fn subscribe(
        &self,
        cancel: CancellationToken,
        from: u64,
    ) -> Result<Subscription<T>, SubscribeError> {
        let state = self.inner.lock();
        let oldest = state.oldest();
        if from < oldest {
            return Err(SubscribeError::Evicted {
                requested: from,
                oldest,
            });
        }
        if from > state.head {
            return Err(SubscribeError::Future {
                requested: from,
                head: state.head,
            });
        }
        drop(state);
        Ok(Subscription {
            inner: Arc::clone(&self.inner),
            cursor: from,
            cancel,
            ended: false,
        })
    }

    /// Returns the offset that the next append will get.
    pub fn head(&self) -> u64 {
        self.inner.lock().head
    }

    /// Returns the oldest offset still held, or the head when empty.
    pub fn oldest(&self) -> u64 {
        self.inner.lock().oldest()
    }

    /// Closes the log and wakes every waiting subscription.
    pub fn close(&self) {
        self.inner.lock().closed = true;
        self.inner.notify.notify_waiters();
    }
}

impl<T> Drop for Log<T> {
    fn drop(&mut self) {
        self.inner.lock().closed = true;
        self.inner.notify.notify_waiters();
    }
}

impl<T> fmt::Debug for Log<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Log").finish_non_exhaustive()
    }
}

impl<T: Clone + Send + 'static> Subscription<T> {
    /// Receives the next message, a `Lagged` item, or `None` once ended.
    pub async fn recv(&mut self) -> Option<Result<(u64, T), Lagged>> {
        if self.ended || self.cancel.is_cancelled() {
            self.ended = true;
            return None;
        }
        let inner = Arc::clone(&self.inner);
        loop {
            {
                let state = inner.lock();
                let oldest = state.oldest();
                if self.cursor < oldest {
                    let missed = self.cursor..oldest;
                    self.cursor = oldest;
                    return Some(Err(Lagged { missed }));
                }
                if self.cursor < state.head {
                    let index = (self.cursor - oldest) as usize;
                    let offset = self.cursor;
                    self.cursor += 1;
                    return Some(Ok((offset, state.ring[index].clone())));
                }
                if state.closed {
                    self.ended = true;
                    return None;
                }
            }
            let notified = inner.notify.notified();
            tokio::pin!(notified);
            tokio::select! {
                biased;
                () = self.cancel.cancelled() => {
                    self.ended = true;
                    return None;
                }
                () = &mut notified => {}
            }
        }
    }
}

impl<T> fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}

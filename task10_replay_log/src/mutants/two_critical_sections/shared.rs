//! Mutant core: the replay snapshot and the start of live delivery are taken
//! under two separate lock acquisitions.
//!
//! This is the state that the `two_critical_sections` mutant shares with its
//! subscriptions. Its ring, append and close are the reference's. The reader
//! differs: subscribe copies the held messages from the start offset out of
//! the ring under the lock, so that the replay is read without taking the
//! lock for each message. Once that copy runs out, the reader takes the lock
//! again and goes live at the head as it is then. A message appended between
//! the two critical sections is in neither: it is lost, and the reader jumps
//! from the last replayed offset to a later one. The loom model in the
//! `task10_loom` crate finds that interleaving; it compiles this file with
//! loom's `Mutex` and `Arc` under `cfg(loom)`.

use std::collections::VecDeque;
use std::fmt;
use std::ops::Range;
use std::sync::PoisonError;
use std::task::{Context, Poll, Waker};

#[cfg(not(loom))]
use crate::sync::{Mutex, MutexGuard};
#[cfg(loom)]
use loom::sync::{Arc, Mutex, MutexGuard};
#[cfg(not(loom))]
use std::sync::Arc;

/// The log's state behind its lock, shared by the log and its readers.
pub(crate) struct Shared<T> {
    state: Mutex<State<T>>,
}

struct State<T> {
    // The messages at offsets `head - ring.len()` up to `head`, oldest first.
    ring: VecDeque<T>,
    capacity: usize,
    // The offset of the next append, which is also the number of messages
    // appended so far.
    head: u64,
    closed: bool,
    next_reader_id: u64,
    // Readers that found nothing to read, each with the waker of its latest
    // poll. An append takes them all.
    waiting: Vec<(u64, Waker)>,
}

impl<T> State<T> {
    fn oldest(&self) -> u64 {
        self.head - self.ring.len() as u64
    }
}

/// The reason a reader cannot start at the requested offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StartError {
    /// The offset was evicted; `oldest` is the oldest offset still held.
    Evicted { oldest: u64 },
    /// The offset lies beyond `head`, the offset of the next append.
    Future { head: u64 },
}

/// The outcome of one read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Read<T> {
    /// The message at an offset.
    Message(u64, T),
    /// Offsets evicted before the reader got to them. The reader goes on at
    /// the end of the range, the oldest offset still held.
    Lagged(Range<u64>),
    /// The log is closed and the reader has read up to its head.
    Closed,
}

impl<T> Shared<T> {
    /// Creates an open, empty log state that keeps up to `capacity` messages.
    ///
    /// It reserves room for `capacity` messages at once, so that append never
    /// allocates.
    ///
    /// # Panics
    ///
    /// Panics when `capacity` is 0.
    pub(crate) fn new(capacity: usize) -> Shared<T> {
        assert!(capacity > 0, "a log needs a capacity of at least 1 message");
        Shared {
            state: Mutex::new(State {
                ring: VecDeque::with_capacity(capacity),
                capacity,
                head: 0,
                closed: false,
                next_reader_id: 0,
                waiting: Vec::new(),
            }),
        }
    }

    /// Appends `message`, evicting the oldest message when the ring is full,
    /// wakes every waiting reader, and returns the new message's offset.
    ///
    /// After [`Shared::close`] it stores nothing and returns the head.
    pub(crate) fn append(&self, message: T) -> u64 {
        let mut state = self.lock();
        if state.closed {
            return state.head;
        }

        // Popping the front of a full ring and pushing the back moves no
        // other message, so append takes the same time at any length.
        let evicted = if state.ring.len() == state.capacity {
            state.ring.pop_front()
        } else {
            None
        };
        state.ring.push_back(message);
        let offset = state.head;
        state.head += 1;

        // Taking an empty list allocates nothing. Waking after the unlock
        // lets a woken reader take the lock at once.
        let waiting = std::mem::take(&mut state.waiting);
        drop(state);
        drop(evicted);
        for (_, waker) in waiting {
            waker.wake();
        }
        offset
    }

    /// Closes the log: readers read up to the head, then get
    /// [`Read::Closed`]. Calling it again does nothing.
    pub(crate) fn close(&self) {
        let waiting = {
            let mut state = self.lock();
            state.closed = true;
            std::mem::take(&mut state.waiting)
        };
        for (_, waker) in waiting {
            waker.wake();
        }
    }

    /// Returns the offset of the next append.
    pub(crate) fn head(&self) -> u64 {
        self.lock().head
    }

    /// Returns the oldest offset still held, which is the head when the log
    /// is empty.
    pub(crate) fn oldest(&self) -> u64 {
        self.lock().oldest()
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Every critical section leaves the state consistent, so a panic
        // elsewhere while the lock was held leaves it usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Shared")
            .field("capacity", &state.capacity)
            .field("oldest", &state.oldest())
            .field("head", &state.head)
            .field("closed", &state.closed)
            .field("waiting", &state.waiting.len())
            .finish()
    }
}

/// The read side of one subscription: a copy of the replay, then a cursor
/// into the shared ring.
pub(crate) struct Reader<T> {
    shared: Arc<Shared<T>>,
    id: u64,
    // The held messages from the start offset, copied out at subscribe.
    replay: VecDeque<(u64, T)>,
    // The offset this reader delivers next once the replay is drained;
    // `None` until then.
    cursor: Option<u64>,
}

impl<T: Clone> Reader<T> {
    /// Starts a reader at offset `from`, which must lie between the oldest
    /// held offset and the head, both included, and copies the held messages
    /// from `from` on.
    ///
    /// # Errors
    ///
    /// Returns [`StartError::Evicted`] when `from` is older than the oldest
    /// held offset, and [`StartError::Future`] when it lies beyond the head.
    pub(crate) fn start(shared: Arc<Shared<T>>, from: u64) -> Result<Reader<T>, StartError> {
        let (id, replay) = {
            let mut state = shared.lock();
            let oldest = state.oldest();
            if from < oldest {
                return Err(StartError::Evicted { oldest });
            }
            if from > state.head {
                return Err(StartError::Future { head: state.head });
            }
            let replay: VecDeque<(u64, T)> = (from..state.head)
                .zip(state.ring.iter().skip((from - oldest) as usize).cloned())
                .collect();
            let id = state.next_reader_id;
            state.next_reader_id += 1;
            (id, replay)
        };
        Ok(Reader {
            shared,
            id,
            replay,
            cursor: None,
        })
    }

    /// Reads the next step: first from the copied replay, then at the cursor,
    /// or registers `cx`'s waker and returns `Poll::Pending` when the cursor
    /// has reached the head.
    pub(crate) fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Read<T>> {
        // The copy needs no lock.
        if let Some((offset, message)) = self.replay.pop_front() {
            return Poll::Ready(Read::Message(offset, message));
        }

        // The replay is drained, so follow the log from its head.
        let mut state = self.shared.lock();
        let cursor = *self.cursor.get_or_insert(state.head);

        let oldest = state.oldest();
        if cursor < oldest {
            self.cursor = Some(oldest);
            return Poll::Ready(Read::Lagged(cursor..oldest));
        }
        if cursor < state.head {
            let index = usize::try_from(cursor - oldest)
                .expect("an index into the ring is below its capacity, which is a usize");
            self.cursor = Some(cursor + 1);
            return Poll::Ready(Read::Message(cursor, state.ring[index].clone()));
        }
        if state.closed {
            return Poll::Ready(Read::Closed);
        }

        let waker = cx.waker();
        match state.waiting.iter_mut().find(|(id, _)| *id == self.id) {
            Some((_, registered)) => registered.clone_from(waker),
            None => state.waiting.push((self.id, waker.clone())),
        }
        Poll::Pending
    }
}

impl<T> Drop for Reader<T> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.waiting.retain(|(id, _)| *id != self.id);
    }
}

impl<T> fmt::Debug for Reader<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader")
            .field("id", &self.id)
            .field("replay", &self.replay.len())
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

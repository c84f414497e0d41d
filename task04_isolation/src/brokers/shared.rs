//! Building blocks shared by the brokers of this module: the subscriber
//! table, the queue in front of a background delivery task, and the step
//! that hands one message to a list of subscribers.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::mpsc;

/// Number of messages each subscriber's channel buffers in every broker of
/// this module. A publish waits while a subscriber's buffer is full.
pub const BUFFER: usize = 16;

/// Subscribers by topic, and whether new subscribers are still accepted.
#[derive(Debug, Default)]
pub(crate) struct Table {
    closed: bool,
    topics: HashMap<String, Vec<mpsc::Sender<String>>>,
}

impl Table {
    /// Adds a subscriber of `topic` and returns its receiver, which has
    /// already ended when the table is closed.
    pub(crate) fn subscribe(&mut self, topic: &str) -> mpsc::Receiver<String> {
        let (sender, receiver) = mpsc::channel(BUFFER);
        // After close the sender is dropped here, which ends the receiver.
        if !self.closed {
            self.topics
                .entry(topic.to_owned())
                .or_default()
                .push(sender);
        }
        receiver
    }

    /// Returns copies of the senders of `topic`, so that a caller can wait
    /// for buffer space without holding the table's lock.
    pub(crate) fn senders(&self, topic: &str) -> Vec<mpsc::Sender<String>> {
        self.topics.get(topic).cloned().unwrap_or_default()
    }

    /// Makes every later subscribe return an ended receiver.
    pub(crate) fn reject_subscribers(&mut self) {
        self.closed = true;
    }

    /// Drops the table's senders, so each receiver ends once it is drained
    /// and no copy of its sender is left elsewhere.
    pub(crate) fn drop_senders(&mut self) {
        self.topics = HashMap::new();
    }

    /// Closes the table: refuses new subscribers and drops the senders.
    pub(crate) fn close(&mut self) {
        self.reject_subscribers();
        self.drop_senders();
    }
}

/// The sending end of the queue between `publish` and a background delivery
/// task. Closing it lets the task finish the queue and then stop.
#[derive(Debug)]
pub(crate) struct WorkQueue<T> {
    sender: Mutex<Option<mpsc::Sender<T>>>,
}

impl<T> WorkQueue<T> {
    /// Creates a queue that holds up to `capacity` items, and returns it with
    /// the receiving end for the delivery task.
    pub(crate) fn new(capacity: usize) -> (WorkQueue<T>, mpsc::Receiver<T>) {
        let (sender, receiver) = mpsc::channel(capacity);
        let queue = WorkQueue {
            sender: Mutex::new(Some(sender)),
        };
        (queue, receiver)
    }

    /// Adds `item` to the queue, waiting while it is full. After
    /// [`WorkQueue::close`] the item is dropped.
    pub(crate) async fn push(&self, item: T) {
        // A copy of the sender, so that the lock is not held while waiting.
        let sender = lock(&self.sender).clone();
        if let Some(sender) = sender {
            // It fails only when the delivery task is gone, and then nobody
            // could deliver the item anyway.
            let _ = sender.send(item).await;
        }
    }

    /// Closes the queue. The delivery task still receives what was queued
    /// before, and then its `recv()` returns `None`.
    pub(crate) fn close(&self) {
        lock(&self.sender).take();
    }
}

/// Sends `msg` to each of `senders` in turn, waiting while a buffer is full.
///
/// A subscriber that dropped its receiver is skipped.
pub(crate) async fn deliver(senders: &[mpsc::Sender<String>], msg: &str) {
    for sender in senders {
        // Sending fails only when the receiver was dropped or closed.
        let _ = sender.send(msg.to_owned()).await;
    }
}

/// Returns the bucket of `topic` among `buckets` buckets, from the 32-bit
/// FNV-1a hash of its bytes, so that the result is the same in every run.
pub(crate) fn bucket_of(topic: &str, buckets: usize) -> usize {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in topic.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash as usize % buckets
}

/// Locks `mutex`, also after a panic in another thread that held it: every
/// critical section here leaves the data consistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

//! Faulty broker: each batch is delivered newest first.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::sleep;

use super::shared::{Table, WorkQueue, deliver, lock};
use crate::PubSub;

/// Time the delivery task waits after the first message of a batch, so that
/// more messages join the batch.
const LINGER: Duration = Duration::from_millis(5);

/// Number of published messages that wait for delivery before `publish`
/// waits for room. A full queue plus the batch's first message is 65
/// messages, more than one per publisher and topic, so a batch taken from a
/// full queue always contains two messages of some publisher on one topic.
const QUEUE: usize = 64;

/// A faulty broker that delivers in batches from a background task and
/// takes each batch from the back.
///
/// `publish` only queues the message. The delivery task takes the first
/// queued message, waits [`LINGER`] of time for more to arrive, and then
/// delivers the batch.
///
/// Fault: the batch is a `Vec` emptied with `pop()`, which takes the newest
/// message first, so within a batch every publisher's messages arrive in
/// reverse. Each message still arrives exactly once, so every receiver's count
/// and set of messages are right. It is meant for the grading suite and for
/// learners' tests.
#[derive(Debug)]
pub struct ReorderingBroker {
    table: Arc<Mutex<Table>>,
    queue: WorkQueue<(String, String)>,
}

impl ReorderingBroker {
    /// Creates an open broker with no subscribers and starts its delivery
    /// task.
    ///
    /// # Panics
    ///
    /// Panics when called outside a tokio runtime, which the delivery task
    /// needs.
    // A `Default` would hide that spawning needs a runtime, so there is none.
    #[allow(clippy::new_without_default)]
    pub fn new() -> ReorderingBroker {
        let table = Arc::new(Mutex::new(Table::default()));
        let (queue, pending) = WorkQueue::new(QUEUE);
        tokio::spawn(deliver_batches_newest_first(pending, Arc::clone(&table)));
        ReorderingBroker { table, queue }
    }
}

/// Delivers the queued messages batch by batch until the queue ends, then
/// ends every receiver.
async fn deliver_batches_newest_first(
    mut pending: mpsc::Receiver<(String, String)>,
    table: Arc<Mutex<Table>>,
) {
    while let Some(first) = pending.recv().await {
        sleep(LINGER).await;
        let mut batch = vec![first];
        while let Ok(next) = pending.try_recv() {
            batch.push(next);
        }

        // The fault: `pop` empties the batch from its newest message.
        while let Some((topic, msg)) = batch.pop() {
            let senders = lock(&table).senders(&topic);
            deliver(&senders, &msg).await;
        }
    }
    lock(&table).drop_senders();
}

impl PubSub for ReorderingBroker {
    fn subscribe(&self, topic: &str) -> mpsc::Receiver<String> {
        lock(&self.table).subscribe(topic)
    }

    async fn publish(&self, topic: &str, msg: String) {
        self.queue.push((topic.to_owned(), msg)).await;
    }

    fn close(&self) {
        // The delivery task drains the queue and then drops the senders.
        lock(&self.table).reject_subscribers();
        self.queue.close();
    }
}

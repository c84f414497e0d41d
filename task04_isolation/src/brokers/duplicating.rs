//! Faulty broker: the last message of each topic is delivered twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::shared::{Table, WorkQueue, deliver, lock};
use crate::PubSub;

/// Number of published messages that wait for delivery before `publish`
/// waits for room.
const QUEUE: usize = 64;

/// A faulty broker that delivers from a background task and, on close,
/// delivers the last message of each topic once more.
///
/// Fault: the delivery task cannot tell whether a close interrupted its most
/// recent delivery of a topic, so after the queue ends it sends that message
/// again to be safe. Every subscriber then gets its topic's last message
/// twice, as the very last thing before its receiver ends. A checker that
/// collects messages into a set, or stops reading after the expected count,
/// never sees the copy. It is meant for the grading suite and for learners'
/// tests.
#[derive(Debug)]
pub struct DuplicatingBroker {
    table: Arc<Mutex<Table>>,
    queue: WorkQueue<(String, String)>,
}

impl DuplicatingBroker {
    /// Creates an open broker with no subscribers and starts its delivery
    /// task.
    ///
    /// # Panics
    ///
    /// Panics when called outside a tokio runtime, which the delivery task
    /// needs.
    // A `Default` would hide that spawning needs a runtime, so there is none.
    #[allow(clippy::new_without_default)]
    pub fn new() -> DuplicatingBroker {
        let table = Arc::new(Mutex::new(Table::default()));
        let (queue, pending) = WorkQueue::new(QUEUE);
        tokio::spawn(deliver_then_repeat_last(pending, Arc::clone(&table)));
        DuplicatingBroker { table, queue }
    }
}

/// Delivers the queued messages in order until the queue ends, then delivers
/// the last message of each topic again and ends every receiver.
async fn deliver_then_repeat_last(
    mut pending: mpsc::Receiver<(String, String)>,
    table: Arc<Mutex<Table>>,
) {
    let mut last_of_topic = HashMap::new();
    while let Some((topic, msg)) = pending.recv().await {
        let senders = lock(&table).senders(&topic);
        deliver(&senders, &msg).await;
        last_of_topic.insert(topic, msg);
    }

    // The fault: every one of these messages was delivered already.
    for (topic, msg) in last_of_topic {
        let senders = lock(&table).senders(&topic);
        deliver(&senders, &msg).await;
    }
    lock(&table).drop_senders();
}

impl PubSub for DuplicatingBroker {
    fn subscribe(&self, topic: &str) -> mpsc::Receiver<String> {
        lock(&self.table).subscribe(topic)
    }

    async fn publish(&self, topic: &str, msg: String) {
        self.queue.push((topic.to_owned(), msg)).await;
    }

    fn close(&self) {
        lock(&self.table).reject_subscribers();
        self.queue.close();
    }
}

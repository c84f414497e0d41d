//! Faulty broker: close races the background delivery and loses messages.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::sleep;

use super::shared::{Table, WorkQueue, deliver, lock};
use crate::PubSub;

/// Time the delivery task waits after the first message of a batch, so that
/// more messages join the batch.
const LINGER: Duration = Duration::from_millis(5);

/// Number of published messages that wait for delivery before `publish`
/// waits for room.
const QUEUE: usize = 64;

/// A faulty broker that delivers in batches from a background task, and
/// whose `close` aborts that task.
///
/// `publish` only queues the message. The delivery task takes the first
/// queued message, waits [`LINGER`] of time for more to arrive, and then
/// delivers the whole batch.
///
/// Fault: `close` aborts the delivery task instead of letting it finish the
/// queue. The batch it is waiting on and every message still queued are
/// lost, although their publish calls had returned. On tokio's paused
/// clock, a checker that closes right after the last publish returned loses
/// the latest messages every time, because the clock moves only while every
/// task waits, so the task's wait has not ended yet. On a real clock a
/// checker that is slow enough to close may find the batch delivered. It is
/// meant for the grading suite and for learners' tests.
#[derive(Debug)]
pub struct LossyCloseBroker {
    table: Arc<Mutex<Table>>,
    queue: WorkQueue<(String, String)>,
    worker: JoinHandle<()>,
}

impl LossyCloseBroker {
    /// Creates an open broker with no subscribers and starts its delivery
    /// task.
    ///
    /// # Panics
    ///
    /// Panics when called outside a tokio runtime, which the delivery task
    /// needs.
    // A `Default` would hide that spawning needs a runtime, so there is none.
    #[allow(clippy::new_without_default)]
    pub fn new() -> LossyCloseBroker {
        let table = Arc::new(Mutex::new(Table::default()));
        let (queue, pending) = WorkQueue::new(QUEUE);
        let worker = tokio::spawn(deliver_batches(pending, Arc::clone(&table)));
        LossyCloseBroker {
            table,
            queue,
            worker,
        }
    }
}

/// Delivers the queued messages batch by batch, in queue order.
async fn deliver_batches(mut pending: mpsc::Receiver<(String, String)>, table: Arc<Mutex<Table>>) {
    while let Some(first) = pending.recv().await {
        sleep(LINGER).await;
        let mut batch = vec![first];
        while let Ok(next) = pending.try_recv() {
            batch.push(next);
        }
        for (topic, msg) in batch {
            let senders = lock(&table).senders(&topic);
            deliver(&senders, &msg).await;
        }
    }
    lock(&table).drop_senders();
}

impl PubSub for LossyCloseBroker {
    fn subscribe(&self, topic: &str) -> mpsc::Receiver<String> {
        lock(&self.table).subscribe(topic)
    }

    async fn publish(&self, topic: &str, msg: String) {
        self.queue.push((topic.to_owned(), msg)).await;
    }

    fn close(&self) {
        // The fault: the table's senders go, and the task with the
        // undelivered messages is aborted with them. Closing the queue and
        // letting the task drop the senders when it is done would keep them.
        lock(&self.table).close();
        self.queue.close();
        self.worker.abort();
    }
}

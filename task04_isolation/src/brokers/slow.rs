//! A correct broker whose delivery lags far behind `publish`, as across a
//! slow network link.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use super::shared::{Table, WorkQueue, deliver, lock};
use crate::PubSub;

/// Time from a publish to the delivery of its message in [`SlowBroker`].
pub const SLOW_LATENCY: Duration = Duration::from_secs(10);

/// Number of published messages that wait for delivery before `publish`
/// waits for room.
const QUEUE: usize = 64;

/// A correct broker that delivers each message [`SLOW_LATENCY`] after its
/// publish, from a background task.
///
/// It keeps the whole [`PubSub`] contract, but when `publish` returns the
/// message has not reached anyone yet. Close lets the background task finish
/// every queued delivery before the receivers end. A checker that sleeps for
/// a while and then counts what arrived finds messages missing here. One that
/// closes the broker and reads every receiver to its end finds them all.
#[derive(Debug)]
pub struct SlowBroker {
    table: Arc<Mutex<Table>>,
    queue: WorkQueue<Delivery>,
}

#[derive(Debug)]
struct Delivery {
    due: Instant,
    topic: String,
    msg: String,
}

impl SlowBroker {
    /// Creates an open broker with no subscribers and starts its delivery
    /// task.
    ///
    /// # Panics
    ///
    /// Panics when called outside a tokio runtime, which the delivery task
    /// needs.
    // A `Default` would hide that spawning needs a runtime, so there is none.
    #[allow(clippy::new_without_default)]
    pub fn new() -> SlowBroker {
        let table = Arc::new(Mutex::new(Table::default()));
        let (queue, pending) = WorkQueue::new(QUEUE);
        tokio::spawn(deliver_when_due(pending, Arc::clone(&table)));
        SlowBroker { table, queue }
    }
}

/// Delivers each queued message at its due time, in queue order, until the
/// queue is closed and empty. Then it ends every receiver.
async fn deliver_when_due(mut pending: mpsc::Receiver<Delivery>, table: Arc<Mutex<Table>>) {
    while let Some(delivery) = pending.recv().await {
        sleep_until(delivery.due).await;
        let senders = lock(&table).senders(&delivery.topic);
        deliver(&senders, &delivery.msg).await;
    }
    lock(&table).drop_senders();
}

impl PubSub for SlowBroker {
    fn subscribe(&self, topic: &str) -> mpsc::Receiver<String> {
        lock(&self.table).subscribe(topic)
    }

    async fn publish(&self, topic: &str, msg: String) {
        let delivery = Delivery {
            due: Instant::now() + SLOW_LATENCY,
            topic: topic.to_owned(),
            msg,
        };
        self.queue.push(delivery).await;
    }

    fn close(&self) {
        // The delivery task drains the queue and then drops the senders.
        lock(&self.table).reject_subscribers();
        self.queue.close();
    }
}

//! A broker that keeps the whole [`PubSub`] contract by delivering inside
//! `publish`.

use std::sync::Mutex;

use tokio::sync::mpsc;

use super::shared::{Table, deliver, lock};
use crate::PubSub;

/// A correct broker: `publish` puts the message into every subscriber's
/// buffer before it returns.
///
/// Each subscriber's channel buffers [`BUFFER`](super::BUFFER) messages, and
/// `publish` waits while one is full.
///
/// # Examples
///
/// ```
/// use task04_isolation::PubSub;
/// use task04_isolation::brokers::CorrectBroker;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let broker = CorrectBroker::new();
/// let mut news = broker.subscribe("news");
/// broker.publish("news", "hello".to_owned()).await;
///
/// // After close the receiver yields what it is owed, then ends.
/// broker.close();
/// assert_eq!(news.recv().await.as_deref(), Some("hello"));
/// assert_eq!(news.recv().await, None);
/// # }
/// ```
#[derive(Debug, Default)]
pub struct CorrectBroker {
    table: Mutex<Table>,
}

impl CorrectBroker {
    /// Creates an open broker with no subscribers.
    pub fn new() -> CorrectBroker {
        CorrectBroker::default()
    }
}

impl PubSub for CorrectBroker {
    fn subscribe(&self, topic: &str) -> mpsc::Receiver<String> {
        lock(&self.table).subscribe(topic)
    }

    async fn publish(&self, topic: &str, msg: String) {
        // The lock is released before waiting for buffer space. A close that
        // runs meanwhile ends the receivers only after this delivery, because
        // these copies of the senders keep the channels open until then.
        let senders = lock(&self.table).senders(topic);
        deliver(&senders, &msg).await;
    }

    fn close(&self) {
        lock(&self.table).close();
    }
}

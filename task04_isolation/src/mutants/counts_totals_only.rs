//! Mutant: a checker that compares only the grand total of deliveries.
//!
//! It adds up what every receiver got and compares the sum with the number
//! of deliveries the workload implies. Losses and duplicates change the sum,
//! so this looks thorough, and it is how many first stress tests are
//! written. But a broker that sends one topic's messages to another topic's
//! subscribers, while starving that other topic, keeps the sum exactly
//! right, and so does one that only changes the order of the messages.

#![deny(clippy::todo)]

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::{
    EXPECTED_PER_SUBSCRIBER, IsolationError, MESSAGES_PER_TOPIC, PUBLISHERS, PubSub, Report,
    SUBSCRIBERS_PER_TOPIC, TOPICS, TOTAL_DELIVERED,
};

/// Drives `broker` through the isolation workload and checks every delivery.
///
/// The workload:
///
/// 1. Subscribe [`SUBSCRIBERS_PER_TOPIC`] receivers to each of [`TOPICS`]
///    distinct topics, all before the first publish.
/// 2. Start [`PUBLISHERS`] tasks at once. Each publishes
///    [`MESSAGES_PER_TOPIC`] messages to every topic, awaiting each publish
///    before the next. No two messages of the workload have the same text.
/// 3. Read every receiver while the publishers run, because `publish` waits
///    while a receiver's buffer is full.
/// 4. Once every publisher has finished, close the broker, and read each
///    receiver until it ends.
///
/// It never sleeps to wait for delivery: a broker may deliver late, and only
/// the end of a receiver after close shows that nothing more will come. The
/// returned [`Report`] counts what was checked.
///
/// # Errors
///
/// Each receiver's messages are checked from first to last, and the first
/// problem found is returned:
///
/// - a message not published to the receiver's topic is
///   [`IsolationError::Foreign`];
/// - a message the receiver got before is [`IsolationError::Duplicate`];
/// - a message that arrives after a later message of the same publisher is
///   [`IsolationError::Reordered`];
/// - fewer than [`EXPECTED_PER_SUBSCRIBER`] distinct messages by the time
///   the receiver ended is [`IsolationError::Missing`].
///
/// A publisher or reader task that panicked, for example inside a broker
/// method, is [`IsolationError::TaskFailed`].
pub async fn check_isolation<B: PubSub>(broker: Arc<B>) -> Result<Report, IsolationError> {
    let plan = Plan::new();

    // Every receiver exists before the first publish, so each is owed every
    // message of its topic. Each gets a reader task at once, because publish
    // waits for room in a full buffer, and only reading makes room.
    let mut readers = Vec::with_capacity(TOPICS * SUBSCRIBERS_PER_TOPIC);
    for topic in 0..TOPICS {
        for subscriber in 0..SUBSCRIBERS_PER_TOPIC {
            let receiver = broker.subscribe(&plan.topics[topic]);
            readers.push(Reader {
                topic,
                subscriber,
                task: tokio::spawn(read_to_end(receiver)),
            });
        }
    }

    // Separate tasks let the publishers' calls interleave.
    let publishers: Vec<JoinHandle<()>> = (0..PUBLISHERS)
        .map(|publisher| {
            let broker = Arc::clone(&broker);
            let messages = plan.messages_of(publisher);
            tokio::spawn(async move {
                for (topic, message) in messages {
                    broker.publish(&topic, message).await;
                }
            })
        })
        .collect();
    for (publisher, task) in publishers.into_iter().enumerate() {
        task.await.map_err(|source| IsolationError::TaskFailed {
            task: format!("publisher {publisher}"),
            source,
        })?;
    }

    // Every publish has returned. After close each receiver ends right after
    // the last message it is owed, however late the broker delivers it.
    broker.close();

    // Every delivery counts once, over all receivers: if the grand total is
    // right, nothing was lost or sent twice.
    let subscribers = readers.len();
    let mut delivered = 0;
    for reader in readers {
        let messages = reader
            .task
            .await
            .map_err(|source| IsolationError::TaskFailed {
                task: format!(
                    "reader of subscriber {} of topic {:?}",
                    reader.subscriber, plan.topics[reader.topic]
                ),
                source,
            })?;
        delivered += messages.len();
    }
    if delivered != TOTAL_DELIVERED {
        return Err(IsolationError::Missing {
            topic: "all topics".to_owned(),
            subscriber: 0,
            expected: TOTAL_DELIVERED,
            received: delivered,
        });
    }

    Ok(Report {
        topics: TOPICS,
        publishers: PUBLISHERS,
        subscribers,
        published: plan.origins.len(),
        delivered,
    })
}

/// One receiver's reader task and which subscriber it reads for.
struct Reader {
    topic: usize,
    subscriber: usize,
    task: JoinHandle<Vec<String>>,
}

/// Returns every message `receiver` yields, in order, once it has ended.
async fn read_to_end(mut receiver: mpsc::Receiver<String>) -> Vec<String> {
    let mut messages = Vec::with_capacity(EXPECTED_PER_SUBSCRIBER);
    while let Some(message) = receiver.recv().await {
        messages.push(message);
    }
    messages
}

/// The origin of a published message.
#[derive(Clone, Copy)]
struct Origin {
    topic: usize,
    publisher: usize,
    sequence: usize,
}

/// The topic names and every message of the workload.
struct Plan {
    topics: Vec<String>,
    // Keyed by message text, which is unique in the workload.
    origins: HashMap<String, Origin>,
}

impl Plan {
    fn new() -> Plan {
        let topics: Vec<String> = (0..TOPICS).map(|topic| format!("topic-{topic}")).collect();
        let mut origins = HashMap::new();
        for topic in 0..TOPICS {
            for publisher in 0..PUBLISHERS {
                for sequence in 0..MESSAGES_PER_TOPIC {
                    let origin = Origin {
                        topic,
                        publisher,
                        sequence,
                    };
                    origins.insert(message_text(&topics, origin), origin);
                }
            }
        }
        Plan { topics, origins }
    }

    /// Returns the `(topic, message)` pairs that `publisher` publishes, in
    /// order. The topics take turns, so every topic is busy all the time.
    fn messages_of(&self, publisher: usize) -> Vec<(String, String)> {
        let mut messages = Vec::with_capacity(TOPICS * MESSAGES_PER_TOPIC);
        for sequence in 0..MESSAGES_PER_TOPIC {
            for topic in 0..TOPICS {
                let origin = Origin {
                    topic,
                    publisher,
                    sequence,
                };
                messages.push((
                    self.topics[topic].clone(),
                    message_text(&self.topics, origin),
                ));
            }
        }
        messages
    }
}

/// Returns the text of the message described by `origin`, which names all
/// three parts so that a failure message shows where it came from.
fn message_text(topics: &[String], origin: Origin) -> String {
    format!(
        "{} from publisher {} #{}",
        topics[origin.topic], origin.publisher, origin.sequence
    )
}

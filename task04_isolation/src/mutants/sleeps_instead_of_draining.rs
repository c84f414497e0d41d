//! Mutant: a checker that sleeps instead of closing and draining.
//!
//! After the last publish it waits a fixed 100 ms for the readers to catch
//! up, then counts what they stored, and closes the broker only afterwards.
//! On a broker that delivers inside `publish` the wait is always long enough,
//! so the checker looks fine. But no fixed wait is a proof: a broker that
//! delivers later than the wait loses nothing and still fails this checker,
//! and one that loses messages when it closes passes it, because the wait
//! ends before the close.

#![deny(clippy::todo)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::{
    EXPECTED_PER_SUBSCRIBER, IsolationError, MESSAGES_PER_TOPIC, PUBLISHERS, PubSub, Report,
    SUBSCRIBERS_PER_TOPIC, TOPICS,
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
    // waits for room in a full buffer, and only reading makes room. The
    // readers store what they get where the checker can look at any time.
    let mut readers = Vec::with_capacity(TOPICS * SUBSCRIBERS_PER_TOPIC);
    for topic in 0..TOPICS {
        for subscriber in 0..SUBSCRIBERS_PER_TOPIC {
            let receiver = broker.subscribe(&plan.topics[topic]);
            let received = Arc::new(Mutex::new(Vec::new()));
            tokio::spawn(read_into(receiver, Arc::clone(&received)));
            readers.push(Reader {
                topic,
                subscriber,
                received,
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

    // Every publish has returned. Give the readers a moment to take the last
    // messages, which is plenty on any machine, then look at what they got.
    tokio::time::sleep(SETTLE_TIME).await;
    let snapshots: Vec<(usize, usize, Vec<String>)> = readers
        .iter()
        .map(|reader| {
            let received = reader
                .received
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            (reader.topic, reader.subscriber, received)
        })
        .collect();
    broker.close();

    let subscribers = readers.len();
    let mut delivered = 0;
    for (topic, subscriber, messages) in snapshots {
        plan.check(topic, subscriber, &messages)?;
        delivered += messages.len();
    }

    Ok(Report {
        topics: TOPICS,
        publishers: PUBLISHERS,
        subscribers,
        published: plan.origins.len(),
        delivered,
    })
}

/// Time the checker waits after the last publish before it counts.
const SETTLE_TIME: Duration = Duration::from_millis(100);

/// The messages one receiver's reader task stored so far, and the
/// subscriber it reads for.
struct Reader {
    topic: usize,
    subscriber: usize,
    received: Arc<Mutex<Vec<String>>>,
}

/// Appends every message `receiver` yields to `received`, in order.
async fn read_into(mut receiver: mpsc::Receiver<String>, received: Arc<Mutex<Vec<String>>>) {
    while let Some(message) = receiver.recv().await {
        received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(message);
    }
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

    /// Checks what subscriber `subscriber` of topic `topic` received before
    /// its receiver ended.
    fn check(
        &self,
        topic: usize,
        subscriber: usize,
        messages: &[String],
    ) -> Result<(), IsolationError> {
        let name = &self.topics[topic];
        let mut seen = HashSet::with_capacity(messages.len());
        // For each publisher, the highest sequence number received so far,
        // with its message.
        let mut latest: Vec<Option<(usize, &str)>> = vec![None; PUBLISHERS];

        for message in messages {
            let origin = match self.origins.get(message) {
                Some(origin) if origin.topic == topic => *origin,
                _ => {
                    return Err(IsolationError::Foreign {
                        topic: name.clone(),
                        subscriber,
                        message: message.clone(),
                    });
                }
            };
            if !seen.insert(message.as_str()) {
                return Err(IsolationError::Duplicate {
                    topic: name.clone(),
                    subscriber,
                    message: message.clone(),
                });
            }
            if let Some((sequence, after)) = latest[origin.publisher] {
                if origin.sequence < sequence {
                    return Err(IsolationError::Reordered {
                        topic: name.clone(),
                        subscriber,
                        message: message.clone(),
                        after: after.to_owned(),
                    });
                }
            }
            latest[origin.publisher] = Some((origin.sequence, message));
        }

        // Every message kept is distinct and of this topic, so fewer than
        // expected means some never came.
        if seen.len() < EXPECTED_PER_SUBSCRIBER {
            return Err(IsolationError::Missing {
                topic: name.clone(),
                subscriber,
                expected: EXPECTED_PER_SUBSCRIBER,
                received: seen.len(),
            });
        }
        Ok(())
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

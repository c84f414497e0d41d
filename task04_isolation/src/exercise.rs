//! Task 4: write a checker that proves a broker keeps its topics apart.
//!
//! This time you test a broker instead of building one. `check_isolation`
//! drives any [`PubSub`] broker through a fixed workload, with several
//! publishers at once and many subscribers per topic, and then checks every
//! message that every subscriber received. On `CorrectBroker` and
//! `SlowBroker` from `crate::brokers` it returns a `Report` of exact counts.
//! On each faulty broker there it returns the `IsolationError` that names the
//! receiver where the fault showed. The sizes of the workload are the
//! constants at the crate root, such as `crate::TOPICS`.

// The parameter is unused until you write the body. Delete this line then.
#![allow(unused_variables)]

use std::sync::Arc;

use crate::{IsolationError, PubSub, Report};

/// Drives `broker` through the isolation workload and checks every delivery.
///
/// The workload:
///
/// 1. Subscribe [`SUBSCRIBERS_PER_TOPIC`](crate::SUBSCRIBERS_PER_TOPIC)
///    receivers to each of [`TOPICS`](crate::TOPICS) distinct topics, all
///    before the first publish.
/// 2. Start [`PUBLISHERS`](crate::PUBLISHERS) tasks at once. Each publishes
///    [`MESSAGES_PER_TOPIC`](crate::MESSAGES_PER_TOPIC) messages to every
///    topic, awaiting each publish before the next. No two messages of the
///    workload have the same text.
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
/// - fewer than [`EXPECTED_PER_SUBSCRIBER`](crate::EXPECTED_PER_SUBSCRIBER)
///   distinct messages by the time the receiver ended is
///   [`IsolationError::Missing`].
///
/// A publisher or reader task that panicked, for example inside a broker
/// method, is [`IsolationError::TaskFailed`].
pub async fn check_isolation<B: PubSub>(broker: Arc<B>) -> Result<Report, IsolationError> {
    // TODO: run the workload with close-and-drain, then check every receiver.
    todo!(
        "subscribe, read each receiver in a task, publish from PUBLISHERS tasks, close, \
         and return a Report of the counts or the first IsolationError found"
    )
}

//! The summary that a checker returns when a broker passed every check.

use std::fmt;

/// Counts of what an isolation checker verified on a broker that passed.
///
/// For the full workload the fields equal [`TOPICS`](crate::TOPICS),
/// [`PUBLISHERS`](crate::PUBLISHERS), `TOPICS * SUBSCRIBERS_PER_TOPIC`,
/// [`TOTAL_PUBLISHED`](crate::TOTAL_PUBLISHED) and
/// [`TOTAL_DELIVERED`](crate::TOTAL_DELIVERED).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// Number of topics that received messages.
    pub topics: usize,
    /// Number of publisher tasks that ran at the same time.
    pub publishers: usize,
    /// Number of receivers whose messages were checked, over all topics.
    pub subscribers: usize,
    /// Number of `publish` calls, over all publishers and topics.
    pub published: usize,
    /// Number of messages received and checked, over all receivers.
    pub delivered: usize,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} publishers sent {} messages to {} topics, and all {} deliveries to {} \
             subscribers arrived exactly once and in order",
            self.publishers, self.published, self.topics, self.delivered, self.subscribers
        )
    }
}

//! The workload that every isolation checker runs, and the counts it implies.
//!
//! The sizes are fixed so that a checker's [`Report`](crate::Report) can be
//! compared with exact numbers: [`PUBLISHERS`] tasks each publish
//! [`MESSAGES_PER_TOPIC`] messages to each of [`TOPICS`] topics, and every
//! topic has [`SUBSCRIBERS_PER_TOPIC`] subscribers.

/// Number of publisher tasks that publish at the same time.
pub const PUBLISHERS: usize = 4;

/// Number of distinct topics.
pub const TOPICS: usize = 4;

/// Number of receivers subscribed to each topic.
pub const SUBSCRIBERS_PER_TOPIC: usize = 100;

/// Number of messages that each publisher publishes to each topic.
pub const MESSAGES_PER_TOPIC: usize = 25;

/// Number of messages that every single subscriber must receive: one
/// [`MESSAGES_PER_TOPIC`] batch from each publisher.
pub const EXPECTED_PER_SUBSCRIBER: usize = PUBLISHERS * MESSAGES_PER_TOPIC;

/// Number of `publish` calls in the whole workload.
pub const TOTAL_PUBLISHED: usize = PUBLISHERS * TOPICS * MESSAGES_PER_TOPIC;

/// Number of deliveries in the whole workload: every subscriber of every
/// topic receives [`EXPECTED_PER_SUBSCRIBER`] messages.
pub const TOTAL_DELIVERED: usize = TOPICS * SUBSCRIBERS_PER_TOPIC * EXPECTED_PER_SUBSCRIBER;

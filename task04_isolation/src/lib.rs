//! Task 4: topic isolation.
//!
//! Here the learner writes a checker, not a broker. `check_isolation` drives
//! any broker that implements [`PubSub`] through a fixed workload: several
//! publishers at once, several topics, many subscribers per topic. It then
//! checks every message each subscriber received. It returns a [`Report`]
//! of exact counts for a correct broker and an [`IsolationError`] naming the
//! receiver where a faulty one went wrong.
//!
//! The crate provides everything the checker works with: the [`PubSub`]
//! trait, the workload sizes ([`PUBLISHERS`], [`TOPICS`],
//! [`SUBSCRIBERS_PER_TOPIC`], [`MESSAGES_PER_TOPIC`]), [`Report`] and
//! [`IsolationError`]. The module [`brokers`] holds two correct brokers and
//! six faulty ones, which the grading suite runs the checker against. None of
//! this depends on the selected implementation.
//!
//! The crate exports one implementation of the checker. By default it is the
//! learner's `src/exercise.rs`. The `reference` feature selects the reference
//! solution, `skeleton` the untouched copy of the exercise, and each
//! `mutant-NAME` feature a known-buggy checker from `src/mutants/`, which the
//! grader runs the learner's tests against.

// Learner code must not run before `main` or touch memory directly, so the
// grader's verdicts stay trustworthy.
#![forbid(unsafe_code)]

pub mod brokers;
mod error;
mod pubsub;
mod report;
mod workload;

pub use error::IsolationError;
pub use pubsub::PubSub;
pub use report::Report;
pub use workload::{
    EXPECTED_PER_SUBSCRIBER, MESSAGES_PER_TOPIC, PUBLISHERS, SUBSCRIBERS_PER_TOPIC, TOPICS,
    TOTAL_DELIVERED, TOTAL_PUBLISHED,
};

#[cfg_attr(workbook_impl = "exercise", path = "exercise.rs")]
#[cfg_attr(workbook_impl = "skeleton", path = "../skeleton/exercise.rs")]
#[cfg_attr(workbook_impl = "reference", path = "reference.rs")]
#[cfg_attr(workbook_impl = "always_ok", path = "mutants/always_ok.rs")]
#[cfg_attr(
    workbook_impl = "checks_first_subscriber_only",
    path = "mutants/checks_first_subscriber_only.rs"
)]
#[cfg_attr(
    workbook_impl = "counts_totals_only",
    path = "mutants/counts_totals_only.rs"
)]
#[cfg_attr(workbook_impl = "dedups_with_set", path = "mutants/dedups_with_set.rs")]
#[cfg_attr(workbook_impl = "ignores_order", path = "mutants/ignores_order.rs")]
#[cfg_attr(
    workbook_impl = "sleeps_instead_of_draining",
    path = "mutants/sleeps_instead_of_draining.rs"
)]
#[cfg_attr(
    workbook_impl = "stops_at_expected_count",
    path = "mutants/stops_at_expected_count.rs"
)]
#[cfg_attr(
    workbook_impl = "subscribes_after_publishing",
    path = "mutants/subscribes_after_publishing.rs"
)]
mod implementation;

pub use implementation::*;

//! Task 1: a first in-process broker.
//!
//! A `Broker` delivers each `String` published on a topic to every subscriber
//! of that topic through a bounded tokio channel, drops messages for a
//! subscriber that has fallen behind instead of waiting, and ends every
//! receiver when it is closed.
//!
//! The crate exports one implementation of that API. By default it is the
//! learner's `src/exercise.rs`. The `reference` feature selects the reference
//! solution, `skeleton` the untouched copy of the exercise, and each
//! `mutant-NAME` feature a known-buggy version from `src/mutants/`, which the
//! grader runs the learner's tests against.

// Learner code must not run before `main` or touch memory directly, so the
// grader's verdicts stay trustworthy.
#![forbid(unsafe_code)]

#[cfg_attr(workbook_impl = "exercise", path = "exercise.rs")]
#[cfg_attr(workbook_impl = "skeleton", path = "../skeleton/exercise.rs")]
#[cfg_attr(workbook_impl = "reference", path = "reference.rs")]
#[cfg_attr(
    workbook_impl = "allocates_without_subscribers",
    path = "mutants/allocates_without_subscribers.rs"
)]
#[cfg_attr(
    workbook_impl = "close_keeps_senders",
    path = "mutants/close_keeps_senders.rs"
)]
#[cfg_attr(workbook_impl = "hashed_shards", path = "mutants/hashed_shards.rs")]
#[cfg_attr(
    workbook_impl = "stops_at_failed_send",
    path = "mutants/stops_at_failed_send.rs"
)]
#[cfg_attr(
    workbook_impl = "subscribe_ignores_close",
    path = "mutants/subscribe_ignores_close.rs"
)]
#[cfg_attr(
    workbook_impl = "topic_prefix_match",
    path = "mutants/topic_prefix_match.rs"
)]
#[cfg_attr(workbook_impl = "waits_for_space", path = "mutants/waits_for_space.rs")]
mod implementation;

pub use implementation::*;

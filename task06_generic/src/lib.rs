//! Task 6: generic messages.
//!
//! The cancellable broker of task 5 carries messages of any type `T` that is
//! `Clone + Send + 'static` instead of `String`. The lesson is the cost of
//! fan-out: each subscriber needs its own copy, so publishing to N
//! subscribers clones at most N times, and publishing to a topic without
//! subscribers clones nothing and allocates nothing.
//!
//! The crate exports one implementation of the task's API. By default that is
//! the learner's `src/exercise.rs`. The feature `reference` selects the
//! reference solution instead, and each `mutant-NAME` feature selects a
//! known-buggy version from `src/mutants/`. The grader runs the learner's tests
//! against those buggy versions.

// Learner code must not run before `main` or touch memory directly, so the
// grader's verdicts stay trustworthy.
#![forbid(unsafe_code)]

#[cfg_attr(workbook_impl = "exercise", path = "exercise.rs")]
#[cfg_attr(workbook_impl = "skeleton", path = "../skeleton/exercise.rs")]
#[cfg_attr(workbook_impl = "reference", path = "reference.rs")]
#[cfg_attr(
    workbook_impl = "allocates_topic_key",
    path = "mutants/allocates_topic_key.rs"
)]
#[cfg_attr(
    workbook_impl = "boxes_each_message",
    path = "mutants/boxes_each_message.rs"
)]
#[cfg_attr(
    workbook_impl = "clone_per_subscriber_plus_one",
    path = "mutants/clone_per_subscriber_plus_one.rs"
)]
#[cfg_attr(
    workbook_impl = "clones_for_cancelled",
    path = "mutants/clones_for_cancelled.rs"
)]
#[cfg_attr(
    workbook_impl = "close_skips_waiting",
    path = "mutants/close_skips_waiting.rs"
)]
#[cfg_attr(
    workbook_impl = "collects_senders_always",
    path = "mutants/collects_senders_always.rs"
)]
#[cfg_attr(
    workbook_impl = "keeps_empty_topic",
    path = "mutants/keeps_empty_topic.rs"
)]
#[cfg_attr(
    workbook_impl = "on_drop_clones_again",
    path = "mutants/on_drop_clones_again.rs"
)]
#[cfg_attr(
    workbook_impl = "on_drop_gets_previous_message",
    path = "mutants/on_drop_gets_previous_message.rs"
)]
mod implementation;

pub use implementation::*;

//! Task 3: slow-subscriber policies.
//!
//! Each subscriber now chooses what happens when it falls behind: with
//! [`Policy::Drop`] a message that does not fit its buffer is lost and
//! reported to its `on_drop` callback, and with [`Policy::Block`] the publisher
//! waits for space. Because of `Block`, `publish` is `async`.
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
    workbook_impl = "block_delays_drop",
    path = "mutants/block_delays_drop.rs"
)]
#[cfg_attr(
    workbook_impl = "drop_waits_with_timeout",
    path = "mutants/drop_waits_with_timeout.rs"
)]
#[cfg_attr(
    workbook_impl = "lock_across_await",
    path = "mutants/lock_across_await.rs"
)]
#[cfg_attr(
    workbook_impl = "on_drop_for_closed_receiver",
    path = "mutants/on_drop_for_closed_receiver.rs"
)]
#[cfg_attr(
    workbook_impl = "on_drop_under_lock",
    path = "mutants/on_drop_under_lock.rs"
)]
#[cfg_attr(
    workbook_impl = "waits_until_receiver_dropped",
    path = "mutants/waits_until_receiver_dropped.rs"
)]
#[cfg_attr(
    workbook_impl = "warning_off_by_one",
    path = "mutants/warning_off_by_one.rs"
)]
#[cfg_attr(
    workbook_impl = "zero_buffer_means_one",
    path = "mutants/zero_buffer_means_one.rs"
)]
mod implementation;

pub use implementation::*;

//! Task 2: unsubscribe.
//!
//! The broker of task 1 gains a way for one subscriber to leave a topic
//! without closing the whole broker: `subscribe` returns an [`Unsubscribe`]
//! handle next to the receiver.
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
    workbook_impl = "empty_topic_hidden",
    path = "mutants/empty_topic_hidden.rs"
)]
#[cfg_attr(
    workbook_impl = "empty_topic_kept",
    path = "mutants/empty_topic_kept.rs"
)]
#[cfg_attr(
    workbook_impl = "handle_drops_sender_clone",
    path = "mutants/handle_drops_sender_clone.rs"
)]
#[cfg_attr(workbook_impl = "inactive_flag", path = "mutants/inactive_flag.rs")]
#[cfg_attr(workbook_impl = "index_shift", path = "mutants/index_shift.rs")]
#[cfg_attr(
    workbook_impl = "panic_after_close",
    path = "mutants/panic_after_close.rs"
)]
#[cfg_attr(workbook_impl = "reused_slot", path = "mutants/reused_slot.rs")]
#[cfg_attr(
    workbook_impl = "swap_remove_clamped",
    path = "mutants/swap_remove_clamped.rs"
)]
#[cfg_attr(
    workbook_impl = "unsubscribe_on_drop",
    path = "mutants/unsubscribe_on_drop.rs"
)]
mod implementation;

pub use implementation::*;

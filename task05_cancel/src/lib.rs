//! Task 5: cancellation.
//!
//! The broker of task 3, with the drop policy only, ties each subscription's
//! lifetime to a [`tokio_util::sync::CancellationToken`] instead of an
//! unsubscribe handle: cancelling the token, or a parent of it, removes the
//! subscription and ends its receiver. Closing the broker leaves no
//! background task behind.
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
    workbook_impl = "cancel_keeps_empty_topic",
    path = "mutants/cancel_keeps_empty_topic.rs"
)]
#[cfg_attr(
    workbook_impl = "close_cancels_caller_token",
    path = "mutants/close_cancels_caller_token.rs"
)]
#[cfg_attr(
    workbook_impl = "forwarder_drops_buffered",
    path = "mutants/forwarder_drops_buffered.rs"
)]
#[cfg_attr(
    workbook_impl = "prunes_on_publish",
    path = "mutants/prunes_on_publish.rs"
)]
#[cfg_attr(
    workbook_impl = "publish_ignores_cancelled",
    path = "mutants/publish_ignores_cancelled.rs"
)]
#[cfg_attr(
    workbook_impl = "register_before_cancel_check",
    path = "mutants/register_before_cancel_check.rs"
)]
#[cfg_attr(
    workbook_impl = "spawn_per_publish",
    path = "mutants/spawn_per_publish.rs"
)]
#[cfg_attr(
    workbook_impl = "task_leak_on_close",
    path = "mutants/task_leak_on_close.rs"
)]
#[cfg_attr(
    workbook_impl = "tracker_never_closed",
    path = "mutants/tracker_never_closed.rs"
)]
#[cfg_attr(
    workbook_impl = "uses_fresh_token",
    path = "mutants/uses_fresh_token.rs"
)]
#[cfg_attr(
    workbook_impl = "watcher_not_removing",
    path = "mutants/watcher_not_removing.rs"
)]
mod implementation;

pub use implementation::*;

//! Task 7: synchronous publish.
//!
//! A generic broker whose `publish_sync` returns only once every subscriber
//! of the topic has accepted the message into its buffer, or fails after a
//! timeout and names the subscribers that stalled. The deliveries run at the
//! same time under one deadline, and no task outlives the call.
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
    workbook_impl = "close_waits_for_deadline",
    path = "mutants/close_waits_for_deadline.rs"
)]
#[cfg_attr(
    workbook_impl = "deadline_resets_on_progress",
    path = "mutants/deadline_resets_on_progress.rs"
)]
#[cfg_attr(
    workbook_impl = "ignores_cancel_mid_wait",
    path = "mutants/ignores_cancel_mid_wait.rs"
)]
#[cfg_attr(
    workbook_impl = "leaked_send_tasks",
    path = "mutants/leaked_send_tasks.rs"
)]
#[cfg_attr(workbook_impl = "ok_after_close", path = "mutants/ok_after_close.rs")]
#[cfg_attr(workbook_impl = "ok_on_timeout", path = "mutants/ok_on_timeout.rs")]
#[cfg_attr(workbook_impl = "serial_delivery", path = "mutants/serial_delivery.rs")]
#[cfg_attr(
    workbook_impl = "silent_half_delivery",
    path = "mutants/silent_half_delivery.rs"
)]
#[cfg_attr(
    workbook_impl = "sync_sends_to_cancelled",
    path = "mutants/sync_sends_to_cancelled.rs"
)]
#[cfg_attr(
    workbook_impl = "timer_per_subscriber",
    path = "mutants/timer_per_subscriber.rs"
)]
#[cfg_attr(
    workbook_impl = "wrong_stalled_list",
    path = "mutants/wrong_stalled_list.rs"
)]
mod implementation;

pub use implementation::*;

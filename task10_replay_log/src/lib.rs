//! Task 10: a replay log with offsets.
//!
//! A [`Log`] keeps the last `capacity` messages in a ring buffer and numbers
//! every message with an offset: the count of messages appended before it. A
//! subscriber names the offset to start from, receives the held messages from
//! there on (the replay), and then each new message as it is appended (live),
//! with no gap and no duplicate at the boundary between the two. A start
//! offset that was evicted or lies beyond the head is an error, and a
//! subscriber that falls so far behind that its next message is evicted gets
//! an error item naming the offsets it missed.
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
    workbook_impl = "cancel_ignored_while_waiting",
    path = "mutants/cancel_ignored_while_waiting.rs"
)]
#[cfg_attr(
    workbook_impl = "duplicate_at_boundary",
    path = "mutants/duplicate_at_boundary.rs"
)]
#[cfg_attr(
    workbook_impl = "evicted_error_names_requested_not_oldest",
    path = "mutants/evicted_error_names_requested_not_oldest.rs"
)]
#[cfg_attr(
    workbook_impl = "lag_resumes_at_head",
    path = "mutants/lag_resumes_at_head.rs"
)]
#[cfg_attr(
    workbook_impl = "linear_time_append",
    path = "mutants/linear_time_append.rs"
)]
#[cfg_attr(
    workbook_impl = "notified_after_check",
    path = "mutants/notified_after_check.rs"
)]
#[cfg_attr(
    workbook_impl = "off_by_one_future",
    path = "mutants/off_by_one_future.rs"
)]
#[cfg_attr(
    workbook_impl = "silent_end_on_lag",
    path = "mutants/silent_end_on_lag.rs"
)]
#[cfg_attr(
    workbook_impl = "two_critical_sections",
    path = "mutants/two_critical_sections.rs"
)]
#[cfg_attr(
    workbook_impl = "wakes_before_storing",
    path = "mutants/wakes_before_storing.rs"
)]
mod implementation;

/// The mutex that guards the log's shared state: `crate::sync::Mutex` has
/// the API of `std::sync::Mutex`, and the grading suite can pause a thread
/// right after it releases one.
pub use pausable_mutex as sync;

pub use implementation::*;

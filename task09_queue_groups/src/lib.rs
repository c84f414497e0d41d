//! Task 9: queue groups.
//!
//! The generic broker of task 6 gains a second kind of subscription. A
//! broadcast subscriber gets its own copy of every message of its topic, as
//! before. A member of a queue group shares the group's messages with the
//! other members: each group on a topic gets each message once, and exactly
//! one of its members takes it. The group owns one queue that its members
//! pull from, so a member that leaves loses nothing for the others, and the
//! group disappears with its last member.
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
    workbook_impl = "close_wakes_before_flag",
    path = "mutants/close_wakes_before_flag.rs"
)]
#[cfg_attr(
    workbook_impl = "closes_group_channel_while_publishing",
    path = "mutants/closes_group_channel_while_publishing.rs"
)]
#[cfg_attr(
    workbook_impl = "delivers_to_every_member",
    path = "mutants/delivers_to_every_member.rs"
)]
#[cfg_attr(
    workbook_impl = "group_not_removed",
    path = "mutants/group_not_removed.rs"
)]
#[cfg_attr(
    workbook_impl = "groups_skipped_with_broadcast",
    path = "mutants/groups_skipped_with_broadcast.rs"
)]
#[cfg_attr(
    workbook_impl = "leaving_member_takes_queued",
    path = "mutants/leaving_member_takes_queued.rs"
)]
#[cfg_attr(
    workbook_impl = "member_owns_buffer",
    path = "mutants/member_owns_buffer.rs"
)]
#[cfg_attr(
    workbook_impl = "notified_after_check",
    path = "mutants/notified_after_check.rs"
)]
#[cfg_attr(
    workbook_impl = "stranded_messages_uncounted",
    path = "mutants/stranded_messages_uncounted.rs"
)]
mod implementation;

/// The mutex that guards a group's queue: `crate::sync::Mutex` has the API
/// of `std::sync::Mutex`, and the grading suite can pause a thread right
/// after it releases one.
pub use pausable_mutex as sync;

pub use implementation::*;

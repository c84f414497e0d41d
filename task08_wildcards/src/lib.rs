//! Task 8: NATS-style subjects with wildcard subscriptions.
//!
//! Messages are published to concrete subjects such as `orders.created.v2`,
//! made of tokens separated by `.`. Subscriptions take patterns, in which
//! `*` matches exactly one token and a final `>` matches one or more tokens.
//! The task is [`matches()`], validation of subjects and patterns by the rules
//! of a NATS server, and a generic [`Broker`] that delivers each message
//! once to every subscription whose pattern matches its subject.
//!
//! The crate exports one implementation of the task's API. By default that is
//! the learner's `src/exercise.rs`. The feature `reference` selects the
//! reference solution instead, and each `mutant-NAME` feature selects a
//! known-buggy version from `src/mutants/`. The grader runs the learner's tests
//! against those buggy versions. [`SubjectError`] is shared by all of them.

// Learner code must not run before `main` or touch memory directly, so the
// grader's verdicts stay trustworthy.
#![forbid(unsafe_code)]

mod error;

pub use error::{SubjectError, SubjectKind};

#[cfg_attr(workbook_impl = "exercise", path = "exercise.rs")]
#[cfg_attr(workbook_impl = "skeleton", path = "../skeleton/exercise.rs")]
#[cfg_attr(workbook_impl = "reference", path = "reference.rs")]
#[cfg_attr(
    workbook_impl = "accepts_empty_tokens",
    path = "mutants/accepts_empty_tokens.rs"
)]
#[cfg_attr(
    workbook_impl = "duplicate_delivery",
    path = "mutants/duplicate_delivery.rs"
)]
#[cfg_attr(
    workbook_impl = "equality_shortcut",
    path = "mutants/equality_shortcut.rs"
)]
#[cfg_attr(
    workbook_impl = "gt_not_last_accepted",
    path = "mutants/gt_not_last_accepted.rs"
)]
#[cfg_attr(
    workbook_impl = "partial_token_wildcard",
    path = "mutants/partial_token_wildcard.rs"
)]
#[cfg_attr(workbook_impl = "prefix_compare", path = "mutants/prefix_compare.rs")]
#[cfg_attr(
    workbook_impl = "publish_accepts_wildcards",
    path = "mutants/publish_accepts_wildcards.rs"
)]
#[cfg_attr(
    workbook_impl = "star_matches_many",
    path = "mutants/star_matches_many.rs"
)]
#[cfg_attr(
    workbook_impl = "tail_matches_zero",
    path = "mutants/tail_matches_zero.rs"
)]
mod implementation;

pub use implementation::*;

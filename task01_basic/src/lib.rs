//! Task 1: a first in-process broker.
//!
//! The crate exports one implementation of the task's API. By default that is
//! the learner's `src/exercise.rs`; `--features reference` selects the
//! reference solution, and each `mutant-NAME` feature a known-buggy version
//! from `src/mutants/`, which the grader uses to check the learner's tests.

#[cfg_attr(workbook_impl = "exercise", path = "exercise.rs")]
#[cfg_attr(workbook_impl = "reference", path = "reference.rs")]
#[cfg_attr(
    workbook_impl = "close_keeps_senders",
    path = "mutants/close_keeps_senders.rs"
)]
mod implementation;

pub use implementation::*;

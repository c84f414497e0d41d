//! Results of grading, as the harness prints them and the CLI stores them.
//!
//! The JSON form of these types is the schema documented in GRADING.md and in
//! `workbook/results.schema.json`; change both together.

use serde::{Deserialize, Serialize};

/// Outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The check ran to the end and reported a pass itself.
    Passed,
    /// The check panicked: a failed assertion or a `todo!()`.
    Failed,
    /// The check's process ran past its time limit and was killed.
    TimedOut,
    /// The check's process ended without reporting, for example through
    /// `std::process::exit` or an abort.
    Crashed,
}

/// The result of one grading check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Check name, as `cargo test -p TASK -- NAME` accepts it.
    pub name: String,
    /// Part of the task's API the check concerns, such as `Broker::close`.
    pub subject: String,
    /// Outcome of the check.
    pub outcome: Outcome,
    /// Wall-clock time the check's process ran, in milliseconds.
    pub duration_ms: u64,
    /// Reason the check did not pass, or `None` for a pass.
    pub message: Option<String>,
}

/// State of the learner's own tests (`tests/mine.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LearnerStatus {
    /// Not evaluated, because a grading check failed or only some checks ran.
    NotRun,
    /// The tests did not compile.
    CompileError,
    /// The tests look at which implementation was compiled (a cargo feature
    /// or the `WORKBOOK_IMPL` variable) instead of at its behaviour.
    Rejected,
    /// The tests compiled but at least one fails on the graded solution.
    Failing,
    /// Every test passes on the graded solution.
    Passing,
}

/// Evaluation of the learner's own tests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LearnerTests {
    /// Whether the tests were run and how they did on the graded solution.
    pub status: LearnerStatus,
    /// Test targets that were run, such as `mine`.
    pub targets: Vec<String>,
    /// Mutants on which at least one of the tests failed.
    pub mutants_killed: Vec<String>,
    /// Number of mutants the tests were run against.
    pub mutants_total: usize,
    /// Details: the failing test, the reason for a rejection, or the
    /// mutants that the tests caught only by hanging.
    pub message: Option<String>,
}

impl LearnerTests {
    /// Returns the state for tests that were not evaluated.
    pub fn not_run() -> Self {
        LearnerTests {
            status: LearnerStatus::NotRun,
            targets: Vec::new(),
            mutants_killed: Vec::new(),
            mutants_total: 0,
            message: None,
        }
    }
}

/// The graded result of one task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskReport {
    /// Crate name, such as `task01_basic`.
    pub task: String,
    /// Implementation graded: `exercise`, `reference` or a mutant's name.
    pub implementation: String,
    /// Rubric score, 0 to 3.
    pub score: u8,
    /// Reason for the score, in one sentence.
    pub reason: String,
    /// Next step that would raise the score.
    pub next_step: String,
    /// Number of checks that passed.
    pub checks_passed: usize,
    /// Number of checks run.
    pub checks_total: usize,
    /// Whether every check of the suite ran (no name filter was given).
    pub complete: bool,
    /// Every check's result, in the suite's order.
    pub checks: Vec<CheckResult>,
    /// Hints revealed for this task.
    pub hints_used: u32,
    /// Evaluation of the learner's own tests.
    pub learner_tests: LearnerTests,
    /// Compiler output when the task did not build; the harness never sets it.
    pub compile_error: Option<String>,
}

/// One line of the harness's `--format json` output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The suite is about to run this many checks.
    Plan {
        /// Number of checks that will run.
        checks: usize,
    },
    /// A check finished.
    Check(CheckResult),
    /// A later stage started, such as building the learner's tests.
    Stage {
        /// Description of the current stage, for a progress display.
        message: String,
    },
    /// The task's final result; always the last line.
    Task(Box<TaskReport>),
}

//! `cargo workbook selftest`: proves that the workbook itself is sound.
//!
//! For every task it checks that the reference passes every check and scores 3,
//! and that the skeleton compiles and fails every check with "not yet
//! implemented". It checks that at least one check catches every mutant, that
//! the shipped `tests/mine.rs` passes everywhere (so catching a mutant is left
//! to the learner), and that the crate's files agree with each other. Then it
//! builds, lints, formats and tests the whole workspace. Each finding is one
//! verdict line on standard output, "ok" or "FAILED", and the last line counts
//! them as `N passed, N failed`. Progress goes to standard error.

mod commands;
mod layout;
mod suites;

use std::fmt::Display;
use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;

use crate::discover::{Task, Workspace};

/// Lines of detail printed under a failed verdict.
const DETAIL_LINES: usize = 30;

/// Runs the selftest verdicts of `tasks`, then the workspace-wide steps when
/// `whole` is set; `repeat` is how often the grading suites run.
///
/// # Errors
///
/// Returns an error only when cargo cannot be run at all; everything else
/// is a verdict.
pub(crate) fn run(
    workspace: &Workspace,
    tasks: &[&Task],
    whole: bool,
    repeat: u32,
) -> Result<ExitCode> {
    let mut verdicts = Verdicts::default();
    eprintln!(
        "selftest of {} task(s) in {}; the grading suites run {repeat} time(s)",
        tasks.len(),
        workspace.root.display()
    );
    verdicts.record(
        !tasks.is_empty(),
        "the workspace has task crates (packages with [package.metadata.workbook])",
        "",
    );

    layout::check(tasks, &mut verdicts);
    suites::check(workspace, tasks, repeat, &mut verdicts)?;
    if whole {
        commands::check(workspace, &mut verdicts);
    } else {
        eprintln!(
            "skipped the workspace-wide build, lint and test steps, which run only when \
             no task is named"
        );
    }

    println!("{}", verdicts.summary());
    Ok(if verdicts.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The verdicts printed so far and their counts.
#[derive(Debug, Default)]
pub(crate) struct Verdicts {
    passed: usize,
    failed: usize,
}

impl Verdicts {
    /// Prints a passing verdict about `what`.
    pub(crate) fn pass(&mut self, what: impl Display) {
        self.passed += 1;
        emit(&format!("ok      {what}"));
    }

    /// Prints a failed verdict about `what`, with `details` indented below.
    pub(crate) fn fail(&mut self, what: impl Display, details: &str) {
        self.failed += 1;
        let mut text = format!("FAILED  {what}");
        let lines: Vec<&str> = details.trim_end().lines().collect();
        for line in lines.iter().take(DETAIL_LINES) {
            text.push('\n');
            if !line.trim().is_empty() {
                text.push_str("        ");
                text.push_str(line.trim_end());
            }
        }
        if lines.len() > DETAIL_LINES {
            text.push_str(&format!(
                "\n        … {} more lines",
                lines.len() - DETAIL_LINES
            ));
        }
        emit(&text);
    }

    /// Prints a passing or failed verdict about `what`.
    pub(crate) fn record(&mut self, passed: bool, what: impl Display, details: &str) {
        if passed {
            self.pass(what);
        } else {
            self.fail(what, details);
        }
    }

    /// Returns the closing line, `N passed, N failed`.
    pub(crate) fn summary(&self) -> String {
        format!("{} passed, {} failed", self.passed, self.failed)
    }
}

/// Prints a verdict and flushes it, so that a CI log shows it while later
/// steps run.
fn emit(text: &str) {
    println!("{text}");
    let _ = std::io::stdout().flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_each_verdict() {
        let mut verdicts = Verdicts::default();
        verdicts.pass("first");
        verdicts.fail("second", "why\nand more");
        verdicts.record(true, "third", "");
        assert_eq!(verdicts.summary(), "2 passed, 1 failed");
    }
}

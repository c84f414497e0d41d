//! Progress display on standard error while suites build and run.
//!
//! On a terminal, indicatif draws a spinner for builds and a bar per task
//! that advances with each finished check. Elsewhere (CI logs, pipes)
//! indicatif hides itself, and plain lines mark the start and end of each
//! step instead, so a long run is never silent and standard output keeps
//! only the results.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use testkit::report::{CheckResult, TaskReport};

/// Shows `message` with a spinner until the returned step is finished.
pub(crate) fn step(message: &str) -> Step {
    let bar = ProgressBar::new_spinner().with_message(message.to_owned());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .expect("the spinner template is valid"),
    );
    if bar.is_hidden() {
        eprintln!("{message} ...");
    } else {
        bar.enable_steady_tick(Duration::from_millis(120));
    }
    Step {
        bar,
        started: Instant::now(),
    }
}

/// Starts a bar for grading `task` with the implementation `label`; its
/// length comes from the suite's plan event.
pub(crate) fn task(task: &str, label: &str) -> TaskBar {
    let bar = ProgressBar::new(0).with_prefix(format!("{task} ({label})"));
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} checks {wide_msg}")
            .expect("the bar template is valid")
            .progress_chars("=> "),
    );
    if bar.is_hidden() {
        eprintln!("grading {task} ({label}) ...");
    }
    TaskBar {
        bar,
        started: Instant::now(),
    }
}

/// A running step without a known length, such as a cargo build.
#[derive(Debug)]
pub(crate) struct Step {
    bar: ProgressBar,
    started: Instant,
}

impl Step {
    /// Ends the step and prints `outcome` with the time it took.
    pub(crate) fn finish(self, outcome: &str) {
        self.bar.finish_and_clear();
        eprintln!("{outcome} ({})", seconds(self.started.elapsed()));
    }
}

/// The bar of one task's grading run.
#[derive(Debug)]
pub(crate) struct TaskBar {
    bar: ProgressBar,
    started: Instant,
}

impl TaskBar {
    /// Sets the number of checks the suite will run.
    pub(crate) fn plan(&self, checks: usize) {
        self.bar.set_length(checks as u64);
    }

    /// Advances the bar by one finished check.
    pub(crate) fn check(&self, check: &CheckResult) {
        self.bar.set_message(check.name.clone());
        self.bar.inc(1);
    }

    /// Shows a later stage, such as running the learner's tests.
    pub(crate) fn stage(&self, message: &str) {
        if self.bar.is_hidden() {
            eprintln!("  {message} ...");
        }
        self.bar.set_message(message.to_owned());
    }

    /// Removes the bar and prints a one-line summary of `report`.
    pub(crate) fn finish(self, report: &TaskReport) {
        self.bar.finish_and_clear();
        eprintln!(
            "{}: {} of {} checks pass, score {} ({})",
            report.task,
            report.checks_passed,
            report.checks_total,
            report.score,
            seconds(self.started.elapsed())
        );
    }
}

/// Formats `elapsed` as seconds with one decimal, such as "1.2 s".
fn seconds(elapsed: Duration) -> String {
    format!("{:.1} s", elapsed.as_secs_f64())
}

//! `cargo workbook grade`: builds the tasks' grading suites, runs them and
//! collects their reports.
//!
//! There is one grading engine, `testkit`. Each task's `tests/grade.rs` is a
//! suite that runs its checks, scores the task and, with `--format json`,
//! prints one event per line. This module builds all selected suites in one
//! cargo call, runs each executable in its task's folder, follows the events
//! on a progress bar and keeps the final report. A task that does not compile
//! gets a report of its own with the compiler's output and score 0. `grade`,
//! `watch`, `selftest` and submission grading all go through here.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result};
use testkit::cargo::{Build, BuildRequest, build_tests};
use testkit::grading::{Band, band_for};
use testkit::report::{CheckResult, Event, LearnerTests, Outcome, TaskReport};
use testkit::secret::Secret;
use testkit::state::State;

use crate::discover::{MUTANT_FEATURE_PREFIX, Task, Workspace};
use crate::{json, junit, progress, table};

/// Name of the grading suite's test target in every task crate.
pub(crate) const GRADE_TARGET: &str = "grade";

/// The implementation of a task that a run builds and grades.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Implementation {
    /// The learner's `src/exercise.rs`; no feature.
    Exercise,
    /// `src/reference.rs`, feature `reference`.
    Reference,
    /// The pristine `skeleton/exercise.rs`, feature `skeleton`.
    Skeleton,
    /// `src/mutants/STEM.rs`, feature `mutant-STEM` with dashes.
    Mutant(String),
}

impl Implementation {
    /// Returns the name the suite reports for this implementation, which
    /// is a mutant's file stem for a mutant.
    pub(crate) fn label(&self) -> &str {
        match self {
            Implementation::Exercise => "exercise",
            Implementation::Reference => "reference",
            Implementation::Skeleton => "skeleton",
            Implementation::Mutant(stem) => stem,
        }
    }

    /// Returns the crate feature that selects this implementation.
    pub(crate) fn feature(&self) -> Option<String> {
        match self {
            Implementation::Exercise => None,
            Implementation::Reference => Some("reference".to_owned()),
            Implementation::Skeleton => Some("skeleton".to_owned()),
            Implementation::Mutant(stem) => {
                Some(format!("{MUTANT_FEATURE_PREFIX}{}", stem.replace('_', "-")))
            }
        }
    }

    /// Returns the file that contains this implementation, relative to the
    /// task's folder.
    pub(crate) fn source_file(&self) -> String {
        match self {
            Implementation::Exercise => "src/exercise.rs".to_owned(),
            Implementation::Reference => "src/reference.rs".to_owned(),
            Implementation::Skeleton => "skeleton/exercise.rs".to_owned(),
            Implementation::Mutant(stem) => format!("src/mutants/{stem}.rs"),
        }
    }
}

/// Files that `grade` writes besides its table.
#[derive(Clone, Debug, Default)]
pub(crate) struct Outputs {
    /// Path for the JSON results.
    pub(crate) json: Option<PathBuf>,
    /// Path for the JUnit XML results.
    pub(crate) junit: Option<PathBuf>,
}

impl Outputs {
    /// Writes every requested file and names it on standard error.
    ///
    /// # Errors
    ///
    /// Returns an error naming the file that could not be written.
    pub(crate) fn write(&self, results: &Results<'_>) -> Result<()> {
        if let Some(path) = &self.json {
            json::write(path, results)?;
            eprintln!("wrote JSON results to {}", path.display());
        }
        if let Some(path) = &self.junit {
            junit::write(path, results)?;
            eprintln!("wrote JUnit XML results to {}", path.display());
        }
        Ok(())
    }
}

/// The report of one task together with the task it belongs to.
#[derive(Clone, Debug)]
pub(crate) struct Graded<'a> {
    /// The task that was graded.
    pub(crate) task: &'a Task,
    /// Report of its suite, or of its compile failure.
    pub(crate) report: TaskReport,
}

/// The outcome of grading several tasks with one implementation.
#[derive(Clone, Debug)]
pub(crate) struct Results<'a> {
    /// `exercise` or `reference`.
    pub(crate) implementation: String,
    /// The graded tasks, sorted by number.
    pub(crate) tasks: Vec<Graded<'a>>,
    /// Whether the run graded every task of the workspace. The table shows
    /// the band's advice only then, because the band judges the whole total.
    pub(crate) all_tasks_graded: bool,
}

impl Results<'_> {
    /// Returns the sum of the task scores.
    pub(crate) fn total(&self) -> u32 {
        self.tasks
            .iter()
            .map(|graded| u32::from(graded.report.score))
            .sum()
    }

    /// Returns the rubric band of the total.
    pub(crate) fn band(&self) -> Band {
        band_for(self.total())
    }

    /// Returns whether every graded task scores at least 1.
    pub(crate) fn all_pass(&self) -> bool {
        self.tasks.iter().all(|graded| graded.report.score >= 1)
    }
}

/// Runs `cargo workbook grade`: grades `tasks`, prints the table, writes the
/// requested files, and returns success only when every task scores 1 or
/// more.
///
/// # Errors
///
/// Returns an error when cargo cannot build at all or a file cannot be
/// written; failing tasks are results, not errors.
pub(crate) fn run(
    workspace: &Workspace,
    tasks: &[&Task],
    implementation: &Implementation,
    outputs: &Outputs,
) -> Result<ExitCode> {
    let graded = grade_tasks(workspace, tasks, implementation)?;
    let results = Results {
        implementation: implementation.label().to_owned(),
        tasks: graded,
        all_tasks_graded: tasks.len() == workspace.tasks.len(),
    };
    print!("{}", table::render_results(&results));
    outputs.write(&results)?;
    Ok(if results.all_pass() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Builds the suites of `tasks` with one implementation and grades each.
///
/// # Errors
///
/// Returns an error when cargo cannot be run; a task that does not compile
/// is graded 0 instead.
pub(crate) fn grade_tasks<'a>(
    workspace: &Workspace,
    tasks: &[&'a Task],
    implementation: &Implementation,
) -> Result<Vec<Graded<'a>>> {
    let selection: Vec<(&Task, Implementation)> = tasks
        .iter()
        .map(|task| (*task, implementation.clone()))
        .collect();
    let build = build(workspace, &selection, &[GRADE_TARGET])?;
    Ok(tasks
        .iter()
        .map(|task| Graded {
            task,
            report: grade_built(workspace, &build, task, implementation),
        })
        .collect())
}

/// Builds the test targets `targets` of each task in `selection` with its
/// implementation, in one cargo call, showing a spinner meanwhile.
///
/// A task that lacks the `grade` target is left out, and grading it later
/// reports that. A target that no task has is left out too.
///
/// # Errors
///
/// Returns an error when cargo cannot be started or prints output that is
/// not its JSON message format.
pub(crate) fn build(
    workspace: &Workspace,
    selection: &[(&Task, Implementation)],
    targets: &[&str],
) -> Result<Build> {
    let buildable: Vec<&(&Task, Implementation)> = selection
        .iter()
        .filter(|(task, _)| task.test_targets.contains(GRADE_TARGET))
        .collect();
    if buildable.is_empty() {
        return Ok(Build::default());
    }
    // Cargo rejects the whole build when no package has a requested target.
    let targets: Vec<&str> = targets
        .iter()
        .copied()
        .filter(|target| {
            buildable
                .iter()
                .any(|(task, _)| task.test_targets.contains(*target))
        })
        .collect();
    let request = BuildRequest {
        packages: buildable
            .iter()
            .map(|(task, _)| task.name.clone())
            .collect(),
        test_targets: targets.iter().map(|target| (*target).to_owned()).collect(),
        features: buildable
            .iter()
            .filter_map(|(task, implementation)| {
                let feature = implementation.feature()?;
                Some(format!("{}/{feature}", task.name))
            })
            .collect(),
    };

    let labels: Vec<&str> = buildable.iter().map(|(_, imp)| imp.label()).collect();
    let files: Vec<String> = targets
        .iter()
        .map(|target| format!("tests/{target}.rs"))
        .collect();
    let step = progress::step(&format!(
        "building {} of {} task(s), implementation {}",
        files.join(" and "),
        buildable.len(),
        summarize_labels(&labels)
    ));
    let build = build_tests(&workspace.root, &request).with_context(|| {
        format!(
            "could not build the test executables with cargo in {}",
            workspace.root.display()
        )
    })?;
    let failed = buildable
        .iter()
        .filter(|(task, _)| build.executable(&task.dir, GRADE_TARGET).is_none())
        .count();
    step.finish(&match failed {
        0 => "built".to_owned(),
        count => format!("built; {count} task(s) did not compile"),
    });
    // With no compiler error of any task, cargo stopped before compiling them,
    // for example on a full disk or an unreachable registry. Its output is then
    // the only explanation, so it is shown here, early enough for a CI log
    // that keeps only its beginning.
    if failed > 0 && !build.success && build.errors.is_empty() {
        eprintln!(
            "cargo stopped before it compiled any task; the end of its output:\n{}",
            last_lines(&build.stderr, CARGO_STOP_LINES)
        );
    }
    Ok(build)
}

/// How many of cargo's last output lines `build` shows when cargo stopped
/// before it compiled any task.
const CARGO_STOP_LINES: usize = 20;

/// Returns the last `count` lines of `text`.
fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

/// Names each implementation of a build once, such as "reference", or
/// "index_shift, reused_slot" for a round of mutants.
fn summarize_labels(labels: &[&str]) -> String {
    let mut distinct = labels.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    distinct.join(", ")
}

/// Grades `task` with the suite in `build`: runs the executable, or reports
/// the compile failure when there is none.
pub(crate) fn grade_built(
    workspace: &Workspace,
    build: &Build,
    task: &Task,
    implementation: &Implementation,
) -> TaskReport {
    if !task.test_targets.contains(GRADE_TARGET) {
        return suite_failure(
            task,
            implementation,
            Vec::new(),
            0,
            "the crate has no tests/grade.rs".to_owned(),
        );
    }
    match build.executable(&task.dir, GRADE_TARGET) {
        Some(executable) => run_suite(executable, task, implementation),
        None => {
            let errors = build_errors(build, task);
            compile_failure(workspace, task, implementation, errors)
        }
    }
}

/// Returns why `build` has no executable for `task`: the task's own
/// compiler errors, or cargo's output when cargo stopped before the task.
pub(crate) fn build_errors(build: &Build, task: &Task) -> String {
    match build.errors.get(&task.dir) {
        Some(errors) => errors.clone(),
        None if !build.success => format!(
            "cargo stopped before it built this task, because of another error; grade the \
             task alone with `cargo workbook grade {}` to see its own result. Cargo's \
             output:\n{}",
            task.number,
            build.stderr.trim_end()
        ),
        None => "cargo reported no error but built no executable".to_owned(),
    }
}

/// Runs one suite executable in the task's folder and follows its events.
fn run_suite(executable: &Path, task: &Task, implementation: &Implementation) -> TaskReport {
    let bar = progress::task(&task.name, implementation.label());
    // CARGO and the rest of the environment pass through, because the suite
    // calls cargo to build the learner's tests.
    // The suite starts every event line with this token, so that lines that
    // code under test writes into the same pipe are ignored.
    let token = Secret::fresh();
    let spawned = Command::new(executable)
        .args(["--format", "json"])
        .current_dir(&task.dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(err) => {
            let report = suite_failure(
                task,
                implementation,
                Vec::new(),
                0,
                format!("{} could not start: {err}", executable.display()),
            );
            bar.finish(&report);
            return report;
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A suite that exits before reading its token fails below for lack of a report.
        let _ = writeln!(stdin, "{}", token.reveal());
    }
    let stderr = testkit::process::Capture::start(child.stderr.take());

    let mut planned = 0;
    let mut checks = Vec::new();
    let mut report = None;
    let mut report_count = 1;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // Only lines with the token are the suite's events.
            let Some(event) = token.strip(&line) else {
                continue;
            };
            match serde_json::from_str::<Event>(event) {
                Ok(Event::Plan { checks: count }) => {
                    planned = count;
                    bar.plan(count);
                }
                Ok(Event::Check(check)) => {
                    bar.check(&check);
                    checks.push(check);
                }
                Ok(Event::Stage { message }) => bar.stage(&message),
                // The suite prints its one report last; a second one is forged.
                Ok(Event::Task(task_report)) if report.is_none() => report = Some(*task_report),
                Ok(Event::Task(_)) => report_count += 1,
                Err(_) => {}
            }
        }
    }
    let status = child.wait();
    let stderr = String::from_utf8_lossy(
        &stderr.finish(std::time::Instant::now() + std::time::Duration::from_secs(1)),
    )
    .into_owned();

    // The suite exits with success exactly when every check passed, so an exit
    // that disagrees with the report means the suite was interfered with.
    let consistent = |report: &TaskReport| match &status {
        Ok(status) => status.success() == (report.checks_passed == report.checks_total),
        Err(_) => false,
    };
    let (report, suite_output) = match report {
        Some(_) if report_count > 1 => {
            let problem = format!(
                "it printed {report_count} final reports, so something other than the suite \
                 wrote to its output; grade again, and check the solution for code that \
                 writes to other processes"
            );
            let failure = suite_failure(task, implementation, checks, planned, problem);
            (failure, stderr)
        }
        Some(report) if !consistent(&report) => {
            let problem = format!(
                "its exit ({}) disagrees with its report, so it was interfered with; check \
                 the solution for code that kills or writes to other processes",
                status
                    .as_ref()
                    .map_or_else(|err| err.to_string(), |status| status.to_string())
            );
            let failure = suite_failure(task, implementation, checks, planned, problem);
            (failure, stderr)
        }
        Some(report)
            if report.task == task.name && report.implementation == implementation.label() =>
        {
            (report, stderr)
        }
        Some(report) => {
            let problem = format!(
                "it graded {} ({}) instead of {} ({}); rebuild with `cargo clean -p {}`",
                report.task,
                report.implementation,
                task.name,
                implementation.label(),
                task.name
            );
            let failure = suite_failure(task, implementation, checks, planned, problem);
            (failure, stderr)
        }
        None => {
            let ended = match status {
                Ok(status) => format!("it ended ({status}) without a final report"),
                Err(err) => format!("waiting for it failed: {err}"),
            };
            let problem = match stderr.trim() {
                "" => ended,
                text => format!("{ended}; its error output:\n{text}"),
            };
            let failure = suite_failure(task, implementation, checks, planned, problem);
            (failure, String::new())
        }
    };
    bar.finish(&report);
    // Warnings of the suite, such as a state folder it could not write.
    if !suite_output.trim().is_empty() {
        eprintln!("{}", suite_output.trim_end());
    }
    report
}

/// Builds the report of a task whose crate did not compile: score 0, the
/// compiler's output, and the number of checks from the last stored result.
/// For the learner's exercise it also stores the report, as a suite would.
fn compile_failure(
    workspace: &Workspace,
    task: &Task,
    implementation: &Implementation,
    errors: String,
) -> TaskReport {
    let state = State::for_workspace(&workspace.root);
    let checks_total = state
        .last_result(&task.name)
        .map_or(0, |last| last.checks_total);
    let hints_used = match implementation {
        Implementation::Exercise => state.hints_used(&task.name),
        _ => 0,
    };
    let report = TaskReport {
        task: task.name.clone(),
        implementation: implementation.label().to_owned(),
        score: 0,
        reason: "the crate does not compile, so no check ran".to_owned(),
        next_step: format!(
            "fix the first compiler error shown (in {} or the tests), then rerun \
             `cargo workbook grade {}`",
            implementation.source_file(),
            task.number
        ),
        checks_passed: 0,
        checks_total,
        complete: false,
        checks: Vec::new(),
        hints_used,
        learner_tests: LearnerTests::not_run(),
        compile_error: Some(errors),
    };
    // `list` shows "does not compile" from the stored result. The suite
    // stores the other results itself, but it never ran here.
    if *implementation == Implementation::Exercise {
        if let Err(err) = state.store_result(&report) {
            eprintln!(
                "warning: could not store the result in {}: {err}",
                state.dir().display()
            );
        }
    }
    eprintln!("{}: does not compile, score 0", task.name);
    report
}

/// Returns the report of a suite that ended without a usable final report:
/// score 0, with the checks seen so far and the problem as the reason.
fn suite_failure(
    task: &Task,
    implementation: &Implementation,
    checks: Vec<CheckResult>,
    planned: usize,
    problem: String,
) -> TaskReport {
    let checks_passed = checks
        .iter()
        .filter(|check| check.outcome == Outcome::Passed)
        .count();
    TaskReport {
        task: task.name.clone(),
        implementation: implementation.label().to_owned(),
        score: 0,
        reason: format!("the grading suite failed: {problem}"),
        next_step: format!(
            "run `cargo test -p {} --test grade` to see the suite's own output",
            task.name
        ),
        checks_passed,
        checks_total: planned.max(checks.len()),
        complete: false,
        checks,
        hints_used: 0,
        learner_tests: LearnerTests::not_run(),
        compile_error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implementation_features_match_the_build_script() {
        assert_eq!(Implementation::Exercise.feature(), None);
        assert_eq!(
            Implementation::Reference.feature().as_deref(),
            Some("reference")
        );
        let mutant = Implementation::Mutant("index_shift".to_owned());
        assert_eq!(mutant.feature().as_deref(), Some("mutant-index-shift"));
        assert_eq!(mutant.label(), "index_shift");
        assert_eq!(mutant.source_file(), "src/mutants/index_shift.rs");
    }

    #[test]
    fn labels_are_summarized_once_each() {
        assert_eq!(summarize_labels(&["reference", "reference"]), "reference");
        assert_eq!(summarize_labels(&["b", "a", "b"]), "a, b");
    }

    #[test]
    fn last_lines_keeps_the_end() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(last_lines("a\n", 5), "a");
        assert_eq!(last_lines("", 3), "");
    }
}

//! Selftest verdicts that build and run the grading suites and the shipped
//! learner tests, once per implementation of every task.
//!
//! Each implementation is one cargo build for all tasks at once: the references
//! together, then the skeletons together. Only one mutant of a crate can be
//! selected at a time, so the mutants build in rounds: every task's first
//! mutant, then every task's second, and so on. The builds happen once, and
//! `--repeat K` reruns only the executables, then compares the outcomes.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use anyhow::Result;
use testkit::cargo::Build;
use testkit::report::{CheckResult, Outcome, TaskReport};

use super::Verdicts;
use crate::discover::{Task, Workspace};
use crate::grade::{self, GRADE_TARGET, Implementation};
use crate::table::{first_error, first_line, outcome_words};
use testkit::process::run_limited;

/// Test target of the learner's own tests.
const MINE_TARGET: &str = "mine";

/// Time the shipped `tests/mine.rs` may run before it counts as hanging.
const MINE_TIME_LIMIT: Duration = Duration::from_secs(60);

/// Lines of compiler output shown under a verdict; the first error is enough
/// to locate the problem, and the same error often repeats per mutant.
const COMPILE_ERROR_LINES: usize = 12;

/// Phrase of the message of a `todo!()` panic.
const TODO_MESSAGE: &str = "not yet implemented";

/// One cargo build: an implementation per task and the targets to build.
struct Group<'a> {
    entries: Vec<(&'a Task, Implementation)>,
    targets: Vec<&'static str>,
}

/// Outcomes of one run, keyed by task name and implementation label; each
/// entry lists check names with outcomes in the suite's order.
/// The entry of a run's outcomes that holds what the learner tests showed.
const LEARNER_TESTS: &str = "(learner tests)";

type RunOutcomes = BTreeMap<(String, String), Vec<(String, String)>>;

/// Records, for every task, a verdict per implementation graded and one on
/// the shipped learner tests, plus the flakiness verdicts when `repeat` is
/// above 1.
///
/// # Errors
///
/// Returns an error only when cargo cannot be run at all.
pub(crate) fn check(
    workspace: &Workspace,
    tasks: &[&Task],
    repeat: u32,
    verdicts: &mut Verdicts,
) -> Result<()> {
    let groups = plan(tasks, verdicts);
    let mut builds = Vec::with_capacity(groups.len());
    for group in &groups {
        builds.push(grade::build(workspace, &group.entries, &group.targets)?);
    }

    let mut runs: Vec<RunOutcomes> = Vec::new();
    for run in 1..=repeat {
        if repeat > 1 {
            eprintln!("selftest: grading run {run} of {repeat}");
        }
        let mut outcomes = RunOutcomes::new();
        for (group, build) in groups.iter().zip(&builds) {
            for (task, implementation) in &group.entries {
                let report = grade::grade_built(workspace, build, task, implementation);
                if run == 1 {
                    judge(task, implementation, &report, verdicts);
                }
                outcomes.insert(
                    (task.name.clone(), implementation.label().to_owned()),
                    outcome_list(&report),
                );
            }
        }
        runs.push(outcomes);
    }

    check_mine(tasks, &groups, &builds, verdicts);
    if repeat > 1 {
        check_stability(tasks, &runs, verdicts);
    }
    Ok(())
}

/// Plans the builds, and fails at once each task that lacks the reference
/// or skeleton feature, because cargo rejects an unknown feature for the
/// whole build.
fn plan<'a>(tasks: &[&'a Task], verdicts: &mut Verdicts) -> Vec<Group<'a>> {
    let mut groups = Vec::new();
    for (implementation, targets) in [
        (Implementation::Reference, vec![GRADE_TARGET, MINE_TARGET]),
        (Implementation::Skeleton, vec![GRADE_TARGET]),
    ] {
        let feature = implementation.feature().unwrap_or_default();
        let mut entries = Vec::new();
        for task in tasks {
            if task.features.contains(&feature) {
                entries.push((*task, implementation.clone()));
            } else {
                verdicts.fail(
                    format!(
                        "{} {}: the crate has a `{feature}` feature",
                        task.name,
                        implementation.label()
                    ),
                    &format!("add `{feature} = []` to [features] in its Cargo.toml"),
                );
            }
        }
        if !entries.is_empty() {
            groups.push(Group { entries, targets });
        }
    }

    let rounds = tasks
        .iter()
        .map(|task| task.mutants().len())
        .max()
        .unwrap_or(0);
    for round in 0..rounds {
        let entries: Vec<(&Task, Implementation)> = tasks
            .iter()
            .filter_map(|task| {
                let stem = task.mutants().into_iter().nth(round)?;
                Some((*task, Implementation::Mutant(stem)))
            })
            .collect();
        groups.push(Group {
            entries,
            targets: vec![GRADE_TARGET, MINE_TARGET],
        });
    }
    groups
}

/// Records the verdict on one implementation's report: the reference passes
/// and scores 3, the skeleton fails every check with a `todo!()`, and a
/// mutant fails at least one check.
fn judge(
    task: &Task,
    implementation: &Implementation,
    report: &TaskReport,
    verdicts: &mut Verdicts,
) {
    let name = &task.name;
    let label = implementation.label();
    if let Some(errors) = &report.compile_error {
        let kind = match implementation {
            Implementation::Mutant(stem) => format!("mutant {stem}"),
            other => other.label().to_owned(),
        };
        return verdicts.fail(
            format!("{name} {kind}: builds ({})", first_error(errors)),
            &first_lines(errors, COMPILE_ERROR_LINES),
        );
    }
    let failing: Vec<&CheckResult> = report
        .checks
        .iter()
        .filter(|check| check.outcome != Outcome::Passed)
        .collect();
    let total = report.checks.len();

    match implementation {
        Implementation::Reference => {
            let learner = &report.learner_tests;
            let passed = total > 0 && failing.is_empty() && report.score == 3;
            let what = format!(
                "{name} reference: all {total} checks pass and it scores 3 (its tests catch {} \
                 of {} mutants)",
                learner.mutants_killed.len(),
                learner.mutants_total
            );
            let mut details = vec![format!("score {}: {}", report.score, report.reason)];
            details.extend(failing.iter().map(|check| describe_check(check)));
            if let Some(message) = &learner.message {
                details.push(format!("learner tests: {message}"));
            }
            verdicts.record(passed, what, &details.join("\n"));
        }
        Implementation::Skeleton => {
            let wrong: Vec<String> = report
                .checks
                .iter()
                .filter(|check| {
                    check.outcome != Outcome::Failed
                        || !check
                            .message
                            .as_deref()
                            .unwrap_or("")
                            .contains(TODO_MESSAGE)
                })
                .map(describe_check)
                .collect();
            let what = format!(
                "{name} skeleton: builds and all {total} checks fail with \"{TODO_MESSAGE}\""
            );
            let mut details = wrong;
            if total == 0 {
                details.push(format!("the suite ran no check: {}", report.reason));
            }
            verdicts.record(total > 0 && details.is_empty(), what, &details.join("\n"));
        }
        Implementation::Mutant(_) | Implementation::Exercise => {
            if failing.is_empty() || !report.complete {
                let detail = format!(
                    "{} of {total} checks pass; a grading check must fail on this mutant \
                     ({}): {}",
                    report.checks_passed,
                    implementation.source_file(),
                    report.reason
                );
                return verdicts.fail(format!("{name} mutant {label}: caught by a check"), &detail);
            }
            let caught: Vec<&str> = failing.iter().map(|check| check.name.as_str()).collect();
            verdicts.pass(format!(
                "{name} mutant {label}: caught by {}",
                caught.join(", ")
            ));
        }
    }
}

/// Keeps the first `count` lines of `text` and counts the lines left out.
fn first_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    let mut kept = lines[..lines.len().min(count)].join("\n");
    if lines.len() > count {
        kept.push_str(&format!("\n… {} more lines", lines.len() - count));
    }
    kept
}

/// Describes a check's outcome and the first line of its message.
fn describe_check(check: &CheckResult) -> String {
    let message = check.message.as_deref().unwrap_or("");
    format!(
        "{} {}: {}",
        check.name,
        outcome_words(check.outcome),
        first_line(message, 100)
    )
}

/// Records whether the shipped `tests/mine.rs` passes on the reference
/// and on every mutant, as it must, so that catching a mutant is left to the
/// learner.
fn check_mine(tasks: &[&Task], groups: &[Group<'_>], builds: &[Build], verdicts: &mut Verdicts) {
    for task in tasks {
        let what = format!(
            "{}: the shipped tests/mine.rs passes on the reference and on every mutant",
            task.name
        );
        let mut problems = Vec::new();
        let mut runs = 0;
        for (group, build) in groups.iter().zip(builds) {
            if !group.targets.contains(&MINE_TARGET) {
                continue;
            }
            for (_, implementation) in group.entries.iter().filter(|(t, _)| t.name == task.name) {
                runs += 1;
                if let Some(problem) = run_mine(task, implementation, build) {
                    problems.push(problem);
                }
            }
        }
        if runs == 0 {
            problems.push("no reference or mutant was built, so tests/mine.rs never ran".into());
        }
        verdicts.record(problems.is_empty(), what, &problems.join("\n"));
    }
}

/// Runs the `mine` executable of one build and returns what went wrong, if
/// anything.
fn run_mine(task: &Task, implementation: &Implementation, build: &Build) -> Option<String> {
    let label = implementation.label();
    let Some(executable) = build.executable(&task.dir, MINE_TARGET) else {
        let errors = grade::build_errors(build, task);
        return Some(format!(
            "{label}: tests/mine.rs was not built: {}",
            first_line(&errors, 160)
        ));
    };
    let mut command = Command::new(executable);
    command.current_dir(&task.dir);
    match run_limited(&mut command, b"", MINE_TIME_LIMIT) {
        Err(err) => Some(format!("{label}: tests/mine.rs could not start: {err}")),
        Ok(finished) => match finished.status {
            None => Some(format!(
                "{label}: tests/mine.rs ran past {} s and was stopped",
                MINE_TIME_LIMIT.as_secs()
            )),
            Some(status) if status.success() => None,
            Some(status) => {
                let mut output = String::from_utf8_lossy(&finished.stdout).into_owned();
                output.push_str(&String::from_utf8_lossy(&finished.stderr));
                let tail: Vec<&str> = output.lines().rev().take(12).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                Some(format!(
                    "{label}: tests/mine.rs failed ({status}); the shipped example must pass on \
                     every mutant:\n{}",
                    tail.join("\n")
                ))
            }
        },
    }
}

/// Returns a report's check outcomes, and what its learner tests showed,
/// as comparable words.
fn outcome_list(report: &TaskReport) -> Vec<(String, String)> {
    let mut list: Vec<(String, String)> = report
        .checks
        .iter()
        .map(|check| (check.name.clone(), outcome_words(check.outcome).to_owned()))
        .collect();
    let learner = &report.learner_tests;
    list.push((
        LEARNER_TESTS.to_owned(),
        format!(
            "{:?}, catching [{}]",
            learner.status,
            learner.mutants_killed.join(", ")
        ),
    ));
    list
}

/// Records the flakiness verdicts. An outcome that changed between runs is a
/// failure on the reference, the skeleton and the learner tests. On a mutant
/// it is allowed when another check caught that mutant in every run: a
/// real-thread check may catch a race only by chance, and the score does not
/// depend on it. Each such check is listed in a passing verdict.
fn check_stability(tasks: &[&Task], runs: &[RunOutcomes], verdicts: &mut Verdicts) {
    for task in tasks {
        let mut failed = false;
        let mut chance = false;
        for (label, check, history) in flaky_checks(&task.name, runs) {
            let always = always_catching(&task.name, &label, runs);
            let by_chance = label != "reference"
                && label != "skeleton"
                && check != LEARNER_TESTS
                && !always.is_empty();
            if by_chance {
                chance = true;
                verdicts.pass(format!(
                    "{}: mutant {label} is caught in every run by {}; {check} caught it only \
                     in some ({history})",
                    task.name,
                    always.join(", ")
                ));
            } else {
                failed = true;
                verdicts.fail(
                    format!("flaky: {}/{label}/{check}: {history}", task.name),
                    "",
                );
            }
        }
        if !failed {
            let apart = if chance {
                ", apart from the checks above that catch a mutant by chance"
            } else {
                ""
            };
            verdicts.pass(format!(
                "{}: every implementation is judged the same in all {} runs{apart}",
                task.name,
                runs.len()
            ));
        }
    }
}

/// Returns the checks of `task` that failed on implementation `label` in
/// every run.
fn always_catching(task: &str, label: &str, runs: &[RunOutcomes]) -> Vec<String> {
    let key = (task.to_owned(), label.to_owned());
    let Some(first) = runs.first().and_then(|run| run.get(&key)) else {
        return Vec::new();
    };
    first
        .iter()
        .filter(|(check, _)| check != LEARNER_TESTS)
        .filter(|(check, _)| {
            runs.iter().all(|run| {
                run.get(&key).is_some_and(|checks| {
                    checks
                        .iter()
                        .any(|(other, outcome)| other == check && outcome != "passed")
                })
            })
        })
        .map(|(check, _)| check.clone())
        .collect()
}

/// Returns the implementation, the check and its outcome per run for each
/// check of `task` whose outcome changed between runs.
pub(crate) fn flaky_checks(task: &str, runs: &[RunOutcomes]) -> Vec<(String, String, String)> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    let mut flaky = Vec::new();
    for ((name, label), checks) in first.iter().filter(|((name, _), _)| name == task) {
        for (index, (check, _)) in checks.iter().enumerate() {
            let history: Vec<String> = runs
                .iter()
                .map(|run| {
                    run.get(&(name.clone(), label.clone()))
                        .and_then(|checks| checks.get(index))
                        .filter(|(other, _)| other == check)
                        .map_or("missing".to_owned(), |(_, outcome)| outcome.clone())
                })
                .collect();
            if history.iter().any(|outcome| *outcome != history[0]) {
                let described: Vec<String> = history
                    .iter()
                    .enumerate()
                    .map(|(run, outcome)| format!("run {}: {outcome}", run + 1))
                    .collect();
                flaky.push((label.clone(), check.clone(), described.join(", ")));
            }
        }
    }
    flaky
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(outcomes: &[(&str, &str)]) -> RunOutcomes {
        let checks = outcomes
            .iter()
            .map(|(name, outcome)| ((*name).to_owned(), (*outcome).to_owned()))
            .collect();
        RunOutcomes::from([(("task01_basic".to_owned(), "reference".to_owned()), checks)])
    }

    #[test]
    fn stable_runs_have_no_flaky_check() {
        let runs = [run(&[("a", "passed")]), run(&[("a", "passed")])];
        assert!(flaky_checks("task01_basic", &runs).is_empty());
    }

    #[test]
    fn changed_outcome_is_named_with_its_history() {
        let runs = [
            run(&[("a", "passed"), ("b", "passed")]),
            run(&[("a", "passed"), ("b", "timed_out")]),
        ];
        let flaky = flaky_checks("task01_basic", &runs);
        assert_eq!(
            flaky,
            [(
                "reference".to_owned(),
                "b".to_owned(),
                "run 1: passed, run 2: timed_out".to_owned()
            )]
        );
    }

    #[test]
    fn mutant_caught_in_every_run_names_its_checks() {
        let mutant = |outcomes: &[(&str, &str)]| {
            let checks = outcomes
                .iter()
                .map(|(name, outcome)| ((*name).to_owned(), (*outcome).to_owned()))
                .collect();
            RunOutcomes::from([(("task01_basic".to_owned(), "racy".to_owned()), checks)])
        };
        let runs = [
            mutant(&[("a", "failed"), ("b", "passed"), ("c", "passed")]),
            mutant(&[("a", "timed out"), ("b", "failed"), ("c", "passed")]),
        ];
        assert_eq!(always_catching("task01_basic", "racy", &runs), ["a"]);
        let uncaught = [
            mutant(&[("a", "failed"), ("b", "passed")]),
            mutant(&[("a", "passed"), ("b", "failed")]),
        ];
        assert!(always_catching("task01_basic", "racy", &uncaught).is_empty());
    }

    #[test]
    fn other_tasks_are_not_reported() {
        let runs = [run(&[("a", "passed")]), run(&[("a", "failed")])];
        assert!(flaky_checks("task02_unsubscribe", &runs).is_empty());
    }
}

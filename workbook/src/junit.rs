//! The JUnit XML results file that `grade --junit FILE` writes for CI.
//!
//! Each task is one test suite named after its crate, and each grading check
//! one test case. A task that does not compile has a single failing test case
//! `compile`, and a task whose learner tests ran has a test case
//! `learner_tests`. The task's score, reason and next step are suite
//! properties, so CI dashboards that show properties can show them.

use std::fs;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
use testkit::report::{CheckResult, LearnerStatus, LearnerTests, Outcome};

use crate::grade::{Graded, Results};
use crate::table::first_line;

/// Maximum characters of a `message` attribute; the full text goes in the
/// element's body.
const MESSAGE_WIDTH: usize = 200;

/// Builds the JUnit report of `results`.
pub(crate) fn report(results: &Results<'_>) -> Report {
    let mut report = Report::new(format!("workbook ({})", results.implementation));
    for graded in &results.tasks {
        report.add_test_suite(suite(graded));
    }
    report
}

/// Builds the test suite of one task, with its score as properties.
fn suite(graded: &Graded<'_>) -> TestSuite {
    let task = &graded.report;
    let mut suite = TestSuite::new(task.task.as_str());
    suite.add_properties([
        Property::new("number", graded.task.number.to_string()),
        Property::new("level", graded.task.level.as_str()),
        Property::new("title", graded.task.title.as_str()),
        Property::new("implementation", task.implementation.as_str()),
        Property::new("score", task.score.to_string()),
        Property::new("reason", task.reason.as_str()),
        Property::new("next_step", task.next_step.as_str()),
        Property::new("hints_used", task.hints_used.to_string()),
    ]);
    suite.set_time(Duration::from_millis(
        task.checks.iter().map(|check| check.duration_ms).sum(),
    ));

    if let Some(errors) = &task.compile_error {
        let mut case = TestCase::new("compile", failure("compile_error", errors));
        case.set_classname(task.task.as_str());
        suite.add_test_case(case);
    }
    for check in &task.checks {
        suite.add_test_case(check_case(&task.task, check));
    }
    if task.learner_tests.status != LearnerStatus::NotRun {
        suite.add_test_case(learner_case(&task.task, &task.learner_tests));
    }
    suite
}

/// Builds the test case of one grading check.
fn check_case(class: &str, check: &CheckResult) -> TestCase {
    let status = match check.outcome {
        Outcome::Passed => TestCaseStatus::success(),
        outcome => {
            let kind = match outcome {
                Outcome::TimedOut => "timed_out",
                Outcome::Crashed => "crashed",
                _ => "failed",
            };
            failure(kind, check.message.as_deref().unwrap_or("the check failed"))
        }
    };
    let mut case = TestCase::new(check.name.as_str(), status);
    case.set_classname(class)
        .set_time(Duration::from_millis(check.duration_ms));
    case
}

/// Builds the `learner_tests` test case, which fails when the learner's
/// tests fail on the solution, do not compile or were rejected.
fn learner_case(class: &str, learner: &LearnerTests) -> TestCase {
    let killed = if learner.mutants_killed.is_empty() {
        format!("caught none of {} mutants", learner.mutants_total)
    } else {
        format!(
            "caught {} of {} mutants: {}",
            learner.mutants_killed.len(),
            learner.mutants_total,
            learner.mutants_killed.join(", ")
        )
    };
    let status = match learner.status {
        LearnerStatus::Passing | LearnerStatus::NotRun => TestCaseStatus::success(),
        LearnerStatus::Failing => failure(
            "failed",
            learner.message.as_deref().unwrap_or("a learner test fails"),
        ),
        LearnerStatus::Rejected => failure(
            "rejected",
            learner
                .message
                .as_deref()
                .unwrap_or("the learner tests inspect which implementation is compiled"),
        ),
        LearnerStatus::CompileError => failure(
            "compile_error",
            learner
                .message
                .as_deref()
                .unwrap_or("the learner tests do not compile"),
        ),
    };
    let mut case = TestCase::new("learner_tests", status);
    case.set_classname(class)
        .set_system_out(format!("{} ({killed})", learner.targets.join(", ")));
    case
}

/// Returns a failure whose `type` is `kind`, with the message's first line
/// as the attribute and the whole message as the element's text.
fn failure(kind: &str, message: &str) -> TestCaseStatus {
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
    status
        .set_type(kind)
        .set_message(first_line(message, MESSAGE_WIDTH))
        .set_description(message);
    status
}

/// Writes the JUnit report of `results` to `path`.
///
/// # Errors
///
/// Returns an error naming `path` when it cannot be written.
pub(crate) fn write(path: &Path, results: &Results<'_>) -> Result<()> {
    let xml = report(results)
        .to_string()
        .context("the JUnit report failed to serialize")?;
    fs::write(path, xml).with_context(|| {
        format!(
            "could not write the JUnit results to {}; check that its folder exists and is \
             writable",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::tests::sample_task;
    use crate::table::tests::sample_report;

    fn sample_xml() -> String {
        let first = sample_task(1, "task01_basic", "A first broker");
        let second = sample_task(2, "task02_unsubscribe", "Unsubscribe");
        let mut failing = sample_report(
            "task01_basic",
            Some("close_ends_receivers"),
            "receiver still open\n  (panicked at tests/grade.rs:40:5)",
        );
        failing.checks[1].outcome = Outcome::TimedOut;
        failing.learner_tests = LearnerTests {
            status: LearnerStatus::Passing,
            targets: vec!["mine".to_owned()],
            mutants_killed: vec!["index_shift".to_owned()],
            mutants_total: 2,
            message: None,
        };
        let mut broken = sample_report("task02_unsubscribe", None, "");
        broken.checks.clear();
        broken.compile_error = Some("error[E0425]: cannot find value `x`\n --> a.rs:1:1".into());
        let results = Results {
            implementation: "exercise".to_owned(),
            tasks: vec![
                Graded {
                    task: &first,
                    report: failing,
                },
                Graded {
                    task: &second,
                    report: broken,
                },
            ],
            all_tasks_graded: true,
        };
        report(&results).to_string().expect("the report serializes")
    }

    #[test]
    fn report_round_trips_with_one_suite_per_task() {
        let xml = sample_xml();
        let parsed = Report::deserialize_from_str(&xml).expect("the XML parses back");
        let names: Vec<&str> = parsed.test_suites.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["task01_basic", "task02_unsubscribe"]);

        let first = &parsed.test_suites[0];
        let cases: Vec<&str> = first.test_cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            cases,
            [
                "publish_reaches_subscribers",
                "close_ends_receivers",
                "learner_tests"
            ]
        );
        assert_eq!(first.failures, 1);
        assert_eq!(
            first.test_cases[0].classname.as_ref().map(|c| c.as_str()),
            Some("task01_basic")
        );
    }

    #[test]
    fn failure_carries_outcome_type_and_message() {
        let parsed = Report::deserialize_from_str(&sample_xml()).expect("the XML parses back");
        let case = &parsed.test_suites[0].test_cases[1];
        let TestCaseStatus::NonSuccess {
            kind,
            message,
            ty,
            description,
            ..
        } = &case.status
        else {
            panic!(
                "close_ends_receivers must be a failure, got {:?}",
                case.status
            );
        };
        assert_eq!(*kind, NonSuccessKind::Failure);
        assert_eq!(ty.as_ref().map(|t| t.as_str()), Some("timed_out"));
        assert_eq!(
            message.as_ref().map(|m| m.as_str()),
            Some("receiver still open")
        );
        let description = description.as_ref().map(|d| d.as_str()).unwrap_or("");
        assert!(
            description.contains("panicked at tests/grade.rs:40:5"),
            "{description}"
        );
        assert_eq!(case.time, Some(Duration::from_millis(12)));
    }

    #[test]
    fn compile_error_is_one_failing_case() {
        let parsed = Report::deserialize_from_str(&sample_xml()).expect("the XML parses back");
        let suite = &parsed.test_suites[1];
        assert_eq!(suite.test_cases.len(), 1);
        let case = &suite.test_cases[0];
        assert_eq!(case.name.as_str(), "compile");
        assert!(matches!(
            &case.status,
            TestCaseStatus::NonSuccess { ty: Some(ty), .. } if ty.as_str() == "compile_error"
        ));
    }

    #[test]
    fn suite_properties_carry_the_score() {
        let parsed = Report::deserialize_from_str(&sample_xml()).expect("the XML parses back");
        let score = parsed.test_suites[0]
            .properties
            .iter()
            .find(|property| property.name.as_str() == "score")
            .map(|property| property.value.as_str());
        assert_eq!(score, Some("0"));
    }
}

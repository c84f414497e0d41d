//! The rubric: how check results, hints and the learner's tests make a score.

use super::suite::plural;
use crate::report::{CheckResult, LearnerStatus, LearnerTests, Outcome};

/// Highest possible total: fifteen tasks of at most 3 points.
pub const MAX_TOTAL: u32 = 45;

/// A range of totals and the advice the rubric gives for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Band {
    /// Lowest total in the band.
    pub min: u32,
    /// Highest total in the band.
    pub max: u32,
    /// Meaning of a total in this band, and the next thing to study.
    pub advice: &'static str,
}

/// The rubric's four bands, in ascending order.
pub const BANDS: [Band; 4] = [
    Band {
        min: 0,
        max: 15,
        advice: "You can recognise publish/subscribe but not yet build it. \
                 Reread the READMEs of tasks 1-4 and solve them again.",
    },
    Band {
        min: 16,
        max: 25,
        advice: "You can build a working in-process broker. \
                 Go on with tasks 5-9, and do not skip task 5: cancellation is where leaks hide.",
    },
    Band {
        min: 26,
        max: 35,
        advice: "You know the in-process world. Now build tasks 12 (Kafka consumer groups) \
                 and 13 (outbox) for real: networked systems fail in ways that \
                 in-process code never shows, and only breaking them teaches that.",
    },
    Band {
        min: 36,
        max: 45,
        advice: "You work at a senior level. If task 15 taught you little, map the on-disk \
                 format of an embedded store such as LMDB onto your write-ahead log.",
    },
];

/// Returns the band that contains `total`.
pub fn band_for(total: u32) -> Band {
    BANDS
        .into_iter()
        .find(|band| total <= band.max)
        .unwrap_or(BANDS[BANDS.len() - 1])
}

/// Scores one task by the rubric; returns the score, the reason and the next step.
///
/// - 0 when any check did not pass, or when only some checks ran;
/// - 3 when every check passes and the learner's tests pass on the solution
///   and fail on at least one mutant, with or without hints;
/// - otherwise 1 when hints were revealed and 2 when none were.
pub fn score_task(
    task: &str,
    checks: &[CheckResult],
    complete: bool,
    hints_used: u32,
    learner: &LearnerTests,
) -> (u8, String, String) {
    let total = checks.len();
    let passed = checks
        .iter()
        .filter(|check| check.outcome == Outcome::Passed)
        .count();

    if let Some(failing) = checks.iter().find(|check| check.outcome != Outcome::Passed) {
        let reason = format!(
            "{passed} of {total} checks pass; `{}` does not",
            failing.name
        );
        let next = format!(
            "make `{name}` pass: its message above says which part of the contract \
             ({subject}) broke; rerun it alone with `cargo test -p {task} --test grade -- {name}`",
            name = failing.name,
            subject = failing.subject,
        );
        return (0, reason, next);
    }
    if !complete {
        let reason =
            format!("{passed} of {total} selected checks pass, but a filter skipped the rest");
        let next = format!("run `cargo test -p {task}` without a filter to get a score");
        return (0, reason, next);
    }

    let hints = match hints_used {
        0 => "no hints used".to_owned(),
        1 => "1 hint revealed".to_owned(),
        count => format!("{count} hints revealed"),
    };
    let killed = learner.mutants_killed.len();
    if learner.status == LearnerStatus::Passing && killed > 0 {
        let reason = format!(
            "all {} pass, {hints}, and your tests catch {killed} of {} buggy versions",
            plural(total, "check"),
            learner.mutants_total
        );
        let next = "move on to the next task; `cargo workbook list` shows them all";
        return (3, reason, next.to_owned());
    }

    let score = if hints_used == 0 { 2 } else { 1 };
    let reason = format!("all {} pass, {hints}", plural(total, "check"));
    let next = match learner.status {
        LearnerStatus::CompileError => {
            "tests/mine.rs does not compile; fix it, then make one of its tests fail on a \
             buggy version of this task to earn 3"
                .to_owned()
        }
        LearnerStatus::Rejected => format!(
            "tests/mine.rs was not run: {}; test the broker's behaviour instead to earn 3",
            learner
                .message
                .as_deref()
                .unwrap_or("it inspects which implementation is compiled")
        ),
        LearnerStatus::Failing => format!(
            "a test in tests/mine.rs fails on your own solution ({}); fix it, then make one \
             fail on a buggy version of this task to earn 3",
            learner.message.as_deref().unwrap_or("see its output")
        ),
        LearnerStatus::Passing | LearnerStatus::NotRun => format!(
            "write a test in tests/mine.rs that passes on your solution and fails on one of \
             the grader's {} buggy versions of this task to earn 3",
            learner.mutants_total
        ),
    };
    (score, reason, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(outcome: Outcome) -> CheckResult {
        CheckResult {
            name: "close_ends_receivers".to_owned(),
            subject: "Broker::close".to_owned(),
            outcome,
            duration_ms: 1,
            message: None,
        }
    }

    fn learner(status: LearnerStatus, killed: usize) -> LearnerTests {
        LearnerTests {
            status,
            targets: vec!["mine".to_owned()],
            mutants_killed: (0..killed).map(|index| format!("mutant{index}")).collect(),
            mutants_total: 3,
            message: None,
        }
    }

    #[test]
    fn any_failing_check_scores_zero() {
        let checks = [check(Outcome::Passed), check(Outcome::TimedOut)];
        let (score, reason, _) =
            score_task("t", &checks, true, 0, &learner(LearnerStatus::Passing, 3));
        assert_eq!(score, 0);
        assert!(reason.starts_with("1 of 2 checks pass"), "{reason}");
    }

    #[test]
    fn filtered_run_scores_zero() {
        let checks = [check(Outcome::Passed)];
        let (score, _, _) = score_task("t", &checks, false, 0, &LearnerTests::not_run());
        assert_eq!(score, 0);
    }

    #[test]
    fn hints_lower_two_to_one() {
        let checks = [check(Outcome::Passed)];
        let none = LearnerTests::not_run();
        assert_eq!(score_task("t", &checks, true, 0, &none).0, 2);
        assert_eq!(score_task("t", &checks, true, 2, &none).0, 1);
    }

    #[test]
    fn killing_tests_earn_three_even_with_hints() {
        let checks = [check(Outcome::Passed)];
        let killing = learner(LearnerStatus::Passing, 1);
        assert_eq!(score_task("t", &checks, true, 0, &killing).0, 3);
        assert_eq!(score_task("t", &checks, true, 1, &killing).0, 3);
    }

    #[test]
    fn score_two_advice_names_no_folder() {
        let checks = [check(Outcome::Passed)];
        let passing = learner(LearnerStatus::Passing, 0);
        let (score, _, next) = score_task("t", &checks, true, 0, &passing);
        assert_eq!(score, 2);
        assert!(next.contains("3 buggy versions"), "{next}");
        assert!(next.contains("tests/mine.rs"), "{next}");
        assert!(!next.contains("src/mutants"), "{next}");
    }

    #[test]
    fn tests_failing_on_solution_never_earn_three() {
        let checks = [check(Outcome::Passed)];
        let failing = learner(LearnerStatus::Failing, 3);
        assert_eq!(score_task("t", &checks, true, 0, &failing).0, 2);
    }

    #[test]
    fn bands_cover_every_total() {
        for total in 0..=MAX_TOTAL {
            let band = band_for(total);
            assert!(band.min <= total, "total {total} is below its band");
            assert!(total <= band.max, "total {total} is above its band");
        }
        assert_eq!(band_for(15).max, 15);
        assert_eq!(band_for(16).min, 16);
        assert_eq!(band_for(45).min, 36);
    }
}

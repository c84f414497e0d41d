//! `cargo workbook list`: every task with its level, title, status, score
//! and hints, from files and stored results only, without building.

use std::fs;

use testkit::report::TaskReport;
use testkit::state::State;

use crate::discover::{Task, Workspace};
use crate::hints;
use crate::table::{Column, Table};

/// Progress of the learner on one task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// `src/exercise.rs` is byte-identical to `skeleton/exercise.rs`.
    NotStarted,
    /// The exercise changed, but no grading result is stored.
    NotGraded,
    /// The last grading found a compile error.
    DoesNotCompile,
    /// The last grading had failing checks.
    Partial {
        /// Checks that passed.
        passed: usize,
        /// Checks run.
        total: usize,
    },
    /// The last grading passed every check.
    Passing,
}

impl Status {
    /// Decides the status from whether the exercise still equals its
    /// skeleton and from the last stored result.
    pub(crate) fn decide(untouched: bool, last: Option<&TaskReport>) -> Status {
        if untouched {
            return Status::NotStarted;
        }
        match last {
            None => Status::NotGraded,
            Some(report) if report.compile_error.is_some() => Status::DoesNotCompile,
            Some(report) if report.score >= 1 => Status::Passing,
            Some(report) => Status::Partial {
                passed: report.checks_passed,
                total: report.checks_total,
            },
        }
    }

    /// Returns the status as `list` shows it.
    pub(crate) fn describe(&self) -> String {
        match self {
            Status::NotStarted => "not started".to_owned(),
            Status::NotGraded => "edited, not graded yet".to_owned(),
            Status::DoesNotCompile => "does not compile".to_owned(),
            Status::Partial { passed, total } => format!("{passed} of {total} checks"),
            Status::Passing => "passing".to_owned(),
        }
    }
}

/// Returns whether the task's `src/exercise.rs` equals its pristine copy;
/// `false` when either file cannot be read.
pub(crate) fn is_untouched(task: &Task) -> bool {
    let exercise = fs::read(task.dir.join("src").join("exercise.rs"));
    let skeleton = fs::read(task.dir.join("skeleton").join("exercise.rs"));
    matches!((exercise, skeleton), (Ok(exercise), Ok(skeleton)) if exercise == skeleton)
}

/// Returns whether the learner's files of `task` changed after its last
/// result was stored, so that the stored status may be out of date.
fn changed_since_graded(task: &Task, state: &State) -> bool {
    let Some(graded) = state.last_result_time(&task.name) else {
        return false;
    };
    ["src/exercise.rs", "tests/mine.rs"].iter().any(|file| {
        let modified = fs::metadata(task.dir.join(file)).and_then(|meta| meta.modified());
        modified.is_ok_and(|modified| modified > graded)
    })
}

/// Prints the task list.
pub(crate) fn run(workspace: &Workspace) {
    let state = State::for_workspace(&workspace.root);
    let mut table = Table::new(
        &[
            Column {
                header: "Task",
                right: true,
            },
            Column {
                header: "Level",
                right: false,
            },
            Column {
                header: "Title",
                right: false,
            },
            Column {
                header: "Status",
                right: false,
            },
            Column {
                header: "Score",
                right: true,
            },
            Column {
                header: "Hints",
                right: false,
            },
        ],
        2,
    );
    for task in &workspace.tasks {
        let last = state.last_result(&task.name);
        let status = Status::decide(is_untouched(task), last.as_ref());
        let status = if last.is_some() && changed_since_graded(task, &state) {
            format!("{}, changed since graded", status.describe())
        } else {
            status.describe()
        };
        let score = last
            .as_ref()
            .map_or("-".to_owned(), |r| r.score.to_string());
        let used = state.hints_used(&task.name);
        let hints = match hints::load(task) {
            Ok(all) => format!("{used} of {}", all.len()),
            Err(_) => format!("{used} of ?"),
        };
        table.row(
            vec![
                task.number.to_string(),
                task.level.clone(),
                task.title.clone(),
                status,
                score,
                hints,
            ],
            Vec::new(),
        );
    }
    print!("{}", table.render());
    if workspace.tasks.is_empty() {
        println!("(no task crates in {})", workspace.root.display());
    } else {
        println!(
            "\n`cargo workbook hint N` reveals a hint; `cargo workbook grade N` grades task N."
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::tests::sample_report;

    #[test]
    fn untouched_exercise_is_not_started() {
        let report = sample_report("t", None, "");
        assert_eq!(Status::decide(true, Some(&report)), Status::NotStarted);
    }

    #[test]
    fn edited_exercise_without_result_is_not_graded() {
        assert_eq!(
            Status::decide(false, None).describe(),
            "edited, not graded yet"
        );
    }

    #[test]
    fn stored_results_give_partial_passing_or_compile_error() {
        let failing = sample_report("t", Some("close_ends_receivers"), "boom");
        assert_eq!(
            Status::decide(false, Some(&failing)).describe(),
            "1 of 2 checks"
        );

        let passing = sample_report("t", None, "");
        assert_eq!(Status::decide(false, Some(&passing)).describe(), "passing");

        let mut broken = sample_report("t", None, "");
        broken.score = 0;
        broken.compile_error = Some("error".to_owned());
        assert_eq!(
            Status::decide(false, Some(&broken)).describe(),
            "does not compile"
        );
    }
}

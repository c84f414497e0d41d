//! The workbook CLI, run as `cargo workbook …` from any folder of the
//! workspace.
//!
//! It lists the tasks, reveals hints, grades tasks and writes results for CI,
//! reruns a task's grading on every save, resets a task to its skeleton, and
//! proves the workbook itself with `selftest`. Grading is not implemented here:
//! each task's `tests/grade.rs` is a `testkit` suite that scores itself, and
//! this program builds those suites, runs them, reads the JSON events they
//! print and adds totals, the rubric band and result files.

mod discover;
mod grade;
mod hints;
mod json;
mod junit;
mod list;
mod progress;
mod reset;
mod selftest;
mod submission;
mod table;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::discover::Workspace;
use crate::grade::Implementation;

/// Command line of `cargo workbook`.
#[derive(Debug, Parser)]
#[command(
    name = "workbook",
    bin_name = "cargo workbook",
    about = "List, grade and check the tasks of the publish/subscribe workbook"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Lists every task with its level, title, status, score and hints used.
    List,
    /// Prints the next hint of a task and records that it was revealed.
    Hint {
        /// Task number (1, 2, …) or crate name (task01_basic).
        task: String,
    },
    /// Grades tasks, prints a score table, the total out of 45 and, when
    /// every task is graded, the rubric band.
    Grade(GradeArgs),
    /// Regrades a task whenever a file under its src/ or tests/ changes.
    Watch {
        /// Task number or crate name; defaults to the first task that does
        /// not pass yet.
        task: Option<String>,
    },
    /// Restores a task's src/exercise.rs from skeleton/exercise.rs and
    /// deletes its stored result; revealed hints stay counted.
    Reset {
        /// Task number or crate name.
        task: String,
    },
    /// Proves the workbook: references pass, skeletons score 0, mutants are
    /// caught, and the workspace builds, lints and tests clean.
    Selftest {
        /// Task numbers or crate names to check; every task, and then the
        /// workspace-wide build, lint and test steps, when none is given.
        tasks: Vec<String>,
        /// Number of times to run the grading suites, to expose checks whose
        /// outcome changes between runs.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        repeat: u32,
    },
}

/// Options of `cargo workbook grade`.
#[derive(Debug, Args)]
struct GradeArgs {
    /// Task numbers or crate names to grade; all tasks when none is given.
    tasks: Vec<String>,
    /// Grades the reference solutions instead of the learner's exercises.
    #[arg(long, conflicts_with = "submission")]
    reference: bool,
    /// Writes the results as JSON (schema in workbook/results.schema.json).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Writes the results as JUnit XML, one test suite per task.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Grades the learner files of the workspace at DIR in a scratch copy of
    /// this checkout, ignoring every other file there.
    #[arg(long, value_name = "DIR")]
    submission: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            // Exit status 2 marks a usage or setup problem, and 1 marks failing
            // tasks.
            ExitCode::from(2)
        }
    }
}

/// Finds the workspace and runs the chosen command.
fn run(cli: Cli) -> Result<ExitCode> {
    let current_dir = std::env::current_dir()?;
    let workspace = Workspace::discover(&current_dir)?;
    match cli.command {
        Command::List => {
            list::run(&workspace);
            Ok(ExitCode::SUCCESS)
        }
        Command::Hint { task } => {
            let task = workspace.find(&task)?;
            hints::run(&workspace, task).map(|()| ExitCode::SUCCESS)
        }
        Command::Grade(args) => run_grade(&workspace, args),
        Command::Watch { task } => watch::run(&workspace, task.as_deref()),
        Command::Reset { task } => {
            let task = workspace.find(&task)?;
            reset::run(&workspace, task).map(|()| ExitCode::SUCCESS)
        }
        Command::Selftest { tasks, repeat } => {
            let selected = workspace.select(&tasks)?;
            selftest::run(&workspace, &selected, tasks.is_empty(), repeat)
        }
    }
}

/// Runs `grade`, on this workspace or on a submission.
fn run_grade(workspace: &Workspace, args: GradeArgs) -> Result<ExitCode> {
    let outputs = grade::Outputs {
        json: args.json,
        junit: args.junit,
    };
    if let Some(dir) = args.submission {
        return submission::run(workspace, &dir, &args.tasks, &outputs);
    }
    let tasks = workspace.select(&args.tasks)?;
    let implementation = if args.reference {
        Implementation::Reference
    } else {
        Implementation::Exercise
    };
    grade::run(workspace, &tasks, &implementation, &outputs)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn grade_accepts_several_tasks_and_files() {
        let cli = Cli::try_parse_from([
            "workbook",
            "grade",
            "1",
            "task02_unsubscribe",
            "--json",
            "r.json",
            "--junit",
            "r.xml",
        ])
        .expect("a valid grade command line");
        let Command::Grade(args) = cli.command else {
            panic!("expected the grade subcommand, got {:?}", cli.command);
        };
        assert_eq!(args.tasks, ["1", "task02_unsubscribe"]);
        assert_eq!(args.json, Some(PathBuf::from("r.json")));
        assert_eq!(args.junit, Some(PathBuf::from("r.xml")));
        assert!(!args.reference);
    }

    #[test]
    fn reference_conflicts_with_submission() {
        let parsed = Cli::try_parse_from(["workbook", "grade", "--reference", "--submission", "d"]);
        assert!(
            parsed.is_err(),
            "--reference with --submission must be rejected"
        );
    }

    #[test]
    fn selftest_repeat_rejects_zero() {
        assert!(Cli::try_parse_from(["workbook", "selftest", "--repeat", "0"]).is_err());
        let cli = Cli::try_parse_from(["workbook", "selftest"]).expect("repeat has a default");
        assert!(matches!(cli.command, Command::Selftest { repeat: 1, .. }));
    }
}

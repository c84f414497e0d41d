//! Plain-text tables and the grading summary printed on standard output.
//!
//! Rendering is kept apart from running so that it can be tested on sample
//! reports, and so that the output reads the same on a terminal and in a CI
//! log: no colours, no cursor movement, only lines of text.

use std::fmt::Write as _;

use testkit::grading::MAX_TOTAL;
use testkit::report::{LearnerStatus, Outcome, TaskReport};

use crate::grade::Results;

/// Maximum characters of a message line shown in a table note.
const NOTE_WIDTH: usize = 90;

/// Lines of a failure message or compiler output shown in the details.
const DETAIL_LINES: usize = 25;

/// A column of a [`Table`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Column {
    /// Header text.
    pub(crate) header: &'static str,
    /// Whether cells align to the right, as numbers do.
    pub(crate) right: bool,
}

/// A text table whose rows may carry notes printed under them.
#[derive(Clone, Debug)]
pub(crate) struct Table {
    columns: Vec<Column>,
    rows: Vec<(Vec<String>, Vec<String>)>,
    note_column: usize,
}

impl Table {
    /// Creates a table whose notes start under column `note_column`.
    pub(crate) fn new(columns: &[Column], note_column: usize) -> Table {
        Table {
            columns: columns.to_vec(),
            rows: Vec::new(),
            note_column,
        }
    }

    /// Adds a row of cells, one per column, and the notes under it.
    pub(crate) fn row(&mut self, cells: Vec<String>, notes: Vec<String>) {
        debug_assert_eq!(cells.len(), self.columns.len(), "one cell per column");
        self.rows.push((cells, notes));
    }

    /// Renders the header and the rows, two spaces between columns.
    pub(crate) fn render(&self) -> String {
        let widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(index, column)| {
                self.rows
                    .iter()
                    .map(|(cells, _)| width(&cells[index]))
                    .chain([width(column.header)])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let indent: usize = widths[..self.note_column]
            .iter()
            .map(|width| width + 2)
            .sum();

        let mut text = String::new();
        let headers: Vec<String> = self.columns.iter().map(|c| c.header.to_owned()).collect();
        self.push_line(&mut text, &headers, &widths);
        for (cells, notes) in &self.rows {
            self.push_line(&mut text, cells, &widths);
            for note in notes {
                let _ = writeln!(text, "{:indent$}{note}", "");
            }
        }
        text
    }

    /// Appends one line of padded cells to `text`.
    fn push_line(&self, text: &mut String, cells: &[String], widths: &[usize]) {
        let mut line = String::new();
        for ((cell, column), width) in cells.iter().zip(&self.columns).zip(widths) {
            let pad = width.saturating_sub(self::width(cell));
            if column.right {
                let _ = write!(line, "{:pad$}{cell}  ", "");
            } else {
                let _ = write!(line, "{cell}{:pad$}  ", "");
            }
        }
        let _ = writeln!(text, "{}", line.trim_end());
    }
}

/// Returns the display width of `text`, counted in characters.
fn width(text: &str) -> usize {
    text.chars().count()
}

/// Returns the first non-empty line of `text`, cut to `max` characters.
pub(crate) fn first_line(text: &str, max: usize) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or("");
    if width(line) <= max {
        return line.to_owned();
    }
    let cut: String = line.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// Returns the first line of compiler output that starts an error, such as
/// `error[E0308]: mismatched types`.
pub(crate) fn first_error(output: &str) -> String {
    let line = output
        .lines()
        .find(|line| line.starts_with("error"))
        .unwrap_or(output);
    first_line(line, NOTE_WIDTH)
}

/// Returns "k of n" for a report's checks, with "?" for n when a task that
/// does not compile has no earlier result to take the number from.
pub(crate) fn checks_cell(report: &TaskReport) -> String {
    if report.checks_total == 0 && report.compile_error.is_some() {
        return format!("{} of ?", report.checks_passed);
    }
    format!("{} of {}", report.checks_passed, report.checks_total)
}

/// Renders the whole grading summary: the score table, each task's reason
/// and next step, the total and, when every task was graded, the band.
pub(crate) fn render_results(results: &Results<'_>) -> String {
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
                header: "Checks",
                right: false,
            },
            Column {
                header: "Score",
                right: true,
            },
        ],
        2,
    );
    for graded in &results.tasks {
        let report = &graded.report;
        table.row(
            vec![
                graded.task.number.to_string(),
                graded.task.level.clone(),
                graded.task.title.clone(),
                checks_cell(report),
                report.score.to_string(),
            ],
            table_notes(report),
        );
    }

    let mut text = String::from("\n");
    text.push_str(&table.render());
    for graded in &results.tasks {
        text.push('\n');
        text.push_str(&render_details(graded.task.number, &graded.report));
    }
    let _ = writeln!(text, "\nTotal: {} / {MAX_TOTAL}", results.total());
    // The rubric's total covers fifteen tasks; say so when fewer were graded.
    let all_tasks = MAX_TOTAL / 3;
    let graded = results.tasks.len();
    if graded < all_tasks as usize {
        let _ = writeln!(
            text,
            "({graded} of the rubric's {all_tasks} tasks graded here; the others count as 0)"
        );
    }
    if results.all_tasks_graded {
        let band = results.band();
        let _ = writeln!(text, "Band {}-{}: {}", band.min, band.max, band.advice);
    } else {
        // Tasks left out of this run count as 0, so the band of this total
        // would judge work that was not graded.
        text.push_str(
            "The band and its advice are given for a grading of all tasks; \
             run `cargo workbook grade` to get them.\n",
        );
    }
    text
}

/// Returns the note under a task's row: what stops it, in one line.
fn table_notes(report: &TaskReport) -> Vec<String> {
    if let Some(errors) = &report.compile_error {
        return vec![format!("does not compile: {}", first_error(errors))];
    }
    let Some(failing) = report
        .checks
        .iter()
        .find(|check| check.outcome != Outcome::Passed)
    else {
        return Vec::new();
    };
    let message = failing.message.as_deref().unwrap_or("");
    vec![format!(
        "first failing check: {}: {}",
        failing.name,
        first_line(message, NOTE_WIDTH)
    )]
}

/// Renders one task's reason and next step, with the full message of its
/// first failing check or its compiler output, shortened.
pub(crate) fn render_details(number: u32, report: &TaskReport) -> String {
    let mut text = format!(
        "Task {number} ({}): score {}. {}.\n",
        report.task,
        report.score,
        capitalize(&report.reason)
    );
    if let Some(errors) = &report.compile_error {
        let _ = writeln!(text, "  compiler output:\n{}", shorten(errors, "    "));
    } else if let Some(failing) = report
        .checks
        .iter()
        .find(|check| check.outcome != Outcome::Passed)
    {
        let _ = writeln!(
            text,
            "  `{}` ({}) {}:\n{}",
            failing.name,
            failing.subject,
            outcome_words(failing.outcome),
            shorten(failing.message.as_deref().unwrap_or(""), "    ")
        );
    }
    // A note on the learner's tests, such as mutants caught only by hanging.
    if let Some(note) = &report.learner_tests.message {
        if report.learner_tests.status == LearnerStatus::Passing {
            let _ = writeln!(text, "  Your tests: {note}.");
        }
    }
    let _ = writeln!(text, "  Next: {}.", report.next_step);
    text
}

/// Returns how `outcome` reads in a sentence, such as "timed out".
pub(crate) fn outcome_words(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Passed => "passed",
        Outcome::Failed => "failed",
        Outcome::TimedOut => "timed out",
        Outcome::Crashed => "crashed",
    }
}

/// Returns `text` with its first character in upper case.
fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Indents `text` and keeps its first DETAIL_LINES lines.
fn shorten(text: &str, indent: &str) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    let mut shown: Vec<String> = lines
        .iter()
        .take(DETAIL_LINES)
        .map(|line| format!("{indent}{line}").trim_end().to_owned())
        .collect();
    if lines.len() > DETAIL_LINES {
        shown.push(format!(
            "{indent}… {} more lines",
            lines.len() - DETAIL_LINES
        ));
    }
    shown.join("\n")
}

#[cfg(test)]
pub(crate) mod tests {
    use testkit::grading::BANDS;
    use testkit::report::{CheckResult, LearnerTests};

    use super::*;
    use crate::discover::tests::sample_task;
    use crate::grade::Graded;

    /// Returns a report of `task` in which the check `failing`, if given,
    /// fails with `message` and the others pass.
    pub(crate) fn sample_report(task: &str, failing: Option<&str>, message: &str) -> TaskReport {
        let checks: Vec<CheckResult> = ["publish_reaches_subscribers", "close_ends_receivers"]
            .into_iter()
            .map(|name| {
                let fails = failing == Some(name);
                CheckResult {
                    name: name.to_owned(),
                    subject: "Broker::publish".to_owned(),
                    outcome: if fails {
                        Outcome::Failed
                    } else {
                        Outcome::Passed
                    },
                    duration_ms: 12,
                    message: fails.then(|| message.to_owned()),
                }
            })
            .collect();
        let passed = checks
            .iter()
            .filter(|check| check.outcome == Outcome::Passed)
            .count();
        TaskReport {
            task: task.to_owned(),
            implementation: "exercise".to_owned(),
            score: if failing.is_some() { 0 } else { 2 },
            reason: format!("{passed} of 2 checks pass"),
            next_step: "keep going".to_owned(),
            checks_passed: passed,
            checks_total: 2,
            complete: true,
            checks,
            hints_used: 0,
            learner_tests: LearnerTests::not_run(),
            compile_error: None,
        }
    }

    #[test]
    fn table_aligns_columns_and_notes() {
        let mut table = Table::new(
            &[
                Column {
                    header: "N",
                    right: true,
                },
                Column {
                    header: "Name",
                    right: false,
                },
            ],
            1,
        );
        table.row(vec!["1".into(), "short".into()], vec![]);
        table.row(vec!["12".into(), "much longer".into()], vec!["note".into()]);
        assert_eq!(
            table.render(),
            " N  Name\n 1  short\n12  much longer\n    note\n"
        );
    }

    #[test]
    fn first_line_skips_blank_lines_and_cuts() {
        assert_eq!(
            first_line("\n  not yet implemented\n  (at x)", 90),
            "not yet implemented"
        );
        assert_eq!(first_line("abcdef", 4), "abc…");
    }

    #[test]
    fn first_error_finds_the_error_line() {
        let output = "warning: unused\nerror[E0308]: mismatched types\n --> src/exercise.rs:3:5";
        assert_eq!(first_error(output), "error[E0308]: mismatched types");
    }

    #[test]
    fn results_show_scores_failures_total_and_band() {
        let first = sample_task(1, "task01_basic", "A first broker");
        let second = sample_task(2, "task02_unsubscribe", "Unsubscribe");
        let results = Results {
            implementation: "exercise".to_owned(),
            tasks: vec![
                Graded {
                    task: &first,
                    report: sample_report("task01_basic", None, ""),
                },
                Graded {
                    task: &second,
                    report: sample_report(
                        "task02_unsubscribe",
                        Some("close_ends_receivers"),
                        "not yet implemented\n  (panicked at src/exercise.rs:9:9)",
                    ),
                },
            ],
            all_tasks_graded: true,
        };
        let text = render_results(&results);

        assert!(
            text.contains("Task  Level  Title           Checks  Score\n"),
            "{text}"
        );
        assert!(
            text.contains("   1  B      A first broker  2 of 2      2\n"),
            "{text}"
        );
        assert!(
            text.contains("   2  B      Unsubscribe     1 of 2      0\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "\n             first failing check: close_ends_receivers: not yet implemented\n"
            ),
            "{text}"
        );
        assert!(text.contains("Task 2 (task02_unsubscribe): score 0. 1 of 2 checks pass.\n"));
        assert!(
            text.contains("    (panicked at src/exercise.rs:9:9)\n"),
            "{text}"
        );
        assert!(text.contains("  Next: keep going.\n"), "{text}");
        assert!(text.contains("\nTotal: 2 / 45\n"), "{text}");
        assert!(
            text.contains("(2 of the rubric's 15 tasks graded here"),
            "{text}"
        );
        assert!(text.contains("\nBand 0-15: "), "{text}");
    }

    #[test]
    fn partial_grading_shows_no_band() {
        let first = sample_task(1, "task01_basic", "A first broker");
        let results = Results {
            implementation: "exercise".to_owned(),
            tasks: vec![Graded {
                task: &first,
                report: sample_report("task01_basic", None, ""),
            }],
            all_tasks_graded: false,
        };
        let text = render_results(&results);

        assert!(text.contains("\nTotal: 2 / 45\n"), "{text}");
        assert!(!text.contains("Band 0-15"), "{text}");
        assert!(!text.contains(BANDS[0].advice), "{text}");
        assert!(
            text.ends_with(
                "The band and its advice are given for a grading of all tasks; \
                 run `cargo workbook grade` to get them.\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn compile_failure_is_shown_with_first_error() {
        let mut report = sample_report("task01_basic", None, "");
        report.score = 0;
        report.checks.clear();
        report.checks_passed = 0;
        report.compile_error =
            Some("error[E0425]: cannot find value `x`\n --> src/exercise.rs:4:9\n".to_owned());
        let notes = table_notes(&report);
        assert_eq!(
            notes,
            ["does not compile: error[E0425]: cannot find value `x`"]
        );
        let details = render_details(1, &report);
        assert!(
            details.contains("  compiler output:\n    error[E0425]"),
            "{details}"
        );
    }

    #[test]
    fn long_messages_are_shortened() {
        let long: String = (0..40).map(|line| format!("line {line}\n")).collect();
        let shown = shorten(&long, "  ");
        assert_eq!(shown.lines().count(), DETAIL_LINES + 1);
        assert!(shown.ends_with("  … 15 more lines"), "{shown}");
    }
}

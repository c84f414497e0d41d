//! Selftest verdicts on the whole workspace: it builds with every feature,
//! lints clean with and without them, is formatted, the tools' own tests
//! pass, and the loom models pass under `--cfg loom`.

use std::process::Stdio;

use super::Verdicts;
use crate::discover::Workspace;
use crate::progress;

/// The cargo commands run at the workspace root, in order.
const COMMANDS: [&[&str]; 5] = [
    &["build", "--workspace", "--all-targets", "--all-features"],
    &[
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ],
    // Without features every crate compiles its skeleton, which must lint
    // clean too.
    &[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ],
    &["fmt", "--all", "--check"],
    &[
        "test",
        "-p",
        "testkit",
        "-p",
        "workbook",
        "-p",
        "pausable_mutex",
    ],
];

/// The package holding the loom models, which build only under `--cfg loom`.
const LOOM_PACKAGE: &str = "task10_loom";

/// Lines of a failed command's output shown under its verdict.
const EXCERPT_LINES: usize = 25;

/// One cargo command of the selftest.
struct Step<'a> {
    args: &'a [&'a str],
    /// Value of `RUSTFLAGS` for the command, when it needs one.
    rustflags: Option<&'a str>,
    /// Marker of the output lines that the passing verdict repeats.
    echo: Option<&'a str>,
}

/// Runs each workspace command, then the loom models, and records one
/// verdict per command.
pub(crate) fn check(workspace: &Workspace, verdicts: &mut Verdicts) {
    for args in COMMANDS {
        let step = Step {
            args,
            rustflags: None,
            echo: None,
        };
        run(workspace, &step, verdicts);
    }
    // The models print one line per model with the number of interleavings
    // loom explored, and the verdict repeats those lines.
    let loom = Step {
        args: &[
            "test",
            "-p",
            LOOM_PACKAGE,
            "--release",
            "--",
            "--nocapture",
            "--test-threads",
            "1",
        ],
        rustflags: Some("--cfg loom"),
        echo: Some("loom "),
    };
    run(workspace, &loom, verdicts);
}

/// Runs `step` at the workspace root and records whether it succeeded.
fn run(workspace: &Workspace, step: &Step<'_>, verdicts: &mut Verdicts) {
    let command_line = match step.rustflags {
        Some(flags) => format!("RUSTFLAGS=\"{flags}\" cargo {}", step.args.join(" ")),
        None => format!("cargo {}", step.args.join(" ")),
    };
    let running = progress::step(&format!("running `{command_line}`"));
    let mut command = testkit::cargo::cargo_command();
    command
        .current_dir(&workspace.root)
        .args(step.args)
        .stdin(Stdio::null());
    if let Some(flags) = step.rustflags {
        command.env("RUSTFLAGS", flags);
    }
    let output = match command.output() {
        Ok(output) => output,
        Err(err) => {
            running.finish("could not start cargo");
            verdicts.fail(format!("`{command_line}` succeeds"), &format!("{err}"));
            return;
        }
    };
    running.finish(&format!("`{command_line}` finished ({})", output.status));

    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut verdict = format!("`{command_line}` succeeds");
    if let Some(marker) = step.echo {
        for line in stdout.lines().filter(|line| line.contains(marker)) {
            // libtest prints `test NAME ... ` before the test's own output.
            let printed = line
                .split_once(" ... ")
                .map_or(line, |(_, printed)| printed);
            verdict.push_str("\n          ");
            verdict.push_str(printed.trim());
        }
    }
    let mut text = stdout.into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    verdicts.record(
        output.status.success(),
        verdict,
        &excerpt(&text, EXCERPT_LINES),
    );
}

/// Lines shown before cargo's "error: test failed" in an excerpt.
const TEST_FAILURE_CONTEXT: usize = 4;

/// Returns `count` lines of a failed command's output: from libtest's list
/// of failures, else from the first compiler error, else the last lines.
fn excerpt(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    let start = lines
        .iter()
        .position(|line| *line == "failures:")
        .or_else(|| lines.iter().position(|line| line.starts_with("error")))
        .unwrap_or(lines.len().saturating_sub(count));
    // Cargo's "error: test failed" follows what the test printed about its
    // failure, which a harness-less test prints just before.
    let start = if lines
        .get(start)
        .is_some_and(|line| line.starts_with("error: test failed"))
    {
        start.saturating_sub(TEST_FAILURE_CONTEXT)
    } else {
        start
    };
    lines[start..]
        .iter()
        .take(count)
        .copied()
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_keeps_what_a_failed_test_printed() {
        let text = "noise\ndefences: loops timed out\ntest result: FAILED. 0 passed; 1 failed\n\
                    error: test failed, to rerun pass `-p testkit --test defences`\n";
        let shown = excerpt(text, 25);
        assert!(
            shown.starts_with("noise\ndefences: loops timed out"),
            "{shown}"
        );
    }

    #[test]
    fn excerpt_keeps_the_last_lines_by_default() {
        assert_eq!(excerpt("a\nb\nc\n", 2), "b\nc");
        assert_eq!(excerpt("a\n", 5), "a");
    }

    #[test]
    fn excerpt_starts_at_failures_or_first_error() {
        let test_output =
            "running 2 tests\nfailures:\n    x\n\ntest result: FAILED\nerror: test failed";
        assert!(excerpt(test_output, 3).starts_with("failures:\n    x"));
        let build_output =
            "Compiling a\nerror[E0425]: cannot find value\n --> a.rs:1:1\nwarning: x";
        assert_eq!(
            excerpt(build_output, 2),
            "error[E0425]: cannot find value\n --> a.rs:1:1"
        );
    }
}

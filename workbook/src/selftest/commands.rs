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
    &["test", "-p", "testkit", "-p", "workbook"],
];

/// The package holding the loom models, which build only under `--cfg loom`.
const LOOM_PACKAGE: &str = "task10_loom";

/// Lines of a failed command's output shown under its verdict.
const EXCERPT_LINES: usize = 25;

/// Runs each workspace command, then the loom models, and records one
/// verdict per command.
pub(crate) fn check(workspace: &Workspace, verdicts: &mut Verdicts) {
    for args in COMMANDS {
        run(workspace, args, None, verdicts);
    }
    // The models print one line per model with the number of interleavings
    // loom explored; the verdict repeats those lines.
    let loom_args = [
        "test",
        "-p",
        LOOM_PACKAGE,
        "--release",
        "--",
        "--nocapture",
        "--test-threads",
        "1",
    ];
    run(workspace, &loom_args, Some("--cfg loom"), verdicts);
}

/// Runs `cargo ARGS` at the workspace root, with `RUSTFLAGS` set to
/// `rustflags` when given, and records whether it succeeded.
fn run(workspace: &Workspace, args: &[&str], rustflags: Option<&str>, verdicts: &mut Verdicts) {
    let shown = match rustflags {
        Some(flags) => format!("RUSTFLAGS=\"{flags}\" cargo {}", args.join(" ")),
        None => format!("cargo {}", args.join(" ")),
    };
    let step = progress::step(&format!("running `{shown}`"));
    let mut command = testkit::cargo::cargo_command();
    command
        .current_dir(&workspace.root)
        .args(args)
        .stdin(Stdio::null());
    if let Some(flags) = rustflags {
        command.env("RUSTFLAGS", flags);
    }
    match command.output() {
        Err(err) => {
            step.finish("could not start cargo");
            verdicts.fail(format!("`{shown}` succeeds"), &format!("{err}"));
        }
        Ok(output) => {
            step.finish(&format!("`{shown}` finished ({})", output.status));
            let stdout = String::from_utf8_lossy(&output.stdout);
            let mut what = format!("`{shown}` succeeds");
            for line in stdout.lines().filter(|line| line.contains("loom ")) {
                // libtest prints `test NAME ... ` before what the test prints.
                let said = line.split_once(" ... ").map_or(line, |(_, said)| said);
                what.push_str("\n          ");
                what.push_str(said.trim());
            }
            let mut text = stdout.into_owned();
            text.push_str(&String::from_utf8_lossy(&output.stderr));
            verdicts.record(
                output.status.success(),
                what,
                &excerpt(&text, EXCERPT_LINES),
            );
        }
    }
}

/// Returns `count` lines of a failed command's output: from libtest's list
/// of failures, else from the first compiler error, else the last lines.
fn excerpt(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    let start = lines
        .iter()
        .position(|line| *line == "failures:")
        .or_else(|| lines.iter().position(|line| line.starts_with("error")))
        .unwrap_or(lines.len().saturating_sub(count));
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

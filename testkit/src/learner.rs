//! Evaluates the learner's own tests: they must pass on the graded solution
//! and fail on at least one mutant to earn a score of 3.
//!
//! The tests are `tests/mine.rs`; when the reference is graded, the
//! reference's example tests in `tests/reference_tests.rs` run with them.
//! Each mutant is selected through its `mutant-NAME` feature, which makes
//! cargo build that task crate once more with the buggy file in place of the
//! solution; the builds stay cached side by side in the target folder.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::cargo::{BuildRequest, build_tests};
use crate::grading::suite::workspace_root;
use crate::process::run_limited;
use crate::report::{LearnerStatus, LearnerTests};

/// Time one learner test executable may run before it counts as hanging.
const TEST_TIME_LIMIT: Duration = Duration::from_secs(60);

/// Runs the learner tests of `package` on the graded solution, then on every
/// mutant, and reports which mutants they catch.
pub(crate) fn evaluate(package: &str, manifest_dir: &Path, implementation: &str) -> LearnerTests {
    let reference = implementation == "reference";
    let mut targets = vec!["mine".to_owned()];
    if reference {
        targets.push("reference_tests".to_owned());
    }
    let mutants = mutant_names(manifest_dir);
    let mut result = LearnerTests {
        status: LearnerStatus::Passing,
        targets: targets.clone(),
        mutants_killed: Vec::new(),
        mutants_total: mutants.len(),
        message: None,
    };

    if let Some(reason) = inspects_implementation(&manifest_dir.join("tests").join("mine.rs")) {
        result.status = LearnerStatus::Rejected;
        result.message = Some(reason);
        return result;
    }

    let base_features: Vec<String> = if reference {
        vec![format!("{package}/reference")]
    } else {
        Vec::new()
    };
    match run_targets(package, manifest_dir, &targets, &base_features) {
        Run::Passed => {}
        Run::CompileError(text) => {
            result.status = LearnerStatus::CompileError;
            result.message = Some(text);
            return result;
        }
        Run::Failed(text) => {
            result.status = LearnerStatus::Failing;
            result.message = Some(text);
            return result;
        }
    }

    for mutant in mutants {
        let mut features = base_features.clone();
        features.push(format!("{package}/mutant-{}", mutant.replace('_', "-")));
        // A mutant that does not build is a workbook bug, which selftest reports;
        // here it only means the learner's tests did not catch it.
        if let Run::Failed(_) = run_targets(package, manifest_dir, &targets, &features) {
            result.mutants_killed.push(mutant);
        }
    }
    result
}

/// Returns the names of the task's mutants: the file stems in `src/mutants`.
pub(crate) fn mutant_names(manifest_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(manifest_dir.join("src").join("mutants"))
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            if path.extension()? != "rs" {
                return None;
            }
            Some(path.file_stem()?.to_str()?.to_owned())
        })
        .collect();
    names.sort();
    names
}

/// Returns why the learner's test file is rejected, if it is: it may not ask
/// which implementation was compiled, because a test that fails whenever a
/// mutant's feature is on catches nothing real.
fn inspects_implementation(path: &Path) -> Option<String> {
    let source = fs::read_to_string(path).ok()?;
    let code: String = source
        .lines()
        .map(|line| line.split_once("//").map_or(line, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n")
        .to_lowercase();
    let squeezed: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if squeezed.contains("feature=") {
        return Some("it tests a cargo feature (`feature = …`)".to_owned());
    }
    if squeezed.contains("workbook_impl") {
        return Some("it reads WORKBOOK_IMPL or the workbook_impl cfg".to_owned());
    }
    None
}

enum Run {
    Passed,
    Failed(String),
    CompileError(String),
}

fn run_targets(package: &str, manifest_dir: &Path, targets: &[String], features: &[String]) -> Run {
    let request = BuildRequest {
        packages: vec![package.to_owned()],
        test_targets: targets.to_vec(),
        features: features.to_vec(),
    };
    let build = match build_tests(workspace_root(manifest_dir), &request) {
        Ok(build) => build,
        Err(err) => return Run::CompileError(format!("cargo could not build the tests: {err}")),
    };
    if let Some(errors) = build.error_for(manifest_dir) {
        return Run::CompileError(errors);
    }

    for target in targets {
        let Some(executable) = build.executable(manifest_dir, target) else {
            return Run::CompileError(format!("cargo built no executable for tests/{target}.rs"));
        };
        let mut command = Command::new(executable);
        command.current_dir(manifest_dir);
        let finished = match run_limited(&mut command, b"", TEST_TIME_LIMIT) {
            Ok(finished) => finished,
            Err(err) => return Run::Failed(format!("tests/{target}.rs could not start: {err}")),
        };
        match finished.status {
            None => {
                return Run::Failed(format!(
                    "tests/{target}.rs ran past {} s and was stopped",
                    TEST_TIME_LIMIT.as_secs()
                ));
            }
            Some(status) if !status.success() => {
                let stdout = String::from_utf8_lossy(&finished.stdout);
                return Run::Failed(format!("tests/{target}.rs: {}", failing_tests(&stdout)));
            }
            Some(_) => {}
        }
    }
    Run::Passed
}

// Reads the names of failed tests from libtest's summary, which lists them
// indented under a line "failures:" at the end of its output.
fn failing_tests(stdout: &str) -> String {
    let names: Vec<&str> = stdout
        .rsplit_once("\nfailures:\n")
        .map(|(_, tail)| {
            tail.lines()
                .map(str::trim)
                .take_while(|line| !line.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if names.is_empty() {
        "the test executable failed".to_owned()
    } else {
        format!("failing: {}", names.join(", "))
    }
}

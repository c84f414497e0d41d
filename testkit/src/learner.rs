//! Evaluates the learner's own tests: they must pass on the graded solution
//! and fail on at least one mutant to earn a score of 3.
//!
//! The tests are `tests/mine.rs`; when the reference is graded, the
//! reference's example tests in `tests/reference_tests.rs` run with them.
//! Each mutant is selected through its `mutant-NAME` feature, which makes
//! cargo build that task crate once more with the buggy file in place of the
//! solution; the builds stay cached side by side in the target folder.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cargo::{BuildRequest, build_tests};
use crate::grading::suite::workspace_root;
use crate::process::run_limited;
use crate::report::{LearnerStatus, LearnerTests};
use crate::state::State;

/// Time the learner tests may run on the graded solution.
const SOLUTION_TIME_LIMIT: Duration = Duration::from_secs(60);

/// Time the learner tests may run on one mutant before they count as
/// catching it by hanging. It is shorter than the solution's limit because
/// every mutant pays it on every run.
const MUTANT_TIME_LIMIT: Duration = Duration::from_secs(15);

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

    let mut runner = Runner {
        package,
        manifest_dir,
        targets: &targets,
        cache: RunCache::load(manifest_dir),
    };
    let base_features: Vec<String> = if reference {
        vec![format!("{package}/reference")]
    } else {
        Vec::new()
    };
    match runner.run(&base_features, SOLUTION_TIME_LIMIT) {
        Run::Passed => {}
        Run::CompileError(text) => {
            result.status = LearnerStatus::CompileError;
            result.message = Some(text);
            return result;
        }
        Run::Failed(text) | Run::TimedOut(text) => {
            result.status = LearnerStatus::Failing;
            result.message = Some(text);
            return result;
        }
    }

    let mut hung_on = Vec::new();
    for mutant in mutants {
        let mut features = base_features.clone();
        features.push(format!("{package}/mutant-{}", mutant.replace('_', "-")));
        // A mutant that does not build is a workbook bug, which selftest reports;
        // here it only means the learner's tests did not catch it.
        match runner.run(&features, MUTANT_TIME_LIMIT) {
            Run::Failed(_) => result.mutants_killed.push(mutant),
            Run::TimedOut(_) => {
                hung_on.push(mutant.clone());
                result.mutants_killed.push(mutant);
            }
            Run::Passed | Run::CompileError(_) => {}
        }
    }
    if !hung_on.is_empty() {
        result.message = Some(format!(
            "on {} a test ran past {} s and was stopped, which counts as catching it; \
             wrap waits in tokio::time::timeout so such a test fails at once",
            hung_on.join(", "),
            MUTANT_TIME_LIMIT.as_secs()
        ));
    }
    runner.cache.store();
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
    TimedOut(String),
    CompileError(String),
}

/// Builds and runs the learner's test targets with a given feature set.
struct Runner<'a> {
    package: &'a str,
    manifest_dir: &'a Path,
    targets: &'a [String],
    cache: RunCache,
}

impl Runner<'_> {
    fn run(&mut self, features: &[String], limit: Duration) -> Run {
        let request = BuildRequest {
            packages: vec![self.package.to_owned()],
            test_targets: self.targets.to_vec(),
            features: features.to_vec(),
        };
        let build = match build_tests(workspace_root(self.manifest_dir), &request) {
            Ok(build) => build,
            Err(err) => {
                return Run::CompileError(format!("cargo could not build the tests: {err}"));
            }
        };
        if let Some(errors) = build.error_for(self.manifest_dir) {
            return Run::CompileError(errors);
        }

        for target in self.targets {
            let Some(executable) = build.executable(self.manifest_dir, target) else {
                return Run::CompileError(format!(
                    "cargo built no executable for tests/{target}.rs"
                ));
            };
            let run = match self.cache.lookup(executable) {
                Some(cached) => cached,
                None => {
                    let run = run_executable(self.manifest_dir, executable, target, limit);
                    self.cache.record(executable, &run);
                    run
                }
            };
            if !matches!(run, Run::Passed) {
                return run;
            }
        }
        Run::Passed
    }
}

fn run_executable(manifest_dir: &Path, executable: &Path, target: &str, limit: Duration) -> Run {
    let mut command = Command::new(executable);
    command.current_dir(manifest_dir);
    let finished = match run_limited(&mut command, b"", limit) {
        Ok(finished) => finished,
        Err(err) => return Run::Failed(format!("tests/{target}.rs could not start: {err}")),
    };
    match finished.status {
        None => Run::TimedOut(format!(
            "tests/{target}.rs ran past {} s and was stopped",
            limit.as_secs()
        )),
        Some(status) if !status.success() => {
            let stdout = String::from_utf8_lossy(&finished.stdout);
            Run::Failed(format!("tests/{target}.rs: {}", failing_tests(&stdout)))
        }
        Some(_) => Run::Passed,
    }
}

/// Results of earlier runs of learner test executables, so that a regrade
/// after an edit of the solution does not rerun the tests on every mutant.
///
/// An entry is keyed by the executable's path, size and modification time,
/// which change whenever cargo rebuilds it, and lives in
/// `.workbook/learner-runs/PACKAGE.json`.
struct RunCache {
    path: Option<PathBuf>,
    entries: BTreeMap<String, CachedRun>,
}

#[derive(Serialize, Deserialize)]
struct CachedRun {
    identity: String,
    outcome: String,
    text: String,
}

impl RunCache {
    fn load(manifest_dir: &Path) -> RunCache {
        let package = manifest_dir.file_name().and_then(|name| name.to_str());
        let path = package.map(|package| {
            State::for_workspace(workspace_root(manifest_dir))
                .dir()
                .join("learner-runs")
                .join(format!("{package}.json"))
        });
        let entries = path
            .as_ref()
            .and_then(|path| fs::read_to_string(path).ok())
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        RunCache { path, entries }
    }

    fn lookup(&self, executable: &Path) -> Option<Run> {
        let entry = self
            .entries
            .get(&executable.to_string_lossy().into_owned())?;
        if entry.identity != identity(executable)? {
            return None;
        }
        let text = entry.text.clone();
        match entry.outcome.as_str() {
            "passed" => Some(Run::Passed),
            "failed" => Some(Run::Failed(text)),
            "timed_out" => Some(Run::TimedOut(text)),
            _ => None,
        }
    }

    fn record(&mut self, executable: &Path, run: &Run) {
        let (outcome, text) = match run {
            Run::Passed => ("passed", String::new()),
            Run::Failed(text) => ("failed", text.clone()),
            Run::TimedOut(text) => ("timed_out", text.clone()),
            Run::CompileError(_) => return,
        };
        let Some(identity) = identity(executable) else {
            return;
        };
        let entry = CachedRun {
            identity,
            outcome: outcome.to_owned(),
            text,
        };
        self.entries
            .insert(executable.to_string_lossy().into_owned(), entry);
    }

    // The cache only saves time, so a failure to write it is ignored.
    fn store(&self) {
        let Some(path) = &self.path else { return };
        let Some(parent) = path.parent() else { return };
        let Ok(text) = serde_json::to_string_pretty(&self.entries) else {
            return;
        };
        let temporary = path.with_extension(format!("tmp{}", std::process::id()));
        if fs::create_dir_all(parent).is_ok() && fs::write(&temporary, text).is_ok() {
            let _ = fs::rename(&temporary, path);
        }
    }
}

/// Returns what identifies one build of an executable: size and modification time.
fn identity(executable: &Path) -> Option<String> {
    let metadata = fs::metadata(executable).ok()?;
    let modified = metadata
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some(format!("{}:{}", metadata.len(), modified.as_nanos()))
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

//! Builds and runs the learner's test executables, with a cache of results.

use std::collections::BTreeMap;
use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::cargo::{BuildRequest, build_tests};
use crate::grading::suite::workspace_root;
use crate::process::run_limited;
use crate::state::State;

/// Outcome of a run of the learner's test executables.
pub(crate) enum Run {
    Passed,
    Failed(String),
    TimedOut(String),
    /// An executable changed after it was built, so it was not run.
    Tampered(String),
}

/// The test executables of one build, with a digest of each taken right
/// after the build, before any learner test ran.
pub(crate) struct Built {
    executables: Vec<(String, PathBuf, u64)>,
}

/// Builds and runs the learner's test targets.
pub(crate) struct Runner<'a> {
    package: &'a str,
    manifest_dir: &'a Path,
    targets: &'a [String],
    cache: RunCache,
}

impl<'a> Runner<'a> {
    pub(crate) fn new(package: &'a str, manifest_dir: &'a Path, targets: &'a [String]) -> Self {
        Runner {
            package,
            manifest_dir,
            targets,
            cache: RunCache::load(manifest_dir),
        }
    }

    /// Builds the test targets with `features`; returns the compiler's errors on failure.
    pub(crate) fn build(&self, features: &[String]) -> Result<Built, String> {
        let request = BuildRequest {
            packages: vec![self.package.to_owned()],
            test_targets: self.targets.to_vec(),
            features: features.to_vec(),
        };
        let build = build_tests(workspace_root(self.manifest_dir), &request)
            .map_err(|err| format!("cargo could not build the tests: {err}"))?;
        if let Some(errors) = build.error_for(self.manifest_dir) {
            return Err(errors);
        }
        let mut executables = Vec::new();
        for target in self.targets {
            let executable = build
                .executable(self.manifest_dir, target)
                .ok_or_else(|| format!("cargo built no executable for tests/{target}.rs"))?;
            let digest = digest(executable)
                .ok_or_else(|| format!("{} could not be read", executable.display()))?;
            executables.push((target.clone(), executable.to_path_buf(), digest));
        }
        Ok(Built { executables })
    }

    /// Runs every executable of `built` until one does not pass, answering
    /// from the cache where it can. Returns the run and the time it took.
    pub(crate) fn run(&mut self, built: &Built, limit: Duration) -> (Run, Duration) {
        self.run_with(built, limit, true)
    }

    /// Runs like [`Runner::run`] but never reads results from the cache.
    pub(crate) fn rerun(&mut self, built: &Built, limit: Duration) -> (Run, Duration) {
        self.run_with(built, limit, false)
    }

    /// Writes the cache back; a failure only costs time on the next run.
    pub(crate) fn store_cache(&self) {
        self.cache.store();
    }

    fn run_with(&mut self, built: &Built, limit: Duration, cached: bool) -> (Run, Duration) {
        let mut total = Duration::ZERO;
        for (target, executable, expected) in &built.executables {
            if digest(executable) != Some(*expected) {
                let text = format!(
                    "{} changed after it was built, so a test rewrote a build; tests must \
                     not write to the build folder",
                    executable.display()
                );
                return (Run::Tampered(text), total);
            }
            let key = format!("{}:{expected:x}", executable.display());
            let answer = if cached {
                self.cache.lookup(&key)
            } else {
                None
            };
            let (run, elapsed) = match answer {
                Some(answer) => answer,
                None => {
                    let started = Instant::now();
                    let run = run_executable(self.manifest_dir, executable, target, limit);
                    let elapsed = started.elapsed();
                    self.cache.record(key, &run, elapsed);
                    (run, elapsed)
                }
            };
            total += elapsed;
            if !matches!(run, Run::Passed) {
                return (run, total);
            }
        }
        (Run::Passed, total)
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

/// Returns a digest of the file's bytes, to notice an executable that changed.
fn digest(path: &Path) -> Option<u64> {
    let bytes = fs::read(path).ok()?;
    let mut hasher = DefaultHasher::new();
    hasher.write(&bytes);
    Some(hasher.finish())
}

/// Results of earlier runs of learner test executables, so that a regrade
/// after an edit of the solution does not rerun the tests on every mutant.
///
/// An entry is keyed by the executable's path and digest, which change
/// whenever cargo rebuilds it, and lives in
/// `.workbook/learner-runs/PACKAGE.json`.
struct RunCache {
    path: Option<PathBuf>,
    entries: BTreeMap<String, CachedRun>,
}

#[derive(Serialize, Deserialize)]
struct CachedRun {
    outcome: String,
    text: String,
    millis: u64,
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

    fn lookup(&self, key: &str) -> Option<(Run, Duration)> {
        let entry = self.entries.get(key)?;
        let text = entry.text.clone();
        let run = match entry.outcome.as_str() {
            "passed" => Run::Passed,
            "failed" => Run::Failed(text),
            "timed_out" => Run::TimedOut(text),
            _ => return None,
        };
        Some((run, Duration::from_millis(entry.millis)))
    }

    fn record(&mut self, key: String, run: &Run, elapsed: Duration) {
        let (outcome, text) = match run {
            Run::Passed => ("passed", String::new()),
            Run::Failed(text) => ("failed", text.clone()),
            Run::TimedOut(text) => ("timed_out", text.clone()),
            Run::Tampered(_) => return,
        };
        let millis = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        self.entries.insert(
            key,
            CachedRun {
                outcome: outcome.to_owned(),
                text,
                millis,
            },
        );
    }

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

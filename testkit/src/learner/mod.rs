//! Evaluates the learner's own tests: they must pass on the graded solution
//! and fail on at least one mutant to earn a score of 3.
//!
//! The tests are `tests/mine.rs`; when the reference is graded, the
//! reference's example tests in `tests/reference_tests.rs` run with them.
//! Each mutant is selected through its `mutant-NAME` feature, which makes
//! cargo build that task crate once more with the buggy file in place of the
//! solution; the builds stay cached side by side in the target folder.
//!
//! Every variant is built before any learner test runs, so a test cannot
//! change the sources of the builds that follow, and an executable that
//! changed after its build is not run. The solution runs first and again
//! last, so a test that behaves differently on later runs fails.

mod runs;
mod scan;

use std::fs;
use std::path::Path;
use std::time::Duration;

use runs::{Run, Runner};
pub(crate) use scan::inspects_implementation;

use crate::report::{LearnerStatus, LearnerTests};

/// Time the learner tests may run on the graded solution.
const SOLUTION_TIME_LIMIT: Duration = Duration::from_secs(60);

/// Least time the learner tests may run on one mutant before they count as
/// catching it by hanging. A suite that is slow on the solution gets three
/// times its time there plus 5 s, up to the solution's limit, so that a test
/// that only waits cannot look as if it caught every mutant.
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

    // Build the solution's tests and every mutant's before running any.
    let mut runner = Runner::new(package, manifest_dir, &targets);
    let base_features: Vec<String> = if reference {
        vec![format!("{package}/reference")]
    } else {
        Vec::new()
    };
    let solution = match runner.build(&base_features) {
        Ok(solution) => solution,
        Err(text) => {
            result.status = LearnerStatus::CompileError;
            result.message = Some(text);
            return result;
        }
    };
    // A mutant that does not build is a workbook bug, which selftest reports;
    // here it only means the learner's tests did not catch it.
    let mutant_builds: Vec<_> = mutants
        .into_iter()
        .filter_map(|mutant| {
            let mut features = base_features.clone();
            features.push(format!("{package}/mutant-{}", mutant.replace('_', "-")));
            runner.build(&features).ok().map(|build| (mutant, build))
        })
        .collect();

    let (first, solution_time) = runner.run(&solution, SOLUTION_TIME_LIMIT);
    if let Some(problem) = failing_on_solution(first, "") {
        result.status = LearnerStatus::Failing;
        result.message = Some(problem);
        runner.store_cache();
        return result;
    }

    let mutant_limit =
        (solution_time * 3 + Duration::from_secs(5)).clamp(MUTANT_TIME_LIMIT, SOLUTION_TIME_LIMIT);
    let mut notes = Vec::new();
    for (mutant, build) in mutant_builds {
        match runner.run(&build, mutant_limit).0 {
            Run::Failed(_) => result.mutants_killed.push(mutant),
            Run::TimedOut(_) => {
                notes.push(format!(
                    "on {mutant} a test ran past {} s and was stopped, which counts as \
                     catching it; a test that bounds its waits fails faster (tokio::time::timeout \
                     for an await, a thread with a real-time limit for a call that can block)",
                    mutant_limit.as_secs()
                ));
                result.mutants_killed.push(mutant);
            }
            Run::Tampered(text) => {
                result.status = LearnerStatus::Rejected;
                result.message = Some(text);
                runner.store_cache();
                return result;
            }
            Run::Passed => {}
        }
    }

    // The second run on the solution must not reuse a cached result.
    let (last, _) = runner.rerun(&solution, SOLUTION_TIME_LIMIT);
    let rerun_note = " on the run after the mutants, though it passed before them; tests \
                      must not depend on what earlier runs did";
    if let Some(problem) = failing_on_solution(last, rerun_note) {
        result.status = LearnerStatus::Failing;
        result.mutants_killed.clear();
        result.message = Some(problem);
    } else if !notes.is_empty() {
        result.message = Some(notes.join("; "));
    }
    runner.store_cache();
    result
}

/// Describes a run of the learner tests on the solution that did not pass.
fn failing_on_solution(run: Run, note: &str) -> Option<String> {
    match run {
        Run::Passed => None,
        Run::Failed(text) | Run::TimedOut(text) | Run::Tampered(text) => {
            Some(format!("{text}{note}"))
        }
    }
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

//! Selftest verdicts on a task crate's files, which need no build: mutant
//! features against mutant files, the skeleton copy, and hints against the
//! README.

use std::collections::BTreeSet;
use std::fs;

use super::Verdicts;
use crate::discover::Task;
use crate::hints;

/// Records the file verdicts of every task.
pub(crate) fn check(tasks: &[&Task], verdicts: &mut Verdicts) {
    for task in tasks {
        check_mutants(task, verdicts);
        check_skeleton(task, verdicts);
        check_hints(task, verdicts);
    }
}

/// Records whether the mutant features and `src/mutants/*.rs` agree.
fn check_mutants(task: &Task, verdicts: &mut Verdicts) {
    let features: BTreeSet<String> = task.mutants().into_iter().collect();
    let files: BTreeSet<String> = mutant_files(task);
    let problems = mutant_mismatches(&features, &files);
    verdicts.record(
        problems.is_empty(),
        format!(
            "{}: {} mutant feature(s) match the files in src/mutants/",
            task.name,
            features.len()
        ),
        &problems.join("\n"),
    );
}

/// Returns the file stems of `src/mutants/*.rs`.
fn mutant_files(task: &Task) -> BTreeSet<String> {
    let Ok(entries) = fs::read_dir(task.dir.join("src").join("mutants")) else {
        return BTreeSet::new();
    };
    entries
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            if path.extension()? != "rs" {
                return None;
            }
            Some(path.file_stem()?.to_str()?.to_owned())
        })
        .collect()
}

/// Describes every mutant feature without a file and every file without a
/// feature; both sets hold file stems.
pub(crate) fn mutant_mismatches(
    features: &BTreeSet<String>,
    files: &BTreeSet<String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for stem in features.difference(files) {
        problems.push(format!(
            "feature mutant-{} has no file src/mutants/{stem}.rs",
            stem.replace('_', "-")
        ));
    }
    for stem in files.difference(features) {
        problems.push(format!(
            "src/mutants/{stem}.rs has no feature mutant-{} in Cargo.toml",
            stem.replace('_', "-")
        ));
    }
    problems
}

/// Records whether `skeleton/exercise.rs` exists and equals the exercise.
fn check_skeleton(task: &Task, verdicts: &mut Verdicts) {
    let skeleton = fs::read(task.dir.join("skeleton").join("exercise.rs"));
    verdicts.record(
        skeleton.is_ok(),
        format!("{}: skeleton/exercise.rs exists", task.name),
        "copy the pristine src/exercise.rs there; `cargo workbook reset` restores from it",
    );
    let Ok(skeleton) = skeleton else {
        return;
    };
    // A learner's checkout fails this on purpose: selftest proves the
    // workbook as shipped, with every exercise untouched.
    let exercise = fs::read(task.dir.join("src").join("exercise.rs")).unwrap_or_default();
    verdicts.record(
        exercise == skeleton,
        format!(
            "{}: src/exercise.rs is identical to skeleton/exercise.rs",
            task.name
        ),
        "the shipped exercise and its pristine copy differ; copy one over the other, or run \
         `cargo workbook reset` in a learner's checkout",
    );
}

/// Records whether every hint appears verbatim in the task's README.
fn check_hints(task: &Task, verdicts: &mut Verdicts) {
    let what = format!(
        "{}: every hint of hints.toml appears verbatim in README.md",
        task.name
    );
    let hints = match hints::load(task) {
        Ok(hints) => hints,
        Err(err) => return verdicts.fail(what, &format!("{err:#}")),
    };
    let readme = match fs::read_to_string(task.dir.join("README.md")) {
        Ok(text) => text.replace("\r\n", "\n"),
        Err(err) => return verdicts.fail(what, &format!("README.md cannot be read: {err}")),
    };
    let missing = missing_hints(&hints, &readme);
    let details: Vec<String> = missing
        .iter()
        .map(|number| format!("hint {number} of {} is not in README.md", hints.len()))
        .collect();
    verdicts.record(missing.is_empty(), what, &details.join("\n"));
}

/// Returns the 1-based numbers of the hints that `readme` does not contain.
pub(crate) fn missing_hints(hints: &[String], readme: &str) -> Vec<usize> {
    hints
        .iter()
        .enumerate()
        .filter(|(_, hint)| !readme.contains(hint.as_str()))
        .map(|(index, _)| index + 1)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|item| (*item).to_owned()).collect()
    }

    #[test]
    fn matching_mutants_have_no_mismatch() {
        let both = set(&["index_shift", "reused_slot"]);
        assert!(mutant_mismatches(&both, &both).is_empty());
    }

    #[test]
    fn mismatches_name_feature_and_file() {
        let problems = mutant_mismatches(&set(&["index_shift"]), &set(&["reused_slot"]));
        assert_eq!(
            problems,
            [
                "feature mutant-index-shift has no file src/mutants/index_shift.rs",
                "src/mutants/reused_slot.rs has no feature mutant-reused-slot in Cargo.toml",
            ]
        );
    }

    #[test]
    fn hints_must_appear_verbatim() {
        let hints = [
            "Use `try_send`.".to_owned(),
            "Keep a map\nof topics.".to_owned(),
        ];
        let readme = "# Task\n<details>\nKeep a map\nof topics.\n</details>\n";
        assert_eq!(missing_hints(&hints, readme), [1]);
    }
}

//! `cargo workbook grade --submission DIR`: grades a learner's repository
//! from this trusted checkout.
//!
//! Only the learner's own files are taken from DIR: each task's
//! `src/exercise.rs` and `tests/mine.rs`. They go into a scratch copy of this
//! workspace (without `target/`, `.git/` and `.workbook/`), which is graded
//! by running this program again there. Its state folder is a fresh one in
//! the scratch copy, seeded only with the hint counts from DIR's
//! `.workbook/hints.json`. Every other file of DIR that differs from this
//! checkout is listed as ignored, so a changed grading suite or build script
//! can neither raise a score nor go unnoticed.
//!
//! The scratch copy builds into `target/workbook-submission/` of this
//! workspace, which persists, so only the first submission builds the
//! dependencies. It must not share this workspace's own target folder.
//! Cargo names a workspace member's artifacts after its path relative to the
//! workspace root, so the copy and the checkout would write the same files.
//! The checkout's next build would then take the submission's executables
//! for up to date, because the checkout's sources are older than them.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use testkit::state::STATE_DIR_VAR;

use crate::discover::Workspace;
use crate::grade::Outputs;

/// Files of each task that belong to the learner, relative to its folder.
pub(crate) const LEARNER_FILES: [&str; 2] = ["src/exercise.rs", "tests/mine.rs"];

/// Folder under this workspace's target folder that submissions build into.
const SUBMISSION_TARGET: &str = "workbook-submission";

/// Top-level folders that are never copied or compared.
const SKIPPED_FOLDERS: [&str; 3] = ["target", ".git", ".workbook"];

/// Grades the submission in `dir` and returns the exit code of the grading.
///
/// # Errors
///
/// Returns an error when `dir` is not a folder, when the scratch copy cannot
/// be made, or when the grading process cannot be started.
pub(crate) fn run(
    workspace: &Workspace,
    dir: &Path,
    keys: &[String],
    outputs: &Outputs,
) -> Result<ExitCode> {
    let submission = dir.canonicalize().with_context(|| {
        format!(
            "the submission folder {} does not exist; pass the learner's workspace folder",
            dir.display()
        )
    })?;
    if !submission.is_dir() {
        bail!(
            "the submission {} is not a folder; pass the learner's workspace folder",
            dir.display()
        );
    }
    // Validate the task names here, where the error reads best.
    workspace.select(keys)?;

    let scratch = Scratch::create()?;
    copy_tree(&workspace.root, scratch.path(), &submission)?;
    let mut used = Vec::new();
    for task in &workspace.tasks {
        let folder = task.dir.strip_prefix(&workspace.root).unwrap_or(&task.dir);
        for file in LEARNER_FILES {
            let relative = folder.join(file);
            let from = submission.join(&relative);
            if from.is_file() {
                let to = scratch.path().join(&relative);
                fs::copy(&from, &to).with_context(|| {
                    format!("could not copy {} into the scratch copy", from.display())
                })?;
                used.push(relative);
            }
        }
    }

    let state_dir = scratch.path().join(".workbook");
    let hints = seed_hints(&submission, &state_dir)?;
    let ignored = ignored_files(&workspace.root, &submission, &used)?;
    print_summary(&submission, &used, &ignored, &hints);

    let status = Command::new(std::env::current_exe().context("could not find this program")?)
        .current_dir(scratch.path())
        .env(
            "CARGO_TARGET_DIR",
            workspace.target_dir.join(SUBMISSION_TARGET),
        )
        .env(STATE_DIR_VAR, &state_dir)
        .args(grade_arguments(keys, outputs)?)
        .status()
        .context("could not start the grading of the scratch copy")?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

/// Returns the arguments of the inner `grade` run, with output files made
/// absolute because it runs in another folder.
fn grade_arguments(keys: &[String], outputs: &Outputs) -> Result<Vec<String>> {
    let current = std::env::current_dir()?;
    let mut args = vec!["grade".to_owned()];
    args.extend(keys.iter().cloned());
    for (flag, path) in [("--json", &outputs.json), ("--junit", &outputs.junit)] {
        if let Some(path) = path {
            args.push(flag.to_owned());
            args.push(current.join(path).display().to_string());
        }
    }
    Ok(args)
}

/// Copies the submission's hint counts into the scratch state; returns
/// them, or `None` when the submission has no hints file.
fn seed_hints(submission: &Path, state_dir: &Path) -> Result<Option<BTreeMap<String, u32>>> {
    let source = submission.join(".workbook").join("hints.json");
    let text = match fs::read_to_string(&source) {
        Ok(text) => text,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => {
            return Err(err).with_context(|| format!("could not read {}", source.display()));
        }
    };
    let hints: BTreeMap<String, u32> = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a map from task crate to hint count; fix or remove it",
            source.display()
        )
    })?;
    fs::create_dir_all(state_dir)?;
    fs::write(state_dir.join("hints.json"), text)
        .context("could not write the hint counts into the scratch state")?;
    Ok(Some(hints))
}

/// Prints which files of the submission are graded and which are ignored.
fn print_summary(
    submission: &Path,
    used: &[PathBuf],
    ignored: &[(PathBuf, &'static str)],
    hints: &Option<BTreeMap<String, u32>>,
) {
    println!("Grading the submission in {}", submission.display());
    println!("Learner files used ({}):", used.len());
    for path in used {
        println!("  {}", path.display());
    }
    match hints {
        None => println!(
            "Hints: the submission has no .workbook/hints.json, so no hints count as revealed."
        ),
        Some(hints) if hints.is_empty() => println!("Hints: none revealed."),
        Some(hints) => {
            let counts: Vec<String> = hints
                .iter()
                .map(|(task, count)| format!("{task} {count}"))
                .collect();
            println!("Hints revealed: {}", counts.join(", "));
        }
    }
    if ignored.is_empty() {
        println!("No other file differs from this checkout.");
    } else {
        println!(
            "Ignored, because only learner files are graded ({}):",
            ignored.len()
        );
        for (path, why) in ignored {
            println!("  ignored: {} ({why})", path.display());
        }
    }
}

/// Lists every file of the submission, other than the learner files used,
/// that is missing from or differs from the checkout at `root`.
fn ignored_files(
    root: &Path,
    submission: &Path,
    used: &[PathBuf],
) -> Result<Vec<(PathBuf, &'static str)>> {
    let mut ignored = Vec::new();
    for relative in files_under(submission)? {
        if used.contains(&relative) {
            continue;
        }
        let ours = root.join(&relative);
        if !submission.join(&relative).is_file() {
            ignored.push((relative, "not a regular file"));
        } else if !ours.is_file() {
            ignored.push((relative, "not in this checkout"));
        } else if fs::read(&ours)? != fs::read(submission.join(&relative))? {
            ignored.push((relative, "differs from this checkout"));
        }
    }
    Ok(ignored)
}

/// Returns the paths of all files under `root`, relative to it and sorted,
/// leaving out the skipped top-level folders.
fn files_under(root: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let folder = root.join(&relative);
        let entries = fs::read_dir(&folder)
            .with_context(|| format!("could not list {}", folder.display()))?;
        for entry in entries {
            let entry = entry?;
            let path = relative.join(entry.file_name());
            if relative.as_os_str().is_empty() && is_skipped(&path) {
                continue;
            }
            if entry.file_type()?.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Returns whether a top-level path is a folder that is never copied.
fn is_skipped(top_level: &Path) -> bool {
    SKIPPED_FOLDERS
        .iter()
        .any(|folder| top_level == Path::new(folder))
}

/// Copies the workspace at `from` into `to`, leaving out the skipped
/// folders and `exclude` (the submission, when it lies inside the
/// workspace). Symbolic links are copied as links.
fn copy_tree(from: &Path, to: &Path, exclude: &Path) -> Result<()> {
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let source = from.join(&relative);
        fs::create_dir_all(to.join(&relative))?;
        for entry in fs::read_dir(&source)? {
            let entry = entry?;
            let path = relative.join(entry.file_name());
            if (relative.as_os_str().is_empty() && is_skipped(&path)) || entry.path() == exclude {
                continue;
            }
            let kind = entry.file_type()?;
            let target = to.join(&path);
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_symlink() {
                let link = fs::read_link(entry.path())?;
                std::os::unix::fs::symlink(&link, &target)
                    .with_context(|| format!("could not copy the link {}", path.display()))?;
            } else {
                fs::copy(entry.path(), &target)
                    .with_context(|| format!("could not copy {}", path.display()))?;
            }
        }
    }
    Ok(())
}

/// A scratch folder that is removed when dropped.
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// Creates an empty scratch folder named after this process.
    fn create() -> Result<Scratch> {
        let path = std::env::temp_dir().join(format!("workbook-submission-{}", std::process::id()));
        if path.exists() {
            fs::remove_dir_all(&path)?;
        }
        fs::create_dir_all(&path)
            .with_context(|| format!("could not create the scratch folder {}", path.display()))?;
        Ok(Scratch { path })
    }

    /// Returns the folder's path.
    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(err) = fs::remove_dir_all(&self.path) {
            eprintln!(
                "warning: could not remove the scratch folder {}: {err}",
                self.path.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A fresh folder under the system's temporary folder for one test.
    fn temp_folder(name: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "workbook-submission-test-{name}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("temp folder is writable");
        path
    }

    fn write(root: &Path, relative: &str, text: &str) {
        let path = root.join(relative);
        fs::create_dir_all(path.parent().expect("a file has a folder")).expect("mkdir");
        fs::write(path, text).expect("write");
    }

    #[test]
    fn only_changed_non_learner_files_are_ignored() {
        let ours = temp_folder("ours");
        let theirs = temp_folder("theirs");
        for root in [&ours, &theirs] {
            write(root, "task01_basic/tests/grade.rs", "fn main() {}");
            write(root, "README.md", "same");
        }
        write(&theirs, "task01_basic/src/exercise.rs", "learner");
        write(
            &theirs,
            "task01_basic/tests/grade.rs",
            "fn main() { /* changed */ }",
        );
        write(&theirs, "notes.txt", "new");
        write(&theirs, "target/debug/junk", "skipped");

        let used = vec![PathBuf::from("task01_basic/src/exercise.rs")];
        let ignored = ignored_files(&ours, &theirs, &used).expect("folders are readable");
        assert_eq!(
            ignored,
            [
                (PathBuf::from("notes.txt"), "not in this checkout"),
                (
                    PathBuf::from("task01_basic/tests/grade.rs"),
                    "differs from this checkout"
                ),
            ]
        );
        fs::remove_dir_all(&ours).expect("cleanup");
        fs::remove_dir_all(&theirs).expect("cleanup");
    }

    #[test]
    fn copy_leaves_out_build_output_and_state() {
        let from = temp_folder("from");
        let to = temp_folder("to");
        write(&from, "Cargo.toml", "[workspace]");
        write(&from, "task01_basic/src/lib.rs", "");
        write(&from, "target/debug/big", "x");
        write(&from, ".workbook/hints.json", "{}");
        copy_tree(&from, &to, Path::new("/nonexistent")).expect("copy works");
        let copied = files_under(&to).expect("listable");
        assert_eq!(
            copied,
            [
                PathBuf::from("Cargo.toml"),
                PathBuf::from("task01_basic/src/lib.rs")
            ]
        );
        assert!(!to.join("target").exists());
        fs::remove_dir_all(&from).expect("cleanup");
        fs::remove_dir_all(&to).expect("cleanup");
    }

    #[test]
    fn output_paths_become_absolute() {
        let outputs = Outputs {
            json: Some(PathBuf::from("out/r.json")),
            junit: None,
        };
        let args = grade_arguments(&["1".to_owned()], &outputs).expect("current dir exists");
        assert_eq!(args[..2], ["grade", "1"]);
        assert_eq!(args[2], "--json");
        assert!(Path::new(&args[3]).is_absolute(), "{}", args[3]);
    }
}

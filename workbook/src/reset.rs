//! `cargo workbook reset N`: restores a task's exercise to its skeleton.
//!
//! The learner's file is overwritten without a question, so the old version is
//! first saved in the state folder, and the output names the saved copy. The
//! stored result is forgotten, but the hint count stays: a hint once read stays
//! read, or a reset would be a way to clear hints before grading.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use testkit::state::State;

use crate::discover::{Task, Workspace};

/// Restores `task`'s `src/exercise.rs` and prints what changed.
///
/// # Errors
///
/// Returns an error, and changes nothing, when `skeleton/exercise.rs` is
/// missing; returns an error naming the file when a write fails.
pub(crate) fn run(workspace: &Workspace, task: &Task) -> Result<()> {
    let skeleton = task.dir.join("skeleton").join("exercise.rs");
    let exercise = task.dir.join("src").join("exercise.rs");
    let skeleton_shown = task.display_path(&skeleton);
    let exercise_shown = task.display_path(&exercise);
    let pristine = fs::read(&skeleton).with_context(|| {
        format!(
            "cannot reset task {}: its pristine copy {skeleton_shown} is missing or unreadable, \
             so {exercise_shown} was left as it is; restore the copy from version control \
             (`git restore {skeleton_shown}`) and rerun",
            task.number
        )
    })?;
    let state = State::for_workspace(&workspace.root);

    match fs::read(&exercise) {
        Ok(current) if current == pristine => {
            println!("{exercise_shown} is already the skeleton; nothing was overwritten.");
        }
        Ok(current) => {
            let backup = save_backup(state.dir(), &task.name, &current)?;
            write_exercise(&exercise, &pristine, &exercise_shown)?;
            println!(
                "Overwrote {exercise_shown} ({} lines) with {skeleton_shown}.\n\
                 Your previous version is saved as {}.",
                line_count(&current),
                backup.display()
            );
        }
        Err(_) => {
            write_exercise(&exercise, &pristine, &exercise_shown)?;
            println!("{exercise_shown} was missing; restored it from {skeleton_shown}.");
        }
    }

    let hints_used = state.hints_used(&task.name);
    state.forget_result(&task.name).with_context(|| {
        format!(
            "the exercise was reset, but the stored result in {} could not be removed; \
                 delete results/{}.json there by hand",
            state.dir().display(),
            task.name
        )
    })?;
    println!(
        "Forgot the stored result of task {}; tests/mine.rs is unchanged.",
        task.number
    );
    if hints_used > 0 {
        let hints = if hints_used == 1 {
            "The 1 hint you revealed still counts".to_owned()
        } else {
            format!("The {hints_used} hints you revealed still count")
        };
        println!("{hints}: hints once read stay read.");
    }
    Ok(())
}

/// Writes `content` to the exercise at `path`, shown as `shown` in errors.
fn write_exercise(path: &Path, content: &[u8], shown: &str) -> Result<()> {
    fs::write(path, content)
        .with_context(|| format!("could not write {shown}; check that the file is writable"))
}

/// Saves the learner's version as STATE/backups/TASK-exercise-SECONDS.rs.
fn save_backup(state_dir: &Path, task: &str, content: &[u8]) -> Result<PathBuf> {
    let folder = state_dir.join("backups");
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let path = folder.join(format!("{task}-exercise-{seconds}.rs"));
    fs::create_dir_all(&folder)
        .and_then(|()| fs::write(&path, content))
        .with_context(|| {
            format!(
                "could not save your current exercise to {} before the reset, so nothing \
                 was overwritten; check that the folder is writable",
                path.display()
            )
        })?;
    Ok(path)
}

/// Returns the number of lines of `content`.
fn line_count(content: &[u8]) -> usize {
    String::from_utf8_lossy(content).lines().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_is_written_under_backups() {
        let dir = std::env::temp_dir().join(format!("workbook-reset-test-{}", std::process::id()));
        let path = save_backup(&dir, "task01_basic", b"fn f() {}\n").expect("temp dir is writable");
        assert!(path.starts_with(dir.join("backups")), "{}", path.display());
        assert_eq!(fs::read(&path).expect("backup exists"), b"fn f() {}\n");
        fs::remove_dir_all(&dir).expect("temp dir is removable");
    }

    #[test]
    fn line_count_counts_lines() {
        assert_eq!(line_count(b"a\nb\n"), 2);
        assert_eq!(line_count(b""), 0);
    }
}

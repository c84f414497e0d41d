//! The learner's local state: hints revealed and the last grading results.
//!
//! It lives in one git-ignored folder, `.workbook/` at the workspace root, or
//! in the folder that `WORKBOOK_STATE_DIR` names. `hints.json` maps a task's
//! crate name to the number of hints revealed; `results/TASK.json` holds the
//! last [`TaskReport`] of a full grading run of the learner's exercise.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::report::TaskReport;

/// Environment variable that moves the state folder elsewhere.
pub const STATE_DIR_VAR: &str = "WORKBOOK_STATE_DIR";

/// Handle on the state folder of one workspace.
#[derive(Clone, Debug)]
pub struct State {
    dir: PathBuf,
}

impl State {
    /// Opens the state folder of the workspace at `workspace_root`, honouring
    /// `WORKBOOK_STATE_DIR`. Nothing is created until something is written.
    pub fn for_workspace(workspace_root: &Path) -> State {
        let dir = match std::env::var_os(STATE_DIR_VAR) {
            Some(dir) => PathBuf::from(dir),
            None => workspace_root.join(".workbook"),
        };
        State { dir }
    }

    /// Returns the folder this state lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Returns the number of hints revealed for `task`.
    ///
    /// An unreadable hints file counts as no hints, because grading must not
    /// fail over local bookkeeping; the CLI reports such a file when it writes.
    pub fn hints_used(&self, task: &str) -> u32 {
        self.read_hints()
            .ok()
            .and_then(|hints| hints.get(task).copied())
            .unwrap_or(0)
    }

    /// Records that `count` hints of `task` have been revealed.
    ///
    /// # Errors
    ///
    /// Returns the I/O error when the state folder cannot be written.
    pub fn set_hints_used(&self, task: &str, count: u32) -> io::Result<()> {
        let mut hints = self.read_hints().unwrap_or_default();
        if count == 0 {
            hints.remove(task);
        } else {
            hints.insert(task.to_owned(), count);
        }
        let text = serde_json::to_string_pretty(&hints).map_err(io::Error::other)?;
        self.write(&self.dir.join("hints.json"), &text)
    }

    /// Returns the last stored result of grading `task`, if any.
    pub fn last_result(&self, task: &str) -> Option<TaskReport> {
        let text = fs::read_to_string(self.result_path(task)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Returns when the last result of `task` was stored, if one was.
    pub fn last_result_time(&self, task: &str) -> Option<std::time::SystemTime> {
        fs::metadata(self.result_path(task)).ok()?.modified().ok()
    }

    /// Stores `report` as the last result of its task.
    ///
    /// # Errors
    ///
    /// Returns the I/O error when the state folder cannot be written.
    pub fn store_result(&self, report: &TaskReport) -> io::Result<()> {
        let text = serde_json::to_string_pretty(report).map_err(io::Error::other)?;
        self.write(&self.result_path(&report.task), &text)
    }

    /// Forgets the hints and the last result of `task`.
    ///
    /// # Errors
    ///
    /// Returns the I/O error when the state folder cannot be written.
    pub fn forget(&self, task: &str) -> io::Result<()> {
        self.set_hints_used(task, 0)?;
        self.forget_result(task)
    }

    /// Forgets the last result of `task` and keeps its hint count.
    ///
    /// # Errors
    ///
    /// Returns the I/O error when the result file cannot be removed.
    pub fn forget_result(&self, task: &str) -> io::Result<()> {
        match fs::remove_file(self.result_path(task)) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }

    fn read_hints(&self) -> io::Result<BTreeMap<String, u32>> {
        let text = match fs::read_to_string(self.dir.join("hints.json")) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(err) => return Err(err),
        };
        serde_json::from_str(&text).map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))
    }

    fn result_path(&self, task: &str) -> PathBuf {
        self.dir.join("results").join(format!("{task}.json"))
    }

    // Writes through a temporary file and a rename, so a reader never sees
    // half a file when the CLI and a test run write at the same time.
    fn write(&self, path: &Path, text: &str) -> io::Result<()> {
        let parent = path
            .parent()
            .expect("state files always have a parent folder");
        fs::create_dir_all(parent)?;
        let temporary = path.with_extension(format!("tmp{}", std::process::id()));
        fs::write(&temporary, text)?;
        fs::rename(&temporary, path)
    }
}

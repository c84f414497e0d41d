//! `cargo workbook watch [N]`: regrades a task on every save.
//!
//! It grades once, then waits for changes under the task's `src/` and
//! `tests/` folders. A burst of events, as editors write a file in several
//! steps, counts as one change once 300 ms pass without another. Changes made
//! while a grading run is under way trigger the next run. Ctrl-C ends the
//! program, and the grading run in progress with it.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use notify::event::ModifyKind;
use notify::{Event, EventKind, RecursiveMode, Watcher};
use testkit::state::State;

use crate::discover::{Task, Workspace};
use crate::grade::{self, Implementation, Results};
use crate::table;

/// Quiet time that ends a burst of file events.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// Folders of a task that are watched.
const WATCHED: [&str; 2] = ["src", "tests"];

/// Watches the task `key` names, or the first task that does not pass yet,
/// and regrades it on every change until the process is interrupted.
///
/// # Errors
///
/// Returns an error when no task matches, when the file watcher cannot
/// start, or when cargo cannot be run.
pub(crate) fn run(workspace: &Workspace, key: Option<&str>) -> Result<ExitCode> {
    let task = match key {
        Some(key) => workspace.find(key)?,
        None => first_unfinished(workspace)?,
    };

    let (sender, events) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(sender)
        .context("could not start the file watcher; is inotify available?")?;
    for folder in WATCHED {
        let path = task.dir.join(folder);
        if path.is_dir() {
            watcher
                .watch(&path, RecursiveMode::Recursive)
                .with_context(|| format!("could not watch {}", task.display_path(&path)))?;
        }
    }

    loop {
        clear_screen();
        let graded = grade::grade_tasks(workspace, &[task], &Implementation::Exercise)?;
        let results = Results {
            implementation: "exercise".to_owned(),
            tasks: graded,
            all_tasks_graded: workspace.tasks.len() == 1,
        };
        print!("{}", table::render_results(&results));
        println!(
            "\nWatching {} for changes to src/ and tests/; press Ctrl-C to stop.",
            task.name
        );
        let _ = std::io::stdout().flush();
        wait_for_change(&events, &task.dir)?;
    }
}

/// Returns the first task, by number, whose last stored result does not
/// pass, or that has none.
fn first_unfinished(workspace: &Workspace) -> Result<&Task> {
    let state = State::for_workspace(&workspace.root);
    workspace
        .tasks
        .iter()
        .find(|task| {
            state
                .last_result(&task.name)
                .is_none_or(|report| report.score == 0)
        })
        .ok_or_else(|| {
            if workspace.tasks.is_empty() {
                anyhow!("the workspace has no task crates to watch")
            } else {
                anyhow!(
                    "every task passes already; name one to watch, as in `cargo workbook watch 3`"
                )
            }
        })
}

/// Blocks until a relevant change, then until DEBOUNCE passes without one.
fn wait_for_change(events: &Receiver<notify::Result<Event>>, task_dir: &Path) -> Result<()> {
    loop {
        match events.recv() {
            Ok(Ok(event)) if is_relevant(&event, task_dir) => break,
            Ok(Ok(_)) => {}
            Ok(Err(err)) => eprintln!("warning: the file watcher reported an error: {err}"),
            Err(_) => bail!("the file watcher stopped; rerun `cargo workbook watch`"),
        }
    }
    loop {
        match events.recv_timeout(DEBOUNCE) {
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => return Ok(()),
            Err(RecvTimeoutError::Disconnected) => {
                bail!("the file watcher stopped; rerun `cargo workbook watch`")
            }
        }
    }
}

/// Returns whether `event` changes a source file of the task in `task_dir`:
/// a create, remove or content change outside build output, hidden files and
/// editor backups. Reads and metadata changes, such as cargo opening the
/// files, do not count.
fn is_relevant(event: &Event, task_dir: &Path) -> bool {
    let changes = match event.kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        EventKind::Access(_) | EventKind::Any | EventKind::Other => false,
    };
    changes
        && event
            .paths
            .iter()
            .any(|path| !is_ignored(path.strip_prefix(task_dir).unwrap_or(path)))
}

/// Takes a path inside the task's folder, so that a hidden folder above the
/// workspace does not hide every change.
fn is_ignored(path: &Path) -> bool {
    let in_ignored_folder = path.components().any(|part| {
        let part = part.as_os_str().to_string_lossy();
        part == "target" || (part.starts_with('.') && part != "." && part != "..")
    });
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    in_ignored_folder || name.ends_with('~') || name.ends_with(".swp") || name.ends_with(".tmp")
}

/// Clears a terminal, or prints a separator line into a log.
fn clear_screen() {
    if std::io::stdout().is_terminal() {
        // ANSI: erase the screen, then move the cursor to the top left.
        print!("\x1b[2J\x1b[H");
    } else {
        println!("\n----");
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use notify::event::{AccessKind, CreateKind, DataChange, MetadataKind};

    use super::*;

    fn event(kind: EventKind, path: &str) -> Event {
        Event::new(kind).add_path(PathBuf::from(path))
    }

    fn relevant(event: &Event) -> bool {
        is_relevant(event, Path::new("/home/.hidden/ws/task01_basic"))
    }

    #[test]
    fn saving_a_source_file_is_relevant() {
        let kind = EventKind::Modify(ModifyKind::Data(DataChange::Content));
        assert!(relevant(&event(
            kind,
            "/home/.hidden/ws/task01_basic/src/exercise.rs"
        )));
        let created = EventKind::Create(CreateKind::File);
        assert!(relevant(&event(
            created,
            "/home/.hidden/ws/task01_basic/tests/mine.rs"
        )));
    }

    #[test]
    fn reads_and_metadata_changes_are_ignored() {
        let read = EventKind::Access(AccessKind::Read);
        assert!(!relevant(&event(
            read,
            "/home/.hidden/ws/task01_basic/src/exercise.rs"
        )));
        let touched = EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime));
        assert!(!relevant(&event(
            touched,
            "/home/.hidden/ws/task01_basic/src/exercise.rs"
        )));
    }

    #[test]
    fn build_output_and_editor_files_are_ignored() {
        let kind = EventKind::Modify(ModifyKind::Data(DataChange::Content));
        assert!(!relevant(&event(
            kind,
            "/home/.hidden/ws/task01_basic/src/target/x"
        )));
        assert!(!relevant(&event(
            kind,
            "/home/.hidden/ws/task01_basic/src/.exercise.rs.swp"
        )));
        assert!(!relevant(&event(
            kind,
            "/home/.hidden/ws/task01_basic/src/exercise.rs~"
        )));
    }
}

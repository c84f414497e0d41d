//! `cargo workbook hint N`: reveals a task's hints one at a time.
//!
//! The hints live in the task's `hints.toml` as `[[hint]]` tables with a
//! `text` field, in the order they are revealed. Each reveal is recorded in
//! the learner's state, because a task solved with hints scores at most 1
//! unless the learner's own tests earn 3.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use testkit::state::State;

use crate::discover::{Task, Workspace};

/// The file of a task's hints, relative to its folder.
pub(crate) const HINTS_FILE: &str = "hints.toml";

/// The whole `hints.toml`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HintsFile {
    #[serde(default)]
    hint: Vec<Hint>,
}

/// One `[[hint]]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Hint {
    text: String,
}

/// Parses the text of a `hints.toml` into the hint texts, in order, each
/// without the surrounding blank lines.
///
/// # Errors
///
/// Returns an error for invalid TOML, an unknown key, or an empty hint.
pub(crate) fn parse(text: &str) -> Result<Vec<String>> {
    let file: HintsFile = toml::from_str(text)?;
    let mut hints = Vec::with_capacity(file.hint.len());
    for (index, hint) in file.hint.into_iter().enumerate() {
        let text = hint.text.trim_matches('\n').trim_end().to_owned();
        if text.is_empty() {
            bail!("hint {} has an empty text", index + 1);
        }
        hints.push(text);
    }
    Ok(hints)
}

/// Returns the path of `task`'s hints file.
pub(crate) fn path(task: &Task) -> PathBuf {
    task.dir.join(HINTS_FILE)
}

/// Reads and parses `task`'s hints.
///
/// # Errors
///
/// Returns an error naming the file when it is missing, invalid or empty.
pub(crate) fn load(task: &Task) -> Result<Vec<String>> {
    let path = path(task);
    let shown = task.display_path(&path);
    let text = fs::read_to_string(&path)
        .with_context(|| format!("could not read {shown}; task {} has no hints", task.number))?;
    let hints = parse(&text).with_context(|| {
        format!("{shown} is invalid; each hint is a [[hint]] table with one `text` string")
    })?;
    if hints.is_empty() {
        bail!(
            "{shown} contains no [[hint]] tables, so task {} has no hints",
            task.number
        );
    }
    Ok(hints)
}

/// Prints the next hint of `task` and records it, or reprints every hint
/// when all of them are revealed already.
///
/// # Errors
///
/// Returns an error when the hints cannot be read or the reveal cannot be
/// recorded; in the second case no hint is printed.
pub(crate) fn run(workspace: &Workspace, task: &Task) -> Result<()> {
    let hints = load(task)?;
    let state = State::for_workspace(&workspace.root);
    let used = usize::try_from(state.hints_used(&task.name)).unwrap_or(usize::MAX);
    let total = hints.len();

    if used >= total {
        println!(
            "All {total} hints of task {}: {} are revealed already; here they are again.\n",
            task.number, task.title
        );
        for (index, hint) in hints.iter().enumerate() {
            println!("{}\n", render(task, index, total, hint));
        }
        return Ok(());
    }

    // Record before printing, so a hint is never shown without being counted.
    let revealed = used + 1;
    let count = u32::try_from(revealed).expect("a hints file contains far fewer than 2^32 hints");
    state.set_hints_used(&task.name, count).with_context(|| {
        format!(
            "could not record the hint in {}; check that the folder is writable",
            state.dir().display()
        )
    })?;
    println!("{}\n", render(task, used, total, &hints[used]));
    println!("{}", cost_note(revealed, total));
    Ok(())
}

/// Formats the hint at 0-based `index` with its heading.
fn render(task: &Task, index: usize, total: usize, hint: &str) -> String {
    format!(
        "Hint {} of {total} for task {}: {}\n\n{hint}",
        index + 1,
        task.number,
        task.title
    )
}

/// Returns the note on what revealing hints costs and how many are left.
fn cost_note(revealed: usize, total: usize) -> String {
    let remaining = total - revealed;
    let more = match remaining {
        0 => "That was the last hint.".to_owned(),
        1 => "1 more hint is left.".to_owned(),
        count => format!("{count} more hints are left."),
    };
    format!(
        "{revealed} of {total} hints revealed for this task: all checks passing now scores at \
         most 1 unless your own tests in tests/mine.rs earn 3. {more}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_keeps_order_and_trims_blank_lines() {
        let text = r#"
[[hint]]
text = """
First, look at `tokio::sync::mpsc::Sender::try_send`.
It never waits.
"""

[[hint]]
text = "Second."
"#;
        let hints = parse(text).expect("valid hints");
        assert_eq!(
            hints,
            [
                "First, look at `tokio::sync::mpsc::Sender::try_send`.\nIt never waits.",
                "Second."
            ]
        );
    }

    #[test]
    fn parse_accepts_a_file_without_hints() {
        assert!(parse("").expect("empty file is valid TOML").is_empty());
    }

    #[test]
    fn parse_rejects_misspelled_key() {
        let err = parse("[[hint]]\ntxt = \"typo\"\n").expect_err("unknown key");
        assert!(format!("{err:#}").contains("txt"), "{err:#}");
    }

    #[test]
    fn parse_rejects_empty_hint() {
        let err = parse("[[hint]]\ntext = \"\"\"\n\n\"\"\"\n").expect_err("empty text");
        assert!(
            format!("{err:#}").contains("hint 1 has an empty text"),
            "{err:#}"
        );
    }

    #[test]
    fn cost_note_names_cap_and_remaining() {
        let note = cost_note(1, 3);
        assert!(note.contains("scores at most 1"), "{note}");
        assert!(note.contains("2 more hints are left"), "{note}");
        assert!(cost_note(3, 3).contains("last hint"));
    }
}

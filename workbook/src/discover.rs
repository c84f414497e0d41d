//! Finds the workspace and its tasks from `cargo metadata`.
//!
//! Nothing lists the tasks by hand: a task is any workspace package whose
//! manifest has a `[package.metadata.workbook]` table with `number`, `level`
//! and `title`. Its folder, features and test targets come from the same
//! metadata, so adding a task crate is all it takes to grade it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;

/// Prefix of the features that select a known-buggy version of a task.
pub(crate) const MUTANT_FEATURE_PREFIX: &str = "mutant-";

/// The workspace and the tasks found in it.
#[derive(Clone, Debug)]
pub(crate) struct Workspace {
    /// Folder of the workspace's root `Cargo.toml`.
    pub(crate) root: PathBuf,
    /// Folder cargo builds into.
    pub(crate) target_dir: PathBuf,
    /// Every task, sorted by number.
    pub(crate) tasks: Vec<Task>,
}

/// One task crate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Task {
    /// Crate name, such as `task01_basic`.
    pub(crate) name: String,
    /// Task number from the crate's metadata, starting at 1.
    pub(crate) number: u32,
    /// Level letter: B, I, A or S.
    pub(crate) level: String,
    /// Title from the crate's metadata.
    pub(crate) title: String,
    /// Folder of the crate's `Cargo.toml`.
    pub(crate) dir: PathBuf,
    /// Names of the crate's features.
    pub(crate) features: BTreeSet<String>,
    /// Names of the crate's test targets, such as `grade` and `mine`.
    pub(crate) test_targets: BTreeSet<String>,
}

impl Task {
    /// Returns the file stems of the mutants that the crate's features
    /// select, sorted: feature `mutant-index-shift` is mutant `index_shift`.
    pub(crate) fn mutants(&self) -> Vec<String> {
        self.features
            .iter()
            .filter_map(|feature| feature.strip_prefix(MUTANT_FEATURE_PREFIX))
            .map(|name| name.replace('-', "_"))
            .collect()
    }

    /// Returns `path`, which lies inside the task's folder, relative to the
    /// workspace root for messages, such as `task01_basic/src/exercise.rs`.
    pub(crate) fn display_path(&self, path: &Path) -> String {
        let base = self.dir.parent().unwrap_or(&self.dir);
        path.strip_prefix(base)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

impl Workspace {
    /// Runs `cargo metadata` in `dir` and collects the workspace's tasks.
    ///
    /// # Errors
    ///
    /// Returns an error when cargo fails (for example on a broken manifest)
    /// or when a task's metadata is malformed.
    pub(crate) fn discover(dir: &Path) -> Result<Workspace> {
        let output = testkit::cargo::cargo_command()
            .current_dir(dir)
            .args(["metadata", "--no-deps", "--format-version", "1"])
            .stdin(Stdio::null())
            .output()
            .context("could not start cargo; is it installed and on PATH?")?;
        if !output.status.success() {
            bail!(
                "`cargo metadata` failed in {}; fix the manifest it names and rerun:\n{}",
                dir.display(),
                String::from_utf8_lossy(&output.stderr).trim_end()
            );
        }
        let text = String::from_utf8(output.stdout).context("cargo metadata is not UTF-8")?;
        Workspace::from_metadata(&text)
    }

    /// Collects the tasks from the JSON that `cargo metadata` prints.
    ///
    /// # Errors
    ///
    /// Returns an error when the JSON is not cargo's metadata format, when a
    /// task's `metadata.workbook` table lacks a field, or when two tasks
    /// share a number.
    pub(crate) fn from_metadata(json: &str) -> Result<Workspace> {
        let metadata: Metadata =
            serde_json::from_str(json).context("cargo metadata printed unexpected JSON")?;
        let mut tasks = Vec::new();
        for package in metadata.packages {
            let Some(table) = package
                .metadata
                .as_ref()
                .and_then(|metadata| metadata.get("workbook"))
            else {
                continue;
            };
            let info: TaskMetadata = serde_json::from_value(table.clone()).with_context(|| {
                format!(
                    "[package.metadata.workbook] of {} is invalid; it needs number (an integer \
                     from 1), level and title",
                    package.manifest_path.display()
                )
            })?;
            if info.number == 0 {
                bail!(
                    "task numbers start at 1, but {} has number 0",
                    package.manifest_path.display()
                );
            }
            let dir = package
                .manifest_path
                .parent()
                .ok_or_else(|| anyhow!("manifest path {:?} has no folder", package.manifest_path))?
                .to_path_buf();
            tasks.push(Task {
                name: package.name,
                number: info.number,
                level: info.level,
                title: info.title,
                dir,
                features: package.features.into_keys().collect(),
                test_targets: package
                    .targets
                    .into_iter()
                    .filter(|target| target.kind.iter().any(|kind| kind == "test"))
                    .map(|target| target.name)
                    .collect(),
            });
        }
        tasks.sort_by_key(|task| task.number);
        for pair in tasks.windows(2) {
            if pair[0].number == pair[1].number {
                bail!(
                    "{} and {} both have task number {}; give each task its own number",
                    pair[0].name,
                    pair[1].name,
                    pair[0].number
                );
            }
        }
        Ok(Workspace {
            root: metadata.workspace_root,
            target_dir: metadata.target_directory,
            tasks,
        })
    }

    /// Finds the task that `key` names: a task number such as `2`, or a
    /// crate name such as `task02_unsubscribe`.
    ///
    /// # Errors
    ///
    /// Returns an error listing the valid numbers when no task matches.
    pub(crate) fn find(&self, key: &str) -> Result<&Task> {
        let found = match key.parse::<u32>() {
            Ok(number) => self.tasks.iter().find(|task| task.number == number),
            Err(_) => self.tasks.iter().find(|task| task.name == key),
        };
        found.ok_or_else(|| {
            let numbers: Vec<String> = self
                .tasks
                .iter()
                .map(|task| task.number.to_string())
                .collect();
            anyhow!(
                "no task is numbered or named `{key}`; the tasks are {}, and `cargo workbook \
                 list` shows their names",
                if numbers.is_empty() {
                    "none yet".to_owned()
                } else {
                    numbers.join(", ")
                }
            )
        })
    }

    /// Returns the tasks that `keys` name, sorted by number and without
    /// repeats, or every task when `keys` is empty.
    ///
    /// # Errors
    ///
    /// Returns an error for the first key that names no task, or when the
    /// workspace has no tasks at all.
    pub(crate) fn select(&self, keys: &[String]) -> Result<Vec<&Task>> {
        if self.tasks.is_empty() {
            bail!(
                "the workspace at {} has no task crates (packages with \
                 [package.metadata.workbook])",
                self.root.display()
            );
        }
        if keys.is_empty() {
            return Ok(self.tasks.iter().collect());
        }
        let mut selected = BTreeMap::new();
        for key in keys {
            let task = self.find(key)?;
            selected.insert(task.number, task);
        }
        Ok(selected.into_values().collect())
    }
}

// The fields of `cargo metadata --format-version 1` that discovery reads.
#[derive(Deserialize)]
struct Metadata {
    workspace_root: PathBuf,
    target_directory: PathBuf,
    packages: Vec<Package>,
}

/// One package of the metadata.
#[derive(Deserialize)]
struct Package {
    name: String,
    manifest_path: PathBuf,
    #[serde(default)]
    features: BTreeMap<String, Vec<String>>,
    metadata: Option<serde_json::Value>,
    #[serde(default)]
    targets: Vec<Target>,
}

/// One build target of a package.
#[derive(Deserialize)]
struct Target {
    name: String,
    kind: Vec<String>,
}

/// The `[package.metadata.workbook]` table of a task crate.
#[derive(Deserialize)]
struct TaskMetadata {
    number: u32,
    level: String,
    title: String,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Returns a task as discovery would build it, for other modules' tests.
    pub(crate) fn sample_task(number: u32, name: &str, title: &str) -> Task {
        Task {
            name: name.to_owned(),
            number,
            level: "B".to_owned(),
            title: title.to_owned(),
            dir: PathBuf::from("/ws").join(name),
            features: ["reference", "skeleton", "mutant-index-shift"]
                .into_iter()
                .map(str::to_owned)
                .collect(),
            test_targets: ["grade", "mine"].into_iter().map(str::to_owned).collect(),
        }
    }

    // Trimmed from real `cargo metadata --no-deps` output; the tasks are
    // listed out of order on purpose.
    const METADATA: &str = r#"{
      "workspace_root": "/ws",
      "target_directory": "/ws/target",
      "version": 1,
      "packages": [
        {"name": "testkit", "manifest_path": "/ws/testkit/Cargo.toml", "features": {},
         "metadata": null, "targets": [{"name": "testkit", "kind": ["lib"]}]},
        {"name": "task02_unsubscribe", "manifest_path": "/ws/task02_unsubscribe/Cargo.toml",
         "features": {"reference": [], "skeleton": [], "mutant-index-shift": [],
                      "mutant-reused-slot": []},
         "metadata": {"workbook": {"number": 2, "level": "B", "title": "Unsubscribe"}},
         "targets": [{"name": "task02_unsubscribe", "kind": ["lib"]},
                     {"name": "grade", "kind": ["test"]},
                     {"name": "mine", "kind": ["test"]},
                     {"name": "build-script-select_impl", "kind": ["custom-build"]}]},
        {"name": "task01_basic", "manifest_path": "/ws/task01_basic/Cargo.toml",
         "features": {"reference": []},
         "metadata": {"workbook": {"number": 1, "level": "B", "title": "A first broker"},
                      "other-tool": {}},
         "targets": [{"name": "grade", "kind": ["test"]}]}
      ]
    }"#;

    #[test]
    fn discovery_finds_tasks_sorted_by_number() {
        let workspace = Workspace::from_metadata(METADATA).expect("valid metadata");
        let names: Vec<&str> = workspace.tasks.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["task01_basic", "task02_unsubscribe"]);
        assert_eq!(workspace.root, PathBuf::from("/ws"));
        assert_eq!(workspace.target_dir, PathBuf::from("/ws/target"));
    }

    #[test]
    fn discovery_reads_folder_features_and_tests() {
        let workspace = Workspace::from_metadata(METADATA).expect("valid metadata");
        let task = &workspace.tasks[1];
        assert_eq!(task.dir, PathBuf::from("/ws/task02_unsubscribe"));
        assert_eq!(task.title, "Unsubscribe");
        assert_eq!(task.mutants(), ["index_shift", "reused_slot"]);
        let targets: Vec<&str> = task.test_targets.iter().map(String::as_str).collect();
        assert_eq!(targets, ["grade", "mine"]);
    }

    #[test]
    fn discovery_rejects_incomplete_metadata() {
        let broken = METADATA.replace(r#""level": "B", "title": "Unsubscribe""#, r#""level": "B""#);
        let err = Workspace::from_metadata(&broken).expect_err("title is missing");
        let text = format!("{err:#}");
        assert!(text.contains("task02_unsubscribe/Cargo.toml"), "{text}");
        assert!(text.contains("title"), "{text}");
    }

    #[test]
    fn discovery_rejects_duplicate_numbers() {
        let duplicate = METADATA.replace(r#""number": 2"#, r#""number": 1"#);
        let err = Workspace::from_metadata(&duplicate).expect_err("two tasks numbered 1");
        assert!(
            format!("{err:#}").contains("both have task number 1"),
            "{err:#}"
        );
    }

    #[test]
    fn find_accepts_number_or_crate_name() {
        let workspace = Workspace::from_metadata(METADATA).expect("valid metadata");
        assert_eq!(
            workspace.find("2").expect("task 2").name,
            "task02_unsubscribe"
        );
        assert_eq!(workspace.find("task01_basic").expect("by name").number, 1);
        let err = workspace.find("7").expect_err("no task 7");
        assert!(format!("{err}").contains("the tasks are 1, 2"), "{err}");
    }

    #[test]
    fn select_sorts_and_removes_repeats() {
        let workspace = Workspace::from_metadata(METADATA).expect("valid metadata");
        let keys: Vec<String> = ["2", "task01_basic", "1"].map(str::to_owned).to_vec();
        let selected = workspace.select(&keys).expect("known tasks");
        let numbers: Vec<u32> = selected.iter().map(|task| task.number).collect();
        assert_eq!(numbers, [1, 2]);
        assert_eq!(workspace.select(&[]).expect("all tasks").len(), 2);
    }
}

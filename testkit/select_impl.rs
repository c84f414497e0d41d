//! Build script shared by every task crate: chooses the implementation that
//! the crate compiles and exports.
//!
//! The choice comes from the crate's features, so selecting one never edits
//! a file and rebuilds only that task crate:
//!
//! - no feature: `src/exercise.rs`, the learner's file;
//! - `reference`: `src/reference.rs`;
//! - `skeleton`: `skeleton/exercise.rs`, the pristine copy of the learner's
//!   file, which selftest grades and `cargo workbook reset` restores;
//! - `mutant-NAME`: `src/mutants/NAME.rs` (dashes become underscores), a
//!   known-buggy version.
//!
//! A mutant wins over `reference`, which wins over `skeleton`. When several
//! mutant features are on, as under `--all-features`, the first by name wins.
//!
//! The script sets the cfg `workbook_impl` to `exercise`, `skeleton`,
//! `reference` or the mutant's file stem, and the environment variable `WORKBOOK_IMPL` to the same
//! value so that the grading suite can report what it graded.

use std::env;
use std::fs;
use std::path::Path;

fn main() {
    let manifest_dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let mutants_dir = Path::new(&manifest_dir).join("src").join("mutants");

    // Every file in src/mutants is a selectable mutant.
    let mut mutants: Vec<String> = match fs::read_dir(&mutants_dir) {
        Ok(entries) => entries
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| {
                let path = entry.path();
                let is_rust = path.extension().is_some_and(|ext| ext == "rs");
                let stem = path.file_stem()?.to_str()?.to_owned();
                is_rust.then_some(stem)
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    mutants.sort();

    let mut values: Vec<String> = ["exercise", "skeleton", "reference"]
        .iter()
        .map(|value| format!("\"{value}\""))
        .collect();
    values.extend(mutants.iter().map(|stem| format!("\"{stem}\"")));
    println!(
        "cargo::rustc-check-cfg=cfg(workbook_impl, values({}))",
        values.join(", ")
    );

    let enabled = |feature: &str| {
        let var = format!("CARGO_FEATURE_{}", feature.to_uppercase().replace('-', "_"));
        env::var_os(var).is_some()
    };
    let chosen = mutants
        .iter()
        .find(|stem| enabled(&format!("mutant_{stem}")))
        .cloned()
        .unwrap_or_else(|| {
            let chosen = if enabled("reference") {
                "reference"
            } else if enabled("skeleton") {
                "skeleton"
            } else {
                "exercise"
            };
            chosen.to_owned()
        });

    println!("cargo::rustc-cfg=workbook_impl=\"{chosen}\"");
    println!("cargo::rustc-env=WORKBOOK_IMPL={chosen}");
    // Features reach the script through the environment, which cargo tracks
    // itself; only a new or removed mutant file needs a rerun.
    println!("cargo::rerun-if-changed=src/mutants");
}

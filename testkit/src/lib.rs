//! Grading harness and test helpers shared by the workbook's task suites.
//!
//! Every task crate's `tests/grade.rs` is a [`grading::Suite`] of named
//! checks. The suite is its own test harness: `cargo test -p taskNN_*` runs
//! each check in a separate process with a time limit, trusts a pass only
//! when the check itself reported it, and ends with the task's rubric score.
//! The `workbook` CLI runs the same suites and adds totals, bands and files
//! for CI, so there is one grading engine.
//!
//! The other modules are helpers for writing checks: [`runtime`] runs async
//! code on paused tokio time, [`alloc`] counts heap allocations,
//! [`interleave`] runs an event while a receiver is stopped right after it
//! releases a `pausable_mutex::Mutex`, `logs`
//! (feature `logs`) records what a solution logs through `tracing`, and
//! `nats` (feature `nats`) starts a private `nats-server` on a loopback port.
//! Nothing here is meant for exercise code.

pub mod alloc;
pub mod cargo;
pub mod grading;
pub mod interleave;
mod learner;
#[cfg(feature = "logs")]
pub mod logs;
#[cfg(feature = "nats")]
pub mod nats;
pub mod process;
pub mod report;
pub mod runtime;
pub mod secret;
pub mod state;

/// Starts a [`grading::Suite`] for the crate whose grading suite calls it.
///
/// It records the package name, its folder and the implementation the crate
/// was built with (`exercise`, `reference` or a mutant's name), which the
/// shared build script passes in `WORKBOOK_IMPL`.
#[macro_export]
macro_rules! suite {
    () => {
        $crate::grading::Suite::new(
            env!("CARGO_PKG_NAME"),
            env!("CARGO_MANIFEST_DIR"),
            env!("WORKBOOK_IMPL"),
        )
    };
}

//! The grading harness: named checks, each run in its own process with a time
//! limit, and the rubric score they add up to.
//!
//! A task's `tests/grade.rs` declares `harness = false` in its manifest and
//! builds a [`Suite`] in `main`. The example compiles only inside a task
//! crate, whose build script defines `WORKBOOK_IMPL`:
//!
//! ```ignore
//! fn main() -> std::process::ExitCode {
//!     testkit::suite!()
//!         .check("publish_reaches_subscriber", "Broker::publish", publish_reaches_subscriber)
//!         .run()
//! }
//!
//! fn publish_reaches_subscriber() {
//!     // A check passes when it returns and fails when it panics.
//! }
//! ```
//!
//! [`Suite::run`] starts the test executable again once per check (the
//! *child*), and the first process (the *supervisor*) only watches. The
//! supervisor hands each child a fresh random token on standard input. The
//! child reads it before any learner code runs, runs its one check, and prints
//! the token with the verdict as its last act. A check passes only when that
//! line arrives and the child then exits cleanly. A process that exits early,
//! aborts or prints look-alike output has no token, so its check does not pass. A child
//! still running at its check's time limit is killed and the check fails as
//! timed out. GRADING.md states this threat model and its limits.

mod child;
mod score;
pub(crate) mod suite;

pub use score::{BANDS, Band, MAX_TOTAL, band_for, score_task};
pub use suite::{Check, DEFAULT_TIME_LIMIT, Suite};

//! Loom models of the replay/live handover of task 10's replay log.
//!
//! The models live in `tests/model.rs` and compile only under
//! `RUSTFLAGS="--cfg loom"`:
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" cargo test -p task10_loom --release -- --nocapture
//! ```
//!
//! They include `task10_replay_log/src/shared.rs`, the reference's lock-guarded
//! state, and check that a subscriber never receives a gap or a duplicate
//! while another thread appends. The same model must fail on the cores of two
//! mutants. The state uses no tokio, and this crate depends on loom alone,
//! because loom can only explore primitives built on loom. Tokio swaps in its
//! loom-based primitives only for its own tests (`cfg(all(test, loom))`), so
//! a model of code that waits on tokio's `Notify` would not see tokio's
//! interleavings. The library itself is empty.

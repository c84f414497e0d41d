//! Runs async checks on tokio runtimes with limits in virtual time.
//!
//! A check built on [`paused`] never sleeps on the wall clock: tokio's paused
//! clock jumps ahead whenever every task waits, so a timer of an hour fires at
//! once, and a deadlock surfaces as the virtual time limit running out.

use std::future::Future;
use std::time::Duration;

/// Virtual time a paused check may take before it counts as deadlocked.
pub const VIRTUAL_LIMIT: Duration = Duration::from_secs(3600);

/// Runs `future` on a current-thread runtime whose clock starts paused.
///
/// # Panics
///
/// Panics with a message naming `subject` when the future has not finished
/// after [`VIRTUAL_LIMIT`] of virtual time: every task was waiting for
/// something that never happens, which is a deadlock or a lost wake-up.
pub fn paused<F: Future>(subject: &str, future: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime always builds");
    // The timeout's timer must be created inside the runtime it runs on.
    let result = runtime.block_on(async { tokio::time::timeout(VIRTUAL_LIMIT, future).await });
    match result {
        Ok(output) => output,
        Err(_) => panic!(
            "{subject} did not finish within {} s of virtual time — likely deadlock: \
             every task was waiting for something that never happened",
            VIRTUAL_LIMIT.as_secs()
        ),
    }
}

/// Runs `future` on a multi-thread runtime with `workers` worker threads and
/// real time, for checks that need true parallelism.
///
/// The check's own time limit, enforced by the supervisor, bounds it.
pub fn multi_thread<F: Future>(workers: usize, future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("a multi-thread runtime builds with at least one worker")
        .block_on(future)
}

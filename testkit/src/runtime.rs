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

/// Awaits `future` for at most `limit` and returns its output, or `None`
/// when the limit ran out first.
///
/// Unlike `tokio::time::timeout`, it does not poll `future` once more at the
/// deadline. A future that re-checks its state on every poll would find
/// there what arrived while it slept, and so hide a wake-up it never got.
/// Here only a future that was woken before the deadline can finish.
pub async fn within<F: Future>(limit: Duration, future: F) -> Option<F::Output> {
    let deadline = tokio::time::sleep(limit);
    tokio::select! {
        biased;
        () = deadline => None,
        output = future => Some(output),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::task::{Context, Poll};

    /// A future that is ready once its flag is set, but never registers a
    /// waker: only a poll for another reason can find the flag.
    struct NeverWoken(Arc<AtomicBool>);

    impl Future for NeverWoken {
        type Output = ();

        fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
            if self.0.load(Ordering::SeqCst) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }
    }

    #[test]
    fn within_hides_no_missed_wake_up() {
        paused("within", async {
            let flag = Arc::new(AtomicBool::new(false));
            let setter = Arc::clone(&flag);
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                setter.store(true, Ordering::SeqCst);
            });
            let limit = Duration::from_secs(1);
            assert_eq!(within(limit, NeverWoken(Arc::clone(&flag))).await, None);
            // tokio's timeout polls once more at the deadline and so
            // reports the flag as if the future had been woken.
            flag.store(false, Ordering::SeqCst);
            let setter = Arc::clone(&flag);
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                setter.store(true, Ordering::SeqCst);
            });
            let hidden = tokio::time::timeout(limit, NeverWoken(flag)).await;
            assert!(hidden.is_ok());
        });
    }

    #[test]
    fn within_returns_woken_output() {
        paused("within", async {
            let slow = async {
                tokio::time::sleep(Duration::from_millis(10)).await;
                7
            };
            assert_eq!(within(Duration::from_secs(1), slow).await, Some(7));
        });
    }
}

//! Controlled interleavings around the release of a `pausable_mutex::Mutex`.
//!
//! A receiver that checks for a message under a lock and registers for the
//! wake-up only after releasing it loses a wake-up when the message arrives
//! in between. No await lies in that gap, so paused time never reaches it.
//! [`pause_after_release`] reaches it on purpose. It runs a future on a
//! thread of its own and stops that thread right after its `n`th release of
//! the lock. Then it runs an event (a publish, an append, a close) on the
//! calling thread and lets the future go on. A check runs one round for each `n`
//! until the future waits before its `n`th release, so every gap between a
//! release and the wait is tried once, in an order the scheduler cannot
//! change.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

/// The record of one round of [`pause_after_release`].
#[derive(Debug)]
pub struct Round<T> {
    /// The end of the future: a value, or stuck.
    pub outcome: Outcome<T>,
    /// The release after which the thread was stopped for the event, or
    /// `None` when the future waited before that release and the event ran
    /// while it waited.
    pub paused_at: Option<usize>,
    /// Releases that the thread made before the event ran, or before the
    /// round ended when the event did not run. A future that waits with 0
    /// releases waits on something that is not behind a
    /// `pausable_mutex::Mutex`.
    pub releases: usize,
    /// Whether the event ran. It does not when the future returns before
    /// its `window`th release without ever waiting.
    pub event_ran: bool,
}

/// The end of the future of a round.
#[derive(Debug)]
pub enum Outcome<T> {
    /// The future returned this value.
    Returned(T),
    /// The future had not returned `patience` after its last step. The
    /// thread is left blocked, so the caller should end the future another
    /// way, such as by cancelling its token.
    Stuck,
}

/// A step that the future's thread reports to the calling thread.
enum Step<T> {
    /// The thread made the release with this number and waits to resume.
    Paused(usize),
    /// The future returned `Pending` after this many releases.
    Waiting(usize),
    /// The future returned.
    Returned(T),
}

/// Runs `future()` on a new thread with a current-thread runtime, stops
/// that thread right after its `window`th release of the last
/// `pausable_mutex::Mutex` guard it holds, runs `event` on the calling
/// thread, and lets the thread go on.
///
/// When the future waits (returns `Pending`) before its `window`th release,
/// `event` runs while it waits instead, even with no release at all. `patience` bounds the real time that
/// the calling thread waits for each step of the other thread. A correct
/// receiver needs microseconds, so only a receiver that is never woken uses
/// it up.
///
/// # Panics
///
/// Resumes the panic of the future's thread when it panicked.
pub fn pause_after_release<T, F, Fut>(
    window: usize,
    patience: Duration,
    future: F,
    event: impl FnOnce(),
) -> Round<T>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
{
    let (steps, step_rx) = mpsc::channel::<Step<T>>();
    let (resume, resume_rx) = mpsc::channel::<()>();

    let thread = std::thread::spawn(move || {
        let releases = Arc::new(AtomicUsize::new(0));
        let hook_steps = steps.clone();
        let hook_releases = Arc::clone(&releases);
        pausable_mutex::set_release_hook(Some(Box::new(move |count| {
            hook_releases.store(count, Ordering::SeqCst);
            if count == window {
                // The calling thread may have given up already, which it
                // reports itself.
                let _ = hook_steps.send(Step::Paused(count));
                let _ = resume_rx.recv();
            }
        })));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime without drivers builds");
        let value = runtime.block_on(async {
            let mut running = std::pin::pin!(future());
            std::future::poll_fn(|cx| {
                let poll = running.as_mut().poll(cx);
                if poll.is_pending() {
                    let _ = steps.send(Step::Waiting(releases.load(Ordering::SeqCst)));
                }
                poll
            })
            .await
        });
        pausable_mutex::set_release_hook(None);
        let _ = steps.send(Step::Returned(value));
    });

    let mut event = Some(event);
    let mut paused_at = None;
    let mut releases_before_event = 0;
    loop {
        match step_rx.recv_timeout(patience) {
            Ok(Step::Paused(count)) => {
                // A pause after the event, in a future that the event woke,
                // only resumes.
                if let Some(event) = event.take() {
                    releases_before_event = count;
                    paused_at = Some(count);
                    event();
                }
                let _ = resume.send(());
            }
            Ok(Step::Waiting(releases)) => {
                if let Some(event) = event.take() {
                    releases_before_event = releases;
                    event();
                }
            }
            Ok(Step::Returned(value)) => {
                if let Err(panic) = thread.join() {
                    std::panic::resume_unwind(panic);
                }
                return Round {
                    outcome: Outcome::Returned(value),
                    paused_at,
                    releases: releases_before_event,
                    event_ran: event.is_none(),
                };
            }
            Err(RecvTimeoutError::Disconnected) => {
                // The thread ended without reporting, so it panicked.
                match thread.join() {
                    Err(panic) => std::panic::resume_unwind(panic),
                    Ok(()) => unreachable!("the thread reports before it ends"),
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                return Round {
                    outcome: Outcome::Stuck,
                    paused_at,
                    releases: releases_before_event,
                    event_ran: event.is_none(),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pausable_mutex::Mutex;
    use tokio::sync::Notify;

    const PATIENCE: Duration = Duration::from_secs(5);

    /// A flag behind the pausable mutex, with a `Notify` for its waiters.
    #[derive(Default)]
    struct Flag {
        set: Mutex<bool>,
        changed: Notify,
    }

    impl Flag {
        fn raise(&self) {
            *self.set.lock().unwrap() = true;
            self.changed.notify_waiters();
        }

        /// Waits with the Notified future enabled before the check.
        async fn wait_enabled_first(&self) {
            loop {
                let notified = self.changed.notified();
                let mut notified = std::pin::pin!(notified);
                notified.as_mut().enable();
                if *self.set.lock().unwrap() {
                    return;
                }
                notified.await;
            }
        }

        /// Waits with the Notified future created after the check.
        async fn wait_created_after(&self) {
            loop {
                if *self.set.lock().unwrap() {
                    return;
                }
                self.changed.notified().await;
            }
        }
    }

    #[test]
    fn enabled_waiter_returns_in_window() {
        let flag = Arc::new(Flag::default());
        let waiter = Arc::clone(&flag);
        let round = pause_after_release(
            1,
            PATIENCE,
            move || async move { waiter.wait_enabled_first().await },
            || flag.raise(),
        );
        assert!(matches!(round.outcome, Outcome::Returned(())));
        assert_eq!(round.paused_at, Some(1));
        assert_eq!(round.releases, 1);
    }

    #[test]
    fn late_waiter_is_stuck_in_window() {
        let flag = Arc::new(Flag::default());
        let waiter = Arc::clone(&flag);
        let round = pause_after_release(
            1,
            Duration::from_millis(200),
            move || async move { waiter.wait_created_after().await },
            || flag.raise(),
        );
        assert!(matches!(round.outcome, Outcome::Stuck));
        assert!(round.event_ran);
        assert_eq!(round.paused_at, Some(1));
        // The stuck thread stays blocked, so a later raise ends it.
        flag.raise();
    }

    #[test]
    fn event_runs_while_waiting_past_last_release() {
        let flag = Arc::new(Flag::default());
        let waiter = Arc::clone(&flag);
        let round = pause_after_release(
            2,
            PATIENCE,
            move || async move { waiter.wait_enabled_first().await },
            || flag.raise(),
        );
        assert!(matches!(round.outcome, Outcome::Returned(())));
        assert_eq!(round.paused_at, None);
        assert_eq!(round.releases, 1);
    }

    #[test]
    fn waiter_without_lock_counts_no_release() {
        let notify = Arc::new(Notify::new());
        let waiter = Arc::clone(&notify);
        let round = pause_after_release(
            1,
            PATIENCE,
            move || async move { waiter.notified().await },
            || notify.notify_waiters(),
        );
        assert!(matches!(round.outcome, Outcome::Returned(())));
        assert_eq!(round.paused_at, None);
        assert_eq!(round.releases, 0);
    }
}

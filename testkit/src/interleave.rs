//! Controlled interleavings around the lock boundaries of a
//! `pausable_mutex::Mutex`.
//!
//! A receiver that checks for a message under a lock and registers for the
//! wake-up only after releasing it loses a wake-up when the message arrives
//! in between, and so does one that looks at an atomic before it locks. No
//! await lies in those gaps, so paused time never reaches them.
//! [`pause_at_boundary`] reaches them on purpose. It runs a future on a
//! thread of its own and stops that thread at its `n`th lock boundary: right
//! before it takes the lock while holding none, or right after it releases
//! the last guard. Then it runs an event (a publish, an append, a close) on
//! the calling thread and lets the future go on. A check runs one round for
//! each `n` until the future waits before its `n`th boundary, so every gap is
//! tried once, in an order the scheduler cannot change.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::task::{Context, Poll, Wake};
use std::time::Duration;

pub use pausable_mutex::{Boundary, BoundaryKind};

/// Maximum number of lock boundaries at which [`each_boundary`] runs a
/// round. A receiver waits after a few; only one that spins passes more.
pub const MAX_BOUNDARIES: usize = 1024;

/// Runs `round(1)`, `round(2)`, ... up to [`MAX_BOUNDARIES`], until a round
/// returns `false`: its thread finished or waited before that boundary, so
/// no later boundary exists.
pub fn each_boundary(mut round: impl FnMut(usize) -> bool) {
    for window in 1..=MAX_BOUNDARIES {
        if !round(window) {
            break;
        }
    }
}

/// A waker that records that it was woken, for futures polled by hand.
#[derive(Debug, Default)]
pub struct WakeFlag(AtomicBool);

impl Wake for WakeFlag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl WakeFlag {
    /// Returns whether the waker was woken since the last call.
    pub fn take(&self) -> bool {
        self.0.swap(false, Ordering::SeqCst)
    }
}

/// Polls `future` with `cx` until it returns `Pending` without waking
/// itself, as `yield_now` does, so that it really waits; `flag` must be the
/// waker of `cx`. Returns the output when the future finishes instead.
pub fn poll_until_waiting<F: Future + ?Sized>(
    mut future: Pin<&mut F>,
    cx: &mut Context<'_>,
    flag: &WakeFlag,
) -> Option<F::Output> {
    for _ in 0..MAX_BOUNDARIES {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Some(output);
        }
        if !flag.take() {
            break;
        }
    }
    None
}

/// The record of one round of [`pause_at_boundary`].
#[derive(Debug)]
pub struct Round<T> {
    /// The end of the future: a value, or stuck.
    pub outcome: Outcome<T>,
    /// The boundary at which the thread was stopped for the event, or `None`
    /// when the future waited before that boundary and the event ran while
    /// it waited.
    pub paused_at: Option<Boundary>,
    /// Boundaries that the thread passed before the event ran, or before
    /// the round ended when the event did not run. A future that waits with
    /// 0 boundaries waits on something that is not behind a
    /// `pausable_mutex::Mutex`.
    pub boundaries: usize,
    /// Whether the event ran. It does not when the future returns before
    /// its `window`th boundary without ever waiting.
    pub event_ran: bool,
    /// Boundaries that the calling thread passed while the event ran. An
    /// event that passes none changes no state behind a
    /// `pausable_mutex::Mutex`.
    pub event_boundaries: usize,
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
    /// The thread reached this boundary and waits to resume.
    Paused(Boundary),
    /// The future returned `Pending` after this many boundaries.
    Waiting(usize),
    /// The future returned.
    Returned(T),
}

/// Runs `future()` on a new thread with a current-thread runtime, stops
/// that thread at its `window`th lock boundary (see the module
/// documentation), runs `event` on the calling thread, and lets the thread
/// go on.
///
/// When the future waits (returns `Pending`) before its `window`th boundary,
/// `event` runs while it waits instead, even with no boundary at all.
/// `patience` bounds the real time that the calling thread waits for each
/// step of the other thread. A correct receiver needs microseconds, so only
/// a receiver that is never woken uses it up.
///
/// # Panics
///
/// Resumes the panic of the future's thread when it panicked.
pub fn pause_at_boundary<T, F, Fut>(
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
        let passed = Arc::new(AtomicUsize::new(0));
        let hook_steps = steps.clone();
        let hook_passed = Arc::clone(&passed);
        pausable_mutex::set_boundary_hook(Some(Box::new(move |point| {
            hook_passed.store(point.number, Ordering::SeqCst);
            if point.number == window {
                // The calling thread may have given up already, which it
                // reports itself.
                let _ = hook_steps.send(Step::Paused(point));
                let _ = resume_rx.recv();
            }
        })));
        // The future waits when the runtime has nothing left to run and
        // parks its thread. A `Pending` alone does not say so: `yield_now`
        // returns it and is polled again at once.
        let park_steps = steps.clone();
        let park_passed = Arc::clone(&passed);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .on_thread_park(move || {
                let _ = park_steps.send(Step::Waiting(park_passed.load(Ordering::SeqCst)));
            })
            .build()
            .expect("a current-thread runtime builds");
        let value = runtime.block_on(future());
        pausable_mutex::set_boundary_hook(None);
        let _ = steps.send(Step::Returned(value));
    });

    let mut event = Some(event);
    let mut round = Round {
        outcome: Outcome::Stuck,
        paused_at: None,
        boundaries: 0,
        event_ran: false,
        event_boundaries: 0,
    };
    let mut run_event = |round: &mut Round<T>, boundaries: usize| {
        if let Some(event) = event.take() {
            round.boundaries = boundaries;
            round.event_ran = true;
            round.event_boundaries = count_boundaries(event);
        }
    };
    loop {
        match step_rx.recv_timeout(patience) {
            Ok(Step::Paused(point)) => {
                // A pause after the event, in a future that the event woke,
                // only resumes.
                if !round.event_ran {
                    round.paused_at = Some(point);
                    run_event(&mut round, point.number);
                }
                let _ = resume.send(());
            }
            Ok(Step::Waiting(boundaries)) => run_event(&mut round, boundaries),
            Ok(Step::Returned(value)) => {
                if let Err(panic) = thread.join() {
                    std::panic::resume_unwind(panic);
                }
                round.outcome = Outcome::Returned(value);
                return round;
            }
            Err(RecvTimeoutError::Disconnected) => {
                // The thread ended without reporting, so it panicked.
                match thread.join() {
                    Err(panic) => std::panic::resume_unwind(panic),
                    Ok(()) => unreachable!("the thread reports before it ends"),
                }
            }
            Err(RecvTimeoutError::Timeout) => return round,
        }
    }
}

/// The record of one round of [`pause_writer_at_boundary`].
#[derive(Debug)]
pub struct WriterRound {
    /// The boundary at which the writer was stopped, or `None` when it
    /// finished before reaching it.
    pub paused_at: Option<Boundary>,
    /// Whether the writer finished within the patience.
    pub finished: bool,
}

/// Runs `writer` on a new thread, stops that thread at its `window`th lock
/// boundary, runs `while_paused` on the calling thread, and lets the writer
/// finish.
///
/// This is the mirror of [`pause_at_boundary`]: the writer (a publish, an
/// append, a close) is stopped between its steps. A receiver polled in
/// `while_paused` then finds the state that a writer which wakes before it
/// stores leaves behind. When the writer finishes before its `window`th
/// boundary, `while_paused` does not run.
///
/// # Panics
///
/// Resumes the panic of the writer's thread when it panicked.
pub fn pause_writer_at_boundary(
    window: usize,
    patience: Duration,
    writer: impl FnOnce() + Send + 'static,
    while_paused: impl FnOnce(),
) -> WriterRound {
    let (steps, step_rx) = mpsc::channel::<Option<Boundary>>();
    let (resume, resume_rx) = mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        let hook_steps = steps.clone();
        pausable_mutex::set_boundary_hook(Some(Box::new(move |point| {
            if point.number == window {
                let _ = hook_steps.send(Some(point));
                let _ = resume_rx.recv();
            }
        })));
        writer();
        pausable_mutex::set_boundary_hook(None);
        let _ = steps.send(None);
    });

    let mut round = WriterRound {
        paused_at: None,
        finished: false,
    };
    let mut while_paused = Some(while_paused);
    loop {
        match step_rx.recv_timeout(patience) {
            Ok(Some(point)) => {
                round.paused_at = Some(point);
                if let Some(while_paused) = while_paused.take() {
                    while_paused();
                }
                let _ = resume.send(());
            }
            Ok(None) => {
                if let Err(panic) = thread.join() {
                    std::panic::resume_unwind(panic);
                }
                round.finished = true;
                return round;
            }
            Err(RecvTimeoutError::Disconnected) => match thread.join() {
                Err(panic) => std::panic::resume_unwind(panic),
                Ok(()) => unreachable!("the writer's thread reports before it ends"),
            },
            Err(RecvTimeoutError::Timeout) => return round,
        }
    }
}

/// Runs `event` on the calling thread and returns the lock boundaries it
/// passed.
fn count_boundaries(event: impl FnOnce()) -> usize {
    let passed = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&passed);
    pausable_mutex::set_boundary_hook(Some(Box::new(move |point| {
        counter.store(point.number, Ordering::SeqCst);
    })));
    event();
    pausable_mutex::set_boundary_hook(None);
    passed.load(Ordering::SeqCst)
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
        let round = pause_at_boundary(
            2,
            PATIENCE,
            move || async move { waiter.wait_enabled_first().await },
            || flag.raise(),
        );
        assert!(matches!(round.outcome, Outcome::Returned(())));
        assert_eq!(
            round.paused_at.map(|point| point.kind),
            Some(BoundaryKind::Release)
        );
        assert_eq!(round.boundaries, 2);
        assert_eq!(round.event_boundaries, 2);
    }

    #[test]
    fn late_waiter_is_stuck_in_window() {
        let flag = Arc::new(Flag::default());
        let waiter = Arc::clone(&flag);
        let round = pause_at_boundary(
            2,
            Duration::from_millis(200),
            move || async move { waiter.wait_created_after().await },
            || flag.raise(),
        );
        assert!(matches!(round.outcome, Outcome::Stuck));
        assert!(round.event_ran);
        assert_eq!(round.paused_at.map(|point| point.number), Some(2));
        // The stuck thread stays blocked, so a later raise ends it.
        flag.raise();
    }

    #[test]
    fn event_runs_while_waiting_past_last_release() {
        let flag = Arc::new(Flag::default());
        let waiter = Arc::clone(&flag);
        let round = pause_at_boundary(
            3,
            PATIENCE,
            move || async move { waiter.wait_enabled_first().await },
            || flag.raise(),
        );
        assert!(matches!(round.outcome, Outcome::Returned(())));
        assert_eq!(round.paused_at, None);
        assert_eq!(round.boundaries, 2);
    }

    #[test]
    fn waiter_without_lock_counts_no_release() {
        let notify = Arc::new(Notify::new());
        let waiter = Arc::clone(&notify);
        let round = pause_at_boundary(
            1,
            PATIENCE,
            move || async move { waiter.notified().await },
            || notify.notify_waiters(),
        );
        assert!(matches!(round.outcome, Outcome::Returned(())));
        assert_eq!(round.paused_at, None);
        assert_eq!(round.boundaries, 0);
        assert_eq!(round.event_boundaries, 0);
    }

    #[test]
    fn writer_pauses_between_its_steps() {
        let flag = Arc::new(Flag::default());
        let writer = Arc::clone(&flag);
        let mut seen_while_paused = None;
        let round = pause_writer_at_boundary(
            2,
            PATIENCE,
            move || writer.raise(),
            || seen_while_paused = Some(*flag.set.lock().unwrap()),
        );
        assert!(round.finished);
        assert_eq!(
            round.paused_at.map(|point| point.kind),
            Some(BoundaryKind::Release)
        );
        // The flag is stored by the time the writer releases the lock.
        assert_eq!(seen_while_paused, Some(true));

        let round = pause_writer_at_boundary(3, PATIENCE, || {}, || {});
        assert!(round.finished);
        assert_eq!(round.paused_at, None);
    }

    #[test]
    fn self_woken_pending_is_not_waiting() {
        let flag = Arc::new(Flag::default());
        let waiter = Arc::clone(&flag);
        let round = pause_at_boundary(
            2,
            PATIENCE,
            move || async move {
                tokio::task::yield_now().await;
                waiter.wait_enabled_first().await;
            },
            || flag.raise(),
        );
        assert!(matches!(round.outcome, Outcome::Returned(())));
        assert_eq!(round.paused_at.map(|point| point.number), Some(2));
    }
}

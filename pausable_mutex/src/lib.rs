//! A mutex with the API of [`std::sync::Mutex`] at whose lock and unlock
//! the grading suites can pause a thread.
//!
//! Tasks whose subscribers wait for new messages keep their shared state
//! behind this [`Mutex`], and re-export the crate as `sync`, so exercise code
//! writes `crate::sync::Mutex`. It behaves like the std mutex. The difference
//! is a per-thread hook (see [`set_boundary_hook`]) that runs at each
//! [`Boundary`]: right before a thread that holds no guard takes one, and
//! right after it releases its last one. A grading suite uses it to stop a
//! subscriber between two steps of `recv()` and publish, append or close at
//! exactly that point. That interleaving loses the wake-up of a receiver
//! that checks for a message under the lock but registers for the next one
//! after releasing it, or that looks at an atomic before it locks. No await
//! lies between those steps, so paused time cannot reach the gap, and real
//! threads hit it only rarely. Without a hook, a lock or unlock costs a few
//! thread-local lookups.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{LockResult, PoisonError, TryLockError, TryLockResult};

/// A point where a thread holds no guard of this module: right before it
/// takes its first guard, or right after it releases its last one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Boundary {
    /// Whether the thread is about to lock or has just unlocked.
    pub kind: BoundaryKind,
    /// Position among the boundaries of both kinds since the hook was set,
    /// from 1, leaving out those inside the hook.
    pub number: usize,
    /// Position among the boundaries of this kind since the hook was set,
    /// from 1.
    pub nth_of_kind: usize,
}

/// The two kinds of [`Boundary`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoundaryKind {
    /// Right before the thread takes a guard while it holds none.
    Acquire,
    /// Right after the thread releases the last guard it held.
    Release,
}

impl fmt::Display for Boundary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nth = self.nth_of_kind;
        let suffix = match (nth % 10, nth % 100) {
            (_, 11..=13) => "th",
            (1, _) => "st",
            (2, _) => "nd",
            (3, _) => "rd",
            _ => "th",
        };
        match self.kind {
            BoundaryKind::Acquire => {
                write!(f, "right before it took the lock ({nth}{suffix} time)")
            }
            BoundaryKind::Release => {
                write!(f, "right after it released the lock ({nth}{suffix} time)")
            }
        }
    }
}

type Hook = Box<dyn FnMut(Boundary)>;

/// Counts of the boundaries a thread passed since its hook was set.
#[derive(Clone, Copy)]
struct Counts {
    all: usize,
    acquires: usize,
    releases: usize,
}

thread_local! {
    /// Number of [`Mutex`] guards that this thread has now.
    static HELD: Cell<usize> = const { Cell::new(0) };
    /// Hooked boundaries of this thread since the hook was set.
    static COUNTS: Cell<Counts> = const {
        Cell::new(Counts { all: 0, acquires: 0, releases: 0 })
    };
    /// The hook that runs at this thread's boundaries.
    static HOOK: RefCell<Option<Hook>> = const { RefCell::new(None) };
}

/// Sets the hook that runs on the calling thread at each [`Boundary`]: right
/// before it takes a [`Mutex`] guard while it holds none, and right after it
/// releases the last guard it holds. `None` removes it. The counts start
/// again from 0.
///
/// The hook runs with no guard of this module held by the thread, so it may
/// block until another thread has taken and released the same mutex. Only
/// the grading suites set one.
#[doc(hidden)]
pub fn set_boundary_hook(hook: Option<Box<dyn FnMut(Boundary)>>) {
    COUNTS.with(|counts| {
        counts.set(Counts {
            all: 0,
            acquires: 0,
            releases: 0,
        });
    });
    HOOK.with(|slot| *slot.borrow_mut() = hook);
}

/// Runs the hook of the calling thread, if it has one, at a boundary.
fn boundary(kind: BoundaryKind) {
    // The hook is taken out while it runs, so that a lock it takes itself is
    // neither counted nor hooked.
    let Some(mut hook) = HOOK.with(|slot| slot.borrow_mut().take()) else {
        return;
    };
    let point = COUNTS.with(|counts| {
        let mut now = counts.get();
        now.all += 1;
        let nth_of_kind = match kind {
            BoundaryKind::Acquire => {
                now.acquires += 1;
                now.acquires
            }
            BoundaryKind::Release => {
                now.releases += 1;
                now.releases
            }
        };
        counts.set(now);
        Boundary {
            kind,
            number: now.all,
            nth_of_kind,
        }
    });
    hook(point);
    HOOK.with(|slot| {
        let mut slot = slot.borrow_mut();
        if slot.is_none() {
            *slot = Some(hook);
        }
    });
}

/// Runs the acquire hook when the calling thread holds no guard.
fn before_acquire() {
    if HELD.with(Cell::get) == 0 {
        boundary(BoundaryKind::Acquire);
    }
}

/// A mutual exclusion lock with the API of [`std::sync::Mutex`] at whose
/// lock and unlock the grader can pause a thread (see the module
/// documentation).
#[derive(Default)]
pub struct Mutex<T: ?Sized> {
    inner: std::sync::Mutex<T>,
}

/// The guard of a locked [`Mutex`]; dropping it unlocks the mutex.
#[must_use = "the mutex unlocks as soon as the guard is dropped"]
pub struct MutexGuard<'a, T: ?Sized> {
    // Always `Some` until `drop` takes it to unlock before the hook runs.
    inner: Option<std::sync::MutexGuard<'a, T>>,
}

impl<T> Mutex<T> {
    /// Creates an unlocked mutex holding `value`.
    pub const fn new(value: T) -> Mutex<T> {
        Mutex {
            inner: std::sync::Mutex::new(value),
        }
    }

    /// Returns the value, consuming the mutex.
    ///
    /// # Errors
    ///
    /// Returns the value inside a [`PoisonError`] when a thread panicked
    /// while holding the lock.
    pub fn into_inner(self) -> LockResult<T> {
        self.inner.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Blocks until the lock is free, then takes it.
    ///
    /// # Errors
    ///
    /// Returns the guard inside a [`PoisonError`] when a thread panicked
    /// while holding the lock; `PoisonError::into_inner` recovers it.
    pub fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
        before_acquire();
        match self.inner.lock() {
            Ok(guard) => Ok(MutexGuard::hold(guard)),
            Err(poisoned) => Err(PoisonError::new(MutexGuard::hold(poisoned.into_inner()))),
        }
    }

    /// Takes the lock if it is free, without blocking.
    ///
    /// # Errors
    ///
    /// [`TryLockError::WouldBlock`] when another guard holds the lock, and
    /// [`TryLockError::Poisoned`] as for [`Mutex::lock`].
    pub fn try_lock(&self) -> TryLockResult<MutexGuard<'_, T>> {
        before_acquire();
        match self.inner.try_lock() {
            Ok(guard) => Ok(MutexGuard::hold(guard)),
            Err(TryLockError::WouldBlock) => Err(TryLockError::WouldBlock),
            Err(TryLockError::Poisoned(poisoned)) => Err(TryLockError::Poisoned(PoisonError::new(
                MutexGuard::hold(poisoned.into_inner()),
            ))),
        }
    }

    /// Returns a mutable reference to the value; `&mut self` proves no guard
    /// exists.
    ///
    /// # Errors
    ///
    /// As for [`Mutex::into_inner`].
    pub fn get_mut(&mut self) -> LockResult<&mut T> {
        self.inner.get_mut()
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    fn hold(guard: std::sync::MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        HELD.with(|held| held.set(held.get() + 1));
        MutexGuard { inner: Some(guard) }
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.inner
            .as_deref()
            .expect("a guard keeps its lock until dropped")
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.inner
            .as_deref_mut()
            .expect("a guard keeps its lock until dropped")
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        drop(self.inner.take());
        let last = HELD.with(|held| {
            let now = held.get().saturating_sub(1);
            held.set(now);
            now == 0
        });
        if last {
            boundary(BoundaryKind::Release);
        }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn hook_runs_at_outer_boundaries_only() {
        static FIRST: Mutex<u32> = Mutex::new(1);
        let second = Mutex::new(2);
        let calls = Rc::new(RefCell::new(Vec::new()));
        let record = Rc::clone(&calls);
        set_boundary_hook(Some(Box::new(move |point| {
            // The mutex is free at every boundary.
            let free = FIRST.try_lock().is_ok();
            record
                .borrow_mut()
                .push((point.kind, point.number, point.nth_of_kind, free));
        })));

        let outer = FIRST.lock().unwrap();
        let inner = second.lock().unwrap();
        drop(inner);
        drop(outer);
        *second.lock().unwrap() += 1;
        set_boundary_hook(None);
        drop(FIRST.lock().unwrap());

        // The nested lock and unlock are no boundaries, and the try_lock
        // inside the hook is neither counted nor hooked.
        use BoundaryKind::{Acquire, Release};
        assert_eq!(
            *calls.borrow(),
            vec![
                (Acquire, 1, 1, true),
                (Release, 2, 1, true),
                (Acquire, 3, 2, true),
                (Release, 4, 2, true),
            ]
        );
    }

    #[test]
    fn boundary_names_kind_and_ordinal() {
        let point = |kind, nth_of_kind| Boundary {
            kind,
            number: 9,
            nth_of_kind,
        };
        assert_eq!(
            point(BoundaryKind::Acquire, 2).to_string(),
            "right before it took the lock (2nd time)"
        );
        assert_eq!(
            point(BoundaryKind::Release, 11).to_string(),
            "right after it released the lock (11th time)"
        );
        assert_eq!(
            point(BoundaryKind::Release, 21).to_string(),
            "right after it released the lock (21st time)"
        );
    }
}

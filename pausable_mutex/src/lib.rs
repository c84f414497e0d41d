//! A mutex with the API of [`std::sync::Mutex`] after whose release the
//! grading suites can pause a thread.
//!
//! Tasks whose subscribers wait for new messages keep their shared state
//! behind this [`Mutex`], and re-export the crate as `sync`, so exercise code
//! writes `crate::sync::Mutex`. It behaves like the std mutex. The difference
//! is what happens when a thread releases its last guard: if that thread has
//! a release hook (see [`set_release_hook`]), the hook runs right after the
//! unlock. A grading suite uses it to stop a subscriber between two critical
//! sections of `recv()` and publish or append at exactly that point. That
//! interleaving loses the wake-up of a receiver that checks for a message
//! under the lock but registers for the next one after releasing it. No
//! await lies between those two steps, so paused time cannot reach the gap,
//! and real threads hit it only rarely. Without a hook, a release costs two
//! thread-local lookups.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{LockResult, PoisonError, TryLockError, TryLockResult};

/// The argument of a release hook: the number of times this thread has
/// released its last guard since the hook was set, counting this release
/// and leaving out releases inside the hook.
pub type ReleaseCount = usize;

type Hook = Box<dyn FnMut(ReleaseCount)>;

thread_local! {
    /// Number of [`Mutex`] guards that this thread has now.
    static HELD: Cell<usize> = const { Cell::new(0) };
    /// Hooked releases of this thread's last guard since the hook was set.
    static RELEASES: Cell<usize> = const { Cell::new(0) };
    /// The hook that runs after this thread releases its last guard.
    static HOOK: RefCell<Option<Hook>> = const { RefCell::new(None) };
}

/// Sets the hook that runs on the calling thread each time it releases the
/// last [`Mutex`] guard it holds, or removes it with `None`. The count starts
/// again from 0.
///
/// The hook runs after the unlock, with no guard of this module held by the
/// thread, so it may block until another thread has taken and released the
/// same mutex. Only the grading suite sets one.
#[doc(hidden)]
pub fn set_release_hook(hook: Option<Box<dyn FnMut(ReleaseCount)>>) {
    RELEASES.with(|releases| releases.set(0));
    HOOK.with(|slot| *slot.borrow_mut() = hook);
}

/// Runs the hook of the calling thread, if it has one, after a release.
fn released() {
    // The hook is taken out while it runs, so that a lock it takes itself is
    // neither counted nor hooked.
    let Some(mut hook) = HOOK.with(|slot| slot.borrow_mut().take()) else {
        return;
    };
    let count = RELEASES.with(|releases| {
        let count = releases.get() + 1;
        releases.set(count);
        count
    });
    hook(count);
    HOOK.with(|slot| {
        let mut slot = slot.borrow_mut();
        if slot.is_none() {
            *slot = Some(hook);
        }
    });
}

/// A mutual exclusion lock with the API of [`std::sync::Mutex`] that the
/// grader can pause a thread right after (see the module documentation).
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
            released();
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
    fn hook_runs_after_the_last_guard_is_released() {
        static FIRST: Mutex<u32> = Mutex::new(1);
        let first = &FIRST;
        let second = Mutex::new(2);
        let calls = Rc::new(RefCell::new(Vec::new()));
        let record = Rc::clone(&calls);
        set_release_hook(Some(Box::new(move |count| {
            // The mutex is free again when the hook runs.
            let free = FIRST.try_lock().is_ok();
            record.borrow_mut().push((count, free));
        })));

        let outer = first.lock().unwrap();
        let inner = second.lock().unwrap();
        drop(inner);
        assert!(calls.borrow().is_empty(), "a guard is still held");
        drop(outer);
        *second.lock().unwrap() += 1;
        set_release_hook(None);
        drop(first.lock().unwrap());

        // The try_lock inside the hook is neither counted nor hooked.
        assert_eq!(*calls.borrow(), vec![(1, true), (2, true)]);
    }
}

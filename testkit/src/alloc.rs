//! A global allocator that counts heap allocations per thread.
//!
//! Install it in a grading suite, then measure a closure:
//!
//! ```no_run
//! #[global_allocator]
//! static ALLOCATOR: testkit::alloc::CountingAllocator = testkit::alloc::CountingAllocator;
//!
//! let allocations = testkit::alloc::count_allocations(|| {
//!     let _ = Vec::<u8>::with_capacity(16);
//! });
//! assert_eq!(allocations, 1);
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    // Allocations made by this thread while counting is on; `None` when off.
    static COUNT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The system allocator, counting the allocations of threads that measure.
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingAllocator;

// SAFETY: every call forwards to `System` with the caller's arguments, so the
// contract of `GlobalAlloc` is the system allocator's. Counting touches only
// a const-initialised thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record();
        // SAFETY: the caller upholds `alloc`'s contract, which is forwarded as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record();
        // SAFETY: `ptr` and `layout` come from this allocator, which is `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` and `layout` come from this allocator, which is `System`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

fn record() {
    // `try_with` fails only while the thread-local is being destroyed.
    let _ = COUNT.try_with(|count| {
        if let Some(current) = count.get() {
            count.set(Some(current + 1));
        }
    });
}

/// Runs `work` and returns how many heap allocations (including
/// reallocations) this thread made during it.
///
/// # Panics
///
/// Panics when [`CountingAllocator`] is not the global allocator, because
/// every count would then be zero and prove nothing.
pub fn count_allocations(work: impl FnOnce()) -> usize {
    let probe = measure(|| drop(std::hint::black_box(Box::new(0u64))));
    assert!(
        probe > 0,
        "allocations are not being counted; declare \
         `#[global_allocator] static ALLOCATOR: testkit::alloc::CountingAllocator = \
         testkit::alloc::CountingAllocator;` in the grading suite"
    );
    measure(work)
}

fn measure(work: impl FnOnce()) -> usize {
    COUNT.with(|count| count.set(Some(0)));
    work();
    COUNT.with(|count| count.replace(None)).unwrap_or(0)
}

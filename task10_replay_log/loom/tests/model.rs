//! Loom models of the replay/live handover in task 10's shared log state.
//!
//! Each model starts a subscriber on the main thread while a second thread
//! appends and then closes the log. Loom runs the model once for every
//! interleaving of the two threads' lock operations and wake-ups. The
//! subscriber records what it read. The model asserts that its messages and
//! missed ranges cover every offset from its start to the final head in
//! order, each once. It also asserts that each message is the one appended at
//! its offset. A lost wake-up would leave the subscriber blocked for ever,
//! which loom reports as a deadlock.
//!
//! The reference core, `src/shared.rs`, must pass every model. The cores of
//! the `two_critical_sections` and `duplicate_at_boundary` mutants must fail
//! the handover model: loom has to find the interleaving in which an append
//! falls between the replay snapshot and the start of live delivery, and the
//! boundary message that arrives twice.
//!
//! Run them with
//! `RUSTFLAGS="--cfg loom" cargo test -p task10_loom --release -- --nocapture`
//! to see how many interleavings each model explored.

#![cfg(loom)]

// Each core carries parts of the log's API, such as `head()`, that the models
// do not call.
#[allow(dead_code)]
#[path = "../../src/shared.rs"]
mod reference;

#[allow(dead_code)]
#[path = "../../src/mutants/two_critical_sections/shared.rs"]
mod two_critical_sections;

#[allow(dead_code)]
#[path = "../../src/mutants/duplicate_at_boundary/shared.rs"]
mod duplicate_at_boundary;

use std::cell::Cell;
use std::ops::Range;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::Instant;

use loom::model::Builder;

/// One model: what the log holds when the subscriber starts, and what the
/// other thread appends while it reads.
#[derive(Clone, Copy, Debug)]
struct Scenario {
    capacity: usize,
    /// Messages appended before the subscriber starts.
    before: u64,
    /// Offset the subscriber starts from.
    from: u64,
    /// Messages the other thread appends while the subscriber reads.
    during: u64,
}

/// A subscriber starts at the first offset while two appends race it.
const HANDOVER: Scenario = Scenario {
    capacity: 4,
    before: 1,
    from: 0,
    during: 2,
};

/// A subscriber starts at the head, asking only for new messages.
const FROM_HEAD: Scenario = Scenario {
    capacity: 4,
    before: 1,
    from: 1,
    during: 2,
};

/// A log of one message, so the appends evict what the subscriber has not
/// read yet, or even its start offset.
const LAGGING: Scenario = Scenario {
    capacity: 1,
    before: 1,
    from: 0,
    during: 2,
};

/// What a subscriber read in one step.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    /// The message at this offset.
    Message(u64),
    /// These offsets were evicted before the subscriber read them.
    Missed(Range<u64>),
}

/// Runs one interleaving of `scenario` on the core module `$core` and checks
/// what the subscriber read.
///
/// A macro instead of a generic function, because the cores share an API but
/// no trait. Every message is its own offset, so a wrong message shows.
macro_rules! run_scenario {
    ($core:ident, $scenario:expr) => {{
        let scenario: Scenario = $scenario;
        let shared = loom::sync::Arc::new($core::Shared::<u64>::new(scenario.capacity));
        for value in 0..scenario.before {
            shared.append(value);
        }

        // The other thread appends, then closes, so the subscriber's loop
        // ends once it has read up to the final head.
        let appender = {
            let shared = loom::sync::Arc::clone(&shared);
            loom::thread::spawn(move || {
                for value in scenario.before..scenario.before + scenario.during {
                    let offset = shared.append(value);
                    assert_eq!(offset, value, "append returned the wrong offset");
                }
                shared.close();
            })
        };

        // Subscribe while the appends race. An append may evict the start
        // offset first; then the subscriber starts again at the oldest
        // offset the error names, as a real consumer would.
        let mut from = scenario.from;
        let mut reader = loop {
            match $core::Reader::start(loom::sync::Arc::clone(&shared), from) {
                Ok(reader) => break reader,
                Err($core::StartError::Evicted { oldest }) => {
                    assert!(
                        oldest > from,
                        "offset {from} was evicted, but oldest is {oldest}"
                    );
                    from = oldest;
                }
                Err(error) => panic!("a start at offset {from} failed: {error:?}"),
            }
        };

        // Read until the log is closed. A read that waits blocks this thread
        // until a wake-up arrives.
        let mut steps = Vec::new();
        loop {
            let read = loom::future::block_on(std::future::poll_fn(|cx| reader.poll_read(cx)));
            match read {
                $core::Read::Message(offset, message) => {
                    assert_eq!(
                        message, offset,
                        "the subscriber got message {message} at offset {offset}"
                    );
                    steps.push(Step::Message(offset));
                }
                $core::Read::Lagged(missed) => steps.push(Step::Missed(missed)),
                $core::Read::Closed => break,
            }
        }
        appender
            .join()
            .expect("the appending thread does not panic");
        check_steps(&steps, from, scenario.before + scenario.during);
    }};
}

/// Panics unless `steps` cover the offsets `from..head` in order, each once,
/// as messages or missed ranges.
fn check_steps(steps: &[Step], from: u64, head: u64) {
    let mut expected = from;
    for step in steps {
        match step {
            Step::Message(offset) => {
                assert_eq!(
                    *offset, expected,
                    "gap or duplicate at the replay/live boundary: expected offset \
                     {expected}, read {offset}; everything read: {steps:?}"
                );
                expected += 1;
            }
            Step::Missed(missed) => {
                assert!(
                    missed.start == expected && missed.end > missed.start,
                    "the missed range {missed:?} does not start at the next offset \
                     {expected}; everything read: {steps:?}"
                );
                expected = missed.end;
            }
        }
    }
    assert_eq!(
        expected, head,
        "the subscriber ended at offset {expected}, before the head {head}; everything \
         read: {steps:?}"
    );
}

/// Explores every interleaving of `model` and returns how many loom ran.
///
/// # Panics
///
/// Panics with the model's own message when one interleaving fails.
fn explore(name: &str, model: impl Fn() + Sync + Send + 'static) -> usize {
    let iterations = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&iterations);
    // Without LOOM_MAX_PREEMPTIONS the exploration is exhaustive, which
    // takes about a second for these small scenarios.
    let builder = Builder::new();

    let started = Instant::now();
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        model();
    });
    let explored = iterations.load(Ordering::Relaxed);
    println!(
        "{name}: loom explored {explored} interleavings in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    explored
}

/// Explores `model` and panics unless loom finds a failing interleaving.
fn expect_failure(name: &str, model: impl Fn() + Sync + Send + 'static) {
    let iterations = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&iterations);
    // Without LOOM_MAX_PREEMPTIONS the exploration is exhaustive, which
    // takes about a second for these small scenarios.
    let builder = Builder::new();

    let outcome = quietly(|| {
        panic::catch_unwind(AssertUnwindSafe(|| {
            builder.check(move || {
                counter.fetch_add(1, Ordering::Relaxed);
                model();
            });
        }))
    });
    let explored = iterations.load(Ordering::Relaxed);
    let Err(failure) = outcome else {
        panic!(
            "{name}: loom explored {explored} interleavings and found no gap or duplicate, \
             but this core loses or repeats a message at the replay/live boundary"
        );
    };
    let message = failure
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| failure.downcast_ref::<&str>().copied())
        .unwrap_or("a panic without a message");
    println!("{name}: loom found a failing interleaving in run {explored}, as expected: {message}");
}

thread_local! {
    // Set while this thread runs a model that is expected to fail.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Runs `work` without printing the panics of this thread, which are the
/// expected failures. Other tests' threads keep printing theirs.
fn quietly<R>(work: impl FnOnce() -> R) -> R {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                default(info);
            }
        }));
    });
    QUIET.with(|quiet| quiet.set(true));
    let result = work();
    QUIET.with(|quiet| quiet.set(false));
    result
}

#[test]
fn reference_handover_has_no_gap_or_duplicate() {
    let explored = explore("reference, handover", || run_scenario!(reference, HANDOVER));
    assert!(explored > 1, "loom explored only {explored} interleaving");
}

#[test]
fn reference_start_at_head_reads_only_new() {
    let explored = explore("reference, start at head", || {
        run_scenario!(reference, FROM_HEAD)
    });
    assert!(explored > 1, "loom explored only {explored} interleaving");
}

#[test]
fn reference_lagging_reader_names_missed() {
    let explored = explore("reference, lagging reader", || {
        run_scenario!(reference, LAGGING)
    });
    assert!(explored > 1, "loom explored only {explored} interleaving");
}

#[test]
fn two_critical_sections_core_fails_handover() {
    expect_failure("two_critical_sections, handover", || {
        run_scenario!(two_critical_sections, HANDOVER)
    });
}

#[test]
fn duplicate_at_boundary_core_fails_handover() {
    expect_failure("duplicate_at_boundary, handover", || {
        run_scenario!(duplicate_at_boundary, HANDOVER)
    });
}

//! Benchmarks of the reference replay log: append throughput on a full log,
//! and a catch-up read of a full log of 100,000 messages.
//!
//! Run with `cargo bench -p task10_replay_log --features reference --bench
//! log`. Append to a full log evicts on every call, the steady state of a
//! long-running log. The catch-up read subscribes from the oldest offset and
//! reads every held message, as a subscriber that starts late or recovers
//! does. It runs once with `u64` messages and once with 32-byte `String`
//! messages, whose clone allocates.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use task10_replay_log::Log;
use tokio_util::sync::CancellationToken;

/// Capacity of every log in the benchmarks, each of them full.
const CAPACITY: usize = 100_000;

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append_to_full_log");
    group.throughput(Throughput::Elements(1));

    let numbers = full_log(|offset| offset);
    let mut next = CAPACITY as u64;
    group.bench_function("u64", |b| {
        b.iter(|| {
            next += 1;
            black_box(numbers.append(black_box(next)))
        });
    });

    // Creating the string is part of each iteration, as it would be for a
    // caller that appends a new message.
    let strings = full_log(text);
    let mut next = CAPACITY as u64;
    group.bench_function("string_32_bytes", |b| {
        b.iter(|| {
            next += 1;
            black_box(strings.append(text(next)))
        });
    });
    group.finish();
}

fn catch_up(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime without drivers always builds");
    let mut group = c.benchmark_group("catch_up_read_100k");
    group.throughput(Throughput::Elements(CAPACITY as u64));

    let numbers = full_log(|offset| offset);
    group.bench_function("u64", |b| {
        b.iter(|| runtime.block_on(read_all(&numbers)));
    });
    let strings = full_log(text);
    group.bench_function("string_32_bytes", |b| {
        b.iter(|| runtime.block_on(read_all(&strings)));
    });
    group.finish();
}

/// Returns a full log of [`CAPACITY`] messages, each made by `make` from its
/// offset.
fn full_log<T: Clone + Send + 'static>(make: impl Fn(u64) -> T) -> Log<T> {
    let log = Log::new(CAPACITY);
    for offset in 0..CAPACITY as u64 {
        log.append(make(offset));
    }
    log
}

/// Returns a 32-byte message for `offset`.
fn text(offset: u64) -> String {
    format!("message {offset:024}")
}

/// Subscribes from the oldest offset and reads every held message.
async fn read_all<T: Clone + Send + 'static>(log: &Log<T>) {
    let mut subscription = log
        .subscribe(CancellationToken::new(), log.oldest())
        .expect("the oldest offset is held");
    for _ in 0..CAPACITY {
        match subscription.recv().await {
            Some(Ok(item)) => {
                black_box(item);
            }
            Some(Err(lagged)) => panic!("a catch-up read without appends got a lag: {lagged}"),
            None => panic!("a catch-up read ended before it read every held message"),
        }
    }
}

fn main() {
    // Short runs keep the whole file near a minute on two cores.
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
        .configure_from_args();
    append(&mut criterion);
    catch_up(&mut criterion);
    criterion.final_summary();
}

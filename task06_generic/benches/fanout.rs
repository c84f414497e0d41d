//! Fan-out benchmarks of the task 6 reference broker.
//!
//! - `fanout/MESSAGE`: one publisher, 1, 16 and 256 subscribers; the generic
//!   broker next to `tokio::sync::broadcast` and next to bare mpsc channels.
//!   The bare channels, one per subscriber with no broker around them, are
//!   the lowest cost this design can reach.
//! - `erased/MESSAGE`: 16 subscribers; the generic broker next to
//!   [`ErasedBroker`], the same design with `Box<dyn Any + Send>` messages.
//! - `publish_to_nobody/MESSAGE`: one publish to a topic without subscribers.
//!
//! MESSAGE is `u64` or `block64`, a 64-byte struct. Each fan-out iteration
//! publishes [`BATCH`] messages and then drains every receiver with
//! `try_recv` on the same thread. Every buffer has room for [`BATCH`]
//! messages, so nothing is dropped, and each iteration asserts that every
//! message arrived.
//! Throughput counts published messages: criterion's elements per second are
//! messages per second, and deliveries per second are that times the number
//! of subscribers.
//!
//! Run with `cargo bench -p task06_generic --features reference --bench
//! fanout`.

use std::any::Any;
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Mutex;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use task06_generic::{Broker, SubscribeOptions};
use tokio::runtime::Runtime;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

/// Messages published per iteration, and the buffer of every receiver.
const BATCH: usize = 32;

/// Subscriber counts of the `fanout` group.
const SUBSCRIBER_COUNTS: [usize; 3] = [1, 16, 256];

/// Subscriber count of the `erased` group.
const ERASED_SUBSCRIBERS: usize = 16;

/// A message type that the benchmarks can make and read.
trait Message: Clone + Send + 'static {
    /// Name of the type in benchmark ids.
    const NAME: &'static str;

    /// Makes message number `sequence`.
    fn make(sequence: u64) -> Self;

    /// Reads the message, so that the optimiser cannot skip the copy.
    fn weight(&self) -> u64;
}

impl Message for u64 {
    const NAME: &'static str = "u64";

    fn make(sequence: u64) -> u64 {
        sequence
    }

    fn weight(&self) -> u64 {
        *self
    }
}

/// A 64-byte message that has no heap data, so cloning it is a copy.
#[derive(Clone, Copy)]
struct Block64([u64; 8]);

impl Message for Block64 {
    const NAME: &'static str = "block64";

    fn make(sequence: u64) -> Block64 {
        Block64([sequence; 8])
    }

    fn weight(&self) -> u64 {
        self.0[0] ^ self.0[7]
    }
}

/// A broker of type-erased messages, for comparison with the generic one.
///
/// Its publish path has the reference's shape: a mutex around a map from
/// topic to subscribers, and a cancellation check and `try_send` for each
/// subscriber. A `Box<dyn Any + Send>` cannot be cloned, so publish clones
/// the message and boxes each copy, one heap allocation per subscriber, and
/// each receiver downcasts what it gets. It has no watcher tasks and no
/// `on_drop`, which only makes it cheaper.
struct ErasedBroker {
    topics: Mutex<HashMap<String, Vec<ErasedSubscriber>>>,
}

struct ErasedSubscriber {
    sender: mpsc::Sender<Box<dyn Any + Send>>,
    stop: CancellationToken,
}

impl ErasedBroker {
    fn new() -> ErasedBroker {
        ErasedBroker {
            topics: Mutex::new(HashMap::new()),
        }
    }

    fn subscribe(
        &self,
        stop: CancellationToken,
        topic: &str,
        buffer: usize,
    ) -> mpsc::Receiver<Box<dyn Any + Send>> {
        let (sender, receiver) = mpsc::channel(buffer);
        self.topics
            .lock()
            .expect("no benchmark panics while holding the lock")
            .entry(topic.to_owned())
            .or_default()
            .push(ErasedSubscriber { sender, stop });
        receiver
    }

    fn publish<T: Clone + Send + 'static>(&self, topic: &str, msg: T) {
        let topics = self
            .topics
            .lock()
            .expect("no benchmark panics while holding the lock");
        let Some(subscribers) = topics.get(topic) else {
            return;
        };
        for subscriber in subscribers {
            if subscriber.stop.is_cancelled() {
                continue;
            }
            // A full buffer drops the message, as in the reference.
            let _ = subscriber.sender.try_send(Box::new(msg.clone()));
        }
    }
}

/// Returns a runtime for the brokers' watcher tasks. No benchmark drives it,
/// so the watchers stay idle and cost nothing while measuring.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime always builds")
}

/// Subscribes `count` receivers with a buffer of [`BATCH`] to topic "t".
fn subscribe_generic<T: Message>(broker: &Broker<T>, count: usize) -> Vec<mpsc::Receiver<T>> {
    let token = CancellationToken::new();
    let options = SubscribeOptions::default().with_buffer(BATCH);
    (0..count)
        .map(|_| broker.subscribe(token.child_token(), "t", options.clone()))
        .collect()
}

/// Publishes [`BATCH`] messages to "t" and drains every receiver.
fn round_generic<T: Message>(broker: &Broker<T>, receivers: &mut [mpsc::Receiver<T>]) -> u64 {
    for sequence in 0..BATCH as u64 {
        broker.publish("t", T::make(sequence));
    }
    let mut received = 0;
    let mut weight = 0;
    for receiver in receivers.iter_mut() {
        while let Ok(message) = receiver.try_recv() {
            received += 1;
            weight ^= message.weight();
        }
    }
    assert_eq!(received, BATCH * receivers.len(), "a message was dropped");
    weight
}

/// Sends [`BATCH`] messages on `sender` and drains every receiver.
fn round_broadcast<T: Message>(
    sender: &broadcast::Sender<T>,
    receivers: &mut [broadcast::Receiver<T>],
) -> u64 {
    for sequence in 0..BATCH as u64 {
        // Fails only without receivers, which these rounds always have.
        let _ = sender.send(T::make(sequence));
    }
    let mut received = 0;
    let mut weight = 0;
    for receiver in receivers.iter_mut() {
        while let Ok(message) = receiver.try_recv() {
            received += 1;
            weight ^= message.weight();
        }
    }
    assert_eq!(received, BATCH * receivers.len(), "a message was dropped");
    weight
}

/// Sends [`BATCH`] messages to every sender with `try_send`, cloning each
/// message once per sender, and drains every receiver.
fn round_mpsc<T: Message>(senders: &[mpsc::Sender<T>], receivers: &mut [mpsc::Receiver<T>]) -> u64 {
    for sequence in 0..BATCH as u64 {
        let message = T::make(sequence);
        for sender in senders {
            // Never full: every round drains what the last one sent.
            let _ = sender.try_send(message.clone());
        }
    }
    let mut received = 0;
    let mut weight = 0;
    for receiver in receivers.iter_mut() {
        while let Ok(message) = receiver.try_recv() {
            received += 1;
            weight ^= message.weight();
        }
    }
    assert_eq!(received, BATCH * receivers.len(), "a message was dropped");
    weight
}

/// Publishes [`BATCH`] messages through the erased broker and drains every
/// receiver, downcasting each message.
fn round_erased<T: Message>(
    broker: &ErasedBroker,
    receivers: &mut [mpsc::Receiver<Box<dyn Any + Send>>],
) -> u64 {
    for sequence in 0..BATCH as u64 {
        broker.publish("t", T::make(sequence));
    }
    let mut received = 0;
    let mut weight = 0;
    for receiver in receivers.iter_mut() {
        while let Ok(message) = receiver.try_recv() {
            let message = message
                .downcast::<T>()
                .expect("the benchmark publishes only one type per broker");
            received += 1;
            weight ^= message.weight();
        }
    }
    assert_eq!(received, BATCH * receivers.len(), "a message was dropped");
    weight
}

fn bench_fanout<T: Message>(criterion: &mut Criterion) {
    let runtime = runtime();
    let _context = runtime.enter();
    let mut group = criterion.benchmark_group(format!("fanout/{}", T::NAME));
    group.throughput(Throughput::Elements(BATCH as u64));

    for subscribers in SUBSCRIBER_COUNTS {
        let broker = Broker::<T>::new();
        let mut receivers = subscribe_generic(&broker, subscribers);
        group.bench_function(BenchmarkId::new("broker", subscribers), |bencher| {
            bencher.iter(|| round_generic(&broker, &mut receivers));
        });

        let (sender, _) = broadcast::channel::<T>(BATCH);
        let mut receivers: Vec<_> = (0..subscribers).map(|_| sender.subscribe()).collect();
        group.bench_function(BenchmarkId::new("broadcast", subscribers), |bencher| {
            bencher.iter(|| round_broadcast(&sender, &mut receivers));
        });

        let (senders, mut receivers): (Vec<_>, Vec<_>) =
            (0..subscribers).map(|_| mpsc::channel::<T>(BATCH)).unzip();
        group.bench_function(BenchmarkId::new("bare_mpsc", subscribers), |bencher| {
            bencher.iter(|| round_mpsc(&senders, &mut receivers));
        });
    }
    group.finish();
}

fn bench_erased<T: Message>(criterion: &mut Criterion) {
    let runtime = runtime();
    let _context = runtime.enter();
    let mut group = criterion.benchmark_group(format!("erased/{}", T::NAME));
    group.throughput(Throughput::Elements(BATCH as u64));

    let broker = Broker::<T>::new();
    let mut receivers = subscribe_generic(&broker, ERASED_SUBSCRIBERS);
    group.bench_function(BenchmarkId::new("generic", ERASED_SUBSCRIBERS), |bencher| {
        bencher.iter(|| round_generic(&broker, &mut receivers));
    });

    let erased = ErasedBroker::new();
    let token = CancellationToken::new();
    let mut receivers: Vec<_> = (0..ERASED_SUBSCRIBERS)
        .map(|_| erased.subscribe(token.child_token(), "t", BATCH))
        .collect();
    group.bench_function(
        BenchmarkId::new("boxed_any", ERASED_SUBSCRIBERS),
        |bencher| {
            bencher.iter(|| round_erased::<T>(&erased, &mut receivers));
        },
    );
    group.finish();
}

fn bench_publish_to_nobody<T: Message>(criterion: &mut Criterion) {
    let runtime = runtime();
    let _context = runtime.enter();
    let mut group = criterion.benchmark_group(format!("publish_to_nobody/{}", T::NAME));

    // Subscribers exist, but on another topic.
    let broker = Broker::<T>::new();
    let token = CancellationToken::new();
    let _busy: Vec<_> = (0..ERASED_SUBSCRIBERS)
        .map(|_| broker.subscribe(token.child_token(), "busy", SubscribeOptions::default()))
        .collect();
    group.bench_function("broker", |bencher| {
        bencher.iter(|| broker.publish(black_box("nobody"), T::make(1)));
    });

    // A broadcast channel whose receivers are all gone hands the message back.
    let (sender, receiver) = broadcast::channel::<T>(BATCH);
    drop(receiver);
    group.bench_function("broadcast", |bencher| {
        bencher.iter(|| sender.send(black_box(T::make(1))).is_err());
    });
    group.finish();
}

fn benches(criterion: &mut Criterion) {
    bench_fanout::<u64>(criterion);
    bench_fanout::<Block64>(criterion);
    bench_erased::<u64>(criterion);
    bench_erased::<Block64>(criterion);
    bench_publish_to_nobody::<u64>(criterion);
    bench_publish_to_nobody::<Block64>(criterion);
}

fn main() {
    // Short runs keep the whole file under three minutes on two cores.
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .configure_from_args();
    benches(&mut criterion);
    criterion.final_summary();
}

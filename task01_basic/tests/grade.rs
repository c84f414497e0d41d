//! Grading suite for task 1: the checks that decide whether `Broker` keeps
//! its contract.
//!
//! Each check passes when it returns and fails when it panics, and its
//! assertion messages are what the learner reads. Most checks run on paused
//! tokio time, so waiting for a message that never comes costs no real time.
//! The last two checks use real threads, and they reach the broker through
//! [`shared_broker`]. That way, a `Broker` that is not `Send + Sync` fails
//! those checks with a message instead of stopping this file from compiling.

use std::any::Any;
use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::mpsc::{RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use task01_basic::{BUFFER, Broker};
use testkit::alloc::{CountingAllocator, count_allocations};
use testkit::grading::Check;
use testkit::runtime::paused;
use tokio::sync::mpsc::Receiver;
use tokio::sync::mpsc::error::TryRecvError;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Capacity of each subscriber's buffer that the contract fixes.
const CAPACITY: usize = 16;

/// Virtual time a check waits for a message before deciding none is coming.
const PATIENCE: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    testkit::suite!()
        .check(
            "publish_reaches_every_subscriber",
            "Broker::publish",
            publish_reaches_every_subscriber,
        )
        .check(
            "publish_skips_other_topics",
            "Broker::publish",
            publish_skips_other_topics,
        )
        // A publish that waits for room never returns on a single thread, so
        // these two fail by their time limit when nothing else catches them.
        .add_check(
            Check::new(
                "full_buffer_drops_new_messages",
                "Broker::publish",
                full_buffer_drops_new_messages,
            )
            .time_limit(Duration::from_secs(5))
            .timeout_cause(WAITS_FOR_SPACE),
        )
        .add_check(
            Check::new(
                "full_subscriber_does_not_starve_others",
                "Broker::publish",
                full_subscriber_does_not_starve_others,
            )
            .time_limit(Duration::from_secs(5))
            .timeout_cause(WAITS_FOR_SPACE),
        )
        .check(
            "dropped_receiver_does_not_disturb_others",
            "Broker::publish",
            dropped_receiver_does_not_disturb_others,
        )
        .check(
            "close_ends_receivers_after_draining",
            "Broker::close",
            close_ends_receivers_after_draining,
        )
        .check(
            "close_wakes_waiting_receiver",
            "Broker::close",
            close_wakes_waiting_receiver,
        )
        .check(
            "close_twice_is_harmless",
            "Broker::close",
            close_twice_is_harmless,
        )
        .check(
            "publish_after_close_is_ignored",
            "Broker::publish",
            publish_after_close_is_ignored,
        )
        .check(
            "subscribe_after_close_is_ended",
            "Broker::subscribe",
            subscribe_after_close_is_ended,
        )
        .check(
            "publish_without_subscribers_allocates_nothing",
            "Broker::publish",
            publish_without_subscribers_allocates_nothing,
        )
        .check(
            "broker_is_shared_across_threads",
            "Broker (Send + Sync)",
            broker_is_shared_across_threads,
        )
        .add_check(
            Check::new(
                "stress_concurrent_publish_subscribe",
                "Broker under concurrent use",
                stress_concurrent_publish_subscribe,
            )
            .time_limit(Duration::from_secs(10))
            .timeout_cause(STRESS_TIMEOUT),
        )
        .run()
}

/// Timeout cause of the checks in which nobody reads a full buffer.
const WAITS_FOR_SPACE: &str = "likely Broker::publish waiting for space in a full buffer, which \
     never frees up here because that subscriber does not read. Publish must skip a subscriber \
     whose buffer is full and return at once";

/// Timeout cause of the stress check, which bounds its own wait for the
/// receivers to end after close.
const STRESS_TIMEOUT: &str = "likely Broker::publish waiting for space in the buffer of a \
     subscriber that never reads, or a deadlock between threads that share the broker. Publish \
     must skip a subscriber whose buffer is full and return at once";

// ---------------------------------------------------------------------------
// Receiving with a limit in virtual time
// ---------------------------------------------------------------------------

/// What a receiver produced within [`PATIENCE`].
#[derive(Debug, PartialEq)]
enum Next {
    Message(String),
    Ended,
    Nothing,
}

impl Next {
    fn describe(&self) -> String {
        match self {
            Next::Message(text) => format!("it received {text:?}"),
            Next::Ended => "the receiver had ended (recv() returned None)".to_owned(),
            Next::Nothing => format!(
                "nothing arrived within {} s and the receiver was still open",
                PATIENCE.as_secs()
            ),
        }
    }
}

async fn next(receiver: &mut Receiver<String>) -> Next {
    match tokio::time::timeout(PATIENCE, receiver.recv()).await {
        Ok(Some(text)) => Next::Message(text),
        Ok(None) => Next::Ended,
        Err(_) => Next::Nothing,
    }
}

async fn expect_message(receiver: &mut Receiver<String>, expected: &str, context: &str) {
    let got = next(receiver).await;
    if got != Next::Message(expected.to_owned()) {
        panic!(
            "{context}: expected the message {expected:?}, but {}",
            got.describe()
        );
    }
}

async fn expect_nothing(receiver: &mut Receiver<String>, context: &str) {
    let got = next(receiver).await;
    if got != Next::Nothing {
        panic!(
            "{context}: expected no message and an open receiver, but {}",
            got.describe()
        );
    }
}

async fn expect_ended(receiver: &mut Receiver<String>, context: &str) {
    let got = next(receiver).await;
    if got != Next::Ended {
        panic!(
            "{context}: expected the receiver to end (recv() returns None once every Sender \
             of its channel is dropped), but {}",
            got.describe()
        );
    }
}

// ---------------------------------------------------------------------------
// Delivery
// ---------------------------------------------------------------------------

/// Checks that every subscriber of a topic gets every message once, in publish
/// order.
fn publish_reaches_every_subscriber() {
    paused("Broker::publish", async {
        // Three subscribers of one topic, all there before the first publish.
        let broker = Broker::new();
        let mut receivers: Vec<_> = (0..3).map(|_| broker.subscribe("news")).collect();
        let texts = ["first", "second", "third"];
        for text in texts {
            broker.publish("news", text.to_owned());
        }

        // Each one receives all three, in order, and nothing more.
        for (index, receiver) in receivers.iter_mut().enumerate() {
            for text in texts {
                let context = format!(
                    "subscriber {index} of \"news\" after publishing {texts:?} on \"news\""
                );
                expect_message(receiver, text, &context).await;
            }
            let context = format!(
                "subscriber {index} of \"news\" after receiving the three messages \
                 (each message is delivered once)"
            );
            expect_nothing(receiver, &context).await;
        }
    });
}

/// Checks that a message reaches the subscribers of exactly its topic, and
/// not those of a topic it is a prefix of, one that is a prefix of it, or one
/// that differs in case.
fn publish_skips_other_topics() {
    paused("Broker::publish", async {
        // One subscriber on each of several similar topics.
        let broker = Broker::default();
        let topics = ["news", "news.sports", "new", "News", "sports"];
        let mut receivers: Vec<_> = topics.iter().map(|topic| broker.subscribe(topic)).collect();

        // Publish on each topic in turn and see who gets it.
        for published in topics {
            let text = format!("only for {published}");
            broker.publish(published, text.clone());
            for (topic, receiver) in topics.iter().zip(receivers.iter_mut()) {
                if *topic == published {
                    let context = format!("the subscriber of {topic:?} after a publish on it");
                    expect_message(receiver, &text, &context).await;
                } else {
                    let context = format!(
                        "the subscriber of {topic:?} after a publish on {published:?} \
                         (topics must match exactly, not by prefix or ignoring case)"
                    );
                    expect_nothing(receiver, &context).await;
                }
            }
        }
    });
}

/// Checks that publish drops a new message at once when the buffer is full.
/// The first 16 arrive in order, the 17th never does, and reading makes room
/// again.
fn full_buffer_drops_new_messages() {
    paused("Broker::publish", async {
        assert_eq!(
            BUFFER, CAPACITY,
            "BUFFER is {BUFFER}, but the task asks for a channel capacity of {CAPACITY} messages"
        );

        // Publish one message more than fits, without reading. Each call must
        // return at once, which a publish that waits for room never does here.
        let broker = Broker::new();
        let mut receiver = broker.subscribe("jobs");
        for index in 0..=CAPACITY {
            broker.publish("jobs", format!("job {index}"));
        }

        // The first 16 are buffered in order, and the 17th was dropped.
        for index in 0..CAPACITY {
            let context = format!(
                "a subscriber that had not read while {} messages were published",
                CAPACITY + 1
            );
            expect_message(&mut receiver, &format!("job {index}"), &context).await;
        }
        let context = format!(
            "after reading the first {CAPACITY} messages (\"job {CAPACITY}\" was published while \
             the buffer held {CAPACITY} messages, so it should have been dropped)"
        );
        expect_nothing(&mut receiver, &context).await;

        // Reading emptied the buffer, so new messages fit again.
        broker.publish("jobs", "after reading".to_owned());
        let context = "a subscriber that emptied its full buffer, after one more publish";
        expect_message(&mut receiver, "after reading", context).await;
    });
}

/// Checks that a subscriber that never reads loses messages itself but never
/// costs another subscriber a message.
fn full_subscriber_does_not_starve_others() {
    paused("Broker::publish", async {
        // The idle subscriber comes first, so it is the one a publish meets
        // first when it walks the subscribers in order.
        let broker = Broker::new();
        let mut idle = broker.subscribe("ticks");
        let mut reader = broker.subscribe("ticks");

        // The reader reads after every publish and gets every message, also
        // once the idle subscriber's buffer is full.
        for index in 0..2 * CAPACITY {
            let text = format!("tick {index}");
            broker.publish("ticks", text.clone());
            let context = format!(
                "a subscriber that reads after every publish, while another subscriber of \
                 \"ticks\" never reads (publish {} of {})",
                index + 1,
                2 * CAPACITY
            );
            expect_message(&mut reader, &text, &context).await;
        }

        // The idle subscriber kept the first 16 only.
        for index in 0..CAPACITY {
            let context = format!(
                "a subscriber that did not read while {} messages were published",
                2 * CAPACITY
            );
            expect_message(&mut idle, &format!("tick {index}"), &context).await;
        }
        let context = format!(
            "the idle subscriber after its first {CAPACITY} messages (the rest found its buffer \
             full and should have been dropped)"
        );
        expect_nothing(&mut idle, &context).await;
    });
}

/// Checks that a subscriber that dropped its receiver does not stop delivery
/// to the others, and that a topic whose only subscriber left still works.
fn dropped_receiver_does_not_disturb_others() {
    paused("Broker::publish", async {
        // The first of three subscribers drops its receiver.
        let broker = Broker::new();
        let dropped = broker.subscribe("chat");
        let mut first = broker.subscribe("chat");
        let mut second = broker.subscribe("chat");
        drop(dropped);

        // The two that remain get every message.
        let texts = ["one", "two", "three"];
        for text in texts {
            broker.publish("chat", text.to_owned());
        }
        for (name, receiver) in [("second", &mut first), ("third", &mut second)] {
            for text in texts {
                let context = format!(
                    "the {name} subscriber of \"chat\", after the first subscriber dropped its \
                     receiver and {texts:?} were published"
                );
                expect_message(receiver, text, &context).await;
            }
        }

        // Publishing to a topic whose only subscriber left is harmless, and a
        // new subscriber of that topic is served.
        drop(broker.subscribe("solo"));
        broker.publish("solo", "nobody is listening".to_owned());
        let mut newcomer = broker.subscribe("solo");
        broker.publish("solo", "welcome".to_owned());
        let context = "a new subscriber of \"solo\", whose earlier subscriber dropped its receiver";
        expect_message(&mut newcomer, "welcome", context).await;
    });
}

// ---------------------------------------------------------------------------
// Close
// ---------------------------------------------------------------------------

/// Checks that after close, each receiver yields what was already buffered
/// and then ends.
fn close_ends_receivers_after_draining() {
    paused("Broker::close", async {
        // Subscribers on two topics with buffered messages, and one without.
        let broker = Broker::new();
        let mut news = broker.subscribe("news");
        let mut sport = broker.subscribe("sport");
        let mut quiet = broker.subscribe("quiet");
        broker.publish("news", "n1".to_owned());
        broker.publish("news", "n2".to_owned());
        broker.publish("sport", "s1".to_owned());
        broker.close();

        // Buffered messages still arrive after close.
        let context = "a subscriber of \"news\" after close, with two messages buffered";
        expect_message(&mut news, "n1", context).await;
        expect_message(&mut news, "n2", context).await;
        let context = "a subscriber of \"sport\" after close, with one message buffered";
        expect_message(&mut sport, "s1", context).await;

        // Then every receiver ends, because close let go of the senders.
        let context = "a subscriber of \"news\" that read its buffered messages after close";
        expect_ended(&mut news, context).await;
        let context = "a subscriber of \"sport\" that read its buffered message after close";
        expect_ended(&mut sport, context).await;
        let context = "a subscriber of \"quiet\" (nothing published) after close";
        expect_ended(&mut quiet, context).await;
    });
}

/// Checks that a task already waiting in `recv()` wakes up and gets `None`
/// when the broker closes.
fn close_wakes_waiting_receiver() {
    paused("Broker::close", async {
        let broker = Broker::new();
        let mut receiver = broker.subscribe("news");

        // The first branch starts waiting in recv() before the second closes.
        let (received, ()) = tokio::join!(tokio::time::timeout(PATIENCE, receiver.recv()), async {
            tokio::task::yield_now().await;
            broker.close();
        });

        match received {
            Ok(None) => {}
            Ok(Some(text)) => panic!(
                "a subscriber waiting in recv() when the broker closed received {text:?}, \
                 although nothing was published. Expected recv() to return None"
            ),
            Err(_) => panic!(
                "a subscriber waiting in recv() when the broker closed was still waiting \
                 {} s later. Close must drop the broker's senders so that recv() returns None",
                PATIENCE.as_secs()
            ),
        }
    });
}

/// Checks that closing twice, or closing an unused broker, neither panics nor
/// undoes the first close.
fn close_twice_is_harmless() {
    paused("Broker::close", async {
        // Close twice with a message still buffered, and once more after.
        let broker = Broker::new();
        let mut receiver = broker.subscribe("news");
        broker.publish("news", "before close".to_owned());
        broker.close();
        broker.close();
        let context = "a subscriber after the broker was closed twice";
        expect_message(&mut receiver, "before close", context).await;
        expect_ended(&mut receiver, context).await;
        broker.close();

        // A broker that never had a subscriber closes twice as well.
        let unused = Broker::new();
        unused.close();
        unused.close();
    });
}

/// Checks that publish after close does nothing. It neither panics, blocks,
/// nor delivers.
fn publish_after_close_is_ignored() {
    paused("Broker::publish", async {
        let broker = Broker::new();
        let mut receiver = broker.subscribe("news");
        broker.publish("news", "before close".to_owned());
        broker.close();

        // More than a buffer's worth, on a topic with and one without
        // subscribers.
        for index in 0..=CAPACITY {
            broker.publish("news", format!("after close {index}"));
            broker.publish("nobody", format!("after close {index}"));
        }

        let context = "a subscriber whose broker closed, after more publishes on its topic";
        expect_message(&mut receiver, "before close", context).await;
        expect_ended(&mut receiver, context).await;
    });
}

/// Checks that subscribing after close returns a receiver that has already
/// ended.
fn subscribe_after_close_is_ended() {
    paused("Broker::subscribe", async {
        let broker = Broker::new();
        let mut early = broker.subscribe("news");
        broker.close();

        // A late subscriber on a topic the broker knew, and on a new one.
        let mut late = broker.subscribe("news");
        let mut fresh = broker.subscribe("fresh");
        broker.publish("news", "after close".to_owned());
        broker.publish("fresh", "after close".to_owned());

        let context = "a subscriber of \"news\" that subscribed after close";
        expect_ended(&mut late, context).await;
        let context = "a subscriber of \"fresh\", a topic first seen after close";
        expect_ended(&mut fresh, context).await;
        let context = "a subscriber of \"news\" from before close, after a late subscribe";
        expect_ended(&mut early, context).await;
    });
}

// ---------------------------------------------------------------------------
// Allocations
// ---------------------------------------------------------------------------

/// Checks that publish to a topic without subscribers makes no heap
/// allocation, on a new broker, with subscribers on other topics only, and
/// after close.
fn publish_without_subscribers_allocates_nothing() {
    let broker = Broker::new();
    assert_publish_allocates_nothing(&broker, "a new broker without subscribers");

    let _elsewhere = broker.subscribe("busy");
    assert_publish_allocates_nothing(
        &broker,
        "a broker whose only subscriber is on another topic",
    );

    broker.close();
    assert_publish_allocates_nothing(&broker, "a closed broker");
}

fn assert_publish_allocates_nothing(broker: &Broker, situation: &str) {
    const CALLS: usize = 100;

    // The messages exist before counting starts, so only publish is measured.
    let mut messages = (0..=CALLS)
        .map(|index| format!("message {index}"))
        .collect::<Vec<_>>();

    // One call first, so that one-time setup in the first call does not count.
    let warm_up = messages
        .pop()
        .expect("the list contains CALLS + 1 messages");
    broker.publish("quiet", warm_up);

    let allocations = count_allocations(|| {
        for message in messages {
            broker.publish("quiet", message);
        }
    });
    assert!(
        allocations == 0,
        "{CALLS} publishes on \"quiet\", a topic without subscribers, on {situation}, made \
         {allocations} heap allocations, but it should make none. Look the topic up by &str \
         (HashMap<String, _>::get accepts one) instead of building a String key, and do \
         not insert an entry for a topic nobody subscribed to"
    );
}

// ---------------------------------------------------------------------------
// Threads
// ---------------------------------------------------------------------------

/// The broker's API as a trait object, for the checks that share one broker
/// between threads.
trait BrokerApi {
    fn subscribe(&self, topic: &str) -> Receiver<String>;
    fn publish(&self, topic: &str, msg: String);
    fn close(&self);
}

impl BrokerApi for Broker {
    fn subscribe(&self, topic: &str) -> Receiver<String> {
        Broker::subscribe(self, topic)
    }

    fn publish(&self, topic: &str, msg: String) {
        Broker::publish(self, topic, msg);
    }

    fn close(&self) {
        Broker::close(self);
    }
}

type SharedBroker = Arc<dyn BrokerApi + Send + Sync>;

// `ShareProbe(value).share()` calls the inherent method when the value's type
// is `Send + Sync`, and otherwise falls back to the trait method, which
// returns `None`. The choice happens while this file compiles, and both
// branches compile, so a broker that is not thread-safe fails a check
// instead of breaking the build of the whole suite.
struct ShareProbe<T>(T);

impl<T: BrokerApi + Send + Sync + 'static> ShareProbe<T> {
    fn share(self) -> Option<SharedBroker> {
        Some(Arc::new(self.0))
    }
}

#[allow(dead_code, reason = "used only when Broker is not Send + Sync")]
trait NotShareable {
    fn share(self) -> Option<SharedBroker>;
}

impl<T> NotShareable for ShareProbe<T> {
    fn share(self) -> Option<SharedBroker> {
        None
    }
}

/// Returns a new broker that threads can share.
///
/// # Panics
///
/// Panics with advice when `Broker` is not `Send + Sync`.
fn shared_broker() -> SharedBroker {
    ShareProbe(Broker::new()).share().unwrap_or_else(|| {
        panic!(
            "Broker is not Send + Sync, so threads cannot share it in an Arc. Keep its \
             state in types that are, such as std::sync::Mutex instead of RefCell or Cell, \
             and Arc instead of Rc"
        )
    })
}

/// Joins `handle`, re-raising the thread's own panic so that its message is
/// the one the learner reads.
fn join<T>(handle: JoinHandle<T>) -> T {
    handle
        .join()
        .unwrap_or_else(|payload: Box<dyn Any + Send>| std::panic::resume_unwind(payload))
}

/// Checks that four threads can share one broker. All subscribe, then all
/// publish, and each finds the four messages in its buffer.
fn broker_is_shared_across_threads() {
    const THREADS: usize = 4;
    let broker = shared_broker();
    let subscribed = Arc::new(Barrier::new(THREADS));
    let published = Arc::new(Barrier::new(THREADS));

    let handles: Vec<_> = (0..THREADS)
        .map(|worker| {
            let broker = Arc::clone(&broker);
            let subscribed = Arc::clone(&subscribed);
            let published = Arc::clone(&published);
            thread::spawn(move || {
                // Everyone subscribes before anyone publishes.
                let mut receiver = broker.subscribe("all");
                subscribed.wait();
                broker.publish("all", format!("hello from thread {worker}"));

                // Publish queues a message before it returns, so after the
                // barrier all four are in this thread's buffer.
                published.wait();
                let mut received = Vec::new();
                loop {
                    match receiver.try_recv() {
                        Ok(text) => received.push(text),
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => panic!(
                            "thread {worker}'s receiver ended although the broker was never \
                             closed"
                        ),
                    }
                }
                received.sort();
                received
            })
        })
        .collect();

    let expected: Vec<String> = (0..THREADS)
        .map(|worker| format!("hello from thread {worker}"))
        .collect();
    for (worker, handle) in handles.into_iter().enumerate() {
        let received = join(handle);
        assert!(
            received == expected,
            "thread {worker} subscribed to \"all\", then each of {THREADS} threads published \
             one message there. After every publish had returned, thread {worker} expected \
             {expected:?} in its buffer, but it found {received:?} (both sorted)"
        );
    }
}

// ---------------------------------------------------------------------------
// Stress
// ---------------------------------------------------------------------------

const PUBLISHERS: usize = 4;
const PER_PUBLISHER: usize = 5_000;
const FREE_READERS: usize = 2;
const CHURN_ROUNDS: usize = 200;
const ELSEWHERE_MESSAGES: usize = 500;
/// Wall-clock bound on waiting for the readers to end after close. With a
/// correct broker they end at once, because each has at most a buffer's worth
/// of messages left to read.
const END_LIMIT: Duration = Duration::from_secs(2);

/// What one reader saw of the "stress" topic.
#[derive(Debug, Default)]
struct Seen {
    received: usize,
    // Next sequence number expected from each publisher.
    next: HashMap<usize, usize>,
    problems: Vec<String>,
}

impl Seen {
    /// Records `text`. When it skips part of its publisher's sequence,
    /// returns the publisher and the first sequence number that was skipped.
    fn record(&mut self, text: &str) -> Option<(usize, usize)> {
        self.received += 1;
        let Some((publisher, sequence)) = parse_stress(text) else {
            self.problem(format!(
                "received {text:?}, which was not published on \"stress\""
            ));
            return None;
        };
        let expected = self.next.insert(publisher, sequence + 1).unwrap_or(0);
        if sequence < expected {
            self.problem(format!(
                "received message {sequence} of publisher {publisher} after message {} of the \
                 same publisher (out of order or twice)",
                expected - 1
            ));
        }
        (sequence > expected).then_some((publisher, expected))
    }

    fn problem(&mut self, text: String) {
        // A few examples are enough to explain the failure.
        if self.problems.len() < 3 {
            self.problems.push(text);
        }
    }
}

fn stress_text(publisher: usize, sequence: usize) -> String {
    format!("{publisher}:{sequence}")
}

fn parse_stress(text: &str) -> Option<(usize, usize)> {
    let (publisher, sequence) = text.split_once(':')?;
    let publisher = publisher.parse().ok().filter(|&p| p < PUBLISHERS)?;
    let sequence = sequence.parse().ok().filter(|&s| s < PER_PUBLISHER)?;
    Some((publisher, sequence))
}

/// Hands out publishing permits and takes them back as the gated reader
/// reads, so that reader never has more than [`CAPACITY`] messages waiting.
struct Gate {
    permits: Mutex<std::sync::mpsc::Receiver<()>>,
}

impl Gate {
    /// Creates a gate with `CAPACITY` permits and returns it with the sender
    /// that returns permits. Dropping that sender opens the gate for good
    /// once the remaining permits are used.
    fn new() -> (Gate, SyncSender<()>) {
        let (give_back, permits) = sync_channel(CAPACITY);
        for _ in 0..CAPACITY {
            give_back
                .send(())
                .expect("the permit channel has room for CAPACITY permits");
        }
        let gate = Gate {
            permits: Mutex::new(permits),
        };
        (gate, give_back)
    }

    fn wait(&self) {
        let permits = self.permits.lock().unwrap_or_else(|err| err.into_inner());
        // An error means the gate was opened, so publishing goes on unchecked.
        let _ = permits.recv();
    }
}

/// Runs four publishers, readers that read as fast as they can, a reader that
/// never reads, subscribers that come and go, and traffic on another topic,
/// all at once, and checks what every reader saw.
///
/// Every expectation follows from the contract alone:
/// - the gated reader never has more than 16 messages waiting, because each
///   publish takes a permit and the reader returns one only after reading a
///   message, so it gets all 20,000 messages;
/// - every reader sees each publisher's messages in publish order, at most
///   once, and only messages from its topic;
/// - the reader that never reads subscribed before the first publish, so its
///   buffer contains exactly the first 16 messages sent to it;
/// - after close, every receiver ends, which lets every thread finish.
fn stress_concurrent_publish_subscribe() {
    let broker = shared_broker();
    let (gate, give_back) = Gate::new();
    let gate = Arc::new(gate);
    let total = PUBLISHERS * PER_PUBLISHER;

    // Subscribe the readers before anything is published.
    let mut gated_receiver = broker.subscribe("stress");
    let free_receivers: Vec<_> = (0..FREE_READERS)
        .map(|_| broker.subscribe("stress"))
        .collect();
    let mut idle = broker.subscribe("stress");

    // Each reader keeps a clone of `reader_running` until it finishes, so
    // `readers_done` disconnects once every reader has finished.
    let (reader_running, readers_done) = std::sync::mpsc::channel::<()>();

    // The gated reader returns a permit for each message. A gap means that a
    // message was lost, and its permit with it, so it opens the gate to keep
    // the publishers from waiting forever, and the check fails at the end.
    let running = reader_running.clone();
    let gated = thread::spawn(move || {
        let _running = running;
        let mut seen = Seen::default();
        let mut give_back = Some(give_back);
        while let Some(text) = gated_receiver.blocking_recv() {
            if let Some((publisher, missing)) = seen.record(&text) {
                if give_back.take().is_some() {
                    seen.problem(format!(
                        "message {missing} of publisher {publisher} never arrived, but a later \
                         one of the same publisher did"
                    ));
                }
            }
            if let Some(sender) = &give_back {
                // A message from another topic returns a permit that no
                // publisher took, so a full gate just discards it.
                let _ = sender.try_send(());
            }
        }
        seen
    });
    let free: Vec<_> = free_receivers
        .into_iter()
        .map(|mut receiver| {
            let running = reader_running.clone();
            thread::spawn(move || {
                let _running = running;
                let mut seen = Seen::default();
                while let Some(text) = receiver.blocking_recv() {
                    seen.record(&text);
                }
                seen
            })
        })
        .collect();

    // Publishers, each with its own sequence.
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|publisher| {
            let broker = Arc::clone(&broker);
            let gate = Arc::clone(&gate);
            thread::spawn(move || {
                for sequence in 0..PER_PUBLISHER {
                    gate.wait();
                    broker.publish("stress", stress_text(publisher, sequence));
                }
            })
        })
        .collect();

    // Subscribers that come and go while messages flow.
    let churn = {
        let broker = Arc::clone(&broker);
        thread::spawn(move || {
            let mut seen = Seen::default();
            for round in 0..CHURN_ROUNDS {
                let mut receiver = broker.subscribe("stress");
                seen.next.clear();
                for _ in 0..round % 4 {
                    match receiver.try_recv() {
                        Ok(text) => {
                            seen.record(&text);
                        }
                        Err(_) => thread::yield_now(),
                    }
                }
            }
            seen
        })
    };

    // Traffic on another topic, read back after each publish.
    let elsewhere = {
        let broker = Arc::clone(&broker);
        thread::spawn(move || {
            let mut receiver = broker.subscribe("elsewhere");
            let mut problems = Vec::new();
            for index in 0..ELSEWHERE_MESSAGES {
                let text = format!("elsewhere {index}");
                broker.publish("elsewhere", text.clone());
                match receiver.try_recv() {
                    Ok(got) if got == text => {}
                    Ok(got) => problems.push(format!("expected {text:?}, received {got:?}")),
                    Err(TryRecvError::Empty) => {
                        problems.push(format!("expected {text:?}, found the buffer empty"));
                    }
                    Err(TryRecvError::Disconnected) => {
                        problems.push(format!("expected {text:?}, but the receiver had ended"));
                    }
                }
                if problems.len() >= 3 {
                    break;
                }
            }
            problems
        })
    };

    // Once every publisher is done, close, which ends every reader.
    for publisher in publishers {
        join(publisher);
    }
    let churned = join(churn);
    let elsewhere_problems = join(elsewhere);
    broker.close();
    drop(reader_running);
    wait_for_readers(&readers_done, &gated, &free);
    let gated_seen = join(gated);
    let free_seen: Vec<Seen> = free.into_iter().map(join).collect();
    let mut idle_seen = Seen::default();
    while let Ok(text) = idle.try_recv() {
        idle_seen.record(&text);
    }

    // Check what each one saw.
    assert!(
        gated_seen.problems.is_empty(),
        "a subscriber that never had more than {CAPACITY} messages waiting, so never had a \
         full buffer, should receive all {total} messages of {PUBLISHERS} concurrent \
         publishers, each publisher's in order. It saw: {:?}",
        gated_seen.problems
    );
    assert!(
        gated_seen.received == total,
        "a subscriber that never had more than {CAPACITY} messages waiting should receive all \
         {total} messages of {PUBLISHERS} concurrent publishers, but it received {}",
        gated_seen.received
    );
    for (index, seen) in free_seen.iter().enumerate() {
        assert!(
            seen.problems.is_empty(),
            "reader {index}, which reads as fast as it can, saw wrong messages: {:?}",
            seen.problems
        );
        assert!(
            seen.received <= total,
            "reader {index}, which reads as fast as it can, received {} messages, but only \
             {total} were published",
            seen.received
        );
    }
    assert!(
        idle_seen.problems.is_empty(),
        "the subscriber that never read saw wrong messages: {:?}",
        idle_seen.problems
    );
    assert!(
        idle_seen.received == CAPACITY,
        "a subscriber that never read, subscribed before {total} messages were published, \
         should hold exactly the first {CAPACITY} after close, but it held {}",
        idle_seen.received
    );
    assert!(
        churned.problems.is_empty(),
        "subscribers that came and went during publishing saw wrong messages: {:?}",
        churned.problems
    );
    assert!(
        elsewhere_problems.is_empty(),
        "a subscriber of \"elsewhere\" should find each of its own messages in its buffer \
         right after publishing it, also while \"stress\" is busy. It saw: \
         {elsewhere_problems:?}"
    );
}

/// Waits up to [`END_LIMIT`] for every reader thread to finish after close.
///
/// # Panics
///
/// Panics when a reader is still waiting in `blocking_recv()` by then, which
/// means that close left its receiver open.
fn wait_for_readers(
    readers_done: &std::sync::mpsc::Receiver<()>,
    gated: &JoinHandle<Seen>,
    free: &[JoinHandle<Seen>],
) {
    // No reader sends anything, so the wait ends when the last one finishes
    // and drops its sender, or at the limit.
    if readers_done.recv_timeout(END_LIMIT) != Err(RecvTimeoutError::Timeout) {
        return;
    }
    let readers = 1 + free.len();
    let waiting = std::iter::once(gated)
        .chain(free)
        .filter(|reader| !reader.is_finished())
        .count();
    panic!(
        "{waiting} of {readers} subscribers of \"stress\" were still waiting in \
         blocking_recv() {} s after close() returned. Close must end every receiver once its \
         buffered messages are read (a receiver ends when every Sender of its channel is \
         dropped)",
        END_LIMIT.as_secs()
    );
}

//! Grading suite for task 1: the checks that decide whether `Broker` keeps
//! its contract.
//!
//! Each check passes when it returns and fails when it panics, and its
//! assertion messages are what the learner reads. Most checks run on paused
//! tokio time, so waiting for a message that never comes costs no real time.
//! The last three checks use real threads, and they reach the broker through
//! [`shared_broker`]. That way, a `Broker` that is not `Send + Sync` fails
//! those checks with a message instead of stopping this file from compiling.

use std::any::Any;
use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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
        .check(
            "many_topics_stay_separate",
            "Broker::publish",
            many_topics_stay_separate,
        )
        // A publish that waits for room never returns on a single thread. One
        // that waits a little each time adds up to more than the time limit
        // here. Either way these two fail by their time limit when nothing
        // else catches them.
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
            .timeout_cause(WAITS_FOR_IDLE),
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
                "subscribe_racing_close_is_ended",
                "Broker::subscribe and Broker::close",
                subscribe_racing_close_is_ended,
            )
            .time_limit(Duration::from_secs(30))
            .timeout_cause(RACE_TIMEOUT),
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

/// Timeout cause of the check that publishes 1,000 messages to a full buffer.
const WAITS_FOR_SPACE: &str = "likely Broker::publish waiting for space in a full buffer, which \
     never frees up here because its subscriber does not read. This check publishes 1,000 \
     messages to that full buffer, so even a short wait for each of them adds up past the time \
     limit. Publish must skip a subscriber whose buffer is full and return at once";

/// Timeout cause of the check with 100 subscribers that never read.
const WAITS_FOR_IDLE: &str = "likely Broker::publish waiting for space in the full buffers of \
     the 100 subscribers here that never read, so their buffers never free up. Even a short \
     wait, once for each full subscriber, adds up past the time limit. Publish must skip a \
     subscriber whose buffer is full and return at once";

/// Timeout cause of the check in which subscribe races close, which runs
/// 20,000 short rounds on two threads.
const RACE_TIMEOUT: &str = "likely a deadlock between subscribe() and close() running at the \
     same time on two threads, or a subscribe() or close() that waits for something";

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

/// Checks that a message reaches the subscribers of exactly its topic. It
/// must not reach a topic that it is a prefix of, or one that is a prefix of
/// it, differs in case, or extends it by a `/` or `.` segment.
fn publish_skips_other_topics() {
    paused("Broker::publish", async {
        // One subscriber on each of several similar topics.
        let broker = Broker::default();
        let topics = [
            "news",
            "news.sports",
            "new",
            "News",
            "sports",
            "a",
            "a/b",
            "ab",
            "a.b",
        ];
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
                         (topics must match exactly, not by prefix, by segment or \
                         ignoring case)"
                    );
                    expect_nothing(receiver, &context).await;
                }
            }
        }
    });
}

/// Number of topics in [`many_topics_stay_separate`]. A broker that hashes
/// topics into a fixed table with fewer buckets than this must put several
/// topics in one bucket.
const MANY_TOPICS: usize = 1_000;

/// Checks that 1,000 topics with one subscriber each keep their messages
/// apart. One message is published on each topic, and each subscriber
/// receives exactly the message of its own topic.
fn many_topics_stay_separate() {
    // "t0" to "t999": one subscriber on each.
    let broker = Broker::new();
    let topics: Vec<String> = (0..MANY_TOPICS).map(|index| format!("t{index}")).collect();
    let mut receivers: Vec<_> = topics.iter().map(|topic| broker.subscribe(topic)).collect();

    // One message per topic, naming the topic it was published on.
    for topic in &topics {
        broker.publish(topic, format!("for {topic}"));
    }

    // Publish has queued each message before returning, so `try_recv` finds
    // everything each subscriber was sent.
    for (topic, receiver) in topics.iter().zip(receivers.iter_mut()) {
        let mut received = Vec::new();
        let ended = loop {
            match receiver.try_recv() {
                Ok(text) => received.push(text),
                Err(TryRecvError::Empty) => break false,
                Err(TryRecvError::Disconnected) => break true,
            }
        };
        let own = format!("for {topic}");
        let situation = format!(
            "after one message was published on each of {MANY_TOPICS} topics (\"t0\" to \
             \"t{}\", one subscriber each)",
            MANY_TOPICS - 1
        );
        if let Some(foreign) = received.iter().find(|text| **text != own) {
            let origin = foreign.strip_prefix("for ").unwrap_or(foreign);
            panic!(
                "the subscriber of {topic:?} received {foreign:?}, which was published on \
                 {origin:?}, {situation}. Topics must match exactly: keep each topic's name \
                 as its key and compare whole names, because different topics can share a \
                 hash bucket or a prefix"
            );
        }
        assert!(
            received.len() == 1,
            "the subscriber of {topic:?} received its own message {own:?} {} times, but \
             expected it once, {situation}",
            received.len()
        );
        assert!(
            !ended,
            "the receiver of the subscriber of {topic:?} had ended {situation}, although the \
             broker was never closed"
        );
    }
}

/// Messages published to a full buffer in [`full_buffer_drops_new_messages`].
/// A publish that waits even a few milliseconds of real time for room, each
/// time it meets the full buffer, runs past the check's time limit.
/// [`WAITS_FOR_SPACE`] states this number.
const OVERFLOW: usize = 1_000;

/// Idle subscribers in [`full_subscriber_does_not_starve_others`]. A publish
/// that waits a fraction of a second once for each full subscriber runs past
/// the check's time limit. [`WAITS_FOR_IDLE`] states this number.
const IDLE_SUBSCRIBERS: usize = 100;

/// Checks that publish drops a new message at once when the buffer is full.
/// The first 16 arrive in order, the 1,000 after them never do, and reading
/// makes room again.
fn full_buffer_drops_new_messages() {
    paused("Broker::publish", async {
        assert_eq!(
            BUFFER, CAPACITY,
            "BUFFER is {BUFFER}, but the task asks for a channel capacity of {CAPACITY} messages"
        );

        // Publish far more than fits, without reading. Each call must return
        // at once, which a publish that waits for room never does here.
        let broker = Broker::new();
        let mut receiver = broker.subscribe("jobs");
        let published = CAPACITY + OVERFLOW;
        for index in 0..published {
            broker.publish("jobs", format!("job {index}"));
        }

        // The first 16 are buffered in order, and the rest were dropped.
        for index in 0..CAPACITY {
            let context =
                format!("a subscriber that had not read while {published} messages were published");
            expect_message(&mut receiver, &format!("job {index}"), &context).await;
        }
        let context = format!(
            "after reading the first {CAPACITY} messages (\"job {CAPACITY}\" to \"job {}\" \
             were published while the buffer held {CAPACITY} messages, so they should have \
             been dropped)",
            published - 1
        );
        expect_nothing(&mut receiver, &context).await;

        // Reading emptied the buffer, so new messages fit again.
        broker.publish("jobs", "after reading".to_owned());
        let context = "a subscriber that emptied its full buffer, after one more publish";
        expect_message(&mut receiver, "after reading", context).await;
    });
}

/// Checks that subscribers that never read lose messages themselves but never
/// cost another subscriber a message.
fn full_subscriber_does_not_starve_others() {
    paused("Broker::publish", async {
        // The idle subscribers come first, so they are the ones a publish
        // meets first when it walks the subscribers in order.
        let broker = Broker::new();
        let mut idle: Vec<_> = (0..IDLE_SUBSCRIBERS)
            .map(|_| broker.subscribe("ticks"))
            .collect();
        let mut reader = broker.subscribe("ticks");

        // The reader reads after every publish and gets every message, also
        // once the idle subscribers' buffers are full.
        for index in 0..2 * CAPACITY {
            let text = format!("tick {index}");
            broker.publish("ticks", text.clone());
            let context = format!(
                "a subscriber that reads after every publish, while {IDLE_SUBSCRIBERS} other \
                 subscribers of \"ticks\" never read (publish {} of {})",
                index + 1,
                2 * CAPACITY
            );
            expect_message(&mut reader, &text, &context).await;
        }

        // Each idle subscriber kept the first 16 only.
        for (number, receiver) in idle.iter_mut().enumerate() {
            for index in 0..CAPACITY {
                let context = format!(
                    "idle subscriber {number}, which did not read while {} messages were \
                     published",
                    2 * CAPACITY
                );
                expect_message(receiver, &format!("tick {index}"), &context).await;
            }
            let context = format!(
                "idle subscriber {number} after its first {CAPACITY} messages (the rest found \
                 its buffer full and should have been dropped)"
            );
            expect_nothing(receiver, &context).await;
        }
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

    // The topics and messages exist before counting starts, so only publish
    // is measured. Each call uses a topic never seen before, so a publish that
    // inserts an entry for an unknown topic allocates in every call, not only
    // in the first.
    let topics: Vec<String> = (0..CALLS).map(|index| format!("quiet-{index}")).collect();
    let messages: Vec<String> = (0..CALLS).map(|index| format!("message {index}")).collect();

    // One call first, so that one-time setup in the first call does not count.
    broker.publish("warm-up", "warm-up".to_owned());

    let allocations = count_allocations(|| {
        for (topic, message) in topics.iter().zip(messages) {
            broker.publish(topic, message);
        }
    });
    assert!(
        allocations == 0,
        "{CALLS} publishes on {situation}, each on a different topic without subscribers \
         (\"quiet-0\" to \"quiet-{}\"), made {allocations} heap allocations, but publish \
         should make none there. Look the topic up by &str (HashMap<String, _>::get accepts \
         one) instead of building a String key, and do not insert an entry for a topic \
         nobody subscribed to",
        CALLS - 1
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

/// Rounds of [`subscribe_racing_close_is_ended`].
const RACE_ROUNDS: usize = 20_000;
/// Subscribes per round before the subscribing thread waits for close, so
/// that a round stays short when the closing thread is slow to run.
const RACE_SUBSCRIBES: usize = 64;

/// Checks that a subscribe that runs at the same time as close returns a
/// receiver that ends, whichever of the two takes the lock first.
///
/// In each round, on a new broker, this thread subscribes again and again
/// while a second thread closes the broker once. A subscribe that goes first
/// has its sender dropped by close, and one that comes after close returns an
/// ended receiver, so once close has returned every receiver must have ended.
/// A subscribe that checks the closed flag, releases the lock and takes it
/// again to insert its sender leaves a receiver open whenever close runs in
/// between.
// NOTE: this check is probabilistic, because it fails only in rounds where
// close lands in that gap. Measured on 2 cores at a load average of about
// 3.5, it failed 30 of 30 full-suite runs against a subscribe that creates its
// channel in the gap (by round 627, median 4). It also failed 30 of 30 against
// one that only releases and retakes the lock (by round 959, median 132).
// Pinned to one core, it failed 5 of 5 runs against the first and 0 of 5
// against the second.
fn subscribe_racing_close_is_ended() {
    thread::scope(|scope| {
        // Dropping `rounds`, also while a failed check unwinds, ends the
        // closing thread.
        let (rounds, next_rounds) = std::sync::mpsc::channel::<Arc<RaceRound>>();
        let closer = scope.spawn(move || {
            for round in next_rounds {
                round.close_when_due();
            }
        });

        for number in 1..=RACE_ROUNDS {
            let round = Arc::new(RaceRound {
                broker: shared_broker(),
                started: AtomicBool::new(false),
                subscribed: AtomicUsize::new(0),
                close_after: 1 + number % 8,
                close_delay: number * 7 % 256,
                close_returned: AtomicBool::new(false),
            });
            if rounds.send(Arc::clone(&round)).is_err() {
                break;
            }
            let Some(receivers) = round.subscribe_until_closed(&closer) else {
                break;
            };
            check_race_receivers(number, receivers);
        }

        // The closing thread stops early only when close panicked.
        drop(rounds);
        if let Err(payload) = closer.join() {
            std::panic::resume_unwind(payload);
        }
    });
}

/// One round of [`subscribe_racing_close_is_ended`], shared by its two
/// threads.
struct RaceRound {
    broker: SharedBroker,
    // Set by the closing thread once it has the round.
    started: AtomicBool,
    subscribed: AtomicUsize,
    // Number of subscribes after which the closing thread closes the broker.
    close_after: usize,
    // Spins between that and close.
    close_delay: usize,
    close_returned: AtomicBool,
}

impl RaceRound {
    /// Closes the broker once `close_after` subscribes have returned and
    /// `close_delay` spins have passed. Returns without closing when the
    /// subscribing thread dropped the round, which it does only while a panic
    /// unwinds.
    fn close_when_due(self: Arc<Self>) {
        self.started.store(true, Ordering::Release);
        let mut waited = 0_u32;
        while self.subscribed.load(Ordering::Acquire) < self.close_after {
            if Arc::strong_count(&self) == 1 {
                return;
            }
            pause(&mut waited);
        }
        // A delay that varies from round to round lets close land at every
        // point of the subscribe that is running by then.
        for _ in 0..self.close_delay {
            std::hint::spin_loop();
        }
        self.broker.close();
        self.close_returned.store(true, Ordering::Release);
    }

    /// Subscribes to "race" until close has returned, and once more after
    /// that, and returns every receiver. Returns `None` when the closing
    /// thread has finished without closing, which means that it panicked.
    fn subscribe_until_closed<T>(
        &self,
        closer: &thread::ScopedJoinHandle<'_, T>,
    ) -> Option<Vec<Receiver<String>>> {
        // Start only once the closing thread is running, so that both are.
        let mut waited = 0_u32;
        while !self.started.load(Ordering::Acquire) {
            if closer.is_finished() {
                return None;
            }
            pause(&mut waited);
        }

        let mut receivers = Vec::new();
        let mut waited = 0_u32;
        loop {
            let closed = self.close_returned.load(Ordering::Acquire);
            if closed || receivers.len() < RACE_SUBSCRIBES {
                receivers.push(self.broker.subscribe("race"));
                self.subscribed.fetch_add(1, Ordering::Release);
            } else if closer.is_finished() {
                return None;
            } else {
                pause(&mut waited);
            }
            if closed {
                return Some(receivers);
            }
        }
    }
}

/// Spins for the first waits and yields the processor after that, so that
/// the other thread runs also on a single core.
fn pause(waited: &mut u32) {
    *waited = waited.saturating_add(1);
    if *waited < 1_000 {
        std::hint::spin_loop();
    } else {
        thread::yield_now();
    }
}

/// Panics unless every receiver of round `number` has ended.
fn check_race_receivers(number: usize, receivers: Vec<Receiver<String>>) {
    // Nothing was published, so each receiver must report that it ended.
    let count = receivers.len();
    for (index, mut receiver) in receivers.into_iter().enumerate() {
        match receiver.try_recv() {
            Err(TryRecvError::Disconnected) => {}
            Err(TryRecvError::Empty) => panic!(
                "in round {number} of {RACE_ROUNDS}, one thread called subscribe(\"race\") \
                 {count} times while another called close() once, and after close had \
                 returned the receiver of subscribe {} was still open. Check the closed flag \
                 and insert the sender under one lock, without releasing it in between, or \
                 close can run in the gap and miss the new sender",
                index + 1
            ),
            Ok(text) => panic!(
                "in round {number} of {RACE_ROUNDS}, a subscriber of \"race\" that raced \
                 close() received {text:?}, although nothing was published"
            ),
        }
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

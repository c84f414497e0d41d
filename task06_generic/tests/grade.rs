//! Grading suite for task 6: a cancellable broker generic over its message
//! type.
//!
//! The first checks cover typed delivery: a struct goes through unchanged, a
//! message type that is only `Clone + Send` is accepted, and `on_drop`
//! receives the very message that did not fit. The middle checks count what
//! fan-out costs. Every clone of a [`Counted`] message increments a shared
//! counter, so a check reads how many clones one publish made, and the
//! counting allocator in this file counts its heap allocations. The last checks
//! cover task 5's lifetimes briefly: cancel, close, no task left behind, and
//! publishers on several threads.
//!
//! Every check but the last runs on a current-thread runtime with paused
//! time, so waiting costs no real time, and nothing else runs between two
//! statements that have no `.await` between them. A receiver "ends within" a
//! virtual duration when `recv()` returns `None` before that much virtual
//! time has passed.

use std::cell::Cell;
use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use task06_generic::{Broker, DEFAULT_BUFFER, SubscribeOptions};
use testkit::alloc::{CountingAllocator, count_allocations};
use testkit::grading::Check;
use testkit::runtime::{multi_thread, paused};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;
use tokio_util::sync::CancellationToken;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn main() -> std::process::ExitCode {
    testkit::suite!()
        .check(
            "typed_round_trip_delivers_struct",
            "Broker::publish",
            typed_round_trip_delivers_struct,
        )
        .check(
            "message_needs_only_clone_and_send",
            "Broker<T>",
            message_needs_only_clone_and_send,
        )
        .check(
            "buffer_option_sets_capacity",
            "SubscribeOptions::buffer",
            buffer_option_sets_capacity,
        )
        .check(
            "on_drop_receives_dropped_message",
            "SubscribeOptions::on_drop",
            on_drop_receives_dropped_message,
        )
        .check(
            "publish_clones_at_most_once_each",
            "Broker::publish",
            publish_clones_at_most_once_each,
        )
        .check(
            "publish_to_nobody_clones_nothing",
            "Broker::publish",
            publish_to_nobody_clones_nothing,
        )
        .check(
            "cancelled_subscribers_cost_no_clones",
            "Broker::publish",
            cancelled_subscribers_cost_no_clones,
        )
        .check(
            "full_buffers_clone_at_most_once_each",
            "Broker::publish",
            full_buffers_clone_at_most_once_each,
        )
        .check(
            "publish_to_nobody_allocates_nothing",
            "Broker::publish",
            publish_to_nobody_allocates_nothing,
        )
        .check(
            "cancelled_topic_publish_allocates_nothing",
            "Broker::publish",
            cancelled_topic_publish_allocates_nothing,
        )
        .check(
            "cancel_ends_receiver_and_topic",
            "Broker::subscribe",
            cancel_ends_receiver_and_topic,
        )
        .check(
            "close_ends_every_receiver",
            "Broker::close",
            close_ends_every_receiver,
        )
        .check(
            "close_leaves_no_task_alive",
            "Broker::close",
            close_leaves_no_task_alive,
        )
        .add_check(
            Check::new(
                "concurrent_typed_publish_stays_exact",
                "Broker",
                concurrent_typed_publish_stays_exact,
            )
            .time_limit(Duration::from_secs(20))
            .timeout_cause(CONCURRENT_TIMEOUT),
        )
        .run()
}

/// Timeout cause of the check with publishers on several threads.
const CONCURRENT_TIMEOUT: &str = "likely a deadlock between publishers on several threads, or \
     close() waiting for a task that never finishes. Publish must never wait while it holds \
     the broker's lock, and close must stop every task it waits for";

/// Virtual time within which a receiver must get a message or end.
const PROMPTLY: Duration = Duration::from_millis(1);

/// Virtual time that close() may take before a check calls it stuck.
const CLOSE_LIMIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// Message types
// ---------------------------------------------------------------------------

/// A typed message with no heap data, so creating or cloning one allocates
/// nothing.
#[derive(Clone, Debug, PartialEq)]
struct Order {
    id: u32,
    quantity: u16,
    price_cents: u64,
}

impl Order {
    fn numbered(id: u32) -> Order {
        Order {
            id,
            quantity: 1 + (id % 5) as u16,
            price_cents: 250 * u64::from(id) + 99,
        }
    }
}

/// Returns the orders with the ids in `ids`, in order.
fn orders(ids: std::ops::Range<u32>) -> Vec<Order> {
    ids.map(Order::numbered).collect()
}

/// A message that counts its clones: every `clone()` increments the counter
/// that all copies share. Cloning it allocates nothing.
#[derive(Debug)]
struct Counted {
    id: u32,
    clones: Arc<AtomicUsize>,
}

impl Clone for Counted {
    fn clone(&self) -> Counted {
        self.clones.fetch_add(1, Ordering::SeqCst);
        Counted {
            id: self.id,
            clones: Arc::clone(&self.clones),
        }
    }
}

impl PartialEq for Counted {
    fn eq(&self, other: &Counted) -> bool {
        self.id == other.id
    }
}

/// The clone counter of one check.
#[derive(Default)]
struct CloneCounter(Arc<AtomicUsize>);

impl CloneCounter {
    /// Returns a new message with `id` whose clones this counter counts.
    fn message(&self, id: u32) -> Counted {
        Counted {
            id,
            clones: Arc::clone(&self.0),
        }
    }

    /// Returns how many clones `work` made of this counter's messages.
    fn clones_during(&self, work: impl FnOnce()) -> usize {
        let before = self.0.load(Ordering::SeqCst);
        work();
        self.0.load(Ordering::SeqCst) - before
    }
}

/// A message that is `Clone + Send` and nothing more: not `Sync` (because of
/// the `Cell`), not `Debug`, not `PartialEq`, not `Default`.
#[derive(Clone)]
struct Tally {
    count: Cell<u32>,
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// What a receiver should do once its buffered messages are read.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Then {
    /// Stay open: no message and no end within the wait.
    StayOpen,
    /// End: `recv()` returns `None`.
    End,
}

/// What a receiver yielded until it ended or went quiet.
struct Drained<T> {
    messages: Vec<T>,
    // `true` when `recv()` returned `None`, `false` when a wait timed out.
    ended: bool,
}

/// Reads `receiver` until it ends or yields nothing for `limit` of virtual
/// time.
async fn read_until_end<T>(receiver: &mut mpsc::Receiver<T>, limit: Duration) -> Drained<T> {
    let mut messages = Vec::new();
    loop {
        match tokio::time::timeout(limit, receiver.recv()).await {
            Ok(Some(message)) => messages.push(message),
            Ok(None) => {
                return Drained {
                    messages,
                    ended: true,
                };
            }
            Err(_) => {
                return Drained {
                    messages,
                    ended: false,
                };
            }
        }
    }
}

/// Describes a list of messages the way a failure message shows it.
fn describe<T: Debug>(messages: &[T]) -> String {
    if messages.is_empty() {
        "nothing".to_owned()
    } else {
        format!("{messages:?}")
    }
}

/// Reads `receiver` and panics unless it yields exactly `expected`, in
/// order, and then stays open or ends as `then` requests, within
/// [`PROMPTLY`] of virtual time.
///
/// The message reads "{situation}, expected {who} to get … and …, but it got
/// … and …", followed by `advice` when that is not empty.
async fn expect_received<T: Debug + PartialEq>(
    receiver: &mut mpsc::Receiver<T>,
    who: &str,
    expected: &[T],
    then: Then,
    situation: &str,
    advice: &str,
) {
    let drained = read_until_end(receiver, PROMPTLY).await;
    if drained.messages == expected && drained.ended == (then == Then::End) {
        return;
    }

    let expected_end = match then {
        Then::StayOpen => "stay open",
        Then::End => "end",
    };
    let actual_end = if drained.ended {
        "had ended"
    } else {
        "was still open"
    };
    let mut message = format!(
        "{situation}, expected {who} to get {} and {expected_end}, but it got {} and \
         {actual_end}",
        describe(expected),
        describe(&drained.messages)
    );
    if !advice.is_empty() {
        message.push_str(". ");
        message.push_str(advice);
    }
    panic!("{message}");
}

/// Panics unless `actual`, the value that `call` returned, is `expected`.
#[track_caller]
fn expect_count(call: &str, actual: usize, expected: usize, situation: &str) {
    assert!(
        actual == expected,
        "{call} returned {actual}, but expected {expected} {situation}"
    );
}

/// Panics unless a publish made at most `limit` clones.
#[track_caller]
fn expect_clones_at_most(clones: usize, limit: usize, situation: &str, advice: &str) {
    let allowed = if limit == 0 {
        "must not clone it at all".to_owned()
    } else {
        format!("may clone it at most {}", times(limit))
    };
    assert!(
        clones <= limit,
        "{situation}, publish cloned the message {}, but it {allowed}. {advice}",
        times(clones)
    );
}

/// Describes a count of clones: "once", "twice" or "5 times".
fn times(count: usize) -> String {
    match count {
        1 => "once".to_owned(),
        2 => "twice".to_owned(),
        _ => format!("{count} times"),
    }
}

/// Describes a count of heap allocations: "1 heap allocation" or "3 heap
/// allocations".
fn describe_allocations(count: usize) -> String {
    if count == 1 {
        "1 heap allocation".to_owned()
    } else {
        format!("{count} heap allocations")
    }
}

/// Returns the number of tasks alive on the current runtime.
fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Gives every task that is ready to run a turn. In paused time the sleep
/// ends once all other tasks are idle, [`PROMPTLY`] later in virtual time.
async fn let_tasks_run() {
    tokio::time::sleep(PROMPTLY).await;
}

/// Closes `broker` and panics if close() has not returned within
/// [`CLOSE_LIMIT`] of virtual time.
async fn close_within_limit<T: Clone + Send + 'static>(broker: &Broker<T>, situation: &str) {
    if tokio::time::timeout(CLOSE_LIMIT, broker.close())
        .await
        .is_err()
    {
        panic!(
            "close() {situation} had not returned after {} s of virtual time. Close must stop \
             every task of the broker and then return; it waits for something that never \
             happens, such as TaskTracker::wait() on a tracker that was never closed with \
             TaskTracker::close()",
            CLOSE_LIMIT.as_secs()
        );
    }
}

/// What a recording `on_drop` callback has received.
type Recorded<T> = Arc<Mutex<Vec<T>>>;

/// Returns options whose `on_drop` callback records what it receives.
fn recording_options<T: Send + 'static>(buffer: usize) -> (SubscribeOptions<T>, Recorded<T>) {
    let dropped = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&dropped);
    let options = SubscribeOptions::default()
        .with_buffer(buffer)
        .with_on_drop(move |message| {
            record
                .lock()
                .unwrap_or_else(|err| err.into_inner())
                .push(message);
        });
    (options, dropped)
}

/// Returns what a recording `on_drop` callback has received so far.
fn recorded<T: Clone>(dropped: &Mutex<Vec<T>>) -> Vec<T> {
    dropped
        .lock()
        .unwrap_or_else(|err| err.into_inner())
        .clone()
}

/// Returns the ids of counted messages, for comparing without cloning them.
fn ids(messages: &[Counted]) -> Vec<u32> {
    messages.iter().map(|message| message.id).collect()
}

// ---------------------------------------------------------------------------
// Typed delivery
// ---------------------------------------------------------------------------

fn typed_round_trip_delivers_struct() {
    paused("Broker::publish", async {
        let broker: Broker<Order> = Broker::new();
        let token = CancellationToken::new();
        let options = SubscribeOptions::default;
        let mut first = broker.subscribe(token.clone(), "orders", options());
        let mut second = broker.subscribe(token.clone(), "orders", options());
        let mut refunds = broker.subscribe(token.clone(), "refunds", options());

        // One order to each topic; each subscriber gets exactly its topic's.
        let order = Order::numbered(7);
        let refund = Order::numbered(8);
        broker.publish("orders", order.clone());
        broker.publish("refunds", refund.clone());
        let situation = "after publishing Order 7 to \"orders\" and Order 8 to \"refunds\"";
        expect_received(
            &mut first,
            "the first subscriber of \"orders\"",
            std::slice::from_ref(&order),
            Then::StayOpen,
            situation,
            "The receiver must yield the published struct with every field unchanged",
        )
        .await;
        expect_received(
            &mut second,
            "the second subscriber of \"orders\"",
            std::slice::from_ref(&order),
            Then::StayOpen,
            situation,
            "Publish must deliver a copy to every subscriber of the topic",
        )
        .await;
        expect_received(
            &mut refunds,
            "the subscriber of \"refunds\"",
            std::slice::from_ref(&refund),
            Then::StayOpen,
            situation,
            "Publish must deliver only to subscribers of exactly that topic",
        )
        .await;

        // The counts follow the subscriptions.
        let count = broker.subscriber_count("orders");
        expect_count(
            "subscriber_count(\"orders\")",
            count,
            2,
            "with two subscribers",
        );
        let count = broker.topic_count();
        expect_count(
            "topic_count()",
            count,
            2,
            "with subscribers on \"orders\" and \"refunds\"",
        );
    });
}

fn message_needs_only_clone_and_send() {
    paused("Broker<T>", async {
        // This compiles only if the broker requires no more of T than
        // Clone + Send + 'static.
        let broker: Broker<Tally> = Broker::new();
        let token = CancellationToken::new();
        let mut receiver = broker.subscribe(token.clone(), "tallies", SubscribeOptions::default());

        // The message arrives with its value.
        broker.publish(
            "tallies",
            Tally {
                count: Cell::new(3),
            },
        );
        let received = tokio::time::timeout(PROMPTLY, receiver.recv()).await;
        let count = received.ok().flatten().map(|tally| tally.count.get());
        assert!(
            count == Some(3),
            "after publishing a Tally with count 3 to its only subscriber, the receiver \
             yielded {}, but expected that Tally",
            match count {
                Some(count) => format!("a Tally with count {count}"),
                None => "no message".to_owned(),
            }
        );
    });
}

fn buffer_option_sets_capacity() {
    paused("SubscribeOptions::buffer", async {
        let broker: Broker<u64> = Broker::new();
        let token = CancellationToken::new();
        let (default_options, default_dropped) = recording_options(0);
        let (small_options, small_dropped) = recording_options(3);
        let mut default_sized = broker.subscribe(token.clone(), "t", default_options);
        let mut small = broker.subscribe(token.clone(), "t", small_options);

        // Publish one more than the default buffer contains, reading nothing.
        let published: Vec<u64> = (0..=DEFAULT_BUFFER as u64).collect();
        for &number in &published {
            broker.publish("t", number);
        }

        // Buffer 0 means the default; buffer 3 means 3.
        let situation = format!(
            "after publishing the numbers 0 to {} to subscribers that read nothing",
            DEFAULT_BUFFER
        );
        expect_received(
            &mut default_sized,
            "the subscriber with buffer 0",
            &published[..DEFAULT_BUFFER],
            Then::StayOpen,
            &situation,
            &format!(
                "A buffer of 0 in SubscribeOptions means the default of {DEFAULT_BUFFER}, so \
                 the first {DEFAULT_BUFFER} arrive and the last is dropped"
            ),
        )
        .await;
        expect_received(
            &mut small,
            "the subscriber with buffer 3",
            &published[..3],
            Then::StayOpen,
            &situation,
            "SubscribeOptions::buffer sets how many messages the receiver buffers",
        )
        .await;

        // Each on_drop saw what did not fit.
        let dropped = recorded(&default_dropped);
        assert!(
            dropped == published[DEFAULT_BUFFER..],
            "{situation}, expected on_drop of the subscriber with buffer 0 to receive {}, but \
             it received {}",
            describe(&published[DEFAULT_BUFFER..]),
            describe(&dropped)
        );
        let dropped = recorded(&small_dropped);
        assert!(
            dropped == published[3..],
            "{situation}, expected on_drop of the subscriber with buffer 3 to receive {}, but \
             it received {}",
            describe(&published[3..]),
            describe(&dropped)
        );
    });
}

fn on_drop_receives_dropped_message() {
    paused("SubscribeOptions::on_drop", async {
        let broker: Broker<Order> = Broker::new();
        let token = CancellationToken::new();
        let (slow_options, slow_dropped) = recording_options(2);
        let (fast_options, fast_dropped) = recording_options(0);
        let mut slow = broker.subscribe(token.clone(), "t", slow_options);
        let mut fast = broker.subscribe(token.clone(), "t", fast_options);

        // Five orders to a buffer of 2 that nobody reads: the last three drop,
        // and on_drop has each of them by the time its publish returns.
        let published = orders(0..5);
        for (index, order) in published.iter().enumerate() {
            broker.publish("t", order.clone());
            let dropped = recorded(&slow_dropped);
            let expected = &published[2.min(index + 1)..index + 1];
            assert!(
                dropped == expected,
                "after publishing Orders 0 to {index} to a subscriber with buffer 2 that read \
                 nothing, expected its on_drop to have received {}, but it had received {}. \
                 When a buffer is full, on_drop must receive the message being published, \
                 the very one that did not fit, before publish returns",
                describe(expected),
                describe(&dropped)
            );
        }

        // The full buffer contains the first two; the other subscriber got
        // all five and dropped nothing.
        let situation = "after publishing Orders 0 to 4 to \"t\", where one subscriber has \
                         buffer 2";
        expect_received(
            &mut slow,
            "the subscriber with buffer 2",
            &published[..2],
            Then::StayOpen,
            situation,
            "A full buffer must drop new messages, not end the subscription",
        )
        .await;
        expect_received(
            &mut fast,
            "the subscriber with buffer 16",
            &published,
            Then::StayOpen,
            situation,
            "A full subscriber must not keep messages from the others",
        )
        .await;
        let dropped = recorded(&fast_dropped);
        assert!(
            dropped.is_empty(),
            "{situation}, the on_drop of the subscriber with room received {}, but it should \
             receive only messages that did not fit",
            describe(&dropped)
        );

        // With room again, the next order arrives and nothing more drops.
        let next = Order::numbered(5);
        broker.publish("t", next.clone());
        expect_received(
            &mut slow,
            "the subscriber with buffer 2",
            std::slice::from_ref(&next),
            Then::StayOpen,
            "after it emptied its full buffer and Order 5 was published",
            "Once a subscriber has room, the next message goes into its buffer",
        )
        .await;
        let dropped = recorded(&slow_dropped);
        assert!(
            dropped == published[2..],
            "after the subscriber with buffer 2 had room again and Order 5 was published, \
             its on_drop had received {}, but expected still only {}",
            describe(&dropped),
            describe(&published[2..])
        );
    });
}

// ---------------------------------------------------------------------------
// Clones
// ---------------------------------------------------------------------------

fn publish_clones_at_most_once_each() {
    paused("Broker::publish", async {
        for subscribers in [1, 2, 3, 16] {
            let counter = CloneCounter::default();
            let broker: Broker<Counted> = Broker::new();
            let token = CancellationToken::new();
            let mut receivers: Vec<_> = (0..subscribers)
                .map(|_| broker.subscribe(token.clone(), "t", SubscribeOptions::default()))
                .collect();

            // Each publish may clone once per subscriber, no more.
            for id in 0..3 {
                let message = counter.message(id);
                let clones = counter.clones_during(|| broker.publish("t", message));
                expect_clones_at_most(
                    clones,
                    subscribers,
                    &format!("publishing message {id} to a topic with {subscribers} subscribers"),
                    "Each subscriber needs one copy, and the original can be one of them. A \
                     clone made before the topic lookup, or one that is made and then \
                     thrown away, is one too many",
                );
            }

            // Every subscriber still got every message.
            for (index, receiver) in receivers.iter_mut().enumerate() {
                let drained = read_until_end(receiver, PROMPTLY).await;
                let received = ids(&drained.messages);
                assert!(
                    received == [0, 1, 2],
                    "after publishing messages 0, 1 and 2 to a topic with {subscribers} \
                     subscribers, subscriber {index} received {}, but expected [0, 1, 2]",
                    describe(&received)
                );
            }
        }
    });
}

fn publish_to_nobody_clones_nothing() {
    paused("Broker::publish", async {
        let counter = CloneCounter::default();
        let broker: Broker<Counted> = Broker::new();
        let advice = "Look the topic up first and return before making any copy when nobody \
                      subscribes to it";

        // A new broker has no subscribers at all.
        let message = counter.message(0);
        let clones = counter.clones_during(|| broker.publish("t", message));
        expect_clones_at_most(clones, 0, "publishing to a new broker", advice);

        // Subscribers of another topic do not count.
        let token = CancellationToken::new();
        let mut others: Vec<_> = (0..3)
            .map(|_| broker.subscribe(token.clone(), "other", SubscribeOptions::default()))
            .collect();
        let message = counter.message(1);
        let clones = counter.clones_during(|| broker.publish("t", message));
        expect_clones_at_most(
            clones,
            0,
            "publishing to \"t\" while only \"other\" has subscribers",
            advice,
        );
        for receiver in &mut others {
            let state = receiver.try_recv();
            assert!(
                state == Err(TryRecvError::Empty),
                "after a publish to \"t\", a subscriber of \"other\" reported {:?} on try_recv, \
                 but expected Empty",
                state.map(|message| message.id)
            );
        }

        // After close nobody listens.
        close_within_limit(&broker, "with three subscribers").await;
        let message = counter.message(2);
        let clones = counter.clones_during(|| broker.publish("other", message));
        expect_clones_at_most(
            clones,
            0,
            "publishing to \"other\" after close()",
            "After close, publish must do nothing",
        );
    });
}

fn cancelled_subscribers_cost_no_clones() {
    paused("Broker::publish", async {
        let counter = CloneCounter::default();
        let broker: Broker<Counted> = Broker::new();
        let staying = CancellationToken::new();
        let leaving = CancellationToken::new();
        let options = SubscribeOptions::default;

        // Three subscribers stay and three leave, all on one topic.
        let mut live: Vec<_> = (0..3)
            .map(|_| broker.subscribe(staying.child_token(), "t", options()))
            .collect();
        let mut cancelled: Vec<_> = (0..3)
            .map(|_| broker.subscribe(leaving.child_token(), "t", options()))
            .collect();

        // The publish follows the cancel at once, before any task of the
        // broker could react to it.
        leaving.cancel();
        let message = counter.message(0);
        let clones = counter.clones_during(|| broker.publish("t", message));
        let situation = "publishing to a topic with 3 live subscribers and 3 whose token had \
                         just been cancelled";
        expect_clones_at_most(
            clones,
            3,
            situation,
            "A cancelled subscriber gets nothing, so it must cost no clone either: check the \
             token before making the copy",
        );
        for receiver in &mut live {
            let drained = read_until_end(receiver, PROMPTLY).await;
            let received = ids(&drained.messages);
            assert!(
                received == [0],
                "after {situation}, a live subscriber received {}, but expected [0]",
                describe(&received)
            );
        }
        for receiver in &mut cancelled {
            let drained = read_until_end(receiver, PROMPTLY).await;
            let received = ids(&drained.messages);
            assert!(
                received.is_empty() && drained.ended,
                "after {situation}, a cancelled subscriber received {} and {}, but expected \
                 nothing and an ended receiver",
                describe(&received),
                if drained.ended {
                    "had ended"
                } else {
                    "was still open"
                }
            );
        }

        // A topic whose subscribers were all cancelled costs nothing.
        let gone_parent = CancellationToken::new();
        let _gone_receivers: Vec<_> = (0..3)
            .map(|_| broker.subscribe(gone_parent.child_token(), "gone", options()))
            .collect();
        gone_parent.cancel();
        let message = counter.message(1);
        let clones = counter.clones_during(|| broker.publish("gone", message));
        expect_clones_at_most(
            clones,
            0,
            "publishing to a topic whose 3 subscribers had all been cancelled",
            "Nobody receives this message, so no copy is needed",
        );
    });
}

fn full_buffers_clone_at_most_once_each() {
    paused("Broker::publish", async {
        const WITH_CALLBACK: usize = 4;
        const WITHOUT_CALLBACK: usize = 2;
        const SUBSCRIBERS: usize = WITH_CALLBACK + WITHOUT_CALLBACK;
        let counter = CloneCounter::default();
        let broker: Broker<Counted> = Broker::new();
        let token = CancellationToken::new();

        // Six subscribers with a buffer of 1, four of them with on_drop.
        let mut recordings = Vec::new();
        let mut receivers = Vec::new();
        for _ in 0..WITH_CALLBACK {
            let (options, dropped) = recording_options(1);
            receivers.push(broker.subscribe(token.clone(), "t", options));
            recordings.push(dropped);
        }
        for _ in 0..WITHOUT_CALLBACK {
            let options = SubscribeOptions::default().with_buffer(1);
            receivers.push(broker.subscribe(token.clone(), "t", options));
        }

        // The first message fills every buffer.
        let message = counter.message(0);
        let clones = counter.clones_during(|| broker.publish("t", message));
        expect_clones_at_most(
            clones,
            SUBSCRIBERS,
            &format!("publishing message 0 to {SUBSCRIBERS} subscribers with room"),
            "Each subscriber needs one copy, no more",
        );

        // The second finds every buffer full.
        let message = counter.message(1);
        let clones = counter.clones_during(|| broker.publish("t", message));
        expect_clones_at_most(
            clones,
            SUBSCRIBERS,
            &format!(
                "publishing message 1 to {SUBSCRIBERS} subscribers whose buffers were all full, \
                 {WITH_CALLBACK} of them with an on_drop callback"
            ),
            "A subscriber that cannot take the message costs at most one copy, the one its \
             on_drop receives. When try_send fails with TrySendError::Full(msg), it hands that \
             copy back: pass it on instead of cloning again. Or check for room first \
             (try_reserve) and clone only when there is room or a callback",
        );

        // Each callback received message 1, and each buffer still contains
        // message 0.
        for (index, dropped) in recordings.iter().enumerate() {
            let received = ids(&recorded(dropped));
            assert!(
                received == [1],
                "after message 0 filled every buffer of 1 and message 1 was published, the \
                 on_drop of subscriber {index} received {}, but expected [1]",
                describe(&received)
            );
        }
        for (index, receiver) in receivers.iter_mut().enumerate() {
            let drained = read_until_end(receiver, PROMPTLY).await;
            let received = ids(&drained.messages);
            assert!(
                received == [0],
                "after message 0 filled every buffer of 1 and message 1 was published, \
                 subscriber {index} received {}, but expected [0]",
                describe(&received)
            );
        }
    });
}

// ---------------------------------------------------------------------------
// Allocations
// ---------------------------------------------------------------------------

/// Number of publishes that each allocation measurement makes.
const QUIET_CALLS: usize = 100;

fn publish_to_nobody_allocates_nothing() {
    paused("Broker::publish", async {
        let broker: Broker<Order> = Broker::new();
        expect_quiet_publishes_allocate_nothing(&broker, "a new broker without subscribers");

        let token = CancellationToken::new();
        let _elsewhere = broker.subscribe(token.clone(), "busy", SubscribeOptions::default());
        expect_quiet_publishes_allocate_nothing(
            &broker,
            "a broker whose only subscriber is on another topic",
        );

        close_within_limit(&broker, "with one subscriber").await;
        expect_quiet_publishes_allocate_nothing(&broker, "a closed broker");
    });
}

/// Panics unless [`QUIET_CALLS`] publishes, each to a different topic
/// without subscribers, make no heap allocation.
fn expect_quiet_publishes_allocate_nothing(broker: &Broker<Order>, situation: &str) {
    // The topics and messages exist before counting starts, so only publish
    // is measured. Each call uses a topic never seen before, so a publish
    // that inserts an entry for an unknown topic allocates in every call.
    let topics: Vec<String> = (0..QUIET_CALLS)
        .map(|index| format!("quiet-{index}"))
        .collect();
    let messages = orders(0..QUIET_CALLS as u32);

    // One call first, so that one-time setup in the first call does not
    // count.
    broker.publish("warm-up", Order::numbered(0));

    let allocations = count_allocations(|| {
        for (topic, message) in topics.iter().zip(messages) {
            broker.publish(topic, message);
        }
    });
    assert!(
        allocations == 0,
        "{QUIET_CALLS} publishes on {situation}, each to a different topic without subscribers \
         (\"quiet-0\" to \"quiet-{}\"), made {}, but publish should make none there. Look \
         the topic up by &str (HashMap<String, _>::get accepts one) instead of building a \
         String key, do not put the message in a Box or Arc, and do not insert an entry for a \
         topic nobody subscribed to",
        QUIET_CALLS - 1,
        describe_allocations(allocations)
    );
}

fn cancelled_topic_publish_allocates_nothing() {
    paused("Broker::publish", async {
        let broker: Broker<Order> = Broker::new();
        let parent = CancellationToken::new();
        let own = CancellationToken::new();
        let (options, _dropped) = recording_options(1);
        let _first = broker.subscribe(parent.child_token(), "t", options);
        let _second = broker.subscribe(parent.child_token(), "t", SubscribeOptions::default());
        let _third = broker.subscribe(own.clone(), "t", SubscribeOptions::default());
        let _elsewhere = broker.subscribe(
            CancellationToken::new(),
            "busy",
            SubscribeOptions::default(),
        );
        broker.publish("warm-up", Order::numbered(0));

        // Every subscriber of "t" is cancelled, and the publish follows at
        // once, before any task of the broker could react.
        parent.cancel();
        own.cancel();
        let message = Order::numbered(1);
        let allocations = count_allocations(|| broker.publish("t", message));
        assert!(
            allocations == 0,
            "a publish to \"t\" straight after all 3 of its subscribers had been cancelled made \
             {}, but it should make none: nobody receives the message. Skip or remove \
             cancelled subscribers in place (HashMap::retain, or a check inside the delivery \
             loop); a Vec of senders or of ids collected from the topic allocates even when \
             every entry turns out to be cancelled",
            describe_allocations(allocations)
        );

        // Once the broker has had time to remove them, publishes stay free.
        let_tasks_run().await;
        let messages = orders(0..QUIET_CALLS as u32);
        let allocations = count_allocations(|| {
            for message in messages {
                broker.publish("t", message);
            }
        });
        assert!(
            allocations == 0,
            "{QUIET_CALLS} publishes to \"t\", whose 3 subscribers had all been cancelled a \
             moment before, made {}, but publish should make none when a topic has no \
             subscriber left",
            describe_allocations(allocations)
        );
    });
}

// ---------------------------------------------------------------------------
// Lifetimes
// ---------------------------------------------------------------------------

fn cancel_ends_receiver_and_topic() {
    paused("Broker::subscribe", async {
        let broker: Broker<Order> = Broker::new();
        let before = alive_tasks();
        let leaving_token = CancellationToken::new();
        let staying_token = CancellationToken::new();
        let options = SubscribeOptions::default;
        let mut leaving = broker.subscribe(leaving_token.clone(), "t", options());
        let mut staying = broker.subscribe(staying_token.clone(), "t", options());

        // One order is buffered, the token is cancelled, and a second order
        // follows at once.
        let buffered = Order::numbered(1);
        broker.publish("t", buffered.clone());
        leaving_token.cancel();
        broker.publish("t", Order::numbered(2));
        expect_received(
            &mut leaving,
            "the cancelled subscriber",
            std::slice::from_ref(&buffered),
            Then::End,
            "after Order 1 was published, its token was cancelled and Order 2 followed at once",
            "A message buffered before the cancellation still arrives, nothing published after \
             cancel() returned may arrive, and the receiver must end without waiting for \
             another publish",
        )
        .await;
        let count = broker.subscriber_count("t");
        expect_count(
            "subscriber_count(\"t\")",
            count,
            1,
            "once the cancelled subscriber's receiver had ended",
        );

        // Cancelling the last subscriber removes the topic and every task.
        staying_token.cancel();
        let drained = read_until_end(&mut staying, PROMPTLY).await;
        assert!(
            drained.ended,
            "the second subscriber's receiver was still open after its token was cancelled"
        );
        let_tasks_run().await;
        let situation = "once both subscribers of \"t\" were cancelled and their receivers ended";
        let count = broker.subscriber_count("t");
        expect_count("subscriber_count(\"t\")", count, 0, situation);
        let count = broker.topic_count();
        expect_count(
            "topic_count()",
            count,
            0,
            &format!(
                "{situation}. The topic's entry must be removed with its last subscriber, or \
                 short-lived topics pile up in memory"
            ),
        );
        let extra = alive_tasks().saturating_sub(before);
        assert!(
            extra == 0,
            "{situation}, {extra} task(s) of the broker were still alive. A task that watches a \
             subscription must finish once its token is cancelled"
        );
    });
}

fn close_ends_every_receiver() {
    paused("Broker::close", async {
        let broker: Broker<Order> = Broker::new();
        let token = CancellationToken::new();
        let options = SubscribeOptions::default;
        let mut with_message = broker.subscribe(token.child_token(), "a", options());
        let mut empty = broker.subscribe(token.clone(), "b", options());
        let buffered = Order::numbered(1);
        broker.publish("a", buffered.clone());

        // Close ends every receiver after what it buffered.
        close_within_limit(&broker, "with two subscribers").await;
        let situation = "after close() returned";
        expect_received(
            &mut with_message,
            "the subscriber of \"a\" with one buffered order",
            std::slice::from_ref(&buffered),
            Then::End,
            situation,
            "A message buffered before close must still be readable, and then recv() must \
             return None",
        )
        .await;
        expect_received(
            &mut empty,
            "the subscriber of \"b\"",
            &[],
            Then::End,
            situation,
            "Close must end every receiver",
        )
        .await;

        // After close, publish does nothing and subscribe returns an ended
        // receiver; the caller's token is untouched.
        broker.publish("a", Order::numbered(2));
        let mut late = broker.subscribe(token.clone(), "a", options());
        let state = late.try_recv().map(|order| order.id);
        assert!(
            state == Err(TryRecvError::Disconnected),
            "straight after a subscribe that followed close(), try_recv() on its receiver \
             reported {state:?}, but expected Disconnected: subscribe after close must return \
             a receiver that has already ended"
        );
        let count = broker.topic_count();
        expect_count("topic_count()", count, 0, "after close()");
        assert!(
            !token.is_cancelled(),
            "after close(), the token passed to subscribe was cancelled. The caller owns it; \
             cancel a child token (token.child_token()) to stop the broker's own work"
        );
    });
}

fn close_leaves_no_task_alive() {
    paused("Broker::close", async {
        let before = alive_tasks();
        let broker: Broker<Order> = Broker::new();
        let token = CancellationToken::new();
        let options = SubscribeOptions::default;

        // Subscriptions in several states: open, full, cancelled, and with a
        // dropped receiver.
        let _open = broker.subscribe(token.clone(), "a", options());
        let _full = broker.subscribe(token.child_token(), "b", options().with_buffer(1));
        broker.publish("b", Order::numbered(1));
        broker.publish("b", Order::numbered(2));
        let cancelled = CancellationToken::new();
        let _cancelled = broker.subscribe(cancelled.clone(), "c", options());
        cancelled.cancel();
        drop(broker.subscribe(token.child_token(), "d", options()));

        // Once close returns, no task of the broker may be alive, and a
        // second close returns too.
        close_within_limit(&broker, "with four subscriptions").await;
        let extra = alive_tasks().saturating_sub(before);
        assert!(
            extra == 0,
            "straight after close() returned, {extra} task(s) of the broker were still alive. \
             Close must stop every task the broker started and wait until each has finished, \
             for example by cancelling each subscription's child token and then calling \
             TaskTracker::close() and awaiting TaskTracker::wait()"
        );
        close_within_limit(&broker, "on its second call").await;
    });
}

/// Number of topics, publishers and readers in the concurrent check.
const WORKERS: usize = 4;
/// Orders each publisher sends in the concurrent check.
const ROUNDS: usize = 500;

fn concurrent_typed_publish_stays_exact() {
    multi_thread(WORKERS, async {
        let broker: Arc<Broker<Order>> = Arc::new(Broker::new());
        let topics: Vec<String> = (0..WORKERS).map(|index| format!("topic-{index}")).collect();

        // One reader per topic, with a buffer that has room for everything its
        // topic gets, so nothing drops however the threads interleave.
        let per_topic = WORKERS * ROUNDS / topics.len();
        let lasting = CancellationToken::new();
        let mut readers = Vec::new();
        for topic in &topics {
            let options = SubscribeOptions::default().with_buffer(per_topic);
            let mut receiver = broker.subscribe(lasting.child_token(), topic, options);
            readers.push(tokio::spawn(async move {
                let mut received = Vec::new();
                while let Some(order) = receiver.recv().await {
                    received.push(order);
                }
                received
            }));
        }

        // Publishers send orders round-robin over the topics; the id encodes
        // the publisher and its sequence number.
        let mut publishers = Vec::new();
        for publisher in 0..WORKERS {
            let broker = Arc::clone(&broker);
            let topics = topics.clone();
            publishers.push(tokio::spawn(async move {
                for sequence in 0..ROUNDS {
                    let topic = &topics[sequence % topics.len()];
                    let id = (publisher * ROUNDS + sequence) as u32;
                    broker.publish(topic, Order::numbered(id));
                    if sequence % 32 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            }));
        }
        for publisher in publishers {
            join(publisher).await;
        }

        // Close ends the readers; each must have every order of its topic,
        // each publisher's in order.
        broker.close().await;
        for (index, reader) in readers.into_iter().enumerate() {
            let received = join(reader).await;
            check_reader(index, &received);
        }
        assert!(
            !lasting.is_cancelled(),
            "after close(), the caller's token was cancelled; the broker must never cancel a \
             token of the caller's"
        );
    });
}

/// Checks that the reader of topic `index` received every order published to
/// its topic exactly once, unchanged, and each publisher's in order.
fn check_reader(index: usize, received: &[Order]) {
    let mut next_sequence = [index; WORKERS];
    for order in received {
        let publisher = order.id as usize / ROUNDS;
        let sequence = order.id as usize % ROUNDS;
        assert!(
            publisher < WORKERS && *order == Order::numbered(order.id),
            "topic-{index} received {order:?}, which no publisher sent"
        );
        assert!(
            sequence == next_sequence[publisher],
            "topic-{index} received order {} (publisher {publisher}, sequence {sequence}) when \
             the next from that publisher should have been sequence {}. Each publisher's \
             messages must arrive once each, in order, and none may be dropped: the buffer \
             holds them all",
            order.id,
            next_sequence[publisher]
        );
        next_sequence[publisher] += WORKERS;
    }
    // Each publisher sends every WORKERS-th of its orders to this topic.
    let expected = WORKERS * (ROUNDS / WORKERS);
    assert!(
        received.len() == expected,
        "topic-{index} received {} orders, but {expected} were published to it and its buffer \
         held them all",
        received.len()
    );
}

/// Waits for `task` and re-raises its panic, so the check fails with the
/// task's own message.
async fn join<T>(task: tokio::task::JoinHandle<T>) -> T {
    match task.await {
        Ok(output) => output,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(err) => panic!("a task of the check was cancelled: {err}"),
    }
}

//! Grading suite for task 3: per-subscriber policies for slow subscribers.
//!
//! The checks cover each policy's promise. A `Drop` subscriber loses exactly
//! the messages that do not fit and reports them to `on_drop`, and it never
//! slows down publish. A `Block` subscriber makes publish wait, and the
//! waiting publisher is released when that subscriber unsubscribes, drops its
//! receiver, or the broker closes. A second `Block` subscriber on a topic
//! logs a warning. The task 2 contract of `close` and `unsubscribe` still
//! holds.
//!
//! Every check runs on a paused tokio clock, so a wait costs no real time. A
//! publish that returns at once takes no virtual time at all. A publisher is
//! spawned as a task, and the check lets virtual time pass so that it runs
//! until it waits. A check that should see it released gives it a minute of
//! virtual time. A publisher that waits while it holds the broker's lock
//! makes the next call that needs the lock hang for real, so those checks
//! end at their time limit with a message that names that deadlock.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use task03_policies::{Broker, DEFAULT_BUFFER, SubscribeOptions, Unsubscribe};
use testkit::grading::Check;
use testkit::logs::LoggedEvent;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

fn main() -> std::process::ExitCode {
    testkit::suite!()
        .check(
            "publish_reaches_topic_subscribers_only",
            "Broker::publish",
            publish_reaches_topic_subscribers_only,
        )
        .check(
            "drop_policy_drops_newest_when_full",
            "Broker::publish",
            drop_policy_drops_newest_when_full,
        )
        .check(
            "on_drop_gets_exactly_lost_messages",
            "SubscribeOptions::on_drop",
            on_drop_gets_exactly_lost_messages,
        )
        .check(
            "on_drop_skips_dropped_receivers",
            "SubscribeOptions::on_drop",
            on_drop_skips_dropped_receivers,
        )
        .add_check(
            Check::new(
                "on_drop_may_call_broker",
                "SubscribeOptions::on_drop",
                on_drop_may_call_broker,
            )
            .time_limit(LOCK_CHECK_LIMIT)
            .timeout_cause(CALLBACK_UNDER_LOCK),
        )
        .check(
            "slow_drop_subscriber_never_slows_fast",
            "Broker::publish",
            slow_drop_subscriber_never_slows_fast,
        )
        .check(
            "block_waits_for_space",
            "Broker::publish",
            block_waits_for_space,
        )
        .check(
            "drop_subscribers_served_before_block_wait",
            "Broker::publish",
            drop_subscribers_served_before_block_wait,
        )
        .add_check(
            Check::new(
                "unsubscribe_returns_while_publish_blocked",
                "Unsubscribe::unsubscribe",
                unsubscribe_returns_while_publish_blocked,
            )
            .time_limit(LOCK_CHECK_LIMIT)
            .timeout_cause(LOCK_HELD_WHILE_WAITING),
        )
        .add_check(
            Check::new(
                "unsubscribe_releases_blocked_publisher",
                "Unsubscribe::unsubscribe",
                unsubscribe_releases_blocked_publisher,
            )
            .time_limit(LOCK_CHECK_LIMIT)
            .timeout_cause(LOCK_HELD_WHILE_WAITING),
        )
        .check(
            "dropped_receiver_releases_blocked_publisher",
            "Broker::publish",
            dropped_receiver_releases_blocked_publisher,
        )
        .add_check(
            Check::new(
                "close_releases_blocked_publishers",
                "Broker::close",
                close_releases_blocked_publishers,
            )
            .time_limit(LOCK_CHECK_LIMIT)
            .timeout_cause(LOCK_HELD_WHILE_WAITING),
        )
        .add_check(
            Check::new(
                "blocked_publisher_skips_departed_subscribers",
                "Broker::publish",
                blocked_publisher_skips_departed_subscribers,
            )
            .time_limit(LOCK_CHECK_LIMIT)
            .timeout_cause(LOCK_HELD_WHILE_WAITING),
        )
        .add_check(
            Check::new(
                "broker_usable_while_publish_blocked",
                "Broker",
                broker_usable_while_publish_blocked,
            )
            .time_limit(LOCK_CHECK_LIMIT)
            .timeout_cause(LOCK_HELD_WHILE_WAITING),
        )
        .check(
            "second_block_subscriber_logs_warning",
            "Broker::subscribe",
            second_block_subscriber_logs_warning,
        )
        .check(
            "zero_buffer_means_default",
            "Broker::subscribe",
            zero_buffer_means_default,
        )
        .check(
            "custom_buffer_is_honoured",
            "Broker::subscribe",
            custom_buffer_is_honoured,
        )
        .check(
            "publish_without_subscribers_returns_at_once",
            "Broker::publish",
            publish_without_subscribers_returns_at_once,
        )
        .check(
            "close_ends_receivers_after_draining",
            "Broker::close",
            close_ends_receivers_after_draining,
        )
        .check(
            "use_after_close_is_harmless",
            "Broker::close",
            use_after_close_is_harmless,
        )
        .check(
            "unsubscribe_removes_only_its_subscriber",
            "Unsubscribe::unsubscribe",
            unsubscribe_removes_only_its_subscriber,
        )
        .check(
            "repeated_unsubscribe_is_noop",
            "Unsubscribe::unsubscribe",
            repeated_unsubscribe_is_noop,
        )
        .run()
}

/// Wall-clock limit of the checks that a lock held across an `.await` or
/// around a callback turns into a real hang. The reference finishes each in
/// milliseconds.
const LOCK_CHECK_LIMIT: Duration = Duration::from_secs(5);

/// Timeout cause of the checks that call the broker while a publisher waits.
const LOCK_HELD_WHILE_WAITING: &str = "likely deadlock: publish still holds the broker's lock \
     while it waits for space in a Block subscriber's buffer, so unsubscribe(), close() and the \
     other methods that need the lock can never take it, and the waiting publisher is never \
     released. Never hold the lock across an .await: copy the senders you need out of the map \
     in a block or a plain fn, so the guard's scope ends, then wait";

/// Timeout cause of the check whose `on_drop` callback calls the broker.
const CALLBACK_UNDER_LOCK: &str = "likely deadlock: publish called on_drop while it held the \
     broker's lock, and the callback called the broker, which waits for that same lock \
     forever. Collect the lost messages while you hold the lock, release it, then call on_drop";

/// Virtual time a publish may wait before a check reports that it did not
/// return at once. A publish that does not wait takes no virtual time.
const PROMPT_LIMIT: Duration = Duration::from_secs(60);

/// Virtual time a waiting publisher gets to finish after whatever should
/// release it.
const RELEASE_LIMIT: Duration = Duration::from_secs(60);

/// Virtual time a check lets pass so that spawned publishers run until they
/// wait.
const SETTLE: Duration = Duration::from_secs(1);

/// What a receiver should do once its buffered messages are read.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Then {
    /// Stay open: `try_recv` reports `Empty`.
    StayOpen,
    /// End: `try_recv` reports `Disconnected`, and `recv()` returns `None`.
    End,
}

/// The messages a receiver or callback should get when it should get none.
const NOTHING: &[&str] = &[];

/// Runs a check's body on a paused clock.
fn paused<F: Future<Output = ()>>(subject: &str, body: F) {
    testkit::runtime::paused(subject, body);
}

/// Returns `count` message texts "{prefix}0", "{prefix}1", ….
fn numbered(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|index| format!("{prefix}{index}")).collect()
}

/// Describes a list of messages the way a failure message shows it.
fn describe_messages<S: AsRef<str>>(messages: &[S]) -> String {
    if messages.is_empty() {
        return "nothing".to_owned();
    }
    let shown: Vec<&str> = messages.iter().map(AsRef::as_ref).collect();
    format!("{shown:?}")
}

/// A recorder for one subscriber's `on_drop` callback.
#[derive(Clone, Default)]
struct DropLog {
    messages: Arc<Mutex<Vec<String>>>,
}

impl DropLog {
    /// Returns `options` with an `on_drop` callback that records here.
    fn attach(&self, options: SubscribeOptions) -> SubscribeOptions {
        let messages = Arc::clone(&self.messages);
        options.on_drop(move |message| {
            messages
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(message);
        })
    }

    fn messages(&self) -> Vec<String> {
        self.messages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Panics unless the callback got exactly `expected`, in order.
    #[track_caller]
    fn expect<S: AsRef<str>>(&self, who: &str, expected: &[S], situation: &str, advice: &str) {
        let actual = self.messages();
        let matches = actual
            .iter()
            .map(String::as_str)
            .eq(expected.iter().map(AsRef::as_ref));
        if matches {
            return;
        }
        let expected_calls = if expected.is_empty() {
            "not to be called".to_owned()
        } else {
            format!(
                "to be called with {}, in that order",
                describe_messages(expected)
            )
        };
        let actual_calls = if actual.is_empty() {
            "it was not called".to_owned()
        } else {
            format!("it was called with {}", describe_messages(&actual))
        };
        let mut message =
            format!("{situation}, expected on_drop of {who} {expected_calls}, but {actual_calls}");
        if !advice.is_empty() {
            message.push_str(". ");
            message.push_str(advice);
        }
        panic!("{message}");
    }
}

/// What `try_recv` showed until it stopped returning messages.
struct Drained {
    messages: Vec<String>,
    // `true` when the receiver reported `Disconnected`, `false` for `Empty`.
    ended: bool,
}

/// Takes every message that `receiver` has buffered now, without waiting.
fn drain(receiver: &mut mpsc::Receiver<String>) -> Drained {
    let mut messages = Vec::new();
    loop {
        match receiver.try_recv() {
            Ok(message) => messages.push(message),
            Err(TryRecvError::Empty) => {
                return Drained {
                    messages,
                    ended: false,
                };
            }
            Err(TryRecvError::Disconnected) => {
                return Drained {
                    messages,
                    ended: true,
                };
            }
        }
    }
}

/// Drains `receiver` and panics unless it yields exactly `expected`, in
/// order, and then stays open or ends as `then` requires.
///
/// The message reads "{situation}, expected {who} to get … and …, but it got
/// … and …", followed by `advice` when that is not empty.
#[track_caller]
fn expect_drained<S: AsRef<str>>(
    receiver: &mut mpsc::Receiver<String>,
    who: &str,
    expected: &[S],
    then: Then,
    situation: &str,
    advice: &str,
) {
    let drained = drain(receiver);
    let messages_match = drained
        .messages
        .iter()
        .map(String::as_str)
        .eq(expected.iter().map(AsRef::as_ref));
    if messages_match && drained.ended == (then == Then::End) {
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
        describe_messages(expected),
        describe_messages(&drained.messages)
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

/// Awaits `publish`, a call to `Broker::publish`, and panics unless it
/// returns without waiting: within no virtual time at all.
async fn expect_prompt(publish: impl Future<Output = ()>, call: &str, situation: &str) {
    let start = Instant::now();
    let finished = timeout(PROMPT_LIMIT, publish).await.is_ok();
    let waited = start.elapsed();
    assert!(
        finished,
        "{call} was still waiting after {} s of virtual time {situation}, but it must return at \
         once. Publish waits only for space in a Block subscriber's buffer; a Drop subscriber \
         with a full buffer loses the message (try_send) instead",
        PROMPT_LIMIT.as_secs()
    );
    assert!(
        waited.is_zero(),
        "{call} returned only after waiting {waited:?} of virtual time {situation}, but it must \
         return at once. A Drop subscriber with a full buffer loses the message at once \
         (try_send); it gets no grace period"
    );
}

/// Publishes `msg` to `topic` and panics unless publish returns at once.
async fn publish_now(broker: &Broker, topic: &str, msg: &str, situation: &str) {
    let call = format!("publish({topic:?}, {msg:?})");
    expect_prompt(broker.publish(topic, msg.to_owned()), &call, situation).await;
}

/// Publishes `msg` to `topic` on a task of its own.
fn spawn_publish(broker: &Arc<Broker>, topic: &str, msg: &str) -> JoinHandle<()> {
    let broker = Arc::clone(broker);
    let topic = topic.to_owned();
    let msg = msg.to_owned();
    tokio::spawn(async move { broker.publish(&topic, msg).await })
}

/// Lets virtual time pass, so that every spawned task runs until it waits.
async fn settle() {
    tokio::time::sleep(SETTLE).await;
}

/// Waits for `task` and re-raises its panic, so the check fails with the
/// task's own message.
async fn join<T>(task: &mut JoinHandle<T>) -> T {
    match task.await {
        Ok(output) => output,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(err) => panic!("a task of the check was cancelled: {err}"),
    }
}

/// Panics unless the spawned publish `task` is still waiting.
async fn expect_waiting(task: &mut JoinHandle<()>, call: &str, situation: &str, advice: &str) {
    if task.is_finished() {
        // Surface a panic inside publish with its own message.
        join(task).await;
        panic!("{call} had returned {situation}, but it must still be waiting. {advice}");
    }
}

/// Panics unless the spawned publish `task` finishes within
/// [`RELEASE_LIMIT`] of virtual time.
async fn expect_released(mut task: JoinHandle<()>, call: &str, situation: &str, advice: &str) {
    if timeout(RELEASE_LIMIT, join(&mut task)).await.is_err() {
        panic!(
            "{call} was still waiting {} s of virtual time {situation}, but it must return as \
             soon as that happens. {advice}",
            RELEASE_LIMIT.as_secs()
        );
    }
}

/// Receives one message, or panics when none arrives within
/// [`RELEASE_LIMIT`] of virtual time or the receiver has ended.
async fn recv_one(receiver: &mut mpsc::Receiver<String>, who: &str, situation: &str) -> String {
    match timeout(RELEASE_LIMIT, receiver.recv()).await {
        Ok(Some(message)) => message,
        Ok(None) => panic!("{who} had ended {situation}, but it should get a message"),
        Err(_) => panic!(
            "{who} got nothing within {} s of virtual time {situation}",
            RELEASE_LIMIT.as_secs()
        ),
    }
}

/// Subscribes a `Block` subscriber with a buffer of one and fills that
/// buffer with `fill`, so the next publish to `topic` waits.
async fn full_block_subscriber(
    broker: &Broker,
    topic: &str,
    fill: &str,
) -> (mpsc::Receiver<String>, Unsubscribe) {
    let subscription = broker.subscribe(topic, SubscribeOptions::block().buffer(1));
    publish_now(
        broker,
        topic,
        fill,
        "to a Block subscriber with a buffer of 1 that was empty",
    )
    .await;
    subscription
}

fn publish_reaches_topic_subscribers_only() {
    paused("Broker::publish", async {
        let broker = Broker::new();
        let (mut first, _first_handle) = broker.subscribe("news", SubscribeOptions::default());
        let (mut second, _second_handle) = broker.subscribe("news", SubscribeOptions::block());
        let (mut other, _other_handle) = broker.subscribe("sport", SubscribeOptions::default());

        // One message to "news" reaches both of its subscribers, whatever
        // their policy, and no other subscriber.
        let situation = "after one publish of \"hello\" to \"news\"";
        publish_now(&broker, "news", "hello", "with room in every buffer").await;
        expect_drained(
            &mut first,
            "the Drop subscriber of \"news\"",
            &["hello"],
            Then::StayOpen,
            situation,
            "",
        );
        expect_drained(
            &mut second,
            "the Block subscriber of \"news\"",
            &["hello"],
            Then::StayOpen,
            situation,
            "Publish must deliver to every subscriber of the topic, whatever its policy",
        );
        expect_drained(
            &mut other,
            "the subscriber of \"sport\"",
            NOTHING,
            Then::StayOpen,
            situation,
            "Publish must deliver only to subscribers of exactly that topic",
        );

        // The counts follow the subscriptions.
        let count = broker.subscriber_count("news");
        expect_count(
            "subscriber_count(\"news\")",
            count,
            2,
            "with two subscribers",
        );
        let count = broker.subscriber_count("weather");
        expect_count(
            "subscriber_count(\"weather\")",
            count,
            0,
            "for a topic nobody subscribed to",
        );
        let count = broker.topic_count();
        expect_count(
            "topic_count()",
            count,
            2,
            "with subscribers on \"news\" and \"sport\"",
        );
    });
}

fn drop_policy_drops_newest_when_full() {
    paused("Broker::publish", async {
        let broker = Broker::new();
        let (mut receiver, _handle) = broker.subscribe("t", SubscribeOptions::default());

        // Publish one more than the default buffer contains, reading nothing.
        let situation = "while the Drop subscriber read nothing";
        for message in numbered("m", 0..DEFAULT_BUFFER + 1) {
            publish_now(&broker, "t", &message, situation).await;
        }

        // The first DEFAULT_BUFFER messages arrive in order; the last is lost.
        expect_drained(
            &mut receiver,
            "the Drop subscriber",
            &numbered("m", 0..DEFAULT_BUFFER),
            Then::StayOpen,
            &format!(
                "after {} publishes to a Drop subscriber with the default options that read \
                 nothing",
                DEFAULT_BUFFER + 1
            ),
            &format!(
                "Its buffer contains {DEFAULT_BUFFER} messages, so the last one must be lost, and \
                 a full buffer must not end the subscription"
            ),
        );

        // Once there is room again, delivery resumes.
        publish_now(
            &broker,
            "t",
            "after",
            "after the subscriber read its buffer",
        )
        .await;
        expect_drained(
            &mut receiver,
            "the Drop subscriber",
            &["after"],
            Then::StayOpen,
            "after it emptied its full buffer and \"after\" was published",
            "",
        );
    });
}

fn on_drop_gets_exactly_lost_messages() {
    paused("SubscribeOptions::on_drop", async {
        let broker = Broker::new();
        let small_log = DropLog::default();
        let (mut small, _small_handle) =
            broker.subscribe("t", small_log.attach(SubscribeOptions::default().buffer(2)));
        let roomy_log = DropLog::default();
        let (mut roomy, _roomy_handle) =
            broker.subscribe("t", roomy_log.attach(SubscribeOptions::default()));

        // Five messages into a buffer of two: m2, m3 and m4 are lost.
        for message in numbered("m", 0..5) {
            publish_now(&broker, "t", &message, "to two Drop subscribers").await;
        }
        let situation = "after m0 to m4 were published to a Drop subscriber with a buffer of 2 \
                         that read nothing";
        small_log.expect(
            "that subscriber",
            &numbered("m", 2..5),
            situation,
            "on_drop must get each message the subscriber lost because its buffer was full, and \
             no other",
        );
        expect_drained(
            &mut small,
            "that subscriber",
            &["m0", "m1"],
            Then::StayOpen,
            situation,
            "",
        );

        // The other subscriber had room, so its own callback never ran.
        roomy_log.expect(
            "a second subscriber with the default buffer",
            NOTHING,
            situation,
            &format!(
                "That subscriber's buffer holds {DEFAULT_BUFFER} messages, so all five fit. Call \
                 only the on_drop of the subscriber that lost a message"
            ),
        );
        expect_drained(
            &mut roomy,
            "the second subscriber",
            &numbered("m", 0..5),
            Then::StayOpen,
            situation,
            "",
        );

        // With room again, a message is delivered and not reported.
        publish_now(&broker, "t", "m5", "after both subscribers read everything").await;
        let situation = "after the subscriber with a buffer of 2 read its buffer and m5 was \
                         published";
        small_log.expect(
            "that subscriber",
            &numbered("m", 2..5),
            situation,
            "A delivered message must not reach on_drop",
        );
        expect_drained(
            &mut small,
            "that subscriber",
            &["m5"],
            Then::StayOpen,
            situation,
            "",
        );
    });
}

fn on_drop_skips_dropped_receivers() {
    paused("SubscribeOptions::on_drop", async {
        let broker = Broker::new();

        // One subscriber leaves with a full buffer, another with an empty one.
        let full_log = DropLog::default();
        let (full, _full_handle) =
            broker.subscribe("t", full_log.attach(SubscribeOptions::default().buffer(1)));
        publish_now(&broker, "t", "fill", "to a Drop subscriber with room").await;
        let empty_log = DropLog::default();
        let (empty, _empty_handle) =
            broker.subscribe("t", empty_log.attach(SubscribeOptions::default().buffer(1)));
        drop(full);
        drop(empty);

        // Publishing finds both receivers gone. That is not a full buffer.
        publish_now(
            &broker,
            "t",
            "gone",
            "to two Drop subscribers that dropped their receivers",
        )
        .await;
        let situation = "after two Drop subscribers of \"t\", one with a full buffer and one \
                         with an empty one, dropped their receivers and \"gone\" was published";
        let advice = "on_drop reports a message that a subscriber lost because its buffer was \
                      full. A subscriber whose receiver was dropped has left: try_send returns \
                      TrySendError::Closed for it, and publish removes it without calling \
                      on_drop";
        full_log.expect(
            "the subscriber whose buffer was full",
            NOTHING,
            situation,
            advice,
        );
        empty_log.expect(
            "the subscriber whose buffer was empty",
            NOTHING,
            situation,
            advice,
        );
        let count = broker.subscriber_count("t");
        expect_count(
            "subscriber_count(\"t\")",
            count,
            0,
            &format!("{situation}, because publish must remove subscribers whose receiver is gone"),
        );
    });
}

fn on_drop_may_call_broker() {
    paused("SubscribeOptions::on_drop", async {
        let broker = Arc::new(Broker::new());

        // The callback removes its own subscriber on the first loss, a common
        // way to get rid of a subscriber that cannot keep up. It also reads a
        // count from the broker.
        let weak_broker = Arc::downgrade(&broker);
        let handle_slot: Arc<Mutex<Option<Unsubscribe>>> = Arc::default();
        let counts_seen: Arc<Mutex<Vec<usize>>> = Arc::default();
        let options = SubscribeOptions::default().buffer(1).on_drop({
            let handle_slot = Arc::clone(&handle_slot);
            let counts_seen = Arc::clone(&counts_seen);
            move |_lost| {
                if let Some(broker) = weak_broker.upgrade() {
                    let count = broker.subscriber_count("t");
                    counts_seen
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(count);
                }
                let handle = handle_slot
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                if let Some(handle) = handle {
                    handle.unsubscribe();
                }
            }
        });
        let (mut receiver, handle) = broker.subscribe("t", options);
        *handle_slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(handle);

        // The second message does not fit, so the callback runs and leaves.
        publish_now(&broker, "t", "kept", "to a subscriber with room").await;
        publish_now(
            &broker,
            "t",
            "lost",
            "to a full subscriber whose on_drop calls subscriber_count() and unsubscribe()",
        )
        .await;

        let situation = "after a Drop subscriber with a buffer of 1 got \"kept\", lost \"lost\", \
                         and its on_drop called subscriber_count() and then unsubscribe()";
        let counts = counts_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        assert!(
            counts == [1],
            "{situation}, expected on_drop to run once and see subscriber_count(\"t\") return 1, \
             but it saw {counts:?}. on_drop must be called once per lost message"
        );
        let count = broker.subscriber_count("t");
        expect_count(
            "subscriber_count(\"t\")",
            count,
            0,
            &format!("{situation}, because the callback unsubscribed it"),
        );
        expect_drained(
            &mut receiver,
            "its receiver",
            &["kept"],
            Then::End,
            situation,
            "",
        );
    });
}

/// Number of messages in the check of a slow and a fast subscriber.
const TICKS: usize = 20;

fn slow_drop_subscriber_never_slows_fast() {
    paused("Broker::publish", async {
        let broker = Broker::new();
        let slow_log = DropLog::default();
        let (mut slow, _slow_handle) = broker.subscribe(
            "ticks",
            slow_log.attach(SubscribeOptions::default().buffer(1)),
        );
        let (mut fast, _fast_handle) =
            broker.subscribe("ticks", SubscribeOptions::default().buffer(1));

        // The fast subscriber reads each message as soon as publish returns;
        // the slow one never reads.
        for message in numbered("tick ", 0..TICKS) {
            publish_now(
                &broker,
                "ticks",
                &message,
                "while a slow Drop subscriber of the topic read nothing",
            )
            .await;
            let received = fast.try_recv();
            assert!(
                received.as_deref() == Ok(message.as_str()),
                "right after publish({:?}, {message:?}) returned, expected the fast subscriber \
                 to have {message:?} in its buffer, but try_recv() returned {received:?}. A \
                 slow Drop subscriber must not delay or block the delivery to another one",
                "ticks"
            );
        }

        // The slow subscriber kept the first message and lost the rest.
        let situation = format!(
            "after {TICKS} publishes to a slow Drop subscriber with a buffer of 1 that read \
             nothing"
        );
        expect_drained(
            &mut slow,
            "the slow subscriber",
            &["tick 0"],
            Then::StayOpen,
            &situation,
            "",
        );
        slow_log.expect(
            "the slow subscriber",
            &numbered("tick ", 1..TICKS),
            &situation,
            "",
        );
    });
}

fn block_waits_for_space() {
    paused("Broker::publish", async {
        let broker = Arc::new(Broker::new());
        let log = DropLog::default();
        let (mut receiver, _handle) =
            broker.subscribe("jobs", log.attach(SubscribeOptions::block().buffer(2)));

        // Two messages fit the buffer.
        let situation = "to a Block subscriber with a buffer of 2 and room";
        publish_now(&broker, "jobs", "m0", situation).await;
        publish_now(&broker, "jobs", "m1", situation).await;

        // The third waits, however long the subscriber does not read.
        let mut publisher = spawn_publish(&broker, "jobs", "m2");
        settle().await;
        tokio::time::sleep(Duration::from_secs(600)).await;
        let call = "publish(\"jobs\", \"m2\")";
        expect_waiting(
            &mut publisher,
            call,
            "after ten minutes of virtual time in which the Block subscriber with a full \
             buffer of 2 read nothing",
            "A Block subscriber makes publish wait for space in its buffer instead of losing the \
             message",
        )
        .await;

        // Reading one message makes room, and the publisher finishes.
        let first = recv_one(&mut receiver, "the Block subscriber", "with a full buffer").await;
        assert!(
            first == "m0",
            "the Block subscriber's first message was {first:?}, but expected \"m0\""
        );
        expect_released(
            publisher,
            call,
            "after the Block subscriber read a message from its full buffer",
            "Publish must deliver as soon as there is room, for example with \
             sender.send(msg).await",
        )
        .await;
        let situation = "after publish of \"m2\" waited for room and the subscriber read \"m0\"";
        expect_drained(
            &mut receiver,
            "the Block subscriber",
            &["m1", "m2"],
            Then::StayOpen,
            situation,
            "",
        );
        log.expect(
            "the Block subscriber",
            NOTHING,
            situation,
            "A Block subscriber never loses a message to a full buffer, so its on_drop is never \
             called",
        );
    });
}

fn drop_subscribers_served_before_block_wait() {
    paused("Broker::publish", async {
        let broker = Arc::new(Broker::new());

        // Two full Block subscribers, each followed by three Drop subscribers.
        let mut blocks = Vec::new();
        let mut drops = Vec::new();
        for _ in 0..2 {
            blocks.push(broker.subscribe("feed", SubscribeOptions::block().buffer(1)));
            for _ in 0..3 {
                drops.push(broker.subscribe("feed", SubscribeOptions::default()));
            }
        }
        publish_now(&broker, "feed", "fill", "to subscribers with room").await;

        // The publisher waits for the Block subscribers. Every Drop
        // subscriber must have the message by then.
        let mut publisher = spawn_publish(&broker, "feed", "news");
        settle().await;
        let call = "publish(\"feed\", \"news\")";
        expect_waiting(
            &mut publisher,
            call,
            "while two Block subscribers of \"feed\" had full buffers",
            "",
        )
        .await;
        for (index, (receiver, _)) in drops.iter_mut().enumerate() {
            expect_drained(
                receiver,
                &format!("Drop subscriber {} of 6", index + 1),
                &["fill", "news"],
                Then::StayOpen,
                "while publish of \"news\" waited for space in two full Block subscribers of \
                 the same topic",
                "Publish must deliver to every Drop subscriber before it waits for any Block \
                 subscriber, so that a slow Block subscriber does not hold up the others",
            );
        }

        // Reading the Block subscribers lets the publisher finish.
        for (receiver, _) in &mut blocks {
            recv_one(receiver, "a Block subscriber", "with a full buffer").await;
        }
        expect_released(
            publisher,
            call,
            "after both Block subscribers read their message",
            "",
        )
        .await;
        for (index, (receiver, _)) in blocks.iter_mut().enumerate() {
            expect_drained(
                receiver,
                &format!("Block subscriber {} of 2", index + 1),
                &["news"],
                Then::StayOpen,
                "after publish of \"news\" waited for it and it read its buffer",
                "",
            );
        }
    });
}

fn unsubscribe_returns_while_publish_blocked() {
    paused("Unsubscribe::unsubscribe", async {
        let broker = Arc::new(Broker::new());
        let (_receiver, handle) = full_block_subscriber(&broker, "t", "fill").await;
        let mut publisher = spawn_publish(&broker, "t", "blocked");
        settle().await;
        expect_waiting(
            &mut publisher,
            "publish(\"t\", \"blocked\")",
            "while the only subscriber of \"t\", a Block subscriber, had a full buffer",
            "",
        )
        .await;

        // The call that hangs when the waiting publisher holds the lock.
        handle.unsubscribe();

        let situation = "after unsubscribe() returned while a publisher waited for that \
                         subscriber";
        let count = broker.subscriber_count("t");
        expect_count("subscriber_count(\"t\")", count, 0, situation);
        let count = broker.topic_count();
        expect_count("topic_count()", count, 0, situation);
    });
}

fn unsubscribe_releases_blocked_publisher() {
    paused("Unsubscribe::unsubscribe", async {
        let broker = Arc::new(Broker::new());
        let (mut receiver, handle) = full_block_subscriber(&broker, "t", "fill").await;
        let mut publisher = spawn_publish(&broker, "t", "blocked");
        settle().await;
        let call = "publish(\"t\", \"blocked\")";
        expect_waiting(
            &mut publisher,
            call,
            "while the only subscriber of \"t\", a Block subscriber, had a full buffer",
            "",
        )
        .await;

        // Leaving releases the publisher, which delivers nothing.
        handle.unsubscribe();
        expect_released(
            publisher,
            call,
            "after the Block subscriber it waited for unsubscribed",
            "Unsubscribe must release a publisher that waits for that subscriber: its wait for \
             space has to end as soon as the subscriber leaves, not only when space appears",
        )
        .await;
        expect_drained(
            &mut receiver,
            "the unsubscribed receiver",
            &["fill"],
            Then::End,
            "after it unsubscribed while publish of \"blocked\" waited for it",
            "The message the publisher waited to deliver must not arrive after unsubscribe, and \
             the receiver ends once every sender is gone, including the publisher's copy",
        );

        // Later publishes find no subscriber and return at once.
        publish_now(&broker, "t", "later", "after the only subscriber left").await;
    });
}

fn dropped_receiver_releases_blocked_publisher() {
    paused("Broker::publish", async {
        let broker = Arc::new(Broker::new());
        let (receiver, _handle) = full_block_subscriber(&broker, "t", "fill").await;
        let mut publisher = spawn_publish(&broker, "t", "blocked");
        settle().await;
        let call = "publish(\"t\", \"blocked\")";
        expect_waiting(
            &mut publisher,
            call,
            "while the only subscriber of \"t\", a Block subscriber, had a full buffer",
            "",
        )
        .await;

        // Dropping the receiver releases the publisher.
        drop(receiver);
        let situation = "after the Block subscriber it waited for dropped its receiver";
        expect_released(
            publisher,
            call,
            situation,
            "sender.send(msg).await returns an error once the receiver is dropped; the wait \
             must end then",
        )
        .await;
        let count = broker.subscriber_count("t");
        expect_count(
            "subscriber_count(\"t\")",
            count,
            0,
            &format!(
                "{situation} and the publisher returned, because publish must remove a \
                 subscriber whose receiver was dropped"
            ),
        );
        publish_now(&broker, "t", "later", "after the only receiver was dropped").await;
    });
}

fn close_releases_blocked_publishers() {
    paused("Broker::close", async {
        let broker = Arc::new(Broker::new());
        let (mut receiver_a, _handle_a) = full_block_subscriber(&broker, "a", "fill a").await;
        let (mut receiver_b, _handle_b) = full_block_subscriber(&broker, "b", "fill b").await;
        let mut publisher_a = spawn_publish(&broker, "a", "blocked a");
        let mut publisher_b = spawn_publish(&broker, "b", "blocked b");
        settle().await;
        let situation = "while the Block subscribers of \"a\" and \"b\" had full buffers";
        let call_a = "publish(\"a\", \"blocked a\")";
        let call_b = "publish(\"b\", \"blocked b\")";
        expect_waiting(&mut publisher_a, call_a, situation, "").await;
        expect_waiting(&mut publisher_b, call_b, situation, "").await;

        // Close releases both publishers, which deliver nothing.
        broker.close();
        let advice = "Close must release every publisher that waits for a Block subscriber";
        expect_released(publisher_a, call_a, "after close()", advice).await;
        expect_released(publisher_b, call_b, "after close()", advice).await;
        let situation = "after close() while a publisher waited for it";
        let advice = "It must yield what was buffered before close, nothing more, and then end";
        expect_drained(
            &mut receiver_a,
            "the Block subscriber of \"a\"",
            &["fill a"],
            Then::End,
            situation,
            advice,
        );
        expect_drained(
            &mut receiver_b,
            "the Block subscriber of \"b\"",
            &["fill b"],
            Then::End,
            situation,
            advice,
        );
    });
}

fn blocked_publisher_skips_departed_subscribers() {
    paused("Broker::publish", async {
        let broker = Arc::new(Broker::new());

        // Four Block subscribers with full buffers of 1.
        let mut subscriptions = Vec::new();
        for _ in 0..4 {
            subscriptions.push(broker.subscribe("t", SubscribeOptions::block().buffer(1)));
        }
        publish_now(&broker, "t", "fill", "to four Block subscribers with room").await;
        let (mut staying, _staying_handle) = subscriptions.remove(0);
        let mut leaving = subscriptions;

        // The publisher waits for one of them.
        let mut publisher = spawn_publish(&broker, "t", "news");
        settle().await;
        let call = "publish(\"t\", \"news\")";
        expect_waiting(
            &mut publisher,
            call,
            "while four Block subscribers of \"t\" had full buffers",
            "",
        )
        .await;

        // Three leave at once, and the fourth makes room. Whichever one the
        // publisher waits for first, it must not wait for any that left.
        for (_, handle) in &leaving {
            handle.unsubscribe();
        }
        recv_one(
            &mut staying,
            "the staying Block subscriber",
            "with a full buffer",
        )
        .await;
        expect_released(
            publisher,
            call,
            "after three of the four Block subscribers it waited for unsubscribed and the fourth \
             read a message",
            "A publisher that waits for several Block subscribers in turn must not wait for one \
             that left before its turn came. A notification sent while nobody listened is lost \
             (Notify::notify_waiters), so use a signal that stays visible, such as a dropped \
             watch sender, or check that the subscriber is still there",
        )
        .await;
        expect_drained(
            &mut staying,
            "the staying Block subscriber",
            &["news"],
            Then::StayOpen,
            "after the publisher of \"news\" returned",
            "",
        );
        for (index, (receiver, _)) in leaving.iter_mut().enumerate() {
            expect_drained(
                receiver,
                &format!("unsubscribed Block subscriber {} of 3", index + 1),
                &["fill"],
                Then::End,
                "after it unsubscribed while a publisher of \"news\" waited for it",
                "The message the publisher waited to deliver must not arrive after unsubscribe",
            );
        }
    });
}

fn broker_usable_while_publish_blocked() {
    paused("Broker", async {
        let broker = Arc::new(Broker::new());
        let (mut slow, _slow_handle) = full_block_subscriber(&broker, "slow", "fill").await;
        let mut publisher = spawn_publish(&broker, "slow", "blocked");
        settle().await;
        let call = "publish(\"slow\", \"blocked\")";
        let situation = "while a publisher waited for the full Block subscriber of \"slow\"";
        expect_waiting(&mut publisher, call, situation, "").await;

        // Each of these calls needs the broker's lock.
        let count = broker.subscriber_count("slow");
        expect_count("subscriber_count(\"slow\")", count, 1, situation);
        let count = broker.topic_count();
        expect_count("topic_count()", count, 1, situation);
        let (mut other, other_handle) = broker.subscribe("other", SubscribeOptions::default());
        publish_now(&broker, "other", "hello", situation).await;
        expect_drained(
            &mut other,
            "a subscriber of \"other\"",
            &["hello"],
            Then::StayOpen,
            &format!("{situation}, after \"hello\" was published to \"other\""),
            "A publisher that waits on one topic must not hold up the others",
        );
        other_handle.unsubscribe();
        let count = broker.subscriber_count("other");
        expect_count(
            "subscriber_count(\"other\")",
            count,
            0,
            &format!("{situation}, after its only subscriber unsubscribed"),
        );

        // The waiting publisher is undisturbed, and reading releases it.
        expect_waiting(&mut publisher, call, situation, "").await;
        recv_one(&mut slow, "the Block subscriber of \"slow\"", "").await;
        expect_released(
            publisher,
            call,
            "after the Block subscriber of \"slow\" read a message",
            "",
        )
        .await;
    });
}

/// Returns the warnings among `events` that name `topic` in their message
/// or in a field.
fn warnings_naming<'a>(events: &'a [LoggedEvent], topic: &str) -> Vec<&'a LoggedEvent> {
    events
        .iter()
        .filter(|event| event.level == tracing::Level::WARN)
        .filter(|event| {
            event.message.contains(topic) || event.fields.iter().any(|(_, value)| value == topic)
        })
        .collect()
}

/// Describes logged events, one a line, for a failure message.
fn describe_events(events: &[LoggedEvent]) -> String {
    if events.is_empty() {
        return "nothing".to_owned();
    }
    let lines: Vec<String> = events.iter().map(|event| format!("  {event}")).collect();
    format!("\n{}", lines.join("\n"))
}

/// Panics unless exactly `expected` warnings were logged so far.
#[track_caller]
fn expect_warnings(logs: &testkit::logs::Logs, expected: usize, step: &str) {
    let events = logs.events();
    let warnings: Vec<LoggedEvent> = events
        .iter()
        .filter(|event| event.level == tracing::Level::WARN)
        .cloned()
        .collect();
    assert!(
        warnings.len() == expected,
        "after {step}, expected {expected} warning(s) in total, but tracing recorded {}: {}. A \
         warning is due each time a Block subscriber joins a topic that already has a Block \
         subscriber, and at no other time",
        warnings.len(),
        describe_events(&warnings)
    );
}

fn second_block_subscriber_logs_warning() {
    let logs = testkit::logs::capture();
    let broker = Broker::new();
    let mut subscriptions = Vec::new();

    // Drop subscribers never hold a publisher back: no warning.
    subscriptions.push(broker.subscribe("orders", SubscribeOptions::default()));
    subscriptions.push(broker.subscribe("orders", SubscribeOptions::default()));
    expect_warnings(&logs, 0, "two Drop subscribers joined \"orders\"");

    // The first Block subscriber of a topic: no warning either.
    subscriptions.push(broker.subscribe("orders", SubscribeOptions::block()));
    expect_warnings(
        &logs,
        0,
        "the first Block subscriber joined \"orders\", which had two Drop subscribers",
    );
    subscriptions.push(broker.subscribe("payments", SubscribeOptions::block()));
    expect_warnings(
        &logs,
        0,
        "the first Block subscriber joined \"payments\", while \"orders\" had one",
    );
    subscriptions.push(broker.subscribe("orders", SubscribeOptions::default()));
    expect_warnings(
        &logs,
        0,
        "a Drop subscriber joined \"orders\", which had a Block subscriber",
    );

    // A Block subscriber that left does not count.
    let (_receiver, handle) = broker.subscribe("solo", SubscribeOptions::block());
    handle.unsubscribe();
    subscriptions.push(broker.subscribe("solo", SubscribeOptions::block()));
    expect_warnings(
        &logs,
        0,
        "a Block subscriber joined \"solo\" after the only other Block subscriber had left",
    );

    // The second Block subscriber of "orders": one warning naming the topic.
    subscriptions.push(broker.subscribe("orders", SubscribeOptions::block()));
    let step = "a second Block subscriber joined \"orders\"";
    expect_warnings(&logs, 1, step);
    let events = logs.events();
    let naming = warnings_naming(&events, "orders");
    assert!(
        naming.len() == 1,
        "after {step}, expected its warning to name the topic \"orders\", in the message or in a \
         field such as tracing::warn!(topic, \"…\"), but the warnings were: {}",
        describe_events(&logs.at_level(tracing::Level::WARN))
    );

    // A third one warns again.
    subscriptions.push(broker.subscribe("orders", SubscribeOptions::block()));
    expect_warnings(&logs, 2, "a third Block subscriber joined \"orders\"");
}

fn zero_buffer_means_default() {
    paused("Broker::subscribe", async {
        let broker = Arc::new(Broker::new());

        // A Drop subscriber with buffer 0 holds DEFAULT_BUFFER messages.
        let log = DropLog::default();
        let (mut receiver, _handle) =
            broker.subscribe("d", log.attach(SubscribeOptions::default().buffer(0)));
        for message in numbered("m", 0..DEFAULT_BUFFER + 1) {
            publish_now(&broker, "d", &message, "to a Drop subscriber with buffer 0").await;
        }
        let situation = format!(
            "after {} publishes to a Drop subscriber with buffer 0 that read nothing",
            DEFAULT_BUFFER + 1
        );
        let advice = format!("buffer 0 means the default of {DEFAULT_BUFFER} messages");
        expect_drained(
            &mut receiver,
            "the subscriber",
            &numbered("m", 0..DEFAULT_BUFFER),
            Then::StayOpen,
            &situation,
            &advice,
        );
        log.expect(
            "the subscriber",
            &[format!("m{DEFAULT_BUFFER}")],
            &situation,
            &advice,
        );

        // A Block subscriber with buffer 0 takes DEFAULT_BUFFER messages
        // before publish waits.
        let (mut receiver, _handle) = broker.subscribe("b", SubscribeOptions::block().buffer(0));
        for message in numbered("m", 0..DEFAULT_BUFFER) {
            publish_now(
                &broker,
                "b",
                &message,
                &format!(
                    "to a Block subscriber with buffer 0, which means {DEFAULT_BUFFER}, before \
                     it was full"
                ),
            )
            .await;
        }
        let mut publisher = spawn_publish(&broker, "b", "one too many");
        settle().await;
        let call = "publish(\"b\", \"one too many\")";
        expect_waiting(
            &mut publisher,
            call,
            &format!(
                "after {DEFAULT_BUFFER} messages filled a Block subscriber with buffer 0, which \
                 means {DEFAULT_BUFFER}"
            ),
            "",
        )
        .await;
        recv_one(&mut receiver, "the Block subscriber", "").await;
        expect_released(publisher, call, "after the subscriber read a message", "").await;
    });
}

fn custom_buffer_is_honoured() {
    paused("Broker::subscribe", async {
        let broker = Arc::new(Broker::new());

        // Buffers smaller and larger than the default, with the Drop policy.
        for buffer in [5, 3 * DEFAULT_BUFFER] {
            let topic = format!("drop {buffer}");
            let log = DropLog::default();
            let (mut receiver, _handle) = broker.subscribe(
                &topic,
                log.attach(SubscribeOptions::default().buffer(buffer)),
            );
            for message in numbered("m", 0..buffer + 1) {
                let situation = format!("to a Drop subscriber with buffer {buffer}");
                publish_now(&broker, &topic, &message, &situation).await;
            }
            let situation = format!(
                "after {} publishes to a Drop subscriber with buffer {buffer} that read nothing",
                buffer + 1
            );
            let advice = format!("Its buffer must hold exactly {buffer} messages");
            expect_drained(
                &mut receiver,
                "the subscriber",
                &numbered("m", 0..buffer),
                Then::StayOpen,
                &situation,
                &advice,
            );
            log.expect(
                "the subscriber",
                &[format!("m{buffer}")],
                &situation,
                &advice,
            );
        }

        // A Block subscriber with buffer 3 takes three before publish waits.
        let (mut receiver, _handle) =
            broker.subscribe("block", SubscribeOptions::block().buffer(3));
        for message in numbered("m", 0..3) {
            let situation = "to a Block subscriber with buffer 3 before it was full";
            publish_now(&broker, "block", &message, situation).await;
        }
        let mut publisher = spawn_publish(&broker, "block", "m3");
        settle().await;
        let call = "publish(\"block\", \"m3\")";
        expect_waiting(
            &mut publisher,
            call,
            "after three messages filled a Block subscriber with buffer 3",
            "",
        )
        .await;
        recv_one(&mut receiver, "the Block subscriber", "").await;
        expect_released(publisher, call, "after the subscriber read a message", "").await;
    });
}

fn publish_without_subscribers_returns_at_once() {
    paused("Broker::publish", async {
        let broker = Broker::new();

        // A topic nobody subscribed to, and one whose subscriber left.
        publish_now(&broker, "nobody", "hello", "to a topic without subscribers").await;
        let (_receiver, handle) = broker.subscribe("gone", SubscribeOptions::block().buffer(1));
        handle.unsubscribe();
        publish_now(
            &broker,
            "gone",
            "one",
            "to a topic whose only Block subscriber unsubscribed",
        )
        .await;
        publish_now(
            &broker,
            "gone",
            "two",
            "to a topic whose only Block subscriber unsubscribed",
        )
        .await;

        // Publishing must not create topics.
        let count = broker.topic_count();
        expect_count(
            "topic_count()",
            count,
            0,
            "after publishing to topics without subscribers",
        );
    });
}

fn close_ends_receivers_after_draining() {
    paused("Broker::close", async {
        let broker = Broker::new();
        let (mut dropping, _dropping_handle) = broker.subscribe("a", SubscribeOptions::default());
        let (mut blocking, _blocking_handle) = broker.subscribe("b", SubscribeOptions::block());
        let (mut idle, _idle_handle) = broker.subscribe("c", SubscribeOptions::default());
        publish_now(&broker, "a", "for a", "to a subscriber with room").await;
        publish_now(&broker, "b", "for b", "to a subscriber with room").await;

        // Close keeps what is buffered, then each receiver ends.
        broker.close();
        let situation = "after close, with one message buffered";
        let advice = "A message buffered before close must still be readable, and then recv() \
                      must return None";
        expect_drained(
            &mut dropping,
            "the Drop subscriber of \"a\"",
            &["for a"],
            Then::End,
            situation,
            advice,
        );
        expect_drained(
            &mut blocking,
            "the Block subscriber of \"b\"",
            &["for b"],
            Then::End,
            situation,
            advice,
        );
        expect_drained(
            &mut idle,
            "the subscriber of \"c\"",
            NOTHING,
            Then::End,
            "after close, with nothing buffered",
            "Close must end every receiver",
        );
        let count = broker.topic_count();
        expect_count("topic_count()", count, 0, "after close");
    });
}

fn use_after_close_is_harmless() {
    paused("Broker::close", async {
        let broker = Broker::new();
        let (_early, early_handle) = broker.subscribe("t", SubscribeOptions::block().buffer(1));
        broker.close();

        // Publishing after close returns at once, with nothing to wait for.
        publish_now(&broker, "t", "one", "after close").await;
        publish_now(&broker, "t", "two", "after close").await;

        // Closing again and unsubscribing after close do nothing.
        broker.close();
        early_handle.unsubscribe();
        early_handle.unsubscribe();

        // A late subscriber gets a receiver that has already ended.
        let (mut late, late_handle) = broker.subscribe("t", SubscribeOptions::block());
        expect_drained(
            &mut late,
            "the receiver of a subscribe after close",
            NOTHING,
            Then::End,
            "after close",
            "Subscribe after close must return a receiver that has already ended",
        );
        let count = broker.subscriber_count("t");
        expect_count(
            "subscriber_count(\"t\")",
            count,
            0,
            "after close and a later subscribe, because subscribe after close must not register \
             a subscriber",
        );
        late_handle.unsubscribe();
    });
}

fn unsubscribe_removes_only_its_subscriber() {
    paused("Unsubscribe::unsubscribe", async {
        let broker = Broker::new();
        let (mut a, a_handle) = broker.subscribe("t", SubscribeOptions::block());
        let (mut b, b_handle) = broker.subscribe("t", SubscribeOptions::default());
        let (mut c, c_handle) = broker.subscribe("t", SubscribeOptions::block());
        let (mut x, _x_handle) = broker.subscribe("x", SubscribeOptions::default());

        // A and B leave in the order they joined.
        a_handle.unsubscribe();
        b_handle.unsubscribe();
        publish_now(&broker, "t", "for c", "to the one subscriber left").await;
        publish_now(&broker, "x", "for x", "to a subscriber with room").await;

        let situation = "after A, B and C subscribed to \"t\", A and then B unsubscribed, and \
                         \"for c\" was published";
        expect_drained(
            &mut c,
            "receiver C",
            &["for c"],
            Then::StayOpen,
            situation,
            "A handle must remove exactly its own subscriber, whatever left before it",
        );
        expect_drained(&mut a, "receiver A", NOTHING, Then::End, situation, "");
        expect_drained(&mut b, "receiver B", NOTHING, Then::End, situation, "");
        expect_drained(
            &mut x,
            "the subscriber of \"x\"",
            &["for x"],
            Then::StayOpen,
            situation,
            "Unsubscribing from \"t\" must not disturb another topic",
        );
        let count = broker.subscriber_count("t");
        expect_count("subscriber_count(\"t\")", count, 1, "when only C is left");

        // The last one leaves, and the topic's entry goes with it.
        c_handle.unsubscribe();
        let count = broker.topic_count();
        expect_count(
            "topic_count()",
            count,
            1,
            "after the last subscriber of \"t\" left, because only \"x\" has subscribers. An \
             empty topic entry must be removed",
        );
    });
}

fn repeated_unsubscribe_is_noop() {
    paused("Unsubscribe::unsubscribe", async {
        let broker = Broker::new();
        let (_first, first_handle) = broker.subscribe("t", SubscribeOptions::block());
        first_handle.unsubscribe();
        let (mut newcomer, _newcomer_handle) = broker.subscribe("t", SubscribeOptions::block());

        // A second call from the old handle must not detach the newcomer.
        first_handle.unsubscribe();
        publish_now(&broker, "t", "still here", "to a subscriber with room").await;
        expect_drained(
            &mut newcomer,
            "the newcomer",
            &["still here"],
            Then::StayOpen,
            "after a subscriber of \"t\" unsubscribed, a newcomer subscribed, the first \
             handle's unsubscribe() ran again, and \"still here\" was published",
            "A repeated unsubscribe() must do nothing, and each handle must identify its own \
             subscriber, not a slot or id that gets reused",
        );

        // A handle that outlives its broker does nothing either.
        let (_receiver, orphan) = {
            let short_lived = Broker::new();
            short_lived.subscribe("t", SubscribeOptions::block())
        };
        orphan.unsubscribe();
    });
}

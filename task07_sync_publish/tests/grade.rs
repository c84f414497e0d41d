//! Grading suite for task 7: a publish that waits until every subscriber has
//! the message, under one deadline.
//!
//! The first checks cover the small broker underneath: topics, buffer sizes,
//! ids, cancellation and close. The rest cover `publish_sync`. It returns at
//! once when every subscriber has room, and it waits for all full subscribers
//! at the same time. Its timeout counts from the call, and its error names
//! exactly the subscribers that stalled and the ones that have the message.
//! A subscriber that leaves is gone rather than stalled, the call stops when
//! the broker closes, and it leaves no task behind.
//!
//! Every check runs on a current-thread runtime with paused time, so waiting
//! costs no real time and timings are exact: a subscriber "makes room at
//! 20 ms" when a task reads its buffer 20 ms of virtual time after the call.
//! Most scenarios give each subscriber a buffer of 1 and fill it with one
//! message, "old", so that it has no room until it reads.

use std::sync::Arc;
use std::time::Duration;

use task07_sync_publish::{Broker, DEFAULT_BUFFER, PublishError, SubscriberId, Subscription};
use testkit::runtime::paused;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

fn main() -> std::process::ExitCode {
    testkit::suite!()
        .check(
            "publish_reaches_topic_subscribers_only",
            "Broker::publish",
            publish_reaches_topic_subscribers_only,
        )
        .check(
            "full_buffer_drops_on_publish",
            "Broker::publish",
            full_buffer_drops_on_publish,
        )
        .check(
            "subscriber_ids_are_distinct",
            "Broker::subscribe",
            subscriber_ids_are_distinct,
        )
        .check(
            "cancel_ends_subscription",
            "Broker::subscribe",
            cancel_ends_subscription,
        )
        .check(
            "close_ends_every_subscription",
            "Broker::close",
            close_ends_every_subscription,
        )
        .check(
            "publish_sync_with_room_returns_at_once",
            "Broker::publish_sync",
            publish_sync_with_room_returns_at_once,
        )
        .check(
            "duration_max_means_no_limit",
            "Broker::publish_sync",
            duration_max_means_no_limit,
        )
        .check(
            "publish_sync_without_subscribers_is_ok",
            "Broker::publish_sync",
            publish_sync_without_subscribers_is_ok,
        )
        .check(
            "deliveries_run_in_parallel",
            "Broker::publish_sync",
            deliveries_run_in_parallel,
        )
        .check(
            "stalled_subscriber_named_exactly",
            "Broker::publish_sync",
            stalled_subscriber_named_exactly,
        )
        .check(
            "timeout_counts_from_the_call",
            "Broker::publish_sync",
            timeout_counts_from_the_call,
        )
        .check(
            "deadline_covers_late_subscribers",
            "Broker::publish_sync",
            deadline_covers_late_subscribers,
        )
        .check(
            "publish_sync_skips_cancelled_subscribers",
            "Broker::publish_sync",
            publish_sync_skips_cancelled_subscribers,
        )
        .check(
            "cancel_mid_wait_is_not_a_stall",
            "Broker::publish_sync",
            cancel_mid_wait_is_not_a_stall,
        )
        .check(
            "drop_mid_wait_is_not_a_stall",
            "Broker::publish_sync",
            drop_mid_wait_is_not_a_stall,
        )
        .check(
            "leaving_and_stalled_named_apart",
            "Broker::publish_sync",
            leaving_and_stalled_named_apart,
        )
        .check(
            "publish_sync_after_close_fails",
            "Broker::publish_sync",
            publish_sync_after_close_fails,
        )
        .check(
            "close_mid_wait_stops_publish_sync",
            "Broker::publish_sync",
            close_mid_wait_stops_publish_sync,
        )
        .check(
            "publish_sync_leaves_no_task",
            "Broker::publish_sync",
            publish_sync_leaves_no_task,
        )
        .check(
            "concurrent_publish_sync_all_arrive",
            "Broker::publish_sync",
            concurrent_publish_sync_all_arrive,
        )
        .run()
}

/// Topic of every scenario with a single topic.
const TOPIC: &str = "audit";

/// Message that fills each buffer of 1 before the call under test.
const OLD: &str = "old";

/// Message that the call under test publishes.
const NEW: &str = "new";

/// Virtual time a check watches a subscription for a message that must not
/// come, or for its end. In paused time a longer wait costs no real time.
const WATCH: Duration = Duration::from_secs(1);

/// Virtual time by which a timing may exceed its exact value. Tokio's timers
/// tick in whole milliseconds, so an exact wait can end up to 1 ms late.
const SLACK: Duration = Duration::from_millis(5);

/// Timeout of the calls that are expected to succeed long before it.
const GENEROUS: Duration = Duration::from_secs(10);

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// Describes a duration for a failure message: "50 ms" or "1.5 s".
fn describe(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{} ms", duration.as_millis())
    } else {
        format!("{} s", duration.as_secs_f64())
    }
}

/// Describes a list of ids the way a failure message shows it: "[#1, #3]".
fn describe_ids(ids: &[SubscriberId]) -> String {
    let names: Vec<String> = ids.iter().map(ToString::to_string).collect();
    format!("[{}]", names.join(", "))
}

/// Returns the number of tasks alive on the current runtime.
fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Subscribes `count` subscribers to [`TOPIC`], each with a buffer of 1 and
/// its own token, and fills every buffer with [`OLD`].
fn full_subscribers(
    broker: &Broker<String>,
    count: usize,
) -> Vec<(Subscription<String>, CancellationToken)> {
    let subscribers: Vec<_> = (0..count)
        .map(|_| {
            let token = CancellationToken::new();
            (broker.subscribe(token.clone(), TOPIC, 1), token)
        })
        .collect();
    broker.publish(TOPIC, OLD.to_owned());
    subscribers
}

/// Reads the [`OLD`] message out of `subscription`, so that it has room, and
/// panics if it is not there.
fn make_room(subscription: &mut Subscription<String>) {
    let id = subscription.id();
    let read = subscription.try_recv();
    assert!(
        read.as_deref() == Ok(OLD),
        "subscriber {id} had {OLD:?} published to its buffer of 1, but try_recv() returned \
         {read:?}. Publish must deliver to every subscriber whose buffer has room"
    );
}

/// What a subscriber that makes room at a set time received.
#[derive(Debug)]
struct Reading {
    subscription: Subscription<String>,
    /// The message after [`OLD`] and when it arrived, counted from `start`,
    /// or `None` if nothing arrived within [`WATCH`].
    next: Option<(String, Duration)>,
}

/// Spawns a task that makes room in `subscription` at `start + room_at` by
/// reading [`OLD`], then waits up to [`WATCH`] for the next message.
fn make_room_at(
    mut subscription: Subscription<String>,
    start: Instant,
    room_at: Duration,
) -> JoinHandle<Reading> {
    tokio::spawn(async move {
        tokio::time::sleep_until(start + room_at).await;
        make_room(&mut subscription);
        let next = match tokio::time::timeout(WATCH, subscription.recv()).await {
            Ok(Some(message)) => Some((message, start.elapsed())),
            Ok(None) | Err(_) => None,
        };
        Reading { subscription, next }
    })
}

/// Waits for `task` and re-raises its panic, so the check fails with the
/// task's own message.
async fn join<T>(task: JoinHandle<T>) -> T {
    match task.await {
        Ok(output) => output,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(err) => panic!("a task of the check was cancelled: {err}"),
    }
}

/// Panics unless `elapsed` lies in `[expected, expected + SLACK)`.
#[track_caller]
fn expect_elapsed(elapsed: Duration, expected: Duration, situation: &str, advice: &str) {
    assert!(
        elapsed >= expected && elapsed < expected + SLACK,
        "{situation}, expected publish_sync to return {} after the call, but it returned after \
         {}. {advice}",
        describe(expected),
        describe(elapsed)
    );
}

/// Panics unless `result` is `Ok(())`.
#[track_caller]
fn expect_ok(result: &Result<(), PublishError>, situation: &str, advice: &str) {
    if let Err(err) = result {
        panic!(
            "{situation}, expected publish_sync to return Ok(()), but it returned \
             Err({err:?}): \"{err}\". {advice}"
        );
    }
}

/// The parts of a [`PublishError::Timeout`] that a check compares.
struct Timeout<'a> {
    topic: &'a str,
    timeout: Duration,
    delivered: Vec<SubscriberId>,
    stalled: Vec<SubscriberId>,
}

/// Panics unless `result` is a [`PublishError::Timeout`] with exactly the
/// fields of `expected`; each field gets its own message.
#[track_caller]
fn expect_timeout(result: &Result<(), PublishError>, expected: &Timeout<'_>, situation: &str) {
    let stalled_list = describe_ids(&expected.stalled);
    let (topic, timeout, delivered, stalled) = match result {
        Ok(()) => panic!(
            "{situation}, expected publish_sync to fail with PublishError::Timeout, but it \
             returned Ok(()) although the subscribers {stalled_list} never accepted the message. \
             When the deadline passes before every subscriber has accepted, publish_sync must \
             return an error, never Ok"
        ),
        Err(PublishError::Closed) => panic!(
            "{situation}, expected publish_sync to fail with PublishError::Timeout, but it \
             returned PublishError::Closed although the broker is open"
        ),
        Err(PublishError::Timeout {
            topic,
            timeout,
            delivered,
            stalled,
        }) => (topic, timeout, delivered, stalled),
    };

    assert!(
        *stalled == expected.stalled,
        "{situation}, expected PublishError::Timeout to name the stalled subscribers \
         {stalled_list}, in subscription order, but `stalled` was {}. It must name exactly \
         the subscribers whose buffers stayed full until the deadline: not the ones that \
         accepted, not the ones that left",
        describe_ids(stalled)
    );
    let mut sorted = delivered.clone();
    sorted.sort_by_key(ToString::to_string);
    let mut expected_sorted = expected.delivered.clone();
    expected_sorted.sort_by_key(ToString::to_string);
    assert!(
        *delivered == expected.delivered || sorted != expected_sorted,
        "{situation}, PublishError::Timeout listed the right subscribers in `delivered`, but \
         as {} instead of {}: list them in subscription order, not in the order the \
         deliveries finished",
        describe_ids(delivered),
        describe_ids(&expected.delivered)
    );
    assert!(
        *delivered == expected.delivered,
        "{situation}, expected PublishError::Timeout to list the subscribers that accepted the \
         message, {}, in subscription order, but `delivered` was {}. A timeout does not take \
         the message back from them, so the error must say that it is half-delivered",
        describe_ids(&expected.delivered),
        describe_ids(delivered)
    );
    assert!(
        topic == expected.topic && *timeout == expected.timeout,
        "{situation}, expected PublishError::Timeout to carry topic {:?} and timeout {:?}, but \
         it carried topic {topic:?} and timeout {timeout:?}",
        expected.topic,
        expected.timeout
    );
}

/// Panics unless `subscription` yields nothing within [`WATCH`] and stays
/// open.
async fn expect_nothing_more(subscription: &mut Subscription<String>, situation: &str) {
    let id = subscription.id();
    let next = tokio::time::timeout(WATCH, subscription.recv()).await;
    assert!(
        next.is_err(),
        "{situation}, expected subscriber {id} to receive nothing more within {} of virtual \
         time, but recv() returned {:?}. A subscriber named as stalled must never receive the \
         message later: stop every delivery that still waits at the deadline",
        describe(WATCH),
        next.ok().flatten()
    );
}

/// Panics unless `subscription` yields exactly `expected` and then ends,
/// each within [`WATCH`].
async fn expect_drained_then_end(
    subscription: &mut Subscription<String>,
    expected: &[&str],
    situation: &str,
    advice: &str,
) {
    let id = subscription.id();
    let mut received = Vec::new();
    let ended = loop {
        match tokio::time::timeout(WATCH, subscription.recv()).await {
            Ok(Some(message)) => received.push(message),
            Ok(None) => break true,
            Err(_) => break false,
        }
    };
    let ending = if ended {
        "then ended"
    } else {
        "then stayed open"
    };
    assert!(
        received == expected && ended,
        "{situation}, expected subscriber {id} to receive {expected:?} and then end, but it \
         received {received:?} and {ending}. {advice}"
    );
}

fn publish_reaches_topic_subscribers_only() {
    paused("Broker::publish", async {
        let broker = Broker::new();
        let token = CancellationToken::new();
        let mut first = broker.subscribe(token.clone(), "news", 0);
        let mut second = broker.subscribe(token.clone(), "news", 0);
        let mut other = broker.subscribe(token.clone(), "sport", 0);

        // One message to "news" reaches both of its subscribers only.
        broker.publish("news", "hello".to_owned());
        for (name, subscription) in [("first", &mut first), ("second", &mut second)] {
            let read = subscription.try_recv();
            assert!(
                read.as_deref() == Ok("hello"),
                "after one publish of \"hello\" to \"news\", expected the {name} subscriber \
                 of \"news\" to have it, but try_recv() returned {read:?}. Publish must \
                 deliver to every subscriber of the topic"
            );
        }
        let read = other.try_recv();
        assert!(
            read == Err(TryRecvError::Empty),
            "after one publish to \"news\", expected the subscriber of \"sport\" to have \
             nothing, but try_recv() returned {read:?}. Publish must deliver only to \
             subscribers of exactly that topic"
        );

        // The counts follow the subscriptions.
        for (topic, expected) in [("news", 2), ("sport", 1), ("weather", 0)] {
            let count = broker.subscriber_count(topic);
            assert!(
                count == expected,
                "subscriber_count({topic:?}) returned {count}, but {expected} subscribers \
                 are live on that topic"
            );
        }
    });
}

fn full_buffer_drops_on_publish() {
    paused("Broker::publish", async {
        let broker = Broker::new();
        let token = CancellationToken::new();
        let mut small = broker.subscribe(token.clone(), TOPIC, 2);
        let mut default_sized = broker.subscribe(token.clone(), TOPIC, 0);

        // Publish one more than the default buffer holds, reading nothing.
        // Publish never waits, so this returns.
        let published: Vec<String> = (0..=DEFAULT_BUFFER).map(|n| format!("m{n}")).collect();
        for message in &published {
            broker.publish(TOPIC, message.clone());
        }

        // Each subscriber has the first messages that fit, then nothing.
        let expectations = [
            ("with buffer 2", &mut small, 2),
            ("with buffer 0", &mut default_sized, DEFAULT_BUFFER),
        ];
        for (name, subscription, capacity) in expectations {
            let mut received = Vec::new();
            while let Ok(message) = subscription.try_recv() {
                received.push(message);
            }
            assert!(
                received == published[..capacity],
                "after {} publishes to subscribers that read nothing, expected the subscriber \
                 {name} to hold the first {capacity} messages, but it held {received:?}. A \
                 buffer of 0 means DEFAULT_BUFFER ({DEFAULT_BUFFER}), and publish drops a \
                 message for a subscriber whose buffer is full",
                published.len()
            );
        }
    });
}

fn subscriber_ids_are_distinct() {
    paused("Broker::subscribe", async {
        let broker: Broker<String> = Broker::new();
        let token = CancellationToken::new();
        let subscriptions = [
            broker.subscribe(token.clone(), "a", 0),
            broker.subscribe(token.clone(), "a", 0),
            broker.subscribe(token.clone(), "b", 0),
        ];

        // Every subscriber has its own id, and it does not change.
        let ids: Vec<SubscriberId> = subscriptions.iter().map(Subscription::id).collect();
        for (index, id) in ids.iter().enumerate() {
            assert!(
                !ids[..index].contains(id),
                "three subscribe calls returned the ids {}, but every subscriber needs an id \
                 of its own, or an error could not name the one that stalled",
                describe_ids(&ids)
            );
        }
        for (subscription, id) in subscriptions.iter().zip(&ids) {
            assert!(
                subscription.id() == *id,
                "id() returned {id} and then {} for the same subscription; an id must be \
                 stable",
                subscription.id()
            );
        }
    });
}

fn cancel_ends_subscription() {
    paused("Broker::subscribe", async {
        let broker = Broker::new();
        let token = CancellationToken::new();
        let mut subscription = broker.subscribe(token.clone(), TOPIC, 0);
        let mut other = broker.subscribe(CancellationToken::new(), TOPIC, 0);

        // A message before the cancel stays; one after it never arrives.
        broker.publish(TOPIC, "before".to_owned());
        token.cancel();
        broker.publish(TOPIC, "after".to_owned());
        expect_drained_then_end(
            &mut subscription,
            &["before"],
            "after a publish, a cancel and another publish",
            "A cancelled subscription yields what it buffered before the cancel, then ends, \
             and publish must skip a subscriber whose token is cancelled",
        )
        .await;
        let count = broker.subscriber_count(TOPIC);
        assert!(
            count == 1,
            "subscriber_count({TOPIC:?}) returned {count} after one of two subscribers \
             cancelled its token; a cancelled subscriber must not count"
        );
        let read = other.try_recv();
        assert!(
            read.as_deref() == Ok("before"),
            "the subscriber that did not cancel should have \"before\" first, but try_recv() \
             returned {read:?}; one subscriber's cancel must not affect another"
        );

        // A token that is already cancelled registers nothing.
        let mut late = broker.subscribe(token.clone(), TOPIC, 0);
        let state = late.try_recv();
        assert!(
            state == Err(TryRecvError::Disconnected),
            "subscribe with an already-cancelled token should return a subscription that has \
             already ended (try_recv() reports Disconnected), but try_recv() returned {state:?}"
        );
        let count = broker.subscriber_count(TOPIC);
        assert!(
            count == 1,
            "subscriber_count({TOPIC:?}) returned {count} after a subscribe with a cancelled \
             token, but that subscribe must register nothing"
        );
    });
}

fn close_ends_every_subscription() {
    paused("Broker::close", async {
        let broker = Broker::new();
        let token = CancellationToken::new();
        let mut first = broker.subscribe(token.clone(), "a", 0);
        let mut second = broker.subscribe(token.clone(), "b", 0);
        broker.publish("a", "kept".to_owned());

        // Close ends every subscription after what it buffered; a second
        // close changes nothing.
        broker.close();
        broker.close();
        let situation = "after close()";
        let advice = "Close must end every subscription once it has drained";
        expect_drained_then_end(&mut first, &["kept"], situation, advice).await;
        expect_drained_then_end(&mut second, &[], situation, advice).await;
        let count = broker.subscriber_count("a");
        assert!(
            count == 0,
            "subscriber_count(\"a\") returned {count} after close(); it must be 0"
        );

        // Publish after close does nothing, and a late subscription has ended.
        broker.publish("a", "ignored".to_owned());
        let mut late = broker.subscribe(token.clone(), "a", 0);
        let state = late.try_recv();
        assert!(
            state == Err(TryRecvError::Disconnected),
            "subscribe after close() should return a subscription that has already ended \
             (try_recv() reports Disconnected), but try_recv() returned {state:?}"
        );
        assert!(
            !token.is_cancelled(),
            "close() cancelled the token passed to subscribe; that token belongs to the caller"
        );
    });
}

fn publish_sync_with_room_returns_at_once() {
    paused("Broker::publish_sync", async {
        let broker = Broker::new();
        let token = CancellationToken::new();
        let mut subscriptions: Vec<_> = (0..3)
            .map(|_| broker.subscribe(token.clone(), TOPIC, 0))
            .collect();

        // Every subscriber has room, so the call returns without waiting.
        let timeouts = [("10 s", GENEROUS), ("another 10 s", GENEROUS)];
        for (name, timeout) in timeouts {
            let situation =
                format!("with three subscribers that have room and a timeout of {name}");
            let start = Instant::now();
            let result = broker.publish_sync(TOPIC, name.to_owned(), timeout).await;
            expect_ok(
                &result,
                &situation,
                "A subscriber whose buffer has room accepts the message at once",
            );
            expect_elapsed(
                start.elapsed(),
                Duration::ZERO,
                &situation,
                "When every buffer has room there is nothing to wait for",
            );
        }

        // Each subscriber got each message exactly once.
        let expected: Vec<String> = timeouts
            .iter()
            .map(|(name, _)| (*name).to_owned())
            .collect();
        for subscription in &mut subscriptions {
            let mut received = Vec::new();
            while let Ok(message) = subscription.try_recv() {
                received.push(message);
            }
            assert!(
                received == expected,
                "after two publish_sync calls that returned Ok, expected subscriber {} to \
                 hold {expected:?}, but it held {received:?}. Ok(()) means every subscriber \
                 has the message, once",
                subscription.id()
            );
        }
    });
}

fn publish_sync_without_subscribers_is_ok() {
    paused("Broker::publish_sync", async {
        let before = alive_tasks();
        let broker = Broker::new();
        let mut elsewhere = broker.subscribe(CancellationToken::new(), "elsewhere", 0);

        // A topic without any subscriber.
        let start = Instant::now();
        let result = broker.publish_sync(TOPIC, NEW.to_owned(), GENEROUS).await;
        let situation = format!("for a topic without subscribers ({TOPIC:?})");
        expect_ok(
            &result,
            &situation,
            "With no subscriber there is nobody to wait for",
        );
        expect_elapsed(
            start.elapsed(),
            Duration::ZERO,
            &situation,
            "With no subscriber there is nobody to wait for",
        );

        // A topic whose only subscriber has left.
        let token = CancellationToken::new();
        let _cancelled = broker.subscribe(token.clone(), "left", 1);
        token.cancel();
        let start = Instant::now();
        let result = broker.publish_sync("left", NEW.to_owned(), GENEROUS).await;
        let situation = "for a topic whose only subscriber cancelled its token";
        expect_ok(
            &result,
            situation,
            "A subscriber that left is not waited for",
        );
        expect_elapsed(
            start.elapsed(),
            Duration::ZERO,
            situation,
            "A subscriber that left is not waited for",
        );

        // Other topics are not touched, and no task is left.
        let read = elsewhere.try_recv();
        assert!(
            read == Err(TryRecvError::Empty),
            "publish_sync to {TOPIC:?} reached a subscriber of \"elsewhere\": try_recv() \
             returned {read:?}"
        );
        let alive = alive_tasks();
        assert!(
            alive == before,
            "publish_sync without subscribers left {} task(s) alive after it returned",
            alive.saturating_sub(before)
        );
    });
}

fn deliveries_run_in_parallel() {
    paused("Broker::publish_sync", async {
        let broker = Broker::new();

        // Five full subscribers make room at different times. Waiting for
        // them in turn would hold back one that is ready behind one that is
        // not.
        let room_at = [ms(50), ms(10), ms(40), ms(20), ms(30)];
        let subscribers = full_subscribers(&broker, room_at.len());
        let start = Instant::now();
        let readers: Vec<_> = subscribers
            .into_iter()
            .zip(room_at)
            .map(|((subscription, _token), at)| make_room_at(subscription, start, at))
            .collect();
        let result = broker.publish_sync(TOPIC, NEW.to_owned(), GENEROUS).await;
        let elapsed = start.elapsed();

        // The call succeeds when the slowest makes room, at 50 ms.
        let situation = "with five full subscribers that make room at 50, 10, 40, 20 and 30 ms";
        expect_ok(
            &result,
            situation,
            "Every subscriber made room long before the 10 s timeout",
        );
        expect_elapsed(
            elapsed,
            ms(50),
            situation,
            "The call must take as long as the slowest subscriber, here 50 ms",
        );

        // Each subscriber got the message as soon as it had room.
        for (reader, at) in readers.into_iter().zip(room_at) {
            let Reading { subscription, next } = join(reader).await;
            let id = subscription.id();
            let Some((message, received_at)) = next else {
                panic!(
                    "{situation}, subscriber {id}, which made room at {}, never received the \
                     message although publish_sync returned Ok",
                    describe(at)
                );
            };
            assert!(
                message == NEW,
                "{situation}, subscriber {id} received {message:?} after {OLD:?}, but \
                 expected {NEW:?}"
            );
            assert!(
                received_at < at + SLACK,
                "{situation}, subscriber {id} made room at {} but received the message only at \
                 {}. The deliveries must run at the same time: start a wait for every full \
                 subscriber at once (for example one task per subscriber in a JoinSet) \
                 instead of awaiting them one after another",
                describe(at),
                describe(received_at)
            );
        }
    });
}

fn stalled_subscriber_named_exactly() {
    paused("Broker::publish_sync", async {
        let broker = Broker::new();

        // Of three full subscribers, the first makes room at 20 ms, the
        // second never does, and the third has room from the start.
        let mut subscribers = full_subscribers(&broker, 3).into_iter();
        let (first, _first_token) = subscribers.next().expect("three subscribers");
        let (mut stalled, _stalled_token) = subscribers.next().expect("three subscribers");
        let (mut third, _third_token) = subscribers.next().expect("three subscribers");
        make_room(&mut third);
        let ids = [first.id(), stalled.id(), third.id()];
        let start = Instant::now();
        let reader = make_room_at(first, start, ms(20));
        let timeout = ms(100);
        let result = broker.publish_sync(TOPIC, NEW.to_owned(), timeout).await;
        let elapsed = start.elapsed();

        // The error names exactly the stalled one, and the two others.
        let situation = format!(
            "with subscribers {} (room at 20 ms), {} (never makes room) and {} (room from the \
             start) and a timeout of 100 ms",
            ids[0], ids[1], ids[2]
        );
        let expected = Timeout {
            topic: TOPIC,
            timeout,
            delivered: vec![ids[0], ids[2]],
            stalled: vec![ids[1]],
        };
        expect_timeout(&result, &expected, &situation);
        expect_elapsed(
            elapsed,
            timeout,
            &situation,
            "A call with a stalled subscriber returns when the timeout has passed",
        );
        if let Err(err) = &result {
            let text = err.to_string();
            assert!(
                text.contains(&ids[1].to_string()),
                "{situation}, the error's message {text:?} does not name the stalled \
                 subscriber {}",
                ids[1]
            );
        }

        // The two that accepted have the message.
        let Reading { next, .. } = join(reader).await;
        assert!(
            next.as_ref().map(|(message, _)| message.as_str()) == Some(NEW),
            "{situation}, subscriber {} is named as delivered but received {next:?} after \
             making room",
            ids[0]
        );
        let read = third.try_recv();
        assert!(
            read.as_deref() == Ok(NEW),
            "{situation}, subscriber {} is named as delivered but try_recv() returned {read:?}",
            ids[2]
        );

        // The stalled one has only what it had, even after it makes room.
        make_room(&mut stalled);
        expect_nothing_more(
            &mut stalled,
            &format!("{situation}, after the call returned"),
        )
        .await;
    });
}

fn timeout_counts_from_the_call() {
    paused("Broker::publish_sync", async {
        let broker = Broker::new();
        let subscribers = full_subscribers(&broker, 3);
        let ids: Vec<SubscriberId> = subscribers.iter().map(|(s, _)| s.id()).collect();

        // Three subscribers that never make room share one 50 ms deadline.
        let timeout = ms(50);
        let start = Instant::now();
        let result = broker.publish_sync(TOPIC, NEW.to_owned(), timeout).await;
        let elapsed = start.elapsed();

        let situation = "with three full subscribers that never make room and a timeout of 50 ms";
        expect_elapsed(
            elapsed,
            timeout,
            situation,
            "The timeout counts from the call and covers every subscriber at once; a timer per \
             subscriber, or one that restarts, makes the call take up to 3 x 50 ms",
        );
        let expected = Timeout {
            topic: TOPIC,
            timeout,
            delivered: Vec::new(),
            stalled: ids,
        };
        expect_timeout(&result, &expected, situation);
        drop(subscribers);
    });
}

fn deadline_covers_late_subscribers() {
    paused("Broker::publish_sync", async {
        let broker = Broker::new();

        // Three full subscribers make room at 30, 60 and 90 ms, and the
        // timeout is 50 ms: only the first makes it.
        let room_at = [ms(30), ms(60), ms(90)];
        let subscribers = full_subscribers(&broker, room_at.len());
        let ids: Vec<SubscriberId> = subscribers.iter().map(|(s, _)| s.id()).collect();
        let start = Instant::now();
        let readers: Vec<_> = subscribers
            .into_iter()
            .zip(room_at)
            .map(|((subscription, _token), at)| make_room_at(subscription, start, at))
            .collect();
        let timeout = ms(50);
        let result = broker.publish_sync(TOPIC, NEW.to_owned(), timeout).await;
        let elapsed = start.elapsed();

        let situation = "with full subscribers that make room at 30, 60 and 90 ms and a timeout \
                         of 50 ms";
        expect_elapsed(
            elapsed,
            timeout,
            situation,
            "The deadline is 50 ms after the call, whatever happens in between; a timer that \
             starts again whenever a subscriber accepts lets the call run late",
        );
        let expected = Timeout {
            topic: TOPIC,
            timeout,
            delivered: vec![ids[0]],
            stalled: vec![ids[1], ids[2]],
        };
        expect_timeout(&result, &expected, situation);

        // The late two never get the message, even once they have room.
        for (reader, at) in readers.into_iter().zip(room_at) {
            let Reading { subscription, next } = join(reader).await;
            let id = subscription.id();
            if at < timeout {
                assert!(
                    next.as_ref().map(|(message, _)| message.as_str()) == Some(NEW),
                    "{situation}, subscriber {id} made room at {} but received {next:?}",
                    describe(at)
                );
            } else {
                assert!(
                    next.is_none(),
                    "{situation}, subscriber {id} was named as stalled, but after it made room \
                     at {} it received {next:?}. A delivery still waiting at the deadline must \
                     be stopped, or the message arrives after the caller was told it did not",
                    describe(at)
                );
            }
        }
    });
}

fn duration_max_means_no_limit() {
    paused("Broker::publish_sync", async {
        let broker = Broker::new();
        let token = CancellationToken::new();
        let mut roomy = broker.subscribe(token.clone(), TOPIC, 0);

        // A timeout of Duration::MAX cannot be added to the clock: `now +
        // Duration::MAX` panics with "overflow when adding duration to
        // instant". The contract reads it as "no limit".
        let situation = "with a subscriber that has room and a timeout of Duration::MAX";
        let result = broker
            .publish_sync(TOPIC, NEW.to_owned(), Duration::MAX)
            .await;
        expect_ok(
            &result,
            situation,
            "Duration::MAX means waiting without limit; Instant::checked_add returns None for \
             a deadline the clock cannot hold",
        );
        let read = roomy.try_recv();
        assert!(
            read.as_deref() == Ok(NEW),
            "{situation}, publish_sync returned Ok, but the subscriber's try_recv() returned \
             {read:?}"
        );

        // A full subscriber that makes room after 30 minutes still gets it.
        let mut subscribers = full_subscribers(&broker, 1);
        let (slow, _slow_token) = subscribers.pop().expect("one subscriber");
        let start = Instant::now();
        let reader = make_room_at(slow, start, Duration::from_secs(1800));
        let result = broker
            .publish_sync(TOPIC, NEW.to_owned(), Duration::MAX)
            .await;
        let situation = "with a full subscriber that makes room after 30 minutes and a timeout \
                         of Duration::MAX";
        expect_ok(
            &result,
            situation,
            "Duration::MAX means waiting without limit, however long the subscriber takes",
        );
        expect_elapsed(
            start.elapsed(),
            Duration::from_secs(1800),
            situation,
            "With no limit the call returns when the last subscriber accepts",
        );
        let reading = join(reader).await;
        assert!(
            reading.next.as_ref().map(|(message, _)| message.as_str()) == Some(NEW),
            "{situation}, publish_sync returned Ok, but the subscriber then received {:?}",
            reading.next
        );
    });
}

fn publish_sync_skips_cancelled_subscribers() {
    paused("Broker::publish_sync", async {
        let broker = Broker::new();

        // Subscriber `cancelled` has room but cancels its token before the call;
        // subscriber `full` never makes room.
        let cancelled_token = CancellationToken::new();
        let mut cancelled = broker.subscribe(cancelled_token.clone(), TOPIC, 4);
        let mut subscribers = full_subscribers(&broker, 1);
        let (mut full, _full_token) = subscribers.pop().expect("one subscriber");
        cancelled_token.cancel();
        let result = broker.publish_sync(TOPIC, NEW.to_owned(), ms(50)).await;

        // The cancelled one has left: it is neither delivered nor stalled,
        // and the message never reaches it.
        let situation = format!(
            "with subscriber {} that cancelled its token before the call and subscriber {} \
             whose buffer stays full, and a timeout of 50 ms",
            cancelled.id(),
            full.id()
        );
        if let Err(PublishError::Timeout { delivered, .. }) = &result {
            assert!(
                !delivered.contains(&cancelled.id()),
                "{situation}, PublishError::Timeout listed subscriber {} in `delivered`, but \
                 it had cancelled its token before the call and left. publish_sync must skip \
                 every subscriber whose token is cancelled, as publish does",
                cancelled.id()
            );
        }
        expect_timeout(
            &result,
            &Timeout {
                topic: TOPIC,
                timeout: ms(50),
                delivered: Vec::new(),
                stalled: vec![full.id()],
            },
            &situation,
        );
        expect_drained_then_end(
            &mut cancelled,
            &[OLD],
            &situation,
            "No message published after a subscriber's token was cancelled reaches it, from \
             publish_sync as from publish: skip every subscriber whose token is cancelled",
        )
        .await;
        make_room(&mut full);
        expect_nothing_more(&mut full, &situation).await;
    });
}

fn cancel_mid_wait_is_not_a_stall() {
    paused("Broker::publish_sync", async {
        let broker = Broker::new();

        // One full subscriber makes room at 10 ms; the other never does but
        // cancels its token at 20 ms.
        let mut subscribers = full_subscribers(&broker, 2).into_iter();
        let (ready, _ready_token) = subscribers.next().expect("two subscribers");
        let (mut leaving, leaving_token) = subscribers.next().expect("two subscribers");
        let start = Instant::now();
        let reader = make_room_at(ready, start, ms(10));
        let canceller = tokio::spawn(async move {
            tokio::time::sleep_until(start + ms(20)).await;
            leaving_token.cancel();
        });
        let result = broker.publish_sync(TOPIC, NEW.to_owned(), ms(100)).await;
        let elapsed = start.elapsed();

        // The call succeeds as soon as the second one has left.
        let situation = format!(
            "with a subscriber that makes room at 10 ms and subscriber {} that cancels its \
             token at 20 ms, and a timeout of 100 ms",
            leaving.id()
        );
        let advice = "A subscriber that cancels while publish_sync waits has left: stop \
                      waiting for it (watch its token), and do not name it as stalled";
        expect_ok(&result, &situation, advice);
        expect_elapsed(elapsed, ms(20), &situation, advice);
        join(canceller).await;
        join(reader).await;

        // The one that left keeps what it had and then ends.
        expect_drained_then_end(
            &mut leaving,
            &[OLD],
            &situation,
            "A cancelled subscription yields what it buffered, then ends",
        )
        .await;
    });
}

fn drop_mid_wait_is_not_a_stall() {
    paused("Broker::publish_sync", async {
        let broker = Broker::new();

        // One full subscriber makes room at 10 ms; the other never does and
        // is dropped at 20 ms.
        let mut subscribers = full_subscribers(&broker, 2).into_iter();
        let (ready, _ready_token) = subscribers.next().expect("two subscribers");
        let (leaving, _leaving_token) = subscribers.next().expect("two subscribers");
        let leaving_id = leaving.id();
        let start = Instant::now();
        let reader = make_room_at(ready, start, ms(10));
        let dropper = tokio::spawn(async move {
            tokio::time::sleep_until(start + ms(20)).await;
            drop(leaving);
        });
        let result = broker.publish_sync(TOPIC, NEW.to_owned(), ms(100)).await;
        let elapsed = start.elapsed();

        // The call succeeds as soon as the second one has gone.
        let situation = format!(
            "with a subscriber that makes room at 10 ms and subscriber {leaving_id} that is \
             dropped at 20 ms, and a timeout of 100 ms"
        );
        let advice = "A subscriber whose Subscription is dropped while publish_sync waits has \
                      left: stop waiting for it, and do not name it as stalled";
        expect_ok(&result, &situation, advice);
        expect_elapsed(elapsed, ms(20), &situation, advice);
        join(dropper).await;
        join(reader).await;
    });
}

fn leaving_and_stalled_named_apart() {
    paused("Broker::publish_sync", async {
        let broker = Broker::new();

        // Four full subscribers: the first has room, the second is dropped
        // at 20 ms, the third never makes room, the fourth makes room at
        // 30 ms.
        let mut subscribers = full_subscribers(&broker, 4).into_iter();
        let (mut first, _first_token) = subscribers.next().expect("four subscribers");
        let (second, _second_token) = subscribers.next().expect("four subscribers");
        let (third, _third_token) = subscribers.next().expect("four subscribers");
        let (fourth, _fourth_token) = subscribers.next().expect("four subscribers");
        make_room(&mut first);
        let ids = [first.id(), second.id(), third.id(), fourth.id()];
        let start = Instant::now();
        let dropper = tokio::spawn(async move {
            tokio::time::sleep_until(start + ms(20)).await;
            drop(second);
        });
        let reader = make_room_at(fourth, start, ms(30));
        let timeout = ms(50);
        let result = broker.publish_sync(TOPIC, NEW.to_owned(), timeout).await;

        // Only the third stalled; the second left and is in neither list.
        let situation = format!(
            "with subscribers {} (room), {} (dropped at 20 ms), {} (never makes room) and {} \
             (room at 30 ms) and a timeout of 50 ms",
            ids[0], ids[1], ids[2], ids[3]
        );
        let expected = Timeout {
            topic: TOPIC,
            timeout,
            delivered: vec![ids[0], ids[3]],
            stalled: vec![ids[2]],
        };
        expect_timeout(&result, &expected, &situation);
        join(dropper).await;
        join(reader).await;
        drop(third);
    });
}

fn publish_sync_after_close_fails() {
    paused("Broker::publish_sync", async {
        let broker = Broker::new();
        let token = CancellationToken::new();
        let mut subscription = broker.subscribe(token.clone(), TOPIC, 0);
        broker.close();

        // Both a topic that had subscribers and one that never had any.
        for topic in [TOPIC, "never-used"] {
            let start = Instant::now();
            let result = broker.publish_sync(topic, NEW.to_owned(), GENEROUS).await;
            let situation = format!("after close(), publish_sync to {topic:?}");
            assert!(
                result == Err(PublishError::Closed),
                "{situation} returned {result:?}, but expected Err(PublishError::Closed). A \
                 closed broker delivers nothing, and a caller who waits for delivery must \
                 learn that, not get Ok because the topic has no subscribers left"
            );
            assert!(
                start.elapsed() < SLACK,
                "{situation} took {} of virtual time; it must fail at once",
                describe(start.elapsed())
            );
        }
        expect_drained_then_end(
            &mut subscription,
            &[],
            "after close() and publish_sync",
            "Nothing published after close may arrive",
        )
        .await;
    });
}

fn close_mid_wait_stops_publish_sync() {
    paused("Broker::publish_sync", async {
        let before = alive_tasks();
        let broker = Arc::new(Broker::new());

        // A subscriber that never makes room, and a close at 20 ms.
        let mut subscribers = full_subscribers(&broker, 1);
        let (mut subscription, _token) = subscribers.pop().expect("one subscriber");
        let start = Instant::now();
        let closer = {
            let broker = Arc::clone(&broker);
            tokio::spawn(async move {
                tokio::time::sleep_until(start + ms(20)).await;
                broker.close();
            })
        };
        let result = broker.publish_sync(TOPIC, NEW.to_owned(), GENEROUS).await;
        let elapsed = start.elapsed();

        // The call stops at the close and returns PublishError::Closed.
        let situation = "with a full subscriber that never makes room, a timeout of 10 s and \
                         close() at 20 ms";
        assert!(
            result == Err(PublishError::Closed),
            "{situation}, publish_sync returned {result:?} after {}, but expected \
             Err(PublishError::Closed) at 20 ms. close() must wake a waiting publish_sync at \
             once: wait for a broker-wide close signal next to the deadline and the deliveries",
            describe(elapsed)
        );
        expect_elapsed(
            elapsed,
            ms(20),
            situation,
            "Close must stop a waiting publish_sync at once, not leave it waiting for its \
             deadline",
        );

        // The subscriber drains what it had and ends; nothing is left.
        expect_drained_then_end(
            &mut subscription,
            &[OLD],
            situation,
            "Close ends every subscription, and the message of the stopped publish_sync must \
             not arrive",
        )
        .await;
        join(closer).await;
        let alive = alive_tasks();
        assert!(
            alive == before,
            "{situation}, {} task(s) were still alive after publish_sync returned",
            alive.saturating_sub(before)
        );
    });
}

fn publish_sync_leaves_no_task() {
    paused("Broker::publish_sync", async {
        let before = alive_tasks();
        let broker = Broker::new();
        let subscribers = full_subscribers(&broker, 3);

        // Right after a timeout, nothing started by the call is alive.
        let result = broker.publish_sync(TOPIC, NEW.to_owned(), ms(50)).await;
        assert!(
            result.is_err(),
            "publish_sync returned {result:?} with three subscribers that never make room"
        );
        let alive = alive_tasks();
        assert!(
            alive == before,
            "straight after publish_sync timed out on three stalled subscribers, {} task(s) \
             it started were still alive. Every task the call starts must have ended when it \
             returns: abort the ones still waiting (JoinSet::abort_all) and join them all. \
             Dropping a JoinHandle detaches its task, and an aborted task stays alive until \
             the runtime next polls it, so only joining proves it has ended",
            alive.saturating_sub(before)
        );

        // Right after a success that had to wait, nothing is alive either.
        let start = Instant::now();
        let readers: Vec<_> = subscribers
            .into_iter()
            .map(|(subscription, _token)| make_room_at(subscription, start, ms(10)))
            .collect();
        let result = broker.publish_sync(TOPIC, NEW.to_owned(), GENEROUS).await;
        expect_ok(
            &result,
            "with three subscribers that make room at 10 ms",
            "Every subscriber made room",
        );
        for reader in readers {
            join(reader).await;
        }
        let alive = alive_tasks();
        assert!(
            alive == before,
            "after a publish_sync that waited for three subscribers returned Ok, {} task(s) it \
             started were still alive",
            alive.saturating_sub(before)
        );
    });
}

/// Number of publishers in the concurrency check.
const PUBLISHERS: usize = 3;
/// Messages each publisher sends in the concurrency check.
const PER_PUBLISHER: usize = 5;

fn concurrent_publish_sync_all_arrive() {
    paused("Broker::publish_sync", async {
        let broker = Arc::new(Broker::new());
        let token = CancellationToken::new();
        let slow = broker.subscribe(token.clone(), TOPIC, 1);
        let fast = broker.subscribe(token.clone(), TOPIC, 1);

        // The slow subscriber reads one message every 10 ms, the fast one
        // reads as soon as something arrives.
        let total = PUBLISHERS * PER_PUBLISHER;
        let readers: Vec<_> = [(slow, ms(10)), (fast, Duration::ZERO)]
            .into_iter()
            .map(|(mut subscription, pause)| {
                tokio::spawn(async move {
                    let mut received = Vec::new();
                    while received.len() < total {
                        tokio::time::sleep(pause).await;
                        match tokio::time::timeout(WATCH, subscription.recv()).await {
                            Ok(Some(message)) => received.push(message),
                            Ok(None) | Err(_) => break,
                        }
                    }
                    received
                })
            })
            .collect();

        // Publishers each send their messages in turn with publish_sync.
        let publishers: Vec<_> = (0..PUBLISHERS)
            .map(|publisher| {
                let broker = Arc::clone(&broker);
                tokio::spawn(async move {
                    let mut results = Vec::new();
                    for sequence in 0..PER_PUBLISHER {
                        let message = format!("{publisher}/{sequence}");
                        results.push(broker.publish_sync(TOPIC, message, GENEROUS).await);
                    }
                    results
                })
            })
            .collect();
        for publisher in publishers {
            for result in join(publisher).await {
                expect_ok(
                    &result,
                    &format!("with {PUBLISHERS} publishers calling publish_sync at once"),
                    "Both subscribers keep reading, so every call must succeed",
                );
            }
        }

        // Each subscriber got every message once, each publisher's in order.
        for (name, reader) in ["slow", "fast"].into_iter().zip(readers) {
            let received = join(reader).await;
            let mut sorted = received.clone();
            sorted.sort();
            let mut expected: Vec<String> = (0..PUBLISHERS)
                .flat_map(|p| (0..PER_PUBLISHER).map(move |s| format!("{p}/{s}")))
                .collect();
            expected.sort();
            assert!(
                sorted == expected,
                "with {PUBLISHERS} publishers calling publish_sync at once, the {name} \
                 subscriber received {received:?}; expected each of the {total} messages once"
            );
            for publisher in 0..PUBLISHERS {
                let own: Vec<&String> = received
                    .iter()
                    .filter(|message| message.starts_with(&format!("{publisher}/")))
                    .collect();
                let mut in_order = own.clone();
                in_order.sort();
                assert!(
                    own == in_order,
                    "the {name} subscriber received publisher {publisher}'s messages in the \
                     order {own:?}; each publisher's calls follow one another, so they must \
                     arrive in order"
                );
            }
        }
    });
}

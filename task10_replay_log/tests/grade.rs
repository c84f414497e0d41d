//! Grading suite for task 10: a replay log with offsets.
//!
//! The first checks cover offsets and the start of a subscription. Append
//! numbers messages from 0, and a subscription replays from its start offset
//! and then goes live. The head is a valid start, and an evicted or future
//! start is an error that names the offset to use instead. The middle checks
//! cover the boundary between replay and live delivery, with appends placed
//! at chosen steps of a subscription, the wake-up of every waiting
//! subscription, an append or close while `recv()` is stopped right before
//! or after each use of the lock, and a subscriber that falls behind. The
//! last checks cover cancellation and close, a `recv()` future dropped before
//! it returns, eviction, what subscribe and append may copy, the cost of
//! append on a large log, appends racing on two threads, and a stress run
//! with concurrent appenders and subscribers.
//!
//! Every check that waits for a subscription, except the unlocked-window and
//! paused-writer checks and the last three, runs on a current-thread runtime with paused
//! time, so a wait costs no real time. A subscription is "quiet" when
//! `recv()` has not returned after a second of virtual time, and it is not
//! polled again at that deadline. The unlocked-window and paused-writer
//! checks order their two threads through the lock hook of
//! `task10_replay_log::sync`, so their outcome does not depend on the
//! scheduler. They and the last three checks run in real time, bounded by
//! their time limits. Messages are the strings "m0", "m1", ..., each named after
//! the offset it was appended at, so a wrong message shows.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::task::Poll;
use std::time::{Duration, Instant};

use task10_replay_log::{Lagged, Log, SubscribeError, Subscription};
use testkit::alloc::{CountingAllocator, count_allocations};
use testkit::grading::Check;
use testkit::interleave::{
    Outcome, WakeFlag, each_boundary, pause_at_boundary, pause_writer_at_boundary,
    poll_until_waiting,
};
use testkit::runtime::{multi_thread, paused, within};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn main() -> std::process::ExitCode {
    testkit::suite!()
        .check(
            "append_numbers_offsets_from_zero",
            "Log::append",
            append_numbers_offsets_from_zero,
        )
        .check(
            "replay_then_live_in_order",
            "Log::subscribe",
            replay_then_live_in_order,
        )
        .check(
            "subscribe_at_head_gets_only_new",
            "Log::subscribe",
            subscribe_at_head_gets_only_new,
        )
        .check(
            "subscribe_beyond_head_is_rejected",
            "Log::subscribe",
            subscribe_beyond_head_is_rejected,
        )
        .check(
            "evicted_start_names_oldest_offset",
            "Log::subscribe",
            evicted_start_names_oldest_offset,
        )
        .check(
            "appends_during_replay_are_not_lost",
            "Subscription::recv",
            appends_during_replay_are_not_lost,
        )
        .check(
            "replay_meets_live_without_duplicate",
            "Subscription::recv",
            replay_meets_live_without_duplicate,
        )
        .check(
            "every_waiting_subscription_wakes",
            "Log::append",
            every_waiting_subscription_wakes,
        )
        .add_check(
            Check::new(
                "append_while_recv_is_unlocked_wakes_it",
                "Subscription::recv",
                append_while_recv_is_unlocked_wakes_it,
            )
            .timeout_cause(WINDOW_TIMEOUT),
        )
        .add_check(
            Check::new(
                "append_while_subscribe_is_unlocked_is_delivered",
                "Log::subscribe",
                append_while_subscribe_is_unlocked_is_delivered,
            )
            .timeout_cause(WRITER_TIMEOUT),
        )
        .add_check(
            Check::new(
                "writer_paused_mid_way_still_wakes_recv",
                "Log::append",
                writer_paused_mid_way_still_wakes_recv,
            )
            .timeout_cause(WRITER_TIMEOUT),
        )
        .check(
            "lagging_subscriber_gets_lagged_item",
            "Subscription::recv",
            lagging_subscriber_gets_lagged_item,
        )
        .check(
            "cancel_ends_subscription",
            "Subscription::recv",
            cancel_ends_subscription,
        )
        .check(
            "close_ends_after_held_messages",
            "Log::close",
            close_ends_after_held_messages,
        )
        .check(
            "dropped_recv_loses_no_message",
            "Subscription::recv",
            dropped_recv_loses_no_message,
        )
        .check(
            "eviction_frees_oldest_message",
            "Log::append",
            eviction_frees_oldest_message,
        )
        .check(
            "subscribe_copies_no_message",
            "Log::subscribe",
            subscribe_copies_no_message,
        )
        .add_check(
            Check::new(
                "million_appends_stay_constant_time",
                "Log::append",
                million_appends_stay_constant_time,
            )
            .time_limit(Duration::from_secs(15))
            .timeout_cause(APPEND_TIMEOUT),
        )
        .add_check(
            Check::new(
                "racing_appends_return_stored_offsets",
                "Log::append",
                racing_appends_return_stored_offsets,
            )
            .time_limit(Duration::from_secs(20))
            .timeout_cause(RACING_TIMEOUT),
        )
        .add_check(
            Check::new(
                "concurrent_appends_reach_subscribers_contiguously",
                "Log",
                concurrent_appends_reach_subscribers_contiguously,
            )
            .time_limit(Duration::from_secs(30))
            .timeout_cause(STRESS_TIMEOUT),
        )
        .run()
}

/// Timeout cause of the check that appends two million messages.
const APPEND_TIMEOUT: &str = "likely an append that takes time proportional to the number of \
     held messages. Vec::remove(0), or copying the buffer on every append, moves every held \
     message; a ring buffer such as VecDeque (pop_front, then push_back) appends in constant time";

/// Timeout cause of the check in which two threads append at once.
const RACING_TIMEOUT: &str = "likely two threads that block each other inside append, or a \
     recv() that blocks its thread instead of awaiting: each round appends 20,000 messages from \
     two threads and then reads them from a closed log, which takes well under a second";

/// Timeout cause of the stress check, which reads every subscription to its
/// end without a bound.
const STRESS_TIMEOUT: &str = "likely a subscription that missed the wake-up for an append or for \
     close: it waits although messages or the close have arrived. Check for a new message and \
     register for the wake-up as one step, under the same lock, or create (and enable) a Notify's \
     Notified future before checking";

/// Timeout cause of the check that pauses recv() at its lock boundaries.
const WINDOW_TIMEOUT: &str = "likely an append or close that blocked while recv() was paused \
     right after releasing its last task10_replay_log::sync::Mutex guard: recv() still held \
     another lock there, such as a std::sync::Mutex, that append or close needs";

/// Timeout cause of the check that pauses append and close between their
/// uses of the lock.
const WRITER_TIMEOUT: &str = "likely a recv() that blocked while append or close was paused \
     between two uses of the lock: recv() still held another lock there, such as a \
     std::sync::Mutex";

/// Virtual time a check gives `recv()` before calling a subscription quiet.
/// In paused time a longer wait costs no real time.
const PATIENCE: Duration = Duration::from_secs(1);

/// What one call of `recv()` produced, or that it produced nothing in time.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    /// `Some(Ok((offset, message)))`.
    Message(u64, String),
    /// `Some(Err(Lagged { missed }))`.
    Lagged(Range<u64>),
    /// `None`: the subscription has ended.
    Ended,
    /// `recv()` had not returned after [`PATIENCE`].
    Quiet,
}

/// Returns the message that the checks append at `offset`.
fn message(offset: u64) -> String {
    format!("m{offset}")
}

/// Returns the [`Seen`] of the message appended at `offset`.
fn at(offset: u64) -> Seen {
    Seen::Message(offset, message(offset))
}

/// Returns the [`Seen`] of each message appended at `offsets`.
fn messages(offsets: Range<u64>) -> Vec<Seen> {
    offsets.map(at).collect()
}

/// Appends the messages for `offsets`, which must be the next offsets of
/// `log`, and panics unless append returns each one.
#[track_caller]
fn append_all(log: &Log<String>, offsets: Range<u64>) {
    for offset in offsets {
        let returned = log.append(message(offset));
        assert!(
            returned == offset,
            "append({:?}) returned offset {returned}, but {offset} messages had been \
             appended before it, so its offset is {offset}. The offset of a message is the \
             number of messages appended before it",
            message(offset)
        );
    }
}

/// Calls `recv()` once and returns what it produced within [`PATIENCE`].
async fn next(subscription: &mut Subscription<String>) -> Seen {
    match within(PATIENCE, subscription.recv()).await {
        Some(Some(Ok((offset, message)))) => Seen::Message(offset, message),
        Some(Some(Err(Lagged { missed }))) => Seen::Lagged(missed),
        Some(None) => Seen::Ended,
        None => Seen::Quiet,
    }
}

/// Calls `recv()` once and returns the message it produced within
/// [`PATIENCE`], or a description of what it produced instead.
async fn next_message<T: Clone + Send + 'static>(
    subscription: &mut Subscription<T>,
) -> Result<(u64, T), String> {
    match within(PATIENCE, subscription.recv()).await {
        Some(Some(Ok(pair))) => Ok(pair),
        Some(Some(Err(Lagged { missed }))) => Err(format!("Err(Lagged {{ missed: {missed:?} }})")),
        Some(None) => Err("None (ended)".to_owned()),
        None => Err(format!("no item within {} s", PATIENCE.as_secs())),
    }
}

/// Describes what a subscription produced, for a failure message.
fn describe(seen: &[Seen]) -> String {
    if seen.is_empty() {
        return "nothing".to_owned();
    }
    let parts: Vec<String> = seen
        .iter()
        .map(|step| match step {
            Seen::Message(offset, message) => format!("Ok(({offset}, {message:?}))"),
            Seen::Lagged(missed) => format!("Err(Lagged {{ missed: {missed:?} }})"),
            Seen::Ended => "None (ended)".to_owned(),
            Seen::Quiet => format!("no item within {} s", PATIENCE.as_secs()),
        })
        .collect();
    parts.join(", then ")
}

/// Reads `subscription` step by step and panics unless it produces exactly
/// `expected`, in order.
///
/// It stops at the first step that differs and after a quiet step. The
/// message reads "{situation}, expected recv() to return …, but it
/// returned …", followed by `advice` when that is not empty.
async fn expect_seen(
    subscription: &mut Subscription<String>,
    expected: &[Seen],
    situation: &str,
    advice: &str,
) {
    let actual = read_steps(subscription, expected).await;
    if actual != expected {
        panic!("{}", mismatch(expected, &actual, situation, advice));
    }
}

/// Reads one step of `subscription` for each step of `expected` and returns
/// them, stopping after the first step that differs and after a quiet step.
async fn read_steps(subscription: &mut Subscription<String>, expected: &[Seen]) -> Vec<Seen> {
    let mut actual = Vec::new();
    for expected_step in expected {
        let step = next(subscription).await;
        let stop = step != *expected_step || step == Seen::Quiet;
        actual.push(step);
        if stop {
            break;
        }
    }
    actual
}

/// Returns the failure message of [`expect_seen`].
fn mismatch(expected: &[Seen], actual: &[Seen], situation: &str, advice: &str) -> String {
    let mut text = format!(
        "{situation}, expected recv() to return {}, but it returned {}",
        describe(expected),
        describe(actual)
    );
    if !advice.is_empty() {
        text.push_str(". ");
        text.push_str(advice);
    }
    text
}

/// Reads `subscription` like [`expect_seen`], and on a difference names the
/// offset that was lost or that arrived twice.
async fn expect_each_offset_once(
    subscription: &mut Subscription<String>,
    expected: &[Seen],
    situation: &str,
) {
    let actual = read_steps(subscription, expected).await;
    if actual == expected {
        return;
    }
    let advice = match first_offset_fault(expected, &actual) {
        Some(OffsetFault::Repeated(offset)) => format!(
            "Offset {offset} arrived twice, but each offset arrives once. A subscription that \
             has delivered every held message waits for the next append; it does not deliver \
             the last message again"
        ),
        Some(OffsetFault::Lost(offset)) => format!(
            "Offset {offset} was lost, but every offset from the start offset on arrives, in \
             order, with no gap where the held messages end and the new ones begin"
        ),
        None => "Each offset arrives once, in order, as Ok((offset, message))".to_owned(),
    };
    panic!("{}", mismatch(expected, &actual, situation, &advice));
}

/// An offset that a subscription delivered wrongly.
enum OffsetFault {
    /// The offset arrived a second time.
    Repeated(u64),
    /// The offset was expected, but a later offset or nothing came instead.
    Lost(u64),
}

/// Finds the first step where `actual` differs from `expected` and returns
/// whether an offset arrived twice or was lost there.
fn first_offset_fault(expected: &[Seen], actual: &[Seen]) -> Option<OffsetFault> {
    let index = expected
        .iter()
        .zip(actual)
        .position(|(want, got)| want != got)?;
    let delivered_before = |offset: u64| {
        actual[..index]
            .iter()
            .any(|step| matches!(step, Seen::Message(earlier, _) if *earlier == offset))
    };
    match (&expected[index], &actual[index]) {
        (_, Seen::Message(offset, _)) if delivered_before(*offset) => {
            Some(OffsetFault::Repeated(*offset))
        }
        (Seen::Message(expected_offset, _), Seen::Message(offset, _))
            if offset > expected_offset =>
        {
            Some(OffsetFault::Lost(*expected_offset))
        }
        (Seen::Message(expected_offset, _), Seen::Quiet | Seen::Ended) => {
            Some(OffsetFault::Lost(*expected_offset))
        }
        _ => None,
    }
}

/// Subscribes from `from` and panics with a message naming `situation` when
/// subscribe fails.
#[track_caller]
fn subscribe(log: &Log<String>, from: u64, situation: &str) -> Subscription<String> {
    match log.subscribe(CancellationToken::new(), from) {
        Ok(subscription) => subscription,
        Err(err) => panic!(
            "{situation}, subscribe(token, {from}) returned Err({err:?}), but offset {from} \
             lies between the oldest held offset and the head, both included, so it must \
             succeed"
        ),
    }
}

/// Panics unless `log` reports `oldest` and `head`.
#[track_caller]
fn expect_bounds(log: &Log<String>, oldest: u64, head: u64, situation: &str) {
    let actual_head = log.head();
    assert!(
        actual_head == head,
        "{situation}, head() returned {actual_head}, but expected {head}: the head is the \
         offset of the next append, which is the number of messages appended so far"
    );
    let actual_oldest = log.oldest();
    assert!(
        actual_oldest == oldest,
        "{situation}, oldest() returned {actual_oldest}, but expected {oldest}: the log keeps \
         the last `capacity` messages, and oldest() is the offset of the first of them"
    );
}

fn append_numbers_offsets_from_zero() {
    // A new log is empty: its oldest offset and its head are both 0.
    let log = Log::new(4);
    expect_bounds(&log, 0, 0, "on a new log of capacity 4");

    // Offsets count up from 0, and the head follows.
    append_all(&log, 0..3);
    expect_bounds(&log, 0, 3, "after 3 appends to a log of capacity 4");

    // Once full, each append evicts the oldest message.
    append_all(&log, 3..6);
    expect_bounds(
        &log,
        2,
        6,
        "after 6 appends to a log of capacity 4, which keeps offsets 2 to 5",
    );
}

fn replay_then_live_in_order() {
    paused("Log::subscribe", async {
        let log = Log::new(8);
        append_all(&log, 0..5);

        // The replay starts at the requested offset, not at the oldest.
        let mut subscription = subscribe(&log, 2, "with offsets 0 to 4 held");
        let mut expected = messages(2..5);
        expected.push(Seen::Quiet);
        expect_seen(
            &mut subscription,
            &expected,
            "after subscribe from offset 2 with offsets 0 to 4 held",
            "A subscription replays the held messages from its start offset, each with its \
             offset, then waits for new ones",
        )
        .await;

        // Then every new message arrives live, in order.
        append_all(&log, 5..7);
        let mut expected = messages(5..7);
        expected.push(Seen::Quiet);
        expect_seen(
            &mut subscription,
            &expected,
            "after the replay was read and offsets 5 and 6 were appended",
            "After the replay, a subscription delivers each new message as it is appended. A \
             recv() whose future was dropped unfinished, as by a timeout, must lose nothing",
        )
        .await;
    });
}

fn subscribe_at_head_gets_only_new() {
    paused("Log::subscribe", async {
        // On an empty log the head, 0, is the only possible start.
        let empty = Log::new(4);
        let mut first = match empty.subscribe(CancellationToken::new(), 0) {
            Ok(subscription) => subscription,
            Err(err) => panic!(
                "on a new, empty log, subscribe(token, 0) returned Err({err:?}), but 0 is the \
                 head. Starting at the head is allowed and means \"only messages appended \
                 from now on\""
            ),
        };
        append_all(&empty, 0..1);
        expect_seen(
            &mut first,
            &[at(0), Seen::Quiet],
            "after subscribe from offset 0 on an empty log and one append",
            "",
        )
        .await;

        // With messages held, a start at the head skips all of them.
        let log = Log::new(4);
        append_all(&log, 0..3);
        let mut live = match log.subscribe(CancellationToken::new(), 3) {
            Ok(subscription) => subscription,
            Err(err) => panic!(
                "with offsets 0 to 2 held, subscribe(token, 3) returned Err({err:?}), but 3 is \
                 the head. Starting at the head is allowed and means \"only messages appended \
                 from now on\""
            ),
        };
        expect_seen(
            &mut live,
            &[Seen::Quiet],
            "after subscribe from the head, 3",
            "A start at the head replays nothing",
        )
        .await;
        append_all(&log, 3..5);
        expect_seen(
            &mut live,
            &[at(3), at(4), Seen::Quiet],
            "after subscribe from the head, 3, and two appends",
            "",
        )
        .await;
    });
}

fn subscribe_beyond_head_is_rejected() {
    // One past the head of an empty log, then one past the head of a log
    // that has evicted, and far beyond.
    let log = Log::new(4);
    for (appended, from) in [(0, 1), (6, 7), (6, u64::MAX)] {
        let head = log.head();
        if head < appended {
            append_all(&log, head..appended);
        }
        let head = appended;
        let result = log.subscribe(CancellationToken::new(), from);
        let expected = SubscribeError::Future {
            requested: from,
            head,
        };
        match result {
            Err(err) => assert!(
                err == expected,
                "with head {head}, subscribe(token, {from}) returned Err({err:?}), but expected \
                 Err({expected:?}): the error names the requested offset and the head"
            ),
            Ok(_) => panic!(
                "with head {head}, subscribe(token, {from}) returned Ok, but expected \
                 Err({expected:?}): no message has offset {from} yet, and only the head itself \
                 is a valid start beyond the held messages"
            ),
        }
    }
}

fn evicted_start_names_oldest_offset() {
    paused("Log::subscribe", async {
        // A log of capacity 3 keeps offsets 7, 8 and 9 after 10 appends.
        let log = Log::new(3);
        append_all(&log, 0..10);
        expect_bounds(&log, 7, 10, "after 10 appends to a log of capacity 3");

        // Every start below 7 fails and names 7, where a retry can start.
        for from in [0, 6] {
            let expected = SubscribeError::Evicted {
                requested: from,
                oldest: 7,
            };
            match log.subscribe(CancellationToken::new(), from) {
                Err(err) => assert!(
                    err == expected,
                    "with offsets 7 to 9 held, subscribe(token, {from}) returned Err({err:?}), \
                     but expected Err({expected:?}). The error names the requested offset as \
                     `requested` and the oldest offset still held as `oldest`, so that the \
                     caller can start again there"
                ),
                Ok(_) => panic!(
                    "with offsets 7 to 9 held, subscribe(token, {from}) returned Ok, but \
                     expected Err({expected:?}): offset {from} was evicted, and a subscription \
                     that started there would have to skip it"
                ),
            }
        }

        // A start at the oldest offset replays all three.
        let mut subscription = subscribe(&log, 7, "with offsets 7 to 9 held");
        let mut expected = messages(7..10);
        expected.push(Seen::Quiet);
        expect_seen(
            &mut subscription,
            &expected,
            "after subscribe from the oldest offset, 7",
            "",
        )
        .await;
    });
}

fn appends_during_replay_are_not_lost() {
    paused("Subscription::recv", async {
        let log = Log::new(16);
        append_all(&log, 0..3);

        // The subscriber reads in its own task, one item per go-ahead from
        // this task, and reports each item. So this task appends at chosen
        // steps of the subscription.
        let (report, mut reports) = mpsc::unbounded_channel();
        let (proceed, mut go_ahead) = mpsc::unbounded_channel::<()>();
        let mut subscription = subscribe(&log, 0, "with offsets 0 to 2 held");
        let reader = tokio::spawn(async move {
            loop {
                let step = next(&mut subscription).await;
                let done = matches!(step, Seen::Ended | Seen::Quiet);
                if report.send(step).is_err() || done || go_ahead.recv().await.is_none() {
                    break;
                }
            }
        });

        // Offset 3 lands after subscribe and before the first read.
        let mut seen = Vec::new();
        append_all(&log, 3..4);
        expect_report(&mut reports, &mut seen, at(0)).await;

        // Offset 4 lands after the first replayed item.
        append_all(&log, 4..5);
        for offset in 1..5 {
            let _ = proceed.send(());
            expect_report(&mut reports, &mut seen, at(offset)).await;
        }

        // Offset 5 lands while the reader waits inside recv() at the head.
        let _ = proceed.send(());
        tokio::time::sleep(Duration::from_millis(10)).await;
        append_all(&log, 5..6);
        expect_report(&mut reports, &mut seen, at(5)).await;

        // Close ends the subscription.
        log.close();
        let _ = proceed.send(());
        expect_report(&mut reports, &mut seen, Seen::Ended).await;
        if let Err(err) = reader.await {
            std::panic::resume_unwind(err.into_panic());
        }
    });
}

/// Receives the reader task's next report into `seen` and panics unless it
/// is `expected`.
async fn expect_report(
    reports: &mut mpsc::UnboundedReceiver<Seen>,
    seen: &mut Vec<Seen>,
    expected: Seen,
) {
    let Some(step) = reports.recv().await else {
        panic!("the reader task stopped after {}", describe(seen));
    };
    seen.push(step.clone());
    assert!(
        step == expected,
        "a subscription from offset 0 had offsets 0 to 2 to replay, and more offsets were \
         appended while it read: offset 3 right after subscribe, offset 4 after the first \
         replayed item, offset 5 while recv() waited at the head, then the log was closed. \
         Expected recv() to return {} next, but it returned {}; in order it returned {}. \
         Every append that races the replay must arrive exactly once, in order. Take the \
         replay and start live delivery in one step under one lock, or read the shared log \
         by offset so that replay and live delivery are the same path",
        describe(&[expected]),
        describe(&[step]),
        describe(seen)
    );
}

fn replay_meets_live_without_duplicate() {
    paused("Subscription::recv", async {
        let log = Log::new(8);
        append_all(&log, 0..3);
        let mut subscription = subscribe(&log, 0, "with offsets 0 to 2 held");

        // The replay ends with offset 2, and nothing follows it yet.
        let mut expected = messages(0..3);
        expected.push(Seen::Quiet);
        expect_each_offset_once(
            &mut subscription,
            &expected,
            "after subscribe from offset 0 with offsets 0 to 2 held",
        )
        .await;

        // The first live message is offset 3, once.
        append_all(&log, 3..4);
        expect_each_offset_once(
            &mut subscription,
            &[at(3), Seen::Quiet],
            "after the replay of offsets 0 to 2 was read and offset 3 was appended",
        )
        .await;
    });
}

fn every_waiting_subscription_wakes() {
    paused("Log::append", async {
        let log = Log::new(8);
        append_all(&log, 0..1);

        // Three subscriptions at the head each wait inside recv() in a task
        // of their own. Each first waits once in this task and gives up, so
        // a subscription that keeps the first waker it was given wakes this
        // task instead of its reader.
        let mut subscriptions = Vec::new();
        for index in 0..3 {
            let mut subscription = subscribe(&log, 1, "at the head 1");
            let first = next(&mut subscription).await;
            assert!(
                first == Seen::Quiet,
                "subscription {index} at the head 1 of a log with no new message returned {} \
                 from recv(), but expected no item within {} s",
                describe(&[first]),
                PATIENCE.as_secs()
            );
            subscriptions.push(subscription);
        }
        let readers: Vec<_> = subscriptions
            .into_iter()
            .map(|mut subscription| tokio::spawn(async move { next(&mut subscription).await }))
            .collect();

        // Once every reader waits, one append must wake all three. Nothing
        // else happens: no close and no later append.
        tokio::time::sleep(Duration::from_millis(10)).await;
        append_all(&log, 1..2);
        for (index, reader) in readers.into_iter().enumerate() {
            let step = join(reader).await;
            assert!(
                step == at(1),
                "three subscriptions waited inside recv() at the head, 1, each in a task of its \
                 own after an earlier recv() in another task had given up, and 10 ms later one \
                 message was appended. Expected each recv() to return {}, but subscription \
                 {index} returned {}. One append wakes every waiting subscription, through the \
                 waker of its latest poll: Notify::notify_one() wakes a single waiter, so use \
                 notify_waiters() and enable each Notified future before checking for a new \
                 message, or use a watch channel, or store each subscription's latest waker \
                 (replace the one stored before)",
                describe(&[at(1)]),
                describe(&[step])
            );
        }

        // A subscription that ends leaves the wake-ups of the others alone:
        // `first` waits and reads offset 2, then `second` waits, then `first`
        // is dropped, and the next append must still wake `second`.
        let mut first = subscribe(&log, 2, "at the head 2");
        let first_reader = tokio::spawn(async move {
            let step = next(&mut first).await;
            (step, first)
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        append_all(&log, 2..3);
        let (step, first) = join(first_reader).await;
        assert!(
            step == at(2),
            "a subscription waited at the head, 2, and offset 2 was appended, but recv() \
             returned {}",
            describe(&[step])
        );
        let mut second = subscribe(&log, 3, "at the head 3");
        let second_reader = tokio::spawn(async move { next(&mut second).await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        // A solution's Subscription may implement Drop; the skeleton's does
        // not, which the lint would reject.
        #[allow(clippy::drop_non_drop)]
        drop(first);
        append_all(&log, 3..4);
        let step = join(second_reader).await;
        assert!(
            step == at(3),
            "a subscription waited at the head, 3, while another subscription that had waited \
             before was dropped, and then offset 3 was appended. Expected recv() to return {}, \
             but it returned {}. Dropping a subscription removes only its own waker: find it \
             by the subscription's id, not by a position that later appends or drops shift",
            describe(&[at(3)]),
            describe(&[step])
        );
    });
}

/// Real time the unlocked-window check gives the subscriber thread for its
/// next step. A correct `recv()` takes microseconds; only a subscription
/// that is never woken uses it up.
const STEP_PATIENCE: Duration = Duration::from_secs(5);

/// An event that the writer causes while `recv()` is paused in the
/// unlocked-window check.
#[derive(Clone, Copy, Debug)]
enum WindowEvent {
    Append,
    Close,
    /// An append to a full log of capacity 2 that contains offsets 0 and 1,
    /// read by a subscription from offset 0.
    EvictingAppend,
}

impl WindowEvent {
    fn happen(self, log: &Log<String>) {
        match self {
            WindowEvent::Append => append_all(log, 0..1),
            WindowEvent::Close => log.close(),
            WindowEvent::EvictingAppend => append_all(log, 2..3),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            WindowEvent::Append => "m0 was appended at offset 0",
            WindowEvent::Close => "the log was closed",
            WindowEvent::EvictingAppend => "m2 was appended, which evicted offset 0",
        }
    }

    fn describe_call(self) -> &'static str {
        match self {
            WindowEvent::Append => "append(\"m0\") on an empty log ran",
            WindowEvent::Close => "close() ran",
            WindowEvent::EvictingAppend => "append(\"m2\") on a full log ran",
        }
    }

    fn situation(self) -> &'static str {
        match self {
            WindowEvent::Append | WindowEvent::Close => {
                "a subscription at the head of an empty log"
            }
            WindowEvent::EvictingAppend => {
                "a subscription from offset 0 of a full log of capacity 2 that holds offsets 0 \
                 and 1"
            }
        }
    }

    fn describe_expected(self) -> String {
        self.expected()
            .iter()
            .map(|seen| describe(std::slice::from_ref(seen)))
            .collect::<Vec<_>>()
            .join(" or ")
    }

    /// Returns what `recv()` may return after the event: reading offset 0
    /// before the eviction or reporting it as missed after are both right.
    fn expected(self) -> Vec<Seen> {
        match self {
            WindowEvent::Append => vec![at(0)],
            WindowEvent::Close => vec![Seen::Ended],
            WindowEvent::EvictingAppend => vec![at(0), Seen::Lagged(0..1)],
        }
    }
}

fn append_while_recv_is_unlocked_wakes_it() {
    let events = [
        WindowEvent::Append,
        WindowEvent::Close,
        WindowEvent::EvictingAppend,
    ];
    for event in events {
        each_boundary(|window| unlocked_window_round(event, window));
    }
}

/// Runs one round of the unlocked-window check. A subscription calls
/// `recv()` on a thread of its own, which stops at its `window`th lock
/// boundary, right before it takes the lock or right after it releases it.
/// While it is stopped, `event` happens. Then `recv()` goes on and must
/// return what the event produced.
/// Returns whether the pause was reached. When it was not, `recv()` waited
/// first, `event` happened while it waited, and later windows do not exist.
fn unlocked_window_round(event: WindowEvent, window: usize) -> bool {
    let log = match event {
        WindowEvent::EvictingAppend => {
            let log = Log::new(2);
            append_all(&log, 0..2);
            log
        }
        WindowEvent::Append | WindowEvent::Close => Log::new(8),
    };
    let cancel = CancellationToken::new();
    let mut subscription = match log.subscribe(cancel.clone(), 0) {
        Ok(subscription) => subscription,
        Err(err) => panic!("subscribe(token, 0) returned Err({err:?}), but 0 is a valid start"),
    };
    let round = pause_at_boundary(
        window,
        STEP_PATIENCE,
        move || async move { seen_from(subscription.recv().await) },
        || event.happen(&log),
    );
    if round.event_ran && round.paused_at.is_none() && round.boundaries == 0 {
        cancel.cancel();
        panic!(
            "recv() on an empty log waited without taking a task10_replay_log::sync::Mutex. \
             Keep the state that append and recv share behind that Mutex instead of \
             std::sync::Mutex: it works the same, and this check pauses recv() right before \
             and right after each use of it"
        );
    }
    if round.event_ran && round.event_boundaries == 0 {
        cancel.cancel();
        panic!(
            "{} without taking a task10_replay_log::sync::Mutex. Keep the state that append, \
             close and recv share behind that Mutex instead of std::sync::Mutex or atomics: \
             this check pauses recv() between its uses of the lock, which says nothing when \
             the state lives elsewhere",
            event.describe_call()
        );
    }
    let stuck_after = |what: String| -> ! {
        // The thread stays blocked. Cancelling lets a recv() that watches
        // its token end.
        cancel.cancel();
        panic!("{what}");
    };
    match (round.outcome, round.paused_at) {
        (Outcome::Returned(value), paused_at) => {
            assert!(
                event.expected().contains(&value),
                "{} called recv(){}, and {}. Expected recv() to return {}, but it returned {}",
                event.situation(),
                paused_at.map_or(String::new(), |point| format!(", which was paused {point}")),
                event.describe(),
                event.describe_expected(),
                describe(&[value])
            );
            paused_at.is_some()
        }
        (Outcome::Stuck, Some(point)) => stuck_after(format!(
            "{} called recv(), which was paused {point}, before it waited. While it was \
             paused, {}; then recv() went on, waited, \
             and was never woken: it had not returned {STEP_PATIENCE:?} later. That is a lost \
             wake-up: recv() decided to wait on what it saw before the event, but registered \
             for the wake-up only after that, so the wake-up went to nobody. Check the log and \
             register under the same lock (store the task's waker in the shared state), or \
             create the Notify's Notified future and call enable() on it before checking, and \
             read nothing that decides the wait outside the lock",
            event.situation(),
            event.describe()
        )),
        (Outcome::Stuck, None) if round.event_ran => stuck_after(format!(
            "{} waited inside recv(), then {}, and recv() had not returned {STEP_PATIENCE:?} \
             later: the event must wake every waiting subscription",
            event.situation(),
            event.describe()
        )),
        (Outcome::Stuck, None) => stuck_after(format!(
            "a subscription at the head of an empty log called recv() on a thread of its own, \
             and it neither returned nor waited within {STEP_PATIENCE:?}: recv() blocks its \
             thread instead of awaiting"
        )),
    }
}

// NOTE: a writer is paused only where it holds no lock. A writer that wakes
// the subscriptions under the lock and sets an atomic flag after that is not
// stopped in between, so a recv() that reads the flag before it locks can
// miss the close. The contract keeps all shared state behind the lock.
fn writer_paused_mid_way_still_wakes_recv() {
    for event in [WindowEvent::Append, WindowEvent::Close] {
        each_boundary(|window| paused_writer_round(event, window));
    }
}

/// Runs one round of the paused-writer check: a subscription at the head of
/// an empty log waits inside `recv()`, polled by hand, while `event` runs on
/// a thread of its own that stops at its `window`th lock boundary. While the
/// writer is stopped, `recv()` is polled again if it was woken. Once the
/// writer has finished, `recv()` must have been woken and return what the
/// event produced. Returns whether the pause was reached.
fn paused_writer_round(event: WindowEvent, window: usize) -> bool {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds");
    let _context = runtime.enter();
    let log = Arc::new(Log::new(8));
    let mut subscription = subscribe(&log, 0, "on an empty log");
    let flag = Arc::new(WakeFlag::default());
    let waker = std::task::Waker::from(Arc::clone(&flag));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut receiving = std::pin::pin!(subscription.recv());
    if let Some(returned) = poll_until_waiting(receiving.as_mut(), &mut cx, &flag) {
        panic!(
            "recv() on a subscription at the head of an empty log returned {} at once, but \
             expected it to wait",
            describe(&[seen_from(returned)])
        );
    }

    let mut returned = None;
    let writer_log = Arc::clone(&log);
    let round = pause_writer_at_boundary(
        window,
        STEP_PATIENCE,
        move || event.happen(&writer_log),
        || {
            // A recv() woken before the writer finished runs now, as it
            // could on another thread.
            if flag.take() {
                if let Poll::Ready(value) = receiving.as_mut().poll(&mut cx) {
                    returned = Some(seen_from(value));
                }
            }
        },
    );
    assert!(
        round.finished,
        "{} and stopped {}, and did not finish within {STEP_PATIENCE:?} after it went on",
        event.describe_call(),
        round
            .paused_at
            .map_or("nowhere".to_owned(), |point| point.to_string())
    );
    while returned.is_none() && flag.take() {
        if let Poll::Ready(value) = receiving.as_mut().poll(&mut cx) {
            returned = Some(seen_from(value));
        }
    }
    let paused = round
        .paused_at
        .map_or(String::new(), |point| format!(", which was paused {point}"));
    match returned {
        Some(value) => assert!(
            event.expected().contains(&value),
            "a subscription waited inside recv() at the head of an empty log while {}{paused}. \
             Expected recv() to return {}, but it returned {}",
            event.describe_call(),
            event.describe_expected(),
            describe(&[value])
        ),
        None => panic!(
            "a subscription waited inside recv() at the head of an empty log while {}{paused}, \
             and recv() was polled again whenever it was woken. Once the writer had finished, \
             recv() was waiting and nothing would wake it: a lost wake-up. A writer that wakes \
             the subscriptions before it stores its change lets a woken subscription look, \
             find nothing, and wait again. Change the state under the lock first, then wake",
            event.describe_call()
        ),
    }
    round.paused_at.is_some()
}

fn append_while_subscribe_is_unlocked_is_delivered() {
    each_boundary(paused_subscribe_round);
}

/// Runs one round of the paused-subscribe check: `subscribe(token, 0)` on an
/// empty log runs on a thread of its own and stops at its `window`th lock
/// boundary, where m0 is appended. Offset 0 was the head when subscribe was
/// called, so the subscription must deliver m0 at offset 0. Returns whether
/// the pause was reached.
fn paused_subscribe_round(window: usize) -> bool {
    let log = Arc::new(Log::new(8));
    let (made, made_rx) = std::sync::mpsc::channel();
    let subscribing = Arc::clone(&log);
    let round = pause_writer_at_boundary(
        window,
        STEP_PATIENCE,
        move || {
            let _ = made.send(subscribing.subscribe(CancellationToken::new(), 0));
        },
        || append_all(&log, 0..1),
    );
    assert!(
        round.finished,
        "subscribe(token, 0) on an empty log was stopped {} while m0 was appended, and did not \
         return within {STEP_PATIENCE:?} after it went on",
        round
            .paused_at
            .map_or("nowhere".to_owned(), |point| point.to_string())
    );
    let mut subscription = match made_rx.recv() {
        Ok(Ok(subscription)) => subscription,
        Ok(Err(err)) => panic!(
            "subscribe(token, 0) on an empty log returned Err({err:?}), but 0 was the head \
             when it was called"
        ),
        Err(_) => unreachable!("the subscribing thread sends before it finishes"),
    };
    if round.paused_at.is_none() {
        append_all(&log, 0..1);
    }
    let pause = round
        .paused_at
        .map_or(String::new(), |point| format!(", which was paused {point}"));
    paused("Log::subscribe", async {
        expect_seen(
            &mut subscription,
            &[at(0), Seen::Quiet],
            &format!(
                "for a subscription from offset 0 of an empty log made by a subscribe() \
                 call{pause}, while m0 was appended at offset 0"
            ),
            "Offset 0 was the head when subscribe was called, so the subscription delivers it, \
             whenever the append lands: check the start offset and set the cursor under one \
             lock, and take the cursor from `from`, not from the head read again later",
        )
        .await;
    });
    round.paused_at.is_some()
}

/// Turns what `recv()` returned into a [`Seen`].
fn seen_from(returned: Option<Result<(u64, String), Lagged>>) -> Seen {
    match returned {
        Some(Ok((offset, message))) => Seen::Message(offset, message),
        Some(Err(lagged)) => Seen::Lagged(lagged.missed),
        None => Seen::Ended,
    }
}

fn lagging_subscriber_gets_lagged_item() {
    paused("Subscription::recv", async {
        // A subscriber of a log of capacity 4 reads nothing while 10
        // messages are appended, so offsets 0 to 5 are evicted unread.
        let log = Log::new(4);
        let mut subscription = subscribe(&log, 0, "on an empty log");
        append_all(&log, 0..10);
        let advice = "A subscriber whose next offsets were evicted gets one \
             Err(Lagged { missed }) naming exactly those offsets, never a silent end and never \
             a skip without a report. It then goes on with the oldest offset still held";
        let mut expected = vec![Seen::Lagged(0..6)];
        expected.extend(messages(6..10));
        expected.push(Seen::Quiet);
        expect_seen(
            &mut subscription,
            &expected,
            "after subscribe from offset 0 and 10 appends to a log of capacity 4, with nothing \
             read",
            advice,
        )
        .await;

        // It keeps working live, and it can lag again.
        append_all(&log, 10..11);
        expect_seen(
            &mut subscription,
            &[at(10), Seen::Quiet],
            "after the lagged subscriber caught up and offset 10 was appended",
            "",
        )
        .await;
        append_all(&log, 11..17);
        let mut expected = vec![Seen::Lagged(11..13)];
        expected.extend(messages(13..17));
        expected.push(Seen::Quiet);
        expect_seen(
            &mut subscription,
            &expected,
            "after offset 10 was read and offsets 11 to 16 were appended to the log of \
             capacity 4",
            advice,
        )
        .await;

        // A subscription can also fall behind while it waits inside recv().
        let reader = tokio::spawn(async move {
            let first = next(&mut subscription).await;
            (first, subscription)
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        append_all(&log, 17..23);
        let (first, mut subscription) = join(reader).await;
        let mut seen = vec![first];
        seen.extend(read_steps(&mut subscription, &messages(19..23)).await);
        let mut expected = vec![Seen::Lagged(17..19)];
        expected.extend(messages(19..23));
        assert!(
            seen == expected,
            "a subscription waited inside recv() at the head, 17, of a log of capacity 4 while \
             offsets 17 to 22 were appended, so 17 and 18 were evicted before it woke. \
             Expected {}, but it returned {}. {advice}. A subscription checks for lag again \
             after every wait, not only when recv() starts",
            describe(&expected),
            describe(&seen)
        );
    });
}

/// Times the cancellation check cancels a subscription with a message
/// ready, so that a `select!` that picks at random is caught in all but
/// 1 in 2^64 runs.
const CANCEL_ROUNDS: usize = 64;

fn cancel_ends_subscription() {
    paused("Subscription::recv", async {
        let log = Log::new(8);
        append_all(&log, 0..2);

        // A token cancelled before subscribe gives a subscription that has
        // ended.
        let cancelled = CancellationToken::new();
        cancelled.cancel();
        match log.subscribe(cancelled, 0) {
            Ok(mut subscription) => {
                expect_seen(
                    &mut subscription,
                    &[Seen::Ended, Seen::Ended],
                    "for a subscription whose token was cancelled before subscribe",
                    "Its first recv() returns None, and so does every later one",
                )
                .await;
            }
            Err(err) => panic!(
                "subscribe from a held offset with a cancelled token returned Err({err:?}), but \
                 expected Ok with a subscription that has ended"
            ),
        }

        // Cancelling ends a subscription at once, even with messages left.
        // An unbiased select! picks the ready message in half of the runs,
        // so the case runs often enough to see that.
        for _ in 0..CANCEL_ROUNDS {
            let token = CancellationToken::new();
            let mut unread = match log.subscribe(token.clone(), 0) {
                Ok(subscription) => subscription,
                Err(err) => {
                    panic!("with offsets 0 and 1 held, subscribe(token, 0) returned Err({err:?})")
                }
            };
            expect_seen(&mut unread, &[at(0)], "after subscribe from offset 0", "").await;
            token.cancel();
            expect_seen(
                &mut unread,
                &[Seen::Ended],
                "after the token was cancelled, with offset 1 still unread",
                "Once the token is cancelled, recv() returns None, even when a message is \
                 ready: give tokio::select! the `biased;` mode and the cancellation as its \
                 first branch, because without it select! picks a ready branch at random",
            )
            .await;
        }

        // A subscription waiting at the head ends when its token is
        // cancelled from another task, with no append to wake it.
        let token = CancellationToken::new();
        let mut waiting = match log.subscribe(token.clone(), 2) {
            Ok(subscription) => subscription,
            Err(err) => panic!("with head 2, subscribe(token, 2) returned Err({err:?})"),
        };
        let canceller = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            token.cancel();
        });
        expect_seen(
            &mut waiting,
            &[Seen::Ended],
            "for a subscription waiting at the head whose token another task cancelled 10 ms \
             later",
            "recv() must wait for a new message and for the cancellation at once, for example \
             with tokio::select! over token.cancelled() and the wait for the next append",
        )
        .await;
        canceller.await.expect("the cancelling task does not panic");

        // The log itself is unaffected.
        append_all(&log, 2..3);
        let mut other = subscribe(&log, 0, "after three subscriptions were cancelled");
        let mut expected = messages(0..3);
        expected.push(Seen::Quiet);
        expect_seen(
            &mut other,
            &expected,
            "for a new subscription from offset 0 after others were cancelled",
            "Cancelling a subscription must not change the log",
        )
        .await;
    });
}

fn close_ends_after_held_messages() {
    paused("Log::close", async {
        let log = Arc::new(Log::new(8));
        append_all(&log, 0..3);
        let mut behind = subscribe(&log, 0, "with offsets 0 to 2 held");
        let mut waiting = subscribe(&log, 3, "at the head 3");
        let mut also_waiting = subscribe(&log, 3, "at the head 3");
        let other_reader = tokio::spawn(async move { next(&mut also_waiting).await });

        // Another task closes the log while `waiting` waits at the head.
        let closer = {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                log.close();
            })
        };
        expect_seen(
            &mut waiting,
            &[Seen::Ended],
            "for a subscription waiting at the head when another task closed the log",
            "Close must wake every waiting subscription, which then ends",
        )
        .await;
        closer.await.expect("the closing task does not panic");
        let other = join(other_reader).await;
        assert!(
            other == Seen::Ended,
            "two subscriptions waited at the head when another task closed the log; one ended, \
             but the other returned {}. Close must wake every waiting subscription, not one",
            describe(&[other])
        );

        // A subscription that was behind reads the rest first.
        let mut expected = messages(0..3);
        expected.extend([Seen::Ended, Seen::Ended]);
        expect_seen(
            &mut behind,
            &expected,
            "for a subscription from offset 0 that had read nothing when the log was closed",
            "After close, a subscription delivers the messages up to the head, then ends",
        )
        .await;

        // Appending after close stores nothing and does not panic.
        let returned = log.append("late".to_owned());
        assert!(
            returned == 3,
            "append after close returned {returned}, but expected 3, the head: append after \
             close must store nothing, and it returns the head, an offset no message has"
        );
        let (oldest, head) = (log.oldest(), log.head());
        assert!(
            (oldest, head) == (0, 3),
            "after close and one more append to a log that held offsets 0 to 2, oldest() and \
             head() returned {oldest} and {head}, but expected 0 and 3: append after close \
             must store nothing, so the head and the held messages stay as they were"
        );
        log.close();

        // A late subscriber replays the closed log's messages, then ends.
        let mut late = subscribe(&log, 1, "after close");
        let mut expected = messages(1..3);
        expected.push(Seen::Ended);
        expect_seen(
            &mut late,
            &expected,
            "for a subscription from offset 1 made after close",
            "Subscribing to a closed log replays its messages, then ends",
        )
        .await;

        // A subscriber that fell behind a closed log still hears of its gap.
        let small = Log::new(4);
        let mut lagging = subscribe(&small, 0, "on an empty log of capacity 4");
        append_all(&small, 0..10);
        small.close();
        let mut expected = vec![Seen::Lagged(0..6)];
        expected.extend(messages(6..10));
        expected.push(Seen::Ended);
        expect_seen(
            &mut lagging,
            &expected,
            "for a subscription from offset 0 of a log of capacity 4 that was appended 10 \
             messages and closed before it read any",
            "A closed log ends a subscription only after it has delivered every offset up to \
             the head, as a message or in a Lagged range: check for lag before checking for \
             the end",
        )
        .await;
    });
}

/// Polls a fresh `recv()` future of `subscription` once, drops it, and
/// returns what that one poll produced, or `None` when it was pending.
async fn poll_once(subscription: &mut Subscription<String>) -> Option<Seen> {
    let mut receiving = std::pin::pin!(subscription.recv());
    match std::future::poll_fn(|cx| Poll::Ready(receiving.as_mut().poll(cx))).await {
        Poll::Ready(returned) => Some(seen_from(returned)),
        Poll::Pending => None,
    }
}

/// Futures of `recv()` that the dropped-recv check polls once and drops.
const DROPPED_POLLS: usize = 10_000;

fn dropped_recv_loses_no_message() {
    paused("Subscription::recv", async {
        // A recv() future dropped while it waits leaves the next append to
        // the next call.
        let log = Log::new(8);
        let mut waiting = subscribe(&log, 0, "on an empty log");
        let first = poll_once(&mut waiting).await;
        assert!(
            first.is_none(),
            "the first poll of recv() on an empty log returned {}, but expected it to wait",
            describe(&first.into_iter().collect::<Vec<_>>())
        );
        append_all(&log, 0..1);
        expect_seen(
            &mut waiting,
            &[at(0), Seen::Quiet],
            "after a recv() future was polled once at the head, dropped, and offset 0 was \
             appended",
            "Dropping the future of an unfinished recv() loses no message: keep the cursor \
             in the subscription and move it only in the poll that returns the message",
        )
        .await;

        // A recv() future polled once and dropped, then a whole recv(),
        // twice: between them they deliver each held message once, in order.
        append_all(&log, 1..3);
        let mut reader = subscribe(&log, 1, "with offsets 0 to 2 held");
        let mut delivered = Vec::new();
        for _ in 0..2 {
            delivered.extend(poll_once(&mut reader).await);
            delivered.push(next(&mut reader).await);
        }
        delivered.retain(|seen| *seen != Seen::Quiet);
        let expected = [at(1), at(2)];
        assert!(
            delivered == expected,
            "a subscription from offset 1, with offsets 0 to 2 held, was read twice by a \
             recv() future that was polled once and dropped, followed by a whole recv(). \
             Expected them to return {} in all, but they returned {}. Dropping the future of \
             an unfinished recv() loses no message, so a recv() that has taken a message from \
             the log returns it in the same poll",
            describe(&expected),
            describe(&delivered)
        );

        // Dropped recv() futures leave at most one waker behind, however many
        // there were.
        let flag = Arc::new(WakeFlag::default());
        let waker = std::task::Waker::from(Arc::clone(&flag));
        let before = Arc::strong_count(&flag);
        let mut idle = subscribe(&log, 3, "at the head 3");
        for _ in 0..DROPPED_POLLS {
            let mut receiving = std::pin::pin!(idle.recv());
            let _ = receiving
                .as_mut()
                .poll(&mut std::task::Context::from_waker(&waker));
        }
        let kept = Arc::strong_count(&flag) - before;
        assert!(
            kept <= 1,
            "{DROPPED_POLLS} recv() futures of one subscription at the head were each polled \
             once with the same waker and dropped, and the log kept {kept} copies of that \
             waker, but expected at most 1: a subscription stores one waker, and replaces it \
             when it is polled again, so memory does not grow with every wait"
        );
    });
}

/// A message that counts in a shared counter how many of its values were
/// dropped.
#[derive(Clone)]
struct DropCounted {
    drops: Arc<AtomicUsize>,
}

impl Drop for DropCounted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// Capacity of the log in the eviction check.
const EVICTION_CAPACITY: u64 = 4;

fn eviction_frees_oldest_message() {
    let drops = Arc::new(AtomicUsize::new(0));
    let log = Log::new(EVICTION_CAPACITY as usize);
    for appended in 1..=5 * EVICTION_CAPACITY {
        log.append(DropCounted {
            drops: Arc::clone(&drops),
        });
        let dropped = drops.load(Ordering::SeqCst) as u64;
        let expected = appended.saturating_sub(EVICTION_CAPACITY);
        assert!(
            dropped == expected,
            "after {appended} appends to a log of capacity {EVICTION_CAPACITY} with no \
             subscription, {dropped} messages had been dropped, but expected {expected}: each \
             append to a full log evicts the oldest message and drops it at once, so the log \
             keeps exactly `capacity` messages. A buffer that grows past the capacity, or \
             frees evicted messages in batches, keeps memory the contract does not allow"
        );
    }
}

/// A message that counts its clones in a counter shared by all its copies.
struct Counted {
    offset: u64,
    clones: Arc<AtomicUsize>,
}

impl Clone for Counted {
    fn clone(&self) -> Counted {
        self.clones.fetch_add(1, Ordering::SeqCst);
        Counted {
            offset: self.offset,
            clones: Arc::clone(&self.clones),
        }
    }
}

/// Why a subscription keeps no copy of the log, for the failure messages of
/// [`subscribe_copies_no_message`].
const CURSOR_CONTRACT: &str = "A subscription is a cursor into the shared log: subscribe \
     stores the start offset and clones no message, and recv() clones a message once, when it \
     returns it. So a subscriber costs the same memory however many messages the log holds. A \
     copy of the held messages at subscribe costs up to `capacity` clones per subscriber, and a \
     copy taken apart from the start of live delivery loses or repeats the appends in between";

/// Subscribes to `log`, which contains offsets 4 to 19, from `from`, and panics
/// unless that succeeds without cloning a message.
#[track_caller]
fn subscribe_counted(log: &Log<Counted>, clones: &AtomicUsize, from: u64) -> Subscription<Counted> {
    let subscription = match log.subscribe(CancellationToken::new(), from) {
        Ok(subscription) => subscription,
        Err(err) => panic!(
            "with offsets 4 to 19 held, subscribe(token, {from}) returned Err({err:?}), but a \
             start between the oldest offset and the head, both included, must succeed"
        ),
    };
    let subscribing = clones.swap(0, Ordering::SeqCst);
    assert!(
        subscribing == 0,
        "with offsets 4 to 19 held, subscribe(token, {from}) cloned messages {subscribing} \
         times, but expected no clone. {CURSOR_CONTRACT}"
    );
    subscription
}

fn subscribe_copies_no_message() {
    paused("Log::subscribe", async {
        // A log of capacity 16 after 20 appends contains offsets 4 to 19.
        let clones = Arc::new(AtomicUsize::new(0));
        let log = Log::new(16);
        for offset in 0..20 {
            let returned = log.append(Counted {
                offset,
                clones: Arc::clone(&clones),
            });
            assert!(
                returned == offset,
                "append returned offset {returned}, but {offset} messages had been appended \
                 before it, so its offset is {offset}"
            );
        }
        let appending = clones.swap(0, Ordering::SeqCst);
        assert!(
            appending == 0,
            "appending 20 messages to a log of capacity 16 with no subscription cloned \
             messages {appending} times, but expected no clone: the log stores the message that \
             append is given"
        );

        // Subscribing from the oldest offset, the middle and the head clones
        // nothing.
        let mut oldest = subscribe_counted(&log, &clones, 4);
        let _middle = subscribe_counted(&log, &clones, 12);
        let mut head = subscribe_counted(&log, &clones, 20);

        // Each recv() clones at most the message it returns.
        for offset in 4..7 {
            let (delivered, message) = match next_message(&mut oldest).await {
                Ok(pair) => pair,
                Err(got) => panic!(
                    "a subscription from offset 4, with offsets 4 to 19 held, expected recv() \
                     to return offset {offset}, but it returned {got}"
                ),
            };
            assert!(
                (delivered, message.offset) == (offset, offset),
                "a subscription from offset 4 returned offset {delivered} with the message \
                 appended at offset {}, but expected offset {offset} with its own message",
                message.offset
            );
            let reading = clones.swap(0, Ordering::SeqCst);
            assert!(
                reading <= 1,
                "recv() returned the message at offset {offset} and cloned messages {reading} \
                 times, but expected at most 1 clone, of the message it returned: a \
                 subscription reads ahead of nothing. {CURSOR_CONTRACT}"
            );
        }

        // Appending while a subscription waits inside recv() clones nothing
        // either, and the live message is cloned when it is read.
        let reader = tokio::spawn(async move { next_message(&mut head).await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        log.append(Counted {
            offset: 20,
            clones: Arc::clone(&clones),
        });
        let appending = clones.swap(0, Ordering::SeqCst);
        assert!(
            appending == 0,
            "one append to a log with three open subscriptions, one of them waiting inside \
             recv(), cloned the message {appending} times, but expected no clone: \
             subscriptions read the message from the log when they get to it, and append \
             hands it to nobody. {CURSOR_CONTRACT}"
        );
        let delivered = match join(reader).await {
            Ok((offset, _)) => offset,
            Err(got) => panic!(
                "a subscription from the head, 20, expected recv() to return offset 20 after it \
                 was appended, but it returned {got}"
            ),
        };
        assert!(
            delivered == 20,
            "a subscription from the head, 20, returned offset {delivered} after offset 20 was \
             appended, but expected offset 20"
        );
        let reading = clones.swap(0, Ordering::SeqCst);
        assert!(
            reading <= 1,
            "recv() returned 1 message and cloned messages {reading} times, but expected at \
             most 1 clone. {CURSOR_CONTRACT}"
        );
    });
}

/// Capacity of the log in the constant-time check; it appends twice as many
/// messages.
const MILLION: usize = 1 << 20;

fn million_appends_stay_constant_time() {
    let log: Log<u64> = Log::new(MILLION);
    let capacity = MILLION as u64;

    // Filling the log may grow a buffer a few times, but not per message.
    let filling = count_allocations(|| {
        for value in 0..capacity {
            log.append(value);
        }
    });
    assert!(
        filling <= 64,
        "appending {MILLION} messages to an empty log of capacity {MILLION} made {filling} \
         heap allocations, but expected at most 64: a buffer that doubles as it grows needs \
         about 21, and one reserved up front needs none"
    );

    // A full log evicts on every append, which must cost no allocation.
    let full = count_allocations(|| {
        for value in capacity..2 * capacity {
            log.append(value);
        }
    });
    assert!(
        full <= 16,
        "appending {MILLION} messages to a full log of capacity {MILLION} made {full} heap \
         allocations, but expected at most 16: evicting the oldest message and storing the new \
         one must reuse the buffer, not copy it"
    );
    let (oldest, head) = (log.oldest(), log.head());
    assert!(
        (oldest, head) == (capacity, 2 * capacity),
        "after {} appends to a log of capacity {MILLION}, oldest() and head() returned \
         {oldest} and {head}, but expected {capacity} and {}",
        2 * capacity,
        2 * capacity
    );
}

/// Messages each of the two threads appends per round of the racing check.
const RACING_PER_THREAD: u64 = 10_000;
/// Rounds of the racing check, unless [`RACING_BUDGET`] runs out first.
const RACING_ROUNDS: usize = 100;
/// Real time after which the racing check starts no new round.
const RACING_BUDGET: Duration = Duration::from_secs(2);

fn racing_appends_return_stored_offsets() {
    // Whether two appends interleave badly depends on the scheduler, so the
    // check runs rounds until one fails or the budget is spent.
    let started = Instant::now();
    for round in 1..=RACING_ROUNDS {
        racing_appends_round(round);
        if started.elapsed() > RACING_BUDGET {
            break;
        }
    }
}

/// Runs one round of the racing check: two threads append at once, then a
/// subscription from offset 0 must deliver each value at the offset that its
/// append returned.
fn racing_appends_round(round: usize) {
    let total = 2 * RACING_PER_THREAD;
    let log: Log<u64> = Log::new(total as usize);
    let mut subscription = match log.subscribe(CancellationToken::new(), 0) {
        Ok(subscription) => subscription,
        Err(err) => panic!("on a new, empty log, subscribe(token, 0) returned Err({err:?})"),
    };

    // Both threads start at once and append distinct values in a tight
    // loop, recording the offset that append returned for each.
    let start = Barrier::new(2);
    let returned: Vec<(u64, u64)> = std::thread::scope(|scope| {
        let appenders: Vec<_> = (0..2)
            .map(|thread| {
                let (log, start) = (&log, &start);
                scope.spawn(move || {
                    start.wait();
                    (0..RACING_PER_THREAD)
                        .map(|sequence| {
                            let value = thread * RACING_PER_THREAD + sequence;
                            (log.append(value), value)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        appenders
            .into_iter()
            .flat_map(|appender| match appender.join() {
                Ok(pairs) => pairs,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });

    // Every offset below the total went to exactly one append.
    let mut by_offset: Vec<Option<u64>> = vec![None; total as usize];
    for (offset, value) in returned {
        let Some(slot) = by_offset.get_mut(offset as usize) else {
            panic!(
                "two threads appended {RACING_PER_THREAD} messages each to a new log, and one \
                 append returned offset {offset}, but the offsets of {total} appends are 0 to {}",
                total - 1
            );
        };
        assert!(
            slot.is_none(),
            "two threads appended {RACING_PER_THREAD} messages each to a new log, and two \
             appends both returned offset {offset}; every append gets its own offset"
        );
        *slot = Some(value);
    }
    let by_offset: Vec<u64> = by_offset
        .into_iter()
        .map(|value| value.expect("distinct offsets below the total fill every slot"))
        .collect();

    // The subscription delivers each value at the offset its append
    // returned. The log is closed, so reading never waits.
    log.close();
    paused("Subscription::recv", async {
        for (offset, appended) in (0..total).zip(by_offset) {
            let (delivered, value) = match next_message(&mut subscription).await {
                Ok(pair) => pair,
                Err(got) => panic!(
                    "a subscription from offset 0 of a closed log that holds offsets 0 to {} \
                     expected recv() to return offset {offset}, but it returned {got}",
                    total - 1
                ),
            };
            assert!(
                delivered == offset,
                "a subscription from offset 0 of a closed log that holds offsets 0 to {} \
                 returned offset {delivered}, but expected offset {offset} next: offsets \
                 arrive in order, each once",
                total - 1
            );
            assert!(
                value == appended,
                "in round {round}, two threads appended {RACING_PER_THREAD} messages each at \
                 once. append returned offset {offset} for value {appended}, but a subscription \
                 from offset 0 returned value {value} at offset {offset}. The offset that \
                 append returns is the offset where it stored the message: take it from the \
                 head under the same lock that stores the message. A counter that append \
                 increments outside that lock, such as an AtomicU64, lets two appends store \
                 their messages in the other order"
            );
        }
    });
}

/// Tasks that only append in the stress check.
const APPENDERS: u64 = 3;
/// Messages each appender appends.
const PER_APPENDER: u64 = 10_000;
/// Tasks that subscribe in the stress check.
const SUBSCRIBERS: u64 = 4;
/// The stress subscriber that falls behind on purpose.
const LAGGARD: u64 = SUBSCRIBERS - 1;
/// Capacity of the log in the stress check, small enough that subscribers
/// lag now and then.
const STRESS_CAPACITY: usize = 256;
/// First value that stress subscribers append; appenders stay below it.
const SUBSCRIBER_VALUES: u64 = 1 << 40;

fn concurrent_appends_reach_subscribers_contiguously() {
    multi_thread(4, async {
        let log: Arc<Log<u64>> = Arc::new(Log::new(STRESS_CAPACITY));
        let appended_by_appenders = APPENDERS * PER_APPENDER;
        let appenders_done = Arc::new(AtomicBool::new(false));

        // Subscribers start at different moments while the appenders run.
        // Each one reports what it appended before it reads anything.
        let mut subscribers = Vec::new();
        let mut reports = Vec::new();
        for index in 0..SUBSCRIBERS {
            let log = Arc::clone(&log);
            let appenders_done = Arc::clone(&appenders_done);
            let (report, report_receiver) = oneshot::channel();
            reports.push(report_receiver);
            subscribers.push(tokio::spawn(async move {
                let start_at = index * appended_by_appenders / (2 * SUBSCRIBERS);
                wait_for_head(&log, start_at, &appenders_done).await;
                read_to_end(&log, index, report).await
            }));
        }

        // Appenders append distinct values and record the offset of each.
        let mut appenders = Vec::new();
        for appender in 0..APPENDERS {
            let log = Arc::clone(&log);
            appenders.push(tokio::spawn(async move {
                let mut appended = Vec::new();
                for sequence in 0..PER_APPENDER {
                    let value = appender * PER_APPENDER + sequence;
                    appended.push((log.append(value), value));
                    if sequence % 32 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                appended
            }));
        }

        // Once every append is done, every offset below the head went to
        // exactly one append. Then the log is closed.
        let mut appended = Vec::new();
        for appender in appenders {
            appended.extend(join(appender).await);
        }
        appenders_done.store(true, Ordering::SeqCst);
        let mut waiting = Vec::new();
        for (subscriber, report) in subscribers.into_iter().zip(reports) {
            match report.await {
                Ok(pairs) => appended.extend(pairs),
                // The subscriber failed before its report; show its panic.
                Err(_) => {
                    join(subscriber).await;
                    panic!("a stress subscriber ended without reporting its appends");
                }
            }
            waiting.push(subscriber);
        }
        let head = log.head();
        let mut by_offset: Vec<Option<u64>> = vec![None; head as usize];
        for (offset, value) in appended {
            let slot = by_offset.get_mut(offset as usize).unwrap_or_else(|| {
                panic!("append returned offset {offset}, but head() returned {head} afterwards")
            });
            assert!(
                slot.is_none(),
                "two concurrent appends both returned offset {offset}; every append gets \
                 its own offset"
            );
            *slot = Some(value);
        }
        log.close();

        // Each subscriber saw every offset from its start to the head, as
        // the message appended there or inside a Lagged range.
        for subscriber in waiting {
            let read = join(subscriber).await;
            assert!(
                read.end == head,
                "subscriber {} started at offset {} and its subscription ended at offset {}, \
                 but the log was closed at head {head}. A subscription ends only after \
                 delivering or reporting as missed every offset up to the head",
                read.index,
                read.start,
                read.end
            );
            for (offset, value) in read.delivered {
                let appended = by_offset[offset as usize];
                assert!(
                    appended == Some(value),
                    "subscriber {} received value {value} at offset {offset}, but the append \
                     that returned offset {offset} appended {appended:?}",
                    read.index
                );
            }
        }
    });
}

/// Waits until `log.head()` reaches `offset`, and panics when the appenders
/// are done and it still has not.
async fn wait_for_head(log: &Log<u64>, offset: u64, appenders_done: &AtomicBool) {
    loop {
        // The flag is read before the head, so a head read after the last
        // append has returned is final.
        let done = appenders_done.load(Ordering::SeqCst);
        let head = log.head();
        if head >= offset {
            return;
        }
        assert!(
            !done,
            "{} appends had returned, but head() returned {head} afterwards: the head is the \
             offset of the next append, which is the number of messages appended so far",
            APPENDERS * PER_APPENDER
        );
        tokio::task::yield_now().await;
    }
}

/// Times a stress subscriber retries subscribe after `Evicted` before the
/// check fails. Each retry starts at the oldest offset that the error named,
/// so only an append in the instant between two calls evicts it again.
const SUBSCRIBE_RETRIES: usize = 1_000;

/// What one subscriber of the stress check read.
struct StressRead {
    index: u64,
    start: u64,
    // One past the last offset delivered or reported as missed.
    end: u64,
    delivered: Vec<(u64, u64)>,
}

/// Runs stress subscriber `index`: appends, subscribes, appends again, and
/// reads until the subscription ends, checking that offsets are contiguous.
///
/// The appends of its own make the outcome independent of the scheduler.
/// One lands after subscribe and before the first read, the step where a
/// replay taken apart from the start of live delivery loses a message. The
/// laggard appends a whole log's worth before reading, so it lags for sure.
async fn read_to_end(
    log: &Log<u64>,
    index: u64,
    report: oneshot::Sender<Vec<(u64, u64)>>,
) -> StressRead {
    let mut value = SUBSCRIBER_VALUES + index * SUBSCRIBER_VALUES / SUBSCRIBERS;
    let mut appended = Vec::new();
    let mut append = |appended: &mut Vec<(u64, u64)>| {
        appended.push((log.append(value), value));
        value += 1;
    };

    // The log contains at least this append, so a start at the oldest
    // offset has something to replay.
    append(&mut appended);
    let mut from = match index % 3 {
        0 => log.oldest(),
        1 => log.head(),
        _ => log.head().saturating_sub(10),
    };

    // An append may evict the chosen start first; then the subscriber
    // tries again at the oldest offset that the error names.
    let mut retries = 0;
    let mut subscription = loop {
        let err = match log.subscribe(CancellationToken::new(), from) {
            Ok(subscription) => break subscription,
            Err(err) => err,
        };
        let SubscribeError::Evicted { oldest, .. } = err else {
            panic!(
                "subscribe(token, {from}) returned Err({err:?}), but {from} was no higher than \
                 a head that head() had returned before, and the head only grows"
            );
        };
        assert!(
            oldest > from,
            "subscribe(token, {from}) returned Err({err:?}), but an offset is evicted only when \
             it is older than the oldest held offset, and the error names {oldest}, which is \
             not newer than {from}"
        );
        retries += 1;
        assert!(
            retries < SUBSCRIBE_RETRIES,
            "subscribe returned Err(Evicted) {retries} times in a row, each time for the \
             oldest offset that the previous error named; the last one was Err({err:?}). The \
             oldest offset in the error must be a start that succeeds until the next append"
        );
        from = oldest;
    };
    append(&mut appended);
    if index == LAGGARD {
        for _ in 0..STRESS_CAPACITY {
            append(&mut appended);
        }
    }
    let _ = report.send(appended);

    let mut read = StressRead {
        index,
        start: from,
        end: from,
        delivered: Vec::new(),
    };
    let mut items = 0u64;
    while let Some(item) = subscription.recv().await {
        // Every offset delivered or reported has been appended, which
        // bounds this loop once the appends stop.
        let head = log.head();
        match item {
            Ok((offset, value)) => {
                assert!(
                    offset < head,
                    "subscriber {index} received offset {offset}, but head() returned {head} \
                     afterwards: a subscription delivers only offsets that were appended"
                );
                assert!(
                    offset == read.end,
                    "subscriber {index} started at offset {from} and expected offset {} next, \
                     but recv() returned offset {offset}. Offsets must arrive in order, each \
                     once, with missed ones reported in a Lagged item",
                    read.end
                );
                read.delivered.push((offset, value));
                read.end += 1;
            }
            Err(Lagged { missed }) => {
                assert!(
                    missed.start == read.end && missed.end > missed.start,
                    "subscriber {index} expected offset {} next, but recv() returned \
                     Err(Lagged {{ missed: {missed:?} }}). A Lagged item names the range of \
                     evicted offsets starting at the subscriber's next offset",
                    read.end
                );
                assert!(
                    missed.end <= head,
                    "subscriber {index} received Err(Lagged {{ missed: {missed:?} }}), but \
                     head() returned {head} afterwards: a Lagged item names only offsets that \
                     were appended and then evicted"
                );
                read.end = missed.end;
            }
        }
        items += 1;
        if items % 64 == 0 {
            tokio::task::yield_now().await;
        }
    }
    read
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

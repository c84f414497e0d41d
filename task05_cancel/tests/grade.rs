//! Grading suite for task 5: subscriptions that end with their cancellation
//! token.
//!
//! The first checks cover publish with the drop policy: topics, buffer sizes,
//! `on_drop`, and that publish starts no task. The middle checks cover
//! cancellation: an already-cancelled token, a token cancelled later, a
//! cancelled parent, and a dropped receiver, each of which must end the
//! subscription and leave nothing behind. The last checks cover close and
//! churn: close ends every receiver and returns only when no task of the
//! broker is alive, and many subscriptions that come and go leave the broker
//! empty.
//!
//! Every check but the last runs on a current-thread runtime with paused
//! time, so waiting costs no real time. A receiver "ends within" a virtual
//! duration when `recv()` returns `None` before that much virtual time has
//! passed. Tasks are counted with the runtime's alive-task metric. The last
//! check runs threads in real time and relies on its time limit.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use task05_cancel::{Broker, DEFAULT_BUFFER, SubscribeOptions};
use testkit::grading::Check;
use testkit::runtime::{multi_thread, paused};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;
use tokio_util::sync::CancellationToken;

fn main() -> std::process::ExitCode {
    testkit::suite!()
        .check(
            "publish_reaches_topic_subscribers_only",
            "Broker::publish",
            publish_reaches_topic_subscribers_only,
        )
        .check(
            "buffer_option_sets_capacity",
            "SubscribeOptions::buffer",
            buffer_option_sets_capacity,
        )
        .check(
            "full_buffer_calls_on_drop",
            "Broker::publish",
            full_buffer_calls_on_drop,
        )
        .check(
            "publish_starts_no_tasks",
            "Broker::publish",
            publish_starts_no_tasks,
        )
        .check(
            "cancelled_token_registers_nothing",
            "Broker::subscribe",
            cancelled_token_registers_nothing,
        )
        .check(
            "cancel_removes_subscription",
            "Broker::subscribe",
            cancel_removes_subscription,
        )
        .check(
            "cancel_ends_receiver_promptly",
            "Broker::subscribe",
            cancel_ends_receiver_promptly,
        )
        .check(
            "no_delivery_after_cancel",
            "Broker::publish",
            no_delivery_after_cancel,
        )
        .check(
            "cancel_delivers_buffered_first",
            "Broker::subscribe",
            cancel_delivers_buffered_first,
        )
        .check(
            "parent_cancel_reaches_children",
            "Broker::subscribe",
            parent_cancel_reaches_children,
        )
        .check(
            "dropped_receiver_frees_its_task",
            "Broker::subscribe",
            dropped_receiver_frees_its_task,
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
        .check(
            "close_twice_and_after_is_harmless",
            "Broker::close",
            close_twice_and_after_is_harmless,
        )
        .add_check(
            Check::new(
                "many_cancel_cycles_leave_nothing",
                "Broker::subscribe",
                many_cancel_cycles_leave_nothing,
            )
            .time_limit(Duration::from_secs(20)),
        )
        .add_check(
            Check::new(
                "concurrent_cancel_churn_stays_consistent",
                "Broker",
                concurrent_cancel_churn_stays_consistent,
            )
            .time_limit(Duration::from_secs(10))
            .timeout_cause(CHURN_TIMEOUT),
        )
        .run()
}

/// Timeout cause of the stress check, which waits without a bound for each
/// cancelled receiver to end.
const CHURN_TIMEOUT: &str = "likely a receiver that never ended after its token was cancelled, \
     or close() waiting for a task that never finishes. Cancelling a subscription's token must \
     end its receiver without waiting for a publish, and close must stop every task it waits for";

/// Virtual time within which a cancelled subscription's receiver must end.
const PROMPTLY: Duration = Duration::from_millis(1);

/// Virtual time a check gives a receiver to end where promptness is not the
/// point. In paused time a longer wait costs no real time.
const PATIENCE: Duration = Duration::from_secs(1);

/// Virtual time that close() may take before a check calls it stuck.
const CLOSE_LIMIT: Duration = Duration::from_secs(60);

/// The messages a receiver should get when it should get none.
const NOTHING: &[&str] = &[];

/// What a receiver should do once its buffered messages are read.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Then {
    /// Stay open: no message and no end within the wait.
    StayOpen,
    /// End: `recv()` returns `None`.
    End,
}

/// What a receiver yielded until it ended or went quiet.
#[derive(Debug)]
struct Drained {
    messages: Vec<String>,
    // `true` when `recv()` returned `None`, `false` when a wait timed out.
    ended: bool,
}

/// Reads `receiver` until it ends or yields nothing for `limit` of virtual
/// time.
async fn read_until_end(receiver: &mut mpsc::Receiver<String>, limit: Duration) -> Drained {
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
fn describe_messages<S: AsRef<str>>(messages: &[S]) -> String {
    if messages.is_empty() {
        return "nothing".to_owned();
    }
    let shown: Vec<&str> = messages.iter().map(AsRef::as_ref).collect();
    format!("{shown:?}")
}

/// Describes a virtual duration for a failure message.
fn describe_wait(limit: Duration) -> String {
    if limit < Duration::from_secs(1) {
        format!("{} ms", limit.as_millis())
    } else {
        format!("{} s", limit.as_secs())
    }
}

/// Reads `receiver` with [`read_until_end`] and panics unless it yields
/// exactly `expected`, in order, and then stays open or ends as `then`
/// requests.
///
/// The message reads "{situation}, expected {who} to get … and …, but it got
/// … and …", followed by `advice` when that is not empty.
async fn expect_received<S: AsRef<str>>(
    receiver: &mut mpsc::Receiver<String>,
    who: &str,
    expected: &[S],
    then: Then,
    limit: Duration,
    situation: &str,
    advice: &str,
) {
    let drained = read_until_end(receiver, limit).await;
    let messages_match = drained
        .messages
        .iter()
        .map(String::as_str)
        .eq(expected.iter().map(AsRef::as_ref));
    if messages_match && drained.ended == (then == Then::End) {
        return;
    }

    let wait = describe_wait(limit);
    let expected_end = match then {
        Then::StayOpen => "stay open".to_owned(),
        Then::End => format!("end within {wait} of virtual time"),
    };
    let actual_end = if drained.ended {
        "had ended".to_owned()
    } else {
        format!("was still open {wait} of virtual time later")
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
///
/// The message reads "{call} returned …, but expected … {situation}".
#[track_caller]
fn expect_count(call: &str, actual: usize, expected: usize, situation: &str) {
    assert!(
        actual == expected,
        "{call} returned {actual}, but expected {expected} {situation}"
    );
}

/// Returns the number of tasks alive on the current runtime.
fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Panics unless as many tasks are alive as `expected`, the count measured
/// at a point where the broker had no subscription.
#[track_caller]
fn expect_no_extra_tasks(expected: usize, situation: &str, advice: &str) {
    let alive = alive_tasks();
    let extra = alive.saturating_sub(expected);
    let verb = if extra == 1 { "was" } else { "were" };
    assert!(
        alive == expected,
        "{situation}, {} of the broker {verb} still alive. {advice}",
        describe_tasks(extra)
    );
}

/// Describes a number of tasks: "1 task" or "3 tasks".
fn describe_tasks(count: usize) -> String {
    if count == 1 {
        "1 task".to_owned()
    } else {
        format!("{count} tasks")
    }
}

/// Gives every task that is ready to run a turn. In paused time the sleep
/// ends once all other tasks are idle, [`PROMPTLY`] later in virtual time.
async fn let_tasks_run() {
    tokio::time::sleep(PROMPTLY).await;
}

/// Closes `broker` and panics if close() has not returned within
/// [`CLOSE_LIMIT`] of virtual time. The message reads "close() {situation}
/// had not returned …".
async fn close_within_limit(broker: &Broker, situation: &str) {
    if tokio::time::timeout(CLOSE_LIMIT, broker.close())
        .await
        .is_err()
    {
        panic!(
            "close() {situation} had not returned after {} s of virtual time. Close must \
             stop every task of the broker and then return; it waits for something that \
             never happens, such as TaskTracker::wait() on a tracker that was never closed \
             with TaskTracker::close(), or a task that does not notice the close",
            CLOSE_LIMIT.as_secs()
        );
    }
}

/// Returns options whose `on_drop` callback records what it receives.
fn recording_options(buffer: usize) -> (SubscribeOptions, Arc<Mutex<Vec<String>>>) {
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
fn recorded(dropped: &Mutex<Vec<String>>) -> Vec<String> {
    dropped
        .lock()
        .unwrap_or_else(|err| err.into_inner())
        .clone()
}

/// Returns the messages "{prefix}N" for each N in `range`, in order.
fn numbered(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|index| format!("{prefix}{index}")).collect()
}

fn publish_reaches_topic_subscribers_only() {
    paused("Broker::publish", async {
        let broker = Broker::new();
        let token = CancellationToken::new();
        let options = SubscribeOptions::default;
        let mut first = broker.subscribe(token.clone(), "news", options());
        let mut second = broker.subscribe(token.clone(), "news", options());
        let mut other = broker.subscribe(token.clone(), "sport", options());

        // One message to "news" reaches both of its subscribers and nobody
        // else.
        broker.publish("news", "hello".to_owned());
        let situation = "after one publish of \"hello\" to \"news\"";
        expect_received(
            &mut first,
            "the first subscriber of \"news\"",
            &["hello"],
            Then::StayOpen,
            PROMPTLY,
            situation,
            "",
        )
        .await;
        expect_received(
            &mut second,
            "the second subscriber of \"news\"",
            &["hello"],
            Then::StayOpen,
            PROMPTLY,
            situation,
            "Publish must deliver to every subscriber of the topic",
        )
        .await;
        expect_received(
            &mut other,
            "the subscriber of \"sport\"",
            NOTHING,
            Then::StayOpen,
            PROMPTLY,
            situation,
            "Publish must deliver only to subscribers of exactly that topic",
        )
        .await;

        // The counts follow the subscriptions.
        let count = broker.subscriber_count("news");
        expect_count(
            "subscriber_count(\"news\")",
            count,
            2,
            "with two subscribers",
        );
        let count = broker.subscriber_count("sport");
        expect_count(
            "subscriber_count(\"sport\")",
            count,
            1,
            "with one subscriber",
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

fn buffer_option_sets_capacity() {
    paused("SubscribeOptions::buffer", async {
        let broker = Broker::new();
        let token = CancellationToken::new();
        let (default_options, default_dropped) = recording_options(0);
        let (small_options, small_dropped) = recording_options(3);
        let mut default_sized = broker.subscribe(token.clone(), "t", default_options);
        let mut small = broker.subscribe(token.clone(), "t", small_options);

        // Publish one more than the default buffer contains, reading nothing.
        let published = numbered("m", 0..DEFAULT_BUFFER + 1);
        for message in &published {
            broker.publish("t", message.clone());
        }

        // Buffer 0 means the default; buffer 3 means 3.
        let situation = format!(
            "after {} publishes to subscribers that read nothing",
            published.len()
        );
        expect_received(
            &mut default_sized,
            "the subscriber with buffer 0",
            &published[..DEFAULT_BUFFER],
            Then::StayOpen,
            PROMPTLY,
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
            PROMPTLY,
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
            describe_messages(&published[DEFAULT_BUFFER..]),
            describe_messages(&dropped)
        );
        let dropped = recorded(&small_dropped);
        assert!(
            dropped == published[3..],
            "{situation}, expected on_drop of the subscriber with buffer 3 to receive {}, but \
             it received {}",
            describe_messages(&published[3..]),
            describe_messages(&dropped)
        );
    });
}

fn full_buffer_calls_on_drop() {
    paused("Broker::publish", async {
        let broker = Broker::new();
        let token = CancellationToken::new();
        let (slow_options, slow_dropped) = recording_options(2);
        let (fast_options, fast_dropped) = recording_options(0);
        let mut slow = broker.subscribe(token.clone(), "t", slow_options);
        let mut fast = broker.subscribe(token.clone(), "t", fast_options);

        // Five publishes to a buffer of 2 that nobody reads: three drop.
        let published = numbered("m", 0..5);
        for message in &published {
            broker.publish("t", message.clone());
        }
        let dropped = recorded(&slow_dropped);
        assert!(
            dropped == published[2..],
            "after 5 publishes to a subscriber with buffer 2 that read nothing, expected its \
             on_drop to receive {} in that order, but it received {}. Publish must hand each \
             message that does not fit to on_drop at once, and only those",
            describe_messages(&published[2..]),
            describe_messages(&dropped)
        );

        // The full buffer contains the first two, and the other subscriber got
        // everything.
        let situation = "after 5 publishes to \"t\", where one subscriber has buffer 2";
        expect_received(
            &mut slow,
            "the subscriber with buffer 2",
            &published[..2],
            Then::StayOpen,
            PROMPTLY,
            situation,
            "A full buffer must drop new messages, not end the subscription",
        )
        .await;
        expect_received(
            &mut fast,
            "the subscriber with buffer 16",
            &published,
            Then::StayOpen,
            PROMPTLY,
            situation,
            "A full subscriber must not keep messages from the others",
        )
        .await;
        let dropped = recorded(&fast_dropped);
        assert!(
            dropped.is_empty(),
            "{situation}, the on_drop of the subscriber with room received {}, but it should \
             receive only messages that did not fit",
            describe_messages(&dropped)
        );

        // With room again, delivery resumes and nothing more is dropped.
        broker.publish("t", "after".to_owned());
        expect_received(
            &mut slow,
            "the subscriber with buffer 2",
            &["after"],
            Then::StayOpen,
            PROMPTLY,
            "after it emptied its full buffer and \"after\" was published",
            "",
        )
        .await;
        let dropped = recorded(&slow_dropped);
        assert!(
            dropped == published[2..],
            "after the subscriber with buffer 2 had room again and \"after\" was published, \
             its on_drop had received {}, but expected still only {}",
            describe_messages(&dropped),
            describe_messages(&published[2..])
        );
    });
}

fn publish_starts_no_tasks() {
    paused("Broker::publish", async {
        let broker = Broker::new();
        let token = CancellationToken::new();
        let _full = broker.subscribe(
            token.clone(),
            "t",
            SubscribeOptions::default().with_buffer(1),
        );
        let _roomy = broker.subscribe(token.clone(), "t", SubscribeOptions::default());
        let before = alive_tasks();

        // Publish to a subscriber that soon has a full buffer, to one with
        // room, and to a topic without subscribers.
        for index in 0..10 {
            broker.publish("t", format!("m{index}"));
            broker.publish("nobody", format!("n{index}"));
        }
        let alive = alive_tasks();
        assert!(
            alive == before,
            "10 publishes to \"t\" and 10 to a topic without subscribers started {} that were \
             still alive when publish returned. Publish must deliver in place with try_send: a \
             task per delivery waits for room that a reader who stopped never makes, so such \
             tasks pile up",
            describe_tasks(alive.saturating_sub(before))
        );

        // Nothing starts later either.
        let_tasks_run().await;
        expect_no_extra_tasks(
            before,
            "after 20 publishes and a moment for tasks to run",
            "Publish must not leave work behind for other tasks",
        );
    });
}

fn cancelled_token_registers_nothing() {
    paused("Broker::subscribe", async {
        let broker = Broker::new();
        let before = alive_tasks();
        let token = CancellationToken::new();
        token.cancel();

        // Straight after subscribe returns, before any other task could run,
        // nothing is registered and the receiver has ended.
        let mut receiver = broker.subscribe(token.clone(), "t", SubscribeOptions::default());
        let situation = "straight after subscribe with a token that was already cancelled";
        let count = broker.subscriber_count("t");
        expect_count(
            "subscriber_count(\"t\")",
            count,
            0,
            &format!(
                "{situation}. Check the token before registering; a subscriber that is \
                 registered first and removed a moment later can receive a publish in between"
            ),
        );
        let count = broker.topic_count();
        expect_count("topic_count()", count, 0, situation);
        let state = receiver.try_recv();
        assert!(
            state == Err(TryRecvError::Disconnected),
            "{situation}, expected try_recv() on its receiver to report Disconnected (the \
             receiver has ended), but it reported {state:?}. Return a receiver whose sender \
             is already dropped"
        );
        expect_no_extra_tasks(
            before,
            situation,
            "A subscription that never starts needs no task; start one only after the token \
             check",
        );

        // A child of a cancelled parent is cancelled too.
        let parent = CancellationToken::new();
        parent.cancel();
        let mut child_receiver =
            broker.subscribe(parent.child_token(), "t", SubscribeOptions::default());
        let situation = "straight after subscribe with a child token of a cancelled parent";
        let count = broker.subscriber_count("t");
        expect_count("subscriber_count(\"t\")", count, 0, situation);
        let state = child_receiver.try_recv();
        assert!(
            state == Err(TryRecvError::Disconnected),
            "{situation}, expected try_recv() on its receiver to report Disconnected, but it \
             reported {state:?}"
        );

        // Publishing to the topic reaches nobody and does not panic.
        broker.publish("t", "nobody".to_owned());
        let count = broker.topic_count();
        expect_count(
            "topic_count()",
            count,
            0,
            "after two subscribes with cancelled tokens and a publish",
        );
    });
}

fn cancel_removes_subscription() {
    paused("Broker::subscribe", async {
        let broker = Broker::new();
        let before = alive_tasks();
        let leaving_token = CancellationToken::new();
        let staying_token = CancellationToken::new();
        let options = SubscribeOptions::default;
        let mut leaving = broker.subscribe(leaving_token.clone(), "t", options());
        let mut staying = broker.subscribe(staying_token.clone(), "t", options());

        // Cancelling one token ends that receiver and removes its subscriber.
        leaving_token.cancel();
        expect_received(
            &mut leaving,
            "the cancelled subscriber",
            NOTHING,
            Then::End,
            PATIENCE,
            "after its token was cancelled",
            "Cancelling the token must remove the subscription, and removing it must drop \
             every sender of its channel",
        )
        .await;
        let situation = "once the receiver of the cancelled subscriber of \"t\" had ended";
        let count = broker.subscriber_count("t");
        expect_count(
            "subscriber_count(\"t\")",
            count,
            1,
            &format!("{situation}. Cancellation must remove the subscriber's map entry"),
        );
        let count = broker.topic_count();
        expect_count("topic_count()", count, 1, situation);

        // The other subscriber is untouched.
        broker.publish("t", "still here".to_owned());
        expect_received(
            &mut staying,
            "the subscriber whose token was not cancelled",
            &["still here"],
            Then::StayOpen,
            PROMPTLY,
            "after another subscriber's token was cancelled and \"still here\" was published",
            "Cancelling one token must not affect other subscriptions",
        )
        .await;

        // Cancelling the last subscriber removes the topic and its tasks.
        staying_token.cancel();
        expect_received(
            &mut staying,
            "the second cancelled subscriber",
            NOTHING,
            Then::End,
            PATIENCE,
            "after its token was cancelled too",
            "",
        )
        .await;
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
        let_tasks_run().await;
        expect_no_extra_tasks(
            before,
            situation,
            "A task that watches a subscription's token must finish once the token is \
             cancelled",
        );
    });
}

fn cancel_ends_receiver_promptly() {
    paused("Broker::subscribe", async {
        let broker = Broker::new();
        let token = CancellationToken::new();
        let mut receiver = broker.subscribe(token.clone(), "t", SubscribeOptions::default());

        // No publish follows the cancel, so only the broker itself can end
        // the receiver.
        token.cancel();
        expect_received(
            &mut receiver,
            "the cancelled subscriber",
            NOTHING,
            Then::End,
            PROMPTLY,
            "after its token was cancelled, with no publish afterwards",
            "Cancellation must end the receiver by itself, not at the next publish: a task \
             that awaits token.cancelled() and then removes the subscription does that without \
             polling",
        )
        .await;
    });
}

fn no_delivery_after_cancel() {
    paused("Broker::publish", async {
        let broker = Broker::new();
        let token = CancellationToken::new();
        let mut receiver = broker.subscribe(token.clone(), "t", SubscribeOptions::default());

        // The second publish runs before any other task had a chance to
        // react to the cancel.
        broker.publish("t", "before".to_owned());
        token.cancel();
        broker.publish("t", "after".to_owned());
        let drained = read_until_end(&mut receiver, PATIENCE).await;
        let situation = "after \"before\" was published, the subscriber's token was cancelled, \
                         and \"after\" was published straight away";
        assert!(
            !drained.messages.iter().any(|message| message == "after"),
            "{situation}, the subscriber received {}. Once cancel() has returned, no later \
             publish may reach the subscriber, even if the broker has not removed it yet: \
             publish must skip a subscriber whose token is cancelled (token.is_cancelled())",
            describe_messages(&drained.messages)
        );

        // What was published before the cancel still arrives, then the end.
        let advice = "A message published before the cancellation must still arrive, and then \
                      recv() must return None";
        assert!(
            drained.messages == ["before"],
            "{situation}, expected the subscriber to receive [\"before\"], but it received \
             {}. {advice}",
            describe_messages(&drained.messages)
        );
        assert!(
            drained.ended,
            "{situation}, the subscriber's receiver was still open {} of virtual time later. \
             {advice}",
            describe_wait(PATIENCE)
        );
    });
}

fn cancel_delivers_buffered_first() {
    paused("Broker::subscribe", async {
        let broker = Broker::new();
        let token = CancellationToken::new();
        let mut receiver = broker.subscribe(token.clone(), "t", SubscribeOptions::default());

        // Three messages wait in the buffer when the token is cancelled.
        let published = numbered("m", 0..3);
        for message in &published {
            broker.publish("t", message.clone());
        }
        token.cancel();
        expect_received(
            &mut receiver,
            "the cancelled subscriber",
            &published,
            Then::End,
            PATIENCE,
            "after 3 messages were published and then its token was cancelled",
            "Messages buffered before the cancellation must still arrive, in order, and then \
             recv() must return None. A tokio mpsc receiver does both by itself once every \
             sender of its channel is dropped, so removing the subscription is enough",
        )
        .await;
    });
}

fn parent_cancel_reaches_children() {
    paused("Broker::subscribe", async {
        let broker = Broker::new();
        let before = alive_tasks();
        let parent = CancellationToken::new();
        let child = parent.child_token();
        let unrelated = CancellationToken::new();
        let options = SubscribeOptions::default;

        // Four subscriptions hang off the parent, one off another token.
        let mut doomed = [
            (
                "the subscriber of \"a\" with the parent itself",
                broker.subscribe(parent.clone(), "a", options()),
            ),
            (
                "the subscriber of \"a\" with a child token",
                broker.subscribe(parent.child_token(), "a", options()),
            ),
            (
                "the subscriber of \"b\" with a child token",
                broker.subscribe(child.clone(), "b", options()),
            ),
            (
                "the subscriber of \"b\" with a grandchild token",
                broker.subscribe(child.child_token(), "b", options()),
            ),
        ];
        let mut survivor = broker.subscribe(unrelated.clone(), "b", options());

        // Cancelling the parent ends all four.
        parent.cancel();
        for (who, receiver) in &mut doomed {
            expect_received(
                receiver,
                who,
                NOTHING,
                Then::End,
                PATIENCE,
                "after the parent token was cancelled",
                "A cancelled parent cancels every token derived from it with child_token(). \
                 The subscription must watch the token the caller passed, or a child of it, \
                 not a token of its own",
            )
            .await;
        }
        let situation = "after the parent of four subscriptions was cancelled and their \
                         receivers ended";
        let count = broker.subscriber_count("a");
        expect_count("subscriber_count(\"a\")", count, 0, situation);
        let count = broker.subscriber_count("b");
        expect_count(
            "subscriber_count(\"b\")",
            count,
            1,
            &format!("{situation}, because one subscriber of \"b\" has an unrelated token"),
        );
        let count = broker.topic_count();
        expect_count("topic_count()", count, 1, situation);
        assert!(
            !unrelated.is_cancelled(),
            "{situation}, a token unrelated to the parent was cancelled too"
        );

        // The subscription with the unrelated token still works.
        broker.publish("b", "still here".to_owned());
        expect_received(
            &mut survivor,
            "the subscriber of \"b\" with an unrelated token",
            &["still here"],
            Then::StayOpen,
            PROMPTLY,
            "after another token tree was cancelled and \"still here\" was published",
            "",
        )
        .await;

        // Once it is cancelled too, no task of the broker is left.
        unrelated.cancel();
        expect_received(
            &mut survivor,
            "the subscriber with the unrelated token",
            NOTHING,
            Then::End,
            PATIENCE,
            "after its token was cancelled",
            "",
        )
        .await;
        let_tasks_run().await;
        expect_no_extra_tasks(
            before,
            "after every subscription's token was cancelled and its receiver ended",
            "Each task that watches a token must finish once the token is cancelled",
        );
    });
}

fn dropped_receiver_frees_its_task() {
    paused("Broker::subscribe", async {
        let broker = Broker::new();
        let before = alive_tasks();
        let token = CancellationToken::new();

        // Two subscribers drop their receivers, and nobody ever cancels the
        // token or publishes.
        drop(broker.subscribe(token.clone(), "t", SubscribeOptions::default()));
        drop(broker.subscribe(token.child_token(), "t", SubscribeOptions::default()));
        let_tasks_run().await;

        let situation = "after both subscribers of \"t\" dropped their receivers, with their \
                         tokens never cancelled and nothing published";
        expect_no_extra_tasks(
            before,
            situation,
            "A task that waits only for the token waits forever when the caller drops the \
             receiver and never cancels it. Also wait for the receiver to go away \
             (Sender::closed())",
        );
        let count = broker.subscriber_count("t");
        expect_count(
            "subscriber_count(\"t\")",
            count,
            0,
            &format!("{situation}. A subscription whose receiver is gone must be removed"),
        );
        let count = broker.topic_count();
        expect_count("topic_count()", count, 0, situation);
        assert!(
            !token.is_cancelled(),
            "{situation}, the token passed to subscribe was cancelled. The broker must never \
             cancel a token that belongs to the caller"
        );
    });
}

fn close_ends_every_receiver() {
    paused("Broker::close", async {
        let broker = Broker::new();
        let parent = CancellationToken::new();
        let own = CancellationToken::new();
        let options = SubscribeOptions::default;
        let mut with_message = broker.subscribe(parent.child_token(), "a", options());
        let mut empty = broker.subscribe(own.clone(), "c", options());
        let mut other_topic = broker.subscribe(parent.clone(), "b", options());
        broker.publish("a", "buffered".to_owned());

        // Close ends every receiver after what it buffered.
        close_within_limit(&broker, "with three subscribers").await;
        let situation = "after close() returned";
        expect_received(
            &mut with_message,
            "the subscriber of \"a\" with one buffered message",
            &["buffered"],
            Then::End,
            PROMPTLY,
            situation,
            "A message buffered before close must still be readable, and then recv() must \
             return None",
        )
        .await;
        expect_received(
            &mut empty,
            "the subscriber of \"c\"",
            NOTHING,
            Then::End,
            PROMPTLY,
            situation,
            "Close must end every receiver",
        )
        .await;
        expect_received(
            &mut other_topic,
            "the subscriber of \"b\"",
            NOTHING,
            Then::End,
            PROMPTLY,
            situation,
            "Close must end every receiver",
        )
        .await;
        let count = broker.topic_count();
        expect_count("topic_count()", count, 0, situation);

        // The caller's tokens are the caller's: close must not cancel them.
        for (name, token) in [("parent", &parent), ("own", &own)] {
            assert!(
                !token.is_cancelled(),
                "after close(), the {name} token passed to subscribe was cancelled. Those \
                 tokens belong to the caller, who may use them for other work. To stop a \
                 task of the broker, cancel a child token (token.child_token()) instead"
            );
        }
    });
}

fn close_leaves_no_task_alive() {
    paused("Broker::close", async {
        let before = alive_tasks();
        let broker = Broker::new();
        let token = CancellationToken::new();
        let options = SubscribeOptions::default;

        // Subscriptions in every state: open, buffered, full, cancelled,
        // receiver dropped, and never registered.
        let _open = broker.subscribe(token.clone(), "a", options());
        let _buffered = broker.subscribe(token.child_token(), "b", options());
        let _full = broker.subscribe(token.child_token(), "b", options().with_buffer(1));
        broker.publish("b", "x".to_owned());
        broker.publish("b", "y".to_owned());
        let cancelled = CancellationToken::new();
        let _cancelled = broker.subscribe(cancelled.clone(), "c", options());
        cancelled.cancel();
        drop(broker.subscribe(token.child_token(), "d", options()));
        let _never = broker.subscribe(cancelled.clone(), "e", options());

        // Once close returns, no task of the broker may be alive.
        close_within_limit(&broker, "with five subscriptions").await;
        expect_no_extra_tasks(
            before,
            "straight after close() returned",
            "Close must stop every task the broker started and wait until each has finished. \
             A task that waits only for a token that nobody cancels lives as long as the \
             program. Cancel a child token of each subscription (or a token of the broker's \
             own) and await the tasks, for example with TaskTracker::close() and then \
             TaskTracker::wait()",
        );
    });
}

fn close_twice_and_after_is_harmless() {
    paused("Broker::close", async {
        let before = alive_tasks();
        let broker = Broker::new();
        let token = CancellationToken::new();
        let mut early = broker.subscribe(token.clone(), "t", SubscribeOptions::default());
        close_within_limit(&broker, "on its first call").await;

        // A second close returns and changes nothing.
        close_within_limit(&broker, "on its second call").await;
        expect_received(
            &mut early,
            "the subscriber from before close",
            NOTHING,
            Then::End,
            PROMPTLY,
            "after close() was called twice",
            "",
        )
        .await;

        // Publishing after close does nothing and does not panic.
        broker.publish("t", "ignored".to_owned());

        // A late subscriber gets a receiver that has already ended.
        let mut late = broker.subscribe(token.clone(), "t", SubscribeOptions::default());
        let situation = "straight after a subscribe that followed close()";
        let state = late.try_recv();
        assert!(
            state == Err(TryRecvError::Disconnected),
            "{situation}, expected try_recv() on its receiver to report Disconnected (the \
             receiver has ended), but it reported {state:?}. Subscribe after close must \
             return a receiver that has already ended"
        );
        let count = broker.subscriber_count("t");
        expect_count(
            "subscriber_count(\"t\")",
            count,
            0,
            &format!("{situation}, because subscribe after close must not register anything"),
        );
        expect_no_extra_tasks(
            before,
            situation,
            "Subscribe after close must not start a task",
        );

        // Cancelling a token after close, and closing again, are harmless.
        token.cancel();
        close_within_limit(&broker, "on its third call, after a token was cancelled").await;
        expect_no_extra_tasks(
            before,
            "after close() was called three times",
            "Close must leave no task of the broker alive",
        );
    });
}

/// Number of subscribe/cancel cycles in the cycles check.
const CYCLES: usize = 10_000;

fn many_cancel_cycles_leave_nothing() {
    paused("Broker::subscribe", async {
        let broker = Broker::new();
        let before = alive_tasks();
        let parent = CancellationToken::new();
        let lasting_token = CancellationToken::new();
        let mut lasting =
            broker.subscribe(lasting_token.clone(), "busy", SubscribeOptions::default());

        // Every cycle subscribes, cancels and waits for the end. Odd cycles
        // share "busy" with the lasting subscriber, even ones use a topic of
        // their own, as a per-request topic would. Half the tokens are
        // children of one parent that lives throughout.
        for cycle in 0..CYCLES {
            let token = if cycle % 4 < 2 {
                CancellationToken::new()
            } else {
                parent.child_token()
            };
            let topic = if cycle % 2 == 1 {
                "busy".to_owned()
            } else {
                format!("request-{cycle}")
            };
            let mut receiver = broker.subscribe(token.clone(), &topic, SubscribeOptions::default());
            token.cancel();
            let drained = read_until_end(&mut receiver, PATIENCE).await;
            assert!(
                drained.ended,
                "in subscribe/cancel cycle {cycle} of {CYCLES}, the receiver of {topic:?} was \
                 still open {} of virtual time after its token was cancelled",
                describe_wait(PATIENCE)
            );
        }

        // Only the lasting subscriber is left, and it still receives.
        let situation = format!(
            "after {CYCLES} subscribe/cancel cycles next to one lasting subscriber of \"busy\""
        );
        let count = broker.subscriber_count("busy");
        expect_count("subscriber_count(\"busy\")", count, 1, &situation);
        let count = broker.topic_count();
        expect_count(
            "topic_count()",
            count,
            1,
            &format!(
                "{situation}, {} of them on a topic of their own. Each cancelled subscriber \
                 and each empty topic entry must be removed",
                CYCLES / 2
            ),
        );
        broker.publish("busy", "ping".to_owned());
        expect_received(
            &mut lasting,
            "the lasting subscriber",
            &["ping"],
            Then::StayOpen,
            PROMPTLY,
            &format!("{situation} and a publish of \"ping\""),
            "",
        )
        .await;

        // With the lasting subscriber cancelled too, nothing is left.
        lasting_token.cancel();
        let drained = read_until_end(&mut lasting, PATIENCE).await;
        assert!(
            drained.ended,
            "{situation}, the lasting subscriber's receiver was still open {} of virtual time \
             after its token was cancelled",
            describe_wait(PATIENCE)
        );
        let_tasks_run().await;
        let count = broker.topic_count();
        expect_count(
            "topic_count()",
            count,
            0,
            &format!("{situation}, once the lasting subscriber was cancelled too"),
        );
        expect_no_extra_tasks(
            before,
            &format!("{situation}, once the lasting subscriber was cancelled too"),
            "Every task that a subscription started must finish once its token is cancelled",
        );
    });
}

/// Number of tasks of each kind in the stress check.
const WORKERS: usize = 4;
/// Messages each publisher sends, and cycles each churner runs.
const ROUNDS: usize = 2_000;
/// Subscriptions that each churner hangs off one parent token per wave.
const WAVE: usize = 8;

fn concurrent_cancel_churn_stays_consistent() {
    multi_thread(WORKERS, async {
        let broker = Arc::new(Broker::new());
        let topics: Vec<String> = (0..WORKERS).map(|index| format!("topic-{index}")).collect();

        // One lasting subscriber per topic, read by its own task until the
        // receiver ends.
        let lasting_token = CancellationToken::new();
        let mut readers = Vec::new();
        for topic in &topics {
            let mut receiver = broker.subscribe(
                lasting_token.child_token(),
                topic,
                SubscribeOptions::default(),
            );
            readers.push(tokio::spawn(async move {
                let mut received = Vec::new();
                while let Some(message) = receiver.recv().await {
                    received.push(message);
                }
                received
            }));
        }

        // Publishers send "publisher/sequence" round-robin over the topics.
        let mut publishers = Vec::new();
        for publisher in 0..WORKERS {
            let broker = Arc::clone(&broker);
            let topics = topics.clone();
            publishers.push(tokio::spawn(async move {
                for sequence in 0..ROUNDS {
                    let topic = &topics[sequence % topics.len()];
                    broker.publish(topic, format!("{publisher}/{sequence}"));
                    if sequence % 64 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            }));
        }

        // Churners subscribe and cancel while the publishers run: one token
        // per cycle, and now and then a wave of children of one parent.
        let mut churners = Vec::new();
        for churner in 0..WORKERS {
            let broker = Arc::clone(&broker);
            let topics = topics.clone();
            churners.push(tokio::spawn(async move {
                for cycle in 0..ROUNDS {
                    let topic = &topics[(churner + cycle) % topics.len()];
                    let token = CancellationToken::new();
                    let mut receiver =
                        broker.subscribe(token.clone(), topic, SubscribeOptions::default());
                    tokio::task::yield_now().await;
                    token.cancel();
                    drain_to_end(&mut receiver).await;

                    if cycle % 100 == 0 {
                        let parent = CancellationToken::new();
                        let mut wave: Vec<_> = (0..WAVE)
                            .map(|_| {
                                broker.subscribe(
                                    parent.child_token(),
                                    topic,
                                    SubscribeOptions::default(),
                                )
                            })
                            .collect();
                        tokio::task::yield_now().await;
                        parent.cancel();
                        for receiver in &mut wave {
                            drain_to_end(receiver).await;
                        }
                    }
                }
            }));
        }

        for task in publishers.into_iter().chain(churners) {
            join(task).await;
        }

        // Only the lasting subscribers remain, once every cancelled
        // subscription's receiver has ended.
        for topic in &topics {
            expect_count(
                &format!("subscriber_count({topic:?})"),
                broker.subscriber_count(topic),
                1,
                "after concurrent churn, because only its one lasting subscriber remains",
            );
        }
        expect_count(
            "topic_count()",
            broker.topic_count(),
            WORKERS,
            "after concurrent churn, one for each topic with a lasting subscriber",
        );

        // Close ends the lasting receivers, so their readers can report.
        broker.close().await;
        for (index, reader) in readers.into_iter().enumerate() {
            let received = join(reader).await;
            check_lasting_subscriber(index, &received);
        }
        expect_count("topic_count()", broker.topic_count(), 0, "after close");
        assert!(
            !lasting_token.is_cancelled(),
            "after close(), the token whose children the lasting subscribers used was \
             cancelled; the broker must never cancel a token of the caller's"
        );
    });
}

/// Reads a cancelled receiver to its end. How many messages reach it after
/// cancel() depends on the scheduler here, so the paused checks judge that and
/// this one judges only that the receiver ends.
async fn drain_to_end(receiver: &mut mpsc::Receiver<String>) {
    while receiver.recv().await.is_some() {}
}

/// Checks that a lasting subscriber of topic `index` saw only its topic's
/// messages, each publisher's in increasing order and none twice.
fn check_lasting_subscriber(index: usize, received: &[String]) {
    let mut last_sequence: Vec<Option<usize>> = vec![None; WORKERS];
    for message in received {
        let parsed = message.split_once('/').and_then(|(publisher, sequence)| {
            let publisher: usize = publisher.parse().ok()?;
            let sequence: usize = sequence.parse().ok()?;
            (publisher < WORKERS).then_some((publisher, sequence))
        });
        let Some((publisher, sequence)) = parsed else {
            panic!("topic-{index} received {message:?}, which no publisher sent");
        };
        assert!(
            sequence % WORKERS == index,
            "topic-{index} received {message:?}, which was published to topic-{}",
            sequence % WORKERS
        );
        if let Some(previous) = last_sequence[publisher] {
            assert!(
                sequence > previous,
                "topic-{index} received {message:?} after {publisher}/{previous}; one \
                 publisher's messages must arrive in order and at most once"
            );
        }
        last_sequence[publisher] = Some(sequence);
    }
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

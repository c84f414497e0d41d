//! Grading suite for task 9: queue groups next to broadcast subscribers.
//!
//! The first checks cover broadcast subscribers briefly, as tasks 5 and 6
//! built them. The middle checks cover queue groups: each message reaches
//! exactly one member of each group, members that wait share the work, groups
//! and subscribers of one topic each get their copy, and the group's queue
//! belongs to the group. Then come the checks on leaving. A member that
//! leaves hands what is queued to the members that remain. The last member
//! takes the group with it, and what was still queued counts as dropped. A
//! publish that races the last member's leave never panics and is counted.
//! The last checks cover close and churn.
//!
//! Every check but the unlocked-window and paused-writer checks and the last
//! runs on a current-thread runtime with paused time, so waiting costs no
//! real time. The unlocked-window and paused-writer checks order a member's
//! thread and the writer's through the lock hook of
//! `task09_queue_groups::sync`, so their outcome does not depend on the
//! scheduler. A receiver "ends within" a virtual
//! duration when `recv()` returns `None` before that much virtual time has
//! passed. Tasks are counted with the runtime's alive-task metric. The last
//! check runs threads in real time, and its verdict depends only on counts
//! that every correct broker gets right, however the threads interleave.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use task09_queue_groups::{Broker, DEFAULT_BUFFER, QueueReceiver, SubscribeOptions};
use testkit::grading::Check;
use testkit::interleave::{
    Outcome, WakeFlag, each_boundary, pause_at_boundary, pause_writer_at_boundary,
    poll_until_waiting,
};
use testkit::runtime::{multi_thread, paused, within};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;
use tokio_util::sync::CancellationToken;

fn main() -> std::process::ExitCode {
    testkit::suite!()
        .check(
            "publish_reaches_every_subscriber",
            "Broker::publish",
            publish_reaches_every_subscriber,
        )
        .check(
            "full_subscriber_buffer_counts_drop",
            "Broker::publish",
            full_subscriber_buffer_counts_drop,
        )
        .check(
            "subscriber_cancel_ends_receiver",
            "Broker::subscribe",
            subscriber_cancel_ends_receiver,
        )
        .check(
            "each_message_reaches_one_member",
            "Broker::subscribe_queue",
            each_message_reaches_one_member,
        )
        .check(
            "busy_members_share_the_load",
            "QueueReceiver::recv",
            busy_members_share_the_load,
        )
        .add_check(
            Check::new(
                "publish_while_recv_is_unlocked_wakes_it",
                "QueueReceiver::recv",
                publish_while_recv_is_unlocked_wakes_it,
            )
            .timeout_cause(WINDOW_TIMEOUT),
        )
        .add_check(
            Check::new(
                "writer_paused_mid_way_still_wakes_member",
                "Broker::publish",
                writer_paused_mid_way_still_wakes_member,
            )
            .timeout_cause(WINDOW_TIMEOUT),
        )
        .check(
            "groups_and_subscribers_each_get_copy",
            "Broker::publish",
            groups_and_subscribers_each_get_copy,
        )
        .check(
            "group_buffer_belongs_to_group",
            "Broker::subscribe_queue",
            group_buffer_belongs_to_group,
        )
        .check(
            "try_recv_reports_queue_state",
            "QueueReceiver::try_recv",
            try_recv_reports_queue_state,
        )
        .check(
            "cancelled_token_registers_nothing",
            "Broker::subscribe_queue",
            cancelled_token_registers_nothing,
        )
        .check(
            "leaving_member_hands_over_queue",
            "Broker::subscribe_queue",
            leaving_member_hands_over_queue,
        )
        .check(
            "last_member_removes_group",
            "Broker::subscribe_queue",
            last_member_removes_group,
        )
        .check(
            "publish_racing_last_leave_counts_drop",
            "Broker::publish",
            publish_racing_last_leave_counts_drop,
        )
        .check(
            "close_ends_members_and_subscribers",
            "Broker::close",
            close_ends_members_and_subscribers,
        )
        .add_check(
            Check::new(
                "many_join_leave_cycles_leave_nothing",
                "Broker::subscribe_queue",
                many_join_leave_cycles_leave_nothing,
            )
            .time_limit(Duration::from_secs(20)),
        )
        .add_check(
            Check::new(
                "concurrent_publish_and_leave_add_up",
                "Broker",
                concurrent_publish_and_leave_add_up,
            )
            .time_limit(Duration::from_secs(30))
            .timeout_cause(STRESS_TIMEOUT),
        )
        .run()
}

/// Timeout cause of the stress check, which waits without a bound for the
/// receivers of the lasting subscriber and group to end after close.
const STRESS_TIMEOUT: &str = "likely a receiver that never ended after close(), or a publish \
     that blocked. Close must end every subscriber's receiver and, once the group's queue is \
     empty, every member's receiver; publish must never wait";

/// Timeout cause of the check that pauses a member's recv() right after it
/// releases the lock.
const WINDOW_TIMEOUT: &str = "likely a publish or close that blocked while a member's recv() was \
     paused right after releasing its last task09_queue_groups::sync::Mutex guard: recv() still \
     held another lock there, such as a std::sync::Mutex, that publish or close needs";

/// Virtual time within which a receiver must end or a message must arrive.
const PROMPTLY: Duration = Duration::from_millis(1);

/// Virtual time a check gives a receiver to end where promptness is not the
/// point. In paused time a longer wait costs no real time.
const PATIENCE: Duration = Duration::from_secs(1);

/// Virtual time that close() may take before a check calls it stuck.
const CLOSE_LIMIT: Duration = Duration::from_secs(60);

/// The messages a receiver should get when it should get none.
const NOTHING: &[&str] = &[];

/// What a receiver should do once its queued messages are read.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Then {
    /// Stay open: no message and no end within the wait.
    StayOpen,
    /// End: `recv()` returns `None`.
    End,
}

/// Either kind of receiver, read one message at a time.
trait Receiving {
    /// Returns the next message, or `None` once the receiver has ended.
    async fn next(&mut self) -> Option<String>;
}

impl Receiving for mpsc::Receiver<String> {
    async fn next(&mut self) -> Option<String> {
        self.recv().await
    }
}

impl Receiving for QueueReceiver<String> {
    async fn next(&mut self) -> Option<String> {
        self.recv().await
    }
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
async fn read_until_end<R: Receiving>(receiver: &mut R, limit: Duration) -> Drained {
    let mut messages = Vec::new();
    loop {
        match within(limit, receiver.next()).await {
            Some(Some(message)) => messages.push(message),
            Some(None) => {
                return Drained {
                    messages,
                    ended: true,
                };
            }
            None => {
                return Drained {
                    messages,
                    ended: false,
                };
            }
        }
    }
}

/// Lets the members take turns, one `recv()` each per round, until a whole
/// round yields nothing within [`PROMPTLY`]; returns what each member got.
async fn drain_in_turns(members: &mut [QueueReceiver<String>]) -> Vec<Vec<String>> {
    let mut received = vec![Vec::new(); members.len()];
    loop {
        let mut progress = false;
        for (index, member) in members.iter_mut().enumerate() {
            if let Some(Some(message)) = within(PROMPTLY, member.recv()).await {
                received[index].push(message);
                progress = true;
            }
        }
        if !progress {
            return received;
        }
    }
}

/// Describes a list of messages the way a failure message shows it.
fn describe_messages<S: AsRef<str>>(messages: &[S]) -> String {
    if messages.is_empty() {
        return "nothing".to_owned();
    }
    let shown: Vec<&str> = messages.iter().map(AsRef::as_ref).collect();
    if shown.len() > 12 {
        return format!("{} messages, starting {:?}", shown.len(), &shown[..12]);
    }
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
async fn expect_received<R: Receiving, S: AsRef<str>>(
    receiver: &mut R,
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

/// Panics unless the members of `group`, between them, received every
/// message of `published` exactly once and nothing else.
///
/// `received` lists what each member got. The message starts with
/// `situation` and names the group as `group` describes it.
#[track_caller]
fn expect_exactly_once(
    group: &str,
    situation: &str,
    published: &[String],
    received: &[Vec<String>],
) {
    // Which members got each message, a member once per copy.
    let mut receipts: HashMap<&str, Vec<usize>> = HashMap::new();
    for (member, messages) in received.iter().enumerate() {
        for message in messages {
            receipts.entry(message.as_str()).or_default().push(member);
        }
    }

    for message in published {
        match receipts.get(message.as_str()).map(Vec::as_slice) {
            None | Some([]) => panic!(
                "{situation}, no member of {group} received {message:?}. Each message \
                 published to the topic must reach exactly one member of each group, unless \
                 the group dropped it. The members received {}",
                describe_receipts(received)
            ),
            Some([_]) => {}
            Some(members) => panic!(
                "{situation}, {message:?} reached {group} {} times, at members {members:?}. \
                 Each message must reach exactly one member: the members share one queue, and \
                 the member that takes a message takes it from all the others. A group is not \
                 a set of broadcast subscribers",
                members.len()
            ),
        }
    }
    let unexpected: Vec<&str> = receipts
        .keys()
        .copied()
        .filter(|message| !published.iter().any(|sent| sent == message))
        .collect();
    assert!(
        unexpected.is_empty(),
        "{situation}, the members of {group} received {}, which was not published to the \
         group or was dropped by it",
        describe_messages(&unexpected)
    );
}

/// Describes what each member of a group received, for a failure message.
fn describe_receipts(received: &[Vec<String>]) -> String {
    let parts: Vec<String> = received
        .iter()
        .enumerate()
        .map(|(member, messages)| format!("member {member}: {}", describe_messages(messages)))
        .collect();
    parts.join("; ")
}

/// Panics unless `actual`, the value that `call` returned, is `expected`.
///
/// The message reads "{call} returned …, but expected … {situation}".
#[track_caller]
fn expect_count<N: PartialEq + std::fmt::Display>(
    call: &str,
    actual: N,
    expected: N,
    situation: &str,
) {
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
    let described = if extra == 1 {
        "1 task of the broker was".to_owned()
    } else {
        format!("{extra} tasks of the broker were")
    };
    assert!(
        alive == expected,
        "{situation}, {described} still alive. {advice}"
    );
}

/// Gives every task that is ready to run a turn. In paused time the sleep
/// ends once all other tasks are idle, [`PROMPTLY`] later in virtual time.
async fn let_tasks_run() {
    tokio::time::sleep(PROMPTLY).await;
}

/// Closes `broker` and panics if close() has not returned within
/// [`CLOSE_LIMIT`] of virtual time.
async fn close_within_limit(broker: &Broker<String>, situation: &str) {
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

/// Publishes `msg` to `topic` and returns what publish returned, or fails
/// the check with a clear message when publish panics.
fn publish_without_panic(
    broker: &Broker<String>,
    topic: &str,
    msg: &str,
    situation: &str,
) -> usize {
    let published = catch_unwind(AssertUnwindSafe(|| broker.publish(topic, msg.to_owned())));
    match published {
        Ok(routed) => routed,
        Err(payload) => {
            let reason = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("a panic without a message");
            panic!(
                "publish of {msg:?} to {topic:?} {situation} panicked: {reason}. Publish must \
                 never panic, not even while a group's last member is leaving. Keep a group's \
                 queue open for as long as publish can find the group, and count a message \
                 that cannot be queued as dropped"
            );
        }
    }
}

/// Drops a member's receiver, which makes the member leave its group.
///
/// It does what `drop` does; clippy flags `drop` for a type without a `Drop`
/// impl, such as the receiver of the untouched exercise.
fn leave_by_dropping(receiver: QueueReceiver<String>) {
    let _leaving = receiver;
}

/// Returns options whose `on_drop` callback records what it receives.
fn recording_options(buffer: usize) -> (SubscribeOptions<String>, Arc<Mutex<Vec<String>>>) {
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

/// Options with room for `buffer` messages and no callback.
fn roomy(buffer: usize) -> SubscribeOptions<String> {
    SubscribeOptions::default().with_buffer(buffer)
}

fn publish_reaches_every_subscriber() {
    paused("Broker::publish", async {
        let broker = Broker::new();
        let token = CancellationToken::new();
        let options = SubscribeOptions::default;
        let mut first = broker.subscribe(token.clone(), "news", options());
        let mut second = broker.subscribe(token.clone(), "news", options());
        let mut other = broker.subscribe(token.clone(), "sport", options());

        // One message to "news" reaches both of its subscribers and nobody
        // else.
        let routed = broker.publish("news", "hello".to_owned());
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
            "A broadcast subscriber gets its own copy of every message of its topic",
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
        expect_count(
            "publish(\"news\", \"hello\")",
            routed,
            2,
            "with two subscribers of \"news\" and no group: it returns how many recipients \
             the message was routed to",
        );

        // The counts follow the subscriptions.
        let count = broker.subscriber_count("news");
        expect_count(
            "subscriber_count(\"news\")",
            count,
            2,
            "with two subscribers",
        );
        let count = broker.group_count("news");
        expect_count(
            "group_count(\"news\")",
            count,
            0,
            "for a topic without groups",
        );
        let count = broker.topic_count();
        expect_count(
            "topic_count()",
            count,
            2,
            "with subscribers on \"news\" and \"sport\"",
        );
        let routed = broker.publish("weather", "sunny".to_owned());
        expect_count(
            "publish(\"weather\", \"sunny\")",
            routed,
            0,
            "for a topic that nobody subscribed to",
        );
        let count = broker.dropped();
        expect_count("dropped()", count, 0, "when every buffer had room");
    });
}

fn full_subscriber_buffer_counts_drop() {
    paused("Broker::publish", async {
        let broker = Broker::new();
        let token = CancellationToken::new();
        let (small_options, small_dropped) = recording_options(2);
        let (default_options, default_dropped) = recording_options(0);
        let mut small = broker.subscribe(token.clone(), "t", small_options);
        let mut default_sized = broker.subscribe(token.clone(), "t", default_options);

        // One more than the default buffer, with nobody reading.
        let published = numbered("m", 0..DEFAULT_BUFFER + 1);
        for message in &published {
            let routed = broker.publish("t", message.clone());
            expect_count(
                &format!("publish(\"t\", {message:?})"),
                routed,
                2,
                "with two subscribers of \"t\", full or not: a subscriber that drops the \
                 message still counts as a recipient",
            );
        }

        // Each on_drop saw what did not fit, and dropped() counts them all.
        let situation = format!(
            "after {} publishes to subscribers with buffers 2 and 0 that read nothing",
            published.len()
        );
        let dropped = recorded(&small_dropped);
        assert!(
            dropped == published[2..],
            "{situation}, expected on_drop of the subscriber with buffer 2 to receive {}, but \
             it received {}",
            describe_messages(&published[2..]),
            describe_messages(&dropped)
        );
        let dropped = recorded(&default_dropped);
        assert!(
            dropped == published[DEFAULT_BUFFER..],
            "{situation}, expected on_drop of the subscriber with buffer 0 to receive {}, but \
             it received {}. A buffer of 0 means the default of {DEFAULT_BUFFER}",
            describe_messages(&published[DEFAULT_BUFFER..]),
            describe_messages(&dropped)
        );
        let expected = (published.len() - 2 + 1) as u64;
        let count = broker.dropped();
        expect_count(
            "dropped()",
            count,
            expected,
            &format!("{situation}: it counts every message that any subscriber dropped"),
        );

        // The buffers kept the first messages.
        expect_received(
            &mut small,
            "the subscriber with buffer 2",
            &published[..2],
            Then::StayOpen,
            PROMPTLY,
            &situation,
            "A full buffer must drop new messages, not end the subscription",
        )
        .await;
        expect_received(
            &mut default_sized,
            "the subscriber with buffer 0",
            &published[..DEFAULT_BUFFER],
            Then::StayOpen,
            PROMPTLY,
            &situation,
            "",
        )
        .await;
    });
}

fn subscriber_cancel_ends_receiver() {
    paused("Broker::subscribe", async {
        let broker = Broker::new();
        let before = alive_tasks();
        let leaving_token = CancellationToken::new();
        let staying_token = CancellationToken::new();
        let options = SubscribeOptions::default;
        let mut leaving = broker.subscribe(leaving_token.clone(), "t", options());
        let mut staying = broker.subscribe(staying_token.clone(), "t", options());

        // A message buffered before the cancel still arrives, then the end;
        // nothing published after the cancel arrives.
        broker.publish("t", "before".to_owned());
        leaving_token.cancel();
        broker.publish("t", "after".to_owned());
        expect_received(
            &mut leaving,
            "the cancelled subscriber",
            &["before"],
            Then::End,
            PROMPTLY,
            "after \"before\" was published, its token was cancelled, and \"after\" was \
             published",
            "Cancelling a subscriber's token must end its receiver after what it buffered, \
             without waiting for a publish, and no later publish may reach it",
        )
        .await;
        expect_received(
            &mut staying,
            "the other subscriber",
            &["before", "after"],
            Then::StayOpen,
            PROMPTLY,
            "after another subscriber's token was cancelled",
            "Cancelling one token must not affect other subscriptions",
        )
        .await;
        let count = broker.subscriber_count("t");
        expect_count(
            "subscriber_count(\"t\")",
            count,
            1,
            "once the cancelled subscriber's receiver had ended",
        );

        // A dropped receiver removes its subscriber too, and the last one
        // takes the topic and every task with it.
        drop(staying);
        let_tasks_run().await;
        let situation = "after one subscriber of \"t\" was cancelled and the other dropped its \
                         receiver";
        let count = broker.topic_count();
        expect_count("topic_count()", count, 0, situation);
        expect_no_extra_tasks(
            before,
            situation,
            "A task that watches a subscription must finish once its token is cancelled or \
             its receiver is dropped (Sender::closed())",
        );
        assert!(
            !staying_token.is_cancelled(),
            "{situation}, the token of the subscriber that dropped its receiver was \
             cancelled. The broker must never cancel a token that belongs to the caller"
        );
    });
}

fn each_message_reaches_one_member() {
    paused("Broker::subscribe_queue", async {
        let broker = Broker::new();
        let token = CancellationToken::new();
        let mut members: Vec<QueueReceiver<String>> = (0..3)
            .map(|_| broker.subscribe_queue(token.clone(), "jobs", "workers", roomy(64)))
            .collect();

        // Three members form one group.
        let situation = "after 3 subscribe_queue calls for the group \"workers\" of \"jobs\"";
        let count = broker.member_count("jobs", "workers");
        expect_count("member_count(\"jobs\", \"workers\")", count, 3, situation);
        let count = broker.group_count("jobs");
        expect_count("group_count(\"jobs\")", count, 1, situation);
        let count = broker.subscriber_count("jobs");
        expect_count(
            "subscriber_count(\"jobs\")",
            count,
            0,
            &format!("{situation}, because members of a group are not broadcast subscribers"),
        );
        let count = broker.topic_count();
        expect_count("topic_count()", count, 1, situation);

        // 30 jobs, then the members take turns reading until nothing is left.
        let published = numbered("job-", 0..30);
        let mut routed = Vec::new();
        for job in &published {
            routed.push(broker.publish("jobs", job.clone()));
        }
        let received = drain_in_turns(&mut members).await;
        expect_exactly_once(
            "the group \"workers\"",
            "after 30 publishes to \"jobs\", with the 3 members of its group taking turns \
             reading",
            &published,
            &received,
        );

        // The group is one recipient, however many members it has.
        for (job, routed) in published.iter().zip(routed) {
            expect_count(
                &format!("publish(\"jobs\", {job:?})"),
                routed,
                1,
                "for a topic with one group of 3 members and no subscriber: the whole group \
                 is one recipient",
            );
        }
        let count = broker.dropped();
        expect_count("dropped()", count, 0, "when the group's queue had room");
    });
}

/// Virtual time a worker in the load check spends on each job.
const WORK: Duration = Duration::from_millis(10);

fn busy_members_share_the_load() {
    paused("QueueReceiver::recv", async {
        let broker = Broker::new();
        let token = CancellationToken::new();

        // Four workers wait in recv(), then spend WORK on each job.
        let mut done = Vec::new();
        let mut workers = Vec::new();
        for _ in 0..4 {
            let mut member = broker.subscribe_queue(token.clone(), "jobs", "workers", roomy(64));
            let record = Arc::new(Mutex::new(Vec::new()));
            done.push(Arc::clone(&record));
            workers.push(tokio::spawn(async move {
                while let Some(job) = member.recv().await {
                    tokio::time::sleep(WORK).await;
                    record
                        .lock()
                        .unwrap_or_else(|err| err.into_inner())
                        .push(job);
                }
            }));
        }
        let_tasks_run().await;

        // Eight jobs at once: two rounds of work for four workers.
        let published = numbered("job-", 0..8);
        for job in &published {
            broker.publish("jobs", job.clone());
        }
        tokio::time::sleep(WORK * 2 + WORK / 2).await;
        let done: Vec<Vec<String>> = done
            .iter()
            .map(|record| record.lock().unwrap_or_else(|err| err.into_inner()).clone())
            .collect();
        let situation = format!(
            "{} of virtual time after 8 jobs were published to a group of 4 workers that \
             each wait in recv() and spend {} on a job",
            describe_wait(WORK * 2 + WORK / 2),
            describe_wait(WORK)
        );
        expect_exactly_once("the group of workers", &situation, &published, &done);
        for (worker, jobs) in done.iter().enumerate() {
            assert!(
                jobs.len() == 2,
                "{situation}, worker {worker} had finished {} ({}), but each of the 4 should \
                 have finished 2: {}. A waiting member must be woken for a new message, and a \
                 member that is busy must leave the next messages to idle members. A member \
                 takes a message only when it calls recv(); until then the message waits in \
                 the group's queue",
                jobs.len(),
                describe_messages(jobs),
                describe_receipts(&done)
            );
        }

        // Close ends the workers once the queue is empty.
        close_within_limit(&broker, "with 4 workers waiting in recv()").await;
        for (worker, task) in workers.into_iter().enumerate() {
            let finished = within(PATIENCE, task).await;
            assert!(
                finished.is_some(),
                "worker {worker} was still waiting in recv() {} of virtual time after close() \
                 returned. After close, a member's recv() must return what the group still \
                 had queued and then None",
                describe_wait(PATIENCE)
            );
        }
    });
}

/// Real time the unlocked-window check gives the member's thread for its
/// next step. A correct `recv()` takes microseconds; only a member that is
/// never woken uses it up.
const STEP_PATIENCE: Duration = Duration::from_secs(5);

/// An event that the check causes while a member's `recv()` is paused.
#[derive(Clone, Copy, Debug)]
enum WindowEvent {
    Publish,
    Close,
}

impl WindowEvent {
    fn describe(self) -> &'static str {
        match self {
            WindowEvent::Publish => "\"job\" was published to \"jobs\"",
            WindowEvent::Close => "the broker was closed",
        }
    }

    fn describe_call(self) -> &'static str {
        match self {
            WindowEvent::Publish => "publish(\"jobs\", \"job\") to a group ran",
            WindowEvent::Close => "close() of a broker with a group ran",
        }
    }

    fn expected(self) -> Option<String> {
        match self {
            WindowEvent::Publish => Some("job".to_owned()),
            WindowEvent::Close => None,
        }
    }
}

// NOTE: a writer is paused only where it holds no lock, so a publish that
// wakes a member before it pushes, both under the broker's lock, is not
// stopped in between.
fn writer_paused_mid_way_still_wakes_member() {
    for event in [WindowEvent::Publish, WindowEvent::Close] {
        each_boundary(|window| paused_writer_round(event, window));
    }
}

/// Runs one round of the paused-writer check: the only member of a group
/// waits inside `recv()`, polled by hand, while `event` runs on a thread of
/// its own that stops at its `window`th lock boundary. While the writer is
/// stopped, `recv()` is polled again if it was woken. Once the writer has
/// finished, `recv()` must have been woken and return what the event
/// produced. Returns whether the pause was reached.
fn paused_writer_round(event: WindowEvent, window: usize) -> bool {
    // A worker thread runs the broker's own tasks, which close waits for.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a multi-thread runtime builds");
    let _context = runtime.enter();
    let broker: Arc<Broker<String>> = Arc::new(Broker::new());
    let token = CancellationToken::new();
    let mut member = broker.subscribe_queue(token.clone(), "jobs", "workers", roomy(16));
    let flag = Arc::new(WakeFlag::default());
    let waker = std::task::Waker::from(Arc::clone(&flag));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut receiving = std::pin::pin!(member.recv());
    if let Some(returned) = poll_until_waiting(receiving.as_mut(), &mut cx, &flag) {
        panic!(
            "the only member of group \"workers\" called recv() on an empty queue, which \
             returned {returned:?} at once, but expected it to wait"
        );
    }

    let mut returned = None;
    let writer_broker = Arc::clone(&broker);
    let handle = runtime.handle().clone();
    let round = pause_writer_at_boundary(
        window,
        STEP_PATIENCE,
        move || match event {
            WindowEvent::Publish => {
                writer_broker.publish("jobs", "job".to_owned());
            }
            WindowEvent::Close => handle.block_on(writer_broker.close()),
        },
        || {
            // A recv() woken before the writer finished runs now, as it
            // could on another thread.
            if flag.take() {
                if let Poll::Ready(value) = receiving.as_mut().poll(&mut cx) {
                    returned = Some(value);
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
            returned = Some(value);
        }
    }
    let expected = event.expected();
    let pause = round
        .paused_at
        .map_or(String::new(), |point| format!(", which was paused {point}"));
    match returned {
        Some(value) => assert!(
            value == expected,
            "the only member of group \"workers\" waited inside recv() on an empty queue while \
             {}{pause}. Expected recv() to return {expected:?}, but it returned {value:?}",
            event.describe_call(),
        ),
        None => {
            token.cancel();
            panic!(
                "the only member of group \"workers\" waited inside recv() on an empty queue \
                 while {}{pause}, and recv() was polled again whenever it was woken. Once the \
                 writer had finished, recv() was waiting and nothing would wake it: a lost \
                 wake-up. A writer that wakes the members before it changes the queue lets a \
                 woken member look, find nothing, and wait again. Change the queue under the \
                 lock first, then wake",
                event.describe_call()
            );
        }
    }
    round.paused_at.is_some()
}

fn publish_while_recv_is_unlocked_wakes_it() {
    for event in [WindowEvent::Publish, WindowEvent::Close] {
        each_boundary(|window| unlocked_window_round(event, window));
    }
}

/// Runs one round of the unlocked-window check: the only member of a group
/// calls `recv()` on a thread of its own, which stops at its `window`th
/// lock boundary: right before it takes the lock, or right after it releases
/// it. While it is stopped, `event` happens;
/// then `recv()` goes on and must return what the event produced. Returns
/// whether the pause was reached. When it was not, `recv()` waited first,
/// `event` happened while it waited, and later windows do not exist.
fn unlocked_window_round(event: WindowEvent, window: usize) -> bool {
    // The broker's runtime runs only close(): the member waits on a
    // runtime of its own.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds");
    let broker: Broker<String> = Broker::new();
    let token = CancellationToken::new();
    let mut member = {
        let _context = runtime.enter();
        broker.subscribe_queue(token.clone(), "jobs", "workers", roomy(16))
    };
    let round = pause_at_boundary(
        window,
        STEP_PATIENCE,
        move || async move { member.recv().await },
        || match event {
            WindowEvent::Publish => {
                broker.publish("jobs", "job".to_owned());
            }
            WindowEvent::Close => runtime.block_on(broker.close()),
        },
    );
    if round.event_ran && round.paused_at.is_none() && round.boundaries == 0 {
        token.cancel();
        panic!(
            "a member's recv() on an empty group queue waited without taking a \
             task09_queue_groups::sync::Mutex. Keep the group's queue behind that Mutex, not \
             a std::sync::Mutex or a channel: it works the same, and this check pauses recv() \
             right before and right after each use of it"
        );
    }
    if round.event_ran && round.event_boundaries == 0 {
        token.cancel();
        panic!(
            "{} without taking a task09_queue_groups::sync::Mutex. Keep the group's queue \
             behind that Mutex instead of std::sync::Mutex or a channel: this check pauses a \
             member's recv() between its uses of the lock, which says nothing when the queue \
             lives elsewhere",
            event.describe_call()
        );
    }
    let stuck_after = |what: String| -> ! {
        // The thread stays blocked. Cancelling lets a recv() that watches
        // its token end.
        token.cancel();
        panic!("{what}");
    };
    match (round.outcome, round.paused_at) {
        (Outcome::Returned(value), paused_at) => {
            let expected = event.expected();
            assert!(
                value == expected,
                "the only member of group \"workers\" on \"jobs\" called recv() on an empty \
                 queue{}, and {}. Expected recv() to return {expected:?}, but it returned \
                 {value:?}",
                paused_at.map_or(String::new(), |point| format!(", was paused {point}")),
                event.describe(),
            );
            paused_at.is_some()
        }
        (Outcome::Stuck, Some(point)) => stuck_after(format!(
            "the only member of group \"workers\" on \"jobs\" called recv() on an empty queue \
             and was paused {point}, before it waited. While it was paused, {}; then recv() \
             went on, waited, and was never woken: it had not returned {STEP_PATIENCE:?} \
             later. That is a lost wake-up: recv() decided to wait on what it saw before the \
             event but registered for the wake-up only after that, and \
             Notify::notify_waiters() wakes only the Notified futures that exist when it \
             runs. Create the Notified future and call enable() on it before looking at the \
             queue",
            event.describe()
        )),
        (Outcome::Stuck, None) if round.event_ran => stuck_after(format!(
            "the only member of group \"workers\" on \"jobs\" waited inside recv(), then {}, \
             and recv() had not returned {STEP_PATIENCE:?} later: the event must wake a \
             waiting member",
            event.describe()
        )),
        (Outcome::Stuck, None) => stuck_after(format!(
            "the only member of group \"workers\" on \"jobs\" called recv() on a thread of its \
             own, and it neither returned nor waited within {STEP_PATIENCE:?}: recv() blocks \
             its thread instead of awaiting"
        )),
    }
}

fn groups_and_subscribers_each_get_copy() {
    paused("Broker::publish", async {
        let broker = Broker::new();
        let token = CancellationToken::new();
        let options = SubscribeOptions::default;

        // "orders" has two subscribers and two groups; "returns" has a group
        // with the same name as one of them.
        let mut audit = [
            broker.subscribe(token.clone(), "orders", options()),
            broker.subscribe(token.clone(), "orders", options()),
        ];
        let mut billing = vec![
            broker.subscribe_queue(token.clone(), "orders", "billing", options()),
            broker.subscribe_queue(token.clone(), "orders", "billing", options()),
        ];
        let mut shipping = broker.subscribe_queue(token.clone(), "orders", "shipping", options());
        let mut returns = broker.subscribe_queue(token.clone(), "returns", "billing", options());

        let situation = "with 2 subscribers, the group \"billing\" (2 members) and the group \
                         \"shipping\" (1 member) on \"orders\", and a group \"billing\" on \
                         \"returns\"";
        let count = broker.group_count("orders");
        expect_count("group_count(\"orders\")", count, 2, situation);
        let count = broker.member_count("orders", "billing");
        expect_count(
            "member_count(\"orders\", \"billing\")",
            count,
            2,
            &format!("{situation}. A group belongs to one topic"),
        );
        let count = broker.member_count("returns", "billing");
        expect_count(
            "member_count(\"returns\", \"billing\")",
            count,
            1,
            situation,
        );
        let count = broker.subscriber_count("orders");
        expect_count("subscriber_count(\"orders\")", count, 2, situation);
        let count = broker.topic_count();
        expect_count("topic_count()", count, 2, situation);

        // Five orders: every subscriber gets all five, and each group gets
        // each order once.
        let published = numbered("order-", 0..5);
        let mut routed = Vec::new();
        for order in &published {
            routed.push(broker.publish("orders", order.clone()));
        }
        let situation = "after 5 publishes to \"orders\"";
        for (index, subscriber) in audit.iter_mut().enumerate() {
            expect_received(
                subscriber,
                &format!("subscriber {index} of \"orders\""),
                &published,
                Then::StayOpen,
                PROMPTLY,
                situation,
                "Groups on a topic do not take anything away from its broadcast subscribers",
            )
            .await;
        }
        let received = drain_in_turns(&mut billing).await;
        expect_exactly_once(
            "the group \"billing\"",
            &format!(
                "{situation}, which also has 2 broadcast subscribers and the group \"shipping\""
            ),
            &published,
            &received,
        );
        expect_received(
            &mut shipping,
            "the only member of \"shipping\"",
            &published,
            Then::StayOpen,
            PROMPTLY,
            situation,
            "Every group of the topic gets its own copy of each message, next to every \
             broadcast subscriber",
        )
        .await;
        expect_received(
            &mut returns,
            "the member of the group \"billing\" on \"returns\"",
            NOTHING,
            Then::StayOpen,
            PROMPTLY,
            situation,
            "A group gets only the messages of its own topic; groups of different topics are \
             different groups, even with the same name",
        )
        .await;

        // Each publish reached 4 recipients.
        for (order, routed) in published.iter().zip(routed) {
            expect_count(
                &format!("publish(\"orders\", {order:?})"),
                routed,
                4,
                "for 2 subscribers and 2 groups on \"orders\"",
            );
        }
    });
}

fn group_buffer_belongs_to_group() {
    paused("Broker::subscribe_queue", async {
        let broker = Broker::new();
        let token = CancellationToken::new();

        // The member that creates the group requests a buffer of 4; the one
        // that joins later requests 10, which the group ignores.
        let (creator_options, group_dropped) = recording_options(4);
        let (joiner_options, joiner_dropped) = recording_options(10);
        let mut members = [
            broker.subscribe_queue(token.clone(), "t", "g", creator_options),
            broker.subscribe_queue(token.clone(), "t", "g", joiner_options),
        ];

        // Six messages with nobody reading: four fit, two drop.
        let published = numbered("m", 0..6);
        for message in &published {
            broker.publish("t", message.clone());
        }
        let situation = "after 6 publishes to a group of 2 members that read nothing, created \
                         by a member with buffer 4 and joined by one with buffer 10";
        let count = broker.dropped();
        expect_count(
            "dropped()",
            count,
            2,
            &format!(
                "{situation}. The group's queue holds 4 messages however many members it has: \
                 the buffer belongs to the group, not to each member, and the options of a \
                 member that joins an existing group are ignored"
            ),
        );
        let dropped = recorded(&group_dropped);
        assert!(
            dropped == published[4..],
            "{situation}, expected the on_drop of the member that created the group to \
             receive {}, but it received {}. The group keeps the options of the member that \
             created it",
            describe_messages(&published[4..]),
            describe_messages(&dropped)
        );
        let dropped = recorded(&joiner_dropped);
        assert!(
            dropped.is_empty(),
            "{situation}, the on_drop of the member that joined later received {}, but the \
             options of a member that joins an existing group are ignored",
            describe_messages(&dropped)
        );
        let received = drain_in_turns(&mut members).await;
        expect_exactly_once("the group", situation, &published[..4], &received);

        // Buffer 0 means the default.
        let (default_options, default_dropped) = recording_options(0);
        let _member = broker.subscribe_queue(token.clone(), "u", "g", default_options);
        let published = numbered("n", 0..DEFAULT_BUFFER + 1);
        for message in &published {
            broker.publish("u", message.clone());
        }
        let dropped = recorded(&default_dropped);
        assert!(
            dropped == published[DEFAULT_BUFFER..],
            "after {} publishes to a group created with buffer 0 that read nothing, expected \
             its on_drop to receive {}, but it received {}. A buffer of 0 means the default \
             of {DEFAULT_BUFFER}",
            published.len(),
            describe_messages(&published[DEFAULT_BUFFER..]),
            describe_messages(&dropped)
        );
    });
}

fn try_recv_reports_queue_state() {
    paused("QueueReceiver::try_recv", async {
        let broker = Broker::new();
        let token = CancellationToken::new();
        let mut member = broker.subscribe_queue(token.clone(), "t", "g", roomy(0));

        // Empty, then a message, then empty again.
        let state = member.try_recv();
        assert!(
            state == Err(TryRecvError::Empty),
            "straight after joining a group, try_recv() reported {state:?}, but expected \
             Err(Empty): nothing is queued yet, and the member may still receive"
        );
        broker.publish("t", "one".to_owned());
        let state = member.try_recv();
        assert!(
            state.as_deref() == Ok("one"),
            "after \"one\" was published to the member's topic, try_recv() reported \
             {state:?}, but expected Ok(\"one\") at once"
        );
        let state = member.try_recv();
        assert!(
            state == Err(TryRecvError::Empty),
            "after the only queued message was taken, try_recv() reported {state:?}, but \
             expected Err(Empty)"
        );

        // A member that left takes nothing, even with a message queued.
        broker.publish("t", "two".to_owned());
        token.cancel();
        let state = member.try_recv();
        assert!(
            state == Err(TryRecvError::Disconnected),
            "after \"two\" was queued and then the member's token was cancelled, try_recv() \
             reported {state:?}, but expected Err(Disconnected). A member that left takes \
             nothing more: what is queued belongs to the group"
        );
    });
}

fn cancelled_token_registers_nothing() {
    paused("Broker::subscribe_queue", async {
        let broker = Broker::new();
        let before = alive_tasks();
        let token = CancellationToken::new();
        token.cancel();

        // Straight after subscribe_queue returns, nothing is registered and
        // the receiver has ended.
        let mut member = broker.subscribe_queue(token.clone(), "t", "g", roomy(0));
        let situation = "straight after subscribe_queue with a token that was already cancelled";
        let count = broker.group_count("t");
        expect_count(
            "group_count(\"t\")",
            count,
            0,
            &format!(
                "{situation}. Check the token before registering anything; a group created \
                 for a member that never joins would take messages nobody reads"
            ),
        );
        let count = broker.topic_count();
        expect_count("topic_count()", count, 0, situation);
        let state = member.try_recv();
        assert!(
            state == Err(TryRecvError::Disconnected),
            "{situation}, try_recv() on its receiver reported {state:?}, but expected \
             Err(Disconnected): the receiver has ended"
        );
        expect_received(
            &mut member,
            "its receiver",
            NOTHING,
            Then::End,
            PROMPTLY,
            situation,
            "",
        )
        .await;
        expect_no_extra_tasks(
            before,
            situation,
            "A member that never joins needs no task; start one only after the token check",
        );

        // The same holds for a child of a cancelled parent, and for a
        // broadcast subscriber.
        let parent = CancellationToken::new();
        parent.cancel();
        let mut child_member = broker.subscribe_queue(parent.child_token(), "t", "g", roomy(0));
        let mut subscriber = broker.subscribe(token.clone(), "t", roomy(0));
        let situation = "straight after subscribe_queue with a child of a cancelled token, and \
                         subscribe with a cancelled token";
        let count = broker.group_count("t");
        expect_count("group_count(\"t\")", count, 0, situation);
        let count = broker.subscriber_count("t");
        expect_count("subscriber_count(\"t\")", count, 0, situation);
        let state = child_member.try_recv();
        assert!(
            state == Err(TryRecvError::Disconnected),
            "{situation}, try_recv() on the member's receiver reported {state:?}, but \
             expected Err(Disconnected)"
        );
        let state = subscriber.try_recv();
        assert!(
            state == Err(TryRecvError::Disconnected),
            "{situation}, try_recv() on the subscriber's receiver reported {state:?}, but \
             expected Err(Disconnected)"
        );

        // A publish finds nobody.
        let routed = publish_without_panic(&broker, "t", "nobody", "after those subscribes");
        expect_count(
            "publish(\"t\", \"nobody\")",
            routed,
            0,
            "when every subscribe had a cancelled token",
        );
        let count = broker.dropped();
        expect_count("dropped()", count, 0, "when nothing was ever routed");
    });
}

fn leaving_member_hands_over_queue() {
    paused("Broker::subscribe_queue", async {
        let broker = Broker::new();
        let leaving_token = CancellationToken::new();
        let staying_token = CancellationToken::new();
        let mut leaving =
            broker.subscribe_queue(leaving_token.clone(), "jobs", "workers", roomy(0));
        let mut staying =
            broker.subscribe_queue(staying_token.clone(), "jobs", "workers", roomy(0));

        // Four jobs wait in the group's queue when one member leaves.
        let published = numbered("job-", 0..4);
        for job in &published {
            broker.publish("jobs", job.clone());
        }
        leaving_token.cancel();
        let situation = "after 4 jobs were queued for a group of 2 members that read nothing, \
                         and then one member's token was cancelled";
        expect_received(
            &mut leaving,
            "the member whose token was cancelled",
            NOTHING,
            Then::End,
            PROMPTLY,
            situation,
            "A member that leaves must end at once and take nothing more: what is queued \
             belongs to the group, and the members that remain take it",
        )
        .await;
        expect_received(
            &mut staying,
            "the member that stayed",
            &published,
            Then::StayOpen,
            PROMPTLY,
            situation,
            "Messages queued for the group must wait in the group's queue for whichever \
             member remains. A buffer per member loses what was queued for a member that \
             leaves",
        )
        .await;
        let count = broker.dropped();
        expect_count(
            "dropped()",
            count,
            0,
            &format!("{situation}, because a member remained to take every job"),
        );
        let_tasks_run().await;
        let count = broker.member_count("jobs", "workers");
        expect_count(
            "member_count(\"jobs\", \"workers\")",
            count,
            1,
            &format!("{situation}, once the broker had a moment to remove the member that left"),
        );

        // Dropping a receiver is leaving too.
        let dropping =
            broker.subscribe_queue(CancellationToken::new(), "jobs", "workers", roomy(0));
        let published = numbered("job-", 4..6);
        for job in &published {
            broker.publish("jobs", job.clone());
        }
        leave_by_dropping(dropping);
        let situation = "after a third member joined, 2 more jobs were queued, and that member \
                         dropped its receiver";
        expect_received(
            &mut staying,
            "the member that stayed",
            &published,
            Then::StayOpen,
            PROMPTLY,
            situation,
            "A member that drops its receiver leaves the group, and the group keeps what was \
             queued",
        )
        .await;
        let_tasks_run().await;
        let count = broker.member_count("jobs", "workers");
        expect_count(
            "member_count(\"jobs\", \"workers\")",
            count,
            1,
            &format!(
                "{situation}, once the broker had a moment. A member whose receiver was \
                 dropped must be removed"
            ),
        );
        let count = broker.group_count("jobs");
        expect_count("group_count(\"jobs\")", count, 1, situation);
    });
}

fn last_member_removes_group() {
    paused("Broker::subscribe_queue", async {
        let broker = Broker::new();
        let before = alive_tasks();
        let (options, group_dropped) = recording_options(0);
        let first_token = CancellationToken::new();
        let second_token = CancellationToken::new();
        let mut first = broker.subscribe_queue(first_token.clone(), "t", "g", options);
        let mut second = broker.subscribe_queue(second_token.clone(), "t", "g", roomy(0));

        // Three messages are queued when both members leave.
        let published = numbered("m", 0..3);
        for message in &published {
            broker.publish("t", message.clone());
        }
        first_token.cancel();
        second_token.cancel();
        let situation = "after 3 messages were queued for a group of 2 members and then both \
                         members' tokens were cancelled";
        for (who, member) in [
            ("the first member", &mut first),
            ("the second member", &mut second),
        ] {
            expect_received(
                member,
                who,
                NOTHING,
                Then::End,
                PROMPTLY,
                situation,
                "A member that leaves takes nothing more",
            )
            .await;
        }

        // The group is gone, and what it had queued counts as dropped.
        let_tasks_run().await;
        let situation = format!("{situation}, once the broker had a moment");
        let count = broker.group_count("t");
        expect_count(
            "group_count(\"t\")",
            count,
            0,
            &format!(
                "{situation}. A group must be removed with its last member, or groups of \
                 finished workers pile up and keep taking messages"
            ),
        );
        let count = broker.member_count("t", "g");
        expect_count("member_count(\"t\", \"g\")", count, 0, &situation);
        let count = broker.topic_count();
        expect_count(
            "topic_count()",
            count,
            0,
            &format!("{situation}, because \"t\" has no subscriber and no group left"),
        );
        let count = broker.dropped();
        expect_count(
            "dropped()",
            count,
            3,
            &format!(
                "{situation}. Messages still queued when a group disappears can never be \
                 delivered, so each counts as dropped"
            ),
        );
        let dropped = recorded(&group_dropped);
        assert!(
            dropped == published,
            "{situation}, expected the group's on_drop to receive {}, but it received {}",
            describe_messages(&published),
            describe_messages(&dropped)
        );
        expect_no_extra_tasks(
            before,
            &situation,
            "A task that watches a member must finish once the member leaves",
        );

        // A new member of "g" starts a new group with an empty queue.
        let mut fresh = broker.subscribe_queue(CancellationToken::new(), "t", "g", roomy(0));
        expect_received(
            &mut fresh,
            "a new member of a group with the same name",
            NOTHING,
            Then::StayOpen,
            PROMPTLY,
            "after the last member of \"g\" left and a new member joined \"g\"",
            "The old group's messages went with it; a new member starts a new group",
        )
        .await;
        broker.publish("t", "fresh".to_owned());
        expect_received(
            &mut fresh,
            "the new member",
            &["fresh"],
            Then::StayOpen,
            PROMPTLY,
            "after \"fresh\" was published to the new group",
            "",
        )
        .await;
    });
}

fn publish_racing_last_leave_counts_drop() {
    paused("Broker::publish", async {
        let broker = Broker::new();

        // The only member's token is cancelled, and a publish follows before
        // any other task could react.
        let token = CancellationToken::new();
        let mut member = broker.subscribe_queue(token.clone(), "t", "g", roomy(0));
        token.cancel();
        let situation = "straight after the token of the group's only member was cancelled";
        let routed = publish_without_panic(&broker, "t", "late", situation);
        expect_received(
            &mut member,
            "the member that left",
            NOTHING,
            Then::End,
            PROMPTLY,
            &format!("{situation} and \"late\" was published"),
            "No message published after a member left may reach it",
        )
        .await;
        let_tasks_run().await;
        let count = broker.group_count("t");
        expect_count(
            "group_count(\"t\")",
            count,
            0,
            "once the broker had a moment after the group's last member left",
        );
        let count = broker.dropped();
        expect_count(
            "dropped()",
            count,
            routed as u64,
            &format!(
                "{situation}, after publish of \"late\" returned {routed} and the broker had a \
                 moment. Nobody was left to take it, so every recipient publish routed it to \
                 must count it as dropped: either publish finds no group and returns 0, or the \
                 group takes it and drops it when its last member is removed"
            ),
        );

        // Dropping the only receiver, then publishing, must be as harmless.
        let member = broker.subscribe_queue(CancellationToken::new(), "t", "g", roomy(0));
        leave_by_dropping(member);
        let situation = "straight after the group's only member dropped its receiver";
        let routed_later = publish_without_panic(&broker, "t", "later", situation);
        let_tasks_run().await;
        let count = broker.group_count("t");
        expect_count(
            "group_count(\"t\")",
            count,
            0,
            "once the broker had a moment after the group's last member dropped its receiver",
        );
        let count = broker.dropped();
        expect_count(
            "dropped()",
            count,
            (routed + routed_later) as u64,
            &format!(
                "{situation}, after publish of \"later\" returned {routed_later} and the broker \
                 had a moment, with {routed} dropped before. A message routed to a group that \
                 nobody can read any more must count as dropped"
            ),
        );
    });
}

fn close_ends_members_and_subscribers() {
    paused("Broker::close", async {
        let before = alive_tasks();
        let broker = Broker::new();
        let parent = CancellationToken::new();
        let mut members = [
            broker.subscribe_queue(parent.child_token(), "jobs", "workers", roomy(0)),
            broker.subscribe_queue(parent.clone(), "jobs", "workers", roomy(0)),
        ];
        let mut idle = broker.subscribe_queue(parent.clone(), "other", "idle", roomy(0));
        let mut subscriber = broker.subscribe(parent.child_token(), "jobs", roomy(0));

        // Three jobs are queued for the group and buffered for the subscriber.
        let published = numbered("job-", 0..3);
        for job in &published {
            broker.publish("jobs", job.clone());
        }
        close_within_limit(&broker, "with a group of 2, a group of 1 and a subscriber").await;
        let situation = "after 3 jobs were published and close() returned";

        // The members share what was queued, then every receiver ends.
        let received = drain_in_turns(&mut members).await;
        expect_exactly_once("the group \"workers\"", situation, &published, &received);
        for (index, member) in members.iter_mut().enumerate() {
            expect_received(
                member,
                &format!("member {index} of \"workers\", once the queue was empty,"),
                NOTHING,
                Then::End,
                PROMPTLY,
                situation,
                "After close, each member gets None once the group's queue is empty",
            )
            .await;
        }
        expect_received(
            &mut idle,
            "the member of the group \"idle\"",
            NOTHING,
            Then::End,
            PROMPTLY,
            situation,
            "Close must end every member's receiver",
        )
        .await;
        expect_received(
            &mut subscriber,
            "the subscriber of \"jobs\"",
            &published,
            Then::End,
            PROMPTLY,
            situation,
            "A subscriber's buffered messages must still be readable after close, and then \
             recv() must return None",
        )
        .await;

        // Nothing is left: no group, no topic, no task.
        let count = broker.group_count("jobs");
        expect_count("group_count(\"jobs\")", count, 0, situation);
        let count = broker.topic_count();
        expect_count("topic_count()", count, 0, situation);
        expect_no_extra_tasks(
            before,
            "straight after close() returned",
            "Close must stop every task the broker started and wait until each has finished, \
             for example with TaskTracker::close() and then TaskTracker::wait()",
        );
        assert!(
            !parent.is_cancelled(),
            "{situation}, the token passed to subscribe was cancelled. Close must never \
             cancel a token of the caller's; cancel a child token instead"
        );

        // After close, publish does nothing and subscribe_queue registers
        // nothing; a second close returns.
        let routed = publish_without_panic(&broker, "jobs", "ignored", "after close()");
        expect_count("publish(\"jobs\", \"ignored\")", routed, 0, "after close()");
        let mut late =
            broker.subscribe_queue(CancellationToken::new(), "jobs", "workers", roomy(0));
        let state = late.try_recv();
        assert!(
            state == Err(TryRecvError::Disconnected),
            "straight after a subscribe_queue that followed close(), try_recv() reported \
             {state:?}, but expected Err(Disconnected): joining a closed broker returns a \
             receiver that has already ended"
        );
        let count = broker.group_count("jobs");
        expect_count(
            "group_count(\"jobs\")",
            count,
            0,
            "after a subscribe_queue after close()",
        );
        close_within_limit(&broker, "on its second call").await;
        expect_no_extra_tasks(
            before,
            "after close() was called twice",
            "Subscribe after close must not start a task",
        );
    });
}

/// Number of join/leave cycles in the cycles check.
const CYCLES: usize = 10_000;

fn many_join_leave_cycles_leave_nothing() {
    paused("Broker::subscribe_queue", async {
        let broker = Broker::new();
        let before = alive_tasks();
        let lasting_token = CancellationToken::new();
        let mut lasting =
            broker.subscribe_queue(lasting_token.clone(), "busy", "workers", roomy(0));

        // Each cycle joins a group and leaves it again: the lasting member's
        // group, a group of its own on the same topic, or a group on a topic
        // of its own. Even cycles cancel the token, odd ones drop the
        // receiver.
        for cycle in 0..CYCLES {
            let token = CancellationToken::new();
            let (topic, group) = match cycle % 3 {
                0 => ("busy".to_owned(), "workers".to_owned()),
                1 => ("busy".to_owned(), format!("group-{cycle}")),
                _ => (format!("request-{cycle}"), "workers".to_owned()),
            };
            let mut member = broker.subscribe_queue(token.clone(), &topic, &group, roomy(0));
            if cycle % 2 == 1 {
                leave_by_dropping(member);
                continue;
            }
            token.cancel();
            let drained = read_until_end(&mut member, PATIENCE).await;
            assert!(
                drained.ended,
                "in join/leave cycle {cycle} of {CYCLES}, the receiver of a member of \
                 {group:?} on {topic:?} was still open {} of virtual time after its token was \
                 cancelled",
                describe_wait(PATIENCE)
            );
        }
        let_tasks_run().await;

        // Only the lasting member's group is left, and it still receives.
        let situation = format!(
            "after {CYCLES} join/leave cycles next to one lasting member of \"workers\" on \
             \"busy\", once the broker had a moment"
        );
        let count = broker.member_count("busy", "workers");
        expect_count("member_count(\"busy\", \"workers\")", count, 1, &situation);
        let count = broker.group_count("busy");
        expect_count(
            "group_count(\"busy\")",
            count,
            1,
            &format!("{situation}. Each group must be removed with its last member"),
        );
        let count = broker.topic_count();
        expect_count(
            "topic_count()",
            count,
            1,
            &format!("{situation}. Each topic without subscribers and groups must be removed"),
        );
        broker.publish("busy", "ping".to_owned());
        expect_received(
            &mut lasting,
            "the lasting member",
            &["ping"],
            Then::StayOpen,
            PROMPTLY,
            &format!("{situation} and a publish of \"ping\""),
            "",
        )
        .await;

        // With the lasting member gone too, nothing is left.
        lasting_token.cancel();
        let_tasks_run().await;
        let situation = format!("{situation}, once the lasting member left too");
        let count = broker.topic_count();
        expect_count("topic_count()", count, 0, &situation);
        expect_no_extra_tasks(
            before,
            &situation,
            "Every task that a member started must finish once the member leaves",
        );
    });
}

/// Topic of the stress check.
const TOPIC: &str = "jobs";
/// Publishing tasks in the stress check, and messages each sends.
const PUBLISHERS: usize = 2;
const ROUNDS: usize = 2_000;
/// Tasks that join and leave the group "bursty", and cycles each runs.
const CHURNERS: usize = 2;
const CHURN_CYCLES: usize = 1_000;
/// Queue size of the group "bursty", small so that it also drops when full.
const CHURN_BUFFER: usize = 4;
/// Messages sent in the stress check: the publishers' and one per cycle.
const STRESS_MESSAGES: usize = PUBLISHERS * ROUNDS + CHURNERS * CHURN_CYCLES;
/// Turns the stress check gives the broker to remove the members that left.
const SETTLE_TURNS: usize = 1_000_000;

fn concurrent_publish_and_leave_add_up() {
    multi_thread(4, async {
        let broker = Arc::new(Broker::new());
        let lasting = CancellationToken::new();

        // A subscriber and a group of two last throughout, with room for
        // every message, each read by a task until its receiver ends.
        let audit = broker.subscribe(lasting.clone(), TOPIC, roomy(STRESS_MESSAGES));
        let audit_reader = tokio::spawn(read_all(audit));
        let mut steady_readers = Vec::new();
        for _ in 0..2 {
            let member =
                broker.subscribe_queue(lasting.clone(), TOPIC, "steady", roomy(STRESS_MESSAGES));
            steady_readers.push(tokio::spawn(read_all(member)));
        }

        // Publishers send "p{publisher}/{sequence}" and add up how many
        // recipients publish reported.
        let mut publishers = Vec::new();
        for publisher in 0..PUBLISHERS {
            let broker = Arc::clone(&broker);
            publishers.push(tokio::spawn(async move {
                let mut routed = 0;
                for sequence in 0..ROUNDS {
                    routed += broker.publish(TOPIC, format!("p{publisher}/{sequence}"));
                    if sequence % 64 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                routed
            }));
        }

        // Churners join "bursty", publish "c{churner}/{cycle}" and leave, so
        // that group keeps losing its last member while messages arrive.
        // Nobody reads "bursty", so all it gets ends up dropped. The
        // receivers are kept to the end, so leaving is always a cancel.
        let mut churners = Vec::new();
        for churner in 0..CHURNERS {
            let broker = Arc::clone(&broker);
            churners.push(tokio::spawn(async move {
                let mut routed = 0;
                let mut receivers = Vec::with_capacity(CHURN_CYCLES);
                for cycle in 0..CHURN_CYCLES {
                    let token = CancellationToken::new();
                    let options = roomy(CHURN_BUFFER);
                    receivers.push(broker.subscribe_queue(token.clone(), TOPIC, "bursty", options));
                    routed += broker.publish(TOPIC, format!("c{churner}/{cycle}"));
                    tokio::task::yield_now().await;
                    token.cancel();
                }
                (routed, receivers)
            }));
        }

        let mut routed = 0;
        for publisher in publishers {
            routed += join(publisher).await;
        }
        let mut kept = Vec::new();
        for churner in churners {
            let (churner_routed, receivers) = join(churner).await;
            routed += churner_routed;
            kept.push(receivers);
        }

        // Every member of "bursty" left; give the broker turns to remove
        // them, which counts what "bursty" still had queued.
        let mut turns = 0;
        while broker.group_count(TOPIC) != 1 && turns < SETTLE_TURNS {
            tokio::task::yield_now().await;
            turns += 1;
        }
        expect_count(
            &format!("group_count({TOPIC:?})"),
            broker.group_count(TOPIC),
            1,
            &format!(
                "after every member of \"bursty\" had left and the broker had {SETTLE_TURNS} \
                 turns to catch up, since only the group \"steady\" remains. A group must be \
                 removed with its last member"
            ),
        );
        let dropped = broker.dropped();
        drop(kept);

        // Close ends the lasting receivers, so their readers can report.
        broker.close().await;
        let audit_received = join(audit_reader).await;
        let mut steady_received = Vec::new();
        for reader in steady_readers {
            steady_received.push(join(reader).await);
        }

        // The subscriber got every message once, in each sender's order, and
        // the group "steady" got every message exactly once.
        let sent = stress_messages();
        check_audit(&audit_received, &sent);
        expect_exactly_once(
            "the group \"steady\" (2 members with room for every message)",
            "after concurrent publishes while members joined and left the group \"bursty\"",
            &sent,
            &steady_received,
        );

        // Every recipient that publish counted delivered the message or
        // dropped it.
        let delivered = audit_received.len() + steady_received.iter().map(Vec::len).sum::<usize>();
        assert!(
            routed as u64 == delivered as u64 + dropped,
            "the publishes returned {routed} recipients in total, but {delivered} deliveries \
             and {dropped} drops add up to {}. Each recipient that publish counts must \
             deliver the message once or count it in dropped(). Nobody read the group \
             \"bursty\", so everything routed to it must count as dropped, either at once \
             for a full queue or when its last member leaves",
            delivered as u64 + dropped
        );
    });
}

/// Reads `receiver` until it ends and returns what it got.
async fn read_all<R: Receiving>(mut receiver: R) -> Vec<String> {
    let mut received = Vec::new();
    while let Some(message) = receiver.next().await {
        received.push(message);
    }
    received
}

/// Returns every message that the stress check publishes.
fn stress_messages() -> Vec<String> {
    let mut sent = Vec::with_capacity(STRESS_MESSAGES);
    for publisher in 0..PUBLISHERS {
        sent.extend(numbered(&format!("p{publisher}/"), 0..ROUNDS));
    }
    for churner in 0..CHURNERS {
        sent.extend(numbered(&format!("c{churner}/"), 0..CHURN_CYCLES));
    }
    sent
}

/// Checks that the lasting subscriber of the stress check got every message
/// of `sent` once, and each sender's messages in the order they were sent.
fn check_audit(received: &[String], sent: &[String]) {
    let mut last_sequence: HashMap<&str, usize> = HashMap::new();
    for message in received {
        let parsed = message
            .split_once('/')
            .and_then(|(sender, sequence)| Some((sender, sequence.parse::<usize>().ok()?)));
        let Some((sender, sequence)) = parsed else {
            panic!("the lasting subscriber received {message:?}, which nobody published");
        };
        if let Some(previous) = last_sequence.insert(sender, sequence) {
            assert!(
                sequence > previous,
                "the lasting subscriber received {message:?} after {sender}/{previous}; one \
                 sender's messages must arrive in order and at most once"
            );
        }
    }
    assert!(
        received.len() == sent.len(),
        "after the concurrent run, the lasting subscriber, with room for every message, \
         received {} messages, but {} were published. A broadcast subscriber must get every \
         message of its topic, whatever groups do",
        received.len(),
        sent.len()
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

//! Grading suite for task 2: the task 1 broker plus an unsubscribe handle.
//!
//! The first checks repeat the core of task 1 in brief. The rest check the
//! handle's contract. It stops later deliveries, keeps what is buffered and
//! ends the receiver. It is safe to call twice or after close, never touches
//! another subscriber, and leaves no memory behind once a topic is empty.
//! Dropping the handle without calling `unsubscribe()` keeps the subscription.
//!
//! Every check but the last reads receivers with `try_recv`, which never
//! waits. With no publish in flight, a receiver that should have ended
//! reports `Disconnected` at once, and one that is still open reports
//! `Empty`. The last check runs threads in real time and bounds each of its
//! waits for a receiver to end.

use std::sync::Arc;
use std::time::Duration;

use task02_unsubscribe::{BUFFER, Broker};
use testkit::alloc::{CountingAllocator, count_allocations};
use testkit::grading::Check;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn main() -> std::process::ExitCode {
    testkit::suite!()
        .check(
            "publish_reaches_topic_subscribers_only",
            "Broker::publish",
            publish_reaches_topic_subscribers_only,
        )
        .check(
            "many_topics_stay_separate",
            "Broker::publish",
            many_topics_stay_separate,
        )
        // A publish that waits for space never returns here, because nobody
        // reads the full buffer.
        .add_check(
            Check::new(
                "full_buffer_drops_newest_message",
                "Broker::publish",
                full_buffer_drops_newest_message,
            )
            .time_limit(Duration::from_secs(5))
            .timeout_cause(WAITS_FOR_SPACE),
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
            "dropped_receiver_spares_others",
            "Broker::publish",
            dropped_receiver_spares_others,
        )
        .check(
            "publish_prunes_dropped_receivers",
            "Broker::publish",
            publish_prunes_dropped_receivers,
        )
        .check(
            "publish_without_subscribers_allocates_nothing",
            "Broker::publish",
            publish_without_subscribers_allocates_nothing,
        )
        .check(
            "unsubscribe_stops_later_messages",
            "Unsubscribe::unsubscribe",
            unsubscribe_stops_later_messages,
        )
        .check(
            "unsubscribe_keeps_buffered_then_ends",
            "Unsubscribe::unsubscribe",
            unsubscribe_keeps_buffered_then_ends,
        )
        .check(
            "unsubscribe_spares_later_subscribers",
            "Unsubscribe::unsubscribe",
            unsubscribe_spares_later_subscribers,
        )
        .check(
            "unsubscribe_middle_then_last_spares_others",
            "Unsubscribe::unsubscribe",
            unsubscribe_middle_then_last_spares_others,
        )
        .check(
            "unsubscribe_spares_other_topics",
            "Unsubscribe::unsubscribe",
            unsubscribe_spares_other_topics,
        )
        .check(
            "unsubscribe_twice_is_noop",
            "Unsubscribe::unsubscribe",
            unsubscribe_twice_is_noop,
        )
        .check(
            "unsubscribe_after_close_is_noop",
            "Unsubscribe::unsubscribe",
            unsubscribe_after_close_is_noop,
        )
        .check(
            "unsubscribe_after_broker_dropped_is_noop",
            "Unsubscribe::unsubscribe",
            unsubscribe_after_broker_dropped_is_noop,
        )
        .check(
            "dropped_handle_keeps_subscription",
            "Unsubscribe (dropping the handle)",
            dropped_handle_keeps_subscription,
        )
        .check(
            "last_unsubscribe_removes_topic",
            "Broker::topic_count",
            last_unsubscribe_removes_topic,
        )
        .check(
            "many_cycles_leave_broker_empty",
            "Broker::subscriber_count",
            many_cycles_leave_broker_empty,
        )
        .check(
            "short_lived_topics_stop_allocating_more",
            "Unsubscribe::unsubscribe",
            short_lived_topics_stop_allocating_more,
        )
        .add_check(
            Check::new(
                "concurrent_churn_stays_consistent",
                "Broker",
                concurrent_churn_stays_consistent,
            )
            .time_limit(Duration::from_secs(60))
            .timeout_cause(CHURN_TIMEOUT),
        )
        .run()
}

/// Timeout cause of the check in which nobody reads a full buffer.
const WAITS_FOR_SPACE: &str = "likely Broker::publish waiting for space in a full buffer, which \
     never frees up here because that subscriber does not read. Publish must skip a subscriber \
     whose buffer is full and return at once";

/// Timeout cause of the stress check, which bounds its own waits for
/// receivers to end.
const CHURN_TIMEOUT: &str = "likely a deadlock between threads that share the broker, such as a \
     publish that waits for space in a full buffer and so keeps unsubscribe() from ever \
     running. Publish must skip a subscriber whose buffer is full and return at once";

/// What a receiver should do once its buffered messages are read.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Then {
    /// Stay open: `try_recv` reports `Empty`.
    StayOpen,
    /// End: `try_recv` reports `Disconnected`, and `recv()` returns `None`.
    End,
}

/// The messages a receiver should get when it should get none.
const NOTHING: &[&str] = &[];

/// What `try_recv` showed until it stopped returning messages.
#[derive(Debug)]
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

/// Describes a list of messages the way a failure message shows it.
fn describe_messages<S: AsRef<str>>(messages: &[S]) -> String {
    if messages.is_empty() {
        return "nothing".to_owned();
    }
    let texts: Vec<&str> = messages.iter().map(AsRef::as_ref).collect();
    format!("{texts:?}")
}

/// Drains `receiver` and panics unless it yields exactly `expected`, in
/// order, and then stays open or ends as `then` requires.
///
/// The message reads "{situation}, expected {receiver_name} to get … and …,
/// but it got … and …", followed by `advice` when that is not empty.
#[track_caller]
fn expect_drained<S: AsRef<str>>(
    receiver: &mut mpsc::Receiver<String>,
    receiver_name: &str,
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
        "{situation}, expected {receiver_name} to get {} and {expected_end}, but it got {} \
         and {actual_end}",
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

fn publish_reaches_topic_subscribers_only() {
    let broker = Broker::new();
    let (mut first, _first_handle) = broker.subscribe("news");
    let (mut second, _second_handle) = broker.subscribe("news");
    let (mut other, _other_handle) = broker.subscribe("sport");

    // One message to "news" reaches both of its subscribers and nobody else.
    broker.publish("news", "hello".to_owned());
    let situation = "after one publish of \"hello\" to \"news\"";
    expect_drained(
        &mut first,
        "the first subscriber of \"news\"",
        &["hello"],
        Then::StayOpen,
        situation,
        "",
    );
    expect_drained(
        &mut second,
        "the second subscriber of \"news\"",
        &["hello"],
        Then::StayOpen,
        situation,
        "Publish must deliver to every subscriber of the topic",
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
}

/// Number of topics in [`many_topics_stay_separate`]. A broker that hashes
/// topics into a fixed table with fewer buckets than this must put several
/// topics in one bucket.
const MANY_TOPICS: usize = 1_000;

fn many_topics_stay_separate() {
    // "t0" to "t999": one subscriber on each.
    let broker = Broker::new();
    let topics: Vec<String> = (0..MANY_TOPICS).map(|index| format!("t{index}")).collect();
    let mut subscriptions: Vec<_> = topics.iter().map(|topic| broker.subscribe(topic)).collect();

    // One message per topic, naming the topic it was published on.
    for topic in &topics {
        broker.publish(topic, format!("for {topic}"));
    }

    // Each subscriber gets exactly the message of its own topic.
    let situation = format!(
        "after one message was published on each of {MANY_TOPICS} topics (\"t0\" to \"t{}\", \
         one subscriber each)",
        MANY_TOPICS - 1
    );
    for (topic, (receiver, _handle)) in topics.iter().zip(subscriptions.iter_mut()) {
        expect_drained(
            receiver,
            &format!("the subscriber of {topic:?}"),
            &[format!("for {topic}")],
            Then::StayOpen,
            &situation,
            "Topics must match exactly: keep each topic's name as its key and compare whole \
             names, because different topics can share a hash bucket or a prefix",
        );
    }
}

fn full_buffer_drops_newest_message() {
    let broker = Broker::new();
    let (mut receiver, _handle) = broker.subscribe("t");

    // Publish one more than the buffer can contain, reading nothing. A
    // publish that waited for space would never return here.
    for index in 0..=BUFFER {
        broker.publish("t", format!("m{index}"));
    }

    // The first BUFFER messages arrive in order and the extra one is gone.
    let expected: Vec<String> = (0..BUFFER).map(|index| format!("m{index}")).collect();
    expect_drained(
        &mut receiver,
        "the subscriber",
        &expected,
        Then::StayOpen,
        &format!(
            "after {} publishes to a subscriber that read nothing",
            BUFFER + 1
        ),
        &format!(
            "Its buffer contains {BUFFER} messages, so the last one must be dropped, and a full \
             buffer must not end the subscription"
        ),
    );

    // Once there is room again, delivery resumes.
    broker.publish("t", "after".to_owned());
    expect_drained(
        &mut receiver,
        "the subscriber",
        &["after"],
        Then::StayOpen,
        "after the subscriber emptied its full buffer and \"after\" was published",
        "",
    );
}

fn close_ends_receivers_after_draining() {
    let broker = Broker::new();
    let (mut first, _first_handle) = broker.subscribe("a");
    let (mut second, _second_handle) = broker.subscribe("b");
    broker.publish("a", "buffered".to_owned());

    // Close keeps what is buffered, then each receiver ends.
    broker.close();
    expect_drained(
        &mut first,
        "the subscriber of \"a\"",
        &["buffered"],
        Then::End,
        "after close, with one message buffered",
        "A message buffered before close must still be readable, and then recv() must return \
         None",
    );
    expect_drained(
        &mut second,
        "the subscriber of \"b\"",
        NOTHING,
        Then::End,
        "after close, with nothing buffered",
        "Close must end every receiver",
    );

    // Closing again changes nothing and does not panic.
    broker.close();
    let count = broker.topic_count();
    expect_count("topic_count()", count, 0, "after close");
}

fn use_after_close_is_harmless() {
    let broker = Broker::new();
    let (_early, _early_handle) = broker.subscribe("t");
    broker.close();

    // Publishing after close does nothing and does not panic.
    broker.publish("t", "ignored".to_owned());

    // A late subscriber gets a receiver that has already ended.
    let (mut late, late_handle) = broker.subscribe("t");
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
    let count = broker.topic_count();
    expect_count("topic_count()", count, 0, "after close");

    // Its handle does nothing either.
    late_handle.unsubscribe();
    late_handle.unsubscribe();
}

fn dropped_receiver_spares_others() {
    let broker = Broker::new();
    let (dropped, _dropped_handle) = broker.subscribe("t");
    let (mut kept, _kept_handle) = broker.subscribe("t");
    drop(dropped);

    // Publishing to a topic where one receiver is gone must reach the rest.
    broker.publish("t", "one".to_owned());
    broker.publish("t", "two".to_owned());
    expect_drained(
        &mut kept,
        "the remaining subscriber",
        &["one", "two"],
        Then::StayOpen,
        "after another subscriber of \"t\" dropped its receiver and \"one\" and \"two\" were \
         published",
        "A dropped receiver must not stop delivery to the others",
    );
}

fn publish_prunes_dropped_receivers() {
    let broker = Broker::new();
    let (first, _first_handle) = broker.subscribe("t");
    let (second, _second_handle) = broker.subscribe("t");

    // Publish finds one receiver gone and removes its subscriber.
    drop(first);
    broker.publish("t", "one".to_owned());
    let count = broker.subscriber_count("t");
    expect_count(
        "subscriber_count(\"t\")",
        count,
        1,
        "after one of its two receivers was dropped and a publish found it gone. Publish must \
         remove a subscriber whose receiver was dropped (try_send returns \
         TrySendError::Closed for it)",
    );

    // When the last receiver is gone too, publish removes the topic.
    drop(second);
    broker.publish("t", "two".to_owned());
    let count = broker.subscriber_count("t");
    expect_count(
        "subscriber_count(\"t\")",
        count,
        0,
        "once a publish found every receiver of \"t\" dropped",
    );
    let count = broker.topic_count();
    expect_count(
        "topic_count()",
        count,
        0,
        "after publish removed the last subscriber of \"t\". The topic's entry must be \
         removed with it",
    );
}

fn publish_without_subscribers_allocates_nothing() {
    let broker = Broker::new();

    // A topic that never had a subscriber.
    let message = "unheard".to_owned();
    let allocations = count_allocations(|| broker.publish("nobody", message));
    assert!(
        allocations == 0,
        "publish to a topic with no subscribers made {allocations} heap allocations, but it \
         should make none. Look the topic up by &str and return before cloning anything"
    );

    // A topic whose only subscriber has left.
    let (_receiver, handle) = broker.subscribe("left");
    handle.unsubscribe();
    let message = "unheard".to_owned();
    let allocations = count_allocations(|| broker.publish("left", message));
    assert!(
        allocations == 0,
        "publish to a topic whose last subscriber unsubscribed made {allocations} heap \
         allocations, but it should make none, like a topic that never had subscribers"
    );
}

fn unsubscribe_stops_later_messages() {
    let broker = Broker::new();
    let (mut leaving, leaving_handle) = broker.subscribe("t");
    let (mut staying, _staying_handle) = broker.subscribe("t");

    // Leave, then publish.
    leaving_handle.unsubscribe();
    broker.publish("t", "later".to_owned());

    let situation = "after one of two subscribers of \"t\" unsubscribed and then \"later\" was \
                     published";
    expect_drained(
        &mut leaving,
        "the unsubscribed receiver",
        NOTHING,
        Then::End,
        situation,
        "Unsubscribe must remove the broker's sender, not only a copy of it",
    );
    expect_drained(
        &mut staying,
        "the subscriber that stayed",
        &["later"],
        Then::StayOpen,
        situation,
        "",
    );
    let count = broker.subscriber_count("t");
    expect_count(
        "subscriber_count(\"t\")",
        count,
        1,
        "after one of its two subscribers unsubscribed",
    );
}

fn unsubscribe_keeps_buffered_then_ends() {
    let broker = Broker::new();
    let (mut receiver, handle) = broker.subscribe("t");
    broker.publish("t", "first".to_owned());
    broker.publish("t", "second".to_owned());

    // Leave with two messages still buffered, then publish once more.
    handle.unsubscribe();
    broker.publish("t", "third".to_owned());

    // The buffered messages are still readable, in order, and then the
    // receiver ends instead of waiting for messages forever.
    expect_drained(
        &mut receiver,
        "the receiver",
        &["first", "second"],
        Then::End,
        "after \"first\" and \"second\" were buffered, unsubscribe() returned, and \"third\" \
         was published",
        "Messages buffered before unsubscribe stay readable, in order, and then recv() must \
         return None. A receiver that stays open means the broker still holds its sender",
    );
}

fn unsubscribe_spares_later_subscribers() {
    let broker = Broker::new();
    let (mut a, a_handle) = broker.subscribe("t");
    let (mut b, b_handle) = broker.subscribe("t");
    let (mut c, _c_handle) = broker.subscribe("t");

    // A leaves first; a position-based removal then shifts B and C.
    a_handle.unsubscribe();
    b_handle.unsubscribe();
    broker.publish("t", "for c".to_owned());

    let situation = "after A, B and C subscribed to \"t\", A and then B unsubscribed, and \
                     \"for c\" was published";
    expect_drained(
        &mut c,
        "receiver C",
        &["for c"],
        Then::StayOpen,
        situation,
        "A handle that removes by the position its subscriber had at subscribe time detaches \
         the wrong one once an earlier subscriber has left",
    );
    expect_drained(&mut b, "receiver B", NOTHING, Then::End, situation, "");
    expect_drained(&mut a, "receiver A", NOTHING, Then::End, situation, "");
    let count = broker.subscriber_count("t");
    expect_count("subscriber_count(\"t\")", count, 1, "when only C is left");
}

fn unsubscribe_middle_then_last_spares_others() {
    let broker = Broker::new();
    let (mut a, _a_handle) = broker.subscribe("t");
    let (mut b, b_handle) = broker.subscribe("t");
    let (mut c, _c_handle) = broker.subscribe("t");
    let (mut d, d_handle) = broker.subscribe("t");

    // B leaves from the middle. In a Vec, that shifts C and D forward, or
    // moves D into B's place with swap_remove. Then D leaves.
    b_handle.unsubscribe();
    d_handle.unsubscribe();
    broker.publish("t", "for a and c".to_owned());

    let situation = "after A, B, C and D subscribed to \"t\", B and then D unsubscribed, and \
                     \"for a and c\" was published";
    let advice = "A handle that removes by the position its subscriber had at subscribe time \
                  detaches the wrong one, or none, once another subscriber has left, whether \
                  the others shift (Vec::remove) or the last one fills the gap \
                  (Vec::swap_remove). Identify each subscriber by an id that never changes";
    expect_drained(
        &mut c,
        "receiver C",
        &["for a and c"],
        Then::StayOpen,
        situation,
        advice,
    );
    expect_drained(&mut d, "receiver D", NOTHING, Then::End, situation, advice);
    expect_drained(
        &mut a,
        "receiver A",
        &["for a and c"],
        Then::StayOpen,
        situation,
        advice,
    );
    expect_drained(&mut b, "receiver B", NOTHING, Then::End, situation, "");
    let count = broker.subscriber_count("t");
    expect_count(
        "subscriber_count(\"t\")",
        count,
        2,
        "when only A and C are left",
    );
}

fn unsubscribe_spares_other_topics() {
    let broker = Broker::new();
    let (mut x_first, x_first_handle) = broker.subscribe("x");
    let (mut y_only, _y_handle) = broker.subscribe("y");
    let (mut x_second, _x_second_handle) = broker.subscribe("x");

    // Leaving "x" must not touch the subscriber of "y".
    x_first_handle.unsubscribe();
    broker.publish("x", "to x".to_owned());
    broker.publish("y", "to y".to_owned());

    let situation = "after the first of two subscribers of \"x\" unsubscribed and \"to x\" \
                     and \"to y\" were published";
    expect_drained(
        &mut y_only,
        "the subscriber of \"y\"",
        &["to y"],
        Then::StayOpen,
        situation,
        "Unsubscribing from \"x\" must not disturb a subscriber of another topic",
    );
    expect_drained(
        &mut x_second,
        "the other subscriber of \"x\"",
        &["to x"],
        Then::StayOpen,
        situation,
        "",
    );
    expect_drained(
        &mut x_first,
        "the unsubscribed receiver of \"x\"",
        NOTHING,
        Then::End,
        situation,
        "",
    );
    let count = broker.subscriber_count("y");
    expect_count(
        "subscriber_count(\"y\")",
        count,
        1,
        "after a subscriber of another topic left",
    );
    let count = broker.subscriber_count("x");
    expect_count(
        "subscriber_count(\"x\")",
        count,
        1,
        "after one of its two subscribers left",
    );
}

fn unsubscribe_twice_is_noop() {
    let broker = Broker::new();
    let (_first, first_handle) = broker.subscribe("t");
    let (mut second, _second_handle) = broker.subscribe("t");

    // The first subscriber leaves, and a newcomer takes its place.
    first_handle.unsubscribe();
    let (mut newcomer, newcomer_handle) = broker.subscribe("t");

    // A second call from the stale handle must not detach anyone.
    first_handle.unsubscribe();
    broker.publish("t", "still here".to_owned());
    let situation = "after the first subscriber of \"t\" unsubscribed, a newcomer subscribed, \
                     the first handle's unsubscribe() ran again, and \"still here\" was \
                     published";
    expect_drained(
        &mut newcomer,
        "the newcomer",
        &["still here"],
        Then::StayOpen,
        situation,
        "Each handle must identify its own subscriber, not a slot or id that gets reused",
    );
    expect_drained(
        &mut second,
        "the second subscriber",
        &["still here"],
        Then::StayOpen,
        situation,
        "A repeated unsubscribe() must do nothing",
    );
    let count = broker.subscriber_count("t");
    expect_count(
        "subscriber_count(\"t\")",
        count,
        2,
        "after a repeated unsubscribe()",
    );

    // The last subscriber to leave may also call twice.
    newcomer_handle.unsubscribe();
    let (_, last_handle) = broker.subscribe("solo");
    last_handle.unsubscribe();
    last_handle.unsubscribe();
    let count = broker.subscriber_count("solo");
    expect_count(
        "subscriber_count(\"solo\")",
        count,
        0,
        "after its only subscriber called unsubscribe() twice",
    );
}

fn unsubscribe_after_close_is_noop() {
    let broker = Broker::new();
    let (mut receiver, handle) = broker.subscribe("t");
    broker.publish("t", "before close".to_owned());
    broker.close();

    // Unsubscribe after close finds nothing to remove and must not panic.
    handle.unsubscribe();
    handle.unsubscribe();
    expect_drained(
        &mut receiver,
        "the receiver",
        &["before close"],
        Then::End,
        "after \"before close\" was published, the broker closed, and unsubscribe() ran twice",
        "",
    );
}

fn unsubscribe_after_broker_dropped_is_noop() {
    // The broker goes out of scope at the end of the block.
    let (_receiver, handle) = {
        let broker = Broker::new();
        broker.subscribe("t")
    };

    // The handle outlives the broker, and using it must not panic.
    handle.unsubscribe();
}

fn dropped_handle_keeps_subscription() {
    let broker = Broker::new();

    // `_` drops the handle at once. The second handle is dropped explicitly.
    let (mut unnamed, _) = broker.subscribe("t");
    let (mut dropped, handle) = broker.subscribe("t");
    drop(handle);
    broker.publish("t", "still here".to_owned());

    let situation = "after two subscribers of \"t\" dropped their Unsubscribe handles without \
                     calling unsubscribe(), and \"still here\" was published";
    let advice = "Dropping the handle must not unsubscribe, because `let (rx, _) = \
                  broker.subscribe(..)` drops it at once. Only unsubscribe() removes a \
                  subscriber, so Unsubscribe must not implement Drop";
    expect_drained(
        &mut unnamed,
        "the receiver from `let (rx, _) = broker.subscribe(\"t\")`",
        &["still here"],
        Then::StayOpen,
        situation,
        advice,
    );
    expect_drained(
        &mut dropped,
        "the receiver whose handle was passed to drop()",
        &["still here"],
        Then::StayOpen,
        situation,
        advice,
    );
    let count = broker.subscriber_count("t");
    expect_count(
        "subscriber_count(\"t\")",
        count,
        2,
        "after both subscribers dropped their handles without calling unsubscribe()",
    );
}

fn last_unsubscribe_removes_topic() {
    let broker = Broker::new();
    let (_first, first_handle) = broker.subscribe("t");
    let (_second, second_handle) = broker.subscribe("t");
    let (_other, _other_handle) = broker.subscribe("other");
    let count = broker.topic_count();
    expect_count(
        "topic_count()",
        count,
        2,
        "with subscribers on \"t\" and \"other\"",
    );

    // One of two leaves: the topic stays.
    first_handle.unsubscribe();
    let count = broker.subscriber_count("t");
    expect_count(
        "subscriber_count(\"t\")",
        count,
        1,
        "after one of its two subscribers left",
    );
    let count = broker.topic_count();
    expect_count(
        "topic_count()",
        count,
        2,
        "while \"t\" still has a subscriber",
    );

    // The last one leaves: the topic is gone.
    second_handle.unsubscribe();
    let count = broker.subscriber_count("t");
    expect_count(
        "subscriber_count(\"t\")",
        count,
        0,
        "after every subscriber of \"t\" left",
    );
    let count = broker.topic_count();
    expect_count(
        "topic_count()",
        count,
        1,
        "after the last subscriber of \"t\" left, because only \"other\" has subscribers. An \
         empty topic entry must be removed, or short-lived topics make the map grow without \
         bound",
    );
}

fn many_cycles_leave_broker_empty() {
    let broker = Broker::new();

    // Subscribe and leave again and again on one topic, next to a subscriber
    // that stays.
    let (mut staying, _staying_handle) = broker.subscribe("busy");
    for _ in 0..10_000 {
        let (_receiver, handle) = broker.subscribe("busy");
        handle.unsubscribe();
    }
    let count = broker.subscriber_count("busy");
    expect_count(
        "subscriber_count(\"busy\")",
        count,
        1,
        "after 10,000 subscribe/unsubscribe cycles next to one lasting subscriber",
    );
    broker.publish("busy", "ping".to_owned());
    expect_drained(
        &mut staying,
        "the lasting subscriber",
        &["ping"],
        Then::StayOpen,
        "after 10,000 other subscribers of \"busy\" came and went and \"ping\" was published",
        "",
    );

    // One short-lived topic per cycle, as a per-request topic would be.
    for cycle in 0..10_000 {
        let topic = format!("request-{cycle}");
        let (_receiver, handle) = broker.subscribe(&topic);
        handle.unsubscribe();
        let count = broker.subscriber_count(&topic);
        expect_count(
            &format!("subscriber_count({topic:?})"),
            count,
            0,
            "after its only subscriber left",
        );
    }
    let count = broker.topic_count();
    expect_count(
        "topic_count()",
        count,
        1,
        "after 10,000 short-lived topics came and went next to \"busy\". Each empty topic \
         entry must be removed",
    );
}

/// Short-lived topics in [`short_lived_topics_stop_allocating_more`].
const SHORT_LIVED_TOPICS: usize = 10_000;
/// Cycles at the start of that check whose allocations do not count, so that
/// collections may reach their working size first.
const WARM_UP_CYCLES: usize = 100;

/// Checks that a broker whose topics come and go reaches a steady state: after
/// a warm-up, every cycle of subscribing to a new topic and unsubscribing
/// again makes the same number of heap allocations.
///
/// A broker that keeps the entry of each topic whose last subscriber left has
/// a map that grows by one entry per cycle, so now and then a cycle also
/// reallocates the map. Counting allocations shows that growth even when
/// `topic_count` skips empty entries.
fn short_lived_topics_stop_allocating_more() {
    let broker = Broker::new();
    let topics: Vec<String> = (0..SHORT_LIVED_TOPICS)
        .map(|index| format!("short-{index}"))
        .collect();

    // Each topic gets one subscriber, which leaves again at once.
    let counts: Vec<usize> = topics
        .iter()
        .map(|topic| {
            count_allocations(|| {
                let (_receiver, handle) = broker.subscribe(topic);
                handle.unsubscribe();
            })
        })
        .collect();

    // After the warm-up, no cycle may allocate more than the cheapest one.
    let steady = counts[WARM_UP_CYCLES..]
        .iter()
        .copied()
        .min()
        .expect("there are more cycles than warm-up cycles");
    let growing: Vec<usize> = (WARM_UP_CYCLES..SHORT_LIVED_TOPICS)
        .filter(|&cycle| counts[cycle] > steady)
        .collect();
    if let Some(&first) = growing.first() {
        panic!(
            "subscribing to a new topic and unsubscribing again, {SHORT_LIVED_TOPICS} times \
             with a new topic each time, made at least {steady} heap allocations in each cycle \
             after the first {WARM_UP_CYCLES}, and {} of those cycles made more, starting with \
             cycle {} ({} allocations). A cycle that allocates more than the others means that \
             something in the broker keeps growing, such as a map that keeps the entry of each \
             topic whose last subscriber left. Remove a topic's entry when its last subscriber \
             leaves, in unsubscribe and in publish",
            growing.len(),
            first + 1,
            counts[first]
        );
    }
}

/// Number of tasks of each kind in the stress check.
const WORKERS: usize = 4;
/// Messages each publisher sends, and cycles each churner runs.
const ROUNDS: usize = 5_000;
/// Wall-clock bound on waiting for a receiver to end after unsubscribe or
/// close.
const END_LIMIT: Duration = Duration::from_secs(5);

fn concurrent_churn_stays_consistent() {
    testkit::runtime::multi_thread(WORKERS, async {
        let broker = Arc::new(Broker::new());
        let topics: Vec<String> = (0..WORKERS).map(|index| format!("topic-{index}")).collect();

        // One lasting subscriber per topic, read by its own task until the
        // receiver ends.
        let mut readers = Vec::new();
        let mut lasting_handles = Vec::new();
        for topic in &topics {
            let (mut receiver, handle) = broker.subscribe(topic);
            lasting_handles.push(handle);
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

        // Churners subscribe and leave while the publishers run. Each
        // unsubscribed receiver must end after at most a buffer's worth.
        let mut churners = Vec::new();
        for churner in 0..WORKERS {
            let broker = Arc::clone(&broker);
            let topics = topics.clone();
            churners.push(tokio::spawn(async move {
                for cycle in 0..ROUNDS {
                    let topic = &topics[(churner + cycle) % topics.len()];
                    let (mut receiver, handle) = broker.subscribe(topic);
                    tokio::task::yield_now().await;
                    handle.unsubscribe();
                    let mut count = 0;
                    loop {
                        match tokio::time::timeout(END_LIMIT, receiver.recv()).await {
                            Ok(Some(_)) => count += 1,
                            Ok(None) => break,
                            Err(_) => panic!(
                                "a receiver on {topic:?} had not ended {} s after its \
                                 unsubscribe() returned; unsubscribe must drop the broker's \
                                 sender",
                                END_LIMIT.as_secs()
                            ),
                        }
                    }
                    assert!(
                        count <= BUFFER,
                        "an unsubscribed receiver yielded {count} messages, more than the \
                         buffer of {BUFFER} it could hold when it left"
                    );
                }
            }));
        }

        for task in publishers.into_iter().chain(churners) {
            join(task).await;
        }

        // Only the lasting subscribers remain.
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
        broker.close();
        for (index, reader) in readers.into_iter().enumerate() {
            let Ok(received) = tokio::time::timeout(END_LIMIT, join(reader)).await else {
                panic!(
                    "the lasting subscriber of topic-{index} was still waiting in recv() {} s \
                     after close() returned. Close must end every receiver once its buffered \
                     messages are read",
                    END_LIMIT.as_secs()
                );
            };
            check_lasting_subscriber(index, &received);
        }
        drop(lasting_handles);
        expect_count("topic_count()", broker.topic_count(), 0, "after close");
    });
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

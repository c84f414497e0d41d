//! Grading suite for task 2: the task 1 broker plus an unsubscribe handle.
//!
//! The first checks repeat the core of task 1 in brief. The rest check the
//! handle's contract. It stops later deliveries, keeps what is buffered and
//! ends the receiver. It is safe to call twice or after close, never touches
//! another subscriber, and leaves no memory behind once a topic is empty.
//!
//! Most checks read receivers with `try_recv`, which never waits: with no
//! publish in flight, a receiver that should have ended reports
//! `Disconnected` at once, and one that is still open reports `Empty`.

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
            "full_buffer_drops_newest_message",
            "Broker::publish",
            full_buffer_drops_newest_message,
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
            "last_unsubscribe_removes_topic",
            "Broker::topic_count",
            last_unsubscribe_removes_topic,
        )
        .check(
            "many_cycles_leave_broker_empty",
            "Broker::subscriber_count",
            many_cycles_leave_broker_empty,
        )
        .add_check(
            Check::new(
                "concurrent_churn_stays_consistent",
                "Broker",
                concurrent_churn_stays_consistent,
            )
            .time_limit(Duration::from_secs(60)),
        )
        .run()
}

/// What `try_recv` showed until it stopped returning messages.
#[derive(Debug, PartialEq)]
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

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

fn publish_reaches_topic_subscribers_only() {
    testkit::runtime::paused("Broker::publish", async {
        let broker = Broker::new();
        let (mut first, _first_handle) = broker.subscribe("news");
        let (mut second, _second_handle) = broker.subscribe("news");
        let (mut other, _other_handle) = broker.subscribe("sport");

        // One message to "news" reaches both of its subscribers.
        broker.publish("news", "hello".to_owned());
        assert_eq!(
            first.recv().await.as_deref(),
            Some("hello"),
            "the first subscriber of \"news\" did not get the message published to \"news\""
        );
        assert_eq!(
            second.recv().await.as_deref(),
            Some("hello"),
            "the second subscriber of \"news\" did not get the message published to \"news\"; \
             publish must deliver to every subscriber of the topic"
        );

        // A subscriber of another topic gets nothing.
        assert_eq!(
            other.try_recv(),
            Err(TryRecvError::Empty),
            "a subscriber of \"sport\" received a message published to \"news\"; \
             publish must deliver only to subscribers of exactly that topic"
        );
        assert_eq!(
            broker.subscriber_count("news"),
            2,
            "subscriber_count(\"news\") must be 2 with two subscribers"
        );
        assert_eq!(
            broker.subscriber_count("sport"),
            1,
            "subscriber_count(\"sport\") must be 1 with one subscriber"
        );
        assert_eq!(
            broker.subscriber_count("weather"),
            0,
            "subscriber_count must be 0 for a topic nobody subscribed to"
        );
        assert_eq!(
            broker.topic_count(),
            2,
            "topic_count must be 2 with subscribers on two topics"
        );
    });
}

fn full_buffer_drops_newest_message() {
    testkit::runtime::paused("Broker::publish", async {
        let broker = Broker::new();
        let (mut receiver, _handle) = broker.subscribe("t");

        // Publish one more than the buffer can contain, reading nothing. A
        // publish that waited for space would never return here.
        for index in 0..=BUFFER {
            broker.publish("t", format!("m{index}"));
        }

        // The first BUFFER messages arrive in order and the extra one is gone.
        let drained = drain(&mut receiver);
        let expected: Vec<String> = (0..BUFFER).map(|index| format!("m{index}")).collect();
        assert_eq!(
            drained.messages,
            expected,
            "after {} publishes to a subscriber that read nothing, it must hold the first {} \
             in order; the message that found the buffer full is dropped",
            BUFFER + 1,
            BUFFER
        );
        assert!(
            !drained.ended,
            "a full buffer must not end the subscription"
        );

        // Once there is room again, delivery resumes.
        broker.publish("t", "after".to_owned());
        assert_eq!(
            receiver.recv().await.as_deref(),
            Some("after"),
            "after the subscriber drained its buffer, the next message must arrive"
        );
    });
}

fn close_ends_receivers_after_draining() {
    testkit::runtime::paused("Broker::close", async {
        let broker = Broker::new();
        let (mut first, _first_handle) = broker.subscribe("a");
        let (mut second, _second_handle) = broker.subscribe("b");
        broker.publish("a", "buffered".to_owned());

        // Close keeps what is buffered, then each receiver ends.
        broker.close();
        assert_eq!(
            first.recv().await.as_deref(),
            Some("buffered"),
            "a message buffered before close must still be readable after close"
        );
        assert_eq!(
            first.recv().await,
            None,
            "after close and a drained buffer, recv() must return None"
        );
        assert_eq!(
            second.recv().await,
            None,
            "close must end every receiver, including ones with nothing buffered"
        );

        // Closing again changes nothing and does not panic.
        broker.close();
        assert_eq!(broker.topic_count(), 0, "topic_count must be 0 after close");
    });
}

fn use_after_close_is_harmless() {
    let broker = Broker::new();
    let (_early, _early_handle) = broker.subscribe("t");
    broker.close();

    // Publishing after close does nothing and does not panic.
    broker.publish("t", "ignored".to_owned());

    // A late subscriber gets a receiver that has already ended.
    let (mut late, late_handle) = broker.subscribe("t");
    assert_eq!(
        drain(&mut late),
        Drained {
            messages: Vec::new(),
            ended: true
        },
        "subscribe after close must return a receiver that is already ended"
    );
    assert_eq!(
        broker.subscriber_count("t"),
        0,
        "subscribe after close must not register a subscriber"
    );
    assert_eq!(broker.topic_count(), 0, "topic_count must be 0 after close");

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
    assert_eq!(
        drain(&mut kept).messages,
        strings(&["one", "two"]),
        "after another subscriber dropped its receiver, the remaining subscriber must still \
         get every message"
    );
}

fn publish_prunes_dropped_receivers() {
    let broker = Broker::new();
    let (first, _first_handle) = broker.subscribe("t");
    let (second, _second_handle) = broker.subscribe("t");

    // Publish finds one receiver gone and removes its subscriber.
    drop(first);
    broker.publish("t", "one".to_owned());
    assert_eq!(
        broker.subscriber_count("t"),
        1,
        "publish to a subscriber whose receiver was dropped must remove that subscriber \
         (try_send returns TrySendError::Closed for it)"
    );

    // When the last receiver is gone too, publish removes the topic.
    drop(second);
    broker.publish("t", "two".to_owned());
    assert_eq!(
        broker.subscriber_count("t"),
        0,
        "subscriber_count must be 0 once publish found every receiver dropped"
    );
    assert_eq!(
        broker.topic_count(),
        0,
        "after publish removed the last subscriber of \"t\", the topic entry must be removed \
         too"
    );
}

fn publish_without_subscribers_allocates_nothing() {
    let broker = Broker::new();

    // A topic that never had a subscriber.
    let message = "unheard".to_owned();
    let allocations = count_allocations(|| broker.publish("nobody", message));
    assert_eq!(
        allocations, 0,
        "publish to a topic with no subscribers made {allocations} heap allocations; look the \
         topic up by &str and return before cloning anything"
    );

    // A topic whose only subscriber has left.
    let (_receiver, handle) = broker.subscribe("left");
    handle.unsubscribe();
    let message = "unheard".to_owned();
    let allocations = count_allocations(|| broker.publish("left", message));
    assert_eq!(
        allocations, 0,
        "publish to a topic whose last subscriber unsubscribed made {allocations} heap \
         allocations; it must cost nothing, like a topic that never had subscribers"
    );
}

fn unsubscribe_stops_later_messages() {
    let broker = Broker::new();
    let (mut leaving, leaving_handle) = broker.subscribe("t");
    let (mut staying, _staying_handle) = broker.subscribe("t");

    // Leave, then publish.
    leaving_handle.unsubscribe();
    broker.publish("t", "later".to_owned());

    let drained = drain(&mut leaving);
    assert!(
        drained.messages.is_empty(),
        "a message published after unsubscribe() returned reached the unsubscribed receiver: \
         {:?}; unsubscribe must remove the broker's sender, not only a copy of it",
        drained.messages
    );
    assert_eq!(
        drain(&mut staying).messages,
        strings(&["later"]),
        "the subscriber that stayed must still get the message"
    );
    assert_eq!(
        broker.subscriber_count("t"),
        1,
        "subscriber_count must drop from 2 to 1 after one unsubscribe"
    );
}

fn unsubscribe_keeps_buffered_then_ends() {
    testkit::runtime::paused("Unsubscribe::unsubscribe", async {
        let broker = Broker::new();
        let (mut receiver, handle) = broker.subscribe("t");
        broker.publish("t", "first".to_owned());
        broker.publish("t", "second".to_owned());

        // Leave with two messages still buffered.
        handle.unsubscribe();
        broker.publish("t", "third".to_owned());

        // The buffered messages are still readable, in order.
        assert_eq!(
            receiver.recv().await.as_deref(),
            Some("first"),
            "a message buffered before unsubscribe must still be readable"
        );
        assert_eq!(
            receiver.recv().await.as_deref(),
            Some("second"),
            "every message buffered before unsubscribe must still be readable, in order"
        );

        // Then the receiver ends instead of waiting for messages forever.
        assert_eq!(
            receiver.try_recv(),
            Err(TryRecvError::Disconnected),
            "after unsubscribe and a drained buffer the receiver must end (recv() returns \
             None); it is still open, so the broker still holds its sender"
        );
    });
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

    assert_eq!(
        drain(&mut c),
        Drained {
            messages: strings(&["for c"]),
            ended: false
        },
        "after A and then B unsubscribed, C must still be subscribed and get the message; \
         a handle that removes by the position its subscriber had at subscribe time detaches \
         the wrong one once an earlier subscriber has left"
    );
    assert_eq!(
        drain(&mut b),
        Drained {
            messages: Vec::new(),
            ended: true
        },
        "B unsubscribed, so it must get nothing and its receiver must end"
    );
    assert_eq!(
        drain(&mut a),
        Drained {
            messages: Vec::new(),
            ended: true
        },
        "A unsubscribed, so it must get nothing and its receiver must end"
    );
    assert_eq!(
        broker.subscriber_count("t"),
        1,
        "subscriber_count(\"t\") must be 1: only C is left"
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

    assert_eq!(
        drain(&mut y_only),
        Drained {
            messages: strings(&["to y"]),
            ended: false
        },
        "unsubscribing from \"x\" disturbed the subscriber of \"y\""
    );
    assert_eq!(
        drain(&mut x_second),
        Drained {
            messages: strings(&["to x"]),
            ended: false
        },
        "the other subscriber of \"x\" must stay subscribed"
    );
    assert!(
        drain(&mut x_first).ended,
        "the unsubscribed receiver of \"x\" must end"
    );
    assert_eq!(
        broker.subscriber_count("y"),
        1,
        "subscriber_count(\"y\") must stay 1"
    );
    assert_eq!(
        broker.subscriber_count("x"),
        1,
        "subscriber_count(\"x\") must be 1 after one of two left"
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
    assert_eq!(
        drain(&mut newcomer),
        Drained {
            messages: strings(&["still here"]),
            ended: false
        },
        "a second unsubscribe() from an old handle detached the subscriber that joined after \
         it; each handle must identify its own subscriber, not a slot or id that gets reused"
    );
    assert_eq!(
        drain(&mut second),
        Drained {
            messages: strings(&["still here"]),
            ended: false
        },
        "a second unsubscribe() from an old handle detached another subscriber"
    );
    assert_eq!(
        broker.subscriber_count("t"),
        2,
        "subscriber_count must stay 2 after a repeated unsubscribe"
    );

    // The last subscriber to leave may also call twice.
    newcomer_handle.unsubscribe();
    let (_, last_handle) = broker.subscribe("solo");
    last_handle.unsubscribe();
    last_handle.unsubscribe();
    assert_eq!(
        broker.subscriber_count("solo"),
        0,
        "subscriber_count must be 0 after the only subscriber unsubscribed twice"
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
    assert_eq!(
        drain(&mut receiver),
        Drained {
            messages: strings(&["before close"]),
            ended: true
        },
        "after close and unsubscribe the receiver must still yield its buffered message, then end"
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

fn last_unsubscribe_removes_topic() {
    let broker = Broker::new();
    let (_first, first_handle) = broker.subscribe("t");
    let (_second, second_handle) = broker.subscribe("t");
    let (_other, _other_handle) = broker.subscribe("other");
    assert_eq!(
        broker.topic_count(),
        2,
        "topic_count must be 2 with two subscribed topics"
    );

    // One of two leaves: the topic stays.
    first_handle.unsubscribe();
    assert_eq!(
        broker.subscriber_count("t"),
        1,
        "subscriber_count must be 1 after one of two subscribers left"
    );
    assert_eq!(
        broker.topic_count(),
        2,
        "a topic with a subscriber left must still count"
    );

    // The last one leaves: the topic is gone.
    second_handle.unsubscribe();
    assert_eq!(
        broker.subscriber_count("t"),
        0,
        "subscriber_count must be 0 after every subscriber left"
    );
    assert_eq!(
        broker.topic_count(),
        1,
        "after the last subscriber of \"t\" left, only \"other\" may remain; an empty topic \
         entry must be removed, or short-lived topics make the map grow without bound"
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
    assert_eq!(
        broker.subscriber_count("busy"),
        1,
        "after 10,000 subscribe/unsubscribe cycles only the one lasting subscriber may remain"
    );
    broker.publish("busy", "ping".to_owned());
    assert_eq!(
        drain(&mut staying).messages,
        strings(&["ping"]),
        "the lasting subscriber must survive 10,000 cycles of others"
    );

    // One short-lived topic per cycle, as a per-request topic would be.
    for cycle in 0..10_000 {
        let topic = format!("request-{cycle}");
        let (_receiver, handle) = broker.subscribe(&topic);
        handle.unsubscribe();
        assert_eq!(
            broker.subscriber_count(&topic),
            0,
            "subscriber_count({topic:?}) must be 0 after its only subscriber left"
        );
    }
    assert_eq!(
        broker.topic_count(),
        1,
        "after 10,000 short-lived topics came and went only \"busy\" may remain; each empty \
         topic entry must be removed"
    );
}

/// Number of tasks of each kind in the stress check.
const WORKERS: usize = 4;
/// Messages each publisher sends, and cycles each churner runs.
const ROUNDS: usize = 5_000;
/// Wall-clock bound on waiting for an unsubscribed receiver to end.
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
            assert_eq!(
                broker.subscriber_count(topic),
                1,
                "after concurrent churn, {topic:?} must have exactly its one lasting subscriber"
            );
        }
        assert_eq!(
            broker.topic_count(),
            WORKERS,
            "topic_count must equal the number of lasting subscribers after concurrent churn"
        );

        // Close ends the lasting receivers, so their readers can report.
        broker.close();
        for (index, reader) in readers.into_iter().enumerate() {
            let received = join(reader).await;
            check_lasting_subscriber(index, &received);
        }
        drop(lasting_handles);
        assert_eq!(broker.topic_count(), 0, "topic_count must be 0 after close");
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
        assert_eq!(
            sequence % WORKERS,
            index,
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

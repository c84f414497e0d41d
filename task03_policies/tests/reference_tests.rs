//! The reference's own tests, written the way a learner could write them.
//!
//! Each one passes on the reference and fails on at least one buggy version
//! in `src/mutants/`. When the grader grades the reference, it runs them
//! together with `tests/mine.rs`. Cargo builds this file only with
//! `--features reference`, because of `required-features` in Cargo.toml.
//!
//! Tests that wait for a publisher run on paused time and bound each wait
//! with `tokio::time::timeout`. A call that could block its thread forever,
//! such as `unsubscribe()` while a publisher waits or a publish whose
//! `on_drop` calls the broker, cannot be bounded that way. Those calls run
//! on a thread of their own, which gets five seconds of wall-clock time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use task03_policies::{Broker, SubscribeOptions, Unsubscribe};
use tokio::time::{Instant, timeout};

/// Virtual time a waiting publisher gets to finish once it should be free.
const RELEASE_LIMIT: Duration = Duration::from_secs(60);

/// Runs `work` on a thread of its own and returns whether it finished within
/// five seconds. A deadlocked `work` stays blocked on that thread, so the
/// test fails instead of hanging.
fn finishes_in_time(work: impl FnOnce() + Send + 'static) -> bool {
    let (done_sender, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        work();
        let _ = done_sender.send(());
    });
    done.recv_timeout(Duration::from_secs(5)).is_ok()
}

/// Returns options whose `on_drop` records into the returned list.
fn recording(options: SubscribeOptions) -> (SubscribeOptions, Arc<Mutex<Vec<String>>>) {
    let lost = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&lost);
    let options = options.on_drop(move |msg| record.lock().unwrap().push(msg));
    (options, lost)
}

/// Publishes `msg` to `topic` on a task of its own.
fn spawn_publish(
    broker: &Arc<Broker>,
    topic: &'static str,
    msg: &str,
) -> tokio::task::JoinHandle<()> {
    let broker = Arc::clone(broker);
    let msg = msg.to_owned();
    tokio::spawn(async move { broker.publish(topic, msg).await })
}

#[tokio::test]
async fn default_buffer_holds_sixteen() {
    let broker = Broker::new();
    let (options, lost) = recording(SubscribeOptions::default());
    let (mut receiver, _handle) = broker.subscribe("t", options);

    for index in 0..16 {
        broker.publish("t", format!("m{index}")).await;
    }

    assert!(lost.lock().unwrap().is_empty());
    for index in 0..16 {
        assert_eq!(receiver.try_recv(), Ok(format!("m{index}")));
    }
}

#[tokio::test]
async fn dropped_receiver_is_not_reported_as_loss() {
    let broker = Broker::new();
    let (options, lost) = recording(SubscribeOptions::default().buffer(1));
    let (receiver, _handle) = broker.subscribe("t", options);
    drop(receiver);

    broker.publish("t", "nobody reads this".to_owned()).await;

    assert!(lost.lock().unwrap().is_empty());
    assert_eq!(broker.subscriber_count("t"), 0);
}

#[tokio::test(start_paused = true)]
async fn full_drop_subscriber_does_not_delay_publish() {
    let broker = Broker::new();
    let (options, lost) = recording(SubscribeOptions::default().buffer(1));
    let (_receiver, _handle) = broker.subscribe("t", options);
    broker.publish("t", "fits".to_owned()).await;

    // On paused time, a publish that never waits takes no time at all.
    let start = Instant::now();
    broker.publish("t", "lost".to_owned()).await;
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(*lost.lock().unwrap(), ["lost"]);
}

#[tokio::test(start_paused = true)]
async fn drop_subscriber_not_held_up_by_block_subscriber() {
    let broker = Arc::new(Broker::new());
    let (_block_receiver, _block_handle) =
        broker.subscribe("t", SubscribeOptions::block().buffer(1));
    let (mut drop_receiver, _drop_handle) = broker.subscribe("t", SubscribeOptions::default());
    broker.publish("t", "fill".to_owned()).await;
    assert_eq!(drop_receiver.try_recv().as_deref(), Ok("fill"));

    // The publisher waits for the Block subscriber, which never reads.
    let publisher = spawn_publish(&broker, "t", "news");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!publisher.is_finished());

    // The Drop subscriber got the message anyway.
    assert_eq!(drop_receiver.try_recv().as_deref(), Ok("news"));
}

#[tokio::test(start_paused = true)]
async fn unsubscribe_releases_waiting_publisher() {
    let broker = Arc::new(Broker::new());
    let (mut receiver, handle) = broker.subscribe("t", SubscribeOptions::block().buffer(1));
    broker.publish("t", "fill".to_owned()).await;
    let publisher = spawn_publish(&broker, "t", "blocked");
    tokio::time::sleep(Duration::from_secs(1)).await;

    // A publisher that kept the broker's lock while it waits would make
    // unsubscribe() wait for the lock forever.
    assert!(
        finishes_in_time(move || handle.unsubscribe()),
        "unsubscribe() did not return while a publisher waited for its subscriber"
    );

    assert!(timeout(RELEASE_LIMIT, publisher).await.is_ok());
    assert_eq!(receiver.recv().await.as_deref(), Some("fill"));
    assert_eq!(receiver.recv().await, None);
}

#[tokio::test(start_paused = true)]
async fn close_releases_waiting_publisher() {
    let broker = Arc::new(Broker::new());
    let (_receiver, _handle) = broker.subscribe("t", SubscribeOptions::block().buffer(1));
    broker.publish("t", "fill".to_owned()).await;
    let publisher = spawn_publish(&broker, "t", "blocked");
    tokio::time::sleep(Duration::from_secs(1)).await;

    let closer = Arc::clone(&broker);
    assert!(
        finishes_in_time(move || closer.close()),
        "close() did not return while a publisher waited"
    );

    assert!(timeout(RELEASE_LIMIT, publisher).await.is_ok());
}

#[test]
fn on_drop_may_unsubscribe_its_subscriber() {
    let broker = Arc::new(Broker::new());
    let slot: Arc<Mutex<Option<Unsubscribe>>> = Arc::default();
    let options = SubscribeOptions::default().buffer(1).on_drop({
        let slot = Arc::clone(&slot);
        move |_| {
            if let Some(handle) = slot.lock().unwrap().take() {
                handle.unsubscribe();
            }
        }
    });
    let (_receiver, handle) = broker.subscribe("t", options);
    *slot.lock().unwrap() = Some(handle);

    // The second publish does not fit, so on_drop runs and calls the broker.
    let publisher = Arc::clone(&broker);
    let finished = finishes_in_time(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            publisher.publish("t", "fits".to_owned()).await;
            publisher.publish("t", "lost".to_owned()).await;
        });
    });
    assert!(
        finished,
        "publish did not return when on_drop called the broker"
    );
    assert_eq!(broker.subscriber_count("t"), 0);
}

#[test]
fn second_block_subscriber_logs_warning() {
    // The capture records every test's events, so look for this topic only.
    let logs = testkit::logs::capture();
    let topic = "second-block-subscriber-logs-warning";
    let warnings_about_topic = || {
        logs.at_level(tracing::Level::WARN)
            .into_iter()
            .filter(|event| event.field("topic") == Some(topic) || event.message.contains(topic))
            .count()
    };
    let broker = Broker::new();

    let _first = broker.subscribe(topic, SubscribeOptions::block());
    assert_eq!(warnings_about_topic(), 0);

    let _second = broker.subscribe(topic, SubscribeOptions::block());
    assert_eq!(warnings_about_topic(), 1);
}

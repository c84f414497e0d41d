//! Grading suite for task 4: the learner's `check_isolation` against brokers.
//!
//! The checker must accept the two correct brokers with a report of the exact
//! counts, and reject each faulty broker from `task04_isolation::brokers`
//! with the error variant that names its fault. A checker that always passes
//! fails every rejection check, and one that always fails fails the
//! acceptance checks, so neither can score.
//!
//! Every broker is wrapped in a `Recorder`, which forwards each call and
//! writes down what the checker did. With it the suite checks that an
//! accepted broker went through the whole workload, closed after the last
//! publish, and that an error names a receiver the checker subscribed and a
//! message it published.
//!
//! All checks but one run on tokio's paused clock, so the slow broker's
//! seconds of latency cost no real time and every run is the same. The
//! remaining check runs the correct broker on four worker threads.

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use task04_isolation::brokers::{
    CappedFanOutBroker, CorrectBroker, DuplicatingBroker, FAN_OUT_LIMIT, FirstInBucketBroker,
    LossyCloseBroker, ReorderingBroker, SLOW_LATENCY, SharedBucketBroker, SlowBroker,
};
use task04_isolation::{
    EXPECTED_PER_SUBSCRIBER, IsolationError, MESSAGES_PER_TOPIC, PUBLISHERS, PubSub, Report,
    SUBSCRIBERS_PER_TOPIC, TOPICS, TOTAL_DELIVERED, TOTAL_PUBLISHED, check_isolation,
};
use testkit::grading::Check;
use tokio::sync::mpsc;

fn main() -> ExitCode {
    testkit::suite!()
        .add_check(check("accepts_correct_broker", accepts_correct_broker))
        .add_check(
            check(
                "accepts_correct_broker_on_threads",
                accepts_correct_broker_on_threads,
            )
            .timeout_cause(STUCK_ON_THREADS),
        )
        .add_check(check("accepts_slow_broker", accepts_slow_broker))
        .add_check(check("rejects_shared_buckets", rejects_shared_buckets))
        .add_check(check("rejects_first_in_bucket", rejects_first_in_bucket))
        .add_check(check("rejects_lossy_close", rejects_lossy_close))
        .add_check(check(
            "rejects_duplicate_delivery",
            rejects_duplicate_delivery,
        ))
        .add_check(check(
            "rejects_reordered_delivery",
            rejects_reordered_delivery,
        ))
        .add_check(check("rejects_capped_fan_out", rejects_capped_fan_out))
        .run()
}

/// Returns a check of `check_isolation` with a generous wall-clock limit,
/// which only backs up the virtual-time deadline of the paused checks.
fn check(name: &'static str, run: fn()) -> Check {
    Check::new(name, "check_isolation", run).time_limit(Duration::from_secs(60))
}

/// Virtual time after which a paused check counts `check_isolation` as
/// stuck. The slow broker needs about 70 s of it.
const DEADLINE: Duration = Duration::from_secs(1800);

/// Expands to what usually makes `check_isolation` wait forever.
macro_rules! usual_hang {
    () => {
        "Usually a receiver is read only after publishing is done, while publish waits for room \
         in that receiver's full buffer. Or the checker waits for receivers to end before it has \
         closed the broker"
    };
}

/// Timeout cause of the check on worker threads, which has no virtual clock.
const STUCK_ON_THREADS: &str = concat!(
    "likely check_isolation waiting for something that never happens. ",
    usual_hang!()
);

// ---------------------------------------------------------------------------
// Recording what the checker does

/// Record of the calls a checker made on a broker, from a `Recorder`.
#[derive(Clone, Debug, Default)]
struct Log {
    /// Subscribe calls per topic.
    subscriptions: BTreeMap<String, usize>,
    /// Subscribe calls made after the first publish had started.
    late_subscriptions: usize,
    /// Publish calls per topic.
    publishes_per_topic: BTreeMap<String, usize>,
    /// For each published text: its topic and its position among all
    /// publish calls, from 0.
    published: HashMap<String, (String, usize)>,
    /// A text that was published more than once, if any.
    repeated_text: Option<String>,
    /// Publish calls started.
    publishes_started: usize,
    /// Publish calls that returned.
    publishes_returned: usize,
    /// Close calls.
    closes: usize,
    /// Publish calls started when close was first called.
    started_at_close: usize,
    /// Publish calls that had returned when close was first called.
    returned_at_close: usize,
    /// Publish calls started after the first close.
    publishes_after_close: usize,
}

/// A broker wrapper that forwards every call and records it in a `Log`.
struct Recorder<B> {
    inner: B,
    log: Mutex<Log>,
}

impl<B: PubSub> Recorder<B> {
    fn new(inner: B) -> Recorder<B> {
        Recorder {
            inner,
            log: Mutex::new(Log::default()),
        }
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<B: PubSub> PubSub for Recorder<B> {
    fn subscribe(&self, topic: &str) -> mpsc::Receiver<String> {
        {
            let mut log = self.log();
            *log.subscriptions.entry(topic.to_owned()).or_default() += 1;
            if log.publishes_started > 0 {
                log.late_subscriptions += 1;
            }
        }
        self.inner.subscribe(topic)
    }

    async fn publish(&self, topic: &str, msg: String) {
        {
            let mut log = self.log();
            let position = log.publishes_started;
            log.publishes_started += 1;
            if log.closes > 0 {
                log.publishes_after_close += 1;
            }
            *log.publishes_per_topic.entry(topic.to_owned()).or_default() += 1;
            let earlier = log
                .published
                .insert(msg.clone(), (topic.to_owned(), position));
            if earlier.is_some() && log.repeated_text.is_none() {
                log.repeated_text = Some(msg.clone());
            }
        }
        self.inner.publish(topic, msg).await;
        self.log().publishes_returned += 1;
    }

    fn close(&self) {
        {
            let mut log = self.log();
            if log.closes == 0 {
                log.started_at_close = log.publishes_started;
                log.returned_at_close = log.publishes_returned;
            }
            log.closes += 1;
        }
        self.inner.close();
    }
}

/// Runs `check_isolation` on paused time against the broker that `make`
/// creates inside the runtime, and returns its result with the log.
fn run_paused<B: PubSub>(make: fn() -> B) -> (Result<Report, IsolationError>, Log) {
    testkit::runtime::paused("check_isolation", async move {
        let recorder = Arc::new(Recorder::new(make()));
        let outcome = tokio::time::timeout(DEADLINE, check_isolation(Arc::clone(&recorder))).await;
        let Ok(result) = outcome else {
            panic!(
                "check_isolation did not return within {} s of virtual time, so it waits for \
                 something that never happens. {}",
                DEADLINE.as_secs(),
                usual_hang!()
            );
        };
        let log = recorder.log().clone();
        (result, log)
    })
}

/// Runs `check_isolation` on four worker threads against a correct broker.
fn run_on_threads() -> (Result<Report, IsolationError>, Log) {
    testkit::runtime::multi_thread(4, async {
        let recorder = Arc::new(Recorder::new(CorrectBroker::new()));
        let result = check_isolation(Arc::clone(&recorder)).await;
        let log = recorder.log().clone();
        (result, log)
    })
}

// ---------------------------------------------------------------------------
// Expectations shared by the checks

/// Panics unless the checker accepted `broker`, ran the whole workload on it
/// and reported the exact counts. A rejection's message ends with `advice`.
#[track_caller]
fn expect_accepted(result: Result<Report, IsolationError>, log: &Log, broker: &str, advice: &str) {
    let report = match result {
        Ok(report) => report,
        Err(err) => panic!(
            "check_isolation rejected {broker} with IsolationError::{} ({err}), but that broker \
             keeps the whole PubSub contract, so the mistake is in the checker. {advice}",
            variant(&err)
        ),
    };
    expect_full_workload(log, broker);

    let expected = Report {
        topics: TOPICS,
        publishers: PUBLISHERS,
        subscribers: TOPICS * SUBSCRIBERS_PER_TOPIC,
        published: TOTAL_PUBLISHED,
        delivered: TOTAL_DELIVERED,
    };
    assert!(
        report == expected,
        "check_isolation accepted {broker} but returned {report:?}, while the workload checks \
         {expected:?}. Each field counts what was done and checked, such as `delivered`: the \
         messages received over all receivers"
    );
}

/// Panics unless the log shows the workload that `check_isolation` promises.
#[track_caller]
fn expect_full_workload(log: &Log, broker: &str) {
    let topics: Vec<&String> = log.subscriptions.keys().collect();
    assert!(
        topics.len() == TOPICS,
        "on {broker}, check_isolation subscribed to {} distinct topics {topics:?}, but the \
         workload has TOPICS = {TOPICS}",
        topics.len()
    );
    for (topic, count) in &log.subscriptions {
        assert!(
            *count == SUBSCRIBERS_PER_TOPIC,
            "on {broker}, check_isolation subscribed {count} receivers to {topic:?}, but the \
             workload has SUBSCRIBERS_PER_TOPIC = {SUBSCRIBERS_PER_TOPIC} for every topic"
        );
    }
    assert!(
        log.late_subscriptions == 0,
        "on {broker}, check_isolation made {} subscribe calls after the first publish had \
         started. Subscribe every receiver first: a subscriber is owed only the messages \
         published after it joined, so a late one cannot be given an exact count",
        log.late_subscriptions
    );

    assert!(
        log.publishes_started == TOTAL_PUBLISHED,
        "on {broker}, check_isolation published {} messages, but the workload publishes \
         PUBLISHERS * TOPICS * MESSAGES_PER_TOPIC = {TOTAL_PUBLISHED}",
        log.publishes_started
    );
    for topic in &topics {
        let count = log.publishes_per_topic.get(*topic).copied().unwrap_or(0);
        assert!(
            count == PUBLISHERS * MESSAGES_PER_TOPIC,
            "on {broker}, check_isolation published {count} messages to {topic:?}, but every \
             topic gets MESSAGES_PER_TOPIC = {MESSAGES_PER_TOPIC} from each of the \
             {PUBLISHERS} publishers"
        );
    }
    if let Some(text) = &log.repeated_text {
        panic!(
            "on {broker}, check_isolation published {text:?} more than once. Give every message \
             a text of its own, or a duplicate delivery cannot be told from a second publish"
        );
    }

    assert!(
        log.closes > 0,
        "check_isolation never closed {broker}. Close the broker once every publish has \
         returned, then read each receiver until recv() returns None: that is how the checker \
         knows nothing more will arrive"
    );
    assert!(
        log.started_at_close == TOTAL_PUBLISHED && log.returned_at_close == TOTAL_PUBLISHED,
        "check_isolation closed {broker} when {} of the {TOTAL_PUBLISHED} publishes had started \
         and {} had returned. Close only after every publisher has finished, because a \
         message published after close is owed to nobody",
        log.started_at_close,
        log.returned_at_close
    );
    assert!(
        log.publishes_after_close == 0,
        "check_isolation published {} messages to {broker} after closing it",
        log.publishes_after_close
    );
}

/// A faulty broker, described for failure messages.
struct Faulty {
    name: &'static str,
    fault: &'static str,
    expected: &'static str,
}

/// Returns the error of a checker that rejected `broker`, or panics when it
/// accepted it.
#[track_caller]
fn expect_rejected(result: Result<Report, IsolationError>, broker: &Faulty) -> IsolationError {
    match result {
        Err(err) => err,
        Ok(report) => panic!(
            "check_isolation accepted {} and returned Ok({report:?}), but that broker is faulty: \
             {}. It should return {}",
            broker.name, broker.fault, broker.expected
        ),
    }
}

/// Panics because the checker rejected `broker` with the wrong kind of error.
#[track_caller]
fn wrong_variant(err: &IsolationError, broker: &Faulty) -> ! {
    panic!(
        "check_isolation rejected {} with IsolationError::{} ({err}), but that broker's fault is \
         this: {}. It should return {}",
        broker.name,
        variant(err),
        broker.fault,
        broker.expected
    )
}

/// Panics unless `topic` and `subscriber` name a receiver the checker
/// subscribed.
#[track_caller]
fn expect_receiver(log: &Log, topic: &str, subscriber: usize, err: &IsolationError) {
    let Some(&count) = log.subscriptions.get(topic) else {
        panic!(
            "check_isolation returned {err:?}, but it never subscribed to topic {topic:?}; the \
             error must name the topic of the receiver where the problem showed"
        );
    };
    assert!(
        subscriber < count,
        "check_isolation returned {err:?}, but topic {topic:?} has only {count} subscribers, \
         so subscriber {subscriber} does not exist. The index counts the subscriptions to that \
         topic from 0, in the order they were made"
    );
}

/// Returns the topic and publish position of `message`, or panics when the
/// checker never published it.
#[track_caller]
fn expect_published<'a>(log: &'a Log, message: &str, err: &IsolationError) -> &'a (String, usize) {
    let Some(origin) = log.published.get(message) else {
        panic!(
            "check_isolation returned {err:?}, but it never published {message:?}; the error \
             must name a message exactly as it was received"
        );
    };
    origin
}

/// Panics unless a `Missing` error states the count every subscriber is
/// owed and a smaller count received.
#[track_caller]
fn expect_shortfall(expected: usize, received: usize, err: &IsolationError) {
    assert!(
        expected == EXPECTED_PER_SUBSCRIBER,
        "check_isolation returned {err:?}, but every subscriber is owed \
         EXPECTED_PER_SUBSCRIBER = {EXPECTED_PER_SUBSCRIBER} messages, so `expected` must be \
         that"
    );
    assert!(
        received < expected,
        "check_isolation returned {err:?}, which does not report a shortfall: `received` must \
         count the distinct messages the receiver got, fewer than `expected`"
    );
}

/// Returns the name of `err`'s variant.
fn variant(err: &IsolationError) -> &'static str {
    match err {
        IsolationError::Foreign { .. } => "Foreign",
        IsolationError::Duplicate { .. } => "Duplicate",
        IsolationError::Reordered { .. } => "Reordered",
        IsolationError::Missing { .. } => "Missing",
        IsolationError::TaskFailed { .. } => "TaskFailed",
    }
}

// ---------------------------------------------------------------------------
// Correct brokers

/// Advice when the checker rejects a broker that delivers inside publish.
const CORRECT_ADVICE: &str = "Subscribe every receiver before the first publish, publish each \
     message once, close after every publisher has finished, and compare each receiver's \
     messages with what was published to its own topic";

fn accepts_correct_broker() {
    // The correct broker delivers inside publish.
    let (result, log) = run_paused(CorrectBroker::new);
    expect_accepted(result, &log, "CorrectBroker", CORRECT_ADVICE);
}

fn accepts_correct_broker_on_threads() {
    // Real threads interleave the publishers and readers differently from a
    // single thread, and the checker must not depend on either.
    let (result, log) = run_on_threads();
    expect_accepted(
        result,
        &log,
        "CorrectBroker on four worker threads",
        CORRECT_ADVICE,
    );
}

fn accepts_slow_broker() {
    // Every delivery comes SLOW_LATENCY after its publish returned, so only a
    // checker that closes and drains sees all of them.
    let (result, log) = run_paused(SlowBroker::new);
    let advice = format!(
        "This broker delivers each message {} s after its publish returned. A checker that \
         waits a fixed time and then counts misses the latest ones; one that closes the broker \
         after the last publish and reads every receiver until it ends gets them all",
        SLOW_LATENCY.as_secs()
    );
    expect_accepted(result, &log, "SlowBroker", &advice);
}

// ---------------------------------------------------------------------------
// Faulty brokers

const SHARED_BUCKETS: Faulty = Faulty {
    name: "SharedBucketBroker",
    fault: "topics that hash to the same bucket share one list of subscribers, so a subscriber \
            also gets the messages of another topic",
    expected: "IsolationError::Foreign naming such a message",
};

fn rejects_shared_buckets() {
    let (result, log) = run_paused(SharedBucketBroker::new);
    let err = expect_rejected(result, &SHARED_BUCKETS);

    // The foreign message was published, but to another topic.
    let IsolationError::Foreign {
        topic,
        subscriber,
        message,
    } = &err
    else {
        wrong_variant(&err, &SHARED_BUCKETS);
    };
    expect_receiver(&log, topic, *subscriber, &err);
    let (published_to, _) = expect_published(&log, message, &err);
    assert!(
        published_to != topic,
        "check_isolation returned {err:?}, but {message:?} was published to {topic:?} itself, \
         so it is not foreign there"
    );
}

const FIRST_IN_BUCKET: Faulty = Faulty {
    name: "FirstInBucketBroker",
    fault: "when two topics share a hash bucket, the messages of both go to the subscribers of \
            the first one, and the other topic's subscribers get nothing, while the grand total \
            of deliveries stays exactly right",
    expected: "IsolationError::Foreign for a message that reached the wrong topic, or \
               IsolationError::Missing for a subscriber of the starved topic",
};

fn rejects_first_in_bucket() {
    let (result, log) = run_paused(FirstInBucketBroker::new);
    let err = expect_rejected(result, &FIRST_IN_BUCKET);

    // Both symptoms name the fault: which one is found first depends on the
    // order in which the checker looks at the topics.
    match &err {
        IsolationError::Foreign {
            topic,
            subscriber,
            message,
        } => {
            expect_receiver(&log, topic, *subscriber, &err);
            let (published_to, _) = expect_published(&log, message, &err);
            assert!(
                published_to != topic,
                "check_isolation returned {err:?}, but {message:?} was published to {topic:?} \
                 itself, so it is not foreign there"
            );
        }
        IsolationError::Missing {
            topic,
            subscriber,
            expected,
            received,
        } => {
            expect_receiver(&log, topic, *subscriber, &err);
            expect_shortfall(*expected, *received, &err);
        }
        _ => wrong_variant(&err, &FIRST_IN_BUCKET),
    }
}

const LOSSY_CLOSE: Faulty = Faulty {
    name: "LossyCloseBroker",
    fault: "close aborts the background task that delivers, so the latest messages never \
            arrive, although their publish calls had returned",
    expected: "IsolationError::Missing for a receiver that ended short",
};

fn rejects_lossy_close() {
    let (result, log) = run_paused(LossyCloseBroker::new);
    let err = expect_rejected(result, &LOSSY_CLOSE);

    let IsolationError::Missing {
        topic,
        subscriber,
        expected,
        received,
    } = &err
    else {
        wrong_variant(&err, &LOSSY_CLOSE);
    };
    expect_receiver(&log, topic, *subscriber, &err);
    expect_shortfall(*expected, *received, &err);
}

const DUPLICATING: Faulty = Faulty {
    name: "DuplicatingBroker",
    fault: "on close it delivers the last message of each topic a second time, as the very \
            last message before the receiver ends",
    expected: "IsolationError::Duplicate naming that message; read each receiver until it ends, \
               and keep every message you read",
};

fn rejects_duplicate_delivery() {
    let (result, log) = run_paused(DuplicatingBroker::new);
    let err = expect_rejected(result, &DUPLICATING);

    // The duplicate is a real message of the receiver's own topic.
    let IsolationError::Duplicate {
        topic,
        subscriber,
        message,
    } = &err
    else {
        wrong_variant(&err, &DUPLICATING);
    };
    expect_receiver(&log, topic, *subscriber, &err);
    let (published_to, _) = expect_published(&log, message, &err);
    assert!(
        published_to == topic,
        "check_isolation returned {err:?}, but {message:?} was published to {published_to:?}, \
         not to {topic:?}"
    );
}

const REORDERING: Faulty = Faulty {
    name: "ReorderingBroker",
    fault: "it delivers each batch of queued messages newest first, so every publisher's \
            messages arrive in reverse within a batch; none is lost or repeated",
    expected: "IsolationError::Reordered naming a message and the later one of the same \
               publisher that arrived before it",
};

fn rejects_reordered_delivery() {
    let (result, log) = run_paused(ReorderingBroker::new);
    let err = expect_rejected(result, &REORDERING);

    // `message` was published first but arrived after `after`.
    let IsolationError::Reordered {
        topic,
        subscriber,
        message,
        after,
    } = &err
    else {
        wrong_variant(&err, &REORDERING);
    };
    expect_receiver(&log, topic, *subscriber, &err);
    let (message_topic, message_position) = expect_published(&log, message, &err);
    let (after_topic, after_position) = expect_published(&log, after, &err);
    assert!(
        message_topic == topic && after_topic == topic,
        "check_isolation returned {err:?}, but both messages must have been published to \
         {topic:?}; they went to {message_topic:?} and {after_topic:?}"
    );
    assert!(
        message_position < after_position,
        "check_isolation returned {err:?}, but {message:?} was published after {after:?}, so \
         receiving it later is the right order. `message` is the one that arrived too late, \
         and `after` is the later-published one that overtook it"
    );
}

const CAPPED_FAN_OUT: Faulty = Faulty {
    name: "CappedFanOutBroker",
    fault: "it delivers to the first 64 subscribers of each topic only, and the others stay \
            subscribed but get nothing",
    expected: "IsolationError::Missing for one of those later subscribers; check every \
               subscriber, not one per topic",
};

fn rejects_capped_fan_out() {
    let (result, log) = run_paused(CappedFanOutBroker::new);
    let err = expect_rejected(result, &CAPPED_FAN_OUT);

    // Only subscribers past the limit miss anything, and they miss it all.
    let IsolationError::Missing {
        topic,
        subscriber,
        expected,
        received,
    } = &err
    else {
        wrong_variant(&err, &CAPPED_FAN_OUT);
    };
    expect_receiver(&log, topic, *subscriber, &err);
    expect_shortfall(*expected, *received, &err);
    assert!(
        *subscriber >= FAN_OUT_LIMIT,
        "check_isolation returned {err:?}, but the first {FAN_OUT_LIMIT} subscribers of each \
         topic, numbered from 0 in the order they subscribed, get every message here"
    );
    assert!(
        *received == 0,
        "check_isolation returned {err:?}, but subscriber {subscriber} of {topic:?} gets no \
         message at all from this broker, so `received` must be 0"
    );
}

//! Your own tests for task 1.
//!
//! Write tests here the way you would for any Rust code. They run against
//! your broker in src/exercise.rs. To earn a score of 3, at least one of them
//! must pass on your broker and fail on one of the buggy versions in
//! src/mutants/. The grader builds each buggy version, runs this file against
//! it, and reports how many you caught.
//!
//! The example below passes on a correct broker and on every buggy version, so
//! by itself it earns nothing. Think about what the contract promises that a
//! plausible mistake would break, and test that.
//!
//! `cargo test -p task01_basic --test mine` runs this file alone, also while
//! grading checks still fail.

use task01_basic::Broker;

#[tokio::test]
async fn subscriber_receives_published_message() {
    // One subscriber, one message on its topic.
    let broker = Broker::new();
    let mut inbox = broker.subscribe("greetings");
    broker.publish("greetings", "hello".to_owned());

    assert_eq!(inbox.recv().await.as_deref(), Some("hello"));
}

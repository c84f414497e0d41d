//! Your own tests for task 8.
//!
//! Tests here run against your `src/exercise.rs` like any `cargo test` test.
//! The grader also runs them against each buggy version in `src/mutants/`:
//! once every grading check passes, a test of yours that passes on your
//! solution and fails on at least one buggy version earns the task's third
//! point. The example below passes on every version, so it earns nothing yet.
//! Use it as a pattern for tests about the matching rules and the broker.
//!
//! The broker never blocks, so a test reads a receiver with `try_recv` and
//! needs no runtime. `cargo test -p task08_wildcards --test mine` runs this
//! file alone, also while grading checks still fail.

use task08_wildcards::{Broker, matches};
use tokio_util::sync::CancellationToken;

#[test]
fn star_pattern_receives_matching_subject() {
    // `orders.*` matches a subject with exactly one token after `orders`.
    assert!(matches("orders.*", "orders.created"));

    // The broker delivers a message published to that subject.
    let broker = Broker::new();
    let mut receiver = broker
        .subscribe(CancellationToken::new(), "orders.*", 4)
        .expect("orders.* is a valid pattern");
    let delivered = broker.publish("orders.created", "o-1".to_owned());
    assert_eq!(delivered, Ok(1));
    assert_eq!(receiver.try_recv(), Ok("o-1".to_owned()));
}

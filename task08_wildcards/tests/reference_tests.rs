//! The reference's own tests, written the way a learner could write them.
//!
//! Each one passes on the reference and fails on at least one buggy version
//! in `src/mutants/`. When the grader grades the reference, it runs them
//! together with `tests/mine.rs`. Cargo builds this file only with
//! `--features reference`, because Cargo.toml lists that feature in its
//! `required-features`.

#![cfg(feature = "reference")]

use task08_wildcards::{
    Broker, SubjectError, SubjectKind, matches, validate_pattern, validate_subject,
};
use tokio::sync::mpsc::error::TryRecvError;
use tokio_util::sync::CancellationToken;

#[test]
fn star_takes_exactly_one_token() {
    assert!(matches("a.*", "a.b"));
    assert!(!matches("a.*", "a.b.c"));
    assert!(!matches("a.*.c", "a.b.x.c"));
}

#[test]
fn tail_needs_at_least_one_token() {
    assert!(matches("orders.>", "orders.created"));
    assert!(!matches("orders.>", "orders"));
}

#[test]
fn literal_pattern_compares_whole_tokens() {
    assert!(!matches("foo.bar", "foo.barbaz"));
    assert!(!matches("foo.bar", "foo.bar.baz"));
}

#[test]
fn wildcard_inside_token_is_literal() {
    assert!(matches("ord*", "ord*"));
    assert!(!matches("ord*", "orders"));
}

#[test]
fn identical_invalid_strings_do_not_match() {
    assert!(!matches("a..b", "a..b"));
    assert!(!matches("a.*", "a.*"));
}

#[test]
fn empty_tokens_are_invalid() {
    let expected = SubjectError::EmptyToken {
        kind: SubjectKind::Subject,
        text: "a..b".to_owned(),
        position: 2,
    };
    assert_eq!(validate_subject("a..b"), Err(expected));
    assert!(!matches("a.b", "a..b"));
}

#[test]
fn tail_must_end_pattern() {
    let expected = SubjectError::TailNotLast {
        text: "a.>.b".to_owned(),
        position: 2,
    };
    assert_eq!(validate_pattern("a.>.b"), Err(expected));
}

#[test]
fn publish_to_wildcard_is_rejected() {
    // A subscriber on `>` would see whatever a wildcard publish let through.
    let broker = Broker::new();
    let mut everything = broker
        .subscribe(CancellationToken::new(), ">", 4)
        .expect("> is a valid pattern");

    let result = broker.publish("orders.*", "o-1".to_owned());

    assert!(result.is_err(), "publish to orders.* returned {result:?}");
    assert_eq!(everything.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn overlapping_patterns_get_one_copy_each() {
    let broker = Broker::new();
    let token = CancellationToken::new();
    let mut exact = broker
        .subscribe(token.clone(), "a.b", 4)
        .expect("a.b is a valid pattern");
    let mut star = broker
        .subscribe(token.clone(), "a.*", 4)
        .expect("a.* is a valid pattern");

    assert_eq!(broker.publish("a.b", "m".to_owned()), Ok(2));

    // Each subscription gets the message once, and nothing after it.
    assert_eq!(exact.try_recv(), Ok("m".to_owned()));
    assert_eq!(exact.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(star.try_recv(), Ok("m".to_owned()));
    assert_eq!(star.try_recv(), Err(TryRecvError::Empty));
}

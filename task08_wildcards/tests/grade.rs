//! Grading suite for task 8: NATS-style subjects, wildcard patterns, and a
//! broker that routes by them.
//!
//! The first checks run `matches` over tables of cases, one table per rule.
//! The rules are: literal tokens compare whole, `*` is exactly one token, `>`
//! is one or more trailing tokens, tokens such as `a*` are literals, and
//! invalid strings match nothing. Then come tables for `validate_subject` and
//! `validate_pattern`, which must return exactly the error a careful reader
//! of their docs expects, and a property test that compares `matches` with
//! a small model of the rules over thousands of generated cases.
//!
//! The broker checks publish to overlapping patterns, full buffers,
//! cancelled subscriptions and a closed broker, and from two threads at
//! once. They need no runtime: the
//! broker never blocks, so every receiver is read with `try_recv`.
//!
//! The last check compares the broker with a real `nats-server`: both get
//! the same generated subscriptions and publishes, and every subscription
//! must receive the same subjects, as many times, from both.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::StreamExt;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use task08_wildcards::{
    Broker, DEFAULT_BUFFER, SubjectError, SubjectKind, matches, validate_pattern, validate_subject,
};
use testkit::grading::Check;
use testkit::nats::NatsServer;
use testkit::runtime::multi_thread;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;
use tokio_util::sync::CancellationToken;

fn main() -> std::process::ExitCode {
    testkit::suite!()
        .check("source_examples_match", "matches", source_examples_match)
        .check(
            "literal_tokens_match_whole",
            "matches",
            literal_tokens_match_whole,
        )
        .check(
            "star_matches_exactly_one_token",
            "matches",
            star_matches_exactly_one_token,
        )
        .check(
            "tail_matches_one_or_more",
            "matches",
            tail_matches_one_or_more,
        )
        .check(
            "partial_wildcards_are_literal",
            "matches",
            partial_wildcards_are_literal,
        )
        .check(
            "invalid_strings_never_match",
            "matches",
            invalid_strings_never_match,
        )
        .check(
            "subject_validation_follows_nats",
            "validate_subject",
            subject_validation_follows_nats,
        )
        .check(
            "pattern_validation_follows_nats",
            "validate_pattern",
            pattern_validation_follows_nats,
        )
        .add_check(
            Check::new(
                "matches_agrees_with_model",
                "matches",
                matches_agrees_with_model,
            )
            .time_limit(Duration::from_secs(20)),
        )
        .check(
            "publish_reaches_matching_subscriptions",
            "Broker::publish",
            publish_reaches_matching_subscriptions,
        )
        .check(
            "overlapping_patterns_deliver_once",
            "Broker::publish",
            overlapping_patterns_deliver_once,
        )
        .check(
            "subscribe_rejects_invalid_pattern",
            "Broker::subscribe",
            subscribe_rejects_invalid_pattern,
        )
        .check(
            "publish_rejects_invalid_subject",
            "Broker::publish",
            publish_rejects_invalid_subject,
        )
        .check(
            "full_buffer_drops_message",
            "Broker::publish",
            full_buffer_drops_message,
        )
        .check(
            "cancelled_subscription_gets_nothing",
            "Broker::subscribe",
            cancelled_subscription_gets_nothing,
        )
        .check(
            "close_ends_every_receiver",
            "Broker::close",
            close_ends_every_receiver,
        )
        .check(
            "publish_from_several_threads",
            "Broker",
            publish_from_several_threads,
        )
        .add_check(
            Check::new("agrees_with_nats_server", "Broker", agrees_with_nats_server)
                .time_limit(Duration::from_secs(40))
                .timeout_cause(CROSS_CHECK_TIMEOUT),
        )
        .run()
}

/// Timeout cause of the cross-check, which talks to a real server.
const CROSS_CHECK_TIMEOUT: &str = "nats-server or the broker did not finish; the check \
     bounds its wait for the server, so look for a publish or subscribe that blocks";

// ---------------------------------------------------------------------------
// Tables for `matches`
// ---------------------------------------------------------------------------

/// One row of a table: pattern, subject, and whether they match.
type Case = (&'static str, &'static str, bool);

/// The publish example of the task: which patterns `orders.created.v2`
/// reaches, plus three cases a first version often gets wrong.
const SOURCE_EXAMPLES: &[Case] = &[
    ("orders.created.v2", "orders.created.v2", true),
    ("orders.*.v2", "orders.created.v2", true),
    ("orders.>", "orders.created.v2", true),
    (">", "orders.created.v2", true),
    ("orders.created", "orders.created.v2", false),
    ("orders.created.v3", "orders.created.v2", false),
    (">", "a.b", true),
    ("a.*", "a", false),
    ("a.>", "a", false),
];

const LITERAL_CASES: &[Case] = &[
    ("foo", "foo", true),
    ("foo.bar", "foo.bar", true),
    ("a.b.c.d.e", "a.b.c.d.e", true),
    ("foo.bar", "foo.barbaz", false),
    ("foo.bar", "foo.ba", false),
    ("foo.bar", "foo.bar.baz", false),
    ("foo.bar.baz", "foo.bar", false),
    ("foo", "foo.bar", false),
    ("foo", "foobar", false),
    ("foobar", "foo", false),
    ("foo.bar", "foobar", false),
    ("foo.bar", "bar.foo", false),
    ("Foo", "foo", false),
    ("héllo.wörld", "héllo.wörld", true),
    ("héllo.wörld", "hello.world", false),
];

const STAR_CASES: &[Case] = &[
    ("*", "a", true),
    ("*", "a.b", false),
    ("a.*", "a.b", true),
    ("a.*", "a.b.c", false),
    ("*.b", "a.b", true),
    ("*.b", "b", false),
    ("*.b", "a.x.b", false),
    ("a.*.c", "a.b.c", true),
    ("a.*.c", "a.c", false),
    ("a.*.c", "a.b.x.c", false),
    ("a.*.c", "a.b.d", false),
    ("*.*", "a.b", true),
    ("*.*", "a", false),
    ("*.*", "a.b.c", false),
    ("*.*.*", "a.b.c", true),
    ("*", "a*", true),
];

const TAIL_CASES: &[Case] = &[
    (">", "a", true),
    (">", "a.b.c", true),
    ("a.>", "a.b", true),
    ("a.>", "a.b.c.d", true),
    ("a.>", "a", false),
    ("a.>", "b.c", false),
    ("a.>", "ab.c", false),
    ("a.b.>", "a.b.c", true),
    ("a.b.>", "a.b", false),
    ("a.b.>", "a.c.d", false),
    ("*.>", "a.b", true),
    ("*.>", "a", false),
    ("a.*.>", "a.b.c", true),
    ("a.*.>", "a.b", false),
    (">", "b>", true),
];

const PARTIAL_CASES: &[Case] = &[
    ("a*", "a*", true),
    ("a*", "ab", false),
    ("a*", "a", false),
    ("ord*.created", "orders.created", false),
    ("*a", "*a", true),
    ("*a", "ba", false),
    ("a>", "a>", true),
    ("a>", "a.b", false),
    ("a>", "ab", false),
    ("foo.b>", "foo.b.c", false),
    ("x.a*.y", "x.a*.y", true),
    ("x.a*.y", "x.abc.y", false),
    ("**", "ab", false),
    (">>", "a", false),
];

/// Invalid patterns or subjects, which match nothing, not even an identical
/// string.
const INVALID_CASES: &[Case] = &[
    ("", "", false),
    ("a..b", "a..b", false),
    ("a.b", "a..b", false),
    ("a..b", "a.b", false),
    (".a", ".a", false),
    (".a", "a", false),
    ("a.", "a.", false),
    ("a", "a.", false),
    (">", "a..b", false),
    (">", "a.b.", false),
    ("a.*", "a.*", false),
    ("a.*", "a.>", false),
    ("a.>", "a.>", false),
    ("*", "*", false),
    (">", ">", false),
    (">", "*", false),
    ("a.>.b", "a.x.b", false),
    ("a.>.b", "a.x.c", false),
    ("a.>.b", "a.>.b", false),
    ("a b", "a b", false),
    ("a.*", "a. ", false),
    ("a.*", "a.\t", false),
    (">", "a.b\n", false),
];

/// Runs `matches` on every row of `cases` and panics with each row that
/// returned the wrong result, followed by `rule`.
#[track_caller]
fn check_cases(cases: &[Case], rule: &str) {
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|&(pattern, subject, expected)| {
            let actual = matches(pattern, subject);
            (actual != expected).then(|| {
                format!(
                    "  matches({pattern:?}, {subject:?}) returned {actual}, expected {expected}"
                )
            })
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} cases are wrong:\n{}\n{rule}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

fn source_examples_match() {
    check_cases(
        SOURCE_EXAMPLES,
        "A message published to orders.created.v2 reaches orders.created.v2, orders.*.v2, \
         orders.> and >, but not orders.created or orders.created.v3. `*` needs exactly one \
         token and `>` at least one.",
    );
}

fn literal_tokens_match_whole() {
    check_cases(
        LITERAL_CASES,
        "A pattern without wildcards matches only the identical subject: tokens compare \
         whole and case-sensitively, and both must have the same number of tokens. Comparing \
         string prefixes lets foo.bar match foo.barbaz.",
    );
}

fn star_matches_exactly_one_token() {
    check_cases(
        STAR_CASES,
        "`*` matches exactly one token, whatever it is: never zero tokens and never two.",
    );
}

fn tail_matches_one_or_more() {
    check_cases(
        TAIL_CASES,
        "`>` as the last token matches one or more tokens: a.> matches a.b and a.b.c but not \
         a itself.",
    );
}

fn partial_wildcards_are_literal() {
    check_cases(
        PARTIAL_CASES,
        "Only a whole token `*` or `>` is a wildcard. A token that merely contains one, such \
         as a* or b>, is a literal and matches only the identical token.",
    );
}

fn invalid_strings_never_match() {
    check_cases(
        INVALID_CASES,
        "An invalid pattern or subject matches nothing, not even an identical string: empty \
         tokens, whitespace, a `>` before the last token, and wildcards in a subject are all \
         invalid. Check validity before any shortcut for identical strings.",
    );
}

// ---------------------------------------------------------------------------
// Validation tables
// ---------------------------------------------------------------------------

fn empty_token(kind: SubjectKind, text: &str, position: usize) -> SubjectError {
    SubjectError::EmptyToken {
        kind,
        text: text.to_owned(),
        position,
    }
}

fn whitespace(kind: SubjectKind, text: &str, position: usize, token: &str) -> SubjectError {
    SubjectError::Whitespace {
        kind,
        text: text.to_owned(),
        position,
        token: token.to_owned(),
    }
}

fn wildcard(text: &str, position: usize, wildcard: char) -> SubjectError {
    SubjectError::WildcardInSubject {
        text: text.to_owned(),
        position,
        wildcard,
    }
}

fn tail_not_last(text: &str, position: usize) -> SubjectError {
    SubjectError::TailNotLast {
        text: text.to_owned(),
        position,
    }
}

/// Runs `validate` on every row and panics with each row whose result
/// differs from the expected one, followed by `rule`.
#[track_caller]
fn check_validation(
    name: &str,
    validate: fn(&str) -> Result<(), SubjectError>,
    cases: &[(&str, Result<(), SubjectError>)],
    rule: &str,
) {
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|(text, expected)| {
            let actual = validate(text);
            (actual != *expected).then(|| {
                format!("  {name}({text:?}) returned {actual:?},\n    expected {expected:?}")
            })
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} cases are wrong:\n{}\n{rule}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

fn subject_validation_follows_nats() {
    use SubjectKind::Subject;
    let cases = [
        ("orders", Ok(())),
        ("orders.created.v2", Ok(())),
        ("a*", Ok(())),
        ("b>", Ok(())),
        ("a.b*c.>d", Ok(())),
        ("héllo.wörld", Ok(())),
        ("", Err(SubjectError::Empty { kind: Subject })),
        (".", Err(empty_token(Subject, ".", 1))),
        (".a", Err(empty_token(Subject, ".a", 1))),
        ("a.", Err(empty_token(Subject, "a.", 2))),
        ("a..b", Err(empty_token(Subject, "a..b", 2))),
        ("a.b..", Err(empty_token(Subject, "a.b..", 3))),
        ("a b", Err(whitespace(Subject, "a b", 1, "a b"))),
        ("a.\tb", Err(whitespace(Subject, "a.\tb", 2, "\tb"))),
        ("a.b\r\n", Err(whitespace(Subject, "a.b\r\n", 2, "b\r\n"))),
        ("a.\x0c", Err(whitespace(Subject, "a.\x0c", 2, "\x0c"))),
        ("*", Err(wildcard("*", 1, '*'))),
        (">", Err(wildcard(">", 1, '>'))),
        ("orders.*", Err(wildcard("orders.*", 2, '*'))),
        ("orders.>", Err(wildcard("orders.>", 2, '>'))),
        ("a.*.>", Err(wildcard("a.*.>", 2, '*'))),
        ("a.* .*", Err(whitespace(Subject, "a.* .*", 2, "* "))),
        ("a..*", Err(empty_token(Subject, "a..*", 2))),
    ];
    check_validation(
        "validate_subject",
        validate_subject,
        &cases,
        "A subject has one or more tokens separated by '.', none empty, none with a space, \
         tab, newline, carriage return or form feed, and none that is the wildcard * or >. \
         The error names the first offending token from the left, counting from 1; within a \
         token, emptiness comes first, then whitespace, then the wildcard rule.",
    );
}

fn pattern_validation_follows_nats() {
    use SubjectKind::Pattern;
    let cases = [
        ("orders", Ok(())),
        ("orders.*", Ok(())),
        ("orders.>", Ok(())),
        (">", Ok(())),
        ("*", Ok(())),
        ("*.*.>", Ok(())),
        ("a*.b>", Ok(())),
        ("a>.b", Ok(())),
        ("", Err(SubjectError::Empty { kind: Pattern })),
        (".>", Err(empty_token(Pattern, ".>", 1))),
        ("a..*", Err(empty_token(Pattern, "a..*", 2))),
        ("orders.", Err(empty_token(Pattern, "orders.", 2))),
        ("a.>.b", Err(tail_not_last("a.>.b", 2))),
        (">.a", Err(tail_not_last(">.a", 1))),
        (">.>", Err(tail_not_last(">.>", 1))),
        ("a.>.", Err(tail_not_last("a.>.", 2))),
        ("a. .b", Err(whitespace(Pattern, "a. .b", 2, " "))),
        (
            "or ders.*",
            Err(whitespace(Pattern, "or ders.*", 1, "or ders")),
        ),
        ("*.\n", Err(whitespace(Pattern, "*.\n", 2, "\n"))),
    ];
    check_validation(
        "validate_pattern",
        validate_pattern,
        &cases,
        "A pattern follows the subject rules, except that a token may be * and the last \
         token may be >. A > with tokens after it is TailNotLast. The error names the first \
         offending token from the left, counting from 1.",
    );
}

// ---------------------------------------------------------------------------
// Property test against a model
// ---------------------------------------------------------------------------

/// Literal tokens of the generated strings. A small alphabet makes matches
/// frequent; `ab` is a longer token starting like `a`, and `a*`, `b>` are
/// literals that contain wildcard characters.
const LITERALS: &[&str] = &["a", "b", "ab", "a*", "b>"];

/// Seed of the property test's random numbers, fixed so that every run
/// checks the same cases.
const PROPERTY_SEED: [u8; 32] = [8; 32];

/// Cases the property test generates.
const PROPERTY_CASES: u32 = 3000;

/// Generates a dotted string of one to four tokens: mostly literals, with
/// the given weights of `*`, `>`, empty tokens and tokens with a space.
fn dotted(star: u32, tail: u32, empty: u32, spaced: u32) -> impl Strategy<Value = String> {
    let token = prop_oneof![
        12 => prop::sample::select(LITERALS).prop_map(str::to_owned),
        star => Just("*".to_owned()),
        tail => Just(">".to_owned()),
        empty => Just(String::new()),
        spaced => Just("a b".to_owned()),
    ];
    prop::collection::vec(token, 1..=4).prop_map(|tokens| tokens.join("."))
}

/// Returns whether `tokens` form a valid pattern or, with `pattern` false, a
/// valid subject, by rules written independently of any implementation.
fn model_valid(tokens: &[&str], pattern: bool) -> bool {
    tokens
        .iter()
        .enumerate()
        .all(|(index, token)| match *token {
            "*" => pattern,
            ">" => pattern && index + 1 == tokens.len(),
            other => !other.is_empty() && !other.contains([' ', '\t', '\n', '\r', '\x0c']),
        })
}

/// Returns whether the subject tokens match the pattern tokens, by recursion
/// on the first token of each.
fn model_tokens(pattern: &[&str], subject: &[&str]) -> bool {
    match (pattern, subject) {
        ([], []) => true,
        ([">"], [_, ..]) => true,
        (["*", pattern_rest @ ..], [_, subject_rest @ ..]) => {
            model_tokens(pattern_rest, subject_rest)
        }
        ([wanted, pattern_rest @ ..], [token, subject_rest @ ..]) => {
            wanted == token && model_tokens(pattern_rest, subject_rest)
        }
        _ => false,
    }
}

fn model_matches(pattern: &str, subject: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('.').collect();
    let subject: Vec<&str> = subject.split('.').collect();
    model_valid(&pattern, true) && model_valid(&subject, false) && model_tokens(&pattern, &subject)
}

fn matches_agrees_with_model() {
    // A first call outside the runner, so an unfinished `matches` fails
    // with its own message instead of thousands of shrinking attempts.
    let _ = matches("a.*", "a.b");

    // No persistence file and a fixed seed: every run checks the same cases.
    let config = Config {
        cases: PROPERTY_CASES,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &PROPERTY_SEED);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let strategy = (dotted(3, 2, 1, 1), dotted(1, 1, 1, 1));
    let result = runner.run(&strategy, |(pattern, subject)| {
        if matches(&pattern, &subject) == model_matches(&pattern, &subject) {
            Ok(())
        } else {
            Err(TestCaseError::fail("matches and the model disagree"))
        }
    });

    match result {
        Ok(()) => {}
        Err(TestError::Fail(_, (pattern, subject))) => {
            let expected = model_matches(&pattern, &subject);
            panic!(
                "matches({pattern:?}, {subject:?}) returned {}, expected {expected}; this is \
                 the smallest failing case among {PROPERTY_CASES} generated pairs of pattern \
                 and subject. The expected answer comes from a model of the rules: tokens \
                 split at '.', `*` is one token, a final `>` one or more, and an invalid \
                 string matches nothing.",
                !expected
            )
        }
        Err(TestError::Abort(reason)) => panic!("the property test stopped early: {reason}"),
    }
}

// ---------------------------------------------------------------------------
// Broker checks
// ---------------------------------------------------------------------------

/// What a receiver yields without waiting.
#[derive(Debug)]
struct Drained {
    messages: Vec<String>,
    // `true` when the receiver has ended, `false` when it is only empty.
    ended: bool,
}

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

#[track_caller]
fn subscribe(broker: &Broker<String>, pattern: &str, buffer: usize) -> mpsc::Receiver<String> {
    broker
        .subscribe(CancellationToken::new(), pattern, buffer)
        .unwrap_or_else(|err| panic!("subscribe to the valid pattern {pattern:?} failed: {err}"))
}

#[track_caller]
fn publish(broker: &Broker<String>, subject: &str, msg: &str) -> usize {
    broker
        .publish(subject, msg.to_owned())
        .unwrap_or_else(|err| panic!("publish to the valid subject {subject:?} failed: {err}"))
}

fn publish_reaches_matching_subscriptions() {
    // Patterns, and whether each matches orders.created.v2.
    let patterns = [
        ("orders.created.v2", true),
        ("orders.*.v2", true),
        ("orders.>", true),
        (">", true),
        ("*.created.*", true),
        ("orders.created", false),
        ("orders.created.v3", false),
        ("orders.*", false),
        ("invoices.>", false),
    ];
    let broker = Broker::<String>::new();
    let mut receivers: Vec<_> = patterns
        .iter()
        .map(|(pattern, _)| subscribe(&broker, pattern, 4))
        .collect();

    // One publish; the return value counts the subscriptions that got it.
    let delivered = publish(&broker, "orders.created.v2", "o-1");
    let expected_count = patterns.iter().filter(|(_, hit)| *hit).count();

    for ((pattern, hit), receiver) in patterns.iter().zip(&mut receivers) {
        let got = drain(receiver).messages;
        let expected: &[&str] = if *hit { &["o-1"] } else { &[] };
        assert_eq!(
            got, expected,
            "after publish(\"orders.created.v2\", \"o-1\"), the subscription to {pattern:?} \
             got {got:?}, expected {expected:?}"
        );
    }
    assert_eq!(
        delivered, expected_count,
        "publish(\"orders.created.v2\") returned {delivered}, but {expected_count} \
         subscriptions received the message; publish returns how many received it"
    );
}

fn overlapping_patterns_deliver_once() {
    // Every pattern matches a.b, and two subscriptions share a pattern.
    let patterns = ["a.b", "a.b", "a.*", "*.b", "*.*", "a.>", ">"];
    let broker = Broker::<String>::new();
    let mut receivers: Vec<_> = patterns
        .iter()
        .map(|pattern| subscribe(&broker, pattern, 8))
        .collect();

    let delivered = publish(&broker, "a.b", "m");
    for (pattern, receiver) in patterns.iter().zip(&mut receivers) {
        let copies = drain(receiver).messages.len();
        assert_eq!(
            copies, 1,
            "one publish to \"a.b\" gave the subscription to {pattern:?} {copies} copies; \
             each matching subscription gets exactly one, however many other patterns also \
             match"
        );
    }
    assert_eq!(
        delivered,
        patterns.len(),
        "publish(\"a.b\") returned {delivered} with {} matching subscriptions, one copy each",
        patterns.len()
    );

    // A longer subject reaches only the `>` patterns, once each.
    let delivered = publish(&broker, "a.b.c", "n");
    for (pattern, receiver) in patterns.iter().zip(&mut receivers) {
        let got = drain(receiver).messages;
        let expected: &[&str] = if pattern.ends_with('>') { &["n"] } else { &[] };
        assert_eq!(
            got, expected,
            "after publish(\"a.b.c\", \"n\"), the subscription to {pattern:?} got {got:?}, \
             expected {expected:?}"
        );
    }
    assert_eq!(delivered, 2, "publish(\"a.b.c\") must reach a.> and >");
}

fn subscribe_rejects_invalid_pattern() {
    use SubjectKind::Pattern;
    let broker = Broker::<String>::new();
    let cases = [
        ("", SubjectError::Empty { kind: Pattern }),
        ("a..b", empty_token(Pattern, "a..b", 2)),
        ("a.>.b", tail_not_last("a.>.b", 2)),
        ("a. b", whitespace(Pattern, "a. b", 2, " b")),
    ];
    for (pattern, expected) in cases {
        match broker.subscribe(CancellationToken::new(), pattern, 4) {
            Ok(_) => panic!(
                "subscribe({pattern:?}) succeeded, expected Err({expected:?}); subscribe \
                 validates the pattern like validate_pattern"
            ),
            Err(err) => assert_eq!(
                err, expected,
                "subscribe({pattern:?}) returned the wrong error"
            ),
        }
    }

    // Nothing was registered: a subject that a.>.b would match reaches no one.
    let delivered = publish(&broker, "a.x.b", "m");
    assert_eq!(
        delivered, 0,
        "publish(\"a.x.b\") reached {delivered} subscriptions, but every subscribe so far \
         was rejected"
    );
}

fn publish_rejects_invalid_subject() {
    use SubjectKind::Subject;
    let broker = Broker::<String>::new();
    let mut everything = subscribe(&broker, ">", 16);
    let mut star = subscribe(&broker, "a.*", 16);

    let cases = [
        ("a.*", wildcard("a.*", 2, '*')),
        ("a.>", wildcard("a.>", 2, '>')),
        ("*", wildcard("*", 1, '*')),
        (">", wildcard(">", 1, '>')),
        ("a..b", empty_token(Subject, "a..b", 2)),
        ("", SubjectError::Empty { kind: Subject }),
        ("a. ", whitespace(Subject, "a. ", 2, " ")),
    ];
    for (subject, expected) in cases {
        let result = broker.publish(subject, "m".to_owned());
        assert_eq!(
            result,
            Err(expected),
            "publish({subject:?}) must be rejected like validate_subject rejects it: a \
             subject names one concrete place, so wildcards are for patterns only"
        );
    }

    // Rejected publishes deliver nothing.
    for (pattern, receiver) in [(">", &mut everything), ("a.*", &mut star)] {
        let got = drain(receiver).messages;
        assert!(
            got.is_empty(),
            "the subscription to {pattern:?} got {got:?} from publishes that were all invalid"
        );
    }
}

fn full_buffer_drops_message() {
    let broker = Broker::<String>::new();

    // A buffer of 2 takes two messages; the third is dropped, not waited for.
    let mut small = subscribe(&broker, "jobs", 2);
    let counts: Vec<usize> = ["j1", "j2", "j3"]
        .iter()
        .map(|msg| publish(&broker, "jobs", msg))
        .collect();
    assert_eq!(
        counts,
        [1, 1, 0],
        "three publishes to a subscription with buffer 2 returned {counts:?}; a full \
         buffer drops the message and publish does not count it"
    );
    let got = drain(&mut small).messages;
    assert_eq!(got, ["j1", "j2"], "the receiver with buffer 2 got {got:?}");

    // A buffer of 0 means DEFAULT_BUFFER.
    let mut default = subscribe(&broker, "logs", 0);
    let accepted: usize = (0..=DEFAULT_BUFFER)
        .map(|index| publish(&broker, "logs", &format!("l{index}")))
        .sum();
    let got = drain(&mut default).messages.len();
    assert_eq!(
        (accepted, got),
        (DEFAULT_BUFFER, DEFAULT_BUFFER),
        "{} publishes to a subscription with buffer 0 were accepted {accepted} times and \
         {got} arrived; buffer 0 means DEFAULT_BUFFER ({DEFAULT_BUFFER})",
        DEFAULT_BUFFER + 1
    );
}

fn cancelled_subscription_gets_nothing() {
    let broker = Broker::<String>::new();
    let mut other = subscribe(&broker, "a.*", 8);

    // An already-cancelled token yields an ended receiver.
    let cancelled = CancellationToken::new();
    cancelled.cancel();
    let mut early = broker
        .subscribe(cancelled, "a.*", 8)
        .unwrap_or_else(|err| panic!("subscribe with a cancelled token failed: {err}"));
    let drained = drain(&mut early);
    assert!(
        drained.ended && drained.messages.is_empty(),
        "subscribe with an already-cancelled token must return a receiver that has ended, \
         but it yielded {:?} and ended: {}",
        drained.messages,
        drained.ended
    );

    // A token cancelled later: buffered messages stay, later ones never come.
    let token = CancellationToken::new();
    let mut late = broker
        .subscribe(token.clone(), "a.*", 8)
        .unwrap_or_else(|err| panic!("subscribe to \"a.*\" failed: {err}"));
    let before = publish(&broker, "a.x", "before");
    token.cancel();
    let after = publish(&broker, "a.y", "after");
    assert_eq!(
        (before, after),
        (2, 1),
        "with two subscriptions to a.*, publish returned {before} before one token was \
         cancelled and {after} after; a cancelled subscription gets nothing more"
    );
    let drained = drain(&mut late);
    assert!(
        drained.messages == ["before"] && drained.ended,
        "the cancelled subscription yielded {:?} and ended: {}; expected [\"before\"] and \
         then the end, because the publish after cancel() removes it",
        drained.messages,
        drained.ended
    );

    // A dropped receiver is neither counted nor disturbs the others.
    let dropped = subscribe(&broker, "a.*", 8);
    drop(dropped);
    let delivered = publish(&broker, "a.z", "last");
    assert_eq!(
        delivered, 1,
        "publish returned {delivered} with one live subscription and one dropped receiver"
    );
    let got = drain(&mut other).messages;
    assert_eq!(
        got,
        ["before", "after", "last"],
        "the uncancelled subscription got {got:?}"
    );
}

fn close_ends_every_receiver() {
    let broker = Broker::<String>::new();
    let token = CancellationToken::new();
    let mut first = broker
        .subscribe(token.clone(), "a.>", 4)
        .unwrap_or_else(|err| panic!("subscribe to \"a.>\" failed: {err}"));
    let mut second = subscribe(&broker, ">", 4);
    assert_eq!(publish(&broker, "a.b", "kept"), 2);

    broker.close();

    // Each receiver yields what it buffered, then ends.
    for (pattern, receiver) in [("a.>", &mut first), (">", &mut second)] {
        let drained = drain(receiver);
        assert!(
            drained.messages == ["kept"] && drained.ended,
            "after close, the subscription to {pattern:?} yielded {:?} and ended: {}; \
             expected [\"kept\"] and then the end",
            drained.messages,
            drained.ended
        );
    }
    assert!(
        !token.is_cancelled(),
        "close cancelled a token that the caller passed to subscribe; it belongs to the caller"
    );

    // After close: publish delivers nothing but still validates.
    assert_eq!(
        broker.publish("a.b", "late".to_owned()),
        Ok(0),
        "publish after close must deliver nothing and return Ok(0)"
    );
    assert_eq!(
        broker.publish("a.*", "late".to_owned()),
        Err(wildcard("a.*", 2, '*')),
        "publish after close must still reject an invalid subject"
    );

    // Subscribe after close returns an ended receiver; close again is harmless.
    let mut late = subscribe(&broker, "a.>", 4);
    let drained = drain(&mut late);
    assert!(
        drained.ended,
        "subscribe after close must return a receiver that has already ended"
    );
    assert!(
        broker
            .subscribe(CancellationToken::new(), "a..b", 4)
            .is_err(),
        "subscribe after close must still reject an invalid pattern"
    );
    broker.close();
}

fn publish_from_several_threads() {
    // Sharing `&Broker` between threads compiles only when it is `Sync`.
    let broker = Broker::<String>::new();
    let mut everything = subscribe(&broker, ">", 256);
    let per_thread = 50;

    // Two threads publish at once, each to its own subject.
    let delivered: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = ["t.a", "t.b"]
            .into_iter()
            .map(|subject| {
                let broker = &broker;
                scope.spawn(move || {
                    (0..per_thread)
                        .map(|index| publish(broker, subject, &format!("{subject}-{index}")))
                        .sum::<usize>()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("a publishing thread panicked"))
            .sum()
    });

    let got = drain(&mut everything).messages;
    assert_eq!(
        (delivered, got.len()),
        (2 * per_thread, 2 * per_thread),
        "two threads each published {per_thread} messages to a subscription to \">\" with \
         room for all; publish counted {delivered} deliveries and {} arrived",
        got.len()
    );
    for subject in ["t.a", "t.b"] {
        let arrived: Vec<&str> = got
            .iter()
            .map(String::as_str)
            .filter(|message| message.starts_with(subject))
            .collect();
        let expected: Vec<String> = (0..per_thread)
            .map(|index| format!("{subject}-{index}"))
            .collect();
        assert!(
            arrived
                .iter()
                .copied()
                .eq(expected.iter().map(String::as_str)),
            "the messages one thread published to {subject} arrived out of order or incomplete"
        );
    }
}

// ---------------------------------------------------------------------------
// Cross-check with nats-server
// ---------------------------------------------------------------------------

/// Seed of the generated patterns and subjects.
const CROSS_CHECK_SEED: u64 = 0x5eed_0008;

/// Patterns that every run includes, for the rules that random patterns
/// might miss.
const FIXED_PATTERNS: &[&str] = &[">", "a.>", "*", "a.*.ab", "a*", "b.*.>"];

const PATTERN_COUNT: usize = 20;
const SUBJECT_COUNT: usize = 60;

/// Subject of the message that marks the end of the publishes. It is outside
/// the generated alphabet, so its copies on patterns such as `>` are easy to
/// leave out.
const SYNC_SUBJECT: &str = "_SYNC.done";

/// Real time the conversation with nats-server may take.
const NATS_LIMIT: Duration = Duration::from_secs(20);

/// Copies of each subject that each subscription received, keyed by the
/// subscription's index and the subject.
type Deliveries = BTreeMap<(usize, String), usize>;

/// A small deterministic generator (SplitMix64), so that every run
/// generates the same cases without a dependency.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    fn literal(&mut self) -> &'static str {
        LITERALS[self.below(LITERALS.len())]
    }
}

fn generate_patterns(rng: &mut SplitMix) -> Vec<String> {
    let mut patterns: Vec<String> = FIXED_PATTERNS.iter().map(|&p| p.to_owned()).collect();
    while patterns.len() < PATTERN_COUNT {
        let length = 1 + rng.below(4);
        let tokens: Vec<&str> = (0..length)
            .map(|index| match rng.below(10) {
                0 | 1 => "*",
                2 if index + 1 == length => ">",
                _ => rng.literal(),
            })
            .collect();
        patterns.push(tokens.join("."));
    }
    patterns
}

/// Generates subjects: a third at random, the rest by filling in a random
/// pattern's wildcards, where `>` takes zero to two tokens so that the
/// subjects just short of a match are there too.
fn generate_subjects(rng: &mut SplitMix, patterns: &[String]) -> Vec<String> {
    let mut subjects = BTreeSet::new();
    while subjects.len() < SUBJECT_COUNT {
        let tokens: Vec<&str> = if rng.below(3) == 0 {
            (0..1 + rng.below(4)).map(|_| rng.literal()).collect()
        } else {
            let pattern = &patterns[rng.below(patterns.len())];
            let mut tokens = Vec::new();
            for token in pattern.split('.') {
                match token {
                    "*" => tokens.push(rng.literal()),
                    ">" => {
                        for _ in 0..rng.below(3) {
                            tokens.push(rng.literal());
                        }
                    }
                    literal => tokens.push(literal),
                }
            }
            tokens
        };
        if !tokens.is_empty() {
            subjects.insert(tokens.join("."));
        }
    }
    subjects.into_iter().collect()
}

/// Subscribes every pattern on the learner's broker, publishes every
/// subject, and counts what each subscription received.
fn broker_deliveries(patterns: &[String], subjects: &[String]) -> Deliveries {
    let broker = Broker::<String>::new();
    // Room for two copies of every subject, so a full buffer hides nothing.
    let buffer = 2 * SUBJECT_COUNT + 8;
    let mut receivers: Vec<_> = patterns
        .iter()
        .map(|pattern| subscribe(&broker, pattern, buffer))
        .collect();
    for subject in subjects {
        publish(&broker, subject, subject);
    }

    let mut deliveries = Deliveries::new();
    for (index, receiver) in receivers.iter_mut().enumerate() {
        for subject in drain(receiver).messages {
            *deliveries.entry((index, subject)).or_default() += 1;
        }
    }
    deliveries
}

/// Does the same on nats-server at `url`.
async fn nats_deliveries(
    url: &str,
    patterns: &[String],
    subjects: &[String],
) -> Result<Deliveries, String> {
    let client = async_nats::connect(url)
        .await
        .map_err(|err| format!("could not connect to nats-server at {url}: {err}"))?;
    let mut subscribers = Vec::new();
    for pattern in patterns {
        let subscriber = client
            .subscribe(pattern.clone())
            .await
            .map_err(|err| format!("nats-server rejected the subscription {pattern:?}: {err}"))?;
        subscribers.push(subscriber);
    }
    let mut sync = client
        .subscribe(SYNC_SUBJECT)
        .await
        .map_err(|err| format!("could not subscribe to {SYNC_SUBJECT}: {err}"))?;
    for subject in subjects {
        client
            .publish(subject.clone(), subject.clone().into())
            .await
            .map_err(|err| format!("could not publish to {subject:?}: {err}"))?;
    }

    // The server handles one connection's messages in order and sends the
    // client its messages in order, so once the sync message is back, every
    // earlier message has reached its subscription.
    client
        .publish(SYNC_SUBJECT, "".into())
        .await
        .map_err(|err| format!("could not publish to {SYNC_SUBJECT}: {err}"))?;
    if sync.next().await.is_none() {
        return Err("the connection to nats-server ended before the sync message".to_owned());
    }

    // Unsubscribing closes each subscription, which then yields what it has.
    let mut deliveries = Deliveries::new();
    for (index, mut subscriber) in subscribers.into_iter().enumerate() {
        subscriber
            .unsubscribe()
            .await
            .map_err(|err| format!("could not unsubscribe: {err}"))?;
        while let Some(message) = subscriber.next().await {
            if message.subject.as_str() != SYNC_SUBJECT {
                *deliveries
                    .entry((index, message.subject.to_string()))
                    .or_default() += 1;
            }
        }
    }
    Ok(deliveries)
}

fn agrees_with_nats_server() {
    // The same generated patterns and subjects for both.
    let mut rng = SplitMix(CROSS_CHECK_SEED);
    let patterns = generate_patterns(&mut rng);
    let subjects = generate_subjects(&mut rng, &patterns);

    // The broker first, so an unfinished one fails before a server starts.
    let ours = broker_deliveries(&patterns, &subjects);

    let server = NatsServer::start().unwrap_or_else(|err| panic!("{err}"));
    let theirs = multi_thread(2, async {
        tokio::time::timeout(
            NATS_LIMIT,
            nats_deliveries(server.url(), &patterns, &subjects),
        )
        .await
    });
    let theirs = match theirs {
        Ok(Ok(deliveries)) => deliveries,
        Ok(Err(problem)) => panic!("{problem}"),
        Err(_) => panic!(
            "nats-server at {} did not answer within {} s",
            server.url(),
            NATS_LIMIT.as_secs()
        ),
    };

    // Compare the counts of every (subscription, subject) pair.
    let keys: BTreeSet<&(usize, String)> = ours.keys().chain(theirs.keys()).collect();
    let differences: Vec<String> = keys
        .into_iter()
        .filter_map(|key| {
            let (index, subject) = key;
            let ours = ours.get(key).copied().unwrap_or(0);
            let theirs = theirs.get(key).copied().unwrap_or(0);
            (ours != theirs).then(|| {
                format!(
                    "  pattern {:?}, subject {subject:?}: nats-server delivered {theirs}, your \
                     broker {ours}",
                    patterns[*index]
                )
            })
        })
        .collect();
    let total_theirs: usize = theirs.values().sum();
    assert!(
        total_theirs > 0,
        "nats-server delivered nothing for {} patterns and {} subjects, so the comparison \
         proves nothing",
        patterns.len(),
        subjects.len()
    );
    assert!(
        differences.is_empty(),
        "your broker and nats-server at {} disagree on {} of {} (pattern, subject) pairs; \
         a NATS server implements the rules this task describes, so the counts it delivered \
         are the expected ones. The first differences:\n{}",
        server.url(),
        differences.len(),
        patterns.len() * subjects.len(),
        differences
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n"),
    );
}

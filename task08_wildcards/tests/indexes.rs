//! Tests of the reference's two pattern indexes against each other.
//!
//! `LinearIndex` calls `matches` on every pattern, which the grading
//! suite checks against its tables and a model. `TrieIndex`, which the
//! reference broker uses, must find exactly the same ids for every subject,
//! also after removals. The indexes exist only in the reference, so this
//! file compiles to nothing when a mutant replaces it, as under
//! `--all-features`.

#![cfg(workbook_impl = "reference")]

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use task08_wildcards::index::{LinearIndex, Matcher, TrieIndex};

/// Literal tokens of the generated strings; a small alphabet makes matches
/// frequent.
const LITERALS: &[&str] = &["a", "b", "ab", "a*"];

fn pattern() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        6 => prop::sample::select(LITERALS).prop_map(str::to_owned),
        2 => Just("*".to_owned()),
    ];
    let tail = prop_oneof![3 => Just(""), 1 => Just(".>")];
    (prop::collection::vec(token, 1..=3), tail)
        .prop_map(|(tokens, tail)| format!("{}{tail}", tokens.join(".")))
}

fn subject() -> impl Strategy<Value = String> {
    let token = prop::sample::select(LITERALS).prop_map(str::to_owned);
    prop::collection::vec(token, 1..=4).prop_map(|tokens| tokens.join("."))
}

fn sorted_matches(index: &impl Matcher, subject: &str) -> Vec<u64> {
    let mut ids = Vec::new();
    index.matching(subject, &mut ids);
    ids.sort_unstable();
    ids
}

#[test]
fn trie_finds_what_linear_scan_finds() {
    let config = Config {
        cases: 300,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[11; 32]);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let strategy = (
        prop::collection::vec(pattern(), 1..=30),
        prop::collection::vec(subject(), 1..=20),
        prop::collection::vec(any::<bool>(), 30),
    );

    let result = runner.run(&strategy, |(patterns, subjects, removed)| {
        // Both indexes get every pattern, with its position as the id.
        let mut linear = LinearIndex::new();
        let mut trie = TrieIndex::new();
        for (id, pattern) in (0u64..).zip(&patterns) {
            linear
                .insert(pattern, id)
                .expect("generated patterns are valid");
            trie.insert(pattern, id)
                .expect("generated patterns are valid");
        }

        // Some are removed again from both.
        for ((id, pattern), remove) in (0u64..).zip(&patterns).zip(&removed) {
            if *remove {
                prop_assert!(linear.remove(pattern, id));
                prop_assert!(trie.remove(pattern, id));
            }
        }
        prop_assert_eq!(linear.len(), trie.len());

        for subject in &subjects {
            let expected = sorted_matches(&linear, subject);
            let actual = sorted_matches(&trie, subject);
            prop_assert_eq!(actual, expected, "subject {:?}", subject);
        }
        Ok(())
    });
    if let Err(err) = result {
        panic!("the trie and the linear scan disagree: {err}");
    }
}

#[test]
fn trie_prunes_removed_patterns() {
    let mut trie = TrieIndex::new();
    trie.insert("a.*.c", 1).expect("valid pattern");
    trie.insert("a.>", 2).expect("valid pattern");

    // Removing needs the same pattern and id.
    assert!(!trie.remove("a.*.c", 2));
    assert!(trie.remove("a.*.c", 1));
    assert!(!trie.remove("a.*.c", 1));
    assert!(trie.remove("a.>", 2));

    assert!(trie.is_empty());
    assert_eq!(sorted_matches(&trie, "a.b.c"), Vec::<u64>::new());
}

#[test]
fn invalid_input_is_rejected_or_unmatched() {
    let mut trie = TrieIndex::new();
    let mut linear = LinearIndex::new();
    assert!(trie.insert("a..b", 1).is_err());
    assert!(linear.insert("a.>.b", 1).is_err());

    // `*` must not match the empty token of an invalid subject.
    trie.insert("a.*.b", 2).expect("valid pattern");
    linear.insert("a.*.b", 2).expect("valid pattern");
    assert_eq!(sorted_matches(&trie, "a..b"), Vec::<u64>::new());
    assert_eq!(sorted_matches(&linear, "a..b"), Vec::<u64>::new());
}

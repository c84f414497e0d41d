//! Mutant: a literal subscription gets every message twice.
//!
//! A map from exact subjects to subscriptions makes the common case, a
//! pattern without wildcards, one lookup. But the scan over every pattern
//! that follows still finds those subscriptions too, so each gets two
//! copies of a message published to its subject. Each matching
//! subscription must get exactly one.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::CancellationToken;

use crate::{SubjectError, SubjectKind};

/// Buffer size of a subscription created with a buffer of 0.
pub const DEFAULT_BUFFER: usize = 16;

/// Returns whether `subject` matches `pattern` by the rules of NATS.
pub fn matches(pattern: &str, subject: &str) -> bool {
    if validate_pattern(pattern).is_err() || validate_subject(subject).is_err() {
        return false;
    }
    let pattern: Vec<&str> = pattern.split('.').collect();
    let subject: Vec<&str> = subject.split('.').collect();
    for (index, expected) in pattern.iter().enumerate() {
        if *expected == ">" {
            // `>` is the last token and needs at least one token of its own.
            return subject.len() > index;
        }
        let Some(token) = subject.get(index) else {
            return false;
        };
        if *expected != "*" && expected != token {
            return false;
        }
    }
    pattern.len() == subject.len()
}

/// Checks that `subject` is a concrete subject that a message can be
/// published to.
///
/// # Errors
///
/// Returns the [`SubjectError`] for the first offending token.
pub fn validate_subject(subject: &str) -> Result<(), SubjectError> {
    validate(subject, SubjectKind::Subject)
}

/// Checks that `pattern` is a pattern that a subscription can use.
///
/// # Errors
///
/// Returns the [`SubjectError`] for the first offending token.
pub fn validate_pattern(pattern: &str) -> Result<(), SubjectError> {
    validate(pattern, SubjectKind::Pattern)
}

fn validate(text: &str, kind: SubjectKind) -> Result<(), SubjectError> {
    if text.is_empty() {
        return Err(SubjectError::Empty { kind });
    }
    let tokens: Vec<&str> = text.split('.').collect();
    for (index, token) in tokens.iter().enumerate() {
        let position = index + 1;
        if token.is_empty() {
            return Err(SubjectError::EmptyToken {
                kind,
                text: text.to_owned(),
                position,
            });
        }
        if token.chars().any(|c| c.is_ascii_whitespace()) {
            return Err(SubjectError::Whitespace {
                kind,
                text: text.to_owned(),
                position,
                token: (*token).to_owned(),
            });
        }
        if kind == SubjectKind::Subject && (*token == "*" || *token == ">") {
            let wildcard = if *token == "*" { '*' } else { '>' };
            return Err(SubjectError::WildcardInSubject {
                text: text.to_owned(),
                position,
                wildcard,
            });
        }
        if kind == SubjectKind::Pattern && *token == ">" && position < tokens.len() {
            return Err(SubjectError::TailNotLast {
                text: text.to_owned(),
                position,
            });
        }
    }
    Ok(())
}

/// An in-process broker that routes messages of type `T` from subjects to
/// the subscriptions whose patterns match them.
pub struct Broker<T> {
    state: Mutex<State<T>>,
}

struct State<T> {
    closed: bool,
    next_id: u64,
    subscriptions: HashMap<u64, Subscription<T>>,
    // The ids of the subscriptions with a pattern without wildcards, under
    // that pattern, so that an exact subject finds them with one lookup.
    exact: HashMap<String, Vec<u64>>,
}

struct Subscription<T> {
    pattern: String,
    sender: mpsc::Sender<T>,
    cancel: CancellationToken,
}

impl<T> fmt::Debug for Broker<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Broker")
            .field("closed", &state.closed)
            .field("subscriptions", &state.subscriptions.len())
            .finish()
    }
}

impl<T: Clone + Send + 'static> Default for Broker<T> {
    fn default() -> Broker<T> {
        Broker::new()
    }
}

impl<T: Clone + Send + 'static> Broker<T> {
    /// Creates an open broker with no subscriptions.
    pub fn new() -> Broker<T> {
        Broker {
            state: Mutex::new(State {
                closed: false,
                next_id: 0,
                subscriptions: HashMap::new(),
                exact: HashMap::new(),
            }),
        }
    }

    /// Subscribes to every subject that `pattern` matches, until `cancel` is
    /// cancelled, and returns the receiver.
    ///
    /// # Errors
    ///
    /// Returns the error of [`validate_pattern`] for an invalid pattern.
    pub fn subscribe(
        &self,
        cancel: CancellationToken,
        pattern: &str,
        buffer: usize,
    ) -> Result<mpsc::Receiver<T>, SubjectError> {
        validate_pattern(pattern)?;
        let capacity = if buffer == 0 { DEFAULT_BUFFER } else { buffer };
        let (sender, receiver) = mpsc::channel(capacity);
        let mut state = self.lock();
        if state.closed || cancel.is_cancelled() {
            return Ok(receiver);
        }
        let id = state.next_id;
        state.next_id += 1;
        if !pattern.split('.').any(|token| token == "*" || token == ">") {
            state.exact.entry(pattern.to_owned()).or_default().push(id);
        }
        let subscription = Subscription {
            pattern: pattern.to_owned(),
            sender,
            cancel,
        };
        state.subscriptions.insert(id, subscription);
        Ok(receiver)
    }

    /// Sends `msg` to every live subscription whose pattern matches
    /// `subject`, and returns how many received it.
    ///
    /// # Errors
    ///
    /// Returns the error of [`validate_subject`] for an invalid subject.
    pub fn publish(&self, subject: &str, msg: T) -> Result<usize, SubjectError> {
        validate_subject(subject)?;
        let mut state = self.lock();

        // The exact subscriptions first, with one lookup, then the scan.
        let mut targets = state.exact.get(subject).cloned().unwrap_or_default();
        let scanned = state
            .subscriptions
            .iter()
            .filter(|(_, subscription)| matches(&subscription.pattern, subject))
            .map(|(id, _)| *id);
        targets.extend(scanned);

        let mut delivered = 0;
        let mut ended = Vec::new();
        for id in targets {
            let Some(subscription) = state.subscriptions.get(&id) else {
                continue;
            };
            if subscription.cancel.is_cancelled() {
                ended.push(id);
                continue;
            }
            match subscription.sender.try_send(msg.clone()) {
                Ok(()) => delivered += 1,
                Err(TrySendError::Full(_)) => {}
                Err(TrySendError::Closed(_)) => ended.push(id),
            }
        }
        for id in ended {
            state.remove(id);
        }
        Ok(delivered)
    }

    /// Closes the broker: every receiver yields what it has buffered, then
    /// ends.
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.subscriptions.clear();
        state.exact.clear();
    }
}

impl<T> Broker<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T> State<T> {
    fn remove(&mut self, id: u64) {
        let Some(subscription) = self.subscriptions.remove(&id) else {
            return;
        };
        if let Some(ids) = self.exact.get_mut(&subscription.pattern) {
            ids.retain(|stored| *stored != id);
            if ids.is_empty() {
                self.exact.remove(&subscription.pattern);
            }
        }
    }
}

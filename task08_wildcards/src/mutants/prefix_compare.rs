//! Mutant: a literal pattern is compared as a string prefix.
//!
//! Thinking of subjects as paths, where a subscription covers everything
//! below it, leads to `subject.starts_with(pattern)` for a pattern without
//! wildcards. Then `foo.bar` matches `foo.bar.baz` and even `foo.barbaz`.
//! In NATS a literal pattern matches only the identical subject, and only
//! `foo.bar.>` covers what lies below `foo.bar`.

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
    // A pattern without wildcards needs no token walk.
    if !pattern.split('.').any(|token| token == "*" || token == ">") {
        return subject.starts_with(pattern);
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
    subscriptions: Vec<Subscription<T>>,
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
                subscriptions: Vec::new(),
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
        state.subscriptions.push(Subscription {
            pattern: pattern.to_owned(),
            sender,
            cancel,
        });
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
        let mut delivered = 0;
        // Cancelled subscriptions and dropped receivers leave on the way.
        state.subscriptions.retain(|subscription| {
            if subscription.cancel.is_cancelled() {
                return false;
            }
            if !matches(&subscription.pattern, subject) {
                return true;
            }
            match subscription.sender.try_send(msg.clone()) {
                Ok(()) => {
                    delivered += 1;
                    true
                }
                Err(TrySendError::Full(_)) => true,
                Err(TrySendError::Closed(_)) => false,
            }
        });
        Ok(delivered)
    }

    /// Closes the broker: every receiver yields what it has buffered, then
    /// ends.
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.subscriptions.clear();
    }
}

impl<T> Broker<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

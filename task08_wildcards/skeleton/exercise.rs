//! Task 8: route messages by NATS-style subjects and wildcard patterns.
//!
//! A subject such as `orders.created.v2` is made of tokens separated by `.`.
//! A subscription's pattern may use two wildcards: `*` matches exactly one
//! token and a final `>` matches one or more. Build `matches`, the two
//! validation functions, and a broker that delivers each published message
//! once to every subscription whose pattern matches its subject. Publishing
//! to `orders.created.v2` then reaches the patterns `orders.created.v2`,
//! `orders.*.v2`, `orders.>` and `>`, but not `orders.created` or
//! `orders.*`. The error type, [`SubjectError`], is ready to use.

// The parameters are unused until you write the bodies. Delete this line then.
#![allow(unused_variables)]

use std::fmt;
use std::marker::PhantomData;
use std::sync::Mutex;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::SubjectError;

/// Buffer size of a subscription created with a buffer of 0.
pub const DEFAULT_BUFFER: usize = 16;

/// Returns whether `subject` matches `pattern` by the rules of NATS.
///
/// Both strings are split into tokens at each `.`. A literal token matches
/// only the identical token (case-sensitive). `*` matches exactly one token,
/// whatever it is. `>` matches one or more tokens, and only as the last
/// token of the pattern. A token that merely contains `*` or `>`, such as
/// `a*`, is a literal. An invalid pattern (see [`validate_pattern`]) or
/// subject (see [`validate_subject`]) matches nothing, not even an identical
/// string.
pub fn matches(pattern: &str, subject: &str) -> bool {
    // TODO: compare the two token by token, with the wildcard rules above.
    todo!("return whether 'subject' matches 'pattern'; false when either is invalid")
}

/// Checks that `subject` is a concrete subject that a message can be
/// published to.
///
/// A subject is one or more tokens separated by `.`. No token is empty, so
/// the subject neither starts nor ends with `.` and has no `..`. No token
/// contains a space, tab, newline, carriage return or form feed. No token is
/// the wildcard `*` or `>`; tokens that merely contain them, such as `a*`,
/// are allowed.
///
/// # Errors
///
/// Returns the [`SubjectError`] for the first offending token from the left,
/// with kind [`Subject`](crate::SubjectKind::Subject): [`SubjectError::Empty`]
/// for `""`, else `EmptyToken`, `Whitespace` or `WildcardInSubject`. Within
/// a token, emptiness is checked first, then whitespace, then the wildcard
/// rule. Positions count tokens from 1.
pub fn validate_subject(subject: &str) -> Result<(), SubjectError> {
    // TODO: check every token of `subject` by the rules above.
    todo!("return Ok(()) for a valid subject, else the SubjectError of its first bad token")
}

/// Checks that `pattern` is a pattern that a subscription can use.
///
/// A pattern follows the rules of a subject (see [`validate_subject`]),
/// except that a token may be the wildcard `*`, and the last token may be
/// the wildcard `>`.
///
/// # Errors
///
/// Returns the [`SubjectError`] for the first offending token from the left,
/// with kind [`Pattern`](crate::SubjectKind::Pattern): [`SubjectError::Empty`]
/// for `""`, else `EmptyToken`, `Whitespace`, or `TailNotLast` for a `>`
/// followed by more tokens. Positions count tokens from 1.
pub fn validate_pattern(pattern: &str) -> Result<(), SubjectError> {
    // TODO: check every token of `pattern` by the rules above.
    todo!("return Ok(()) for a valid pattern, else the SubjectError of its first bad token")
}

/// An in-process broker that routes messages of type `T` from subjects to
/// the subscriptions whose patterns match them.
///
/// All methods take `&self`, and the broker must be `Send + Sync` when `T`
/// is `Send`, so it can be shared in an `Arc`. No method blocks or needs a
/// Tokio runtime.
pub struct Broker<T> {
    // TODO: replace this placeholder with the fields the methods below use.
    placeholder: PhantomData<Mutex<T>>,
}

impl<T> fmt::Debug for Broker<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broker").finish_non_exhaustive()
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
        // TODO: create a broker that is open and has no subscriptions.
        todo!("return an open Broker with no subscriptions")
    }

    /// Subscribes to every subject that `pattern` matches, until `cancel` is
    /// cancelled, and returns the receiver.
    ///
    /// The receiver buffers `buffer` messages; 0 means [`DEFAULT_BUFFER`].
    /// When `cancel` is already cancelled, or the broker is closed, the
    /// receiver has already ended and nothing is registered.
    ///
    /// A subscription whose token is cancelled, or whose receiver was
    /// dropped, receives nothing published afterwards. The broker removes
    /// it at the next publish to a subject that its pattern matches, or at
    /// close, and the receiver ends then, after what it has buffered.
    ///
    /// # Errors
    ///
    /// Returns the error of [`validate_pattern`] for an invalid pattern, and
    /// registers nothing.
    pub fn subscribe(
        &self,
        cancel: CancellationToken,
        pattern: &str,
        buffer: usize,
    ) -> Result<mpsc::Receiver<T>, SubjectError> {
        // TODO: validate `pattern`, then register a subscription for it.
        todo!("return a receiver of every message published to a subject 'pattern' matches")
    }

    /// Sends `msg` to every live subscription whose pattern matches
    /// `subject`, one copy each, and returns how many received it.
    ///
    /// Never blocks. A subscription whose buffer is full misses the message
    /// and is not counted. Cancelled subscriptions and dropped receivers get
    /// nothing and are removed. After [`Broker::close`] this delivers nothing
    /// and returns 0.
    ///
    /// # Errors
    ///
    /// Returns the error of [`validate_subject`] for an invalid subject,
    /// such as one with a wildcard, and delivers nothing. The subject is
    /// validated after close too.
    pub fn publish(&self, subject: &str, msg: T) -> Result<usize, SubjectError> {
        // TODO: validate `subject`, then try_send a copy to each match.
        todo!("send 'msg' once to each subscription matching 'subject'; return how many got it")
    }

    /// Closes the broker: every receiver yields what it has buffered, then
    /// ends.
    ///
    /// Calling it again does nothing. Afterwards publish delivers nothing
    /// and subscribe returns receivers that have already ended. Close never
    /// cancels a token that the caller passed to subscribe.
    pub fn close(&self) {
        // TODO: drop every sender; later subscriptions get ended receivers.
        todo!("end every receiver after it drains; later publishes deliver nothing")
    }
}

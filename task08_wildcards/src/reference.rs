//! Reference solution: NATS-style subject matching, validation, and a broker
//! that routes each message through a token trie.
//!
//! [`matches()`] walks the pattern and the subject token by token in one pass,
//! without allocating, and treats an invalid pattern or subject as matching
//! nothing. The broker keeps its subscriptions in an [`index::TrieIndex`], so
//! a publish costs time in proportion to the subject's tokens and the
//! wildcards on its path, not to the number of subscriptions. The
//! [`index::LinearIndex`] next to it calls [`matches()`] once per pattern; the
//! benchmark `benches/matching.rs` measures where the trie overtakes it.

#![deny(clippy::todo)]

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::CancellationToken;

use crate::{SubjectError, SubjectKind};

use self::index::{Matcher, TrieIndex};

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
///
/// # Examples
///
/// ```
/// use task08_wildcards::matches;
///
/// assert!(matches("orders.*.v2", "orders.created.v2"));
/// assert!(matches("orders.>", "orders.created.v2"));
/// // `*` is exactly one token and `>` at least one.
/// assert!(!matches("orders.*", "orders.created.v2"));
/// assert!(!matches("orders.>", "orders"));
/// // Tokens compare whole, and `a*` is no wildcard.
/// assert!(!matches("orders.new", "orders.newest"));
/// assert!(!matches("orders.new*", "orders.newest"));
/// ```
pub fn matches(pattern: &str, subject: &str) -> bool {
    // Splitting "" yields one empty token, which the checks below reject.
    let mut patterns = pattern.split('.');
    let mut subjects = subject.split('.');
    loop {
        match (patterns.next(), subjects.next()) {
            (None, None) => return true,
            // `>` takes this token and every one after it, so the rest of the
            // subject must be valid and the pattern must end here.
            (Some(">"), Some(token)) => {
                return patterns.next().is_none()
                    && is_subject_token(token)
                    && subjects.all(is_subject_token);
            }
            (Some(expected), Some(token)) => {
                if !is_pattern_token(expected) || !is_subject_token(token) {
                    return false;
                }
                if expected != "*" && expected != token {
                    return false;
                }
            }
            // One of the two has more tokens than the other.
            _ => return false,
        }
    }
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
/// with [`SubjectKind::Subject`]. Within a token, emptiness is checked first,
/// then whitespace, then the wildcard rule.
///
/// # Examples
///
/// ```
/// use task08_wildcards::{SubjectError, validate_subject};
///
/// assert_eq!(validate_subject("orders.created"), Ok(()));
/// let err = validate_subject("orders.*").unwrap_err();
/// assert_eq!(
///     err,
///     SubjectError::WildcardInSubject {
///         text: "orders.*".to_owned(),
///         position: 2,
///         wildcard: '*',
///     }
/// );
/// ```
pub fn validate_subject(subject: &str) -> Result<(), SubjectError> {
    validate(subject, SubjectKind::Subject)
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
/// with [`SubjectKind::Pattern`]: an empty token, whitespace, or a `>`
/// followed by more tokens ([`SubjectError::TailNotLast`]).
pub fn validate_pattern(pattern: &str) -> Result<(), SubjectError> {
    validate(pattern, SubjectKind::Pattern)
}

fn validate(text: &str, kind: SubjectKind) -> Result<(), SubjectError> {
    if text.is_empty() {
        return Err(SubjectError::Empty { kind });
    }
    let mut tokens = text.split('.').enumerate().peekable();
    while let Some((index, token)) = tokens.next() {
        let position = index + 1;
        if token.is_empty() {
            return Err(SubjectError::EmptyToken {
                kind,
                text: text.to_owned(),
                position,
            });
        }
        if token.contains(is_forbidden_space) {
            return Err(SubjectError::Whitespace {
                kind,
                text: text.to_owned(),
                position,
                token: token.to_owned(),
            });
        }
        let last = tokens.peek().is_none();
        match (kind, token) {
            (SubjectKind::Subject, "*" | ">") => {
                return Err(SubjectError::WildcardInSubject {
                    text: text.to_owned(),
                    position,
                    wildcard: if token == "*" { '*' } else { '>' },
                });
            }
            (SubjectKind::Pattern, ">") if !last => {
                return Err(SubjectError::TailNotLast {
                    text: text.to_owned(),
                    position,
                });
            }
            _ => {}
        }
    }
    Ok(())
}

/// The whitespace that a NATS server rejects in subjects: space, tab,
/// newline, carriage return and form feed, which is Rust's ASCII whitespace.
fn is_forbidden_space(c: char) -> bool {
    c.is_ascii_whitespace()
}

/// Returns whether `token` may appear in a subject.
fn is_subject_token(token: &str) -> bool {
    is_pattern_token(token) && token != "*" && token != ">"
}

/// Returns whether `token` may appear in a pattern; where `>` may appear is
/// up to the caller.
fn is_pattern_token(token: &str) -> bool {
    !token.is_empty() && !token.contains(is_forbidden_space)
}

/// An in-process broker that routes messages of type `T` from subjects to
/// the subscriptions whose patterns match them.
///
/// All methods take `&self`, and the broker is `Send + Sync` when `T` is
/// `Send`, so it can be shared between tasks or threads in an `Arc`. No
/// method blocks or needs a Tokio runtime.
pub struct Broker<T> {
    state: Mutex<State<T>>,
}

struct State<T> {
    closed: bool,
    next_id: u64,
    // Every live subscription's id, under its pattern.
    index: TrieIndex,
    subscriptions: HashMap<u64, Subscription<T>>,
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
                index: TrieIndex::new(),
                subscriptions: HashMap::new(),
            }),
        }
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
    ///
    /// # Examples
    ///
    /// ```
    /// use task08_wildcards::Broker;
    /// use tokio_util::sync::CancellationToken;
    ///
    /// let broker = Broker::new();
    /// let mut orders = broker.subscribe(CancellationToken::new(), "orders.>", 0)?;
    /// assert_eq!(broker.publish("orders.created", "o-17")?, 1);
    /// assert_eq!(broker.publish("invoices.created", "i-3")?, 0);
    /// assert_eq!(orders.try_recv(), Ok("o-17"));
    /// # Ok::<(), task08_wildcards::SubjectError>(())
    /// ```
    pub fn subscribe(
        &self,
        cancel: CancellationToken,
        pattern: &str,
        buffer: usize,
    ) -> Result<mpsc::Receiver<T>, SubjectError> {
        validate_pattern(pattern)?;
        let capacity = match buffer {
            0 => DEFAULT_BUFFER,
            buffer => buffer,
        };
        let (sender, receiver) = mpsc::channel(capacity);
        let mut state = self.lock();

        // Returning drops the only sender, so the receiver has ended.
        if state.closed || cancel.is_cancelled() {
            return Ok(receiver);
        }

        let id = state.next_id;
        state.next_id += 1;
        state
            .index
            .insert(pattern, id)
            .expect("the pattern was validated above");
        let subscription = Subscription {
            pattern: pattern.to_owned(),
            sender,
            cancel,
        };
        state.subscriptions.insert(id, subscription);
        Ok(receiver)
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
        validate_subject(subject)?;
        let mut guard = self.lock();
        if guard.closed {
            return Ok(0);
        }
        let state = &mut *guard;

        // The trie yields each matching subscription once, because each id
        // sits at exactly one place in it.
        let mut matched = Vec::new();
        state.index.matching(subject, &mut matched);
        let mut delivered = 0;
        let mut ended = Vec::new();
        for id in matched {
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

        // Removing drops the sender, so the receiver ends once drained.
        for id in ended {
            if let Some(subscription) = state.subscriptions.remove(&id) {
                state.index.remove(&subscription.pattern, id);
            }
        }
        Ok(delivered)
    }

    /// Closes the broker: every receiver yields what it has buffered, then
    /// ends.
    ///
    /// Calling it again does nothing. Afterwards publish delivers nothing
    /// and subscribe returns receivers that have already ended. Close never
    /// cancels a token that the caller passed to subscribe.
    pub fn close(&self) {
        let subscriptions = {
            let mut state = self.lock();
            state.closed = true;
            state.index = TrieIndex::new();
            std::mem::take(&mut state.subscriptions)
        };
        // The senders are dropped after the lock is released.
        drop(subscriptions);
    }
}

impl<T> Broker<T> {
    // Every critical section leaves the state consistent, so a panic
    // elsewhere while the lock was held does not make the data unusable.
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub mod index {
    //! Two indexes from patterns to subscription ids, which find every
    //! pattern that matches a subject.
    //!
    //! This module is part of the reference only, not of the exercise's API.
    //! The broker uses [`TrieIndex`]; the benchmark compares it with
    //! [`LinearIndex`].

    use std::collections::HashMap;

    use super::{matches, validate_pattern, validate_subject};
    use crate::SubjectError;

    /// An index of patterns, each stored with an id, that finds the ids of
    /// the patterns matching a subject.
    pub trait Matcher {
        /// Stores `id` under `pattern`.
        ///
        /// # Errors
        ///
        /// Returns the error of [`validate_pattern`] for an invalid pattern,
        /// and stores nothing.
        fn insert(&mut self, pattern: &str, id: u64) -> Result<(), SubjectError>;

        /// Removes `id` from under `pattern`; returns whether it was there.
        fn remove(&mut self, pattern: &str, id: u64) -> bool;

        /// Appends to `ids` the id of every stored pattern that matches
        /// `subject`, once per time it was inserted, in no particular order.
        /// An invalid subject matches nothing.
        fn matching(&self, subject: &str, ids: &mut Vec<u64>);

        /// Returns the number of stored ids.
        fn len(&self) -> usize;

        /// Returns whether the index stores nothing.
        fn is_empty(&self) -> bool {
            self.len() == 0
        }
    }

    /// Patterns in a list, each compared with the subject by [`matches()`].
    ///
    /// A lookup costs one comparison per pattern, but each comparison is a
    /// short walk over two strings in memory that the processor reads in
    /// order.
    #[derive(Clone, Debug, Default)]
    pub struct LinearIndex {
        entries: Vec<(String, u64)>,
    }

    impl LinearIndex {
        /// Creates an empty index.
        pub fn new() -> LinearIndex {
            LinearIndex::default()
        }
    }

    impl Matcher for LinearIndex {
        fn insert(&mut self, pattern: &str, id: u64) -> Result<(), SubjectError> {
            validate_pattern(pattern)?;
            self.entries.push((pattern.to_owned(), id));
            Ok(())
        }

        fn remove(&mut self, pattern: &str, id: u64) -> bool {
            let found = self
                .entries
                .iter()
                .position(|(stored, stored_id)| stored == pattern && *stored_id == id);
            match found {
                Some(position) => {
                    self.entries.swap_remove(position);
                    true
                }
                None => false,
            }
        }

        fn matching(&self, subject: &str, ids: &mut Vec<u64>) {
            let matched = self
                .entries
                .iter()
                .filter(|(pattern, _)| matches(pattern, subject))
                .map(|(_, id)| *id);
            ids.extend(matched);
        }

        fn len(&self) -> usize {
            self.entries.len()
        }
    }

    /// Patterns in a tree with one level per token, as NATS servers keep
    /// their subscriptions.
    ///
    /// A lookup follows the subject's tokens down the tree. At each level it
    /// takes the literal child named by the token and the `*` child, and
    /// collects the ids of a `>` there. Its cost grows with the subject's
    /// length and with how many wildcard branches lie on the way, not with
    /// the number of patterns, but each level is a hash lookup in memory
    /// spread over the heap.
    #[derive(Clone, Debug, Default)]
    pub struct TrieIndex {
        root: Node,
        len: usize,
    }

    #[derive(Clone, Debug, Default)]
    struct Node {
        // Ids of the patterns that end at this node.
        ids: Vec<u64>,
        // Ids of the patterns that end with a `>` right below this node.
        tail: Vec<u64>,
        literals: HashMap<String, Node>,
        star: Option<Box<Node>>,
    }

    impl Node {
        fn is_empty(&self) -> bool {
            self.ids.is_empty()
                && self.tail.is_empty()
                && self.literals.is_empty()
                && self.star.is_none()
        }
    }

    impl TrieIndex {
        /// Creates an empty index.
        pub fn new() -> TrieIndex {
            TrieIndex::default()
        }
    }

    impl Matcher for TrieIndex {
        fn insert(&mut self, pattern: &str, id: u64) -> Result<(), SubjectError> {
            validate_pattern(pattern)?;
            let mut node = &mut self.root;
            for token in pattern.split('.') {
                node = match token {
                    // Validation put `>` last, so it ends the walk.
                    ">" => {
                        node.tail.push(id);
                        self.len += 1;
                        return Ok(());
                    }
                    "*" => node.star.get_or_insert_with(Box::default),
                    literal => node.literals.entry(literal.to_owned()).or_default(),
                };
            }
            node.ids.push(id);
            self.len += 1;
            Ok(())
        }

        fn remove(&mut self, pattern: &str, id: u64) -> bool {
            let tokens: Vec<&str> = pattern.split('.').collect();
            let removed = remove_from(&mut self.root, &tokens, id);
            if removed {
                self.len -= 1;
            }
            removed
        }

        fn matching(&self, subject: &str, ids: &mut Vec<u64>) {
            // The walk below would let `*` match an empty token.
            if validate_subject(subject).is_ok() {
                collect(&self.root, Some(subject), ids);
            }
        }

        fn len(&self) -> usize {
            self.len
        }
    }

    /// Appends the ids below `node` that match `rest`, the subject's tokens
    /// not yet consumed, or `None` when every token is consumed.
    fn collect(node: &Node, rest: Option<&str>, ids: &mut Vec<u64>) {
        let Some(rest) = rest else {
            ids.extend_from_slice(&node.ids);
            return;
        };
        let (token, after) = match rest.split_once('.') {
            Some((token, after)) => (token, Some(after)),
            None => (rest, None),
        };

        // At least one token remains, which is what `>` needs.
        ids.extend_from_slice(&node.tail);
        if let Some(child) = node.literals.get(token) {
            collect(child, after, ids);
        }
        if let Some(child) = &node.star {
            collect(child, after, ids);
        }
    }

    /// Removes `id` from the node that `tokens` lead to, and prunes the
    /// nodes that become empty; returns whether the id was there.
    fn remove_from(node: &mut Node, tokens: &[&str], id: u64) -> bool {
        let Some((token, rest)) = tokens.split_first() else {
            return remove_id(&mut node.ids, id);
        };
        match *token {
            ">" => remove_id(&mut node.tail, id),
            "*" => {
                let Some(child) = node.star.as_deref_mut() else {
                    return false;
                };
                let removed = remove_from(child, rest, id);
                if child.is_empty() {
                    node.star = None;
                }
                removed
            }
            literal => {
                let Some(child) = node.literals.get_mut(literal) else {
                    return false;
                };
                let removed = remove_from(child, rest, id);
                if child.is_empty() {
                    node.literals.remove(literal);
                }
                removed
            }
        }
    }

    fn remove_id(ids: &mut Vec<u64>, id: u64) -> bool {
        match ids.iter().position(|stored| *stored == id) {
            Some(position) => {
                ids.swap_remove(position);
                true
            }
            None => false,
        }
    }
}

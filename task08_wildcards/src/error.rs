//! The error that subject and pattern validation returns.
//!
//! Every implementation of the task shares this file, so the learner builds
//! these values but does not define them. Positions count tokens from 1:
//! in `"a..b"` the empty token is token 2.

use std::fmt;

/// Whether a validated string is a subject or a pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SubjectKind {
    /// A concrete subject, which messages are published to.
    Subject,
    /// A subscription pattern, which may contain the wildcards `*` and `>`.
    Pattern,
}

impl fmt::Display for SubjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SubjectKind::Subject => "subject",
            SubjectKind::Pattern => "pattern",
        })
    }
}

/// A subject or pattern that NATS would reject, and where it breaks the
/// rules.
///
/// Validation reports the first offending token from the left. Within one
/// token it checks emptiness first, then whitespace, then the wildcard
/// rules.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubjectError {
    /// The string is empty, so it has no token at all.
    #[error("invalid {kind} \"\": it needs at least one token, such as \"orders\"")]
    Empty {
        /// Subject or pattern.
        kind: SubjectKind,
    },
    /// A token is empty: the string starts or ends with `.`, or contains
    /// `..`.
    #[error(
        "invalid {kind} {text:?}: token {position} is empty; remove the leading, trailing or \
         doubled '.'"
    )]
    EmptyToken {
        /// Subject or pattern.
        kind: SubjectKind,
        /// The whole string that was validated.
        text: String,
        /// Position of the empty token, counting from 1.
        position: usize,
    },
    /// A token contains a space, tab, newline, carriage return or form feed,
    /// which NATS does not allow.
    #[error("invalid {kind} {text:?}: token {position} ({token:?}) contains whitespace")]
    Whitespace {
        /// Subject or pattern.
        kind: SubjectKind,
        /// The whole string that was validated.
        text: String,
        /// Position of the token, counting from 1.
        position: usize,
        /// The token that contains whitespace.
        token: String,
    },
    /// A subject contains the wildcard token `*` or `>`; only patterns may.
    #[error(
        "invalid subject {text:?}: token {position} is the wildcard '{wildcard}'; publish to a \
         concrete subject and use wildcards only in subscription patterns"
    )]
    WildcardInSubject {
        /// The subject.
        text: String,
        /// Position of the wildcard token, counting from 1.
        position: usize,
        /// The wildcard: `*` or `>`.
        wildcard: char,
    },
    /// A pattern has more tokens after `>`.
    #[error(
        "invalid pattern {text:?}: '>' is token {position} but not the last token; '>' matches \
         the rest of a subject, so it may only end a pattern"
    )]
    TailNotLast {
        /// The pattern.
        text: String,
        /// Position of the `>` token, counting from 1.
        position: usize,
    },
}

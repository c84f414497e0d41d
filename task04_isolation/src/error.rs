//! The ways a broker can fail the isolation check.
//!
//! Every variant but `TaskFailed` names the receiver where the problem
//! showed: the topic it subscribed to and its `subscriber` index, which
//! counts the subscriptions to that topic from 0 in the order the checker
//! made them.

use thiserror::Error;
use tokio::task::JoinError;

/// A break of the isolation contract by a broker, or a failed task of the
/// checker.
///
/// Within one receiver's messages, a message seen before is a
/// [`Duplicate`](IsolationError::Duplicate) even when it also arrives out of
/// order, and [`Missing`](IsolationError::Missing) is decided only after the
/// receiver ended.
#[derive(Debug, Error)]
pub enum IsolationError {
    /// A receiver got a message that was not published to its topic: one
    /// from another topic, or one that no publisher sent.
    #[error(
        "subscriber {subscriber} of topic {topic:?} received {message:?}, which was not \
         published to that topic; the broker must deliver each message to its own topic's \
         subscribers only"
    )]
    Foreign {
        /// Topic the receiver subscribed to.
        topic: String,
        /// Index of the receiver among the subscribers of `topic`.
        subscriber: usize,
        /// The message that does not belong to `topic`.
        message: String,
    },

    /// A receiver got the same message a second time.
    #[error(
        "subscriber {subscriber} of topic {topic:?} received {message:?} twice; the broker \
         must deliver each message exactly once"
    )]
    Duplicate {
        /// Topic the receiver subscribed to.
        topic: String,
        /// Index of the receiver among the subscribers of `topic`.
        subscriber: usize,
        /// The message that arrived twice.
        message: String,
    },

    /// A receiver got a message after one that its publisher published
    /// later.
    #[error(
        "subscriber {subscriber} of topic {topic:?} received {message:?} after {after:?}, \
         although their publisher published it first; the broker must keep each \
         publisher's order"
    )]
    Reordered {
        /// Topic the receiver subscribed to.
        topic: String,
        /// Index of the receiver among the subscribers of `topic`.
        subscriber: usize,
        /// The message that arrived too late.
        message: String,
        /// The message from the same publisher that arrived before it,
        /// although it was published after it.
        after: String,
    },

    /// A receiver ended before it got every message published to its topic.
    #[error(
        "subscriber {subscriber} of topic {topic:?} received {received} of the {expected} \
         messages published to that topic before close; the broker lost the others"
    )]
    Missing {
        /// Topic the receiver subscribed to.
        topic: String,
        /// Index of the receiver among the subscribers of `topic`.
        subscriber: usize,
        /// Number of messages published to `topic`, which every subscriber
        /// is owed.
        expected: usize,
        /// Number of distinct messages of `topic` that the receiver got.
        received: usize,
    },

    /// A publisher or reader task of the checker panicked or was cancelled.
    #[error(
        "the {task} task failed: {source}; a broker method panicked inside it, or the \
         runtime shut down"
    )]
    TaskFailed {
        /// The task that failed, such as "publisher 2".
        task: String,
        /// The panic or cancellation that ended the task.
        #[source]
        source: JoinError,
    },
}

//! Brokers for the isolation checker to judge: two correct ones and six
//! faulty ones.
//!
//! Every broker here implements [`PubSub`](crate::PubSub), gives each
//! subscriber a channel of [`BUFFER`] messages, and waits in `publish` while a
//! buffer is full. The correct ones keep the whole contract of the trait:
//!
//! - [`CorrectBroker`] delivers inside `publish`;
//! - [`SlowBroker`] delivers [`SLOW_LATENCY`] after each publish, from a
//!   background task, and finishes every delivery before its receivers end.
//!
//! Each faulty broker breaks the contract in one documented way, whatever the
//! topic names and message texts. Run through the checker's workload on
//! tokio's paused clock, each shows its fault on every run:
//!
//! - [`SharedBucketBroker`]: topics share hash buckets, so subscribers get
//!   other topics' messages;
//! - [`FirstInBucketBroker`]: a topic's messages go to another topic in its
//!   bucket, while the grand total stays right;
//! - [`LossyCloseBroker`]: close aborts the delivery task and loses the
//!   latest messages;
//! - [`DuplicatingBroker`]: each topic's last message arrives twice;
//! - [`ReorderingBroker`]: each publisher's messages arrive out of order;
//! - [`CappedFanOutBroker`]: subscribers past a limit get nothing.
//!
//! The faulty brokers exist for the grading suite and for learners' own
//! tests. Reading them is allowed, and it shows which faults a checker must
//! catch, but it does not show how to catch them.

mod capped;
mod correct;
mod duplicating;
mod first_in_bucket;
mod lossy_close;
mod reordering;
mod shared;
mod shared_bucket;
mod slow;

pub use capped::{CappedFanOutBroker, FAN_OUT_LIMIT};
pub use correct::CorrectBroker;
pub use duplicating::DuplicatingBroker;
pub use first_in_bucket::FirstInBucketBroker;
pub use lossy_close::LossyCloseBroker;
pub use reordering::ReorderingBroker;
pub use shared::BUFFER;
pub use shared_bucket::SharedBucketBroker;
pub use slow::{SLOW_LATENCY, SlowBroker};

//! Mutant: topics are hashed into 64 shards that keep only senders, not
//! topic names, so `publish` delivers to every subscriber in the shard.
//!
//! The learner wants less lock contention than one map behind one mutex
//! gives, so each topic goes to one of 64 shards by its FNV-1a hash, and each
//! shard has its own lock. Storing the topic name seemed redundant once the
//! hash had picked the shard. Two topics whose hashes land in the same shard
//! now share subscribers, so a message on "t0" can reach a subscriber of
//! "t47". With a handful of topics the shards rarely collide, so a test with
//! few topics passes.

use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::mpsc::{self, error::TrySendError};

/// Capacity of each subscriber's channel, in messages.
pub const BUFFER: usize = 16;

const SHARDS: usize = 64;

/// An in-process publish/subscribe broker for `String` messages.
#[derive(Debug)]
pub struct Broker {
    shards: Vec<Mutex<Shard>>,
}

#[derive(Debug, Default)]
struct Shard {
    // Senders of the subscribers of every topic that hashes to this shard.
    senders: Vec<mpsc::Sender<String>>,
    closed: bool,
}

impl Broker {
    /// Creates an open broker with no subscribers.
    pub fn new() -> Broker {
        let shards = (0..SHARDS).map(|_| Mutex::default()).collect();
        Broker { shards }
    }

    /// Subscribes to `topic` and returns the receiving end of a new channel.
    pub fn subscribe(&self, topic: &str) -> mpsc::Receiver<String> {
        let (sender, receiver) = mpsc::channel(BUFFER);
        let mut shard = self.shard(topic);
        if shard.closed {
            return receiver;
        }
        shard.senders.retain(|sender| !sender.is_closed());
        shard.senders.push(sender);
        receiver
    }

    /// Sends `msg` to every subscriber in the shard of `topic`.
    pub fn publish(&self, topic: &str, msg: String) {
        let mut shard = self.shard(topic);
        if shard.closed {
            return;
        }
        shard
            .senders
            .retain(|sender| match sender.try_send(msg.clone()) {
                Ok(()) | Err(TrySendError::Full(_)) => true,
                Err(TrySendError::Closed(_)) => false,
            });
    }

    /// Closes every shard, which ends every receiver.
    pub fn close(&self) {
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            shard.closed = true;
            shard.senders.clear();
        }
    }

    fn shard(&self, topic: &str) -> MutexGuard<'_, Shard> {
        let index = fnv1a(topic) % SHARDS as u64;
        self.shards[index as usize]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for Broker {
    fn default() -> Broker {
        Broker::new()
    }
}

// FNV-1a, 64-bit: a fixed hash, so the same topics share a shard on every
// run and every Rust version.
fn fnv1a(topic: &str) -> u64 {
    topic.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

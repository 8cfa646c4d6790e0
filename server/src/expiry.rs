//! Active expiry: shard leaders remove expired keys in the background.
//!
//! An expired key is invisible from the moment its deadline passes (see
//! [`crate::keyspace`]), but it keeps its memory until something removes
//! it. Like a Redis primary that sends `DEL` to its replicas, only the
//! leader of a shard decides: every [`CYCLE`] it takes the keys whose
//! deadline has passed from the keyspace's deadline index and proposes
//! their removal through Raft ([`WriteOp::PurgeExpired`]), so every replica
//! removes the same keys at the same log position. Apply checks each key
//! again against the entry's clock, so a key renewed in the meantime stays.
//!
//! The work per cycle is bounded: at most [`PROPOSALS_PER_CYCLE`]
//! proposals of [`KEYS_PER_PROPOSAL`] keys per shard, so a mass expiry is
//! spread over several cycles instead of stalling writes.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::keyspace::{Write, WriteOp};
use crate::node::Node;
use crate::shard::{Request, now_ms};
use crate::ticker::Ticker;

/// How often leaders look for expired keys.
pub const CYCLE: Duration = Duration::from_millis(100);
/// Keys removed by one proposal at most.
pub const KEYS_PER_PROPOSAL: usize = 64;
/// Proposals per shard and cycle at most.
pub const PROPOSALS_PER_CYCLE: usize = 8;

/// Runs until `stop` turns true.
pub async fn run(node: Arc<Node>, stop: watch::Receiver<bool>) {
    let mut ticker = Ticker::new(CYCLE, stop);
    while ticker.tick().await {
        for shard in node.serving().filter(|s| s.leader() == Some(node.id())) {
            for _ in 0..PROPOSALS_PER_CYCLE {
                let keys = shard.expired(now_ms(), KEYS_PER_PROPOSAL);
                let more = keys.len() == KEYS_PER_PROPOSAL;
                if keys.is_empty() {
                    break;
                }
                let purge = Request::Write(Write::new(WriteOp::PurgeExpired { keys }));
                if let Err(err) = shard.execute(purge).await {
                    tracing::debug!(shard = shard.shard, cause = %err, "active expiry paused");
                    break;
                }
                if !more {
                    break;
                }
            }
        }
    }
}

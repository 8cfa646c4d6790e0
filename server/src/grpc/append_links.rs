//! The follower's end of replication connections (see
//! [`crate::raft::append_link`]): each carries one group's AppendEntries
//! requests, handed one at a time to the group's Raft core, and their
//! answers back in the same order.
//!
//! An accepted append tells the replica how fresh it is, for reads with
//! bounded staleness, from the moment the request arrived.

use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpStream;
use tracing::warn;

use crate::node::Node;
use crate::raft::append_link;
use crate::raft::typ::{AppendEntriesRequest, StreamAppendResult};
use crate::wire;

/// Serves one replication connection, its [`append_link::MAGIC`] read,
/// until the leader closes it or sends what is not a request.
pub async fn serve(socket: TcpStream, node: Arc<Node>) {
    let (group, mut receiver, mut sender) = match append_link::accept(socket).await {
        Ok(link) => link,
        Err(err) => {
            warn!(cause = %err, "append link: no group named");
            return;
        }
    };
    let Some(shard) = node.group(group) else {
        // Closing tells the leader, which reports the peer unreachable.
        warn!(group, node = node.id(), "append link: no replica of the group here");
        return;
    };
    while let Ok(message) = receiver.receive().await {
        let arrived = Instant::now();
        let rpc = match wire::decode::<AppendEntriesRequest>(&message) {
            Ok(rpc) => rpc,
            Err(err) => {
                warn!(group, cause = %err, "append link: undecodable request");
                return;
            }
        };
        let leader_commit = rpc.leader_commit.map_or(0, |id| id.index());
        // What an accepted request makes the follower's log match, as the
        // leader's stream expects to hear it.
        let prev = rpc.prev_log_id;
        let last = rpc.entries.last().map(|entry| entry.log_id).or(prev);
        let answer: Result<StreamAppendResult, String> = shard
            .raft()
            .append_entries(rpc)
            .await
            .map(|response| response.into_stream_result(prev, last))
            .map_err(|fatal| fatal.to_string());
        if let Ok(Ok(_)) = answer {
            shard.note_leader_contact(arrived, leader_commit);
        }
        let sent = match wire::encode(&answer) {
            Ok(reply) => sender.send(&reply).await,
            Err(err) => {
                warn!(group, cause = %err, "append link: unencodable answer");
                return;
            }
        };
        if sent.is_err() {
            return;
        }
    }
}

//! The peer-facing `Raft` service: Raft RPCs dispatched to the named group
//! (see [`crate::raft::network`] for the sending side; replication has
//! connections of its own, see [`super::append_links`]), snapshot streams
//! written to the group's snapshot directory and then installed, shard
//! requests forwarded by nodes that do not lead, and on the witness the
//! cross-region log's records (see [`crate::witness`]).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cairn_proto::raft::raft_server::Raft as RaftRpc;
use cairn_proto::raft::{ForwardReply, ForwardRequest, RaftReply, RaftRequest, SnapshotChunk};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::AsyncWriteExt;
use tonic::{Request, Response, Status, Streaming};

use super::status;
use crate::error::Error;
use crate::node::{ForwardError, Node};
use crate::raft::snapshot_file::{self, SnapshotFile};
use crate::raft::typ::{Raft, Snapshot, SnapshotMeta, Vote};
use crate::shard::Shard;
use crate::wire;
use crate::witness::{WitnessAnswer, WitnessCall};

/// Serves peers.
pub struct RaftService {
    node: Arc<Node>,
    incoming: AtomicU64,
}

impl RaftService {
    /// A service over `node`'s groups.
    pub fn new(node: Arc<Node>) -> Self {
        RaftService {
            node,
            incoming: AtomicU64::new(0),
        }
    }

    fn shard(&self, group: u64) -> Result<&Shard, Status> {
        self.node
            .group(group)
            .ok_or_else(|| Status::not_found(format!("node {} holds no replica of group {group}", self.node.id())))
    }

    /// Decodes the request, runs it on the group, encodes `Result<_, String>`.
    async fn dispatch<Req, Resp, E, F, Fut>(
        &self,
        request: Request<RaftRequest>,
        call: F,
    ) -> Result<Response<RaftReply>, Status>
    where
        Req: DeserializeOwned,
        Resp: Serialize,
        E: std::fmt::Display,
        F: FnOnce(Raft, Req) -> Fut,
        Fut: Future<Output = Result<Resp, E>>,
    {
        let request = request.into_inner();
        let raft = self.shard(request.group_id)?.raft().clone();
        let rpc: Req = wire::decode(&request.payload).map_err(status)?;
        let answer = call(raft, rpc).await.map_err(|e| e.to_string());
        Ok(Response::new(RaftReply {
            payload: wire::encode(&answer).map_err(status)?,
        }))
    }
}

#[tonic::async_trait]
impl RaftRpc for RaftService {
    async fn vote(&self, request: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        self.dispatch(request, |raft, rpc| async move { raft.vote(rpc).await })
            .await
    }

    async fn pre_vote(&self, request: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        self.dispatch(request, |raft, rpc| async move { raft.pre_vote(rpc).await })
            .await
    }

    async fn transfer_leader(&self, request: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        self.dispatch(
            request,
            |raft, rpc| async move { raft.handle_transfer_leader(rpc).await },
        )
        .await
    }

    async fn install_snapshot(
        &self,
        request: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<RaftReply>, Status> {
        let mut stream = request.into_inner();
        let first = stream
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("empty snapshot stream"))?;
        let shard = self.shard(first.group_id)?;
        let (vote, meta): (Vote, SnapshotMeta) = wire::decode(&first.header).map_err(status)?;
        let n = self.incoming.fetch_add(1, Ordering::Relaxed);
        let path = shard.snapshot_dir().join(format!("incoming-{n}.part"));
        let io = |e| status(Error::io(&path, e));
        let mut file = tokio::fs::File::create(&path).await.map_err(io)?;
        file.write_all(&first.data).await.map_err(io)?;
        while let Some(chunk) = stream.message().await? {
            file.write_all(&chunk.data).await.map_err(io)?;
        }
        file.sync_all().await.map_err(io)?;
        drop(file);
        // Verify before handing it to Raft: a transfer damaged on the way is
        // refused (the leader sends it again), never installed.
        let verify_path = path.clone();
        let verified = tokio::task::spawn_blocking(move || snapshot_file::read(&verify_path))
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        if let Err(err) = verified {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(status(err));
        }
        let snapshot = Snapshot {
            meta,
            snapshot: SnapshotFile { path: path.clone() },
        };
        let answer = shard
            .raft()
            .install_full_snapshot(vote, snapshot)
            .await
            .map_err(|e| e.to_string());
        // Installed snapshots were renamed into place; anything left is stale.
        let _ = tokio::fs::remove_file(&path).await;
        Ok(Response::new(RaftReply {
            payload: wire::encode(&answer).map_err(status)?,
        }))
    }

    async fn forward(&self, request: Request<ForwardRequest>) -> Result<Response<ForwardReply>, Status> {
        let request = request.into_inner();
        let answer = match self.node.group(request.group_id) {
            Some(shard) => {
                let shard_request = wire::decode(&request.payload).map_err(status)?;
                shard
                    .execute(shard_request)
                    .await
                    .map_err(|e| ForwardError::from_error(&e))
            }
            None => Err(ForwardError::NotLeader(None)),
        };
        Ok(Response::new(ForwardReply {
            payload: wire::encode(&answer).map_err(status)?,
        }))
    }

    async fn witness(&self, request: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let request = request.into_inner();
        let answer: Result<WitnessAnswer, String> = match self.node.witness() {
            Some(store) => match wire::decode::<WitnessCall>(&request.payload) {
                Ok(call) => store.call(call).await,
                Err(err) => Err(err),
            }
            .map_err(|e| e.to_string()),
            None => Err(format!("node {} is not a witness", self.node.id())),
        };
        Ok(Response::new(RaftReply {
            payload: wire::encode(&answer).map_err(status)?,
        }))
    }
}

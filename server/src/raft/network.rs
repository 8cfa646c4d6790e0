//! The client side of Raft traffic: one gRPC connection per peer node,
//! shared by every group (openraft-multi's [`GroupRouter`]).
//!
//! Each RPC is wrapped in a [`RaftRequest`] naming its group; the peer's
//! `Raft` service dispatches it to that group's Raft instance. Snapshots are
//! streamed from their file in chunks, the first chunk carrying the vote and
//! the snapshot metadata.
//!
//! Transport failures become `Unreachable` (openraft backs off before the
//! next attempt); a peer whose group has stopped answers with an error text,
//! also reported as unreachable.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use cairn_proto::raft::raft_client::RaftClient;
use cairn_proto::raft::{RaftReply, RaftRequest, SnapshotChunk};
use openraft::OptionalSend;
use openraft::error::{ReplicationClosed, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft_multi::{GroupNetworkAdapter, GroupRouter};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::AsyncReadExt;
use tonic::transport::{Channel, Endpoint};

use crate::config::Topology;
use crate::error::{Error, Result};
use crate::raft::snapshot_file::SnapshotFile;
use crate::raft::typ::{
    AppendEntriesRequest, AppendEntriesResponse, GroupId, NodeId, RpcError, Snapshot, SnapshotResponse, StreamingError,
    TransferLeaderRequest, TransferLeaderResponse, TypeConfig, Vote, VoteRequest, VoteResponse,
};
use crate::wire;

/// Bytes of snapshot file per streamed chunk.
const SNAPSHOT_CHUNK: usize = 1024 * 1024;
/// How long to wait for a TCP connection to a peer.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Connections to every other node, keyed by node id.
#[derive(Clone)]
pub struct Peers {
    clients: Arc<HashMap<NodeId, RaftClient<Channel>>>,
}

impl Peers {
    /// Lazily connected channels to every node of `topology` but `me`.
    pub fn new(topology: &Topology, me: NodeId) -> Result<Self> {
        let mut clients = HashMap::new();
        for node in topology.nodes.iter().filter(|n| n.id != me) {
            let endpoint = Endpoint::from_shared(format!("http://{}", node.grpc_addr))
                .map_err(|e| Error::Config(format!("node {}: bad grpc_addr: {e}", node.id)))?
                .connect_timeout(CONNECT_TIMEOUT)
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(1))
                .keep_alive_timeout(Duration::from_secs(2));
            clients.insert(node.id, RaftClient::new(endpoint.connect_lazy()));
        }
        Ok(Peers {
            clients: Arc::new(clients),
        })
    }

    /// The client for `node`.
    pub fn client(&self, node: NodeId) -> Result<RaftClient<Channel>> {
        self.clients.get(&node).cloned().ok_or_else(|| Error::Unreachable {
            node,
            detail: "not a peer in the topology".into(),
        })
    }

    async fn unary<Req, Resp, F, Fut>(
        &self,
        target: NodeId,
        group_id: GroupId,
        rpc: &Req,
        option: &RPCOption,
        call: F,
    ) -> Result<Resp, RpcError>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        F: FnOnce(RaftClient<Channel>, tonic::Request<RaftRequest>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<RaftReply>, tonic::Status>>,
    {
        let unreachable = |e: &dyn std::fmt::Display| RpcError::Unreachable(Unreachable::from_string(e.to_string()));
        let payload = wire::encode(rpc).map_err(|e| unreachable(&e))?;
        let client = self.client(target).map_err(|e| unreachable(&e))?;
        let mut request = tonic::Request::new(RaftRequest { group_id, payload });
        request.set_timeout(option.hard_ttl());
        let reply = call(client, request).await.map_err(|e| unreachable(&e))?;
        let answer: Result<Resp, String> = wire::decode(&reply.into_inner().payload).map_err(|e| unreachable(&e))?;
        answer.map_err(|e| unreachable(&e))
    }
}

impl GroupRouter<TypeConfig, GroupId> for Peers {
    type SnapshotData = SnapshotFile;

    async fn append_entries(
        &self,
        target: NodeId,
        group_id: GroupId,
        rpc: AppendEntriesRequest,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse, RpcError> {
        self.unary(target, group_id, &rpc, &option, |mut c, r| async move {
            c.append_entries(r).await
        })
        .await
    }

    async fn vote(
        &self,
        target: NodeId,
        group_id: GroupId,
        rpc: VoteRequest,
        option: RPCOption,
    ) -> Result<VoteResponse, RpcError> {
        self.unary(
            target,
            group_id,
            &rpc,
            &option,
            |mut c, r| async move { c.vote(r).await },
        )
        .await
    }

    async fn pre_vote(
        &self,
        target: NodeId,
        group_id: GroupId,
        rpc: VoteRequest,
        option: RPCOption,
    ) -> Result<VoteResponse, RpcError> {
        self.unary(target, group_id, &rpc, &option, |mut c, r| async move {
            c.pre_vote(r).await
        })
        .await
    }

    async fn transfer_leader(
        &self,
        target: NodeId,
        group_id: GroupId,
        req: TransferLeaderRequest,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse, RpcError> {
        self.unary(target, group_id, &req, &option, |mut c, r| async move {
            c.transfer_leader(r).await
        })
        .await
    }

    async fn full_snapshot(
        &self,
        target: NodeId,
        group_id: GroupId,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse, StreamingError> {
        let unreachable =
            |e: &dyn std::fmt::Display| StreamingError::Unreachable(Unreachable::from_string(e.to_string()));
        let header = wire::encode(&(vote, snapshot.meta.clone())).map_err(|e| unreachable(&e))?;
        let mut client = self.client(target).map_err(|e| unreachable(&e))?;
        let path = snapshot.snapshot.path.clone();
        let (tx, rx) = tokio::sync::mpsc::channel::<SnapshotChunk>(4);
        let reader = tokio::spawn(async move {
            let mut file = tokio::fs::File::open(&path).await?;
            let mut header = Some(header);
            loop {
                let mut data = vec![0u8; SNAPSHOT_CHUNK];
                let n = file.read(&mut data).await?;
                data.truncate(n);
                let chunk = SnapshotChunk {
                    group_id,
                    header: header.take().unwrap_or_default(),
                    data: data.into(),
                };
                if tx.send(chunk).await.is_err() || n == 0 {
                    return Ok::<(), std::io::Error>(());
                }
            }
        });
        let send = client.install_snapshot(tokio_stream::wrappers::ReceiverStream::new(rx));
        let reply = tokio::select! {
            reply = send => reply,
            closed = cancel => {
                reader.abort();
                return Err(StreamingError::Closed(closed));
            }
        };
        let reply = reply.map_err(|e| unreachable(&e))?;
        reader
            .await
            .map_err(|e| unreachable(&e))?
            .map_err(|e| unreachable(&e))?;
        let answer: Result<SnapshotResponse, String> =
            wire::decode(&reply.into_inner().payload).map_err(|e| unreachable(&e))?;
        answer.map_err(|e| unreachable(&e))
    }
}

/// The network factory handed to one group's Raft instance: the shared
/// peer connections bound to the group's id.
#[derive(Clone)]
pub struct GroupNetwork {
    /// Connections shared by every group.
    pub peers: Peers,
    /// The group this factory serves.
    pub group: GroupId,
}

impl RaftNetworkFactory<TypeConfig> for GroupNetwork {
    type Network = GroupNetworkAdapter<TypeConfig, GroupId, Peers>;

    async fn new_client(&mut self, target: NodeId, _node: &openraft::EmptyNode) -> Self::Network {
        GroupNetworkAdapter::new(self.peers.clone(), target, self.group)
    }
}

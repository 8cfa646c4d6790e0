//! The client side of Raft traffic: one gRPC connection per peer node,
//! shared by every group.
//!
//! Each RPC is wrapped in a [`RaftRequest`] naming its group; the peer's
//! `Raft` service dispatches it to that group's Raft instance.
//!
//! Replication is a stream: openraft hands each follower's replication task
//! a stream of AppendEntries requests, and [`Peers::stream_append`] carries
//! it on a connection of its own (see [`crate::raft::append_link`]), whose
//! replies come back in request order. One request is in flight at a time,
//! and before asking openraft for the next the stream lets the writes
//! under way reach the log, so that the next carries them too (see
//! [`Peers::stream_append`]). A peer that does not answer within
//! [`REPLY_TIMEOUT`] (paused, or cut off) ends the stream with an error.
//!
//! Snapshots are streamed from their file in chunks, the first chunk
//! carrying the vote and the snapshot metadata.
//!
//! With a [`LinkLatency`] configured (a fault-injection knob), every
//! request to a node of another zone or region waits that long before it
//! is sent: streamed appends one by one, a snapshot once.
//!
//! Transport failures become `Unreachable` (openraft backs off before the
//! next request of a stream, and a stream that cannot be opened is
//! reported only after a pause); a peer whose group has stopped answers with an error text,
//! also reported as unreachable.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cairn_proto::raft::raft_client::RaftClient;
use cairn_proto::raft::{RaftReply, RaftRequest, SnapshotChunk};
use futures::{Stream, StreamExt};
use openraft::OptionalSend;
use openraft::base::{BoxFuture, BoxStream};
use openraft::error::{ReplicationClosed, Unreachable};
use openraft::network::{
    Backoff, NetBackoff, NetSnapshot, NetStreamAppend, NetTransferLeader, NetVote, RPCOption, RaftNetworkFactory,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::AsyncReadExt;
use tonic::transport::{Channel, Endpoint};

use crate::config::{LinkLatency, Topology};
use crate::error::{Error, Result};
use crate::raft::append_link::{Idle, Link};
use crate::raft::snapshot_file::SnapshotFile;
use crate::raft::typ::{
    AppendEntriesRequest, GroupId, NodeId, RpcError, Snapshot, SnapshotResponse, StreamAppendResult, StreamingError,
    TransferLeaderRequest, TransferLeaderResponse, TypeConfig, Vote, VoteRequest, VoteResponse,
};
use crate::wire;

/// Bytes of snapshot file per streamed chunk.
const SNAPSHOT_CHUNK: usize = 1024 * 1024;
/// Largest gRPC message between nodes, and from clients: a forwarded
/// request or its reply (a value may hold a whole write, 32 MiB), a
/// client's `Batch`. tonic's default takes replies up to 4 MiB.
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;
/// How long to wait for a TCP connection to a peer.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// The pause before reporting that an append stream could not be opened.
const REOPEN_PAUSE: Duration = Duration::from_millis(250);
/// Times a replication stream lets the runtime's other ready tasks run
/// before it asks openraft for its next request (see
/// [`Peers::stream_append`]).
const COALESCING_YIELDS: usize = 3;
/// How long a streamed append may wait for its answer before the stream
/// ends as unreachable: a follower paused or cut off is given up on this
/// soon, as the gRPC connection's keep-alive gives up on it (a ping after
/// 1 s of silence, then 2 s for its answer).
const REPLY_TIMEOUT: Duration = Duration::from_secs(3);

/// The error for a node the topology does not name.
fn not_a_peer(node: NodeId) -> Error {
    Error::Unreachable {
        node,
        detail: "not a peer in the topology".into(),
    }
}

/// A transport failure, as openraft wants it.
fn unreachable(e: &dyn std::fmt::Display) -> RpcError {
    RpcError::Unreachable(Unreachable::from_string(e.to_string()))
}

/// Connections to every other node, keyed by node id.
#[derive(Clone)]
pub struct Peers {
    clients: Arc<HashMap<NodeId, RaftClient<Channel>>>,
    /// Each peer's `grpc_addr`, where replication connections go too.
    addrs: Arc<HashMap<NodeId, SocketAddr>>,
    /// Replication connections between streams.
    idle: Arc<Idle>,
    /// Injected latency per node (none for most).
    delays: Arc<HashMap<NodeId, Duration>>,
}

impl Peers {
    /// Lazily connected channels to every node of `topology` but `me`,
    /// each request to another zone or region delayed by `latency`.
    pub fn new(topology: &Topology, me: NodeId, latency: LinkLatency) -> Result<Self> {
        let my_spec = topology.node(me);
        let mut clients = HashMap::new();
        let mut addrs = HashMap::new();
        let mut delays = HashMap::new();
        for node in topology.nodes.iter().filter(|n| n.id != me) {
            let delay_ms = match my_spec {
                Some(mine) if mine.region != node.region => latency.between_regions_ms,
                Some(mine) if mine.zone != node.zone => latency.between_zones_ms,
                _ => 0,
            };
            if delay_ms > 0 {
                delays.insert(node.id, Duration::from_millis(delay_ms));
            }
            let endpoint = Endpoint::from_shared(format!("http://{}", node.grpc_addr))
                .map_err(|e| Error::Config(format!("node {}: bad grpc_addr: {e}", node.id)))?
                .connect_timeout(CONNECT_TIMEOUT)
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(1))
                .keep_alive_timeout(Duration::from_secs(2));
            let client = RaftClient::new(endpoint.connect_lazy())
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE);
            clients.insert(node.id, client);
            addrs.insert(node.id, node.grpc_addr);
        }
        Ok(Peers {
            clients: Arc::new(clients),
            addrs: Arc::new(addrs),
            idle: Arc::default(),
            delays: Arc::new(delays),
        })
    }

    /// Waits out the latency injected on the link to `node`, if any.
    pub async fn travel(&self, node: NodeId) {
        if let Some(delay) = self.delays.get(&node) {
            tokio::time::sleep(*delay).await;
        }
    }

    /// The client for `node`.
    pub fn client(&self, node: NodeId) -> Result<RaftClient<Channel>> {
        self.clients.get(&node).cloned().ok_or_else(|| not_a_peer(node))
    }

    /// The address of `node`'s replication connections.
    fn addr(&self, node: NodeId) -> Result<SocketAddr> {
        self.addrs.get(&node).copied().ok_or_else(|| not_a_peer(node))
    }

    /// One request and its reply to `target`'s replica of the group:
    /// `rpc` encoded, sent by `call` (a vote, a pre-vote, a leadership
    /// hand-over), and the group's answer decoded.
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
        let payload = wire::encode(rpc).map_err(|e| unreachable(&e))?;
        let client = self.client(target).map_err(|e| unreachable(&e))?;
        self.travel(target).await;
        let mut request = tonic::Request::new(RaftRequest { group_id, payload });
        request.set_timeout(option.hard_ttl());
        let reply = call(client, request).await.map_err(|e| unreachable(&e))?;
        let answer: Result<Resp, String> = wire::decode(&reply.into_inner().payload).map_err(|e| unreachable(&e))?;
        answer.map_err(|e| unreachable(&e))
    }
}

impl Peers {
    /// Carries one group's replication stream to `target` on a connection
    /// of its own; replies arrive in request order.
    ///
    /// Opening the connection must succeed within the RPC's time budget;
    /// after that the stream lives as long as openraft feeds it and each
    /// request is answered within [`REPLY_TIMEOUT`].
    ///
    /// Once a request is answered, the stream yields to the runtime
    /// [`COALESCING_YIELDS`] times before it asks openraft for the next:
    /// writes that arrived meanwhile get that long to reach the group's
    /// log (a connection's task proposes them, the group's core appends
    /// them, the log wakes replication, a task hop each) and ride in the
    /// same request. Each group and follower exchange one request per
    /// round trip whatever the load, and a request costs about as much
    /// with one write as with ten, so the fewer requests a load needs the
    /// less CPU each write takes (BENCHMARKS.md). With nothing else ready
    /// to run, the yields return at once.
    ///
    /// # Correctness
    ///
    /// openraft records each request's send time when it generates the
    /// request, and credits an answer to the latest request recorded whose
    /// last log id the answer covers, renewing the leader lease from that
    /// time. An entry-less request (a new commit index, nothing to append)
    /// repeats the last log id of the request before it, so with both in
    /// flight an answer to the earlier one renews the lease from a send the
    /// follower never answered. A leader paused past its lease and resumed
    /// did exactly that, and served a stale read (found by cairn-jepsen).
    /// So a request is only asked of openraft once the one before it was
    /// answered: one request in flight per group and follower, as
    /// openraft's own sequential stream has.
    pub async fn stream_append<S>(
        &self,
        target: NodeId,
        group_id: GroupId,
        input: S,
        option: &RPCOption,
    ) -> Result<BoxStream<'static, Result<StreamAppendResult, RpcError>>, RpcError>
    where
        S: Stream<Item = AppendEntriesRequest> + Send + Unpin + 'static,
    {
        let addr = self.addr(target).map_err(|e| unreachable(&e))?;
        let opened = match self.idle.take(addr, group_id) {
            Some(link) => Ok(link),
            None => match tokio::time::timeout(option.hard_ttl(), Link::open(addr, group_id)).await {
                Ok(Ok(link)) => Ok(link),
                Ok(Err(err)) => Err(format!("append stream to node {target}: {err}")),
                Err(_) => Err(format!("append stream to node {target} not opened in time")),
            },
        };
        let link = match opened {
            Ok(link) => link,
            Err(why) => {
                // openraft opens the next stream at once (its backoff paces
                // the requests of an open stream only): without this pause a
                // stopped peer, refusing connections, would cost a busy loop
                // of connection attempts and warnings per group.
                tokio::time::sleep(REOPEN_PAUSE).await;
                return Err(unreachable(&why));
            }
        };
        let peers = self.clone();
        let results = futures::stream::unfold(Some((input, link)), move |state| {
            let peers = peers.clone();
            async move {
                let (mut input, mut link) = state?;
                for _ in 0..COALESCING_YIELDS {
                    tokio::task::yield_now().await;
                }
                let Some(rpc) = input.next().await else {
                    // Every request answered, and the last one taken: the
                    // follower's end still serves the group.
                    peers.idle.put(addr, group_id, link);
                    return None;
                };
                peers.travel(target).await;
                let exchange = async {
                    let request = wire::encode(&rpc).map_err(|e| unreachable(&e))?;
                    link.exchange(&request).await.map_err(|e| unreachable(&e))
                };
                let reply = match tokio::time::timeout(REPLY_TIMEOUT, exchange).await {
                    Ok(reply) => reply,
                    Err(_) => Err(unreachable(&format!(
                        "node {target} did not answer within {REPLY_TIMEOUT:?}"
                    ))),
                };
                let result = reply.and_then(|reply| {
                    let answer: Result<StreamAppendResult, String> =
                        wire::decode(&reply).map_err(|e| unreachable(&e))?;
                    answer.map_err(|e| unreachable(&e))
                });
                // After a failure the link's state is unknown, and after a
                // refusal openraft ends its session: either way the stream
                // ends, closing its link, and openraft opens another.
                let next = matches!(result, Ok(Ok(_))).then_some((input, link));
                Some((result, next))
            }
        });
        Ok(results.boxed())
    }

    /// Streams a snapshot file to `target`'s replica of the group.
    pub async fn full_snapshot(
        &self,
        target: NodeId,
        group_id: GroupId,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
    ) -> Result<SnapshotResponse, StreamingError> {
        let unreachable =
            |e: &dyn std::fmt::Display| StreamingError::Unreachable(Unreachable::from_string(e.to_string()));
        let header = wire::encode(&(vote, snapshot.meta.clone())).map_err(|e| unreachable(&e))?;
        let mut client = self.client(target).map_err(|e| unreachable(&e))?;
        self.travel(target).await;
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
    type Network = GroupClient;

    async fn new_client(&mut self, target: NodeId, _node: &openraft::EmptyNode) -> Self::Network {
        GroupClient {
            peers: self.peers.clone(),
            target,
            group: self.group,
        }
    }
}

/// One group's link to one peer, as openraft's replication and election
/// tasks use it.
pub struct GroupClient {
    peers: Peers,
    target: NodeId,
    group: GroupId,
}

impl NetStreamAppend<TypeConfig> for GroupClient {
    fn stream_append<'s, S>(
        &'s mut self,
        input: S,
        option: RPCOption,
    ) -> BoxFuture<'s, Result<BoxStream<'s, Result<StreamAppendResult, RpcError>>, RpcError>>
    where
        S: Stream<Item = AppendEntriesRequest> + OptionalSend + Unpin + 'static,
    {
        Box::pin(async move { self.peers.stream_append(self.target, self.group, input, &option).await })
    }
}

impl NetVote<TypeConfig> for GroupClient {
    async fn vote(&mut self, rpc: VoteRequest, option: RPCOption) -> Result<VoteResponse, RpcError> {
        let call = |mut c: RaftClient<Channel>, r| async move { c.vote(r).await };
        self.peers.unary(self.target, self.group, &rpc, &option, call).await
    }

    async fn pre_vote(&mut self, rpc: VoteRequest, option: RPCOption) -> Result<VoteResponse, RpcError> {
        let call = |mut c: RaftClient<Channel>, r| async move { c.pre_vote(r).await };
        self.peers.unary(self.target, self.group, &rpc, &option, call).await
    }
}

impl NetSnapshot<TypeConfig> for GroupClient {
    type SnapshotData = SnapshotFile;

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse, StreamingError> {
        self.peers
            .full_snapshot(self.target, self.group, vote, snapshot, cancel)
            .await
    }
}

impl NetTransferLeader<TypeConfig> for GroupClient {
    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse, RpcError> {
        let call = |mut c: RaftClient<Channel>, r| async move { c.transfer_leader(r).await };
        self.peers.unary(self.target, self.group, &req, &option, call).await
    }
}

impl NetBackoff<TypeConfig> for GroupClient {
    /// openraft's default backoff (from its config).
    fn backoff(&self) -> Option<Backoff> {
        None
    }
}

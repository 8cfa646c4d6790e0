//! The gRPC front of a node: the peer-facing `Raft` service, the `Kv`
//! service for applications and the `Admin` service for operators, all on
//! the node's `grpc_addr`, and beside them the replication connections
//! of [`crate::raft::append_link`], told from HTTP/2 by their first bytes.

mod admin_service;
mod append_links;
mod kv_service;
mod raft_service;

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use cairn_proto::admin::admin_server::AdminServer;
use cairn_proto::kv::kv_server::KvServer;
use cairn_proto::raft::raft_server::RaftServer;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::error::{Error, Result};
use crate::node::Node;
use crate::raft::append_link::MAGIC;
use crate::raft::network::MAX_MESSAGE;

/// How long a new connection may take to show its first bytes before it
/// is taken for HTTP/2.
const SORT_TIMEOUT: Duration = Duration::from_secs(5);
/// The pause after a failed accept (out of file descriptors, say).
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Serves every gRPC service on `listener` until `shutdown` completes.
pub async fn serve(listener: TcpListener, node: Arc<Node>, shutdown: impl Future<Output = ()>) -> Result<()> {
    let raft = RaftServer::new(raft_service::RaftService::new(node.clone()))
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let kv = KvServer::new(kv_service::KvService::new(node.clone()))
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let admin = AdminServer::new(admin_service::AdminService::new(node.clone()));
    let (http2, incoming) = mpsc::channel(64);
    let sorting = tokio::spawn(sort_connections(listener, node, http2));
    let served = tonic::transport::Server::builder()
        .add_service(raft)
        .add_service(kv)
        .add_service(admin)
        .serve_with_incoming_shutdown(ReceiverStream::new(incoming), shutdown)
        .await;
    sorting.abort();
    served.map_err(|e| Error::Storage(format!("grpc server: {e}")))
}

/// Accepts every connection to `listener`: a replication connection is
/// served by [`append_links`], any other is handed to `http2`.
async fn sort_connections(listener: TcpListener, node: Arc<Node>, http2: mpsc::Sender<io::Result<TcpStream>>) {
    loop {
        let mut socket = match listener.accept().await {
            Ok((socket, _)) => socket,
            Err(err) => {
                tracing::warn!(cause = %err, "grpc_addr: accept failed");
                tokio::time::sleep(ACCEPT_PAUSE).await;
                continue;
            }
        };
        // Nagle's algorithm would hold small replies back for the peer's
        // delayed ACK: milliseconds on every forwarded request and heartbeat.
        if let Err(err) = socket.set_nodelay(true) {
            tracing::warn!(cause = %err, "grpc_addr: TCP_NODELAY not set");
        }
        let node = node.clone();
        let http2 = http2.clone();
        tokio::spawn(async move {
            if starts_with_magic(&socket).await {
                let mut magic = MAGIC;
                if socket.read_exact(&mut magic).await.is_ok() {
                    append_links::serve(socket, node).await;
                }
            } else {
                let _ = http2.send(Ok(socket)).await;
            }
        });
    }
}

/// Whether `socket`'s first bytes are [`MAGIC`], read without taking them.
async fn starts_with_magic(socket: &TcpStream) -> bool {
    let sniff = async {
        let mut first = [0; MAGIC.len()];
        loop {
            match socket.peek(&mut first).await {
                Ok(n) if n == first.len() => return first == MAGIC,
                Ok(n) if n > 0 && first[..n] == MAGIC[..n] => {
                    // The rest of the magic is on its way.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                // Closed, failed, or not the magic: HTTP/2's to answer.
                _ => return false,
            }
        }
    };
    tokio::time::timeout(SORT_TIMEOUT, sniff).await.unwrap_or(false)
}

/// The metadata key that asks a node not to forward (see `kv.proto`).
pub const ROUTE_METADATA: &str = "cairn-route";
/// The metadata key naming the shard leader a node knows of.
pub const LEADER_METADATA: &str = "cairn-leader";

/// Maps a node error to the gRPC status a client sees; a known leader
/// travels in the `cairn-leader` metadata.
pub fn status(err: Error) -> tonic::Status {
    let message = err.to_string();
    match err {
        Error::NotLeader {
            leader: Some(leader), ..
        } => {
            let mut status = tonic::Status::unavailable(message);
            status
                .metadata_mut()
                .insert(LEADER_METADATA, leader.to_string().parse().expect("digits are ascii"));
            status
        }
        Error::NotLeader { .. }
        | Error::NoLeader { .. }
        | Error::Unreachable { .. }
        | Error::NoWitness { .. }
        | Error::NoLease { .. }
        | Error::NotServing { .. } => tonic::Status::unavailable(message),
        Error::Failover(_) => tonic::Status::failed_precondition(message),
        Error::Indeterminate { .. } | Error::NotWitnessed { .. } => tonic::Status::unknown(message),
        Error::Config(_) | Error::Wire(_) | Error::WriteTooLarge { .. } => tonic::Status::invalid_argument(message),
        _ => tonic::Status::internal(message),
    }
}

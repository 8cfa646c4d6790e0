//! The gRPC front of a node: the peer-facing `Raft` service, the `Kv`
//! service for applications and the `Admin` service for operators, all on
//! the node's `grpc_addr`.

mod admin_service;
mod kv_service;
mod raft_service;

use std::future::Future;
use std::sync::Arc;

use cairn_proto::admin::admin_server::AdminServer;
use cairn_proto::kv::kv_server::KvServer;
use cairn_proto::raft::raft_server::RaftServer;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

use crate::error::{Error, Result};
use crate::node::Node;

/// Largest message accepted (a Raft append, or a client's `Batch`).
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// Serves every gRPC service on `listener` until `shutdown` completes.
pub async fn serve(listener: TcpListener, node: Arc<Node>, shutdown: impl Future<Output = ()>) -> Result<()> {
    let raft = RaftServer::new(raft_service::RaftService::new(node.clone()))
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let kv = KvServer::new(kv_service::KvService::new(node.clone()))
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let admin = AdminServer::new(admin_service::AdminService::new(node));
    // Nagle's algorithm would hold small replies back for the peer's
    // delayed ACK: milliseconds on every forwarded request and heartbeat.
    tonic::transport::Server::builder()
        .add_service(raft)
        .add_service(kv)
        .add_service(admin)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), shutdown)
        .await
        .map_err(|e| Error::Storage(format!("grpc server: {e}")))
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
        Error::Config(_) | Error::Wire(_) => tonic::Status::invalid_argument(message),
        _ => tonic::Status::internal(message),
    }
}

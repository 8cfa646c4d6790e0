//! The `Admin` gRPC service: the cluster as this node sees it.

use std::sync::Arc;

use cairn_proto::admin::admin_server::Admin;
use cairn_proto::admin::{NodeStatus, ShardStatus, StatusReply, StatusRequest};
use tonic::{Request, Response, Status};

use crate::node::Node;

/// Serves operators.
pub struct AdminService {
    node: Arc<Node>,
}

impl AdminService {
    /// A service in front of `node`.
    pub fn new(node: Arc<Node>) -> Self {
        AdminService { node }
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn status(&self, _request: Request<StatusRequest>) -> Result<Response<StatusReply>, Status> {
        let topology = &self.node.config().topology;
        let nodes = topology
            .nodes
            .iter()
            .map(|n| NodeStatus {
                id: n.id,
                region: n.region.clone(),
                zone: n.zone.clone(),
                grpc_addr: n.grpc_addr.to_string(),
                resp_addr: n.resp_addr.to_string(),
            })
            .collect();
        let slots = self.node.slots();
        let shards = (0..u64::from(slots.shards()))
            .map(|id| {
                let (first_slot, last_slot) = slots.slot_range(id);
                let mut status = ShardStatus {
                    shard: id,
                    first_slot: first_slot.into(),
                    last_slot: last_slot.into(),
                    voters: topology.replicas(id),
                    ..Default::default()
                };
                if let Some(shard) = self.node.shard(id) {
                    let metrics = shard.metrics();
                    status.leader = metrics.current_leader.unwrap_or(0);
                    status.term = metrics.current_term;
                    status.committed_index = metrics.local_committed.as_ref().map_or(0, |l| l.index());
                    status.applied_index = metrics.last_applied.as_ref().map_or(0, |l| l.index());
                    status.keys = shard.key_count() as u64;
                }
                status
            })
            .collect();
        Ok(Response::new(StatusReply {
            answered_by: self.node.id(),
            cluster_name: topology.cluster_name.clone(),
            nodes,
            shards,
        }))
    }
}

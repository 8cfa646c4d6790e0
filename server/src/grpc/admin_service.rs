//! The `Admin` gRPC service: the cluster as this node sees it, once
//! (`Status`) or as a stream that announces every leader change (`Watch`),
//! which is how cairn-client keeps its routing table fresh without waiting
//! for a "not leader" error.
//!
//! A watch wakes on the groups' server metrics (they change on votes,
//! leader and membership changes, not on every applied entry) and on the
//! node's view of the meta group, and sends a new status when some shard's
//! leader or term, or some failover group's epoch, differs from the last one
//! sent, and at least every [`WATCH_REFRESH`] regardless, so a client whose
//! picture drifted (a stale hint from a node in the middle of an election)
//! is set right within that time.
//!
//! Each shard's status also carries its gseq in the cross-region log (the
//! answering node's replica) and, from the leader of its primary group,
//! what was shipped to each other region and what that region lacks; the
//! status carries the failover groups too. `Failover`, `Failovers` and
//! `Rpo` are `CAIRN.FAILOVER`, `CAIRN.FAILOVERS` and `CAIRN.RPO` (see
//! [`crate::failover`]).

use std::sync::Arc;
use std::time::Duration;

use cairn_proto::admin::admin_server::Admin;
use cairn_proto::admin::{
    FailoverGroupStatus, FailoverRecord, FailoverRequest, FailoversReply, NodeStatus, RpoReply, ShardRpo, ShardStatus,
    StatusReply, StatusRequest, XlogStatus,
};
use openraft::async_runtime::WatchReceiver;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::config::{Durability, RegionRole, RegionSpec};
use crate::failover;
use crate::grpc::status;
use crate::meta::{Failover, FailoverGroup, Policy};
use crate::node::Node;
use crate::placement::{RegionIndex, group_id};
use crate::shard::Shard;

/// Status messages a slow watcher may fall behind by.
const WATCH_BACKLOG: usize = 4;
/// The longest a watcher waits for a status, changed or not.
const WATCH_REFRESH: Duration = Duration::from_secs(1);

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

/// The cluster as `node` sees it now.
fn status_of(node: &Node) -> StatusReply {
    let topology = &node.config().topology;
    let nodes = topology
        .nodes
        .iter()
        .map(|n| NodeStatus {
            id: n.id,
            region: n.region.clone(),
            zone: n.zone.clone(),
            grpc_addr: n.grpc_addr.to_string(),
            resp_addr: n.resp_addr.to_string(),
            ro_addr: n.ro_addr.map(|a| a.to_string()).unwrap_or_default(),
            region_role: topology
                .region_of(n.id)
                .map(|(_, role)| role.name())
                .unwrap_or_default()
                .into(),
        })
        .collect();
    let slots = node.slots();
    let regions = topology.region_specs();
    let data_regions: Vec<RegionIndex> = (0..regions.len())
        .filter(|&i| regions[i].role != RegionRole::Witness)
        .map(|i| i as RegionIndex)
        .collect();
    let shards = (0..u64::from(slots.shards()))
        .map(|id| {
            let (first_slot, last_slot) = slots.slot_range(id);
            let mut status = ShardStatus {
                shard: id,
                first_slot: first_slot.into(),
                last_slot: last_slot.into(),
                voters: node.serving_replicas(id).to_vec(),
                replicas: data_regions
                    .iter()
                    .flat_map(|&region| topology.replicas_in(region, id))
                    .collect(),
                ..Default::default()
            };
            if let Some(own) = node.group(group_id(node.region().0, id)) {
                status.gseq = own.xlog_position().0;
            }
            if let Some(shard) = node.shard(id) {
                if shard.leader() == Some(node.id()) {
                    status.shipping = shipping_of(shard, &regions);
                }
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
    StatusReply {
        answered_by: node.id(),
        cluster_name: topology.cluster_name.clone(),
        nodes,
        shards,
        failover_groups: match node.has_meta_group() {
            true => node.failover_groups().iter().map(|g| group_status(node, g)).collect(),
            false => Vec::new(),
        },
    }
}

/// A failover group as the Admin service shows it.
fn group_status(node: &Node, group: &FailoverGroup) -> FailoverGroupStatus {
    let topology = &node.config().topology;
    let (policy, grace_ms) = match group.policy {
        Policy::Manual => ("manual", 0),
        Policy::Automatic { grace_ms } => ("automatic", grace_ms),
    };
    FailoverGroupStatus {
        name: group.name.clone(),
        epoch: group.epoch,
        primary: topology.region_name(group.primary),
        regions: group.regions.iter().map(|&r| topology.region_name(r)).collect(),
        policy: policy.into(),
        grace_ms,
        durability: match group.durability {
            Durability::Zone => "zone",
            Durability::Witness => "witness",
        }
        .into(),
        state: if group.failing.is_some() {
            "failing_over"
        } else {
            "serving"
        }
        .into(),
        failing_to: group
            .failing
            .as_ref()
            .map(|f| topology.region_name(f.to))
            .unwrap_or_default(),
        shards: group.shards.clone(),
    }
}

/// One failover as the Admin service shows it, with the epoch it
/// switched to.
fn failover_record(node: &Node, failover: &Failover, to_epoch: Option<u64>) -> FailoverRecord {
    let topology = &node.config().topology;
    let (lost_records, shards_unreported) = failover.lost();
    FailoverRecord {
        from_epoch: failover.from_epoch,
        from: topology.region_name(failover.from),
        to: topology.region_name(failover.to),
        kind: failover.kind().into(),
        by: failover.by.clone(),
        started_ms: failover.started_ms,
        rto_ms: failover.rto_ms(),
        handover: failover.handover.values().copied().collect(),
        lost_records,
        shards_unreported,
        aborted: failover.aborted.clone().unwrap_or_default(),
        to_epoch: to_epoch.unwrap_or_default(),
        group: failover.group.clone(),
        shards: failover.handover.keys().copied().collect(),
    }
}

/// What `shard`'s leader shipped to each destination region.
fn shipping_of(shard: &Shard, regions: &[RegionSpec]) -> Vec<XlogStatus> {
    shard
        .shipping()
        .into_iter()
        .map(|(region, progress, lag)| XlogStatus {
            region: regions
                .get(usize::from(region))
                .map(|r| r.name.clone())
                .unwrap_or_default(),
            shipped: progress.shipped,
            acked: progress.acked,
            lag_records: lag.records,
            lag_bytes: lag.bytes,
            lag_ms: lag.ms,
            stuck: progress.stuck.unwrap_or_default(),
        })
        .collect()
}

/// What a watch compares: every failover group's epoch and every shard's
/// leader and term.
type Routes = (Vec<u64>, Vec<(u64, u64)>);

/// Sends the status whenever a leader or term, or a failover group's
/// epoch, changes, until the watcher goes away or the node's groups stop.
async fn watch(node: Arc<Node>, tx: mpsc::Sender<Result<StatusReply, Status>>) {
    let mut watchers: Vec<_> = node.shards().map(|shard| shard.raft().server_metrics()).collect();
    let mut view = node.meta_view();
    // The groups' epochs and the shards' (leader, term) last sent.
    let mut sent: Option<Routes> = None;
    let mut refresh = false;
    loop {
        let status = status_of(&node);
        let epochs: Vec<u64> = status.failover_groups.iter().map(|g| g.epoch).collect();
        let leaders = (epochs, status.shards.iter().map(|s| (s.leader, s.term)).collect());
        if refresh || sent.as_ref() != Some(&leaders) {
            if tx.send(Ok(status)).await.is_err() {
                return;
            }
            sent = Some(leaders);
        }
        if watchers.is_empty() {
            tx.closed().await;
            return;
        }
        let changes = watchers.iter_mut().map(|w| Box::pin(w.changed()));
        refresh = false;
        tokio::select! {
            (changed, _, _) = futures::future::select_all(changes) => {
                if changed.is_err() {
                    return; // a group stopped: the node is going down
                }
            }
            changed = view.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = tokio::time::sleep(WATCH_REFRESH) => refresh = true,
            () = tx.closed() => return,
        }
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    type WatchStream = ReceiverStream<Result<StatusReply, Status>>;

    async fn status(&self, _request: Request<StatusRequest>) -> Result<Response<StatusReply>, Status> {
        Ok(Response::new(status_of(&self.node)))
    }

    async fn watch(&self, _request: Request<StatusRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let (tx, rx) = mpsc::channel(WATCH_BACKLOG);
        tokio::spawn(watch(self.node.clone(), tx));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn failover(&self, request: Request<FailoverRequest>) -> Result<Response<FailoverRecord>, Status> {
        let from = request.remote_addr().map_or_else(|| "?".to_string(), |a| a.to_string());
        let request = request.into_inner();
        let node = &self.node;
        let to = failover::target(node, &request.group, &request.to).map_err(status)?;
        let by = format!("admin ({from})");
        let (done, to_epoch) = failover::start(node, &request.group, to, request.force, by)
            .await
            .map_err(status)?;
        Ok(Response::new(failover_record(node, &done, to_epoch)))
    }

    async fn failovers(&self, _request: Request<StatusRequest>) -> Result<Response<FailoversReply>, Status> {
        let node = &self.node;
        if !node.has_meta_group() {
            return Ok(Response::new(FailoversReply::default()));
        }
        let meta = node.read_meta().await.map_err(status)?;
        let failovers = meta
            .history
            .iter()
            .map(|f| failover_record(node, f, meta.to_epoch(f)))
            .collect();
        Ok(Response::new(FailoversReply { failovers }))
    }

    async fn rpo(&self, _request: Request<StatusRequest>) -> Result<Response<RpoReply>, Status> {
        if !self.node.has_meta_group() {
            return Ok(Response::new(RpoReply::default()));
        }
        let shards = failover::rpo(&self.node).await.map_err(status)?;
        let shards = shards
            .into_iter()
            .map(|(shard, rpo)| ShardRpo {
                shard,
                head: rpo.head,
                safe: rpo.safe,
                lost_records: rpo.lost.records,
                lost_bytes: rpo.lost.bytes,
                lost_ms: rpo.lost.ms,
            })
            .collect();
        Ok(Response::new(RpoReply { shards }))
    }
}

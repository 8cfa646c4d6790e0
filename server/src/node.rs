//! A node: every group this process replicates, and the routing that lets
//! any node answer for any key.
//!
//! [`Node::start`] locks the data directory, opens the node store, starts
//! one Raft group per shard its region's placement gives it a replica of
//! (see [`crate::placement`]; a witness holds none) and, for the groups it
//! is the preferred leader of, initialises a pristine group with one voter
//! per zone of its region (so leaders start spread over the nodes).
//!
//! [`Node::execute`] runs a request on the leader of the shard's group in
//! the primary region: here when this node leads it, otherwise forwarded
//! over gRPC and the answer relayed (a node of another region always
//! forwards). It
//! follows leader changes within [`REQUEST_TIMEOUT`]. Reads are always safe
//! to retry; a write is retried only when it certainly was not proposed
//! (the leader refused it, or the connection to the leader could not even be
//! opened), so a write is never applied twice by the node's own retries.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use cairn_proto::raft::{ForwardRequest, RaftRequest};
use openraft::storage::RaftLogStorage;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::acl::{ACL_SHARD, DEFAULT_USER, User, Users};
use crate::config::{Durability, NodeConfig, PastBound, RaftOptions, ReadOnlyOptions, RegionRole};
use crate::error::{Error, Result};
use crate::keyspace::{Read, Reply, Write, WriteOp};
use crate::lease::Lease;
use crate::meta::{FailoverGroup, META_GROUP, Meta, MetaAnswer, MetaOp, group_of};
use crate::placement::{RegionIndex, group_id, region_of_group, shard_of_group};
use crate::proposals;
use crate::raft::log_store::LogStore;
use crate::raft::network::{GroupNetwork, Peers};
use crate::raft::state_machine::{Applied, StateMachine};
use crate::raft::typ::{GroupId, NodeId, Raft};
use crate::shard::{Answer, Request, Shard, WritePolicy};
use crate::slot::SlotMap;
use crate::storage::{Batch, GroupCommit, RocksStorage, Storage};
use crate::wire;
use crate::witness::{WitnessAnswer, WitnessBatch, WitnessCall, WitnessStore};
use crate::xlog::{Record, Stance};

/// How long a request may spend finding a leader before it fails.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// First pause between attempts while a shard elects a leader.
const RETRY_BACKOFF: Duration = Duration::from_millis(10);
/// Longest pause between attempts.
const MAX_RETRY_BACKOFF: Duration = Duration::from_millis(200);
/// Why a topology's failover group of a shard is always there: the
/// shards none declares make `default` (see [`crate::placement`]).
const EVERY_SHARD_GROUPED: &str = "every shard is in a failover group";

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// The leader, after its lease (or a ReadIndex round) confirmed it.
    Linearizable,
    /// The leader, after a ReadIndex round.
    ReadIndex,
    /// Any replica provably at most this far behind its leader.
    Bounded(Duration),
    /// Any replica, as it is.
    Stale,
}

/// Why a forwarded request failed, as sent back to the forwarding node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ForwardError {
    /// The receiver does not lead the shard (nothing was proposed).
    NotLeader(Option<NodeId>),
    /// No leader is known.
    NoLeader,
    /// The write may or may not have been applied.
    Indeterminate,
    /// The witness cannot be reached (nothing was written).
    NoWitness,
    /// The write was applied, the witness did not acknowledge it in time.
    NotWitnessed(u64),
    /// The receiver holds no primary lease (nothing was done).
    NoLease,
    /// The receiver's group is sealed by a failover (nothing was done).
    NotServing,
    /// Anything else; not retried.
    Failed(String),
}

impl ForwardError {
    /// The wire form of a local error.
    pub fn from_error(err: &Error) -> Self {
        match err {
            Error::NotLeader { leader, .. } => ForwardError::NotLeader(*leader),
            Error::NoLeader { .. } => ForwardError::NoLeader,
            Error::Indeterminate { .. } => ForwardError::Indeterminate,
            Error::NoWitness { .. } => ForwardError::NoWitness,
            Error::NotWitnessed { waited_ms, .. } => ForwardError::NotWitnessed(*waited_ms),
            Error::NoLease { .. } => ForwardError::NoLease,
            Error::NotServing { .. } => ForwardError::NotServing,
            other => ForwardError::Failed(other.to_string()),
        }
    }

    fn into_error(self, shard: GroupId, node: NodeId) -> Error {
        match self {
            ForwardError::NotLeader(leader) => Error::NotLeader { shard, leader },
            ForwardError::NoLeader => Error::NoLeader { shard },
            ForwardError::Indeterminate => Error::Indeterminate { shard },
            ForwardError::NoWitness => Error::NoWitness { shard },
            ForwardError::NotWitnessed(waited_ms) => Error::NotWitnessed { shard, waited_ms },
            ForwardError::NoLease => Error::NoLease { shard },
            ForwardError::NotServing => Error::NotServing { shard },
            ForwardError::Failed(detail) => Error::Unreachable { node, detail },
        }
    }
}

/// One running node.
pub struct Node {
    config: NodeConfig,
    slots: SlotMap,
    /// Every local replica of a shard's group, by group id.
    shards: BTreeMap<GroupId, Shard>,
    /// This node's replica of the meta group, on its region's first node.
    meta: Option<Shard>,
    /// The meta group's state as this node last heard it (see
    /// [`crate::lease`]).
    view: watch::Sender<Meta>,
    /// The failover groups as the topology starts them, until the meta
    /// group says more.
    initial_groups: Vec<FailoverGroup>,
    /// This node's primary lease of each failover group, by name.
    leases: BTreeMap<String, Arc<Lease>>,
    /// This node's region.
    region: RegionIndex,
    /// Its role.
    role: RegionRole,
    /// The voters of every group of every data region, and of the meta
    /// group.
    replicas: BTreeMap<GroupId, Vec<NodeId>>,
    peers: Peers,
    storage: Arc<dyn Storage>,
    /// The store's committer thread (its sync count is in `INFO`).
    commit: GroupCommit,
    /// The `default` user as this node's config describes it, until the
    /// replicated users table has one.
    default_user: Arc<User>,
    /// The users table as last fetched from the ACL shard's leader, for a
    /// node that holds no replica of its serving group.
    fetched_users: RwLock<Option<Users>>,
    /// The cross-region log's records, on the witness.
    witness: Option<WitnessStore>,
    /// Held for the life of the node: the exclusive lock on the data dir.
    _lock: File,
}

impl Node {
    /// Opens the data dir and starts every group this node replicates.
    pub async fn start(config: NodeConfig) -> Result<Node> {
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let lock = lock_data_dir(&dir)?;
        std::fs::write(dir.join("pid"), format!("{}\n", std::process::id()))
            .map_err(|e| Error::io(dir.join("pid"), e))?;

        let storage: Arc<dyn Storage> = Arc::new(RocksStorage::open(&dir.join("store"))?);
        let commit = GroupCommit::start(&storage).map_err(|e| Error::io(&dir, e))?;
        let peers = Peers::new(&config.topology, config.id, config.link_latency)?;
        let raft_config = Arc::new(crate::raft::openraft_config(
            &config.topology.cluster_name,
            &config.raft,
        )?);
        let slots = SlotMap::new(config.topology.shards);

        let topology = &config.topology;
        let (region, role) = topology.region_of(config.id).expect("validated at load");
        let holds_data = role != RegionRole::Witness;
        let several_regions = topology.region_specs().len() > 1;
        let initial_groups = topology.failover_groups();
        let leases: BTreeMap<String, Arc<Lease>> = initial_groups
            .iter()
            .map(|g| (g.name.clone(), Arc::new(Lease::default())))
            .collect();
        let witness_region = topology.witness_region();
        let opener = GroupOpener {
            id: config.id,
            storage: &storage,
            commit: &commit,
            peers: &peers,
            raft_config: &raft_config,
            fsync: config.storage.fsync,
        };
        let mut shards = BTreeMap::new();
        for shard in (0..u64::from(slots.shards())).filter(|_| holds_data) {
            let replicas = topology.replicas_in(region, shard);
            if !replicas.contains(&config.id) {
                continue;
            }
            let group = group_id(region, shard);
            // A node belongs to one region, so its shard numbers name its
            // groups uniquely on its disk.
            let snapshots = dir.join("snapshots").join(format!("shard-{shard}"));
            let failover_group = group_of(&initial_groups, shard).expect(EVERY_SHARD_GROUPED);
            let stance = Stance {
                epoch: 1,
                serving: region == failover_group.primary,
            };
            let policy = WritePolicy {
                witness: witness_region.filter(|_| failover_group.durability == Durability::Witness),
                lease: several_regions.then(|| leases[&failover_group.name].clone()),
            };
            let state_machine = StateMachine::open(snapshots, several_regions, stance)?;
            let preferred = topology.preferred_leader(region, shard) == Some(config.id);
            let started = opener
                .open(group, state_machine, preferred.then_some(&replicas[..]))
                .await?;
            shards.insert(group, started.into_shard(group, config.id, policy));
        }
        let meta_voters = topology.meta_voters();
        let meta = match meta_voters.contains(&config.id) {
            true => {
                let state_machine = StateMachine::open(dir.join("snapshots").join("meta"), false, Stance::default())?;
                // The primary region's voter makes the group.
                let first = meta_voters.get(usize::from(topology.primary_region())).copied() == Some(config.id);
                // Its voters are regions apart: half the pace of a group
                // inside a region (a heartbeat must make its round trip
                // within its interval).
                let paced = RaftOptions {
                    heartbeat_ms: config.raft.heartbeat_ms * 2,
                    election_timeout_min_ms: config.raft.election_timeout_min_ms * 2,
                    election_timeout_max_ms: config.raft.election_timeout_max_ms * 2,
                    ..config.raft.clone()
                };
                let meta_config = Arc::new(crate::raft::openraft_config(&topology.cluster_name, &paced)?);
                let meta_opener = GroupOpener {
                    raft_config: &meta_config,
                    ..opener
                };
                let members = first.then_some(&meta_voters[..]);
                let started = meta_opener.open(META_GROUP, state_machine, members).await?;
                Some(started.into_shard(META_GROUP, config.id, WritePolicy::default()))
            }
            false => None,
        };
        tracing::info!(node = config.id, region, groups = shards.len(), dir = %dir.display(), "node started");
        let default_user = Arc::new(User::default_user(config.auth.requirepass.as_deref()));
        let witness = match role {
            RegionRole::Witness => Some(WitnessStore::open(
                storage.clone(),
                commit.clone(),
                u64::from(slots.shards()),
                config.xlog.max_records,
            )?),
            _ => None,
        };
        let regions = topology.region_specs().len() as RegionIndex;
        let replicas = (0..regions)
            .flat_map(|r| (0..u64::from(slots.shards())).map(move |s| (r, s)))
            .map(|(r, s)| (group_id(r, s), topology.replicas_in(r, s)))
            .chain(std::iter::once((META_GROUP, meta_voters)))
            .filter(|(_, replicas)| !replicas.is_empty())
            .collect();
        Ok(Node {
            config,
            slots,
            shards,
            meta,
            view: watch::Sender::new(Meta::default()),
            initial_groups,
            leases,
            region,
            role,
            replicas,
            peers,
            storage,
            commit,
            default_user,
            fetched_users: RwLock::default(),
            witness,
            _lock: lock,
        })
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.config.id
    }

    /// The node's configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// Fsyncs of the store since the node started, each covering every
    /// write waiting on one.
    pub fn log_fsyncs(&self) -> u64 {
        self.commit.syncs()
    }

    /// Raft entries this node proposed to its groups that committed, and
    /// the writes they held (see [`crate::proposals`]).
    pub fn proposed(&self) -> (u64, u64) {
        self.shards
            .values()
            .chain(&self.meta)
            .map(Shard::proposed)
            .fold((0, 0), |(entries, writes), p| {
                (
                    entries + p.entries.load(Ordering::Relaxed),
                    writes + p.writes.load(Ordering::Relaxed),
                )
            })
    }

    /// The slot map.
    pub fn slots(&self) -> SlotMap {
        self.slots
    }

    /// The local replica of the group serving `shard` (its failover
    /// group's primary region's), if this node holds one.
    pub fn shard(&self, shard: u64) -> Option<&Shard> {
        self.shards.get(&group_id(self.primary_of(shard), shard))
    }

    /// The local replica of group `group`, whatever its region (or the
    /// meta group's).
    pub fn group(&self, group: GroupId) -> Option<&Shard> {
        match group {
            META_GROUP => self.meta.as_ref(),
            _ => self.shards.get(&group),
        }
    }

    /// The voters of the group serving `shard`.
    pub fn serving_replicas(&self, shard: u64) -> &[NodeId] {
        self.replicas_of(group_id(self.primary_of(shard), shard))
    }

    /// The region whose group of `shard` takes its writes, as this node
    /// last heard.
    pub fn primary_of(&self, shard: u64) -> RegionIndex {
        let view = self.view.borrow();
        match view.group_of(shard) {
            Some(group) => group.primary,
            None => {
                group_of(&self.initial_groups, shard)
                    .expect(EVERY_SHARD_GROUPED)
                    .primary
            }
        }
    }

    /// The failover groups as this node last heard of them.
    pub fn failover_groups(&self) -> Vec<FailoverGroup> {
        let view = self.view.borrow();
        match view.groups.is_empty() {
            true => self.initial_groups.clone(),
            false => view.groups.clone(),
        }
    }

    /// The meta group's state as this node last heard it, and its changes.
    pub fn meta_view(&self) -> watch::Receiver<Meta> {
        self.view.subscribe()
    }

    /// Notes the meta group's state, as just read or answered.
    pub fn set_meta(&self, meta: Meta) {
        self.view.send_if_modified(|view| {
            let changed = *view != meta;
            *view = meta;
            changed
        });
    }

    /// Whether the cluster has a meta group (several regions).
    pub fn has_meta_group(&self) -> bool {
        !self.replicas_of(META_GROUP).is_empty()
    }

    /// This node's replica of the meta group, on a meta voter.
    pub fn meta_replica(&self) -> Option<&Shard> {
        self.meta.as_ref()
    }

    /// This node's primary lease of failover group `group`.
    pub fn lease(&self, group: &str) -> Option<&Lease> {
        self.leases.get(group).map(|l| &**l)
    }

    /// Proposes `op` to the meta group; its answer.
    pub async fn execute_meta(&self, op: MetaOp) -> Result<MetaAnswer> {
        let answer = self
            .execute_in(META_GROUP, Request::Write(Write::new(WriteOp::Meta(Box::new(op)))))
            .await?;
        match answer.reply {
            Reply::Meta(answer) => {
                self.set_meta(answer.meta.clone());
                Ok(*answer)
            }
            other => Err(Error::Wire(format!("the meta group answered {other:?}"))),
        }
    }

    /// Reads the meta group's state linearizably.
    pub async fn read_meta(&self) -> Result<Meta> {
        let answer = self.execute_in(META_GROUP, Request::Meta).await?;
        match answer.reply {
            Reply::Meta(answer) => Ok(answer.meta),
            other => Err(Error::Wire(format!("the meta group answered {other:?}"))),
        }
    }

    /// The voters of group `group` (none for a group no region has).
    pub fn replicas_of(&self, group: GroupId) -> &[NodeId] {
        self.replicas.get(&group).map_or(&[], Vec::as_slice)
    }

    /// The witness's store, on the witness node.
    pub fn witness(&self) -> Option<&WitnessStore> {
        self.witness.as_ref()
    }

    /// Ships `batch` to the witness node `witness`; the gseq it then holds
    /// for the shard.
    pub async fn send_to_witness(&self, witness: NodeId, batch: WitnessBatch) -> Result<u64> {
        match self.call_witness(witness, WitnessCall::Store(batch)).await? {
            WitnessAnswer::Held(gseq) => Ok(gseq),
            other => Err(Error::Wire(format!("the witness answered {other:?}"))),
        }
    }

    /// The witness's records of `shard` after `after`, refusing batches of
    /// epochs before `epoch` from then on (see [`WitnessStore::pull`]).
    pub async fn pull_from_witness(&self, witness: NodeId, shard: u64, after: u64, epoch: u64) -> Result<Vec<Record>> {
        match self
            .call_witness(witness, WitnessCall::Pull { shard, after, epoch })
            .await?
        {
            WitnessAnswer::Records(records) => Ok(records),
            other => Err(Error::Wire(format!("the witness answered {other:?}"))),
        }
    }

    async fn call_witness(&self, witness: NodeId, request: WitnessCall) -> Result<WitnessAnswer> {
        // The witness drives failovers too when it leads the meta group.
        if let (true, Some(store)) = (witness == self.id(), &self.witness) {
            return store.call(request).await;
        }
        let mut client = self.peers.client(witness)?;
        self.peers.travel(witness).await;
        let mut call = tonic::Request::new(RaftRequest {
            group_id: 0,
            payload: wire::encode(&request)?,
        });
        call.set_timeout(REQUEST_TIMEOUT);
        let unreachable = |detail: String| Error::Unreachable { node: witness, detail };
        let reply = client
            .witness(call)
            .await
            .map_err(|status| unreachable(status.message().to_string()))?;
        let answer: std::result::Result<WitnessAnswer, String> = wire::decode(&reply.into_inner().payload)?;
        answer.map_err(unreachable)
    }

    /// This node's region and its role.
    pub fn region(&self) -> (RegionIndex, RegionRole) {
        (self.region, self.role)
    }

    /// Every local replica.
    pub fn shards(&self) -> impl Iterator<Item = &Shard> {
        self.shards.values()
    }

    /// The local replicas of the groups that serve their shards.
    pub fn serving(&self) -> impl Iterator<Item = &Shard> {
        (0..u64::from(self.slots.shards())).filter_map(|shard| self.shard(shard))
    }

    /// The user of this name, as this node's replica of the users table
    /// has it (or, without a replica, the table last fetched: see
    /// [`Node::fetch_users`]); `default` is this node's own until the
    /// table has one.
    pub fn user(&self, name: &str) -> Option<Arc<User>> {
        let replicated = match self.shard(ACL_SHARD) {
            Some(shard) => shard.user(name),
            // Before the first fetch only `default` is known, as this
            // node's config describes it.
            None => self
                .fetched_users
                .read()
                .expect("users lock")
                .as_ref()
                .and_then(|u| u.get(name)),
        };
        replicated.or_else(|| (name == DEFAULT_USER).then(|| self.default_user.clone()))
    }

    /// Whether this node reads the users from the ACL shard's leader
    /// rather than from a replica of its own.
    pub fn fetches_users(&self) -> bool {
        self.shard(ACL_SHARD).is_none()
    }

    /// Reads the users table from [`ACL_SHARD`]'s leader (linearizably)
    /// and keeps it, for a node without a replica of that shard.
    pub async fn fetch_users(&self) -> Result<()> {
        let answer = self.execute(ACL_SHARD, Request::Users).await?;
        if let Reply::Users(users) = answer.reply {
            *self.fetched_users.write().expect("users lock") = Some(users);
        }
        Ok(())
    }

    /// Every user by name, `default` included.
    pub fn users(&self) -> Vec<(String, Arc<User>)> {
        let table = match self.shard(ACL_SHARD) {
            Some(shard) => shard.users(),
            None => self
                .fetched_users
                .read()
                .expect("users lock")
                .clone()
                .unwrap_or_default(),
        };
        let mut users: BTreeMap<String, Arc<User>> = table.iter().map(|(n, u)| (n.clone(), u.clone())).collect();
        users
            .entry(DEFAULT_USER.to_string())
            .or_insert_with(|| self.default_user.clone());
        users.into_iter().collect()
    }

    /// Executes `request` on the leader of the group serving `shard`,
    /// wherever it is.
    pub async fn execute(&self, shard: u64, request: Request) -> Result<Answer> {
        // A deliberate bug for cairn-jepsen's self-test: answer reads from
        // the local replica, without the linearizer.
        #[cfg(feature = "failpoints")]
        if let (Request::Read(read), Some(local)) = (&request, self.shard(shard)) {
            fail::fail_point!("stale-read", |_| Ok(local.read_local(read)));
        }
        // Across a failover the primary changes under the request: a
        // region without the lease, or sealed, did nothing, so the request
        // goes to the primary as the node then knows it.
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        let mut backoff = RETRY_BACKOFF;
        loop {
            let group = group_id(self.primary_of(shard), shard);
            match self.execute_until(group, request.clone(), deadline, true).await {
                Err(Error::NoLease { .. } | Error::NotServing { .. }) if Instant::now() + backoff < deadline => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_RETRY_BACKOFF);
                }
                other => return other,
            }
        }
    }

    /// Executes `request` on the leader of group `group` (of any region),
    /// wherever it is.
    pub async fn execute_in(&self, group: GroupId, request: Request) -> Result<Answer> {
        self.execute_until(group, request, Instant::now() + REQUEST_TIMEOUT, false)
            .await
    }

    /// [`Node::execute_in`], giving up at `deadline`, or as soon as the
    /// group's region is no longer the primary when `follows_primary`
    /// (answering [`Error::NoLease`]: nothing was done).
    async fn execute_until(
        &self,
        group: GroupId,
        request: Request,
        deadline: Instant,
        follows_primary: bool,
    ) -> Result<Answer> {
        let shard = shard_of_group(group);
        let is_write = matches!(request, Request::Write(_));
        let replicas = self.replicas_of(group);
        if replicas.is_empty() {
            return Err(Error::NoLeader { shard });
        }
        let mut backoff = RETRY_BACKOFF;
        let mut hint: Option<NodeId> = None;
        let mut attempt = 0usize;
        loop {
            let local = self.group(group);
            // Whom to ask: a fresh hint, else the leader this node knows of,
            // else (for a shard without a local replica) each replica in turn.
            let target = hint
                .take()
                .or_else(|| local.and_then(Shard::leader))
                .or_else(|| local.is_none().then(|| replicas[attempt % replicas.len()]));
            attempt += 1;
            let result = match target {
                Some(node) if node == self.config.id => match local {
                    Some(local) => local.execute(request.clone()).await,
                    None => Err(Error::NoLeader { shard }),
                },
                // Boxed, as openraft's futures are (see `crate::shard`):
                // a gRPC call's future is large, and this path is rare.
                Some(node) => Box::pin(self.forward(node, group, &request, deadline)).await,
                None => Err(Error::NoLeader { shard }),
            };
            let err = match result {
                Ok(answer) => return Ok(answer),
                Err(err) => err,
            };
            let retry = match &err {
                Error::NotLeader { leader, .. } => {
                    hint = leader.filter(|l| Some(*l) != target);
                    true
                }
                Error::NoLeader { .. } | Error::NoWitness { .. } => true,
                Error::Unreachable { .. } => !is_write,
                _ => false,
            };
            if !retry || Instant::now() + backoff >= deadline {
                return Err(match err {
                    Error::NotLeader { .. } => Error::NoLeader { shard },
                    other => other,
                });
            }
            // Nothing was done (or it is a read): the new primary may take it.
            if follows_primary && region_of_group(group) != self.primary_of(shard) {
                return Err(Error::NoLease { shard });
            }
            if hint.is_none() {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_RETRY_BACKOFF);
            }
        }
    }

    /// Executes `request` only if this node leads `shard`: for clients that
    /// route to leaders themselves and want to hear when they got it wrong.
    pub async fn execute_here(&self, shard: u64, request: Request) -> Result<Answer> {
        match self.shard(shard) {
            Some(local) => local.execute(request).await,
            None => Err(Error::NotLeader { shard, leader: None }),
        }
    }

    /// Answers `read` at the asked consistency: weaker levels are served by
    /// this node's replica when it may (on a secondary region's node, its
    /// own region's replica), the rest by the leader (here, or forwarded
    /// unless `direct`).
    pub async fn read(&self, shard: u64, read: Read, consistency: Consistency, direct: bool) -> Result<Answer> {
        let local = self.shard(shard);
        let request = match consistency {
            Consistency::Linearizable => Request::Read(read),
            Consistency::ReadIndex => Request::ReadIndex(read),
            Consistency::Bounded(bound) => match self
                .read_secondary(shard, &read, bound)
                .or_else(|| local.and_then(|l| l.read_bounded(&read, bound)))
            {
                Some(answer) => return Ok(answer),
                None => Request::Read(read),
            },
            Consistency::Stale => match local.or_else(|| self.secondary_replica(shard)) {
                Some(local) => return Ok(local.read_local(&read)),
                None => Request::Read(read),
            },
        };
        if direct {
            self.execute_here(shard, request).await
        } else {
            self.execute(shard, request).await
        }
    }

    /// This node's replica of `shard` in its own region, when that region
    /// is a secondary (data) region.
    fn secondary_replica(&self, shard: u64) -> Option<&Shard> {
        if self.role == RegionRole::Witness || self.region == self.primary_of(shard) {
            return None;
        }
        self.group(group_id(self.region, shard))
    }

    /// Reads this node's secondary replica of `shard` if its cross-region
    /// log shows it at most `bound` behind the primary.
    fn read_secondary(&self, shard: u64, read: &Read, bound: Duration) -> Option<Answer> {
        self.secondary_replica(shard)?.read_fresh(read, bound)
    }

    /// Executes `request` as the read-only listener does: a write is
    /// refused; a read is answered by this node's replica when it can show
    /// it is within `options`' staleness bound — a primary region's replica
    /// by its leader's contact (or a lease read if it leads), a secondary
    /// region's by the primary's clock its cross-region log carries — and
    /// otherwise forwarded to the primary's leader or refused, as `options`
    /// say.
    pub async fn execute_read_only(&self, shard: u64, request: Request, options: &ReadOnlyOptions) -> Result<Answer> {
        let read = match request {
            Request::Write(_) => return Err(Error::ReadOnly),
            Request::Users | Request::Meta | Request::Rpo { .. } | Request::Stance => {
                return self.execute(shard, request).await;
            }
            Request::Read(read) | Request::ReadIndex(read) => read,
        };
        let bound = Duration::from_millis(options.max_staleness_ms);
        if let Some(answer) = self.read_secondary(shard, &read, bound) {
            return Ok(answer);
        }
        let local = self.shard(shard);
        if let Some(answer) = local.and_then(|l| l.read_bounded(&read, bound)) {
            return Ok(answer);
        }
        if local.is_some_and(|l| l.leader() == Some(self.id())) {
            return self.execute_here(shard, Request::Read(read)).await;
        }
        match options.past_bound {
            PastBound::Forward => self.execute(shard, Request::Read(read)).await,
            PastBound::Refuse => Err(Error::PastStalenessBound {
                shard,
                bound_ms: options.max_staleness_ms,
            }),
        }
    }

    async fn forward(&self, node: NodeId, group: GroupId, request: &Request, deadline: Instant) -> Result<Answer> {
        let shard = shard_of_group(group);
        admit(request)?;
        let mut client = self.peers.client(node)?;
        self.peers.travel(node).await;
        let mut call = tonic::Request::new(ForwardRequest {
            group_id: group,
            payload: wire::encode(request)?,
        });
        call.set_timeout(deadline.saturating_duration_since(Instant::now()));
        let reply = match client.forward(call).await {
            Ok(reply) => reply.into_inner(),
            Err(status) if never_sent(&status) => {
                // Nothing reached the peer: as if it refused, so any request
                // may be retried (elsewhere, once a new leader is known).
                return Err(Error::NotLeader { shard, leader: None });
            }
            Err(status) => {
                return Err(match request {
                    Request::Write(_) => Error::Indeterminate { shard },
                    _ => Error::Unreachable {
                        node,
                        detail: status.message().to_string(),
                    },
                });
            }
        };
        let answer: std::result::Result<Answer, ForwardError> = wire::decode(&reply.payload)?;
        answer.map_err(|e| e.into_error(shard, node))
    }

    /// Stops every group and makes the store durable. A stopped node leaves
    /// no half-written file behind.
    pub async fn shutdown(&self) {
        for shard in self.shards.values().chain(&self.meta) {
            if let Err(err) = shard.raft().shutdown().await {
                tracing::warn!(group = shard.group, cause = %err, "raft group did not stop cleanly");
            }
        }
        // Queued log writes first: the committer writes and syncs them.
        if let Err(err) = self.commit.write_durably(Batch::default()).await {
            tracing::error!(cause = %err, "queued log writes failed");
        }
        if let Err(err) = self.storage.sync() {
            tracing::error!(cause = %err, "final fsync failed");
        }
        let _ = std::fs::remove_file(self.config.data_dir.join("pid"));
        tracing::info!(node = self.config.id, "node stopped");
    }

    /// The first fatal error of any local group, if one stopped.
    pub fn fatal(&self) -> Option<Error> {
        self.shards.values().chain(&self.meta).find_map(|shard| {
            shard.metrics().running_state.err().map(|e| Error::Fatal {
                shard: shard.shard,
                detail: e.to_string(),
            })
        })
    }
}

/// What a node opens its groups with.
#[derive(Clone, Copy)]
struct GroupOpener<'a> {
    id: NodeId,
    storage: &'a Arc<dyn Storage>,
    commit: &'a GroupCommit,
    peers: &'a Peers,
    raft_config: &'a Arc<openraft::Config>,
    fsync: crate::config::Fsync,
}

/// A group started on this node, before it is wrapped in a [`Shard`].
struct StartedGroup {
    raft: Raft,
    applied: Arc<RwLock<Applied>>,
    snapshot_dir: PathBuf,
    restart_horizon: u64,
}

impl GroupOpener<'_> {
    /// Starts group `group` over `state_machine`, first making its
    /// membership of `members` when given and the group is pristine.
    async fn open(
        &self,
        group: GroupId,
        state_machine: StateMachine,
        members: Option<&[NodeId]>,
    ) -> Result<StartedGroup> {
        let shard = shard_of_group(group);
        let fatal = |detail: String| Error::Fatal { shard, detail };
        let applied = state_machine.applied();
        let snapshot_dir = state_machine.dir().to_path_buf();
        let mut log_store = LogStore::new(self.storage.clone(), group, self.fsync, self.commit.clone());
        let restart_horizon = log_store
            .get_log_state()
            .await
            .map_err(|e| fatal(e.to_string()))?
            .last_log_id
            .map_or(0, |id| id.index());
        let network = GroupNetwork {
            peers: self.peers.clone(),
            group,
        };
        let raft = Raft::new(self.id, self.raft_config.clone(), network, log_store, state_machine)
            .await
            .map_err(|e| fatal(e.to_string()))?;
        if let Some(members) = members {
            initialize(&raft, shard, members).await?;
        }
        Ok(StartedGroup {
            raft,
            applied,
            snapshot_dir,
            restart_horizon,
        })
    }
}

impl StartedGroup {
    fn into_shard(self, group: GroupId, node: NodeId, policy: WritePolicy) -> Shard {
        Shard::new(
            group,
            node,
            self.raft,
            self.applied,
            self.snapshot_dir,
            self.restart_horizon,
            policy,
        )
    }
}

/// Creates a pristine group's membership: one voter per zone.
async fn initialize(raft: &Raft, shard: GroupId, replicas: &[NodeId]) -> Result<()> {
    let initialized = raft.is_initialized().await.map_err(|e| Error::Fatal {
        shard,
        detail: e.to_string(),
    })?;
    if initialized {
        return Ok(());
    }
    let members: std::collections::BTreeSet<NodeId> = replicas.iter().copied().collect();
    match raft.initialize(members).await {
        Ok(()) => {
            tracing::info!(shard, ?replicas, "group initialized");
            Ok(())
        }
        // Another replica's log already holds the membership: nothing to do.
        Err(openraft::error::RaftError::APIError(openraft::error::InitializeError::NotAllowed(_))) => Ok(()),
        Err(e) => Err(Error::Fatal {
            shard,
            detail: e.to_string(),
        }),
    }
}

/// Refuses a client's write too large to replicate before it is
/// forwarded ([`proposals::check_size`]; the leader's proposer refuses it
/// as well, where the size is counted anyway).
fn admit(request: &Request) -> Result<()> {
    match request {
        Request::Write(write) if !write.op.is_bookkeeping() => proposals::check_size(wire::encoded_len(write)?),
        _ => Ok(()),
    }
}

/// Takes the exclusive lock on a data dir, or names who holds it.
fn lock_data_dir(dir: &std::path::Path) -> Result<File> {
    let path: PathBuf = dir.join("LOCK");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            let pid = std::fs::read_to_string(dir.join("pid")).unwrap_or_default();
            Err(Error::Config(format!(
                "data dir {} is in use by another running cairn-server (pid {})",
                dir.display(),
                pid.trim()
            )))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
    }
}

/// Whether a failed call certainly never reached the peer (the connection
/// could not be opened), so that even a write may be retried.
fn never_sent(status: &tonic::Status) -> bool {
    if status.code() != tonic::Code::Unavailable {
        return false;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        source = err.source();
    }
    status.message().contains("tcp connect error") || status.message().contains("Connection refused")
}

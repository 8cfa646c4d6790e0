//! Node and topology configuration, read from TOML.
//!
//! Two files describe a node:
//!
//! - the **topology** (shared by every node of a cluster): the cluster name,
//!   the number of shards, the regions with their roles, and every node with
//!   its region, zone and addresses (which node holds which group is
//!   [`crate::placement`]'s);
//! - the **node config**: which node of the topology this process is, where
//!   its data lives, and its tunables (`[raft]`, `[storage]`).
//!
//! Paths inside a file are relative to that file's directory. Every field is
//! documented in `docs/example-node.toml` / `docs/example-topology.toml`.
//! Loading validates everything it can before the node starts, and every
//! error names the file, the key and what is wrong.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::placement::RegionIndex;
use crate::slot::SLOTS;

/// Default number of shards when the topology does not say.
pub const DEFAULT_SHARDS: u16 = 8;

/// The cluster layout every node shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// A name for the cluster, shown in status and `INFO`.
    pub cluster_name: String,
    /// How many shards the 16384 slots are divided into (default 8).
    #[serde(default = "default_shards")]
    pub shards: u16,
    /// The regions and their roles; none declared means one primary
    /// region, the one every node names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<RegionSpec>,
    /// When a write is acknowledged (default `zone`).
    #[serde(default, skip_serializing_if = "Durability::is_zone")]
    pub durability: Durability,
    /// When a failover group fails over without a human.
    #[serde(default, skip_serializing_if = "FailoverOptions::is_default")]
    pub failover: FailoverOptions,
    /// The failover groups of some shards each; the shards none names make
    /// the group `default` (every shard, when none is declared).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failover_groups: Vec<FailoverGroupSpec>,
    /// Every node of the cluster.
    pub nodes: Vec<NodeSpec>,
}

/// When a write is acknowledged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Once a majority of the primary region's zones hold it: losing a
    /// zone loses nothing; losing the whole region may lose the writes the
    /// other regions had not received yet.
    #[default]
    Zone,
    /// Also once the witness holds it (see [`crate::witness`]): losing the
    /// whole primary region loses nothing. A write waits for one more
    /// crossing, and is refused while the witness cannot be reached.
    Witness,
}

impl Durability {
    /// Whether this is the default, `zone`.
    pub fn is_zone(&self) -> bool {
        *self == Durability::Zone
    }
}

/// `[failover]`: when a failover group fails over without a human.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailoverOptions {
    /// `automatic` (the default): a forced failover to the next data
    /// region once the primary region has been silent for `grace_ms`;
    /// `manual`: only `CAIRN.FAILOVER`.
    #[serde(default)]
    pub policy: FailoverPolicy,
    /// How long the primary region may be silent (default 10000).
    #[serde(default = "default_grace_ms")]
    pub grace_ms: u64,
}

/// Whether a failover may start without a human.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailoverPolicy {
    /// After `grace_ms` of silence.
    #[default]
    Automatic,
    /// Only when asked.
    Manual,
}

fn default_grace_ms() -> u64 {
    10_000
}

impl Default for FailoverOptions {
    fn default() -> Self {
        FailoverOptions {
            policy: FailoverPolicy::default(),
            grace_ms: default_grace_ms(),
        }
    }
}

impl FailoverOptions {
    /// Whether these are the defaults.
    pub fn is_default(&self) -> bool {
        *self == FailoverOptions::default()
    }
}

/// What a region does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegionRole {
    /// Its groups take the writes (exactly one region).
    Primary,
    /// Keeps its own groups of every shard, fed from the primary.
    Secondary,
    /// Holds no data, only a window of the cross-region log and a vote in
    /// the meta group (at most one region, of one node).
    Witness,
}

impl RegionRole {
    /// The name as the topology file writes it.
    pub fn name(self) -> &'static str {
        match self {
            RegionRole::Primary => "primary",
            RegionRole::Secondary => "secondary",
            RegionRole::Witness => "witness",
        }
    }
}

/// One region of the cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionSpec {
    /// The name nodes give in their `region` key.
    pub name: String,
    /// What the region does.
    pub role: RegionRole,
}

/// `[[failover_groups]]`: shards that fail over together, from one
/// primary region to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailoverGroupSpec {
    /// The name `CAIRN.FAILOVER` takes.
    pub name: String,
    /// Its shards (numbers from 0).
    pub shards: Vec<u64>,
    /// The data region primary at first (default: the region with role
    /// `primary`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<String>,
    /// When its writes are acknowledged (default: the topology's
    /// `durability`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durability: Option<Durability>,
    /// When it fails over without a human (default: the topology's
    /// `[failover]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<FailoverOptions>,
}

impl std::str::FromStr for FailoverGroupSpec {
    type Err = String;

    /// Reads `NAME:SHARDS[:PRIMARY]` (e.g. `orders:0,1:west`), as
    /// `--failover-group` takes it.
    fn from_str(text: &str) -> std::result::Result<Self, String> {
        let usage = "use NAME:SHARDS[:PRIMARY], e.g. orders:0,1:region2";
        let mut parts = text.split(':');
        let (Some(name), Some(shards)) = (parts.next(), parts.next()) else {
            return Err(format!("{text:?} names no shards: {usage}"));
        };
        let primary = parts.next().map(str::to_string);
        if parts.next().is_some() {
            return Err(format!("{text:?} has more than three parts: {usage}"));
        }
        let shards = shards
            .split(',')
            .map(|s| {
                s.trim()
                    .parse::<u64>()
                    .map_err(|_| format!("{s:?} in {text:?} is not a shard number: {usage}"))
            })
            .collect::<std::result::Result<Vec<u64>, String>>()?;
        Ok(FailoverGroupSpec {
            name: name.to_string(),
            shards,
            primary,
            durability: None,
            failover: None,
        })
    }
}

/// The failover group of the shards no `[[failover_groups]]` names.
pub const DEFAULT_GROUP: &str = "default";

fn default_shards() -> u16 {
    DEFAULT_SHARDS
}

/// One node as the rest of the cluster sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// Unique, non-zero node id.
    pub id: u64,
    /// The region the node runs in (one of `[[regions]]`, if declared).
    #[serde(default = "default_region")]
    pub region: String,
    /// The availability zone inside the region; each shard keeps one replica
    /// per zone.
    pub zone: String,
    /// gRPC address: Raft between nodes, the `Kv` and `Admin` services.
    pub grpc_addr: SocketAddr,
    /// Redis-protocol (RESP) read/write listener.
    pub resp_addr: SocketAddr,
    /// Redis-protocol read-only listener (optional): reads from this
    /// node's replica within `[read_only]`'s staleness bound, writes
    /// refused with `-READONLY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ro_addr: Option<SocketAddr>,
}

fn default_region() -> String {
    "local".to_string()
}

/// How durable a write is before it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    /// fsync the Raft log before a node reports an entry as stored (default):
    /// an acknowledged write survives the loss of power on every node.
    #[default]
    Always,
    /// Never wait for fsync: a write survives the loss of a minority of
    /// nodes, but not a power loss of a majority. For benchmarks and caches.
    Never,
}

/// Raft timing and log-compaction tunables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftOptions {
    /// Leader heartbeat interval in ms (default 100). Lower detects a dead
    /// leader sooner at the cost of traffic.
    pub heartbeat_ms: u64,
    /// Lower bound of the randomised election timeout in ms (default 500).
    /// A follower that hears nothing for this long starts an election.
    pub election_timeout_min_ms: u64,
    /// Upper bound of the election timeout in ms (default 1000).
    pub election_timeout_max_ms: u64,
    /// Take a snapshot once at least this many log entries were applied
    /// since the last one (default 10000), and at least as many writes as
    /// the last one holds strings, fields of hashes and cross-region
    /// records (see `crate::compaction`); the log is purged behind it.
    pub snapshot_every: u64,
    /// Log entries kept behind a snapshot (default 1000), so a briefly
    /// lagging follower catches up from the log instead of a snapshot.
    pub logs_kept_behind_snapshot: u64,
}

impl Default for RaftOptions {
    fn default() -> Self {
        RaftOptions {
            heartbeat_ms: 100,
            election_timeout_min_ms: 500,
            election_timeout_max_ms: 1000,
            snapshot_every: 10_000,
            logs_kept_behind_snapshot: 1_000,
        }
    }
}

/// Storage tunables.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageOptions {
    /// When the Raft log is fsynced (default `always`).
    pub fsync: Fsync,
}

/// Limits on Redis-protocol clients, with Redis's defaults where Redis has
/// the setting, so that no client can take memory without bound or hold
/// others up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientLimits {
    /// Clients connected at once (Redis `maxclients`, 10000); the next one
    /// is told `-ERR max number of clients reached` and closed.
    pub max_clients: usize,
    /// Close a client idle this long; 0: never (Redis `timeout`, 0).
    pub idle_timeout_secs: u64,
    /// Most bytes of unparsed requests held for a client (Redis
    /// `client-query-buffer-limit`, 1 GiB).
    pub query_buffer_limit: usize,
    /// Largest bulk string in a request (Redis `proto-max-bulk-len`,
    /// 512 MiB).
    pub proto_max_bulk_len: usize,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits {
            max_clients: 10_000,
            idle_timeout_secs: 0,
            query_buffer_limit: 1024 * 1024 * 1024,
            proto_max_bulk_len: 512 * 1024 * 1024,
        }
    }
}

/// Who may connect over the Redis protocol.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthOptions {
    /// The `default` user's password (Redis `requirepass`); without it
    /// the `default` user needs none. Users made with `ACL SETUSER` are
    /// replicated cluster-wide and need no setting here.
    pub requirepass: Option<String>,
}

/// What the read-only listener does with a read its replica cannot show
/// to be fresh enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PastBound {
    /// Send it to the shard's leader, as the read/write listener would
    /// (default).
    #[default]
    Forward,
    /// Answer `-MASTERDOWN`, as a Redis replica with
    /// `replica-serve-stale-data no` does.
    Refuse,
}

/// The read-only listener's staleness bound.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReadOnlyOptions {
    /// Serve a read from the local replica only if it heard from its
    /// leader within this many ms and had applied everything committed
    /// then (default 1000).
    pub max_staleness_ms: u64,
    /// What to do past the bound (default `forward`).
    pub past_bound: PastBound,
}

impl Default for ReadOnlyOptions {
    fn default() -> Self {
        ReadOnlyOptions {
            max_staleness_ms: 1000,
            past_bound: PastBound::Forward,
        }
    }
}

/// The cross-region log of a primary region's groups (see [`crate::xlog`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct XlogOptions {
    /// The most records a shard keeps for destinations that have not
    /// acknowledged them; past it the oldest are trimmed, and a
    /// destination that still needed them is resynced from a copy of the
    /// shard (default 100000).
    pub max_records: u64,
    /// The most bytes of writes those records may hold, trimmed the same
    /// way past it (default 64 MiB).
    pub max_bytes: u64,
}

impl Default for XlogOptions {
    fn default() -> Self {
        XlogOptions {
            max_records: 100_000,
            max_bytes: 64 << 20,
        }
    }
}

/// Latency added to this node's requests to other nodes, so that one
/// machine shows the ordering of real distances (tens of ms between
/// regions, about 1 ms between zones). A fault-injection knob for tests
/// and `dev`: only a `cairn-server` built with the `failpoints` feature
/// accepts it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinkLatency {
    /// Added to each request to a node of another region, in ms.
    pub between_regions_ms: u64,
    /// Added to each request to a node of another zone of this region, in
    /// ms.
    pub between_zones_ms: u64,
}

impl LinkLatency {
    /// Whether nothing is added.
    pub fn is_none(&self) -> bool {
        *self == LinkLatency::default()
    }

    /// Refuses a latency this build cannot inject, saying which build can.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.is_none() || cfg!(feature = "failpoints") {
            Ok(())
        } else {
            Err(
                "is a fault-injection knob: run cairn-server-failpoints (built by scripts/build-jepsen) \
                 to use it"
                    .into(),
            )
        }
    }
}

/// The node config file as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeFile {
    /// Which node of the topology this process is.
    pub id: u64,
    /// Path of the topology file.
    pub topology: PathBuf,
    /// Directory for the RocksDB store, snapshots, the pid and lock files.
    pub data_dir: PathBuf,
    /// Raft tunables.
    #[serde(default)]
    pub raft: RaftOptions,
    /// Storage tunables.
    #[serde(default)]
    pub storage: StorageOptions,
    /// Limits on Redis-protocol clients.
    #[serde(default)]
    pub clients: ClientLimits,
    /// Authentication of Redis-protocol clients.
    #[serde(default)]
    pub auth: AuthOptions,
    /// The read-only listener's staleness bound.
    #[serde(default)]
    pub read_only: ReadOnlyOptions,
    /// The cross-region log's bound.
    #[serde(default)]
    pub xlog: XlogOptions,
    /// Latency injected into requests to other nodes (tests and `dev`).
    #[serde(default, skip_serializing_if = "LinkLatency::is_none")]
    pub link_latency: LinkLatency,
}

/// A fully loaded and validated node configuration.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This node's id.
    pub id: u64,
    /// The data directory (absolute or relative to the working directory).
    pub data_dir: PathBuf,
    /// Raft tunables.
    pub raft: RaftOptions,
    /// Storage tunables.
    pub storage: StorageOptions,
    /// Limits on Redis-protocol clients.
    pub clients: ClientLimits,
    /// Authentication of Redis-protocol clients.
    pub auth: AuthOptions,
    /// The read-only listener's staleness bound.
    pub read_only: ReadOnlyOptions,
    /// The cross-region log's bound.
    pub xlog: XlogOptions,
    /// Latency injected into requests to other nodes.
    pub link_latency: LinkLatency,
    /// The cluster layout.
    pub topology: Topology,
}

impl NodeConfig {
    /// Reads and validates a node config and the topology it points to.
    pub fn load(path: &Path) -> Result<NodeConfig> {
        let file: NodeFile = read_toml(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let topology_path = base.join(&file.topology);
        let topology: Topology = read_toml(&topology_path)?;
        topology.validate(&topology_path)?;
        file.validate(path, &topology)?;
        Ok(NodeConfig {
            id: file.id,
            // Collecting the components drops `.` segments from the path.
            data_dir: base.join(&file.data_dir).components().collect(),
            raft: file.raft,
            storage: file.storage,
            clients: file.clients,
            auth: file.auth,
            read_only: file.read_only,
            xlog: file.xlog,
            link_latency: file.link_latency,
            topology,
        })
    }

    /// This node's entry in the topology.
    pub fn me(&self) -> &NodeSpec {
        self.topology.node(self.id).expect("validated at load")
    }
}

impl NodeFile {
    fn validate(&self, path: &Path, topology: &Topology) -> Result<()> {
        let err = |key: &str, msg: String| config_error(path, key, msg);
        if topology.node(self.id).is_none() {
            let ids: Vec<u64> = topology.nodes.iter().map(|n| n.id).collect();
            return Err(err(
                "id",
                format!("node {} is not in the topology (nodes: {ids:?})", self.id),
            ));
        }
        let r = &self.raft;
        if r.heartbeat_ms == 0 {
            return Err(err("raft.heartbeat_ms", "must be greater than 0".into()));
        }
        if r.election_timeout_min_ms <= r.heartbeat_ms {
            return Err(err(
                "raft.election_timeout_min_ms",
                format!("must be greater than raft.heartbeat_ms ({})", r.heartbeat_ms),
            ));
        }
        if r.election_timeout_max_ms <= r.election_timeout_min_ms {
            return Err(err(
                "raft.election_timeout_max_ms",
                format!(
                    "must be greater than raft.election_timeout_min_ms ({})",
                    r.election_timeout_min_ms
                ),
            ));
        }
        if r.snapshot_every == 0 {
            return Err(err("raft.snapshot_every", "must be greater than 0".into()));
        }
        self.link_latency.check().map_err(|msg| err("link_latency", msg))?;
        if self.read_only.max_staleness_ms == 0 {
            return Err(err("read_only.max_staleness_ms", "must be greater than 0".into()));
        }
        if self.xlog.max_records == 0 {
            return Err(err("xlog.max_records", "must be greater than 0".into()));
        }
        if self.xlog.max_bytes == 0 {
            return Err(err("xlog.max_bytes", "must be greater than 0".into()));
        }
        let c = &self.clients;
        if c.max_clients == 0 {
            return Err(err("clients.max_clients", "must be greater than 0".into()));
        }
        if c.proto_max_bulk_len == 0 || c.proto_max_bulk_len > c.query_buffer_limit {
            return Err(err(
                "clients.proto_max_bulk_len",
                format!(
                    "must be between 1 and clients.query_buffer_limit ({})",
                    c.query_buffer_limit
                ),
            ));
        }
        Ok(())
    }
}

impl Topology {
    /// The node with this id.
    pub fn node(&self, id: u64) -> Option<&NodeSpec> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// Checks the topology for mistakes that would make a cluster unsafe or
    /// unable to start; `path` is named in the error.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let err = |key: String, msg: String| config_error(path, &key, msg);
        if self.cluster_name.trim().is_empty() {
            return Err(err("cluster_name".into(), "must not be empty".into()));
        }
        if self.shards == 0 || self.shards > SLOTS {
            return Err(err(
                "shards".into(),
                format!("must be between 1 and {SLOTS}, got {}", self.shards),
            ));
        }
        if self.nodes.is_empty() {
            return Err(err("nodes".into(), "at least one node is needed".into()));
        }
        let mut ids = BTreeSet::new();
        let mut addrs = BTreeSet::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if node.id == 0 {
                return Err(err(format!("nodes[{i}].id"), "must not be 0".into()));
            }
            if !ids.insert(node.id) {
                return Err(err(
                    format!("nodes[{i}].id"),
                    format!("node id {} appears twice", node.id),
                ));
            }
            if node.zone.trim().is_empty() {
                return Err(err(format!("nodes[{i}].zone"), "must not be empty".into()));
            }
            let listeners = [
                ("grpc_addr", Some(node.grpc_addr)),
                ("resp_addr", Some(node.resp_addr)),
                ("ro_addr", node.ro_addr),
            ];
            for (key, addr) in listeners.into_iter().filter_map(|(k, a)| Some((k, a?))) {
                if !addrs.insert(addr) {
                    return Err(err(
                        format!("nodes[{i}].{key}"),
                        format!("address {addr} is used twice"),
                    ));
                }
            }
        }
        self.validate_regions(path)
    }

    /// Checks that every node's region is declared, that the roles make a
    /// cluster (one primary, at most one witness of one node) and that
    /// every data region's zones can keep a majority of each group.
    fn validate_regions(&self, path: &Path) -> Result<()> {
        let err = |key: String, msg: String| config_error(path, &key, msg);
        if self.regions.is_empty() {
            let named: BTreeSet<&str> = self.nodes.iter().map(|n| n.region.as_str()).collect();
            if named.len() > 1 {
                return Err(err(
                    "regions".into(),
                    format!("nodes name the regions {named:?}: declare each in [[regions]] with its role"),
                ));
            }
        }
        let mut names = BTreeSet::new();
        for (i, region) in self.regions.iter().enumerate() {
            if region.name.trim().is_empty() {
                return Err(err(format!("regions[{i}].name"), "must not be empty".into()));
            }
            if !names.insert(region.name.as_str()) {
                return Err(err(
                    format!("regions[{i}].name"),
                    format!("region {:?} appears twice", region.name),
                ));
            }
        }
        for (i, node) in self.nodes.iter().enumerate() {
            if !self.regions.is_empty() && !names.contains(node.region.as_str()) {
                return Err(err(
                    format!("nodes[{i}].region"),
                    format!("region {:?} is not in [[regions]] (regions: {names:?})", node.region),
                ));
            }
        }
        let specs = self.region_specs();
        let with_role = |role: RegionRole| specs.iter().filter(|r| r.role == role).count();
        if with_role(RegionRole::Primary) != 1 {
            return Err(err(
                "regions".into(),
                format!(
                    "exactly one region must have role = \"primary\", found {}",
                    with_role(RegionRole::Primary)
                ),
            ));
        }
        if self.durability == Durability::Witness && with_role(RegionRole::Witness) == 0 {
            return Err(err(
                "durability".into(),
                "\"witness\" needs a region with role = \"witness\"".into(),
            ));
        }
        if self.failover.grace_ms < 1000 {
            return Err(err(
                "failover.grace_ms".into(),
                format!("must be at least 1000, found {}", self.failover.grace_ms),
            ));
        }
        if with_role(RegionRole::Witness) > 1 {
            return Err(err(
                "regions".into(),
                format!(
                    "at most one region may have role = \"witness\", found {}",
                    with_role(RegionRole::Witness)
                ),
            ));
        }
        for (index, region) in specs.iter().enumerate() {
            let key = if self.regions.is_empty() {
                "nodes[].region".to_string()
            } else {
                format!("regions[{index}]")
            };
            let nodes = self.nodes.iter().filter(|n| n.region == region.name).count();
            let zones = self.zones(index as RegionIndex).len();
            match region.role {
                _ if nodes == 0 => {
                    return Err(err(key, format!("region {:?} has no nodes", region.name)));
                }
                RegionRole::Witness if nodes > 1 => {
                    return Err(err(
                        key,
                        format!(
                            "the witness region {:?} has {nodes} nodes; it holds no data and has one",
                            region.name
                        ),
                    ));
                }
                RegionRole::Primary | RegionRole::Secondary if zones == 2 => {
                    return Err(err(
                        key,
                        format!(
                            "region {:?} has 2 zones: each shard keeps one voter per zone, and 2 voters \
                             lose their majority when either zone is lost; use 1 zone, or 3 or more",
                            region.name
                        ),
                    ));
                }
                _ => {}
            }
        }
        self.validate_failover_groups(path)
    }

    /// Checks that each failover group has a name of its own, shards of
    /// the topology that no other group has, and a data region as its
    /// primary.
    fn validate_failover_groups(&self, path: &Path) -> Result<()> {
        let err = |key: String, msg: String| config_error(path, &key, msg);
        if !self.failover_groups.is_empty() && self.region_specs().len() < 2 {
            return Err(err(
                "failover_groups".into(),
                "a cluster of one region has no failover: declare [[regions]] first".into(),
            ));
        }
        let mut names = BTreeSet::new();
        let mut owner: BTreeMap<u64, &str> = BTreeMap::new();
        for (i, group) in self.failover_groups.iter().enumerate() {
            let key = |field: &str| format!("failover_groups[{i}].{field}");
            if group.name.trim().is_empty() || group.name.contains(char::is_whitespace) {
                return Err(err(
                    key("name"),
                    format!("{:?} is not a name (empty or with spaces)", group.name),
                ));
            }
            if !names.insert(group.name.as_str()) {
                return Err(err(
                    key("name"),
                    format!("failover group {:?} appears twice", group.name),
                ));
            }
            if group.shards.is_empty() {
                return Err(err(key("shards"), "a failover group needs at least one shard".into()));
            }
            for &shard in &group.shards {
                if shard >= u64::from(self.shards) {
                    return Err(err(
                        key("shards"),
                        format!("shard {shard} does not exist (shards 0 to {})", self.shards - 1),
                    ));
                }
                if let Some(other) = owner.insert(shard, group.name.as_str()) {
                    return Err(err(
                        key("shards"),
                        format!("shard {shard} is in failover groups {other:?} and {:?}", group.name),
                    ));
                }
            }
            if group.durability == Some(Durability::Witness) && self.witness_region().is_none() {
                return Err(err(
                    key("durability"),
                    "\"witness\" needs a region with role = \"witness\"".into(),
                ));
            }
            if let Some(grace_ms) = group.failover.map(|f| f.grace_ms).filter(|&g| g < 1000) {
                return Err(err(
                    key("failover.grace_ms"),
                    format!("must be at least 1000, found {grace_ms}"),
                ));
            }
            if let Some(primary) = &group.primary {
                match self
                    .region_index(primary)
                    .map(|r| self.region_specs()[usize::from(r)].role)
                {
                    None => return Err(err(key("primary"), format!("no region named {primary:?}"))),
                    Some(RegionRole::Witness) => {
                        return Err(err(
                            key("primary"),
                            format!("region {primary:?} is the witness: it holds no data and cannot be primary"),
                        ));
                    }
                    Some(_) => {}
                }
            }
        }
        let unnamed = u64::from(self.shards) > owner.len() as u64;
        if unnamed && names.contains(DEFAULT_GROUP) {
            return Err(err(
                "failover_groups".into(),
                format!(
                    "the shards no group names make the group {DEFAULT_GROUP:?}: name every shard, or give the group another name"
                ),
            ));
        }
        Ok(())
    }
}

fn config_error(path: &Path, key: &str, msg: String) -> Error {
    Error::Config(format!("{}: key `{key}`: {msg}", path.display()))
}

fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::Config(format!("{}: cannot read: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {}", path.display(), e.to_string().trim_end())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    const TOPOLOGY: &str = r#"
cluster_name = "t"
shards = 4
[[nodes]]
id = 1
zone = "a"
grpc_addr = "127.0.0.1:7001"
resp_addr = "127.0.0.1:6001"
[[nodes]]
id = 2
zone = "b"
grpc_addr = "127.0.0.1:7002"
resp_addr = "127.0.0.1:6002"
[[nodes]]
id = 3
zone = "c"
grpc_addr = "127.0.0.1:7003"
resp_addr = "127.0.0.1:6003"
"#;

    #[test]
    fn loads_a_valid_config_with_defaults() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "topology.toml", TOPOLOGY);
        let path = write(
            dir.path(),
            "node.toml",
            "id = 2\ntopology = \"topology.toml\"\ndata_dir = \"d2\"\n",
        );
        let config = NodeConfig::load(&path).unwrap();
        assert_eq!(config.me().zone, "b");
        assert_eq!(config.data_dir, dir.path().join("d2"));
        assert_eq!(config.raft, RaftOptions::default());
        assert_eq!(config.storage.fsync, Fsync::Always);
        assert_eq!(config.topology.replicas(0), vec![1, 2, 3]);
        let leaders: BTreeSet<u64> = (0..3).filter_map(|s| config.topology.preferred_leader(0, s)).collect();
        assert_eq!(leaders.len(), 3, "leaders spread over nodes");
    }

    #[test]
    fn the_documented_example_config_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/example-node.toml");
        let config = NodeConfig::load(&path).unwrap();
        assert_eq!(config.topology.nodes.len(), 3);
        assert_eq!(
            config.raft,
            RaftOptions::default(),
            "the example documents the defaults"
        );
        assert_eq!(config.storage, StorageOptions::default());
        assert_eq!(config.clients, ClientLimits::default());
        assert_eq!(config.read_only, ReadOnlyOptions::default());
        assert_eq!(config.xlog, XlogOptions::default());
        assert_eq!(config.topology.shards, DEFAULT_SHARDS);
    }

    /// The topology of [`TOPOLOGY`]'s three nodes in region "east" and
    /// `extra` appended (more `[[regions]]` and `[[nodes]]`).
    fn with_regions(extra: &str) -> Topology {
        let text = TOPOLOGY.replace("zone = ", "region = \"east\"\nzone = ") + extra;
        toml::from_str(&text).unwrap()
    }

    fn refusal(topology: &Topology) -> String {
        topology.validate(Path::new("topology.toml")).unwrap_err().to_string()
    }

    const EAST_PRIMARY: &str = "[[regions]]\nname = \"east\"\nrole = \"primary\"\n";

    fn node(id: u64, region: &str, zone: &str) -> String {
        format!(
            "[[nodes]]\nid = {id}\nregion = \"{region}\"\nzone = \"{zone}\"\n\
             grpc_addr = \"127.0.0.1:{}\"\nresp_addr = \"127.0.0.1:{}\"\n",
            7000 + id,
            6000 + id
        )
    }

    #[test]
    fn regions_with_roles_load_and_bad_ones_are_refused_with_the_reason() {
        let witness = "[[regions]]\nname = \"w\"\nrole = \"witness\"\n";
        let valid = with_regions(&format!("{EAST_PRIMARY}{witness}{}", node(4, "w", "a")));
        valid.validate(Path::new("topology.toml")).unwrap();
        assert_eq!(valid.region_of(4), Some((1, RegionRole::Witness)));

        let undeclared = with_regions(&node(4, "west", "a"));
        let msg = refusal(&undeclared);
        assert!(
            msg.contains("key `regions`") && msg.contains("declare each in [[regions]]"),
            "{msg}"
        );

        let unknown = with_regions(&format!("{EAST_PRIMARY}{}", node(4, "west", "a")));
        let msg = refusal(&unknown);
        assert!(
            msg.contains("nodes[3].region") && msg.contains("\"west\" is not in [[regions]]"),
            "{msg}"
        );

        let secondary = "[[regions]]\nname = \"east\"\nrole = \"secondary\"\n";
        let msg = refusal(&with_regions(secondary));
        assert!(
            msg.contains("exactly one region must have role = \"primary\", found 0"),
            "{msg}"
        );

        let two_witness_nodes = format!("{EAST_PRIMARY}{witness}{}{}", node(4, "w", "a"), node(5, "w", "b"));
        let msg = refusal(&with_regions(&two_witness_nodes));
        assert!(msg.contains("regions[1]") && msg.contains("has 2 nodes"), "{msg}");

        let empty = format!("{EAST_PRIMARY}[[regions]]\nname = \"west\"\nrole = \"secondary\"\n");
        let msg = refusal(&with_regions(&empty));
        assert!(msg.contains("region \"west\" has no nodes"), "{msg}");

        let two_zones = format!(
            "{EAST_PRIMARY}[[regions]]\nname = \"west\"\nrole = \"secondary\"\n{}{}",
            node(4, "west", "a"),
            node(5, "west", "b")
        );
        let msg = refusal(&with_regions(&two_zones));
        assert!(
            msg.contains("region \"west\" has 2 zones") && msg.contains("majority"),
            "{msg}"
        );

        let twice = format!("{EAST_PRIMARY}{EAST_PRIMARY}");
        let msg = refusal(&with_regions(&twice));
        assert!(
            msg.contains("regions[1].name") && msg.contains("appears twice"),
            "{msg}"
        );

        let mut no_witness = with_regions(EAST_PRIMARY);
        no_witness.durability = Durability::Witness;
        let msg = refusal(&no_witness);
        assert!(
            msg.contains("key `durability`") && msg.contains("needs a region with role = \"witness\""),
            "{msg}"
        );
        let mut witnessed = valid;
        witnessed.durability = Durability::Witness;
        witnessed.validate(Path::new("topology.toml")).unwrap();
    }

    #[test]
    fn failover_groups_are_checked_and_bad_ones_refused_with_the_reason() {
        let regions = format!(
            "{EAST_PRIMARY}[[regions]]\nname = \"west\"\nrole = \"secondary\"\n{}",
            node(4, "west", "a")
        );
        let group = |text: &str| with_regions(&format!("{regions}[[failover_groups]]\n{text}\n"));
        let valid = group("name = \"orders\"\nshards = [1]\nprimary = \"west\"\nfailover = { policy = \"manual\" }");
        valid.validate(Path::new("topology.toml")).unwrap();
        let options = valid.failover_groups[0].failover.unwrap();
        assert_eq!((options.policy, options.grace_ms), (FailoverPolicy::Manual, 10_000));
        let cases = [
            ("name = \"a b\"\nshards = [1]", "failover_groups[0].name", "not a name"),
            (
                "name = \"o\"\nshards = []",
                "failover_groups[0].shards",
                "at least one shard",
            ),
            (
                "name = \"o\"\nshards = [99]",
                "failover_groups[0].shards",
                "shard 99 does not exist",
            ),
            (
                "name = \"o\"\nshards = [1]\nprimary = \"mars\"",
                "primary",
                "no region named \"mars\"",
            ),
            (
                "name = \"default\"\nshards = [1]",
                "`failover_groups`",
                "name every shard",
            ),
            (
                "name = \"o\"\nshards = [1]\n[[failover_groups]]\nname = \"p\"\nshards = [1]",
                "failover_groups[1].shards",
                "shard 1 is in failover groups \"o\" and \"p\"",
            ),
            (
                "name = \"o\"\nshards = [1]\ndurability = \"witness\"",
                "failover_groups[0].durability",
                "needs a region with role = \"witness\"",
            ),
            (
                "name = \"o\"\nshards = [1]\nfailover = { grace_ms = 10 }",
                "failover_groups[0].failover.grace_ms",
                "at least 1000, found 10",
            ),
        ];
        for (text, key, why) in cases {
            let msg = refusal(&group(text));
            assert!(msg.contains(key) && msg.contains(why), "{text}: {msg}");
        }
        let parsed: FailoverGroupSpec = "orders:1,3:west".parse().unwrap();
        assert_eq!(
            (&parsed.shards[..], parsed.primary.as_deref()),
            (&[1, 3][..], Some("west"))
        );
        assert!(
            "orders"
                .parse::<FailoverGroupSpec>()
                .unwrap_err()
                .contains("names no shards")
        );
        let bad = "orders:1,x".parse::<FailoverGroupSpec>().unwrap_err();
        assert!(bad.contains("\"x\" in \"orders:1,x\" is not a shard number"), "{bad}");
        let mut one_region = with_regions("");
        one_region.failover_groups = group("name = \"o\"\nshards = [1]").failover_groups;
        assert!(refusal(&one_region).contains("a cluster of one region has no failover"));
    }

    #[test]
    fn errors_name_file_key_and_problem() {
        let dir = tempfile::tempdir().unwrap();
        let topo = write(dir.path(), "topology.toml", &TOPOLOGY.replace("id = 3", "id = 2"));
        let node = write(
            dir.path(),
            "node.toml",
            "id = 1\ntopology = \"topology.toml\"\ndata_dir = \"d\"\n",
        );
        let msg = NodeConfig::load(&node).unwrap_err().to_string();
        assert!(msg.contains(&topo.display().to_string()), "{msg}");
        assert!(msg.contains("nodes[2].id") && msg.contains("appears twice"), "{msg}");

        write(dir.path(), "topology.toml", TOPOLOGY);
        let node = write(
            dir.path(),
            "node.toml",
            "id = 9\ntopology = \"topology.toml\"\ndata_dir = \"d\"\n",
        );
        let msg = NodeConfig::load(&node).unwrap_err().to_string();
        assert!(
            msg.contains("key `id`") && msg.contains("node 9 is not in the topology"),
            "{msg}"
        );

        let node = write(
            dir.path(),
            "node.toml",
            "id = 1\ntopology = \"topology.toml\"\ndata_dir = \"d\"\nbogus = 1\n",
        );
        let msg = NodeConfig::load(&node).unwrap_err().to_string();
        assert!(msg.contains("unknown field `bogus`"), "{msg}");

        let node = write(
            dir.path(),
            "node.toml",
            "id = 1\ntopology = \"topology.toml\"\ndata_dir = \"d\"\n[raft]\nelection_timeout_min_ms = 50\n",
        );
        let msg = NodeConfig::load(&node).unwrap_err().to_string();
        assert!(msg.contains("raft.election_timeout_min_ms"), "{msg}");

        let node = write(
            dir.path(),
            "node.toml",
            "id = 1\ntopology = \"topology.toml\"\ndata_dir = \"d\"\n[xlog]\nmax_bytes = 0\n",
        );
        let msg = NodeConfig::load(&node).unwrap_err().to_string();
        assert!(
            msg.contains("xlog.max_bytes") && msg.contains("greater than 0"),
            "{msg}"
        );

        write(
            dir.path(),
            "topology.toml",
            &TOPOLOGY.replace("shards = 4", "shards = 0"),
        );
        let msg = NodeConfig::load(&node).unwrap_err().to_string();
        assert!(msg.contains("key `shards`"), "{msg}");
    }
}

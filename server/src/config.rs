//! Node and topology configuration, read from TOML.
//!
//! Two files describe a node:
//!
//! - the **topology** (shared by every node of a cluster): the cluster name,
//!   the number of shards and every node with its region, zone and addresses;
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
    /// Every node of the cluster.
    pub nodes: Vec<NodeSpec>,
}

fn default_shards() -> u16 {
    DEFAULT_SHARDS
}

/// One node as the rest of the cluster sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// Unique, non-zero node id.
    pub id: u64,
    /// The region the node runs in (one region for now).
    #[serde(default = "default_region")]
    pub region: String,
    /// The availability zone inside the region; each shard keeps one replica
    /// per zone.
    pub zone: String,
    /// gRPC address: Raft between nodes, the `Kv` and `Admin` services.
    pub grpc_addr: SocketAddr,
    /// Redis-protocol (RESP) read/write listener.
    pub resp_addr: SocketAddr,
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
    /// Take a snapshot after this many log entries since the last one
    /// (default 10000); the log is purged behind it.
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

    /// Zone name → node ids in that zone (sorted), zones in name order.
    pub fn zones(&self) -> BTreeMap<&str, Vec<u64>> {
        let mut zones: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        for node in &self.nodes {
            zones.entry(node.zone.as_str()).or_default().push(node.id);
        }
        for ids in zones.values_mut() {
            ids.sort_unstable();
        }
        zones
    }

    /// The voters of `shard`: one node per zone. Where a zone has several
    /// nodes, shards are dealt round-robin among them.
    pub fn replicas(&self, shard: u64) -> Vec<u64> {
        self.zones()
            .values()
            .map(|ids| ids[(shard as usize) % ids.len()])
            .collect()
    }

    /// The node that should lead `shard` when all are healthy: zones take
    /// turns, so leaders are spread over the nodes.
    pub fn preferred_leader(&self, shard: u64) -> u64 {
        let replicas = self.replicas(shard);
        replicas[(shard as usize) % replicas.len()]
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
        let mut regions = BTreeSet::new();
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
            for (key, addr) in [("grpc_addr", node.grpc_addr), ("resp_addr", node.resp_addr)] {
                if !addrs.insert(addr) {
                    return Err(err(
                        format!("nodes[{i}].{key}"),
                        format!("address {addr} is used twice"),
                    ));
                }
            }
            regions.insert(node.region.as_str());
        }
        if regions.len() > 1 {
            return Err(err(
                "nodes[].region".into(),
                format!("one region per cluster is supported for now, found {regions:?}"),
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
        let leaders: BTreeSet<u64> = (0..3).map(|s| config.topology.preferred_leader(s)).collect();
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
        assert_eq!(config.topology.shards, DEFAULT_SHARDS);
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

        write(
            dir.path(),
            "topology.toml",
            &TOPOLOGY.replace("shards = 4", "shards = 0"),
        );
        let msg = NodeConfig::load(&node).unwrap_err().to_string();
        assert!(msg.contains("key `shards`"), "{msg}");
    }
}

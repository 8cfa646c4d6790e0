//! The cluster under test: real `cairn-server` processes started from the
//! built binary, one per zone of each region (and a witness node when the
//! run has several regions), laid out as `cairn-server dev` lays them out.
//!
//! Every node's config, data and log live in the run's output directory.
//! Processes are killed (`SIGKILL`), paused (`SIGSTOP`/`SIGCONT`) and
//! restarted for real. Dropping the cluster kills every process it started,
//! so nothing outlives a run, even one that panics.
//!
//! Nodes live on the run's [`Net`]: each in its own network namespace when
//! the harness can make them (so links can be cut), else on loopback.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::Context;
use cairn_server::config::{
    AuthOptions, ClientLimits, Durability, FailoverGroupSpec, FailoverOptions, LinkLatency, NodeFile, RaftOptions,
    ReadOnlyOptions, RegionRole, StorageOptions, Topology, XlogOptions,
};
use cairn_server::dev::{self, Shape};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::net::Net;

/// Why a node may exit without that being a crash: it was restarted on
/// data the nemesis damaged, and refusing to start is the right answer.
const EXPECTED_EXIT: &str = "expected exit";

/// A running cluster.
pub struct Cluster {
    server: PathBuf,
    dir: PathBuf,
    /// The layout.
    pub topology: Topology,
    children: BTreeMap<u64, Child>,
    /// `FAILPOINTS` for every node (a deliberate bug), if any.
    bug: Option<String>,
    /// Nodes started with crash points armed: their exit is expected.
    armed: BTreeMap<u64, String>,
    /// Nodes that exited when restarted on damaged data.
    refused: std::collections::BTreeSet<u64>,
    /// Nodes restarted on data they must refuse (a damaged log).
    must_refuse: std::collections::BTreeSet<u64>,
    /// Where the nodes live; dropped (namespaces removed) after the
    /// processes are killed.
    pub net: Net,
}

/// The port `dev::topology` lays the nodes out from; every address is
/// replaced by the run's own.
const DEV_PORT: u16 = 10_000;

/// The shape of a run's cluster.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Regions, zones per region, a witness node or not, shards.
    pub shape: Shape,
    /// When writes are acknowledged.
    pub durability: Durability,
    /// When the failover groups fail over by themselves.
    pub failover: FailoverOptions,
    /// The failover groups of some shards (the rest make `default`).
    pub failover_groups: Vec<FailoverGroupSpec>,
    /// The bounds of each node's cross-region log.
    pub xlog: XlogOptions,
}

impl Layout {
    /// Nodes of the cluster, the witness included.
    pub fn nodes(&self) -> usize {
        self.shape.regions * self.shape.zones + usize::from(self.shape.witness)
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Cluster {
    /// Writes configs for a cluster of `layout` under `dir` and starts it on
    /// `net`.
    pub fn start(server: &Path, dir: &Path, layout: &Layout, net: Net, bug: Option<String>) -> anyhow::Result<Cluster> {
        // The dev cluster's layout (names, regions, validation), on this
        // run's addresses.
        let mut topology = dev::topology(DEV_PORT, layout.shape, layout.durability, layout.failover)?;
        topology.cluster_name = "jepsen".into();
        topology.failover_groups = layout.failover_groups.clone();
        topology.validate(Path::new("(--failover-group)"))?;
        for node in &mut topology.nodes {
            let (grpc, resp, ro) = match net {
                Net::Loopback => (free_port()?, free_port()?, free_port()?),
                Net::Namespaces { .. } => (7000, 6379, 6380),
            };
            let ip = net.address(node.id);
            node.grpc_addr = SocketAddr::new(ip, grpc);
            node.resp_addr = SocketAddr::new(ip, resp);
            node.ro_addr = (layout.shape.regions > 1).then(|| SocketAddr::new(ip, ro));
        }
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("topology.toml"), toml_string(&topology)?)?;
        for node in &topology.nodes {
            let node_dir = dir.join(format!("node{}", node.id));
            std::fs::create_dir_all(&node_dir)?;
            let file = NodeFile {
                id: node.id,
                topology: "../topology.toml".into(),
                data_dir: ".".into(),
                raft: RaftOptions {
                    snapshot_every: 500,
                    logs_kept_behind_snapshot: 100,
                    ..RaftOptions::default()
                },
                storage: StorageOptions::default(),
                clients: ClientLimits::default(),
                auth: AuthOptions::default(),
                read_only: ReadOnlyOptions::default(),
                xlog: layout.xlog,
                link_latency: LinkLatency::default(),
            };
            std::fs::write(node_dir.join("node.toml"), toml_string(&file)?)?;
        }
        let mut cluster = Cluster {
            server: server.to_path_buf(),
            dir: dir.to_path_buf(),
            topology,
            children: BTreeMap::new(),
            bug,
            armed: BTreeMap::new(),
            refused: Default::default(),
            must_refuse: Default::default(),
            net,
        };
        for id in cluster.ids() {
            cluster.start_node(id)?;
        }
        Ok(cluster)
    }

    /// Every node id.
    pub fn ids(&self) -> Vec<u64> {
        self.topology.nodes.iter().map(|n| n.id).collect()
    }

    /// The region of each node, by name.
    pub fn region_of(&self, id: u64) -> &str {
        self.topology.node(id).map_or("", |n| n.region.as_str())
    }

    /// Nodes of region `region`.
    pub fn nodes_in(&self, region: &str) -> Vec<u64> {
        self.topology
            .nodes
            .iter()
            .filter(|n| n.region == region)
            .map(|n| n.id)
            .collect()
    }

    /// The data regions' names, in the topology's order (one, unnamed
    /// `local`, in a cluster of one region).
    pub fn data_regions(&self) -> Vec<String> {
        if self.topology.regions.is_empty() {
            return vec![self.region_of(1).to_string()];
        }
        self.topology
            .regions
            .iter()
            .filter(|r| r.role != RegionRole::Witness)
            .map(|r| r.name.clone())
            .collect()
    }

    /// The witness node, if there is one.
    pub fn witness(&self) -> Option<u64> {
        let region = self.topology.regions.iter().find(|r| r.role == RegionRole::Witness)?;
        self.nodes_in(&region.name).first().copied()
    }

    /// Nodes holding data (every node but the witness).
    pub fn data_nodes(&self) -> Vec<u64> {
        let witness = self.witness();
        self.ids().into_iter().filter(|&id| Some(id) != witness).collect()
    }

    /// Where node `id` writes its lost-writes report.
    pub fn lost_writes_file(&self, id: u64) -> PathBuf {
        self.node_dir(id).join(cairn_server::failover::LOST_WRITES_FILE)
    }

    /// Node ids whose process is running (possibly paused).
    pub fn running(&self) -> Vec<u64> {
        self.children.keys().copied().collect()
    }

    /// Starts a node that is not running.
    pub fn start_node(&mut self, id: u64) -> anyhow::Result<()> {
        self.start_armed(id, None)
    }

    /// Starts a node with extra fault points (`FAILPOINTS` syntax) armed;
    /// its exit then counts as injected, not as a crash.
    pub fn start_armed(&mut self, id: u64, points: Option<&str>) -> anyhow::Result<()> {
        let failpoints: Vec<&str> = self.bug.as_deref().into_iter().chain(points).collect();
        let node_dir = self.dir.join(format!("node{id}"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node_dir.join("log"))?;
        let mut command = match self.net.namespace(id) {
            Some(ns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", &ns]).arg(&self.server);
                command
            }
            None => Command::new(&self.server),
        };
        let child = command
            .arg("--config")
            .arg(node_dir.join("node.toml"))
            .env("RUST_LOG", "info,openraft=warn")
            .env("FAILPOINTS", failpoints.join(";"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.server.display()))?;
        self.children.insert(id, child);
        match points {
            Some(points) => self.armed.insert(id, points.to_string()),
            None => self.armed.remove(&id),
        };
        Ok(())
    }

    /// `kill -9` a node.
    pub fn kill(&mut self, id: u64) {
        self.armed.remove(&id);
        if let Some(mut child) = self.children.remove(&id) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The data directory of a node.
    fn node_dir(&self, id: u64) -> PathBuf {
        self.dir.join(format!("node{id}"))
    }

    /// Flips bytes in the middle of the newest snapshot file of a random
    /// shard of a stopped node; returns the file, if it had one.
    pub fn corrupt_newest_snapshot(&self, id: u64, rng: &mut impl rand::Rng) -> anyhow::Result<Option<String>> {
        let root = self.node_dir(id).join("snapshots");
        let mut newest = Vec::new();
        for shard in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(shard.path())?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "snap"))
                .collect();
            files.sort();
            newest.extend(files.pop());
        }
        if newest.is_empty() {
            return Ok(None);
        }
        let file = newest.swap_remove(rng.random_range(0..newest.len()));
        let mut bytes = std::fs::read(&file)?;
        let at = bytes.len() / 2;
        let end = (at + 8).min(bytes.len());
        for b in &mut bytes[at..end] {
            *b ^= 0x5a;
        }
        std::fs::write(&file, bytes)?;
        Ok(Some(
            file.strip_prefix(&self.dir).unwrap_or(&file).display().to_string(),
        ))
    }

    /// Flips bytes in the middle of a stopped node's biggest write-ahead
    /// log file (where the Raft log's newest records are); returns its
    /// path, or `None` if it has none worth damaging.
    pub fn corrupt_log(&self, id: u64) -> anyhow::Result<Option<String>> {
        let store = self.node_dir(id).join("store");
        let wal = std::fs::read_dir(&store)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .filter_map(|p| Some((std::fs::metadata(&p).ok()?.len(), p)))
            .filter(|(len, _)| *len >= 4096)
            .max();
        let Some((_, file)) = wal else {
            return Ok(None);
        };
        let mut bytes = std::fs::read(&file)?;
        let at = bytes.len() / 2;
        for b in &mut bytes[at..at + 8] {
            *b ^= 0x5a;
        }
        std::fs::write(&file, bytes)?;
        Ok(Some(
            file.strip_prefix(&self.dir).unwrap_or(&file).display().to_string(),
        ))
    }

    /// Marks a running node whose exit would be expected (not a crash).
    pub fn expect_exit(&mut self, id: u64) {
        self.armed.insert(id, EXPECTED_EXIT.into());
    }

    /// Whether a node restarted on damaged data refused to start (seen by
    /// [`Cluster::crashed`]); asking clears it.
    pub fn refused_to_start(&mut self, id: u64) -> bool {
        let refused = self.refused.remove(&id);
        if refused {
            self.must_refuse.remove(&id);
        }
        refused
    }

    /// Marks a node restarted on data it must refuse to serve.
    pub fn require_refusal(&mut self, id: u64) {
        self.must_refuse.insert(id);
    }

    /// Whether a node that had to refuse its data started anyway (asking
    /// clears it); call after [`Cluster::refused_to_start`].
    pub fn accepted_damage(&mut self, id: u64) -> bool {
        self.must_refuse.remove(&id)
    }

    /// Stops a node and deletes its data, as when a disk is replaced; it
    /// rejoins empty and catches up from its peers.
    pub fn wipe(&mut self, id: u64) -> anyhow::Result<()> {
        self.kill(id);
        let dir = self.node_dir(id);
        for name in ["store", "snapshots", "LOCK", "pid"] {
            let path = dir.join(name);
            if path.is_dir() {
                std::fs::remove_dir_all(&path)?;
            } else if path.exists() {
                std::fs::remove_file(&path)?;
            }
        }
        Ok(())
    }

    /// Whether a node runs with fault points armed by the nemesis.
    pub fn is_armed(&self, id: u64) -> bool {
        self.armed.contains_key(&id)
    }

    /// Freezes (`SIGSTOP`) or thaws (`SIGCONT`) a node.
    pub fn pause(&self, id: u64, paused: bool) {
        if let Some(child) = self.children.get(&id) {
            let signal = if paused { Signal::SIGSTOP } else { Signal::SIGCONT };
            let _ = kill(Pid::from_raw(child.id() as i32), signal);
        }
    }

    /// Nodes whose process exited by itself, with their status; nodes that
    /// exited at an armed fault point are forgotten (they were meant to).
    pub fn crashed(&mut self) -> Vec<(u64, String)> {
        let mut crashed = Vec::new();
        let mut exited = Vec::new();
        for (id, child) in &mut self.children {
            if let Ok(Some(status)) = child.try_wait() {
                exited.push(*id);
                if !self.armed.contains_key(id) {
                    crashed.push((*id, status.to_string()));
                }
            }
        }
        for id in exited {
            self.children.remove(&id);
            if self.armed.remove(&id).is_some_and(|why| why == EXPECTED_EXIT) {
                self.refused.insert(id);
            }
        }
        crashed
    }

    /// The gRPC address of a node.
    pub fn grpc(&self, id: u64) -> SocketAddr {
        self.topology.node(id).expect("node in topology").grpc_addr
    }

    /// The RESP address of a node.
    pub fn resp(&self, id: u64) -> SocketAddr {
        self.topology.node(id).expect("node in topology").resp_addr
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, mut child) in std::mem::take(&mut self.children) {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGCONT);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn toml_string<T: serde::Serialize>(value: &T) -> anyhow::Result<String> {
    Ok(toml::to_string(value)?)
}

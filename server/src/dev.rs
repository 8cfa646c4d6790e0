//! `cairn-server dev`: a whole cluster on this machine, one OS process per
//! node, so that a node can be killed for real.
//!
//! The directory holds `topology.toml` and one `<node>/node.toml` per node;
//! each running node writes its pid to `<node>/pid` and its log to
//! `<node>/log`. Running `dev` again on the same directory resumes the same
//! cluster with its data. A node that was killed can be started by hand with
//! `cairn-server --config DIR/<node>/node.toml`; it catches up from its
//! peers. Ctrl-C (or SIGTERM) stops every child cleanly.
//!
//! The cluster has `--regions` data regions of `--zones` zones, one node per
//! zone, and with `--witness` one witness node; the first region is the
//! primary, the others are secondaries fed by the cross-region log. Without
//! either flag a new cluster has 2 regions and a witness (7 nodes); naming
//! `--regions` asks for exactly that many, with a witness only if
//! `--witness` is given too. One region without a witness is a plain
//! cluster whose topology declares no regions. Nodes are numbered from 1 region by region, the
//! witness last.
//!
//! Ports: node `i` (from 0) serves RESP on `port + 10·i` (the read/write
//! listener), the read-only listener on `port + 10·i + 1` and gRPC on
//! `port + 10·i + 2`.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use crate::config::{
    AuthOptions, ClientLimits, DEFAULT_SHARDS, Durability, FailoverGroupSpec, FailoverOptions, Fsync, LinkLatency,
    NodeFile, NodeSpec, RaftOptions, ReadOnlyOptions, RegionRole, RegionSpec, StorageOptions, Topology, XlogOptions,
};
use crate::error::{Error, Result};

/// Default first RESP port.
pub const DEFAULT_PORT: u16 = 6379;
/// Default number of zones per region (one node each).
pub const DEFAULT_ZONES: usize = 3;
/// Default number of data regions (with a witness, unless `--regions` is
/// given).
pub const DEFAULT_REGIONS: usize = 2;
/// Most data regions `dev` starts.
const MAX_REGIONS: usize = 9;
/// How long children get to stop before they are killed.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// What `dev` was asked for; `None` means "the default, or what DIR has".
#[derive(Debug, Clone, Default)]
pub struct DevOptions {
    /// Cluster directory.
    pub dir: PathBuf,
    /// First RESP port.
    pub port: Option<u16>,
    /// Number of data regions.
    pub regions: Option<usize>,
    /// Number of zones per data region.
    pub zones: Option<usize>,
    /// Whether to add a witness region of one node.
    pub witness: bool,
    /// When a write is acknowledged, for a new cluster.
    pub durability: Option<Durability>,
    /// When each node fsyncs its Raft log, for a new cluster.
    pub fsync: Option<Fsync>,
    /// When the failover groups fail over by themselves, for a new cluster.
    pub failover: FailoverOptions,
    /// Number of shards.
    pub shards: Option<u16>,
    /// The failover groups of some shards, for a new cluster.
    pub failover_groups: Vec<FailoverGroupSpec>,
    /// The `default` user's password, for a new cluster.
    pub requirepass: Option<String>,
    /// Latency injected between zones and regions, for a new cluster
    /// (only a `failpoints` build takes it).
    pub link_latency: LinkLatency,
}

/// A node's directory name.
fn node_dir_name(id: u64) -> String {
    format!("node{id}")
}

/// The shape of a dev cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Data regions.
    pub regions: usize,
    /// Zones per data region.
    pub zones: usize,
    /// Whether there is a witness node.
    pub witness: bool,
    /// Shards.
    pub shards: u16,
}

impl Shape {
    /// The shape of an existing cluster's topology.
    fn of(topology: &Topology) -> Shape {
        let specs = topology.region_specs();
        let witness = specs.iter().any(|r| r.role == RegionRole::Witness);
        Shape {
            regions: specs.len() - usize::from(witness),
            zones: topology.zones(topology.primary_region()).len(),
            witness,
            shards: topology.shards,
        }
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural = if self.regions == 1 { "" } else { "s" };
        write!(f, "{} region{plural} of {} zones", self.regions, self.zones)?;
        if self.witness {
            f.write_str(" and a witness")?;
        }
        write!(f, ", {} shards", self.shards)
    }
}

/// The topology for a fresh dev cluster.
pub fn topology(port: u16, shape: Shape, durability: Durability, failover: FailoverOptions) -> Result<Topology> {
    let Shape {
        regions,
        zones,
        witness,
        shards,
    } = shape;
    if !(1..=26).contains(&zones) {
        return Err(Error::Config(format!("--zones must be between 1 and 26, got {zones}")));
    }
    if !(1..=MAX_REGIONS).contains(&regions) {
        return Err(Error::Config(format!(
            "--regions must be between 1 and {MAX_REGIONS}, got {regions}"
        )));
    }
    let declared = regions > 1 || witness;
    let region_name = |r: usize| {
        if declared {
            format!("region{}", r + 1)
        } else {
            "local".into()
        }
    };
    let mut places: Vec<(String, String)> = (0..regions * zones)
        .map(|i| (region_name(i / zones), zone_name(i % zones)))
        .collect();
    let mut region_specs: Vec<RegionSpec> = (0..regions)
        .map(|r| RegionSpec {
            name: region_name(r),
            role: if r == 0 {
                RegionRole::Primary
            } else {
                RegionRole::Secondary
            },
        })
        .collect();
    if witness {
        places.push((WITNESS.into(), zone_name(0)));
        region_specs.push(RegionSpec {
            name: WITNESS.into(),
            role: RegionRole::Witness,
        });
    }
    let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let nodes = places
        .into_iter()
        .enumerate()
        .map(|(i, (region, zone))| {
            let base = port
                .checked_add(10 * i as u16 + 2)
                .ok_or_else(|| Error::Config(format!("--port {port} leaves no room for {} nodes", i + 1)))?;
            Ok(NodeSpec {
                id: i as u64 + 1,
                region,
                zone,
                resp_addr: SocketAddr::new(localhost, base - 2),
                ro_addr: Some(SocketAddr::new(localhost, base - 1)),
                grpc_addr: SocketAddr::new(localhost, base),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let topology = Topology {
        cluster_name: "dev".into(),
        shards,
        regions: if declared { region_specs } else { Vec::new() },
        durability,
        failover,
        failover_groups: Vec::new(),
        nodes,
    };
    topology.validate(Path::new("(dev options)"))?;
    Ok(topology)
}

/// The name of the witness region.
const WITNESS: &str = "witness";

/// Zone `i` of a region: `a`, `b`, …
fn zone_name(i: usize) -> String {
    ((b'a' + i as u8) as char).to_string()
}

/// Writes the cluster's files into `dir` (or reuses those already there)
/// and returns the topology.
pub fn prepare(options: &DevOptions) -> Result<Topology> {
    let dir = &options.dir;
    let topology_path = dir.join("topology.toml");
    if topology_path.exists() {
        let text = std::fs::read_to_string(&topology_path).map_err(|e| Error::io(&topology_path, e))?;
        let existing: Topology = toml::from_str(&text)
            .map_err(|e| Error::Config(format!("{}: {}", topology_path.display(), e.to_string().trim_end())))?;
        existing.validate(&topology_path)?;
        let shape = Shape::of(&existing);
        let differs = options.regions.is_some_and(|r| r != shape.regions)
            || options.zones.is_some_and(|z| z != shape.zones)
            || (options.witness && !shape.witness)
            || options.shards.is_some_and(|s| s != shape.shards)
            || options.port.is_some_and(|p| p != existing.nodes[0].resp_addr.port())
            || options.durability.is_some_and(|d| d != existing.durability)
            || options.fsync.is_some()
            || options.requirepass.is_some()
            || !options.link_latency.is_none()
            || !options.failover_groups.is_empty();
        if differs {
            return Err(Error::Config(format!(
                "{} already holds a cluster of {shape}, first port {}; \
                 run without those flags to resume it (a password is changed in each \
                 node.toml's [auth] section, or with ACL SETUSER, fsync in its [storage] \
                 section, a latency in its [link_latency] section, failover groups in topology.toml, before the cluster \
                 first starts), or use another --dir",
                dir.display(),
                existing.nodes[0].resp_addr.port()
            )));
        }
        return Ok(existing);
    }
    let (regions, witness) = match options.regions {
        Some(regions) => (regions, options.witness),
        None => (DEFAULT_REGIONS, true),
    };
    let shape = Shape {
        regions,
        zones: options.zones.unwrap_or(DEFAULT_ZONES),
        witness,
        shards: options.shards.unwrap_or(DEFAULT_SHARDS),
    };
    options
        .link_latency
        .check()
        .map_err(|msg| Error::Config(format!("--region-latency-ms and --zone-latency-ms: {msg}")))?;
    let durability = options.durability.unwrap_or_default();
    let mut topology = topology(
        options.port.unwrap_or(DEFAULT_PORT),
        shape,
        durability,
        options.failover,
    )?;
    if !options.failover_groups.is_empty() {
        topology.failover_groups = options.failover_groups.clone();
        topology.validate(Path::new("(--failover-group)"))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    for node in &topology.nodes {
        let node_dir = dir.join(node_dir_name(node.id));
        std::fs::create_dir_all(&node_dir).map_err(|e| Error::io(&node_dir, e))?;
        let file = NodeFile {
            id: node.id,
            topology: PathBuf::from("../topology.toml"),
            data_dir: PathBuf::from("."),
            raft: RaftOptions::default(),
            storage: StorageOptions {
                fsync: options.fsync.unwrap_or_default(),
            },
            clients: ClientLimits::default(),
            auth: AuthOptions {
                requirepass: options.requirepass.clone(),
            },
            read_only: ReadOnlyOptions::default(),
            xlog: XlogOptions::default(),
            link_latency: options.link_latency,
        };
        write_toml(&node_dir.join("node.toml"), &file)?;
    }
    write_toml(&topology_path, &topology)?;
    Ok(topology)
}

fn write_toml<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = toml::to_string_pretty(value).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}

struct Running {
    id: u64,
    child: Child,
}

/// Starts every node, prints the endpoints and waits for `shutdown`; then
/// stops the children.
pub async fn run(options: DevOptions, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
    let topology = prepare(&options)?;
    let dir = std::path::absolute(&options.dir).map_err(|e| Error::io(&options.dir, e))?;
    let exe = std::env::current_exe().map_err(|e| Error::io("cairn-server", e))?;
    let mut children = Vec::new();
    for node in &topology.nodes {
        let node_dir = dir.join(node_dir_name(node.id));
        let log_path = node_dir.join("log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| Error::io(&log_path, e))?;
        let err_log = log.try_clone().map_err(|e| Error::io(&log_path, e))?;
        let child = Command::new(&exe)
            .arg("--config")
            .arg(node_dir.join("node.toml"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .spawn()
            .map_err(|e| Error::io(&exe, e))?;
        children.push(Running { id: node.id, child });
    }
    println!("{}", table(&topology, &dir, &children));
    let first = &topology.nodes[0];
    println!("read/write listener: {} (and every node's resp)", first.resp_addr);
    if let Some(ro) = first.ro_addr {
        println!("read-only listener:  {ro} (and every node's ro)");
    }
    if !topology.regions.is_empty() && topology.failover_groups.is_empty() {
        let primary = &topology.region_specs()[usize::from(topology.primary_region())];
        println!(
            "primary region: {} (every node's resp port reads and writes through it)",
            primary.name
        );
    }
    if !topology.failover_groups.is_empty() {
        println!("failover groups (every node's resp port reads and writes through each one's primary):");
        for group in topology.failover_groups() {
            let shards: Vec<String> = group.shards.iter().map(u64::to_string).collect();
            let primary = topology.region_name(group.primary);
            println!("  {}: shards {}, primary {primary}", group.name, shards.join(","));
        }
    }
    if topology.durability == Durability::Witness {
        println!("durability: witness (a write is answered once the witness holds it too)");
    }
    if options.fsync == Some(Fsync::Never) {
        println!("fsync: never (a write survives the loss of a minority of nodes, not a power loss of a majority)");
    }
    if let Some(warning) = topology.fragile_meta_group() {
        println!("note: {warning}");
    }
    println!(
        "try: redis-cli -p {}    (Ctrl-C stops the cluster)",
        topology.nodes[0].resp_addr.port()
    );

    tokio::pin!(shutdown);
    let mut reported = vec![false; children.len()];
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                for (i, running) in children.iter_mut().enumerate() {
                    if !reported[i] && let Ok(Some(status)) = running.child.try_wait() {
                        reported[i] = true;
                        println!(
                            "node {} exited ({status}); see {}/log; restart it with: {} --config {}/node.toml",
                            running.id,
                            dir.join(node_dir_name(running.id)).display(),
                            exe.display(),
                            dir.join(node_dir_name(running.id)).display(),
                        );
                    }
                }
            }
        }
    }
    println!("stopping the cluster…");
    stop_all(&mut children).await;
    Ok(())
}

fn table(topology: &Topology, dir: &Path, children: &[Running]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Cairn dev cluster in {} ({})", dir.display(), Shape::of(topology));
    let _ = writeln!(
        out,
        "{:<6} {:<9} {:<5} {:<16} {:<16} {:<16} {:<8} dir",
        "node", "region", "zone", "resp", "ro", "grpc", "pid"
    );
    for (node, running) in topology.nodes.iter().zip(children) {
        let _ = writeln!(
            out,
            "{:<6} {:<9} {:<5} {:<16} {:<16} {:<16} {:<8} {}",
            node.id,
            node.region,
            node.zone,
            node.resp_addr,
            node.ro_addr.map_or("-".into(), |a| a.to_string()),
            node.grpc_addr,
            running.child.id().map_or("-".into(), |p| p.to_string()),
            dir.join(node_dir_name(node.id)).display()
        );
    }
    out
}

async fn stop_all(children: &mut [Running]) {
    for running in children.iter() {
        if let Some(pid) = running.child.id() {
            send_signal(pid, Signal::SIGTERM);
        }
    }
    let deadline = tokio::time::Instant::now() + STOP_GRACE;
    for running in children.iter_mut() {
        match tokio::time::timeout_at(deadline, running.child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                println!("node {} did not stop in time; killing it", running.id);
                let _ = running.child.kill().await;
            }
        }
    }
}

/// Sends `signal` to process `pid` (best effort: it may have exited).
pub fn send_signal(pid: u32, signal: Signal) {
    let _ = nix::sys::signal::kill(Pid::from_raw(pid as i32), signal);
}

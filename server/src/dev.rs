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
//! Ports: node `i` (from 0) serves RESP on `port + 10·i` and gRPC on
//! `port + 10·i + 2`; `port + 1` stays free for the read-only listener.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use crate::config::{
    AuthOptions, ClientLimits, DEFAULT_SHARDS, NodeFile, NodeSpec, RaftOptions, StorageOptions, Topology,
};
use crate::error::{Error, Result};

/// Default first RESP port.
pub const DEFAULT_PORT: u16 = 6379;
/// Default number of zones (one node each).
pub const DEFAULT_ZONES: usize = 3;
/// How long children get to stop before they are killed.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// What `dev` was asked for; `None` means "the default, or what DIR has".
#[derive(Debug, Clone, Default)]
pub struct DevOptions {
    /// Cluster directory.
    pub dir: PathBuf,
    /// First RESP port.
    pub port: Option<u16>,
    /// Number of zones.
    pub zones: Option<usize>,
    /// Number of shards.
    pub shards: Option<u16>,
    /// The `default` user's password, for a new cluster.
    pub requirepass: Option<String>,
}

/// A node's directory name.
fn node_dir_name(id: u64) -> String {
    format!("node{id}")
}

/// The topology for a fresh dev cluster.
pub fn topology(port: u16, zones: usize, shards: u16) -> Result<Topology> {
    if !(1..=26).contains(&zones) {
        return Err(Error::Config(format!("--zones must be between 1 and 26, got {zones}")));
    }
    let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let nodes = (0..zones)
        .map(|i| {
            let base = port
                .checked_add(10 * i as u16 + 2)
                .ok_or_else(|| Error::Config(format!("--port {port} leaves no room for {zones} nodes")))?;
            Ok(NodeSpec {
                id: i as u64 + 1,
                region: "local".into(),
                zone: ((b'a' + i as u8) as char).to_string(),
                resp_addr: SocketAddr::new(localhost, base - 2),
                grpc_addr: SocketAddr::new(localhost, base),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let topology = Topology {
        cluster_name: "dev".into(),
        shards,
        nodes,
    };
    topology.validate(Path::new("(dev options)"))?;
    Ok(topology)
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
        let differs = options.zones.is_some_and(|z| z != existing.zones().len())
            || options.shards.is_some_and(|s| s != existing.shards)
            || options.port.is_some_and(|p| p != existing.nodes[0].resp_addr.port())
            || options.requirepass.is_some();
        if differs {
            return Err(Error::Config(format!(
                "{} already holds a cluster of {} zones, {} shards, first port {}; \
                 run without those flags to resume it (a password is changed in each \
                 node.toml's [auth] section, or with ACL SETUSER), or use another --dir",
                dir.display(),
                existing.zones().len(),
                existing.shards,
                existing.nodes[0].resp_addr.port()
            )));
        }
        return Ok(existing);
    }
    let topology = topology(
        options.port.unwrap_or(DEFAULT_PORT),
        options.zones.unwrap_or(DEFAULT_ZONES),
        options.shards.unwrap_or(DEFAULT_SHARDS),
    )?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    for node in &topology.nodes {
        let node_dir = dir.join(node_dir_name(node.id));
        std::fs::create_dir_all(&node_dir).map_err(|e| Error::io(&node_dir, e))?;
        let file = NodeFile {
            id: node.id,
            topology: PathBuf::from("../topology.toml"),
            data_dir: PathBuf::from("."),
            raft: RaftOptions::default(),
            storage: StorageOptions::default(),
            clients: ClientLimits::default(),
            auth: AuthOptions {
                requirepass: options.requirepass.clone(),
            },
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
    let _ = writeln!(
        out,
        "Cairn dev cluster in {} ({} shards)",
        dir.display(),
        topology.shards
    );
    let _ = writeln!(
        out,
        "{:<6} {:<5} {:<16} {:<16} {:<8} dir",
        "node", "zone", "resp", "grpc", "pid"
    );
    for (node, running) in topology.nodes.iter().zip(children) {
        let _ = writeln!(
            out,
            "{:<6} {:<5} {:<16} {:<16} {:<8} {}",
            node.id,
            node.zone,
            node.resp_addr,
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

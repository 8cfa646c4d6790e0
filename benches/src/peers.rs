//! The servers `cairn-bench` compares, started on this machine: Redis
//! (without persistence or with `appendfsync always`), a 3-member etcd
//! cluster, and a Cairn dev cluster, each on free loopback ports and in a
//! directory of the caller's.
//!
//! Every process is a [`Started`], stopped when dropped (SIGTERM, then
//! SIGKILL after 20 s), so nothing outlives a run that ends, fails or is
//! interrupted.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::resp::Connection;
use crate::runner::Target;

/// A process started for a benchmark, stopped when dropped: with
/// SIGTERM first (`cairn-server dev` then stops its nodes), then SIGKILL
/// if it has not exited within 20 s.
pub struct Started {
    name: String,
    child: Child,
}

impl Started {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        // Already exited (and reaped): its pid may belong to another
        // process by now, so it must not be signalled.
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start(name: &str, program: &Path, args: &[String], log: &Path) -> anyhow::Result<Started> {
    let log = std::fs::File::create(log)?;
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {} (scripts/setup installs it)", program.display()))?;
    Ok(Started {
        name: name.into(),
        child,
    })
}

/// Where servers' ports are taken from: below the kernel's ephemeral range
/// (32768 and up), so no outgoing connection can hold a server's port. A
/// port handed out from that range can be taken by a client's connection
/// (even one to itself, on loopback) while its server restarts, and the
/// server then cannot listen again. Tests of the server use 20000 and up.
const SERVER_PORTS: std::ops::Range<u16> = 12_000..20_000;

/// A loopback port nobody listens on right now, never handed out twice by
/// this process.
fn free_port() -> anyhow::Result<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let span = u32::from(SERVER_PORTS.end - SERVER_PORTS.start);
    let offset = std::process::id().wrapping_mul(7_919) % span;
    loop {
        let step = NEXT.fetch_add(1, Ordering::Relaxed);
        anyhow::ensure!(step < span, "no free loopback port left in {SERVER_PORTS:?}");
        let port = SERVER_PORTS.start + ((offset + step) % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
}

pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Waits until a Redis-protocol server at `addr` answers `probe` with
/// anything but an error.
pub async fn wait_resp(started: &mut Started, addr: SocketAddr, probe: &[&[u8]]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut conn) = Connection::open(addr).await
            && let Ok(reply) = conn.call(probe).await
            && !matches!(reply, crate::resp::Value::Error(_))
        {
            return Ok(());
        }
        if let Some(status) = started.child.try_wait()? {
            anyhow::bail!("{} exited ({status}) before answering", started.name);
        }
        anyhow::ensure!(Instant::now() < deadline, "{} did not answer within 30 s", started.name);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One peer under load.
pub struct Peer {
    /// Its name in reports.
    pub name: String,
    /// Where its load goes.
    pub target: Target,
    /// Kept alive while the peer is measured.
    pub processes: Vec<Started>,
    /// The server processes whose CPU time its load is charged: Redis,
    /// each etcd member, each Cairn node (not `dev`'s supervisor).
    pub server_pids: Vec<u32>,
}

pub async fn redis(dir: &Path, fsync: bool) -> anyhow::Result<Peer> {
    let port = free_port()?;
    let data = dir.join(if fsync { "redis-fsync" } else { "redis" });
    std::fs::create_dir_all(&data)?;
    let mut args: Vec<String> = ["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(["--dir".into(), data.display().to_string()]);
    if fsync {
        args.extend(["--appendonly", "yes", "--appendfsync", "always"].map(String::from));
    } else {
        args.extend(["--appendonly", "no"].map(String::from));
    }
    let name = if fsync {
        "redis appendfsync always"
    } else {
        "redis no persistence"
    };
    let mut started = start(name, Path::new("redis-server"), &args, &data.join("log"))?;
    wait_resp(&mut started, loopback(port), &[b"PING"]).await?;
    Ok(Peer {
        name: name.into(),
        target: Target::Resp {
            addr: loopback(port),
            cluster: false,
        },
        server_pids: vec![started.pid()],
        processes: vec![started],
    })
}

pub async fn etcd(dir: &Path) -> anyhow::Result<Peer> {
    let members: Vec<(String, u16, u16)> = (1..=3)
        .map(|i| Ok((format!("m{i}"), free_port()?, free_port()?)))
        .collect::<anyhow::Result<_>>()?;
    let cluster = members
        .iter()
        .map(|(name, _, peer)| format!("{name}=http://127.0.0.1:{peer}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut processes = Vec::new();
    for (name, client, peer) in &members {
        let data = dir.join(format!("etcd-{name}"));
        std::fs::create_dir_all(&data)?;
        let args = [
            "--name".into(),
            name.clone(),
            "--data-dir".into(),
            data.join("data").display().to_string(),
            "--listen-client-urls".into(),
            format!("http://127.0.0.1:{client}"),
            "--advertise-client-urls".into(),
            format!("http://127.0.0.1:{client}"),
            "--listen-peer-urls".into(),
            format!("http://127.0.0.1:{peer}"),
            "--initial-advertise-peer-urls".into(),
            format!("http://127.0.0.1:{peer}"),
            "--initial-cluster".into(),
            cluster.clone(),
            "--initial-cluster-state".into(),
            "new".into(),
        ];
        processes.push(start(
            &format!("etcd {name}"),
            Path::new("etcd"),
            &args,
            &data.join("log"),
        )?);
    }
    let endpoints: Vec<String> = members.iter().map(|(_, c, _)| format!("127.0.0.1:{c}")).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = async {
            let mut client = etcd_client::Client::connect(&endpoints, None).await?;
            client.put("cairn-bench-ready", "1", None).await?;
            anyhow::Ok(())
        };
        if ready.await.is_ok() {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the etcd cluster did not answer within 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(Peer {
        name: "etcd 3 members".into(),
        target: Target::Etcd { endpoints },
        server_pids: processes.iter().map(Started::pid).collect(),
        processes,
    })
}

/// `cairn-server` from the same build as this binary.
pub fn cairn_server() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name("cairn-server");
    anyhow::ensure!(
        path.exists(),
        "{} is missing: build it with cargo build --release -p cairn-server",
        path.display()
    );
    Ok(path)
}

/// A running Cairn dev cluster.
pub struct CairnDev {
    /// `cairn-server dev`, which stops its nodes when stopped.
    pub supervisor: Started,
    /// The cluster's directory (`node<n>/` per node).
    pub dir: PathBuf,
    /// Node 1's RESP port; node n's is `10 * (n - 1)` above it, and each
    /// node's gRPC port is two above its RESP port.
    pub port: u16,
}

impl CairnDev {
    /// Node `node`'s RESP address.
    pub fn resp_addr(&self, node: u16) -> SocketAddr {
        loopback(self.port + 10 * (node - 1))
    }

    /// Every address node `node` listens on: its RESP port, the read-only
    /// listener's just above it, and gRPC's two above.
    pub fn listen_addrs(&self, node: u16) -> [SocketAddr; 3] {
        let resp = self.resp_addr(node).port();
        [resp, resp + 1, resp + 2].map(loopback)
    }

    /// Its nodes' numbers (one region of 3 zones).
    pub fn nodes(&self) -> std::ops::RangeInclusive<u16> {
        1..=3
    }

    /// Node `node`'s pid, from the file it writes.
    pub fn node_pid(&self, node: u16) -> anyhow::Result<u32> {
        let path = self.dir.join(format!("node{node}")).join("pid");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        text.trim()
            .parse()
            .with_context(|| format!("{}: not a pid: {text:?}", path.display()))
    }
}

/// When a dev cluster's nodes fsync their Raft logs (`cairn-server dev
/// --fsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    /// Before a write is acknowledged (the default).
    Always,
    /// Never.
    Never,
}

impl Fsync {
    /// The policy as `dev --fsync` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Fsync::Always => "always",
            Fsync::Never => "never",
        }
    }
}

/// Starts a Cairn dev cluster (3 zones) in `dir/cairn`, of `shards` shards
/// (`None`: `dev`'s default) whose nodes fsync their logs as `fsync` says
/// (`None`: always), and waits until every node takes writes.
pub async fn cairn_dev(dir: &Path, shards: Option<u16>, fsync: Option<Fsync>) -> anyhow::Result<CairnDev> {
    // `dev` uses the port and the 22 above it.
    let port = loop {
        let port = free_port()?;
        if port + 22 < SERVER_PORTS.end && (0..=22).all(|off| TcpListener::bind(("127.0.0.1", port + off)).is_ok()) {
            break port;
        }
    };
    let cluster_dir = dir.join("cairn");
    let mut args = vec![
        "dev".into(),
        "--dir".into(),
        cluster_dir.display().to_string(),
        "--port".into(),
        port.to_string(),
        // One region: the peers compared are single-region stores.
        "--regions".into(),
        "1".into(),
    ];
    if let Some(shards) = shards {
        args.extend(["--shards".into(), shards.to_string()]);
    }
    if let Some(fsync) = fsync {
        args.extend(["--fsync".into(), fsync.name().to_string()]);
    }
    let mut supervisor = start("cairn dev", &cairn_server()?, &args, &dir.join("cairn.log"))?;
    // Ready once every node takes a write: a SET through each.
    for node in 0..3u16 {
        let addr = loopback(port + 10 * node);
        wait_resp(
            &mut supervisor,
            addr,
            &[b"SET", format!("cairn-bench:{node}").as_bytes(), b"1"],
        )
        .await?;
    }
    Ok(CairnDev {
        supervisor,
        dir: cluster_dir,
        port,
    })
}

/// The Cairn cluster, as two peers: through the Redis protocol
/// (cluster-aware) and through its gRPC API.
pub async fn cairn(dir: &Path) -> anyhow::Result<[Peer; 2]> {
    let dev = cairn_dev(dir, None, None).await?;
    let server_pids = dev
        .nodes()
        .map(|node| dev.node_pid(node))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let grpc = Peer {
        name: "cairn grpc (cairn-client)".into(),
        target: Target::Grpc {
            seed: format!("127.0.0.1:{}", dev.port + 2),
        },
        processes: Vec::new(),
        server_pids: server_pids.clone(),
    };
    let resp = Peer {
        name: "cairn 3 zones".into(),
        target: Target::Resp {
            addr: dev.resp_addr(1),
            cluster: true,
        },
        processes: vec![dev.supervisor],
        server_pids,
    };
    Ok([resp, grpc])
}

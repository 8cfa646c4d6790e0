//! Runs a load: load the key space (for workloads that read), warm up, then
//! measure for a fixed window.
//!
//! Each connection is a task with its own operation generator and its own
//! latency histogram (merged at the end, so recording never contends). A
//! task sends `pipeline` operations at a time: to a Redis-protocol server
//! as one pipeline (per node, in a cluster-aware run; see [`crate::resp`]),
//! to etcd as concurrent requests ([`crate::etcd`]). A progress line is
//! printed every second.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::etcd::EtcdSession;
use crate::grpc;
use crate::report::Measured;
use crate::resp::RespSession;
use crate::workload::{Generator, KeyDistribution, Op, Workload};

/// Where the load goes.
#[derive(Debug, Clone)]
pub enum Target {
    /// A server speaking the Redis protocol (Redis, Cairn).
    Resp {
        /// A node (or the only server).
        addr: SocketAddr,
        /// Route each key to the node serving its slot (`CLUSTER SLOTS`).
        cluster: bool,
    },
    /// Cairn's gRPC API through `cairn-client`.
    Grpc {
        /// Any node's gRPC address, `host:port`.
        seed: String,
    },
    /// An etcd cluster.
    Etcd {
        /// Client endpoints, `host:port`.
        endpoints: Vec<String>,
    },
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Load {
    /// Where it goes.
    pub target: Target,
    /// The mix.
    pub workload: Workload,
    /// How keys are drawn.
    pub distribution: KeyDistribution,
    /// Keys in the key space.
    pub keys: u64,
    /// Bytes per key.
    pub key_size: usize,
    /// Bytes per value.
    pub value_size: usize,
    /// Connections (per node, in a cluster-aware run).
    pub connections: usize,
    /// Operations in flight per connection.
    pub pipeline: usize,
    /// Time before measuring.
    pub warmup: Duration,
    /// Time measured.
    pub duration: Duration,
    /// Write every key once first (done for workloads that read).
    pub preload: bool,
}

impl Load {
    /// The load's settings in one line.
    pub fn shape(&self) -> String {
        format!(
            "{} connections, pipeline {}, {} keys of {} B, values of {} B, {} keys, {:.0} s measured after {:.0} s \
             of warm-up",
            self.connections,
            self.pipeline,
            self.keys,
            self.key_size,
            self.value_size,
            format!("{:?}", self.distribution).to_lowercase(),
            self.duration.as_secs_f64(),
            self.warmup.as_secs_f64()
        )
    }
}

/// One task's way to the servers.
enum Session {
    Resp(RespSession),
    Grpc(cairn_client::Client),
    Etcd(Box<EtcdSession>),
}

impl Session {
    /// `shared` is the one `cairn-client` of a gRPC run.
    async fn open(load: &Load, shared: &Option<cairn_client::Client>) -> anyhow::Result<Session> {
        Ok(match (&load.target, shared) {
            (Target::Resp { addr, cluster }, _) => Session::Resp(RespSession::open(*addr, *cluster).await?),
            (Target::Grpc { .. }, Some(client)) => Session::Grpc(client.clone()),
            (Target::Grpc { seed }, None) => Session::Grpc(grpc::connect(seed).await?),
            (Target::Etcd { endpoints }, _) => Session::Etcd(Box::new(EtcdSession::open(endpoints).await?)),
        })
    }

    /// Sends `ops`; `done` gets each completed group's size, latency and
    /// errors.
    async fn send(
        &mut self,
        ops: Vec<Op>,
        value: &[u8],
        done: impl FnMut(usize, Duration, usize),
    ) -> anyhow::Result<()> {
        match self {
            Session::Resp(session) => session.send(ops, value, done).await,
            Session::Grpc(client) => {
                grpc::send(client, ops, value, done).await;
                Ok(())
            }
            Session::Etcd(session) => session.send(ops, value, done).await,
        }
    }
}

/// Writes every key once, `connections` tasks at depth 64.
async fn preload(load: &Load, value: &Arc<Vec<u8>>, shared: &Option<cairn_client::Client>) -> anyhow::Result<()> {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..load.connections {
        let (load, next, value, shared) = (load.clone(), next.clone(), value.clone(), shared.clone());
        tasks.push(tokio::spawn(async move {
            let mut session = Session::open(&load, &shared).await?;
            loop {
                let first = next.fetch_add(64, Ordering::Relaxed);
                if first >= load.keys {
                    return anyhow::Ok(());
                }
                let ops = (first..(first + 64).min(load.keys))
                    .map(|n| Op::Set(Generator::key_name(n, load.key_size)))
                    .collect();
                // F's counters must hold integers.
                let value: &[u8] = if load.workload == Workload::F { b"0" } else { &value };
                session.send(ops, value, |_, _, _| {}).await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// Writes every key of `load`'s key space once, as a run does before a
/// workload that reads.
pub async fn load_key_space(load: &Load) -> anyhow::Result<()> {
    let value = Arc::new(vec![b'v'; load.value_size]);
    preload(load, &value, &None).await
}

/// Runs the load and returns what was measured.
pub async fn run(load: Load) -> anyhow::Result<Measured> {
    start(load).await?.finish().await
}

/// What one connection measured: its latencies, operations and errors.
type Tally = (Histogram<u64>, u64, u64);

/// A load under way: warming up, then measured from `measure_from` to
/// `end`; a caller can read other counters over the same window
/// ([`Running::finish_reading`]).
pub struct Running {
    /// When the measured window opens.
    measure_from: Instant,
    /// When it closes.
    end: Instant,
    duration: Duration,
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<Tally>>>,
    progress: tokio::task::JoinHandle<()>,
}

/// Loads the key space if the workload reads, then starts the load's
/// connections and returns at once.
pub async fn start(load: Load) -> anyhow::Result<Running> {
    let value = Arc::new(vec![b'v'; load.value_size]);
    let shared = match &load.target {
        Target::Grpc { seed } => Some(grpc::connect(seed).await?),
        _ => None,
    };
    if load.preload && load.workload != Workload::Set {
        let started = Instant::now();
        eprintln!("loading {} keys…", load.keys);
        preload(&load, &value, &shared).await?;
        eprintln!("loaded in {:.1} s", started.elapsed().as_secs_f64());
    }
    let completed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let measure_from = start + load.warmup;
    let end = measure_from + load.duration;
    let mut tasks = Vec::new();
    for i in 0..load.connections {
        let (load, value, completed, shared) = (load.clone(), value.clone(), completed.clone(), shared.clone());
        tasks.push(tokio::spawn(async move {
            let mut generator = Generator::new(load.workload, load.distribution, load.keys, load.key_size, i as u64);
            let mut session = Session::open(&load, &shared).await?;
            let mut histogram = Histogram::<u64>::new(3).expect("3 significant digits is valid");
            let (mut ops, mut errors) = (0u64, 0u64);
            while Instant::now() < end {
                let batch: Vec<Op> = (0..load.pipeline).map(|_| generator.next_op()).collect();
                let measuring = Instant::now() >= measure_from;
                session
                    .send(batch, &value, |n, took, failed| {
                        completed.fetch_add(n as u64, Ordering::Relaxed);
                        if measuring {
                            let micros = took.as_micros().max(1) as u64;
                            let _ = histogram.record_n(micros, n as u64);
                            ops += n as u64;
                            errors += failed as u64;
                        }
                    })
                    .await?;
            }
            anyhow::Ok((histogram, ops, errors))
        }));
    }
    Ok(Running {
        measure_from,
        end,
        duration: load.duration,
        tasks,
        progress: tokio::spawn(progress(completed, end)),
    })
}

impl Running {
    /// Reads `counters` as the measured window opens and again as it
    /// closes, then finishes: what was measured, and the two readings.
    pub async fn finish_reading<T, Fut>(self, mut counters: impl FnMut() -> Fut) -> anyhow::Result<(Measured, T, T)>
    where
        Fut: Future<Output = anyhow::Result<T>>,
    {
        tokio::time::sleep_until(self.measure_from.into()).await;
        let before = counters().await?;
        tokio::time::sleep_until(self.end.into()).await;
        let after = counters().await?;
        Ok((self.finish().await?, before, after))
    }

    /// Waits for every connection to finish and returns what was measured.
    pub async fn finish(self) -> anyhow::Result<Measured> {
        let mut total = Histogram::<u64>::new(3).expect("3 significant digits is valid");
        let (mut ops, mut errors) = (0, 0);
        for task in self.tasks {
            let (histogram, n, failed) = task.await??;
            total.add(histogram)?;
            ops += n;
            errors += failed;
        }
        self.progress.abort();
        eprintln!();
        Ok(Measured::new(&total, ops, errors, self.duration))
    }
}

/// Prints operations per second on one line, every second, until `end`.
async fn progress(completed: Arc<AtomicU64>, end: Instant) {
    let mut last = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    while Instant::now() < end {
        tick.tick().await;
        let now = completed.load(Ordering::Relaxed);
        let left = end.saturating_duration_since(Instant::now()).as_secs();
        eprint!("\r{:>10} ops/s, {left:>4} s left ", now - last);
        last = now;
    }
}

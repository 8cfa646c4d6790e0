//! Workloads: concurrent clients that drive the cluster and record every
//! operation with its outcome.
//!
//! - [`register`]: read / write / compare-and-set on many independent keys;
//!   unique values; keys rotate after a few hundred operations so each
//!   key's history stays small enough to check.
//! - [`set`]: adds of unique elements (one key per element), then a final
//!   read of everything (`MGET`).
//! - [`counter`]: increments, then a final read of each counter.
//!
//! Each workload runs through one of the paths users run ([`Via`]):
//! cairn-client (routing, retries, exactly-once writes), its batches (a few
//! writes per `Client::batch`, sent as one `Batch` call per node), the
//! Redis protocol through any node, or the raw gRPC `Kv` service through
//! any node (which forwards to the leader).
//!
//! Outcomes are classified conservatively: `fail` only when the server said
//! nothing was proposed (no leader), the connection was refused before
//! anything was sent, or the request was refused as invalid; every other
//! error or timeout is `unknown`.

pub mod counter;
pub mod register;
pub mod set;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tokio::time::Instant;

use crate::history::{Kind, Op, Recorder, Status};

/// How long a client waits for one operation before calling it unknown.
pub const OP_TIMEOUT: Duration = Duration::from_secs(6);

/// Which workload to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// Registers with read, write and compare-and-set.
    Register,
    /// A grow-only set.
    Set,
    /// Counters.
    Counter,
}

/// The path clients take to the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Via {
    /// cairn-client: routed to leaders, retried, writes exactly once.
    Client,
    /// cairn-client's batches: a few writes per `Client::batch`, one call
    /// per node, each write retried and applied exactly once on its own.
    Batch,
    /// The gRPC `Kv` service of a node (forwarded to the leader), no retries.
    Grpc,
    /// The Redis protocol of a node (forwarded to the leader), no retries.
    Resp,
}

impl Workload {
    /// The path used when none is asked for.
    pub fn default_via(self) -> Via {
        match self {
            Workload::Register | Workload::Counter => Via::Client,
            Workload::Set => Via::Resp,
        }
    }

    /// Whether the workload can run through `via`.
    pub fn supports(self, via: Via) -> bool {
        match self {
            // Compare-and-set is not a Redis command; a register's
            // operations are checked one at a time per client, and a
            // batch's run at once.
            Workload::Register => matches!(via, Via::Client | Via::Grpc),
            Workload::Set | Workload::Counter => via != Via::Grpc,
        }
    }
}

/// A cairn-client handle for one workload client, built once the cluster
/// answers (`None` if it never did before the deadline).
pub async fn cairn_client(ctx: &Context) -> Option<cairn_client::Client> {
    let seeds: Vec<String> = ctx.grpc.iter().map(ToString::to_string).collect();
    while Instant::now() < ctx.deadline {
        let built = cairn_client::Client::builder()
            .seeds(seeds.clone())
            .options(cairn_client::CallOptions::default().deadline(CLIENT_DEADLINE))
            .build()
            .await;
        if let Ok(client) = built {
            return Some(client);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

/// The deadline of one cairn-client call (its retries included).
pub const CLIENT_DEADLINE: Duration = Duration::from_secs(5);

/// How many writes a client puts in one batch (`--via batch`).
pub const BATCH: usize = 4;

/// Classifies a failed cairn-client write: `fail` only when the request
/// was refused as such (it cannot have been applied).
pub fn client_write_status(err: &cairn_client::Error) -> Status {
    match err {
        cairn_client::Error::InvalidArgument(_)
        | cairn_client::Error::Rejected(_)
        | cairn_client::Error::Unauthorized(_) => Status::Fail,
        _ => Status::Unknown,
    }
}

/// The status of the `i`th write of a batch whose outcomes arrived, or
/// not, within [`OP_TIMEOUT`].
pub fn batch_write_status<T, E>(outcomes: &Result<Vec<Result<T, cairn_client::Error>>, E>, i: usize) -> Status {
    match outcomes.as_ref().map(|outcomes| &outcomes[i]) {
        Ok(Ok(_)) => Status::Ok,
        Ok(Err(err)) => client_write_status(err),
        Err(_) => Status::Unknown,
    }
}

/// What every client of a run shares.
pub struct Context {
    /// Where operations are recorded.
    pub recorder: Arc<Recorder>,
    /// Every node's gRPC address.
    pub grpc: Vec<SocketAddr>,
    /// Every node's RESP address.
    pub resp: Vec<SocketAddr>,
    /// The path clients take.
    pub via: Via,
    /// When clients stop issuing operations.
    pub deadline: Instant,
    /// Operations issued so far (drives key rotation).
    pub issued: AtomicU64,
}

impl Context {
    /// Records a finished operation that started at `call`.
    pub fn record(&self, client: u64, call: u64, kind: Kind, key: &str, fields: Fields) {
        self.recorder.record(Op {
            client,
            call,
            ret: self.recorder.now(),
            op: kind,
            key: key.to_string(),
            value: fields.value,
            expected: fields.expected,
            new: fields.new,
            status: fields.status,
            result: fields.result,
        });
    }
}

/// The parts of an [`Op`] a workload fills in.
#[derive(Debug, Clone)]
pub struct Fields {
    /// Written value or added element.
    pub value: Option<String>,
    /// Cas expectation.
    pub expected: Option<Option<String>>,
    /// Cas new value.
    pub new: Option<String>,
    /// Outcome.
    pub status: Status,
    /// Result, when ok.
    pub result: Option<serde_json::Value>,
}

impl Fields {
    /// An outcome with no operands yet.
    pub fn status(status: Status) -> Self {
        Fields {
            value: None,
            expected: None,
            new: None,
            status,
            result: None,
        }
    }
}

/// Runs `clients` clients of `workload` until the deadline.
pub async fn run_clients(workload: Workload, ctx: Arc<Context>, clients: usize, seed: u64) {
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients as u64 {
        let ctx = ctx.clone();
        let seed = seed.wrapping_add(client.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        match workload {
            Workload::Register => tasks.spawn(register::client(client, ctx, seed)),
            Workload::Set => tasks.spawn(set::client(client, ctx, seed)),
            Workload::Counter => tasks.spawn(counter::client(client, ctx, seed)),
        };
    }
    while tasks.join_next().await.is_some() {}
}

/// Reads the final state of every set or counter, retrying until it can.
pub async fn final_reads(workload: Workload, ctx: &Context) -> anyhow::Result<()> {
    match workload {
        Workload::Register => Ok(()),
        Workload::Set => set::final_read(ctx).await,
        Workload::Counter => counter::final_read(ctx).await,
    }
}

/// Whether a RESP error means "not proposed" (no leader could take it).
pub fn resp_definitely_failed(error: &str) -> bool {
    error.starts_with("CLUSTERDOWN")
}

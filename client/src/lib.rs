//! `cairn-client`: the Rust client for Cairn.
//!
//! It talks gRPC to the cluster and hides the failures a replicated store
//! goes through: a leader election, a killed node or a lost zone cost the
//! application some milliseconds, not an error, and never a duplicated
//! write.
//!
//! - **Routing.** The client learns the topology (nodes, zones, shards and
//!   their slot ranges, leaders) from any seed node and keeps it fresh from
//!   a server-pushed stream, so each request goes by slot straight to the
//!   shard's leader.
//! - **Retries.** Transient failures (a node that no longer leads, one that
//!   is down, an election under way) are retried with exponential backoff
//!   and jitter inside the call's deadline. Permanent errors come back at
//!   once; [`Error::is_retryable`] tells them apart.
//! - **Exactly once.** Every write carries `(client id, sequence number)`;
//!   the shard remembers the reply and answers a retry with it instead of
//!   applying the write again, so an `incr` retried after a lost reply
//!   counts once.
//! - **Circuit breakers.** One per node: a dead node is skipped after a few
//!   failures and probed again later.
//! - **Regions.** In a cluster of several regions,
//!   [`Client::read_write`] follows each failover group's primary region
//!   across failovers, and [`Client::read_only`] reads the replicas of the
//!   client's own region within a staleness bound.
//! - **Batches.** [`Client::batch`] sends many operations in one call per
//!   node instead of one call each, most of a small operation's cost;
//!   each operation is still routed, retried and applied exactly once on
//!   its own.
//! - **Consistency per call.** [`Consistency::Linearizable`] (default),
//!   [`Consistency::ReadIndex`], [`Consistency::BoundedStaleness`],
//!   [`Consistency::Stale`]; every reply's [`Header`] says which shard and
//!   node answered and which log index it reflects.
//!
//! # Quickstart
//!
//! Start a local cluster with `cairn-server dev`, which prints each node's
//! gRPC address, then:
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use cairn_client::{CallOptions, Client, Consistency, SetOptions};
//!
//! # async fn run() -> Result<(), cairn_client::Error> {
//! let client = Client::builder().seeds(["127.0.0.1:6381"]).build().await?;
//!
//! client.set("greeting", "hello").await?;
//! let reply = client.get("greeting").await?;
//! assert_eq!(reply.value.as_deref(), Some(&b"hello"[..]));
//! println!("shard {} answered at index {}", reply.header.shard, reply.header.index);
//!
//! client.set_with("session:42", "alice", SetOptions::default().ttl(Duration::from_secs(60))).await?;
//! let swapped = client.compare_and_set("greeting", Some("hello".into()), "hi").await?.value.swapped;
//! assert!(swapped);
//! let visits = client.incr("visits", 1).await?.value;
//! println!("visit number {visits}");
//!
//! // A cheaper read from any replica, at most 100 ms behind its leader.
//! let relaxed = client.with(CallOptions::default().consistency(Consistency::BoundedStaleness(
//!     Duration::from_millis(100),
//! )));
//! relaxed.get("greeting").await?;
//! # Ok(())
//! # }
//! ```
//!
//! `client/examples/quickstart.rs` is the same as a program:
//! `cargo run --release -p cairn-client --example quickstart -- --seed 127.0.0.1:6381`.

mod backoff;
mod batch;
mod breaker;
mod builder;
mod client;
mod error;
mod failover_group;
mod metrics;
mod options;
mod pool;
mod reply;
mod session;
mod topology;
mod watch;

pub use backoff::Backoff;
pub use batch::{Batch, Op, Outcome};
pub use breaker::{BreakerConfig, BreakerState};
pub use builder::ClientBuilder;
pub use client::Client;
pub use error::{Error, Result};
pub use failover_group::ReadOnly;
pub use metrics::{Attempt, MetricsHook, Stats};
pub use options::{CallOptions, Condition, Consistency, SetOptions};
pub use reply::{CasOutcome, Header, MGet, Reply, Ttl};
pub use topology::{FailoverGroupInfo, NodeInfo, ShardInfo, Topology};

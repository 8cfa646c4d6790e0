//! Building a client: seeds, timeouts, retry and breaker settings, TLS and
//! a metrics hook, then topology discovery from the first seed that
//! answers.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use cairn_proto::admin::StatusRequest;
use cairn_proto::admin::admin_client::AdminClient;

use crate::backoff::Backoff;
use crate::breaker::BreakerConfig;
use crate::client::{Client, Inner, Settings};
use crate::error::{Error, Result};
use crate::metrics::{Counters, MetricsHook, NoMetrics};
use crate::options::CallOptions;
use crate::pool::{ChannelConfig, Pool};
use crate::session::Session;
use crate::topology::Topology;
use crate::watch;

/// Settings of a client; see [`Client::builder`].
pub struct ClientBuilder {
    seeds: Vec<String>,
    region: Option<String>,
    options: CallOptions,
    attempt_timeout: Duration,
    connect_timeout: Duration,
    connections_per_node: usize,
    backoff: Backoff,
    breaker: BreakerConfig,
    watch_topology: bool,
    metrics: Arc<dyn MetricsHook>,
    #[cfg(feature = "tls")]
    tls: Option<tonic::transport::ClientTlsConfig>,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            seeds: Vec::new(),
            region: None,
            options: CallOptions::default(),
            attempt_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_millis(500),
            connections_per_node: 2,
            backoff: Backoff::default(),
            breaker: BreakerConfig::default(),
            watch_topology: true,
            metrics: Arc::new(NoMetrics),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl ClientBuilder {
    /// Nodes to learn the topology from (`host:port` of their gRPC
    /// listener, an `http://` prefix is accepted); any one is enough.
    pub fn seeds<S: Into<String>>(mut self, seeds: impl IntoIterator<Item = S>) -> Self {
        self.seeds = seeds.into_iter().map(Into::into).collect();
        self
    }

    /// The region this client runs in, whose replicas
    /// [`Client::read_only`] handles read (default: the region of the seed
    /// that answered).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Default deadline and consistency of calls (default: 5 s,
    /// linearizable).
    pub fn options(mut self, options: CallOptions) -> Self {
        self.options = options;
        self
    }

    /// The longest one attempt may take before it is retried elsewhere
    /// (default 1 s).
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// How long opening a connection may take (default 500 ms).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// HTTP/2 connections kept per node (default 2).
    pub fn connections_per_node(mut self, n: usize) -> Self {
        self.connections_per_node = n.max(1);
        self
    }

    /// Pauses between retries (default: 10 ms doubling up to 500 ms, with
    /// full jitter).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Circuit breaker thresholds (default: open after 3 consecutive
    /// failures, probe again after 1 s).
    pub fn breaker(mut self, breaker: BreakerConfig) -> Self {
        self.breaker = breaker;
        self
    }

    /// Whether to follow the cluster's topology stream (default true);
    /// without it leaders are learned only from refusals.
    pub fn watch_topology(mut self, watch: bool) -> Self {
        self.watch_topology = watch;
        self
    }

    /// Where measurements go (default: nowhere; [`Client::stats`] counts
    /// regardless).
    pub fn metrics(mut self, hook: impl MetricsHook) -> Self {
        self.metrics = Arc::new(hook);
        self
    }

    /// Talk TLS to every node, with these settings (CA, domain name, client
    /// identity).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: tonic::transport::ClientTlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Learns the topology from the first seed that answers and starts the
    /// background tasks (topology stream, breaker probes).
    pub async fn build(self) -> Result<Client> {
        if self.seeds.is_empty() {
            return Err(Error::InvalidArgument("no seed nodes given".into()));
        }
        let channels = ChannelConfig {
            connect_timeout: self.connect_timeout,
            per_node: self.connections_per_node,
            #[cfg(feature = "tls")]
            tls: self.tls,
        };
        let mut failures = Vec::new();
        let mut topology = None;
        for seed in &self.seeds {
            let addr = seed.trim_start_matches("http://").trim_start_matches("https://");
            match discover(&channels, addr, self.attempt_timeout).await {
                Ok(found) => {
                    topology = Some(found);
                    break;
                }
                Err(err) => failures.push(format!("{addr}: {err}")),
            }
        }
        let (topology, answered_by) = topology.ok_or_else(|| Error::Discovery(failures.join("; ")))?;
        let region = match self.region {
            Some(region) if topology.nodes.values().any(|n| n.region == region) => region,
            Some(region) => {
                let known: std::collections::BTreeSet<&str> =
                    topology.nodes.values().map(|n| n.region.as_str()).collect();
                return Err(Error::InvalidArgument(format!(
                    "the cluster has no region {region:?} (it has {})",
                    Vec::from_iter(known).join(", ")
                )));
            }
            None => topology.region_of(answered_by).unwrap_or_default().to_string(),
        };
        tracing::debug!(
            nodes = topology.nodes.len(),
            shards = topology.shards.len(),
            "topology learned"
        );
        let inner = Arc::new(Inner {
            topology: RwLock::new(topology),
            region,
            pool: Pool::new(channels),
            breakers: Mutex::default(),
            settings: Settings {
                attempt_timeout: self.attempt_timeout,
                backoff: self.backoff,
                breaker: self.breaker,
            },
            session: Arc::new(Session::new()),
            counters: Counters::default(),
            metrics: self.metrics,
            tasks: Mutex::default(),
        });
        watch::start(&inner, self.watch_topology);
        Ok(Client {
            inner,
            options: self.options,
            local_reads: false,
        })
    }
}

/// Asks one node for the topology; also says which node answered.
async fn discover(channels: &ChannelConfig, addr: &str, timeout: Duration) -> Result<(Topology, u64)> {
    let mut admin = AdminClient::new(channels.channel(addr)?);
    let mut request = tonic::Request::new(StatusRequest {});
    request.set_timeout(timeout);
    let status = tokio::time::timeout(timeout, admin.status(request))
        .await
        .map_err(|_| Error::AttemptTimeout {
            node: 0,
            after: timeout,
        })?
        .map_err(|status| Error::from_status(&status, 0, 0))?
        .into_inner();
    let answered_by = status.answered_by;
    Ok((Topology::from_status(status)?, answered_by))
}

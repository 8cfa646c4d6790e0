//! Connections: a few HTTP/2 channels per node, made on first use and
//! shared by every call to that node.
//!
//! gRPC multiplexes calls over one HTTP/2 connection; a small number of
//! them per node (round-robin) keeps one slow stream from holding up the
//! rest. Channels connect lazily, send keep-alive pings so a silent peer is
//! noticed within seconds, and disable Nagle's algorithm (small requests
//! must not wait for the peer's delayed ACK).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cairn_proto::kv::kv_client::KvClient;
use tonic::transport::{Channel, Endpoint};

use crate::error::{Error, Result};

/// Largest call or reply either way, the server's limit too: one value
/// may hold a whole write (32 MiB), and tonic's default takes 4 MiB.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// The KV service over `channel`, for calls and replies up to
/// [`MAX_MESSAGE`].
pub(crate) fn kv_client(channel: Channel) -> KvClient<Channel> {
    KvClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE)
}

/// How channels are made.
#[derive(Debug, Clone)]
pub(crate) struct ChannelConfig {
    pub(crate) connect_timeout: Duration,
    pub(crate) per_node: usize,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<tonic::transport::ClientTlsConfig>,
}

impl ChannelConfig {
    /// A lazily connecting channel to `addr` (`host:port`).
    pub(crate) fn channel(&self, addr: &str) -> Result<Channel> {
        #[cfg(feature = "tls")]
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        #[cfg(not(feature = "tls"))]
        let scheme = "http";
        let endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))
            .map_err(|e| Error::InvalidArgument(format!("bad node address {addr:?}: {e}")))?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(1))
            .keep_alive_timeout(Duration::from_secs(2))
            .keep_alive_while_idle(true);
        #[cfg(feature = "tls")]
        let endpoint = match &self.tls {
            Some(tls) => endpoint
                .tls_config(tls.clone())
                .map_err(|e| Error::InvalidArgument(format!("TLS settings for {addr}: {e}")))?,
            None => endpoint,
        };
        Ok(endpoint.connect_lazy())
    }
}

/// Every node's channels.
pub(crate) struct Pool {
    config: ChannelConfig,
    channels: Mutex<HashMap<u64, (String, Vec<Channel>)>>,
    next: AtomicUsize,
}

impl Pool {
    pub(crate) fn new(config: ChannelConfig) -> Self {
        Pool {
            config,
            channels: Mutex::default(),
            next: AtomicUsize::new(0),
        }
    }

    /// A channel to `node` at `addr` (new channels if the address changed).
    pub(crate) fn channel(&self, node: u64, addr: &str) -> Result<Channel> {
        let mut channels = self.channels.lock().expect("pool lock");
        let fresh = channels.get(&node).is_none_or(|(known, _)| known != addr);
        if fresh {
            let made = (0..self.config.per_node.max(1))
                .map(|_| self.config.channel(addr))
                .collect::<Result<Vec<_>>>()?;
            channels.insert(node, (addr.to_string(), made));
        }
        let (_, node_channels) = &channels[&node];
        let i = self.next.fetch_add(1, Ordering::Relaxed) % node_channels.len();
        Ok(node_channels[i].clone())
    }
}

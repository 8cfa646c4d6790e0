//! The RESP accept loop and the state shared by every connection.
//!
//! Each accepted client gets its own task ([`super::connection`]). On
//! shutdown the loop stops accepting, tells every connection to finish the
//! command it is running and close, and waits for them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::clients::Registry;
use super::connection::Connection;
use crate::config::ReadOnlyOptions;
use crate::error::Result;
use crate::node::Node;
use crate::shard::{Answer, Request};

/// What every connection of a node shares.
pub struct Shared {
    /// The node commands run on.
    pub node: Arc<Node>,
    /// When the listener started (for `INFO`'s uptime).
    pub started: Instant,
    /// Clients connected now.
    pub clients: AtomicUsize,
    /// Next client id (`CLIENT ID`, `HELLO`).
    pub next_client_id: AtomicU64,
    /// Commands processed since start.
    pub commands: AtomicU64,
    /// Connections accepted since start.
    pub connections: AtomicU64,
    /// The clients connected now.
    pub registry: Registry,
    /// For the read-only listener, its staleness bound; `None` for the
    /// read/write listener.
    pub read_only: Option<ReadOnlyOptions>,
}

impl Shared {
    /// Runs `request` on `shard` as this listener does: on the shard's
    /// leader, or as the read-only listener (see
    /// [`Node::execute_read_only`]).
    pub async fn execute(&self, shard: u64, request: Request) -> Result<Answer> {
        match &self.read_only {
            None => self.node.execute(shard, request).await,
            Some(options) => self.node.execute_read_only(shard, request, options).await,
        }
    }
}

/// Serves RESP clients on `listener` until `stop` turns true; as the
/// read-only listener when `read_only` is given.
pub async fn run(
    listener: TcpListener,
    node: Arc<Node>,
    read_only: Option<ReadOnlyOptions>,
    mut stop: watch::Receiver<bool>,
) {
    let shared = Arc::new(Shared {
        node,
        started: Instant::now(),
        clients: AtomicUsize::new(0),
        next_client_id: AtomicU64::new(1),
        commands: AtomicU64::new(0),
        connections: AtomicU64::new(0),
        registry: Registry::default(),
        read_only,
    });
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, addr)) => {
                    let _ = socket.set_nodelay(true);
                    shared.connections.fetch_add(1, Ordering::Relaxed);
                    if shared.clients.load(Ordering::Relaxed) >= shared.node.config().clients.max_clients {
                        // Told why, then closed; one small write, so bounded.
                        tokio::spawn(async move {
                            let mut socket = socket;
                            let _ = socket.write_all(b"-ERR max number of clients reached\r\n").await;
                        });
                        continue;
                    }
                    let local = socket.local_addr().unwrap_or(addr);
                    let connection = Connection::new(socket, addr, local, shared.clone(), stop.clone());
                    connections.spawn(connection.run());
                }
                Err(err) => {
                    tracing::warn!(cause = %err, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

//! Runs one node: binds its listeners, starts its Raft groups, serves gRPC
//! and RESP (the read/write listener, and the read-only one if the
//! topology gives the node an `ro_addr`), and stops in order.
//!
//! Listeners are bound before anything else so that a port in use is
//! reported at once, naming the address and the config key. Shutdown stops
//! accepting, lets connections finish the command in flight, stops the Raft
//! groups and makes the store durable. A group that hits a fatal error
//! (for example a corrupted log record) stops the whole node with that
//! error: a node never keeps serving with a shard it cannot trust. So does
//! a refusal of the node's topology by the meta group (see
//! [`crate::layout_check`]).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::NodeConfig;
use crate::error::{Error, Result};
use crate::node::Node;

/// How long in-flight gRPC calls get to finish at shutdown.
const GRPC_DRAIN: Duration = Duration::from_millis(500);
/// How often group health is checked.
const HEALTH_INTERVAL: Duration = Duration::from_millis(200);

async fn bind(addr: SocketAddr, key: &str, node: u64) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Config(format!("cannot listen on {addr} (`{key}` of node {node}): {e}")))
}

/// Runs the node described by `config` until `shutdown` completes or a group
/// fails.
pub async fn run(config: NodeConfig, shutdown: impl Future<Output = ()>) -> Result<()> {
    let me = config.me().clone();
    let grpc_listener = bind(me.grpc_addr, "grpc_addr", me.id).await?;
    let resp_listener = bind(me.resp_addr, "resp_addr", me.id).await?;
    let ro_listener = match me.ro_addr {
        Some(addr) => Some(bind(addr, "ro_addr", me.id).await?),
        None => None,
    };
    let read_only = config.read_only;
    if let Some(warning) = config.topology.fragile_meta_group() {
        tracing::warn!("{warning}");
    }
    let node = Arc::new(Node::start(config).await?);

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut grpc_stop = stop_rx.clone();
    let grpc = tokio::spawn(crate::grpc::serve(grpc_listener, node.clone(), async move {
        let _ = grpc_stop.wait_for(|stop| *stop).await;
    }));
    let resp = tokio::spawn(crate::resp::server::run(
        resp_listener,
        node.clone(),
        None,
        stop_rx.clone(),
    ));
    let ro = ro_listener.map(|listener| {
        let serve = crate::resp::server::run(listener, node.clone(), Some(read_only), stop_rx.clone());
        tokio::spawn(serve)
    });
    let expiry = tokio::spawn(crate::expiry::run(node.clone(), stop_rx.clone()));
    let compaction = tokio::spawn(crate::compaction::run(node.clone(), stop_rx.clone()));
    let users = tokio::spawn(crate::users_refresh::run(node.clone(), stop_rx.clone()));
    let shipping = tokio::spawn(crate::shipping::run(node.clone(), stop_rx.clone()));
    let lease = tokio::spawn(crate::lease::run(node.clone(), stop_rx.clone()));
    let failover = tokio::spawn(crate::failover::run(node.clone(), stop_rx));
    tracing::info!(node = me.id, resp = %me.resp_addr, ro = ?me.ro_addr, grpc = %me.grpc_addr, "serving");

    let health = async {
        let mut interval = tokio::time::interval(HEALTH_INTERVAL);
        loop {
            interval.tick().await;
            if let Some(err) = node.fatal() {
                return err;
            }
        }
    };
    let outcome = tokio::select! {
        _ = shutdown => Ok(()),
        err = health => Err(err),
        err = crate::layout_check::refusal(node.clone()) => Err(err),
    };
    if let Err(err) = &outcome {
        tracing::error!(cause = %err, "stopping the node");
    }
    let _ = stop_tx.send(true);
    let _ = resp.await;
    if let Some(ro) = ro {
        let _ = ro.await;
    }
    expiry.abort();
    compaction.abort();
    users.abort();
    shipping.abort();
    lease.abort();
    failover.abort();
    // Peers keep their connections open; give in-flight calls a moment,
    // then stop serving regardless.
    match tokio::time::timeout(GRPC_DRAIN, grpc).await {
        Ok(Ok(Err(err))) => tracing::warn!(cause = %err, "grpc server stopped with an error"),
        Ok(Err(err)) => tracing::warn!(cause = %err, "grpc server task failed"),
        Ok(Ok(Ok(()))) | Err(_) => {}
    }
    node.shutdown().await;
    outcome
}

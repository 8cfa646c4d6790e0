//! Every node checks its topology file against the cluster's layout, as
//! the meta group recorded it, and stops if they differ.
//!
//! A node proposes the [`Layout`] its file describes every
//! [`crate::lease::TICK`] until the meta group answers: the first proposal
//! the group hears is recorded, and any later one that differs is refused
//! with the first difference named (see [`crate::layout`]). A node refused
//! stops with that reason; one that agrees checks no more.
//!
//! # Correctness
//!
//! The node does not wait for the meta group's answer before it serves:
//! a node of a region cut off from the others must still serve its reads
//! after a restart. So a node whose file differs runs by its own file
//! until the meta group answers it: while the meta group has a majority,
//! that is its first tick. A node whose groups already hold their
//! membership in their logs takes it from there, not from the file.

use std::sync::Arc;

use crate::error::Error;
use crate::layout::Layout;
use crate::lease::TICK;
use crate::meta::MetaOp;
use crate::node::Node;

/// Resolves to the reason this node must stop if the meta group refuses
/// its layout; never resolves otherwise (nor in a cluster of one region,
/// which has no meta group).
pub async fn refusal(node: Arc<Node>) -> Error {
    if !node.has_meta_group() {
        return std::future::pending().await;
    }
    let proposed = Layout::of(&node.config().topology);
    let mut interval = tokio::time::interval(TICK);
    loop {
        interval.tick().await;
        match node.execute_meta(MetaOp::Layout(proposed.clone())).await {
            Ok(answer) => match answer.refused {
                None => {
                    tracing::info!("this node's topology agrees with the cluster's layout");
                    return std::future::pending().await;
                }
                Some(why) => {
                    return Error::Config(format!(
                        "node {}'s topology file does not match the cluster's layout, as its meta group \
                         recorded it: {why}",
                        node.id()
                    ));
                }
            },
            Err(err) => tracing::debug!(cause = %err, "layout not checked yet"),
        }
    }
}

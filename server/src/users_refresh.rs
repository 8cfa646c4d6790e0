//! Users for a node without a replica of the ACL shard.
//!
//! The users table lives in [`crate::acl::ACL_SHARD`]'s state machine, and a node
//! checks every command against it in memory. A node that holds no replica
//! of that shard's serving group (a node of a secondary or witness region,
//! or one of several nodes of a zone) reads the table from the shard's
//! leader instead, linearizably, every [`REFRESH`], and keeps the last copy
//! (see [`Node::fetch_users`]). A user made or changed elsewhere is known
//! there within about [`REFRESH`]; one made through the node itself at
//! once, as `ACL SETUSER` fetches the table again before it answers. While
//! the leader cannot be reached the node keeps the copy it has.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::node::Node;
use crate::ticker::Ticker;

/// How often the table is read again.
pub const REFRESH: Duration = Duration::from_secs(1);

/// Runs until `stop` turns true; returns at once on a node that holds a
/// replica of [`crate::acl::ACL_SHARD`].
pub async fn run(node: Arc<Node>, stop: watch::Receiver<bool>) {
    if !node.fetches_users() {
        return;
    }
    let mut ticker = Ticker::new(REFRESH, stop);
    while ticker.tick().await {
        if let Err(err) = node.fetch_users().await {
            tracing::debug!(cause = %err, "users not refreshed; keeping the last copy");
        }
    }
}

//! The primary leases, and every node's view of the failover groups.
//!
//! In a cluster of several regions a node takes a client write to a
//! shard, or answers a linearizable read of it, only while it holds the
//! primary lease of the shard's failover group: its region is the group's
//! primary in its current epoch and the meta group granted a renewal
//! lately. Every [`TICK`] each node asks the meta group (see
//! [`crate::meta`]): a node renews the lease of each group its region is
//! primary of (every [`RENEW_EVERY`]), or else reads the state. Either
//! answer refreshes the node's view of the failover groups, which routes
//! the read/write listener to each shard's primary and tells the shippers
//! where to ship from.
//!
//! # Correctness
//!
//! A node counts its lease from the moment it sent the renewal, and gives
//! it up [`DRIFT`] early: the grant happened after that moment, and the
//! meta group counts the same lease from the renewal's own timestamp (the
//! same moment, by the node's clock) plus [`DRIFT`] before it lets another
//! region take writes (see [`crate::failover`]). So a primary cut off from
//! the meta group stops by itself before any other region can start,
//! provided the clocks' rates differ by less than [`DRIFT`] over a
//! [`LEASE`]. A node that sees a failover begin, or another primary, gives
//! its lease up at once.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::RegionRole;
use crate::meta::{DRIFT, FailoverGroup, LEASE, Meta, MetaOp};
use crate::node::Node;
use crate::placement::RegionIndex;
use crate::ticker::Ticker;

/// How often a node asks the meta group.
pub const TICK: Duration = Duration::from_millis(200);
/// How often a node of the primary region renews its lease.
pub const RENEW_EVERY: Duration = Duration::from_secs(1);

/// This node's primary lease of one failover group.
#[derive(Debug, Default)]
pub struct Lease {
    /// The epoch it is for, and when it runs out.
    held: Mutex<Option<(u64, Instant)>>,
}

impl Lease {
    /// Whether the lease holds now.
    pub fn holds(&self) -> bool {
        let held = *self.held.lock().expect("lease lock");
        held.is_some_and(|(_, until)| Instant::now() < until)
    }

    /// The epoch of the lease, while it holds.
    pub fn epoch(&self) -> Option<u64> {
        let held = *self.held.lock().expect("lease lock");
        held.filter(|(_, until)| Instant::now() < *until)
            .map(|(epoch, _)| epoch)
    }

    /// Notes a renewal of `epoch` sent at `sent`.
    fn granted(&self, epoch: u64, sent: Instant) {
        let until = sent + LEASE - DRIFT;
        let mut held = self.held.lock().expect("lease lock");
        let newer = held.is_none_or(|(e, u)| e != epoch || u < until);
        if newer {
            *held = Some((epoch, until));
        }
    }

    /// Gives the lease up.
    fn give_up(&self) {
        *self.held.lock().expect("lease lock") = None;
    }
}

/// Runs until `stop` turns true; returns at once in a cluster of one
/// region (which has no meta group: its region is always the primary).
pub async fn run(node: Arc<Node>, stop: watch::Receiver<bool>) {
    if !node.has_meta_group() {
        return;
    }
    let (region, role) = node.region();
    // When each group's lease was last renewed, by name.
    let mut renewed: BTreeMap<String, Instant> = BTreeMap::new();
    let mut ticker = Ticker::new(TICK, stop);
    while ticker.tick().await {
        let groups = node.failover_groups();
        let mut heard = None;
        for group in &groups {
            let Some(lease) = node.lease(&group.name) else {
                continue;
            };
            let primary = role != RegionRole::Witness && group.primary == region && group.failing.is_none();
            if !primary || lease.epoch().is_some_and(|e| e != group.epoch) {
                lease.give_up();
                renewed.remove(&group.name);
            }
            let due = renewed.get(&group.name).is_none_or(|at| at.elapsed() >= RENEW_EVERY);
            if primary && due {
                let sent = Instant::now();
                let answer = renew(&node, lease, group, region, sent).await;
                if answer.is_ok() {
                    renewed.insert(group.name.clone(), sent);
                }
                heard = Some(answer);
            }
        }
        let answer = match heard {
            Some(Ok(meta)) => Ok(meta),
            _ => node.read_meta().await,
        };
        match answer {
            Ok(meta) if meta.groups.is_empty() => {
                // The meta group is new: the first node to hear so sets it.
                if let Err(err) = node.execute_meta(MetaOp::Init(groups)).await {
                    tracing::debug!(cause = %err, "failover groups not set yet");
                }
            }
            Ok(meta) => node.set_meta(meta),
            Err(err) => tracing::debug!(cause = %err, "meta group not reached"),
        }
    }
}

/// Asks the meta group, at `sent`, to renew `lease` of `group` (whose
/// primary is `region`, this node's); the state it answered, if it was
/// renewed.
async fn renew(
    node: &Node,
    lease: &Lease,
    group: &FailoverGroup,
    region: RegionIndex,
    sent: Instant,
) -> Result<Meta, ()> {
    let asked = MetaOp::Renew {
        group: group.name.clone(),
        region,
        epoch: group.epoch,
    };
    match node.execute_meta(asked).await {
        Ok(answer) if answer.refused.is_none() => {
            lease.granted(group.epoch, sent);
            Ok(answer.meta)
        }
        Ok(answer) => {
            tracing::info!(
                group = group.name,
                why = answer.refused.as_deref(),
                "primary lease refused"
            );
            lease.give_up();
            node.set_meta(answer.meta);
            Err(())
        }
        Err(_) => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_holds_from_the_renewal_sent_until_the_drift_before_its_end() {
        let lease = Lease::default();
        assert!(!lease.holds());
        let now = Instant::now();
        lease.granted(4, now - (LEASE - DRIFT) + Duration::from_millis(500));
        assert_eq!(lease.epoch(), Some(4));
        lease.granted(4, now - LEASE);
        assert!(lease.holds(), "an older renewal does not shorten it");
        lease.give_up();
        assert!(!lease.holds());

        let late = Lease::default();
        late.granted(4, now - (LEASE - DRIFT) - Duration::from_millis(1));
        assert!(!late.holds(), "counted from the send, less the drift");
    }
}

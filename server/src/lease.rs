//! The primary lease, and every node's view of the failover group.
//!
//! In a cluster of several regions a node takes a client write, or answers
//! a linearizable read, only while it holds the primary lease: its region
//! is the primary of the current epoch and the meta group granted a
//! renewal lately. Every [`TICK`] each node asks the meta group (see
//! [`crate::meta`]): a node of the primary region renews its lease (every
//! [`RENEW_EVERY`]), any other node reads the state. Either answer
//! refreshes the node's view of the failover group, which routes the
//! read/write listener to the primary and tells the shippers where to ship
//! from.
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

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::RegionRole;
use crate::meta::{DRIFT, LEASE, MetaOp};
use crate::node::Node;

/// How often a node asks the meta group.
pub const TICK: Duration = Duration::from_millis(200);
/// How often a node of the primary region renews its lease.
pub const RENEW_EVERY: Duration = Duration::from_secs(1);

/// This node's primary lease.
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
pub async fn run(node: Arc<Node>, mut stop: watch::Receiver<bool>) {
    if !node.has_meta_group() {
        return;
    }
    let (region, role) = node.region();
    let mut renewed: Option<Instant> = None;
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        let group = node.failover_group();
        let primary = role != RegionRole::Witness && group.primary == region && group.failing.is_none();
        if !primary || node.lease().epoch().is_some_and(|e| e != group.epoch) {
            node.lease().give_up();
            renewed = None;
        }
        let renew = primary && renewed.is_none_or(|at| at.elapsed() >= RENEW_EVERY);
        let answer = match renew {
            true => {
                let sent = Instant::now();
                let asked = MetaOp::Renew {
                    region,
                    epoch: group.epoch,
                };
                let answer = node.execute_meta(asked).await;
                match &answer {
                    Ok(answer) if answer.refused.is_none() => {
                        node.lease().granted(group.epoch, sent);
                        renewed = Some(sent);
                    }
                    Ok(answer) => {
                        tracing::info!(why = answer.refused.as_deref(), "primary lease refused");
                        node.lease().give_up();
                    }
                    Err(_) => {}
                }
                answer.map(|a| a.meta)
            }
            false => node.read_meta().await,
        };
        match answer {
            Ok(meta) if meta.group.is_none() => {
                // The meta group is new: the first node to hear so sets it.
                if let Err(err) = node.execute_meta(MetaOp::Init(group)).await {
                    tracing::debug!(cause = %err, "failover group not set yet");
                }
            }
            Ok(meta) => node.set_meta(meta),
            Err(err) => tracing::debug!(cause = %err, "meta group not reached"),
        }
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

//! The meta group's state: the cluster's layout, the failover group's
//! record, the primary lease and the failover history.
//!
//! A cluster of several regions runs one more Raft group, [`META_GROUP`],
//! with one voter per region (each region's first node, the witness
//! included), so a majority of regions decides who is primary. Its state
//! machine is a shard's (the same log, snapshots and network), whose
//! [`Meta`] is changed by [`MetaOp`] entries and whose keyspace stays
//! empty. Apply is deterministic: the time an op carries is its
//! proposer's clock.
//!
//! The record names the primary region and the epoch. Nodes of the
//! primary region renew a lease on it every second ([`MetaOp::Renew`]),
//! granted only for the current epoch while no failover runs; a node
//! counts its lease from when it sent the renewal (see
//! [`crate::lease`]). A failover first marks the record ([`MetaOp::Begin`],
//! after which nothing is renewed), and the meta group's leader drives it
//! (see [`crate::failover`]) to [`MetaOp::Switch`], which moves the
//! epoch on and names the new primary, or to [`MetaOp::Abort`]. Each
//! failover opens its target in an epoch of its own, one no failover
//! before it began towards ([`Meta::begun`]), so a target that an aborted
//! failover opened is known for what it is, [`Meta::abandoned`], and set
//! right rather than taken for the next failover's. A forced failover
//! switches only once the last lease granted ran out by the driver's clock
//! plus [`DRIFT`]: the old primary stops writing before the new one starts.
//! Every failover is kept in the history, with the gseq each shard was
//! handed over at and, once the old primary reported them, the records it
//! lost ([`MetaOp::ReportLost`]).
//!
//! The first [`MetaOp::Layout`] records the cluster's [`Layout`]; a later
//! one that differs is refused with the difference named (see
//! [`crate::layout`]).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::Durability;
use crate::layout::Layout;
use crate::placement::RegionIndex;
use crate::raft::typ::GroupId;

/// The meta group's id: no region's shard group has it.
pub const META_GROUP: GroupId = u64::MAX;
/// How long a renewal holds the lease.
pub const LEASE: Duration = Duration::from_secs(5);
/// How far apart two nodes' clocks may run over a lease: a node gives its
/// lease up this much early, the meta group counts it this much longer.
pub const DRIFT: Duration = Duration::from_millis(500);
/// Who starts the failovers the policy asks for.
pub const AUTOMATIC: &str = "automatic";
/// Failovers kept in the history.
pub const HISTORY: usize = 100;

/// When a failover happens without a human.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Policy {
    /// Only when asked (`CAIRN.FAILOVER`).
    Manual,
    /// Also, forced, once the primary region has renewed nothing for
    /// `grace_ms`.
    Automatic {
        /// How long the primary may be silent.
        grace_ms: u64,
    },
}

/// A failover under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failing {
    /// The region that becomes primary.
    pub to: RegionIndex,
    /// Forced: the old primary is not asked to stop, its lease is waited
    /// out and the witness fills in what the target lacks.
    pub forced: bool,
    /// Who asked (a client's address, or `automatic`).
    pub by: String,
    /// When it began (ms since the Unix epoch).
    pub started_ms: u64,
}

/// The failover group: every shard, its data regions, and which is primary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverGroup {
    /// Its name (`default`).
    pub name: String,
    /// The data regions, in the order a failover picks them.
    pub regions: Vec<RegionIndex>,
    /// The region whose groups take the writes.
    pub primary: RegionIndex,
    /// Bumped by every failover.
    pub epoch: u64,
    /// When failover happens without a human.
    pub policy: Policy,
    /// When a write is acknowledged.
    pub durability: Durability,
    /// The failover under way, if one is.
    pub failing: Option<Failing>,
    /// When the primary last sent a renewal that was granted (its clock,
    /// ms since the Unix epoch), or when the epoch began if none was yet:
    /// what the primary's silence is counted from.
    pub renewed_ms: u64,
}

impl FailoverGroup {
    /// When the last lease granted runs out, by any clock within
    /// [`DRIFT`] of the renewing node's.
    pub fn lease_end_ms(&self) -> u64 {
        self.renewed_ms + (LEASE + DRIFT).as_millis() as u64
    }

    /// The region a failover without a named target goes to: the first
    /// data region after the primary.
    pub fn next_region(&self) -> Option<RegionIndex> {
        self.regions.iter().copied().find(|&r| r != self.primary)
    }
}

/// One failover, as the history keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failover {
    /// The epoch it ended.
    pub from_epoch: u64,
    /// The region that was primary.
    pub from: RegionIndex,
    /// The region it went to.
    pub to: RegionIndex,
    /// Whether it was forced.
    pub forced: bool,
    /// Who asked.
    pub by: String,
    /// When it began.
    pub started_ms: u64,
    /// When it switched or gave up.
    pub finished_ms: u64,
    /// Why it gave up (`None`: it switched).
    pub aborted: Option<String>,
    /// Per shard, the gseq the new primary started after.
    pub handover: Vec<u64>,
    /// Per shard, the records the old primary had applied past the
    /// handover and discarded, as it reported them when it came back.
    pub lost: BTreeMap<u64, u64>,
}

impl Failover {
    /// `failing` of `group`, ended at `now_ms`: switched, with no handover
    /// or losses known yet.
    fn ended_at(group: &FailoverGroup, failing: Failing, now_ms: u64) -> Self {
        Failover {
            from_epoch: group.epoch,
            from: group.primary,
            to: failing.to,
            forced: failing.forced,
            by: failing.by,
            started_ms: failing.started_ms,
            finished_ms: now_ms,
            aborted: None,
            handover: Vec::new(),
            lost: BTreeMap::new(),
        }
    }

    /// `planned`, `forced`, or `automatic` (forced by the meta group).
    pub fn kind(&self) -> &'static str {
        match (self.forced, self.by.as_str()) {
            (true, AUTOMATIC) => "automatic",
            (true, _) => "forced",
            (false, _) => "planned",
        }
    }

    /// Records the old primary discarded, over the shards that reported,
    /// and how many shards have not reported yet.
    pub fn lost(&self) -> (u64, u64) {
        let unreported = self.handover.len().saturating_sub(self.lost.len());
        (self.lost.values().sum(), unreported as u64)
    }

    /// How long writes were refused: from the beginning to the switch.
    pub fn rto_ms(&self) -> u64 {
        self.finished_ms.saturating_sub(self.started_ms)
    }
}

/// The meta group's applied state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// The failover group, once the first voter to lead proposed it.
    pub group: Option<FailoverGroup>,
    /// The newest failovers, oldest first.
    pub history: Vec<Failover>,
    /// The cluster's layout, once the first node to reach the group
    /// proposed it.
    pub layout: Option<Layout>,
    /// The newest epoch a failover began towards (0 before the first):
    /// the epoch the failover under way opens its target in.
    pub begun: u64,
}

/// A change to the meta group's state, applied at `now_ms` (the
/// proposer's clock, carried by the entry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MetaOp {
    /// Set the failover group as the topology describes it, unless it is
    /// set already.
    Init(FailoverGroup),
    /// A node of `region` asks for the lease of `epoch`; granted while that
    /// is the primary and epoch and no failover runs.
    Renew {
        /// The renewing node's region.
        region: RegionIndex,
        /// The epoch it serves.
        epoch: u64,
    },
    /// Start a failover to `to`.
    Begin {
        /// The target region.
        to: RegionIndex,
        /// Whether it is forced.
        forced: bool,
        /// Who asked.
        by: String,
    },
    /// End the failover under way: `to` is primary from the next epoch on.
    Switch {
        /// The epoch the failover began in (a stale driver's switch is
        /// refused).
        epoch: u64,
        /// Per shard, the gseq the new primary starts after.
        handover: Vec<u64>,
    },
    /// Give the failover under way up; the primary stays.
    Abort {
        /// The epoch it began in.
        epoch: u64,
        /// Why.
        why: String,
    },
    /// The old primary of the failover that ended `epoch` discarded
    /// `records` of `shard` past the handover.
    ReportLost {
        /// The epoch the failover ended.
        epoch: u64,
        /// The shard.
        shard: u64,
        /// How many records.
        records: u64,
    },
    /// Record the layout a node's topology file describes, unless one is
    /// recorded; refused, naming the difference, if the recorded one
    /// differs.
    Layout(Layout),
}

/// What a meta op answers: the state after it, and why it was refused if
/// it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaAnswer {
    /// Why nothing changed, if so.
    pub refused: Option<String>,
    /// The state after the op.
    pub meta: Meta,
}

impl Meta {
    /// Applies `op` at `now_ms`: `None` when it was applied, else why not
    /// (and nothing changed).
    pub fn apply(&mut self, op: &MetaOp, now_ms: u64) -> Option<String> {
        if let MetaOp::Layout(layout) = op {
            let recorded = self.layout.get_or_insert_with(|| layout.clone());
            return recorded.difference(layout);
        }
        if let MetaOp::Init(group) = op {
            self.group.get_or_insert_with(|| FailoverGroup {
                renewed_ms: now_ms,
                ..group.clone()
            });
            return None;
        }
        let Some(group) = self.group.as_mut() else {
            return Some("the meta group holds no failover group yet".into());
        };
        match op {
            MetaOp::Init(_) | MetaOp::Layout(_) => None,
            MetaOp::Renew { region, epoch } => {
                if *region != group.primary || *epoch != group.epoch {
                    return Some(format!(
                        "the lease of epoch {} is held by region {}",
                        group.epoch, group.primary
                    ));
                }
                if group.failing.is_some() {
                    return Some("a failover is under way".into());
                }
                group.renewed_ms = group.renewed_ms.max(now_ms);
                None
            }
            MetaOp::Begin { to, forced, by } => {
                if let Some(failing) = &group.failing {
                    return Some(format!("a failover to region {} is already under way", failing.to));
                }
                if !group.regions.contains(to) {
                    return Some(format!("region {to} holds no data of failover group {}", group.name));
                }
                if *to == group.primary {
                    return Some(format!("region {to} is already the primary"));
                }
                group.failing = Some(Failing {
                    to: *to,
                    forced: *forced,
                    by: by.clone(),
                    started_ms: now_ms,
                });
                self.begun = self.begun.max(group.epoch) + 1;
                None
            }
            MetaOp::Switch { epoch, handover } => {
                let failing = match (&group.failing, *epoch == group.epoch) {
                    (Some(failing), true) => failing.clone(),
                    _ => return Some(format!("no failover of epoch {epoch} is under way")),
                };
                // A planned failover drained every record first.
                let lost = match failing.forced {
                    true => BTreeMap::new(),
                    false => (0..handover.len() as u64).map(|s| (s, 0)).collect(),
                };
                self.history.push(Failover {
                    handover: handover.clone(),
                    lost,
                    ..Failover::ended_at(group, failing.clone(), now_ms)
                });
                group.epoch = self.begun;
                group.primary = failing.to;
                group.failing = None;
                group.renewed_ms = now_ms;
                self.trim_history();
                None
            }
            MetaOp::Abort { epoch, why } => {
                let failing = match (&group.failing, *epoch == group.epoch) {
                    (Some(failing), true) => failing.clone(),
                    _ => return Some(format!("no failover of epoch {epoch} is under way")),
                };
                self.history.push(Failover {
                    aborted: Some(why.clone()),
                    ..Failover::ended_at(group, failing, now_ms)
                });
                group.failing = None;
                self.trim_history();
                None
            }
            MetaOp::ReportLost { epoch, shard, records } => {
                let switched = self
                    .history
                    .iter_mut()
                    .find(|f| f.from_epoch == *epoch && f.aborted.is_none());
                match switched {
                    Some(failover) => {
                        failover.lost.insert(*shard, *records);
                        None
                    }
                    None => Some(format!("no failover ended epoch {epoch}")),
                }
            }
        }
    }

    /// The epoch the failover under way opens its target in.
    pub fn opening(&self) -> Option<u64> {
        let group = self.group.as_ref()?;
        group.failing.as_ref().map(|_| self.begun)
    }

    /// Whether `epoch` was begun towards by a failover that ended without
    /// switching to it: no region is ever primary in it, so a group open
    /// in it took no client write and may be closed again. No later state
    /// switches to an epoch an earlier one found abandoned, so a stale
    /// view's answer is safe to act on.
    pub fn abandoned(&self, epoch: u64) -> bool {
        self.group
            .as_ref()
            .is_some_and(|g| epoch > g.epoch && epoch <= self.begun && self.opening() != Some(epoch))
    }

    /// The epoch `failover` (switched) moved the group to: where the next
    /// switched one started from, or the current epoch.
    pub fn to_epoch(&self, failover: &Failover) -> Option<u64> {
        if failover.aborted.is_some() {
            return None;
        }
        let switched = |f: &&Failover| f.aborted.is_none() && f.from_epoch > failover.from_epoch;
        match self.history.iter().filter(switched).map(|f| f.from_epoch).min() {
            Some(next) => Some(next),
            None => self.group.as_ref().map(|g| g.epoch),
        }
    }

    /// The failover that ended `epoch`, if the history still has it.
    pub fn ended(&self, epoch: u64) -> Option<&Failover> {
        self.history
            .iter()
            .find(|f| f.from_epoch == epoch && f.aborted.is_none())
    }

    fn trim_history(&mut self) {
        let excess = self.history.len().saturating_sub(HISTORY);
        self.history.drain(..excess);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        let mut meta = Meta::default();
        let group = FailoverGroup {
            name: "default".into(),
            regions: vec![0, 1],
            primary: 0,
            epoch: 1,
            policy: Policy::Manual,
            durability: Durability::Zone,
            failing: None,
            renewed_ms: 0,
        };
        assert_eq!(meta.apply(&MetaOp::Init(group), 0), None);
        meta
    }

    fn begin(to: RegionIndex, forced: bool) -> MetaOp {
        MetaOp::Begin {
            to,
            forced,
            by: "test".into(),
        }
    }

    #[test]
    fn only_the_primary_renews_and_not_while_failing_over() {
        let mut meta = meta();
        assert_eq!(meta.apply(&MetaOp::Renew { region: 0, epoch: 1 }, 100), None);
        assert!(meta.apply(&MetaOp::Renew { region: 1, epoch: 1 }, 200).is_some());
        assert!(meta.apply(&MetaOp::Renew { region: 0, epoch: 0 }, 200).is_some());
        assert_eq!(meta.group.as_ref().unwrap().renewed_ms, 100);
        assert_eq!(meta.apply(&begin(1, true), 300), None);
        assert!(meta.apply(&MetaOp::Renew { region: 0, epoch: 1 }, 400).is_some());
        let end = meta.group.as_ref().unwrap().lease_end_ms();
        assert_eq!(end, 100 + 5500, "the lease and the drift, from the renewal");
    }

    #[test]
    fn a_failover_switches_once_and_bumps_the_epoch() {
        let mut meta = meta();
        assert!(meta.apply(&begin(0, false), 10).is_some(), "already primary");
        assert!(meta.apply(&begin(2, false), 10).is_some(), "not a data region");
        assert_eq!(meta.apply(&begin(1, false), 10), None);
        assert!(meta.apply(&begin(1, false), 11).is_some(), "one at a time");
        let switch = |epoch| MetaOp::Switch {
            epoch,
            handover: vec![7, 9],
        };
        assert!(meta.apply(&switch(2), 20).is_some(), "a stale epoch");
        assert_eq!(meta.apply(&switch(1), 30), None);
        assert!(meta.apply(&switch(1), 31).is_some(), "only once");
        let group = meta.group.as_ref().unwrap();
        assert_eq!((group.primary, group.epoch, group.failing.is_none()), (1, 2, true));
        let failover = meta.ended(1).unwrap();
        assert_eq!((failover.rto_ms(), failover.handover.clone()), (20, vec![7, 9]));
        assert_eq!(
            failover.lost.values().sum::<u64>(),
            0,
            "a planned failover loses nothing"
        );
    }

    #[test]
    fn an_abort_keeps_the_primary_and_a_forced_failover_learns_its_losses() {
        let mut meta = meta();
        meta.apply(&begin(1, true), 10);
        let abort = MetaOp::Abort {
            epoch: 1,
            why: "unreachable".into(),
        };
        assert_eq!(meta.apply(&abort, 20), None);
        assert_eq!(meta.group.as_ref().unwrap().primary, 0);
        assert!(meta.ended(1).is_none(), "an aborted failover ended nothing");
        meta.apply(&begin(1, true), 30);
        meta.apply(
            &MetaOp::Switch {
                epoch: 1,
                handover: vec![5],
            },
            40,
        );
        let lost = MetaOp::ReportLost {
            epoch: 1,
            shard: 0,
            records: 3,
        };
        assert_eq!(meta.apply(&lost, 50), None);
        assert_eq!(meta.ended(1).unwrap().lost.get(&0), Some(&3));
        assert_eq!(meta.history.len(), 2);
    }

    #[test]
    fn each_failover_opens_an_epoch_of_its_own_and_an_aborted_ones_stays_abandoned() {
        let mut meta = meta();
        meta.apply(&begin(1, false), 10);
        assert_eq!(meta.opening(), Some(2));
        assert!(!meta.abandoned(2), "under way");
        let abort = MetaOp::Abort {
            epoch: 1,
            why: "test".into(),
        };
        meta.apply(&abort, 20);
        assert_eq!(meta.opening(), None);
        assert!(meta.abandoned(2) && !meta.abandoned(1) && !meta.abandoned(3));
        meta.apply(&begin(1, true), 30);
        assert_eq!(meta.opening(), Some(3), "never the abandoned epoch again");
        assert!(meta.abandoned(2) && !meta.abandoned(3));
        let switch = MetaOp::Switch {
            epoch: 1,
            handover: vec![4],
        };
        assert_eq!(meta.apply(&switch, 40), None);
        let group = meta.group.clone().unwrap();
        assert_eq!((group.epoch, group.primary), (3, 1));
        let switched = meta.ended(1).unwrap();
        assert_eq!(meta.to_epoch(switched), Some(3));
        assert_eq!(meta.to_epoch(&meta.history[0]), None, "the aborted one");
        meta.apply(&begin(0, false), 50);
        assert_eq!(meta.opening(), Some(4));
        meta.apply(
            &MetaOp::Switch {
                epoch: 3,
                handover: vec![4],
            },
            60,
        );
        assert_eq!(meta.to_epoch(meta.ended(1).unwrap()), Some(3), "where the next began");
        assert_eq!(meta.to_epoch(meta.ended(3).unwrap()), Some(4));
    }
}

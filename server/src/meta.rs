//! The meta group's state: the cluster's layout, the failover groups'
//! records, their primary leases and the failover history.
//!
//! A cluster of several regions runs one more Raft group, [`META_GROUP`],
//! with one voter per region (each region's first node, the witness
//! included), so a majority of regions decides who is primary. Its state
//! machine is a shard's (the same log, snapshots and network), whose
//! [`Meta`] is changed by [`MetaOp`] entries and whose keyspace stays
//! empty. Apply is deterministic: the time an op carries is its
//! proposer's clock.
//!
//! The shards fail over in groups ([`FailoverGroup`]: those the topology's
//! `[[failover_groups]]` declares, and `default` with the rest), each
//! with a record of its own that names its primary region and its epoch.
//! Every group starts in epoch 1, and each failover then opens an epoch no
//! failover of any group began towards before ([`Meta::begun`]). Nodes of a group's primary region renew a lease
//! on it every second ([`MetaOp::Renew`]),
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
    /// The epoch it opens its target in: one of its own, which no
    /// failover of any group began towards before.
    pub epoch: u64,
}

/// A failover group: some shards, their data regions, and which is
/// primary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverGroup {
    /// Its name.
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
    /// Its shards.
    pub shards: Vec<u64>,
}

impl FailoverGroup {
    /// When the last lease granted runs out, by any clock within
    /// [`DRIFT`] of the renewing node's.
    pub fn lease_end_ms(&self) -> u64 {
        self.renewed_ms + (LEASE + DRIFT).as_millis() as u64
    }

    /// The epoch the failover under way opens its target in.
    pub fn opening(&self) -> Option<u64> {
        self.failing.as_ref().map(|f| f.epoch)
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
    /// The failover group it moved.
    pub group: String,
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
    /// Per shard of the group, the gseq the new primary started after.
    pub handover: BTreeMap<u64, u64>,
    /// Per shard, the records the old primary had applied past the
    /// handover and discarded, as it reported them when it came back.
    pub lost: BTreeMap<u64, u64>,
}

impl Failover {
    /// `failing` of `group`, ended at `now_ms`: switched, with no handover
    /// or losses known yet.
    fn ended_at(group: &FailoverGroup, failing: Failing, now_ms: u64) -> Self {
        Failover {
            group: group.name.clone(),
            from_epoch: group.epoch,
            from: group.primary,
            to: failing.to,
            forced: failing.forced,
            by: failing.by,
            started_ms: failing.started_ms,
            finished_ms: now_ms,
            aborted: None,
            handover: BTreeMap::new(),
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
    /// The failover groups, once the first node to reach the meta group
    /// proposed them: every shard in one.
    pub groups: Vec<FailoverGroup>,
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
    /// Set the failover groups as the topology describes them, unless
    /// they are set already.
    Init(Vec<FailoverGroup>),
    /// A node of `region` asks for the lease of `group` in `epoch`;
    /// granted while that is the group's primary and epoch and no failover
    /// of it runs.
    Renew {
        /// The failover group.
        group: String,
        /// The renewing node's region.
        region: RegionIndex,
        /// The epoch it serves.
        epoch: u64,
    },
    /// Start a failover of `group` to `to`.
    Begin {
        /// The failover group.
        group: String,
        /// The target region.
        to: RegionIndex,
        /// Whether it is forced.
        forced: bool,
        /// Who asked.
        by: String,
    },
    /// End the failover of `group` under way: its target is primary from
    /// the failover's epoch on.
    Switch {
        /// The failover group.
        group: String,
        /// The epoch the failover began in (a stale driver's switch is
        /// refused).
        epoch: u64,
        /// Per shard, the gseq the new primary starts after.
        handover: BTreeMap<u64, u64>,
    },
    /// Give the failover of `group` under way up; the primary stays.
    Abort {
        /// The failover group.
        group: String,
        /// The epoch it began in.
        epoch: u64,
        /// Why.
        why: String,
    },
    /// The old primary of the failover of `shard`'s group that ended
    /// `epoch` discarded `records` of `shard` past the handover.
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
        let named = match op {
            MetaOp::Layout(layout) => {
                let recorded = self.layout.get_or_insert_with(|| layout.clone());
                return recorded.difference(layout);
            }
            MetaOp::Init(groups) => {
                if self.groups.is_empty() {
                    self.groups = groups
                        .iter()
                        .map(|g| FailoverGroup {
                            renewed_ms: now_ms,
                            ..g.clone()
                        })
                        .collect();
                }
                return None;
            }
            MetaOp::ReportLost { epoch, shard, records } => {
                return match self.ended_at(*shard, *epoch) {
                    Some(at) => {
                        self.history[at].lost.insert(*shard, *records);
                        None
                    }
                    None => Some(format!("no failover ended epoch {epoch}")),
                };
            }
            MetaOp::Renew { group, .. }
            | MetaOp::Begin { group, .. }
            | MetaOp::Switch { group, .. }
            | MetaOp::Abort { group, .. } => group,
        };
        let (begun, layout) = (&mut self.begun, self.layout.as_ref());
        let Some(group) = self.groups.iter_mut().find(|g| g.name == *named) else {
            return Some(match self.groups.is_empty() {
                true => "the meta group holds no failover group yet".into(),
                false => format!("no failover group named '{named}'"),
            });
        };
        let ended = match op {
            MetaOp::Renew { region, epoch, .. } => {
                if *region != group.primary || *epoch != group.epoch {
                    return Some(format!(
                        "the lease of epoch {} is held by {}",
                        group.epoch,
                        region_named(layout, group.primary)
                    ));
                }
                if group.failing.is_some() {
                    return Some("a failover is under way".into());
                }
                group.renewed_ms = group.renewed_ms.max(now_ms);
                return None;
            }
            MetaOp::Begin { to, forced, by, .. } => {
                let region = region_named(layout, *to);
                if let Some(failing) = &group.failing {
                    return Some(format!(
                        "a failover of group {} to {} is already under way",
                        group.name,
                        region_named(layout, failing.to)
                    ));
                }
                if !group.regions.contains(to) {
                    return Some(format!("{region} holds no data of failover group {}", group.name));
                }
                if *to == group.primary {
                    return Some(format!(
                        "{region} is already the primary of failover group {}",
                        group.name
                    ));
                }
                *begun = (*begun).max(group.epoch) + 1;
                group.failing = Some(Failing {
                    to: *to,
                    forced: *forced,
                    by: by.clone(),
                    started_ms: now_ms,
                    epoch: *begun,
                });
                return None;
            }
            MetaOp::Switch { epoch, handover, .. } => {
                let failing = match (&group.failing, *epoch == group.epoch) {
                    (Some(failing), true) => failing.clone(),
                    _ => return Some(format!("no failover of epoch {epoch} is under way")),
                };
                // A planned failover drained every record first.
                let lost = match failing.forced {
                    true => BTreeMap::new(),
                    false => handover.keys().map(|&s| (s, 0)).collect(),
                };
                let ended = Failover {
                    handover: handover.clone(),
                    lost,
                    ..Failover::ended_at(group, failing.clone(), now_ms)
                };
                group.epoch = failing.epoch;
                group.primary = failing.to;
                group.failing = None;
                group.renewed_ms = now_ms;
                ended
            }
            MetaOp::Abort { epoch, why, .. } => {
                let failing = match (&group.failing, *epoch == group.epoch) {
                    (Some(failing), true) => failing.clone(),
                    _ => return Some(format!("no failover of epoch {epoch} is under way")),
                };
                group.failing = None;
                Failover {
                    aborted: Some(why.clone()),
                    ..Failover::ended_at(group, failing, now_ms)
                }
            }
            MetaOp::Layout(_) | MetaOp::Init(_) | MetaOp::ReportLost { .. } => return None,
        };
        self.history.push(ended);
        self.trim_history();
        None
    }

    /// The failover group named `name`.
    pub fn group(&self, name: &str) -> Option<&FailoverGroup> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// The failover group `shard` belongs to.
    pub fn group_of(&self, shard: u64) -> Option<&FailoverGroup> {
        group_of(&self.groups, shard)
    }

    /// Whether `epoch` was begun towards by a failover of `group` that
    /// ended without switching to it: no region is ever primary in it, so
    /// a shard's group open in it took no client write and may be closed
    /// again. No later state switches to an epoch an earlier one found
    /// abandoned, so a stale view's answer is safe to act on. (A shard's
    /// group is only ever opened in an epoch its own failover group began
    /// towards: one of another group's is never current for it.)
    pub fn abandoned(&self, group: &FailoverGroup, epoch: u64) -> bool {
        epoch > group.epoch && epoch <= self.begun && group.opening() != Some(epoch)
    }

    /// The epoch `failover` (switched) moved its group to: where the
    /// group's next switched one started from, or its current epoch.
    pub fn to_epoch(&self, failover: &Failover) -> Option<u64> {
        if failover.aborted.is_some() {
            return None;
        }
        let switched =
            |f: &&Failover| f.group == failover.group && f.aborted.is_none() && f.from_epoch > failover.from_epoch;
        match self.history.iter().filter(switched).map(|f| f.from_epoch).min() {
            Some(next) => Some(next),
            None => self.group(&failover.group).map(|g| g.epoch),
        }
    }

    /// The failover of `shard`'s group that ended `epoch`, if the history
    /// still has it. (Every group starts in epoch 1.)
    pub fn ended(&self, shard: u64, epoch: u64) -> Option<&Failover> {
        self.history.get(self.ended_at(shard, epoch)?)
    }

    /// Where in the history [`Meta::ended`] finds its failover.
    fn ended_at(&self, shard: u64, epoch: u64) -> Option<usize> {
        let group = self.group_of(shard)?;
        self.history
            .iter()
            .position(|f| f.group == group.name && f.from_epoch == epoch && f.aborted.is_none())
    }

    fn trim_history(&mut self) {
        let excess = self.history.len().saturating_sub(HISTORY);
        self.history.drain(..excess);
    }
}

/// The failover group of `groups` that `shard` belongs to.
pub fn group_of(groups: &[FailoverGroup], shard: u64) -> Option<&FailoverGroup> {
    groups.iter().find(|g| g.shards.contains(&shard))
}

/// Region `region` as a message names it: `region 'NAME'` once the
/// layout is recorded.
fn region_named(layout: Option<&Layout>, region: RegionIndex) -> String {
    match layout.and_then(|l| l.regions.get(usize::from(region))) {
        Some((name, _)) => format!("region '{name}'"),
        None => format!("region {region}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(name: &str, shards: Vec<u64>) -> FailoverGroup {
        FailoverGroup {
            name: name.into(),
            regions: vec![0, 1],
            primary: 0,
            epoch: 1,
            policy: Policy::Manual,
            durability: Durability::Zone,
            failing: None,
            renewed_ms: 0,
            shards,
        }
    }

    /// Group `default` of shards 0 and 1, and group `other` of shard 2.
    fn meta() -> Meta {
        let mut meta = Meta::default();
        let groups = vec![group("default", vec![0, 1]), group("other", vec![2])];
        assert_eq!(meta.apply(&MetaOp::Init(groups), 0), None);
        meta
    }

    fn begin(to: RegionIndex, forced: bool) -> MetaOp {
        begin_of("default", to, forced)
    }

    fn begin_of(group: &str, to: RegionIndex, forced: bool) -> MetaOp {
        MetaOp::Begin {
            group: group.into(),
            to,
            forced,
            by: "test".into(),
        }
    }

    fn renew(region: RegionIndex, epoch: u64) -> MetaOp {
        MetaOp::Renew {
            group: "default".into(),
            region,
            epoch,
        }
    }

    fn switch(group: &str, epoch: u64, handover: &[(u64, u64)]) -> MetaOp {
        MetaOp::Switch {
            group: group.into(),
            epoch,
            handover: handover.iter().copied().collect(),
        }
    }

    fn abort(epoch: u64) -> MetaOp {
        MetaOp::Abort {
            group: "default".into(),
            epoch,
            why: "test".into(),
        }
    }

    fn default_group(meta: &Meta) -> FailoverGroup {
        meta.group("default").unwrap().clone()
    }

    #[test]
    fn only_the_primary_renews_and_not_while_failing_over() {
        let mut meta = meta();
        assert_eq!(meta.apply(&renew(0, 1), 100), None);
        assert!(meta.apply(&renew(1, 1), 200).is_some());
        assert!(meta.apply(&renew(0, 0), 200).is_some());
        assert_eq!(default_group(&meta).renewed_ms, 100);
        assert_eq!(
            meta.group("other").unwrap().renewed_ms,
            0,
            "each group's lease is its own"
        );
        assert_eq!(meta.apply(&begin(1, true), 300), None);
        assert!(meta.apply(&renew(0, 1), 400).is_some());
        let unknown = MetaOp::Renew {
            group: "mars".into(),
            region: 0,
            epoch: 1,
        };
        assert_eq!(
            meta.apply(&unknown, 400).as_deref(),
            Some("no failover group named 'mars'")
        );
        let end = default_group(&meta).lease_end_ms();
        assert_eq!(end, 100 + 5500, "the lease and the drift, from the renewal");
    }

    #[test]
    fn a_failover_switches_once_and_bumps_the_epoch() {
        let mut meta = meta();
        assert!(meta.apply(&begin(0, false), 10).is_some(), "already primary");
        assert!(meta.apply(&begin(2, false), 10).is_some(), "not a data region");
        assert_eq!(meta.apply(&begin(1, false), 10), None);
        let again = meta.apply(&begin(1, false), 11).unwrap_or_default();
        assert_eq!(again, "a failover of group default to region 1 is already under way");
        let handover = [(0, 7), (1, 9)];
        assert!(
            meta.apply(&switch("default", 2, &handover), 20).is_some(),
            "a stale epoch"
        );
        assert_eq!(meta.apply(&switch("default", 1, &handover), 30), None);
        assert!(meta.apply(&switch("default", 1, &handover), 31).is_some(), "only once");
        let group = default_group(&meta);
        assert_eq!((group.primary, group.epoch, group.failing.is_none()), (1, 2, true));
        let other = meta.group("other").unwrap();
        assert_eq!((other.primary, other.epoch), (0, 1), "the other group stays");
        assert_eq!(meta.group_of(1).unwrap().name, "default");
        assert!(meta.ended(2, 1).is_none(), "the other group's epoch 1 goes on");
        let failover = meta.ended(0, 1).unwrap();
        assert_eq!(failover.group, "default");
        assert_eq!(
            (failover.rto_ms(), failover.handover.clone()),
            (20, handover.into_iter().collect())
        );
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
        assert_eq!(meta.apply(&abort(1), 20), None);
        assert_eq!(default_group(&meta).primary, 0);
        assert!(meta.ended(0, 1).is_none(), "an aborted failover ended nothing");
        meta.apply(&begin(1, true), 30);
        meta.apply(&switch("default", 1, &[(0, 5), (1, 6)]), 40);
        let lost = MetaOp::ReportLost {
            epoch: 1,
            shard: 0,
            records: 3,
        };
        assert_eq!(meta.apply(&lost, 50), None);
        assert_eq!(meta.ended(0, 1).unwrap().lost.get(&0), Some(&3));
        let other = MetaOp::ReportLost {
            epoch: 1,
            shard: 2,
            records: 3,
        };
        assert!(meta.apply(&other, 50).is_some(), "shard 2's group did not fail over");
        assert_eq!(meta.history.len(), 2);
    }

    #[test]
    fn each_failover_opens_an_epoch_of_its_own_and_an_aborted_ones_stays_abandoned() {
        let mut meta = meta();
        meta.apply(&begin(1, false), 10);
        assert_eq!(default_group(&meta).opening(), Some(2));
        assert!(!meta.abandoned(&default_group(&meta), 2), "under way");
        meta.apply(&abort(1), 20);
        let abandoned = |meta: &Meta, epoch| meta.abandoned(&default_group(meta), epoch);
        assert_eq!(default_group(&meta).opening(), None);
        assert!(abandoned(&meta, 2) && !abandoned(&meta, 1) && !abandoned(&meta, 3));
        meta.apply(&begin(1, true), 30);
        assert_eq!(
            default_group(&meta).opening(),
            Some(3),
            "never the abandoned epoch again"
        );
        assert!(abandoned(&meta, 2) && !abandoned(&meta, 3));
        assert_eq!(meta.apply(&switch("default", 1, &[(0, 4)]), 40), None);
        let group = default_group(&meta);
        assert_eq!((group.epoch, group.primary), (3, 1));
        let switched = meta.ended(0, 1).unwrap();
        assert_eq!(meta.to_epoch(switched), Some(3));
        assert_eq!(meta.to_epoch(&meta.history[0]), None, "the aborted one");
        meta.apply(&begin(0, false), 50);
        assert_eq!(default_group(&meta).opening(), Some(4));
        meta.apply(&switch("default", 3, &[(0, 4)]), 60);
        assert_eq!(
            meta.to_epoch(meta.ended(0, 1).unwrap()),
            Some(3),
            "where the next began"
        );
        assert_eq!(meta.to_epoch(meta.ended(0, 3).unwrap()), Some(4));
    }

    #[test]
    fn groups_fail_over_side_by_side_each_in_an_epoch_of_its_own() {
        let mut meta = meta();
        assert_eq!(meta.apply(&begin(1, false), 10), None);
        assert_eq!(meta.apply(&begin_of("other", 1, true), 11), None, "another group may");
        let other = meta.group("other").unwrap().clone();
        assert_eq!((default_group(&meta).opening(), other.opening()), (Some(2), Some(3)));
        assert_eq!(meta.apply(&switch("other", 1, &[(2, 8)]), 20), None);
        assert_eq!(meta.apply(&switch("default", 1, &[(0, 1), (1, 2)]), 30), None);
        let epochs = |meta: &Meta| (default_group(meta).epoch, meta.group("other").unwrap().epoch);
        assert_eq!(epochs(&meta), (2, 3), "each switched to the epoch it opened");
        let [first, second] = &meta.history[..] else {
            panic!("two failovers: {:?}", meta.history)
        };
        assert_eq!((first.group.as_str(), meta.to_epoch(first)), ("other", Some(3)));
        assert_eq!((second.group.as_str(), meta.to_epoch(second)), ("default", Some(2)));
        assert_eq!(
            second.lost.keys().copied().collect::<Vec<_>>(),
            vec![0, 1],
            "its shards"
        );
    }
}

//! The client's picture of the cluster: nodes, shards, their slot ranges and
//! current leaders.
//!
//! It is learned from any seed at start-up and then kept fresh by the
//! topology stream (see [`crate::watch`]) and by the leader hints of nodes
//! that refused a request. A leader reported for an older term than the one
//! known never replaces a newer one, so a lagging node's stream cannot
//! route the client backwards.

use std::collections::BTreeMap;

use cairn_proto::admin::StatusReply;
use cairn_proto::slot::key_slot;

use crate::error::{Error, Result};

/// A node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// Its id.
    pub id: u64,
    /// Its region.
    pub region: String,
    /// Its availability zone.
    pub zone: String,
    /// Its gRPC address (`host:port`).
    pub grpc_addr: String,
}

/// A shard: a contiguous range of hash slots and one Raft group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    /// Its id.
    pub id: u64,
    /// First slot, inclusive.
    pub first_slot: u16,
    /// Last slot, inclusive.
    pub last_slot: u16,
    /// The leader, when known.
    pub leader: Option<u64>,
    /// The term the leader was reported for.
    pub term: u64,
    /// The voters of its group in the primary region, which take its
    /// writes.
    pub voters: Vec<u64>,
    /// Every node holding a replica, in any data region.
    pub replicas: Vec<u64>,
}

/// A failover group: shards served by one primary region at a time, which
/// a failover moves to another region in a new epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailoverGroupInfo {
    /// Its name.
    pub name: String,
    /// Bumped by every failover.
    pub epoch: u64,
    /// The region taking its writes.
    pub primary: String,
    /// Its data regions.
    pub regions: Vec<String>,
    /// Its shards.
    pub shards: Vec<u64>,
}

/// The cluster as the client knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// The cluster's name.
    pub cluster_name: String,
    /// Nodes by id.
    pub nodes: BTreeMap<u64, NodeInfo>,
    /// Shards in slot order.
    pub shards: Vec<ShardInfo>,
    /// The failover groups, in a cluster of several regions.
    pub failover_groups: Vec<FailoverGroupInfo>,
}

impl Topology {
    /// Reads a node's status answer; refuses one whose shards do not cover
    /// every slot exactly once.
    pub(crate) fn from_status(status: StatusReply) -> Result<Self> {
        let nodes = status
            .nodes
            .into_iter()
            .map(|n| {
                let info = NodeInfo {
                    id: n.id,
                    region: n.region,
                    zone: n.zone,
                    grpc_addr: n.grpc_addr,
                };
                (n.id, info)
            })
            .collect();
        let mut shards: Vec<ShardInfo> = status
            .shards
            .into_iter()
            .map(|s| ShardInfo {
                id: s.shard,
                first_slot: s.first_slot as u16,
                last_slot: s.last_slot as u16,
                leader: (s.leader != 0).then_some(s.leader),
                term: s.term,
                voters: s.voters,
                replicas: s.replicas,
            })
            .collect();
        shards.sort_by_key(|s| s.first_slot);
        let mut next = 0u32;
        for shard in &shards {
            if u32::from(shard.first_slot) != next || shard.last_slot < shard.first_slot {
                return Err(Error::Discovery(format!(
                    "node {} reported a slot map with a gap or overlap at slot {next}",
                    status.answered_by
                )));
            }
            next = u32::from(shard.last_slot) + 1;
        }
        if next != u32::from(cairn_proto::slot::SLOTS) {
            return Err(Error::Discovery(format!(
                "node {} reported a slot map that ends at slot {next}",
                status.answered_by
            )));
        }
        Ok(Topology {
            cluster_name: status.cluster_name,
            nodes,
            shards,
            failover_groups: status
                .failover_groups
                .into_iter()
                .map(|g| FailoverGroupInfo {
                    name: g.name,
                    epoch: g.epoch,
                    primary: g.primary,
                    regions: g.regions,
                    shards: g.shards,
                })
                .collect(),
        })
    }

    /// The sum of the failover groups' epochs (0 in a cluster of one
    /// region): every failover of any group raises it, so a status with a
    /// higher one is newer.
    pub fn generation(&self) -> u64 {
        self.failover_groups.iter().map(|g| g.epoch).sum()
    }

    /// The failover group named `name`.
    pub fn failover_group(&self, name: &str) -> Option<&FailoverGroupInfo> {
        self.failover_groups.iter().find(|g| g.name == name)
    }

    /// The region of node `node`.
    pub fn region_of(&self, node: u64) -> Option<&str> {
        self.nodes.get(&node).map(|n| n.region.as_str())
    }

    /// The shard owning `key`.
    pub fn shard_of_key(&self, key: &[u8]) -> u64 {
        let slot = key_slot(key);
        let at = self.shards.partition_point(|s| s.last_slot < slot);
        self.shards[at].id
    }

    /// The shard with id `shard`.
    pub fn shard(&self, shard: u64) -> Option<&ShardInfo> {
        self.shards.iter().find(|s| s.id == shard)
    }

    /// The known leader of `shard`.
    pub fn leader(&self, shard: u64) -> Option<u64> {
        self.shard(shard).and_then(|s| s.leader)
    }

    /// Takes what `update` knows that is newer; returns whether any leader
    /// changed. A different slot layout, or a later generation (a failover
    /// moved some shards to another primary region, whose groups' terms
    /// are not comparable with the old ones), replaces the whole picture;
    /// an earlier one (a node that has not heard of the last failover)
    /// changes no route.
    pub(crate) fn merge(&mut self, update: Topology) -> bool {
        match update.generation().cmp(&self.generation()) {
            std::cmp::Ordering::Less => {
                self.nodes = update.nodes;
                return false;
            }
            std::cmp::Ordering::Greater => {
                *self = update;
                return true;
            }
            std::cmp::Ordering::Equal => {}
        }
        let same_layout = self.shards.len() == update.shards.len()
            && self
                .shards
                .iter()
                .zip(&update.shards)
                .all(|(a, b)| (a.id, a.first_slot, a.last_slot) == (b.id, b.first_slot, b.last_slot));
        if !same_layout {
            *self = update;
            return true;
        }
        self.nodes = update.nodes;
        let mut changed = false;
        for (known, new) in self.shards.iter_mut().zip(update.shards) {
            known.voters = new.voters;
            let newer = new.term > known.term || (new.term == known.term && new.leader.is_some());
            if newer && (new.leader, new.term) != (known.leader, known.term) {
                changed |= new.leader != known.leader;
                known.leader = new.leader;
                known.term = new.term;
            }
        }
        changed
    }

    /// Records a leader hint (or that the leader is unknown).
    pub(crate) fn set_leader(&mut self, shard: u64, leader: Option<u64>) {
        if let Some(known) = self.shards.iter_mut().find(|s| s.id == shard) {
            known.leader = leader;
        }
    }
}

#[cfg(test)]
mod tests {
    use cairn_proto::admin::{FailoverGroupStatus, ShardStatus};

    use super::*;

    fn status(leaders: &[(u64, u64)]) -> StatusReply {
        let n = leaders.len() as u32;
        StatusReply {
            shards: leaders
                .iter()
                .enumerate()
                .map(|(i, &(leader, term))| ShardStatus {
                    shard: i as u64,
                    first_slot: (i as u32 * 16384).div_ceil(n),
                    last_slot: ((i as u32 + 1) * 16384).div_ceil(n) - 1,
                    leader,
                    term,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn routes_keys_by_slot_like_the_server() {
        let topology = Topology::from_status(status(&[(1, 1), (2, 1), (3, 1)])).unwrap();
        let slots = cairn_proto::slot::SlotMap::new(3);
        for key in ["a", "b", "user:{42}:name", "{42}x", "zzz"] {
            assert_eq!(
                topology.shard_of_key(key.as_bytes()),
                slots.shard_of_key(key.as_bytes())
            );
        }
    }

    #[test]
    fn older_terms_never_replace_newer_leaders() {
        let mut topology = Topology::from_status(status(&[(1, 5), (2, 5)])).unwrap();
        assert!(!topology.merge(Topology::from_status(status(&[(3, 4), (2, 5)])).unwrap()));
        assert_eq!(topology.leader(0), Some(1));
        assert!(topology.merge(Topology::from_status(status(&[(3, 6), (0, 6)])).unwrap()));
        assert_eq!(topology.leader(0), Some(3));
        assert_eq!(topology.leader(1), None, "an election under way forgets the old leader");
    }

    #[test]
    fn a_later_epoch_replaces_the_routes_and_an_earlier_one_changes_none() {
        let at_epoch = |leaders: &[(u64, u64)], epoch| {
            let mut status = status(leaders);
            status.failover_groups = vec![
                FailoverGroupStatus {
                    name: "default".into(),
                    epoch,
                    ..Default::default()
                },
                FailoverGroupStatus {
                    name: "other".into(),
                    epoch: 1,
                    ..Default::default()
                },
            ];
            Topology::from_status(status).unwrap()
        };
        let mut topology = at_epoch(&[(1, 9)], 1);
        assert!(topology.merge(at_epoch(&[(4, 2)], 2)));
        assert_eq!(
            topology.leader(0),
            Some(4),
            "the new primary's leader, though at a lower term"
        );
        assert!(!topology.merge(at_epoch(&[(1, 10)], 1)));
        assert_eq!(topology.leader(0), Some(4), "a node that missed the failover");
        assert_eq!(topology.generation(), 3, "epochs 2 and 1");
    }

    #[test]
    fn a_slot_map_with_a_gap_is_refused() {
        let mut bad = status(&[(1, 1), (2, 1)]);
        bad.shards[1].first_slot += 1;
        assert!(matches!(Topology::from_status(bad), Err(Error::Discovery(_))));
    }
}

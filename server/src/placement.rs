//! Placement: which nodes hold which Raft group, read off the topology.
//!
//! A cluster has one or more data regions and at most one witness region.
//! Every shard has one Raft group in every data region, with one voter per
//! zone of that region, so Raft traffic never leaves a region. The group
//! of shard `s` in the region at index `r` of `[[regions]]` is
//! `r << 16 | s` ([`group_id`]): the log store's keys (`group ‖ index`)
//! and the peer network (`RaftRequest.group_id`) carry it as they carry
//! any group id. A topology that declares no regions has one, at index 0,
//! so its groups are numbered as its shards.
//!
//! The primary region's groups take the writes; every node's read/write
//! listener sends a shard's requests to its group there, whose voters are
//! [`Topology::replicas`].
//! Where a zone has several nodes, shards are dealt round-robin among them,
//! and the preferred leaders rotate over the zones so that leaders start
//! spread over the nodes.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::config::{DEFAULT_GROUP, FailoverGroupSpec, FailoverPolicy, RegionRole, RegionSpec, Topology};
use crate::meta::{FailoverGroup, Policy};

/// Position of a region in the topology's `[[regions]]` (0 when none are
/// declared).
pub type RegionIndex = u16;

/// The Raft group of `shard` in region `region`.
pub fn group_id(region: RegionIndex, shard: u64) -> u64 {
    u64::from(region) << 16 | shard
}

/// The region a group belongs to.
pub fn region_of_group(group: u64) -> RegionIndex {
    (group >> 16) as RegionIndex
}

/// The shard a group replicates.
pub fn shard_of_group(group: u64) -> u64 {
    group & 0xffff
}

impl Topology {
    /// The regions, as declared; a topology that declares none has one
    /// primary region, the one its nodes name.
    pub fn region_specs(&self) -> Cow<'_, [RegionSpec]> {
        if !self.regions.is_empty() {
            return Cow::Borrowed(&self.regions);
        }
        let name = self.nodes.first().map_or_else(String::new, |n| n.region.clone());
        Cow::Owned(vec![RegionSpec {
            name,
            role: RegionRole::Primary,
        }])
    }

    /// The name of the region at `index` (its number, if there is none).
    pub fn region_name(&self, index: RegionIndex) -> String {
        let specs = self.region_specs();
        specs
            .get(usize::from(index))
            .map_or_else(|| index.to_string(), |r| r.name.clone())
    }

    /// The index of the region called `name`.
    pub fn region_index(&self, name: &str) -> Option<RegionIndex> {
        let position = self.region_specs().iter().position(|r| r.name == name)?;
        RegionIndex::try_from(position).ok()
    }

    /// The region of node `id` and its role there.
    pub fn region_of(&self, id: u64) -> Option<(RegionIndex, RegionRole)> {
        let node = self.node(id)?;
        let index = self.region_index(&node.region)?;
        Some((index, self.region_specs()[usize::from(index)].role))
    }

    /// The index of the witness region, if there is one.
    pub fn witness_region(&self) -> Option<RegionIndex> {
        let specs = self.region_specs();
        let index = specs.iter().position(|r| r.role == RegionRole::Witness)?;
        Some(index as RegionIndex)
    }

    /// The witness region's node, if there is one.
    pub fn witness_node(&self) -> Option<u64> {
        let region = self.witness_region()?;
        let node = self
            .nodes
            .iter()
            .find(|n| self.region_of(n.id).map(|r| r.0) == Some(region));
        node.map(|n| n.id)
    }

    /// The index of the primary region (the one whose groups take writes).
    pub fn primary_region(&self) -> RegionIndex {
        let specs = self.region_specs();
        let position = specs.iter().position(|r| r.role == RegionRole::Primary);
        position.and_then(|p| RegionIndex::try_from(p).ok()).unwrap_or(0)
    }

    /// Zone name → node ids of that zone (sorted) in region `region`, zones
    /// in name order.
    pub fn zones(&self, region: RegionIndex) -> BTreeMap<&str, Vec<u64>> {
        let Some(name) = self.region_specs().get(usize::from(region)).map(|r| r.name.clone()) else {
            return BTreeMap::new();
        };
        let mut zones: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        for node in self.nodes.iter().filter(|n| n.region == name) {
            zones.entry(node.zone.as_str()).or_default().push(node.id);
        }
        for ids in zones.values_mut() {
            ids.sort_unstable();
        }
        zones
    }

    /// The voters of `shard`'s group in region `region`: one node per zone.
    pub fn replicas_in(&self, region: RegionIndex, shard: u64) -> Vec<u64> {
        self.zones(region)
            .values()
            .map(|ids| ids[(shard as usize) % ids.len()])
            .collect()
    }

    /// The voters of `shard`'s group in the primary region: the replicas
    /// that serve it.
    pub fn replicas(&self, shard: u64) -> Vec<u64> {
        self.replicas_in(self.primary_region(), shard)
    }

    /// The meta group's voters: the first node of each region, the
    /// witness included, in the order of `[[regions]]`; none in a cluster
    /// of one region, which has no meta group.
    pub fn meta_voters(&self) -> Vec<u64> {
        let specs = self.region_specs();
        if specs.len() < 2 {
            return Vec::new();
        }
        let first = |spec: &RegionSpec| self.nodes.iter().find(|n| n.region == spec.name).map(|n| n.id);
        specs.iter().filter_map(first).collect()
    }

    /// Why losing any one region would stop writes, when it would: the
    /// meta group has a voter per region, and a group of two (two regions,
    /// no witness) loses its majority with either, after which the
    /// primary's lease runs out.
    pub fn fragile_meta_group(&self) -> Option<String> {
        let specs = self.region_specs();
        (specs.len() == 2).then(|| {
            format!(
                "the meta group has a voter per region, and regions {} and {} make a group of two, \
                 which needs both: losing either stops writes once the primary's lease runs out; \
                 a witness region (`dev --witness`) lets the cluster lose one",
                specs[0].name, specs[1].name
            )
        })
    }

    /// The failover groups as the topology declares them, every setting
    /// resolved: those `[[failover_groups]]` declares, each with its
    /// primary, durability and policy (the topology's where it sets
    /// none), then `default` with every shard they leave out (if any).
    pub fn failover_group_specs(&self) -> Vec<FailoverGroupSpec> {
        let primary = self.region_name(self.primary_region());
        let resolved = |spec: &FailoverGroupSpec| FailoverGroupSpec {
            name: spec.name.clone(),
            shards: spec.shards.clone(),
            primary: Some(spec.primary.clone().unwrap_or_else(|| primary.clone())),
            durability: Some(spec.durability.unwrap_or(self.durability)),
            failover: Some(spec.failover.unwrap_or(self.failover)),
        };
        let mut specs: Vec<FailoverGroupSpec> = self.failover_groups.iter().map(resolved).collect();
        let named: Vec<u64> = specs.iter().flat_map(|g| g.shards.iter().copied()).collect();
        let rest: Vec<u64> = (0..u64::from(self.shards)).filter(|s| !named.contains(s)).collect();
        if !rest.is_empty() {
            specs.push(resolved(&FailoverGroupSpec {
                name: DEFAULT_GROUP.into(),
                shards: rest,
                primary: None,
                durability: None,
                failover: None,
            }));
        }
        specs
    }

    /// The failover groups as the topology starts them, in epoch 1 (see
    /// [`Topology::failover_group_specs`]). Each lists every data region,
    /// its primary first.
    pub fn failover_groups(&self) -> Vec<FailoverGroup> {
        let specs = self.region_specs();
        let data: Vec<RegionIndex> = (0..specs.len() as RegionIndex)
            .filter(|&r| specs[usize::from(r)].role != RegionRole::Witness)
            .collect();
        let group = |spec: FailoverGroupSpec| {
            let primary = spec.primary.as_deref().and_then(|p| self.region_index(p));
            let primary = primary.unwrap_or(self.primary_region());
            let mut regions = data.clone();
            regions.sort_by_key(|&r| r != primary);
            let failover = spec.failover.unwrap_or(self.failover);
            FailoverGroup {
                name: spec.name,
                regions,
                primary,
                epoch: 1,
                policy: match failover.policy {
                    FailoverPolicy::Automatic => Policy::Automatic {
                        grace_ms: failover.grace_ms,
                    },
                    FailoverPolicy::Manual => Policy::Manual,
                },
                durability: spec.durability.unwrap_or(self.durability),
                failing: None,
                renewed_ms: 0,
                shards: spec.shards,
            }
        };
        self.failover_group_specs().into_iter().map(group).collect()
    }

    /// The node that should lead `shard`'s group in `region` when all are
    /// healthy: zones take turns, so leaders are spread over the nodes.
    pub fn preferred_leader(&self, region: RegionIndex, shard: u64) -> Option<u64> {
        let replicas = self.replicas_in(region, shard);
        (!replicas.is_empty()).then(|| replicas[(shard as usize) % replicas.len()])
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::net::SocketAddr;

    use super::*;
    use crate::config::{Durability, NodeSpec};

    fn node(id: u64, region: &str, zone: &str) -> NodeSpec {
        NodeSpec {
            id,
            region: region.into(),
            zone: zone.into(),
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 7000 + id as u16)),
            resp_addr: SocketAddr::from(([127, 0, 0, 1], 6000 + id as u16)),
            ro_addr: None,
        }
    }

    fn two_regions() -> Topology {
        let role = |name: &str, role| RegionSpec {
            name: name.into(),
            role,
        };
        Topology {
            cluster_name: "t".into(),
            shards: 4,
            regions: vec![
                role("east", RegionRole::Secondary),
                role("west", RegionRole::Primary),
                role("witness", RegionRole::Witness),
            ],
            durability: Durability::default(),
            failover: Default::default(),
            failover_groups: Vec::new(),
            nodes: vec![
                node(1, "east", "a"),
                node(2, "east", "b"),
                node(3, "east", "c"),
                node(4, "west", "a"),
                node(5, "west", "b"),
                node(6, "west", "c"),
                node(7, "witness", "a"),
            ],
        }
    }

    #[test]
    fn each_region_has_its_own_groups_with_a_voter_per_zone() {
        let topology = two_regions();
        assert_eq!(topology.primary_region(), 1);
        assert_eq!(topology.region_of(2), Some((0, RegionRole::Secondary)));
        assert_eq!(topology.region_of(7), Some((2, RegionRole::Witness)));
        assert_eq!(topology.replicas_in(0, 3), vec![1, 2, 3]);
        assert_eq!(topology.replicas(3), vec![4, 5, 6], "the primary region serves");
        assert_eq!(group_id(topology.primary_region(), 3), 65_539);
        assert_eq!(shard_of_group(65_539), 3);
        assert_eq!(region_of_group(65_539), 1);
        assert_ne!(group_id(0, 3), group_id(1, 3));
        let leaders: BTreeSet<u64> = (0..3).filter_map(|s| topology.preferred_leader(1, s)).collect();
        assert_eq!(leaders, BTreeSet::from([4, 5, 6]), "leaders spread over the region");
        assert!(topology.preferred_leader(3, 0).is_none(), "no such region");
        assert_eq!(topology.meta_voters(), vec![1, 4, 7], "a voter per region");
        assert_eq!(topology.fragile_meta_group(), None, "the witness is the third voter");
        assert_eq!(topology.witness_node(), Some(7));
        let groups = topology.failover_groups();
        assert_eq!(groups.len(), 1, "one group, every shard");
        let group = &groups[0];
        assert_eq!((&group.regions[..], group.primary, group.epoch), (&[1, 0][..], 1, 1));
        assert_eq!((group.name.as_str(), &group.shards[..]), ("default", &[0, 1, 2, 3][..]));
    }

    #[test]
    fn declared_failover_groups_come_first_and_default_takes_the_rest() {
        let mut topology = two_regions();
        topology.failover_groups = vec![FailoverGroupSpec {
            name: "orders".into(),
            shards: vec![3, 1],
            primary: Some("east".into()),
            durability: Some(Durability::Witness),
            failover: None,
        }];
        let groups = topology.failover_groups();
        let summary: Vec<(&str, &[u64], RegionIndex, &[RegionIndex])> = groups
            .iter()
            .map(|g| (g.name.as_str(), &g.shards[..], g.primary, &g.regions[..]))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("orders", &[3, 1][..], 0, &[0, 1][..]),
                ("default", &[0, 2][..], 1, &[1, 0][..])
            ]
        );
        let durability: Vec<Durability> = groups.iter().map(|g| g.durability).collect();
        assert_eq!(
            durability,
            [Durability::Witness, Durability::Zone],
            "its own, else the topology's"
        );
        topology.failover_groups[0].shards = vec![0, 1, 2, 3];
        assert_eq!(topology.failover_groups().len(), 1, "no shard is left for default");
    }

    #[test]
    fn a_topology_without_regions_is_one_primary_region_numbered_as_before() {
        let mut topology = two_regions();
        topology.regions.clear();
        topology.nodes.truncate(3);
        assert_eq!(topology.region_specs().len(), 1);
        assert_eq!(topology.primary_region(), 0);
        assert_eq!(group_id(topology.primary_region(), 5), 5);
        assert_eq!(topology.replicas(1), vec![1, 2, 3]);
        assert!(topology.meta_voters().is_empty(), "one region has no meta group");
        assert_eq!(topology.fragile_meta_group(), None);
    }

    #[test]
    fn two_regions_without_a_witness_are_told_they_cannot_lose_one() {
        let mut topology = two_regions();
        topology.regions.pop();
        topology.nodes.pop();
        let warning = topology.fragile_meta_group().unwrap();
        assert!(warning.contains("regions east and west") && warning.contains("losing either stops writes"));
    }
}

//! The cluster's layout, as the meta group records it.
//!
//! Every node reads the topology from its own file, and everything a node
//! decides from it must agree with every other node: which shard owns a
//! slot, which nodes hold a shard's replicas in which region, when a write
//! is acknowledged, when a failover starts without a human. Two files that
//! differ would make two nodes route the same key to different groups, or
//! one of them acknowledge writes the other's durability would not.
//!
//! So the meta group keeps the [`Layout`] of the first topology it heard
//! of: the cluster's name, the slot map, the regions and their roles, the
//! nodes with their regions and zones (in the file's order, which the
//! placement deals shards by), the durability and the failover policy. Every
//! node, when it starts, proposes its own ([`crate::meta::MetaOp::Layout`]);
//! the first is recorded, and a node whose file differs is refused with the
//! first difference named, and stops (see `crate::layout_check`).
//! Addresses are left out: moving a node to another address changes where
//! it is reached, not what it holds.

use std::fmt::Display;

use serde::{Deserialize, Serialize};

use crate::config::{Durability, FailoverGroupSpec, FailoverOptions, FailoverPolicy, RegionRole, Topology};
use cairn_proto::slot::SlotMap;

/// One node's place in the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    /// Its id.
    pub id: u64,
    /// Its region's name.
    pub region: String,
    /// Its zone's name.
    pub zone: String,
}

/// What every node of a cluster must agree on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// The cluster's name.
    pub cluster_name: String,
    /// The slot map: per shard, its first and last slot.
    pub slots: Vec<(u16, u16)>,
    /// The regions, in the file's order, with their roles.
    pub regions: Vec<(String, RegionRole)>,
    /// The nodes, in the file's order.
    pub nodes: Vec<Place>,
    /// When a write is acknowledged.
    pub durability: Durability,
    /// When a failover starts without a human.
    pub failover: FailoverOptions,
    /// The failover groups as the topology starts them: each with its
    /// shards and first primary region, `default` included.
    pub failover_groups: Vec<FailoverGroupSpec>,
}

impl Layout {
    /// The layout `topology` describes.
    pub fn of(topology: &Topology) -> Self {
        let slots = SlotMap::new(topology.shards);
        Layout {
            cluster_name: topology.cluster_name.clone(),
            slots: (0..u64::from(topology.shards)).map(|s| slots.slot_range(s)).collect(),
            regions: topology
                .region_specs()
                .iter()
                .map(|r| (r.name.clone(), r.role))
                .collect(),
            nodes: topology
                .nodes
                .iter()
                .map(|n| Place {
                    id: n.id,
                    region: n.region.clone(),
                    zone: n.zone.clone(),
                })
                .collect(),
            durability: topology.durability,
            failover: topology.failover,
            failover_groups: topology.failover_group_specs(),
        }
    }

    /// The first way in which `proposed` differs from this layout, the
    /// one recorded: "what: X in the cluster, Y in the file"; `None` if
    /// they agree.
    pub fn difference(&self, proposed: &Layout) -> Option<String> {
        let differs = |what: &str, ours: &dyn Display, theirs: &dyn Display| {
            Some(format!("{what}: {ours} in the cluster, {theirs} in the file"))
        };
        if self.cluster_name != proposed.cluster_name {
            return differs(
                "cluster_name",
                &quoted(&self.cluster_name),
                &quoted(&proposed.cluster_name),
            );
        }
        if self.slots.len() != proposed.slots.len() {
            return differs("shards", &self.slots.len(), &proposed.slots.len());
        }
        let slot_ranges = self.slots.iter().zip(&proposed.slots).enumerate();
        if let Some((shard, (ours, theirs))) = slot_ranges.clone().find(|(_, (a, b))| a != b) {
            let range = |(first, last): &(u16, u16)| format!("slots {first}-{last}");
            return differs(&format!("shard {shard}"), &range(ours), &range(theirs));
        }
        if self.regions != proposed.regions {
            return differs("regions", &regions(&self.regions), &regions(&proposed.regions));
        }
        for node in &self.nodes {
            let what = format!("node {}", node.id);
            match proposed.nodes.iter().find(|n| n.id == node.id) {
                None => return differs(&what, &"listed", &"missing"),
                Some(n) if n.region != node.region => {
                    return differs(&format!("{what}'s region"), &quoted(&node.region), &quoted(&n.region));
                }
                Some(n) if n.zone != node.zone => {
                    return differs(&format!("{what}'s zone"), &quoted(&node.zone), &quoted(&n.zone));
                }
                Some(_) => {}
            }
        }
        if let Some(extra) = proposed.nodes.iter().find(|n| !self.nodes.iter().any(|o| o.id == n.id)) {
            return differs(&format!("node {}", extra.id), &"missing", &"listed");
        }
        if self.nodes != proposed.nodes {
            // The placement deals shards to a zone's nodes in this order.
            return differs("the order of nodes", &order(&self.nodes), &order(&proposed.nodes));
        }
        if self.durability != proposed.durability {
            return differs(
                "durability",
                &durability(self.durability),
                &durability(proposed.durability),
            );
        }
        if self.failover != proposed.failover {
            return differs("failover", &policy(self.failover), &policy(proposed.failover));
        }
        if self.failover_groups != proposed.failover_groups {
            return differs(
                "failover_groups",
                &groups(&self.failover_groups),
                &groups(&proposed.failover_groups),
            );
        }
        None
    }
}

fn quoted(name: &str) -> String {
    format!("{name:?}")
}

fn order(nodes: &[Place]) -> String {
    let ids: Vec<String> = nodes.iter().map(|n| n.id.to_string()).collect();
    ids.join(",")
}

fn regions(regions: &[(String, RegionRole)]) -> String {
    let named: Vec<String> = regions
        .iter()
        .map(|(name, role)| format!("{name} ({})", role.name()))
        .collect();
    named.join(", ")
}

fn groups(groups: &[FailoverGroupSpec]) -> String {
    let described: Vec<String> = groups
        .iter()
        .map(|g| {
            let shards: Vec<String> = g.shards.iter().map(u64::to_string).collect();
            let primary = g.primary.as_deref().unwrap_or("?");
            let durability = g.durability.map_or("?", durability);
            let failover = g.failover.map_or_else(|| "?".into(), policy);
            format!(
                "{} (shards {}, primary {primary}, durability {durability}, failover {failover})",
                g.name,
                shards.join(",")
            )
        })
        .collect();
    described.join("; ")
}

fn durability(durability: Durability) -> &'static str {
    match durability {
        Durability::Zone => "zone",
        Durability::Witness => "witness",
    }
}

fn policy(failover: FailoverOptions) -> String {
    match failover.policy {
        FailoverPolicy::Automatic => format!("automatic after {} ms", failover.grace_ms),
        FailoverPolicy::Manual => "manual".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dev::{Shape, topology};

    fn layout() -> Layout {
        let shape = Shape {
            regions: 2,
            zones: 3,
            witness: true,
            shards: 4,
        };
        Layout::of(&topology(7000, shape, Durability::Zone, FailoverOptions::default()).unwrap())
    }

    #[test]
    fn a_layout_agrees_with_itself_and_names_what_differs() {
        let recorded = layout();
        assert_eq!(recorded.difference(&layout()), None);
        let differs = |change: fn(&mut Layout)| {
            let mut proposed = layout();
            change(&mut proposed);
            recorded.difference(&proposed).expect("a difference")
        };
        assert_eq!(
            differs(|l| l.slots.truncate(3)),
            "shards: 4 in the cluster, 3 in the file"
        );
        assert_eq!(
            differs(|l| l.nodes[1].zone = "z9".into()),
            "node 2's zone: \"b\" in the cluster, \"z9\" in the file"
        );
        assert_eq!(
            differs(|l| l.nodes.truncate(6)),
            "node 7: listed in the cluster, missing in the file"
        );
        assert_eq!(
            differs(|l| l.nodes.swap(0, 1)),
            "the order of nodes: 1,2,3,4,5,6,7 in the cluster, 2,1,3,4,5,6,7 in the file"
        );
        assert_eq!(
            differs(|l| l.durability = Durability::Witness),
            "durability: zone in the cluster, witness in the file"
        );
        assert_eq!(
            differs(|l| {
                l.failover_groups[0].shards.pop();
            }),
            "failover_groups: default (shards 0,1,2,3, primary region1, durability zone, failover \
             automatic after 10000 ms) in the cluster, default (shards 0,1,2, primary region1, \
             durability zone, failover automatic after 10000 ms) in the file"
        );
    }
}

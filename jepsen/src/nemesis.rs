//! Nemeses: the faults a run injects, on a schedule.
//!
//! Every interval one fault (taking turns through the requested kinds) is
//! injected, and healed one interval later: killed nodes are restarted,
//! paused ones resumed, cut links restored. Faults the run cannot inject
//! (partitions without network namespaces) are reported once, loudly, and
//! counted as not injected.
//!
//! Partition shapes, after Jepsen's: one node cut off from its peers; the
//! leader of shard 0 cut off; a random minority from the majority; a ring
//! where each node reaches only its two neighbours (no two nodes see the
//! same majority with five nodes); and a bridge, two halves that meet only
//! through one node. Clients keep reaching every node.
//!
//! With several regions: the primary region of a failover group picked at
//! random killed (it returns at heal time, as an old primary that must
//! report what it discarded), or cut off from everyone or from the
//! secondaries only, the witness cut off, and planned or forced failovers
//! of a failover group picked at random to its next data region. The
//! cluster fails over by itself once a group's primary has been silent for
//! its grace.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use crate::cluster::Cluster;
use crate::history::Recorder;
use crate::region;
use crate::resp_client::{Reply, RespClient};

/// A kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Fault {
    /// `kill -9` a node, restart it later.
    Kill,
    /// `kill -9` the leader of shard 0.
    KillLeader,
    /// `kill -9` a minority of the nodes.
    KillMinority,
    /// Stop a node, damage its newest snapshot file, start it again: it
    /// must fall back to an older snapshot or refuse to start, never serve
    /// wrong data. A node that refuses is repaired at heal time the way an
    /// operator replaces a disk: its data is wiped and it rejoins empty.
    Corrupt,
    /// Stop a node, damage the middle of its write-ahead log (where its
    /// newest Raft log records are), start it again: it must refuse to
    /// start, never come back with acknowledged records silently missing.
    /// Repaired at heal time like `corrupt`.
    CorruptLog,
    /// `SIGSTOP` a node, `SIGCONT` it later.
    Pause,
    /// Kill every node of one zone.
    Zone,
    /// Restart a node with a crash armed at a fault point (log append,
    /// apply, snapshot install): it dies there, like a crash mid-write.
    Crash,
    /// Restart a node with delays armed at its log append and apply.
    Delay,
    /// A partition of a random shape (below).
    Partition,
    /// One node cut off from every peer.
    PartitionOne,
    /// The leader of shard 0 cut off from every peer.
    PartitionLeader,
    /// A random minority cut off from the majority.
    PartitionHalves,
    /// Each node reaches only its two ring neighbours.
    PartitionRing,
    /// Two halves that meet only through one node.
    PartitionBridge,
    /// `kill -9` every node of the primary region; they come back at heal
    /// time, as an old primary returning.
    RegionKill,
    /// The primary region cut off from every other region.
    RegionPartition,
    /// The primary region cut off from the secondary regions only (the
    /// witness still reaches both).
    RegionPartitionSecondary,
    /// The witness cut off from every data region.
    WitnessLost,
    /// A planned failover of a failover group to its next data region
    /// (`CAIRN.FAILOVER`).
    Failover,
    /// A forced failover of a failover group to its next data region
    /// (`CAIRN.FAILOVER … FORCE`) while its primary still runs.
    FailoverForce,
}

impl Fault {
    fn is_partition(self) -> bool {
        matches!(
            self,
            Fault::Partition
                | Fault::PartitionOne
                | Fault::PartitionLeader
                | Fault::PartitionHalves
                | Fault::PartitionRing
                | Fault::PartitionBridge
                | Fault::RegionPartition
                | Fault::RegionPartitionSecondary
                | Fault::WitnessLost
        )
    }

    /// Whether this fault needs a cluster of several regions.
    pub fn needs_regions(self) -> bool {
        matches!(
            self,
            Fault::RegionKill
                | Fault::RegionPartition
                | Fault::RegionPartitionSecondary
                | Fault::WitnessLost
                | Fault::Failover
                | Fault::FailoverForce
        )
    }

    /// Whether this fault needs a server built with fault points.
    pub fn needs_failpoints(self) -> bool {
        matches!(self, Fault::Crash | Fault::Delay)
    }

    /// The name as given on the command line.
    pub fn name(self) -> String {
        use clap::ValueEnum;
        self.to_possible_value()
            .map_or_else(|| format!("{self:?}"), |v| v.get_name().to_string())
    }
}

/// Where a `crash` fault may strike.
const CRASH_POINTS: &[&str] = &[
    "log-append-before",
    "log-append-after",
    "log-written-before-sync",
    "apply-before",
    "apply-after",
    "snapshot-install",
];

/// What the nemesis did, for the summary.
#[derive(Debug, Default)]
pub struct Log {
    /// `(seconds since start, description)` of every action.
    pub events: Vec<(f64, String)>,
    /// Faults injected.
    pub injected: usize,
    /// Faults requested but impossible here.
    pub skipped: Vec<Fault>,
    /// Nodes that exited on their own (crashes are findings).
    pub crashes: Vec<(u64, String)>,
}

/// Injects `faults` every `interval` until `deadline`, then heals all.
pub async fn run(
    cluster: Arc<Mutex<Cluster>>,
    faults: Vec<Fault>,
    interval: Duration,
    deadline: Instant,
    seed: u64,
    recorder: Arc<Recorder>,
) -> Log {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut log = Log::default();
    let can_partition = cluster.lock().expect("cluster lock").net.can_partition();
    let usable: Vec<Fault> = faults
        .iter()
        .copied()
        .filter(|f| can_partition || !f.is_partition())
        .collect();
    for fault in faults.iter().filter(|f| !usable.contains(f)) {
        eprintln!(
            "WARNING: {} needs each node in its own network namespace (root, iproute2, iptables); \
             this run is on loopback: NOT injected",
            fault.name()
        );
        log.skipped.push(*fault);
    }
    let mut turn = 0;
    while !usable.is_empty() && Instant::now() + 2 * interval < deadline {
        tokio::time::sleep(interval).await;
        let fault = usable[turn % usable.len()];
        turn += 1;
        match inject(&cluster, fault, &mut rng).await {
            Ok(what) => {
                log.injected += 1;
                log.events.push((recorder.now() as f64 / 1e9, what));
            }
            Err(err) => log
                .events
                .push((recorder.now() as f64 / 1e9, format!("{fault:?} failed: {err}"))),
        }
        tokio::time::sleep(interval + Duration::from_millis(rng.random_range(0..200))).await;
        heal(&cluster, &mut log, &recorder);
    }
    let remaining = deadline.saturating_duration_since(Instant::now());
    tokio::time::sleep(remaining).await;
    heal(&cluster, &mut log, &recorder);
    log
}

async fn inject(cluster: &Arc<Mutex<Cluster>>, fault: Fault, rng: &mut StdRng) -> anyhow::Result<String> {
    let fault = match fault {
        Fault::Partition => *[
            Fault::PartitionOne,
            Fault::PartitionLeader,
            Fault::PartitionHalves,
            Fault::PartitionRing,
            Fault::PartitionBridge,
        ]
        .choose(rng)
        .expect("shapes"),
        other => other,
    };
    let (ids, resp, data_resp, regions) = {
        let cluster = cluster.lock().expect("cluster lock");
        let ids = cluster.ids();
        let resp: Vec<SocketAddr> = ids.iter().map(|&id| cluster.resp(id)).collect();
        let data_resp: Vec<SocketAddr> = cluster.data_nodes().iter().map(|&id| cluster.resp(id)).collect();
        (ids, resp, data_resp, cluster.data_regions())
    };
    let groups = match fault.needs_regions() {
        true => region::groups(&data_resp).await?,
        false => Vec::new(),
    };
    // The region faults hit the primary of a group picked at random.
    let primary = groups.choose(rng).map(|g| (g.primary.clone(), g.name.clone()));
    if let Fault::Failover | Fault::FailoverForce = fault {
        let group = groups.choose(rng).expect("CAIRN.STATUS names a group");
        let at = regions.iter().position(|r| *r == group.primary).unwrap_or(0);
        let to = &regions[(at + 1) % regions.len()];
        let forced = fault == Fault::FailoverForce;
        let done = region::failover(&data_resp, &group.name, to, forced).await?;
        return Ok(format!("{}: {done}", fault.name()));
    }
    let leader = if fault == Fault::PartitionLeader {
        shard0_leader(&resp).await
    } else {
        None
    };
    // Damaging a second node's data while a wiped one is still catching up
    // would be a double disk loss, beyond what three replicas survive: hit
    // the node that is catching up again instead.
    let catching_up = if matches!(fault, Fault::Corrupt | Fault::CorruptLog) {
        catching_up(&ids, &resp).await
    } else {
        None
    };
    let mut cluster = cluster.lock().expect("cluster lock");
    let name = fault.name();
    let target = catching_up.unwrap_or_else(|| *ids.choose(rng).expect("nodes"));
    Ok(match fault {
        Fault::Kill => {
            cluster.kill(target);
            format!("kill node {target}")
        }
        Fault::KillLeader => {
            let leader = leader.unwrap_or(target);
            cluster.kill(leader);
            format!("kill node {leader} (leader of shard 0)")
        }
        Fault::KillMinority => {
            let mut shuffled = ids.clone();
            shuffled.shuffle(rng);
            let minority = &shuffled[..(ids.len() - 1) / 2];
            for &id in minority {
                cluster.kill(id);
            }
            format!("kill nodes {minority:?}")
        }
        Fault::Corrupt => {
            cluster.kill(target);
            let damaged = cluster.corrupt_newest_snapshot(target, rng)?;
            cluster.start_armed(target, None)?;
            cluster.expect_exit(target);
            match damaged {
                Some(file) => format!("corrupt {file} of node {target}, restart it"),
                None => format!("corrupt node {target}: no snapshot yet, restarted as is"),
            }
        }
        Fault::CorruptLog => {
            cluster.kill(target);
            let damaged = cluster.corrupt_log(target)?;
            cluster.start_armed(target, None)?;
            cluster.expect_exit(target);
            if damaged.is_some() {
                cluster.require_refusal(target);
            }
            match damaged {
                Some(file) => format!("corrupt {file} of node {target}, restart it"),
                None => format!("corrupt-log node {target}: no log worth damaging, restarted as is"),
            }
        }
        Fault::Pause => {
            cluster.pause(target, true);
            format!("pause node {target}")
        }
        Fault::Crash => {
            let point = *CRASH_POINTS.choose(rng).expect("points");
            cluster.kill(target);
            cluster.start_armed(target, Some(&format!("{point}=20%1*panic")))?;
            format!("crash node {target} at {point}")
        }
        Fault::Delay => {
            cluster.kill(target);
            cluster.start_armed(target, Some("log-append-before=20%sleep(50);apply-before=20%sleep(20)"))?;
            format!("delay node {target} (log append, apply)")
        }
        Fault::Zone => {
            let zone = cluster.topology.node(target).expect("node").zone.clone();
            let members: Vec<u64> = cluster
                .topology
                .nodes
                .iter()
                .filter(|n| n.zone == zone)
                .map(|n| n.id)
                .collect();
            for &id in &members {
                cluster.kill(id);
            }
            format!("kill zone {zone} (nodes {members:?})")
        }
        Fault::PartitionOne | Fault::PartitionLeader => {
            let alone = leader.unwrap_or(target);
            let rest: Vec<u64> = ids.iter().copied().filter(|&id| id != alone).collect();
            cluster.net.cut(&[alone], &rest)?;
            format!("{name}: node {alone} cut off")
        }
        Fault::PartitionHalves => {
            let mut shuffled = ids.clone();
            shuffled.shuffle(rng);
            let (minority, majority) = shuffled.split_at(ids.len() / 2);
            cluster.net.cut(minority, majority)?;
            format!("{name}: {minority:?} | {majority:?}")
        }
        Fault::PartitionRing => {
            let mut ring = ids.clone();
            ring.shuffle(rng);
            let n = ring.len();
            for (i, &node) in ring.iter().enumerate() {
                let neighbours = [ring[(i + 1) % n], ring[(i + n - 1) % n]];
                let far: Vec<u64> = ring[i + 1..]
                    .iter()
                    .copied()
                    .filter(|p| !neighbours.contains(p))
                    .collect();
                cluster.net.cut(&[node], &far)?;
            }
            format!("{name}: {ring:?}")
        }
        Fault::PartitionBridge => {
            let mut shuffled = ids.clone();
            shuffled.shuffle(rng);
            let bridge = shuffled[0];
            let (left, right) = shuffled[1..].split_at((ids.len() - 1) / 2);
            cluster.net.cut(left, right)?;
            format!("{name}: {left:?} <-> {bridge} <-> {right:?}")
        }
        Fault::RegionKill => {
            let (region, group) = primary.expect("looked up above");
            let members = cluster.nodes_in(&region);
            for &id in &members {
                cluster.kill(id);
            }
            format!("kill region {region}, primary of {group} (nodes {members:?})")
        }
        Fault::RegionPartition | Fault::RegionPartitionSecondary => {
            let (region, group) = primary.expect("looked up above");
            let members = cluster.nodes_in(&region);
            let others = if fault == Fault::RegionPartition {
                ids.clone()
            } else {
                cluster.data_nodes()
            };
            let others: Vec<u64> = others.into_iter().filter(|id| !members.contains(id)).collect();
            cluster.net.cut(&members, &others)?;
            format!("{name}: region {region}, primary of {group}, {members:?} | {others:?}")
        }
        Fault::WitnessLost => {
            let witness = cluster.witness().expect("a cluster of several regions has a witness");
            cluster.net.cut(&[witness], &cluster.data_nodes())?;
            format!("{name}: witness node {witness} cut off")
        }
        Fault::Partition | Fault::Failover | Fault::FailoverForce => unreachable!("handled above"),
    })
}

/// A node's `INFO replication` text, if it answers within a second.
async fn replication_info(addr: SocketAddr) -> Option<String> {
    let mut client = RespClient::connect(addr).await.ok()?;
    let reply = tokio::time::timeout(Duration::from_secs(1), client.call(&[b"INFO", b"replication"])).await;
    match reply {
        Ok(Ok(Reply::Bulk(Some(text)))) => Some(String::from_utf8_lossy(&text).into_owned()),
        _ => None,
    }
}

/// The leader of shard 0 as any node reports it.
async fn shard0_leader(resp: &[SocketAddr]) -> Option<u64> {
    for addr in resp {
        let Some(text) = replication_info(*addr).await else {
            continue;
        };
        let leader = text
            .lines()
            .find_map(|l| l.strip_prefix("cairn_shard0:"))
            .and_then(|f| f.split(',').find_map(|kv| kv.strip_prefix("leader=")))
            .and_then(|l| l.parse().ok())
            .filter(|&l: &u64| l != 0);
        if leader.is_some() {
            return leader;
        }
    }
    None
}

/// Per shard, the applied index each node reports (`INFO replication`);
/// nodes that do not answer are left out.
async fn applied_indexes(ids: &[u64], resp: &[SocketAddr]) -> Vec<(u64, BTreeMap<u64, u64>)> {
    let mut all = Vec::new();
    for (&id, addr) in ids.iter().zip(resp) {
        let Some(text) = replication_info(*addr).await else {
            continue;
        };
        let applied = text
            .lines()
            .filter_map(|line| {
                let (shard, fields) = line.strip_prefix("cairn_shard")?.split_once(':')?;
                let applied = fields.split(',').find_map(|f| f.strip_prefix("applied="))?;
                Some((shard.parse().ok()?, applied.parse().ok()?))
            })
            .collect();
        all.push((id, applied));
    }
    all
}

/// A node that is far behind the others on some shard (a wiped node still
/// catching up), if any.
async fn catching_up(ids: &[u64], resp: &[SocketAddr]) -> Option<u64> {
    /// Entries a follower may trail by under load without missing data.
    const LAG: u64 = 1000;
    let all = applied_indexes(ids, resp).await;
    let mut newest: BTreeMap<u64, u64> = BTreeMap::new();
    for (_, applied) in &all {
        for (&shard, &index) in applied {
            let max = newest.entry(shard).or_default();
            *max = (*max).max(index);
        }
    }
    all.iter()
        .find(|(_, applied)| {
            newest.iter().any(|(shard, &max)| {
                let have = applied.get(shard).copied().unwrap_or(0);
                have < max.saturating_sub(LAG).max(1).min(max)
            })
        })
        .map(|(id, _)| *id)
}

/// Restarts stopped nodes, resumes paused ones, restores every link.
fn heal(cluster: &Arc<Mutex<Cluster>>, log: &mut Log, recorder: &Recorder) {
    let mut cluster = cluster.lock().expect("cluster lock");
    log.crashes.extend(cluster.crashed());
    if let Err(err) = cluster.net.heal() {
        eprintln!("could not restore links: {err}");
    }
    for id in cluster.ids() {
        cluster.pause(id, false);
        if cluster.refused_to_start(id) {
            log.events.push((
                recorder.now() as f64 / 1e9,
                format!("node {id} refused its damaged data; wiped"),
            ));
            if let Err(err) = cluster.wipe(id) {
                eprintln!("could not wipe node {id}: {err}");
            }
        } else if cluster.accepted_damage(id) {
            log.crashes.push((
                id,
                "started on a damaged write-ahead log: the damage went undetected".into(),
            ));
        }
        if cluster.is_armed(id) {
            cluster.kill(id);
        }
        if !cluster.running().contains(&id)
            && let Err(err) = cluster.start_node(id)
        {
            eprintln!("could not restart node {id}: {err}");
        }
    }
    log.events.push((recorder.now() as f64 / 1e9, "heal".into()));
}

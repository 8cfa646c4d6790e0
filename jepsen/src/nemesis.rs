//! Nemeses: the faults a run injects, on a schedule.
//!
//! Every interval one fault (taking turns through the requested kinds) hits
//! a randomly chosen node, and is healed one interval later: a killed node
//! is restarted, a paused one resumed. Faults this harness cannot inject
//! here are reported once, loudly, and counted as not injected.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use crate::cluster::Cluster;
use crate::history::Recorder;

/// A kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Fault {
    /// `kill -9` a node, restart it later.
    Kill,
    /// `SIGSTOP` a node, `SIGCONT` it later.
    Pause,
    /// Cut a node off the network (needs network namespaces).
    Partition,
}

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
    let at = |r: &Recorder| r.now() as f64 / 1e9;
    let usable: Vec<Fault> = faults.iter().copied().filter(|f| *f != Fault::Partition).collect();
    if faults.contains(&Fault::Partition) {
        eprintln!(
            "WARNING: the partition nemesis needs each node in its own network namespace; \
             this harness runs nodes on loopback and cannot cut links: partitions NOT injected"
        );
        log.skipped.push(Fault::Partition);
    }
    let mut turn = 0;
    while !usable.is_empty() && Instant::now() + 2 * interval < deadline {
        tokio::time::sleep(interval).await;
        let fault = usable[turn % usable.len()];
        turn += 1;
        let target = {
            let mut cluster = cluster.lock().expect("cluster lock");
            log.crashes.extend(cluster.crashed());
            let ids = cluster.ids();
            let target = *ids.choose(&mut rng).expect("nodes");
            match fault {
                Fault::Kill => cluster.kill(target),
                Fault::Pause => cluster.pause(target, true),
                Fault::Partition => unreachable!("filtered out above"),
            }
            target
        };
        log.injected += 1;
        log.events
            .push((at(&recorder), format!("{fault:?} node {target}").to_lowercase()));
        tokio::time::sleep(interval + Duration::from_millis(rng.random_range(0..200))).await;
        heal(&cluster, &mut log, &recorder);
    }
    let remaining = deadline.saturating_duration_since(Instant::now());
    tokio::time::sleep(remaining).await;
    heal(&cluster, &mut log, &recorder);
    log
}

/// Restarts stopped nodes and resumes paused ones.
fn heal(cluster: &Arc<Mutex<Cluster>>, log: &mut Log, recorder: &Recorder) {
    let mut cluster = cluster.lock().expect("cluster lock");
    log.crashes.extend(cluster.crashed());
    for id in cluster.ids() {
        cluster.pause(id, false);
        if !cluster.running().contains(&id)
            && let Err(err) = cluster.start_node(id)
        {
            eprintln!("could not restart node {id}: {err}");
        }
    }
    log.events.push((recorder.now() as f64 / 1e9, "heal".into()));
}

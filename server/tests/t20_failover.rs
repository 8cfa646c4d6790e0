//! kill -9 of the node leading most shards while clients write: every shard
//! elects a new leader within seconds, and every acknowledged write is there
//! afterwards; the killed node, restarted by hand, catches up. A leader
//! killed and restarted at once does not lead again in its old term.

mod fixtures;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_server::config::RaftOptions;
use fixtures::{Cluster, Resp, Value};

#[test]
fn t20_kill_the_busiest_leader_while_writing() {
    let mut cluster = Cluster::start(3, 8, RaftOptions::default());
    let leaders = cluster.leaders(1);
    let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
    for leader in leaders.values() {
        *counts.entry(*leader).or_default() += 1;
    }
    let (&victim, &led) = counts.iter().max_by_key(|(_, n)| **n).unwrap();
    let survivors: Vec<u64> = cluster.ids().into_iter().filter(|&id| id != victim).collect();
    println!("leaders before: {leaders:?}; killing node {victim}, which leads {led} shards");

    // Writers on every node, the victim included; each records what was acknowledged.
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut writers = Vec::new();
    for (w, id) in cluster.ids().into_iter().enumerate() {
        let addr = cluster.topology.node(id).unwrap().resp_addr;
        let stop = stop.clone();
        let acked = acked.clone();
        writers.push(std::thread::spawn(move || {
            let mut client = Resp::try_connect(addr);
            let mut errors = 0;
            for i in 0..100_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let (key, value) = (format!("w{w}:{i}"), format!("v{i}"));
                let reply = client.as_mut().and_then(|c| c.try_cmd(&["SET", &key, &value]).ok());
                match reply {
                    Some(Value::Simple(ok)) if ok == "OK" => acked.lock().unwrap().push((key, value)),
                    Some(_) => errors += 1,
                    None => {
                        errors += 1;
                        std::thread::sleep(Duration::from_millis(20));
                        client = Resp::try_connect(addr);
                    }
                }
            }
            errors
        }));
    }
    std::thread::sleep(Duration::from_millis(500));
    let killed_at = Instant::now();
    cluster.kill(victim);

    // Every shard must get a leader among the survivors.
    let deadline = killed_at + Duration::from_secs(15);
    let failover = loop {
        let now = survivors.iter().map(|&s| cluster.leaders(s)).collect::<Vec<_>>();
        let settled = now
            .iter()
            .all(|l| l.len() == 8 && l.values().all(|leader| survivors.contains(leader)));
        if settled {
            break killed_at.elapsed();
        }
        assert!(Instant::now() < deadline, "no new leaders after 15 s: {now:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    println!("FAILOVER: every shard led by a survivor {failover:?} after kill -9");
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let errors: usize = writers.into_iter().map(|w| w.join().unwrap()).sum();
    let acked = acked.lock().unwrap().clone();
    println!("{} writes acknowledged, {errors} failed or unanswered", acked.len());
    assert!(acked.len() > 100, "writers made progress");

    let mut reader = cluster.client(survivors[0]);
    for (key, value) in &acked {
        assert_eq!(
            reader.cmd(&["GET", key]).text().as_deref(),
            Some(value.as_str()),
            "acknowledged {key} lost"
        );
    }

    // The killed node comes back by hand and catches up.
    cluster.start_node(victim);
    cluster.wait_ready(Duration::from_secs(30));
    let mut client = cluster.client(victim);
    for (key, value) in acked.iter().rev().take(200) {
        assert_eq!(client.cmd(&["GET", key]).text().as_deref(), Some(value.as_str()));
    }
}

/// Shard 0's `(role, leader, term)` as node `id` reports it, if it answers.
fn shard_zero(cluster: &Cluster, id: u64) -> Option<(String, u64, u64)> {
    let shards = cluster.try_shards(id)?;
    let fields = shards.get(&0)?;
    let number = |name: &str| fields.get(name)?.parse().ok();
    Some((fields.get("role")?.clone(), number("leader")?, number("term")?))
}

#[test]
fn t20_a_restarted_leader_leads_again_only_in_a_new_term() {
    // Followers wait 4-5 s before they elect, so the leader is back long
    // before they would.
    let raft = RaftOptions {
        election_timeout_min_ms: 4000,
        election_timeout_max_ms: 5000,
        ..RaftOptions::default()
    };
    let mut cluster = Cluster::start(3, 1, raft);
    let (_, leader, term) = shard_zero(&cluster, 1).expect("node 1 answers");
    cluster.client(leader).cmd(&["SET", "k", "before"]);
    cluster.kill(leader);
    cluster.start_node(leader);
    let deadline = Instant::now() + Duration::from_secs(30);
    let new_term = loop {
        let seen: Vec<_> = cluster
            .ids()
            .into_iter()
            .map(|id| (id, shard_zero(&cluster, id)))
            .collect();
        for (id, reported) in &seen {
            if let Some((role, _, now)) = reported {
                assert!(
                    !(*id == leader && role == "leader" && *now == term),
                    "node {leader} led again in term {term}, which it led before its restart: {seen:?}"
                );
            }
        }
        let newer = seen
            .iter()
            .find_map(|(_, r)| r.as_ref().filter(|(_, _, now)| *now > term));
        if let Some((_, _, now)) = newer {
            break *now;
        }
        assert!(
            Instant::now() < deadline,
            "no election after the restart in 30 s: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    println!("node {leader} led term {term}; after its restart, term {new_term}");
    cluster.wait_ready(Duration::from_secs(30));
    assert_eq!(
        cluster.client(leader).cmd(&["GET", "k"]).text().as_deref(),
        Some("before")
    );
}

//! The topology stream: after a leader change the client routes to the new
//! leader without first being refused by the old one; a client that does
//! not follow the stream is refused once and then follows the hint.

#[path = "../../server/tests/fixtures/mod.rs"]
mod fixtures;

use std::time::{Duration, Instant};

use cairn_client::Client;
use cairn_server::config::RaftOptions;
use fixtures::{Cluster, signal};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t50_clients_follow_leader_changes_from_the_stream() {
    let cluster = Cluster::start(3, 2, RaftOptions::default());
    let seeds: Vec<String> = cluster.topology.nodes.iter().map(|n| n.grpc_addr.to_string()).collect();
    let watching = Client::builder().seeds(seeds.clone()).build().await.unwrap();
    let blind = Client::builder()
        .seeds(seeds)
        .watch_topology(false)
        .build()
        .await
        .unwrap();
    let topology = watching.topology();
    let shard = topology.shard_of_key(b"moving");
    let old = topology.leader(shard).unwrap();
    watching.set("moving", "0").await.unwrap();
    blind.set("moving", "0").await.unwrap();

    // Pause the leader until the others elect a new one, then let it go:
    // it comes back as a follower that refuses writes.
    let pid = cluster.pid_file(old).unwrap();
    signal(pid, "STOP");
    let deadline = Instant::now() + Duration::from_secs(20);
    let new = loop {
        match watching.topology().leader(shard) {
            Some(leader) if leader != old => break leader,
            _ => {}
        }
        if Instant::now() > deadline {
            signal(pid, "CONT");
            panic!("the stream did not announce a new leader for shard {shard}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    signal(pid, "CONT");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(watching.stats().topology_updates >= 2);

    let before = watching.stats();
    for i in 0..20 {
        let reply = watching.set("moving", i.to_string()).await.unwrap();
        assert_eq!(reply.header.served_by, new);
    }
    let after = watching.stats();
    assert_eq!(
        after.not_leader, before.not_leader,
        "no request was refused by the old leader"
    );
    assert_eq!(after.attempts - before.attempts, 20, "one attempt per call");

    let reply = blind.set("moving", "blind").await.unwrap();
    assert_eq!(reply.header.served_by, new);
    assert_eq!(
        blind.stats().not_leader,
        1,
        "without the stream: refused once, then the hint"
    );
}

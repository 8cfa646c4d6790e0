//! The whole cluster stopped and started again has all of its data back.

mod fixtures;

use std::time::{Duration, Instant};

use cairn_server::config::RaftOptions;
use fixtures::{Cluster, Value};

#[test]
fn t30_full_restart_keeps_everything() {
    let mut cluster = Cluster::start(
        3,
        4,
        RaftOptions {
            snapshot_every: 500,
            ..RaftOptions::default()
        },
    );
    let mut client = cluster.client(1);
    for i in 0..2000 {
        assert_eq!(
            client.cmd(&["SET", &format!("k{i}"), &format!("v{i}")]),
            Value::Simple("OK".into())
        );
    }
    client.cmd(&["INCRBY", "n", "7"]);
    drop(client);
    for id in cluster.ids() {
        cluster.stop(id);
        assert_eq!(
            cluster.pid_file(id),
            None,
            "a cleanly stopped node removes its pid file"
        );
    }
    let started = Instant::now();
    for id in cluster.ids() {
        cluster.start_node(id);
    }
    cluster.wait_ready(Duration::from_secs(30));
    let recovery = started.elapsed();
    println!("RECOVERY: 3 nodes, 2000 keys back in service after {recovery:?}");
    for id in cluster.ids() {
        let mut client = cluster.client(id);
        for i in (0..2000).step_by(7) {
            assert_eq!(client.cmd(&["GET", &format!("k{i}")]).text(), Some(format!("v{i}")));
        }
        assert_eq!(client.cmd(&["GET", "n"]).text().as_deref(), Some("7"));
    }
}

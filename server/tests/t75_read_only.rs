//! The read-only listener (`ro_addr`): reads from the node's own replica
//! within the staleness bound, writes refused with Redis's `-READONLY`,
//! and past the bound the configured answer.

mod fixtures;

use std::time::{Duration, Instant};

use cairn_server::config::{PastBound, ReadOnlyOptions};
use cairn_server::slot::SlotMap;
use fixtures::{Cluster, Resp, Value, slot_ports};

/// A client of node `id`'s read-only listener.
fn read_only(cluster: &Cluster, id: u64) -> Resp {
    Resp::connect(cluster.topology.node(id).unwrap().ro_addr.expect("ro_addr set"))
}

/// Waits (up to 10 s) until `check` holds for `command`'s reply on `client`.
fn eventually(client: &mut Resp, command: &[&str], check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = client.cmd(command);
        if check(&reply) {
            return reply;
        }
        assert!(Instant::now() < deadline, "{command:?} still answers {reply:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

const READONLY: &str = "READONLY You can't write against a read only replica.";

#[test]
fn t75_the_read_only_listener_reads_every_replica_and_refuses_writes() {
    // A bound far above the leader's heartbeat (100 ms), so that a busy
    // machine's scheduling delays stay well inside it.
    let options = ReadOnlyOptions {
        max_staleness_ms: 2000,
        past_bound: PastBound::Refuse,
    };
    let mut cluster = Cluster::start_read_only(3, 2, options);
    cluster.client(1).cmd(&["SET", "greeting", "hello"]);
    for id in cluster.ids() {
        let mut ro = read_only(&cluster, id);
        let hello = |v: &Value| v.text().as_deref() == Some("hello");
        eventually(&mut ro, &["GET", "greeting"], hello);
        // Reads over every shard work too.
        assert!(matches!(ro.cmd(&["DBSIZE"]), Value::Int(n) if n >= 1));
        // It says it is a replica, whose master is the read/write listener.
        let info = ro.cmd(&["INFO", "replication"]).text().unwrap();
        let rw = cluster.topology.node(id).unwrap().resp_addr;
        assert!(info.contains("role:slave\r\n"), "{info}");
        assert!(info.contains(&format!("master_port:{}\r\n", rw.port())), "{info}");
        for write in [
            vec!["SET", "greeting", "bye"],
            vec!["DEL", "greeting"],
            vec!["INCR", "counter"],
        ] {
            assert_eq!(ro.cmd(&write), Value::Error(READONLY.into()), "{write:?} on node {id}");
        }
        // A write queued in a transaction fails it, as on a Redis replica.
        assert_eq!(ro.cmd(&["MULTI"]), Value::Simple("OK".into()));
        assert_eq!(ro.cmd(&["SET", "greeting", "bye"]), Value::Error(READONLY.into()));
        let exec = ro.cmd(&["EXEC"]);
        assert!(
            matches!(&exec, Value::Error(e) if e.starts_with("EXECABORT")),
            "{exec:?}"
        );
    }
    // A cluster client that starts at a read-only listener is told of
    // read-only listeners only.
    let ro_ports: Vec<u16> = cluster
        .topology
        .nodes
        .iter()
        .map(|n| n.ro_addr.unwrap().port())
        .collect();
    let listed = slot_ports(&mut read_only(&cluster, 1));
    assert!(listed.iter().all(|p| ro_ports.contains(p)), "{listed:?}");

    let mut rw = cluster.client(2);
    assert_eq!(rw.cmd(&["GET", "greeting"]).text().as_deref(), Some("hello"));

    // A follower of the key's shard cut off from the rest answers from its
    // own memory while it can show it is fresh (it heard from its leader
    // within the bound); past the bound it refuses, naming the setting.
    let shard = SlotMap::new(2).shard_of_key(b"greeting");
    let leader = cluster.leaders(1)[&shard];
    let survivor = cluster.ids().into_iter().find(|&id| id != leader).unwrap();
    let mut ro = read_only(&cluster, survivor);
    for id in cluster.ids().into_iter().filter(|&id| id != survivor) {
        cluster.kill(id);
    }
    let cut_off = Instant::now();
    assert_eq!(ro.cmd(&["GET", "greeting"]).text().as_deref(), Some("hello"));
    let refused = eventually(&mut ro, &["GET", "greeting"], |v| matches!(v, Value::Error(_)));
    let refused_after = cut_off.elapsed();
    // The bound counts from the last message of the leader, at most a
    // few heartbeats before the cut.
    assert!(
        refused_after >= Duration::from_millis(1000),
        "refused {refused_after:?} after the cut: sooner than the bound allows"
    );
    let Value::Error(message) = refused else { unreachable!() };
    assert!(
        message.starts_with("MASTERDOWN") && message.contains("read_only.max_staleness_ms = 2000"),
        "{message}"
    );
}

//! `cairn-server dev`: a whole local cluster from one command, with the
//! files and the behaviour its users rely on.

mod fixtures;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use fixtures::{
    ONE_CLUSTER_AT_A_TIME, Resp, Value, dev_refusal, free_base, replication_lines, slot_ports, start_dev, stop_dev,
    wait_for_set,
};

#[test]
fn t70_dev_cluster_starts_stops_and_resumes() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    // The default shape: 2 regions of 3 zones and a witness.
    let port = free_base(7);
    let (mut dev, table) = start_dev("cairn-server", dir.path(), port, &[]);
    let table = table.join("\n");
    for node in 1..=7 {
        for listener in [0, 1] {
            let addr = format!("127.0.0.1:{}", port + 10 * (node - 1) + listener);
            assert!(table.contains(&addr), "{table}");
        }
        assert!(dir.path().join(format!("node{node}/node.toml")).exists());
    }
    assert!(
        table.contains("(2 regions of 3 zones and a witness, 8 shards)"),
        "{table}"
    );
    assert!(
        table.contains(&format!("read/write listener: 127.0.0.1:{port}")),
        "{table}"
    );
    assert!(
        table.contains(&format!("read-only listener:  127.0.0.1:{}", port + 1)),
        "{table}"
    );
    assert!(dir.path().join("topology.toml").exists());
    let first = SocketAddr::from(([127, 0, 0, 1], port));
    wait_for_set(first, "dev-key", "kept");
    let pids: Vec<u32> = (1..=7)
        .map(|n| {
            let text = std::fs::read_to_string(dir.path().join(format!("node{n}/pid"))).unwrap();
            text.trim().parse().unwrap()
        })
        .collect();

    // Ctrl-C stops every child.
    stop_dev(&mut dev);
    for pid in &pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "node process {pid} still running"
        );
    }

    // Same directory again: same cluster, same data.
    let (mut dev, _) = start_dev("cairn-server", dir.path(), port, &[]);
    wait_for_set(first, "another", "1");
    let mut client = Resp::connect(SocketAddr::from(([127, 0, 0, 1], port + 20)));
    assert_eq!(client.cmd(&["GET", "dev-key"]).text().as_deref(), Some("kept"));
    stop_dev(&mut dev);

    // Asking for a different shape on an existing directory is refused.
    let stderr = dev_refusal(dir.path(), &["--zones", "5"]);
    assert!(
        stderr.contains("already holds a cluster of 2 regions of 3 zones and a witness"),
        "{stderr}"
    );
    let stderr = dev_refusal(dir.path(), &["--regions", "1"]);
    assert!(stderr.contains("already holds a cluster of 2 regions"), "{stderr}");
    let stderr = dev_refusal(dir.path(), &["--fsync", "never"]);
    assert!(stderr.contains("fsync in its [storage] section"), "{stderr}");
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[test]
fn t71_dev_starts_regions_and_a_witness_and_every_node_writes_through_the_primary() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let port = free_base(7);
    let shape = ["--regions", "2", "--zones", "3", "--witness", "--shards", "2"];
    let (mut dev, table) = start_dev("cairn-server", dir.path(), port, &shape);
    let table = table.join("\n");
    for (node, region) in [(1, "region1"), (4, "region2"), (6, "region2"), (7, "witness")] {
        let row = table
            .lines()
            .find(|l| l.starts_with(&format!("{node} ")))
            .unwrap_or_else(|| panic!("node {node} missing: {table}"));
        assert!(row.contains(region), "{row}");
    }
    assert!(table.contains("primary region: region1"), "{table}");
    assert!(
        !table.contains("note: the meta group"),
        "a witness is the third voter: {table}"
    );

    // Every node takes writes: the secondary region's and the witness
    // forward them to the primary region.
    let secondary = loopback(port + 30);
    let witness = loopback(port + 60);
    wait_for_set(secondary, "from-secondary", "1");
    wait_for_set(witness, "from-witness", "2");
    let mut primary = Resp::connect(loopback(port));
    assert_eq!(primary.cmd(&["GET", "from-secondary"]).text().as_deref(), Some("1"));
    assert_eq!(primary.cmd(&["GET", "from-witness"]).text().as_deref(), Some("2"));
    assert_eq!(
        Resp::connect(secondary).cmd(&["GET", "from-witness"]).text().as_deref(),
        Some("2")
    );

    // A user made through a secondary node logs in there at once, and on
    // the witness within its refresh: nodes without a replica of the
    // users' shard read the table from its leader.
    let ok = Value::Simple("OK".into());
    let mut via_secondary = Resp::connect(secondary);
    let setuser = ["ACL", "SETUSER", "alice", "on", ">pw", "~*", "+@all"];
    assert_eq!(via_secondary.cmd(&setuser), ok);
    assert_eq!(via_secondary.cmd(&["AUTH", "alice", "pw"]), ok);
    let mut at_witness = Resp::connect(witness);
    let deadline = Instant::now() + Duration::from_secs(10);
    while at_witness.cmd(&["AUTH", "alice", "pw"]) != ok {
        assert!(Instant::now() < deadline, "the witness never learned of alice");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(Resp::connect(loopback(port)).cmd(&["AUTH", "alice", "pw"]), ok);

    // The read-only listener of a node without a replica of the primary's
    // groups forwards reads, and refuses writes.
    let mut secondary_ro = Resp::connect(loopback(port + 31));
    assert_eq!(secondary_ro.cmd(&["GET", "from-witness"]).text().as_deref(), Some("2"));
    let refused = secondary_ro.cmd(&["SET", "from-secondary", "3"]);
    assert!(
        matches!(&refused, Value::Error(e) if e.starts_with("READONLY")),
        "{refused:?}"
    );

    // Cluster-aware clients are sent to the primary region's nodes only.
    let primary_ports: Vec<u16> = [0, 10, 20].iter().map(|off| port + off).collect();
    let listed = slot_ports(&mut Resp::connect(secondary));
    assert!(listed.iter().all(|p| primary_ports.contains(p)), "{listed:?}");

    // The secondary region runs its own groups of every shard, with a
    // leader of its own; the witness holds none.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let groups = replication_lines(secondary, "cairn_shard");
        let led_in_region = groups.len() == 2
            && groups
                .iter()
                .all(|g| ["leader=4,", "leader=5,", "leader=6,"].iter().any(|l| g.contains(l)));
        if led_in_region {
            assert!(groups[0].contains("group=65536"), "{groups:?}");
            break;
        }
        assert!(Instant::now() < deadline, "secondary groups have no leader: {groups:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(replication_lines(witness, "cairn_shard").is_empty());

    stop_dev(&mut dev);

    let stderr = dev_refusal(dir.path(), &["--regions", "3"]);
    assert!(
        stderr.contains("already holds a cluster of 2 regions of 3 zones and a witness, 2 shards"),
        "{stderr}"
    );
}

#[test]
fn t72_dev_refuses_a_shape_that_cannot_keep_a_majority() {
    let dir = tempfile::tempdir().unwrap();
    for (args, reason) in [
        (["--zones", "2"], "has 2 zones"),
        (["--regions", "0"], "--regions must be between 1 and 9, got 0"),
        (
            ["--fsync", "sometimes"],
            "\"sometimes\" is not an fsync policy: use always or never",
        ),
    ] {
        let stderr = dev_refusal(&dir.path().join("cluster"), &args);
        assert!(stderr.contains(reason), "{args:?}: {stderr}");
        assert!(!dir.path().join("cluster/topology.toml").exists(), "nothing written");
    }
}

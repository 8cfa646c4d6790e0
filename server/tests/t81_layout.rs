//! The meta group records the cluster's layout, and a node whose topology
//! file differs from it is refused: it stops, naming the difference, and
//! the cluster goes on serving. Started again with the cluster's file, it
//! serves again.

mod fixtures;

use std::path::Path;
use std::time::{Duration, Instant};

use fixtures::{ONE_CLUSTER_AT_A_TIME, Processes, Resp, Value, free_base, kill, listeners, restart, start_dev};

/// `CAIRN.STATUS` through `node`'s listener once it names a recorded layout.
fn recorded_layout(base: u16, node: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = Resp::try_connect(listeners(base, node).0)
            .and_then(|mut c| c.try_cmd(&["CAIRN.STATUS"]).ok())
            .and_then(|v| v.text());
        if let Some(line) = status
            .iter()
            .flat_map(|s| s.lines())
            .find(|l| l.starts_with("layout:recorded"))
        {
            return line.to_string();
        }
        assert!(Instant::now() < deadline, "no layout recorded: {status:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Points `node`'s config at a copy of the cluster's topology changed by
/// `change`, or back at the cluster's own when `change` is `None`.
fn use_topology(dir: &Path, node: u16, change: Option<(&str, &str)>) {
    let config = dir.join(format!("node{node}/node.toml"));
    let text = std::fs::read_to_string(&config).unwrap();
    let topology = match change {
        Some((from, to)) => {
            let original = std::fs::read_to_string(dir.join("topology.toml")).unwrap();
            assert!(original.contains(from), "{from} not in the topology");
            std::fs::write(dir.join("changed.toml"), original.replacen(from, to, 1)).unwrap();
            "../changed.toml"
        }
        None => "../topology.toml",
    };
    let lines: Vec<String> = text
        .lines()
        .map(|l| match l.starts_with("topology = ") {
            true => format!("topology = {topology:?}"),
            false => l.to_string(),
        })
        .collect();
    std::fs::write(&config, lines.join("\n")).unwrap();
}

#[test]
fn t81_a_node_whose_topology_differs_from_the_recorded_layout_is_refused() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let base = free_base(7);
    let (dev, _) = start_dev("cairn-server", dir.path(), base, &["--shards", "2"]);
    let mut processes = Processes {
        dev,
        restarted: Vec::new(),
    };
    assert_eq!(recorded_layout(base, 1), "layout:recorded shards=2 regions=3 nodes=7");

    // Node 5 (region2) comes back with another durability: refused, and
    // it says why.
    kill(dir.path(), 5);
    use_topology(
        dir.path(),
        5,
        Some(("shards = 2\n", "shards = 2\ndurability = \"witness\"\n")),
    );
    let mut refused = restart(dir.path(), 5);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = refused.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "node 5 kept running with another layout");
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = std::fs::read_to_string(dir.path().join("node5/restart.log")).unwrap();
    assert!(!status.success(), "{log}");
    assert!(
        log.contains("node 5's topology file does not match the cluster's layout")
            && log.contains("durability: zone in the cluster, witness in the file"),
        "{log}"
    );

    // The cluster serves on; node 5 with the cluster's file serves again.
    let mut client = Resp::connect(listeners(base, 1).0);
    assert_eq!(client.cmd(&["SET", "k", "v"]), Value::Simple("OK".into()));
    use_topology(dir.path(), 5, None);
    processes.restarted.push(restart(dir.path(), 5));
    assert_eq!(recorded_layout(base, 5), "layout:recorded shards=2 regions=3 nodes=7");
    let mut again = Resp::connect(listeners(base, 5).0);
    assert_eq!(again.cmd(&["GET", "k"]).text().as_deref(), Some("v"));
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        processes.restarted[0].try_wait().unwrap().is_none(),
        "node 5 stopped again with the cluster's own file"
    );
}

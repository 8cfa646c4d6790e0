//! Bad input gets a clear error and loses nothing: config mistakes name the
//! file and key, a data dir or port in use is refused, and protocol garbage
//! closes only the offending connection.

mod fixtures;

use std::path::Path;

use cairn_server::config::RaftOptions;
use fixtures::{Cluster, Resp, Value, run_server};

#[test]
fn t50_config_errors_name_file_key_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    let topology = dir.path().join("topology.toml");
    let node = dir.path().join("node.toml");
    std::fs::write(
        &topology,
        "cluster_name = \"t\"\n[[nodes]]\nid = 1\nzone = \"a\"\ngrpc_addr = \"127.0.0.1:1\"\nresp_addr = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    std::fs::write(&node, "id = 1\ntopology = \"topology.toml\"\ndata_dir = \"d\"\n").unwrap();
    let (ok, stderr) = run_server(&[Path::new("--config"), &node]);
    assert!(!ok);
    assert!(
        stderr.contains("topology.toml") && stderr.contains("nodes[0].resp_addr") && stderr.contains("used twice"),
        "{stderr}"
    );

    std::fs::write(
        &node,
        "id = 1\ntopology = \"topology.toml\"\ndata_dir = \"d\"\nshards = 3\n",
    )
    .unwrap();
    let (ok, stderr) = run_server(&[Path::new("--config"), &node]);
    assert!(!ok);
    assert!(
        stderr.contains("node.toml") && stderr.contains("unknown field `shards`"),
        "{stderr}"
    );

    let (ok, stderr) = run_server(&[Path::new("--config"), &dir.path().join("missing.toml")]);
    assert!(!ok);
    assert!(
        stderr.contains("missing.toml") && stderr.contains("cannot read"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("d").exists(),
        "a node with a bad config creates nothing"
    );
}

#[test]
fn t51_data_dir_and_ports_in_use_are_refused() {
    let cluster = Cluster::start(1, 1, RaftOptions::default());
    // The same node again: its ports are taken.
    let (ok, stderr) = run_server(&[Path::new("--config"), &cluster.config(1)]);
    assert!(!ok);
    assert!(
        stderr.contains("cannot listen on") && stderr.contains("grpc_addr"),
        "{stderr}"
    );
    // Another node config pointing at the same data dir, with free ports.
    let other = cluster.dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let mut topology = cluster.topology.clone();
    topology.nodes[0].grpc_addr.set_port(fixtures::free_port());
    topology.nodes[0].resp_addr.set_port(fixtures::free_port());
    std::fs::write(other.join("topology.toml"), toml::to_string(&topology).unwrap()).unwrap();
    let data_dir = cluster.node_dir(1);
    std::fs::write(
        other.join("node.toml"),
        format!(
            "id = 1\ntopology = \"topology.toml\"\ndata_dir = {:?}\n",
            data_dir.display().to_string()
        ),
    )
    .unwrap();
    let (ok, stderr) = run_server(&[Path::new("--config"), &other.join("node.toml")]);
    assert!(!ok);
    assert!(stderr.contains("in use by another running cairn-server"), "{stderr}");
    // The running node is unharmed.
    assert_eq!(cluster.client(1).cmd(&["PING"]), Value::Simple("PONG".into()));
}

#[test]
fn t52_protocol_garbage_closes_only_that_connection() {
    let cluster = Cluster::start(1, 1, RaftOptions::default());
    let mut bystander = cluster.client(1);
    assert_eq!(bystander.cmd(&["SET", "safe", "1"]), Value::Simple("OK".into()));

    for garbage in [
        &b"*1\r\n$999999999999\r\n"[..],
        b"*2\r\n$3\r\nGET\r\n:5\r\n",
        b"*abc\r\n",
        b"GET \"unbalanced\r\n",
    ] {
        let mut client = cluster.client(1);
        client.send_raw(garbage);
        match client.read_value().unwrap() {
            Value::Error(e) => assert!(e.starts_with("ERR Protocol error"), "{e}"),
            other => panic!("expected a protocol error for {garbage:?}, got {other:?}"),
        }
        assert!(
            client.read_value().is_err(),
            "the connection is closed after a protocol error"
        );
    }
    // A client that disconnects in the middle of a command.
    let mut quitter = cluster.client(1);
    quitter.send_raw(b"*3\r\n$3\r\nSET\r\n$4\r\nhalf");
    drop(quitter);
    // Pipelined commands are answered in order.
    let mut piped = cluster.client(1);
    piped.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\np\r\n$1\r\n1\r\n*2\r\n$4\r\nINCR\r\n$1\r\np\r\nPING\r\n");
    assert_eq!(piped.read_value().unwrap(), Value::Simple("OK".into()));
    assert_eq!(piped.read_value().unwrap(), Value::Int(2));
    assert_eq!(piped.read_value().unwrap(), Value::Simple("PONG".into()));
    assert_eq!(bystander.cmd(&["GET", "safe"]).text().as_deref(), Some("1"));
    assert_eq!(bystander.cmd(&["EXISTS", "half"]), Value::Int(0));
    let _ = Resp::try_connect(cluster.topology.node(1).unwrap().resp_addr).expect("still accepting");
}

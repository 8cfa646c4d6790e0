//! Bad input gets a clear error and loses nothing: config mistakes name the
//! file and key, a data dir or port in use is refused, protocol garbage
//! closes only the offending connection, and a write too large to
//! replicate is refused before anything is written.

mod fixtures;

use std::path::Path;

use cairn_server::config::{ClientLimits, NodeFile, RaftOptions};
use cairn_server::proposals::MAX_WRITE_BYTES;
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

#[test]
fn t53_client_limits_refuse_extra_clients_huge_requests_and_idlers() {
    let mut cluster = Cluster::start(1, 1, RaftOptions::default());
    cluster.stop(1);
    let path = cluster.config(1);
    let mut file: NodeFile = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    file.clients = ClientLimits {
        max_clients: 2,
        idle_timeout_secs: 1,
        query_buffer_limit: 64 * 1024,
        proto_max_bulk_len: 1024,
    };
    std::fs::write(&path, toml::to_string(&file).unwrap()).unwrap();
    cluster.start_node(1);
    cluster.wait_ready(std::time::Duration::from_secs(30));
    // Let the node see the readiness probes' connections close, then open
    // clients until one is refused: at most two are ever served.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let mut open = Vec::new();
    let refused = (0..5).find_map(|_| {
        let mut client = cluster.client(1);
        match client.try_cmd(&["PING"]) {
            Ok(Value::Simple(pong)) if pong == "PONG" => {
                open.push(client);
                None
            }
            other => Some(other),
        }
    });
    assert!(refused.is_some(), "a client beyond max_clients was served");
    assert_eq!(open.len(), 2, "clients served");
    // The refused client is told why (read without sending, so the close
    // cannot reset the connection before the reply arrives).
    let mut raw = std::net::TcpStream::connect(cluster.topology.node(1).unwrap().resp_addr).unwrap();
    raw.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    let mut reply = String::new();
    std::io::Read::read_to_string(&mut raw, &mut reply).unwrap();
    assert_eq!(reply, "-ERR max number of clients reached\r\n");
    drop(open);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut first = cluster.client(1);
    let mut second = cluster.client(1);
    assert_eq!(first.cmd(&["PING"]), Value::Simple("PONG".into()));

    second.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000\r\n");
    match second.read_value().unwrap() {
        Value::Error(e) => assert!(e.contains("invalid bulk length"), "{e}"),
        other => panic!("a bulk over proto_max_bulk_len is refused, got {other:?}"),
    }
    // Then closed; once it is, its place among the max_clients is free.
    assert!(second.read_value().is_err(), "closed after a protocol error");

    let mut flood = cluster.client(1);
    flood.send_raw(format!("PING {}", "x".repeat(100 * 1024)).as_bytes());
    match flood.read_value().unwrap() {
        Value::Error(e) => assert!(
            e.contains("too big inline request") || e.contains("query buffer limit"),
            "{e}"
        ),
        other => panic!("an endless request is refused, got {other:?}"),
    }

    // An idle client is closed after the timeout; the node keeps serving.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert!(first.try_cmd(&["PING"]).is_err(), "the idle client was closed");
    assert_eq!(cluster.client(1).cmd(&["PING"]), Value::Simple("PONG".into()));
}

#[test]
fn t54_a_write_too_large_to_replicate_is_refused_by_name() {
    let cluster = Cluster::start(3, 1, RaftOptions::default());
    let too_large = "x".repeat(MAX_WRITE_BYTES);
    // Every node refuses it itself, whether it leads the shard or would
    // forward the write.
    for id in cluster.ids() {
        let mut client = cluster.client(id);
        match client.cmd(&["SET", "huge", &too_large]) {
            Value::Error(e) => assert!(
                e.starts_with("ERR a write of ")
                    && e.contains(&format!("over the {MAX_WRITE_BYTES}-byte limit of one write")),
                "{e}"
            ),
            other => panic!("node {id} took a write over the limit: {other:?}"),
        }
        assert_eq!(client.cmd(&["EXISTS", "huge"]), Value::Int(0));
    }
    // The shard goes on taking writes, large ones too, and every node
    // answers them whole, whether it leads the shard or forwards to the
    // node that does.
    let large = "y".repeat(16 << 20);
    let mut client = cluster.client(1);
    assert_eq!(client.cmd(&["SET", "large", &large]), Value::Simple("OK".into()));
    for id in cluster.ids() {
        let mut client = cluster.client(id);
        let got = client.cmd(&["GET", "large"]);
        assert!(
            got.text().as_deref() == Some(large.as_str()),
            "node {id} answered {}",
            brief(&got)
        );
    }
    let mut client = cluster.client(*cluster.ids().last().unwrap());
    let got = client.cmd(&["GETDEL", "large"]);
    assert!(
        got.text().as_deref() == Some(large.as_str()),
        "GETDEL answered {}",
        brief(&got)
    );
}

/// The start of a reply, for a failure's message.
fn brief(reply: &Value) -> String {
    format!("{reply:?}").chars().take(200).collect()
}

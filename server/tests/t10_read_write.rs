//! A three-zone cluster answers any key through any node: writes through
//! one node are read back through every other, multi-key commands fan out
//! across shards, and errors have Redis's shape.

mod fixtures;

use cairn_server::config::RaftOptions;
use fixtures::{Cluster, Value};

#[test]
fn t10_writes_through_any_node_read_back_through_every_other() {
    let cluster = Cluster::start(3, 8, RaftOptions::default());
    let ids = cluster.ids();
    for i in 0..300 {
        let writer = ids[i % ids.len()];
        let key = format!("key:{i}");
        let value = format!("value-{i}");
        assert_eq!(
            cluster.client(writer).cmd(&["SET", &key, &value]),
            Value::Simple("OK".into())
        );
    }
    for &reader in &ids {
        let mut client = cluster.client(reader);
        for i in 0..300 {
            let got = client.cmd(&["GET", &format!("key:{i}")]);
            assert_eq!(
                got.text(),
                Some(format!("value-{i}")),
                "read of key:{i} through node {reader}"
            );
        }
    }
}

#[test]
fn t11_commands_answer_like_redis() {
    let cluster = Cluster::start(3, 4, RaftOptions::default());
    let mut a = cluster.client(1);
    let mut b = cluster.client(2);
    assert_eq!(a.cmd(&["PING"]), Value::Simple("PONG".into()));
    assert_eq!(a.cmd(&["ECHO", "hi"]).text().as_deref(), Some("hi"));
    assert_eq!(a.cmd(&["INCR", "counter"]), Value::Int(1));
    assert_eq!(b.cmd(&["INCRBY", "counter", "41"]), Value::Int(42));
    assert_eq!(a.cmd(&["DECR", "counter"]), Value::Int(41));
    assert_eq!(b.cmd(&["SET", "text", "abc"]), Value::Simple("OK".into()));
    assert_eq!(
        a.cmd(&["INCR", "text"]),
        Value::Error("ERR value is not an integer or out of range".into())
    );
    assert_eq!(a.cmd(&["SET", "nx", "1", "NX"]), Value::Simple("OK".into()));
    assert_eq!(b.cmd(&["SET", "nx", "2", "NX"]), Value::Bulk(None));
    assert_eq!(b.cmd(&["SET", "xx-missing", "2", "XX"]), Value::Bulk(None));
    assert_eq!(b.cmd(&["SET", "ttl", "v", "PX", "300"]), Value::Simple("OK".into()));
    assert_eq!(a.cmd(&["GET", "ttl"]).text().as_deref(), Some("v"));
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert_eq!(a.cmd(&["GET", "ttl"]), Value::Bulk(None), "expired keys are invisible");
    // Keys spread over shards: MGET, EXISTS and DEL fan out.
    for i in 0..20 {
        a.cmd(&["SET", &format!("m{i}"), &i.to_string()]);
    }
    let mut args = vec!["MGET"];
    let keys: Vec<String> = (0..20).map(|i| format!("m{i}")).chain(["absent".to_string()]).collect();
    args.extend(keys.iter().map(String::as_str));
    let Value::Array(Some(values)) = b.cmd(&args) else {
        panic!("MGET")
    };
    assert_eq!(values.len(), 21);
    for (i, v) in values[..20].iter().enumerate() {
        assert_eq!(v.text(), Some(i.to_string()));
    }
    assert_eq!(values[20], Value::Bulk(None));
    let mut exists = vec!["EXISTS", "m1", "m1", "absent"];
    assert_eq!(a.cmd(&exists), Value::Int(2));
    exists[0] = "DEL";
    assert_eq!(b.cmd(&exists), Value::Int(1));
    assert_eq!(a.cmd(&["EXISTS", "m1"]), Value::Int(0));
    let Value::Int(size) = a.cmd(&["DBSIZE"]) else {
        panic!("DBSIZE")
    };
    assert!(size >= 19, "DBSIZE {size}");
    assert_eq!(
        a.cmd(&["GET"]),
        Value::Error("ERR wrong number of arguments for 'get' command".into())
    );
    assert_eq!(
        a.cmd(&["NOPE", "x"]),
        Value::Error("ERR unknown command 'NOPE', with args beginning with: 'x' ".into())
    );
    let Value::Bulk(Some(info)) = a.cmd(&["INFO"]) else {
        panic!("INFO")
    };
    let info = String::from_utf8(info).unwrap();
    // Every section client libraries read, in Redis's order.
    let sections: Vec<&str> = info.lines().filter(|l| l.starts_with("# ")).collect();
    assert_eq!(
        sections,
        [
            "# Server",
            "# Clients",
            "# Memory",
            "# Persistence",
            "# Stats",
            "# Replication",
            "# Cluster",
            "# Keyspace"
        ],
        "{info}"
    );
    for field in [
        "redis_version:",
        "arch_bits:64",
        "used_memory:",
        "loading:0",
        "cluster_enabled:1",
    ] {
        assert!(info.contains(field), "{field} missing from {info}");
    }
    // Writes were acknowledged, so the log was fsynced at least once.
    let fsyncs: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("cairn_raft_log_fsyncs:"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no cairn_raft_log_fsyncs in {info}"));
    assert!(fsyncs > 0, "{info}");
    assert_eq!(a.cmd(&["QUIT"]), Value::Simple("OK".into()));
    assert!(a.try_cmd(&["PING"]).is_err(), "QUIT closes the connection");
}

#[test]
fn t12_pipelined_writes_share_entries_and_each_gets_its_own_reply() {
    let cluster = Cluster::start(3, 1, RaftOptions::default());
    let mut client = cluster.client(1);
    // Distinct keys run side by side, so they queue together at the leader.
    let commands: Vec<Vec<String>> = (0..300)
        .map(|i| vec!["INCRBY".into(), format!("n{i}"), i.to_string()])
        .collect();
    let commands: Vec<Vec<&str>> = commands
        .iter()
        .map(|c| c.iter().map(String::as_str).collect())
        .collect();
    let replies = client.raw_pipeline(&commands);
    for (i, reply) in replies.iter().enumerate() {
        assert_eq!(reply, format!(":{i}\r\n").as_bytes(), "reply {i}");
    }
    for i in [0, 1, 150, 299] {
        assert_eq!(client.cmd(&["GET", &format!("n{i}")]).text(), Some(i.to_string()));
    }
    let proposed = |field: &str| -> u64 {
        cluster
            .ids()
            .iter()
            .map(|&id| {
                let info = cluster.client(id).cmd(&["INFO", "persistence"]).text().unwrap();
                info.lines()
                    .find_map(|l| l.strip_prefix(field))
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or_else(|| panic!("no {field} in {info}"))
            })
            .sum()
    };
    let (entries, writes) = (
        proposed("cairn_raft_entries_proposed:"),
        proposed("cairn_writes_proposed:"),
    );
    assert!(writes >= 300, "{writes} writes proposed");
    assert!(entries < writes / 2, "{writes} writes in {entries} entries");
}

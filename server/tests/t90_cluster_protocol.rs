//! Redis Cluster's protocol: the slot map names each shard's leader as the
//! master of its slot range, and a cluster-aware connection is sent to the
//! leader with `-MOVED` while a plain one is served through forwarding.

mod fixtures;

use cairn_server::config::RaftOptions;
use fixtures::{Cluster, Value};

fn int(value: &Value) -> i64 {
    match value {
        Value::Int(n) => *n,
        other => panic!("not an integer: {other:?}"),
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::Bulk(Some(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
        other => panic!("not a bulk string: {other:?}"),
    }
}

#[test]
fn t90_slot_map_and_moved_redirections() {
    let cluster = Cluster::start(3, 4, RaftOptions::default());
    let mut plain = cluster.client(1);
    // The examples of Redis's documentation.
    assert_eq!(plain.cmd(&["CLUSTER", "KEYSLOT", "somekey"]), Value::Int(11058));
    assert_eq!(plain.cmd(&["CLUSTER", "KEYSLOT", "foo{hash_tag}"]), Value::Int(2515));
    assert_eq!(plain.cmd(&["CLUSTER", "KEYSLOT", "bar{hash_tag}"]), Value::Int(2515));
    assert_eq!(text(&plain.cmd(&["CLUSTER", "MYID"])), format!("{:040x}", 1));
    assert!(text(&plain.cmd(&["CLUSTER", "INFO"])).starts_with("cluster_state:ok\r\n"));
    assert!(text(&plain.cmd(&["INFO", "cluster"])).contains("cluster_enabled:1"));
    assert_eq!(
        plain.cmd(&["CLUSTER", "BOGUS"]),
        Value::Error("ERR unknown subcommand 'BOGUS'. Try CLUSTER HELP.".into())
    );

    // Every slot once, each range's master the shard's leader.
    let leaders = cluster.leaders(1);
    let mut aware = cluster.client(1);
    let Value::Array(Some(ranges)) = aware.cmd(&["CLUSTER", "SLOTS"]) else {
        panic!("CLUSTER SLOTS is an array");
    };
    assert_eq!(ranges.len(), 4);
    let mut next = 0;
    for (shard, range) in ranges.iter().enumerate() {
        let Value::Array(Some(fields)) = range else {
            panic!("{range:?}")
        };
        assert_eq!(int(&fields[0]), next);
        next = int(&fields[1]) + 1;
        assert_eq!(fields.len(), 2 + 3, "master and two replicas");
        let Value::Array(Some(master)) = &fields[2] else {
            panic!("{fields:?}")
        };
        let leader = leaders[&(shard as u64)];
        let addr = cluster.topology.node(leader).unwrap().resp_addr;
        assert_eq!(text(&master[0]), addr.ip().to_string());
        assert_eq!(int(&master[1]), i64::from(addr.port()));
        assert_eq!(text(&master[2]), format!("{leader:040x}"));
    }
    assert_eq!(next, 16384);
    let nodes = text(&aware.cmd(&["CLUSTER", "NODES"]));
    assert_eq!(nodes.lines().count(), 3);
    assert_eq!(nodes.lines().filter(|l| l.contains("myself")).count(), 1);

    // A key whose shard node 1 does not lead.
    let (shard, leader) = leaders
        .iter()
        .find(|(_, leader)| **leader != 1)
        .expect("node 1 does not lead all");
    let key = cluster.key_per_shard()[*shard as usize].clone();
    let slot = int(&plain.cmd(&["CLUSTER", "KEYSLOT", &key]));
    let leader_addr = cluster.topology.node(*leader).unwrap().resp_addr;
    assert_eq!(
        aware.cmd(&["SET", &key, "v"]),
        Value::Error(format!("MOVED {slot} {leader_addr}"))
    );
    assert_eq!(
        plain.cmd(&["SET", &key, "v"]),
        Value::Simple("OK".into()),
        "plain clients are forwarded"
    );
    let slot_text = slot.to_string();
    assert_eq!(plain.cmd(&["CLUSTER", "COUNTKEYSINSLOT", &slot_text]), Value::Int(1));
    assert_eq!(
        plain.cmd(&["CLUSTER", "GETKEYSINSLOT", &slot_text, "10"]),
        Value::Array(Some(vec![Value::Bulk(Some(key.clone().into_bytes()))]))
    );
    assert_eq!(
        plain.cmd(&["CLUSTER", "COUNTKEYSINSLOT", "16384"]),
        Value::Error("ERR Invalid slot".into())
    );
    let mut at_leader = fixtures::Resp::connect(leader_addr);
    assert_eq!(at_leader.cmd(&["READONLY"]), Value::Simple("OK".into()));
    assert_eq!(at_leader.cmd(&["GET", &key]).text().as_deref(), Some("v"));
}

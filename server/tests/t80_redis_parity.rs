//! Replies exactly as Redis 7 gives them: the same commands against a real
//! `redis-server` and a Cairn cluster, reply for reply — values, integers,
//! nils and error texts alike.
//!
//! Needs `redis-server` (installed by `scripts/setup`).

mod fixtures;

use std::time::{Duration, Instant};

use cairn_server::config::RaftOptions;
use fixtures::{Cluster, Redis, Resp, Value};

/// Runs every command on both and compares replies one by one.
fn same_replies(redis: &mut Resp, cairn: &mut Resp, script: &[&[&str]]) {
    for command in script {
        let expected = redis.cmd(command);
        let got = cairn.cmd(command);
        assert_eq!(got, expected, "{command:?}: Cairn answered {got:?}, Redis {expected:?}");
    }
}

#[test]
fn t80_expiry_commands_answer_as_redis_does() {
    let redis = Redis::start();
    let cluster = Cluster::start(3, 4, RaftOptions::default());
    let (mut r, mut c) = (redis.client(), cluster.client(2));
    same_replies(
        &mut r,
        &mut c,
        &[
            &["SET", "e:1", "v"],
            &["TTL", "e:1"],
            &["PTTL", "e:1"],
            &["TTL", "e:missing"],
            &["PTTL", "e:missing"],
            &["EXPIRETIME", "e:1"],
            &["EXPIRE", "e:missing", "100"],
            &["EXPIRE", "e:1", "100", "XX"],
            &["EXPIRE", "e:1", "100", "GT"],
            &["EXPIRE", "e:1", "100", "NX"],
            &["TTL", "e:1"],
            &["EXPIRE", "e:1", "200", "NX"],
            &["EXPIRE", "e:1", "50", "GT"],
            &["EXPIRE", "e:1", "200", "gt"],
            &["EXPIRE", "e:1", "300", "LT"],
            &["EXPIRE", "e:1", "150", "XX", "LT"],
            &["TTL", "e:1"],
            &["EXPIRE", "e:1", "10", "NX", "XX"],
            &["EXPIRE", "e:1", "10", "GT", "LT"],
            &["EXPIRE", "e:1", "10", "BOGUS"],
            &["EXPIRE", "e:1", "ten"],
            &["EXPIRE", "e:1"],
            &["EXPIRE", "e:1", "9223372036854775807"],
            &["PEXPIRE", "e:1", "9223372036854775807"],
            &["PERSIST", "e:1"],
            &["PERSIST", "e:1"],
            &["PERSIST", "e:missing"],
            &["TTL", "e:1"],
            &["EXPIREAT", "e:1", "4102444800"],
            &["EXPIRETIME", "e:1"],
            &["PEXPIRETIME", "e:1"],
            &["PEXPIREAT", "e:1", "4102444800123"],
            &["PEXPIRETIME", "e:1"],
            &["EXPIRETIME", "e:1"],
            &["EXPIREAT", "e:1", "1"],
            &["EXISTS", "e:1"],
            &["SET", "e:2", "v", "EX", "100"],
            &["EXPIRE", "e:2", "-1"],
            &["GET", "e:2"],
            &["SET", "e:3", "v"],
            &["PEXPIRE", "e:3", "0"],
            &["EXISTS", "e:3"],
        ],
    );
}

#[test]
fn t82_string_commands_answer_as_redis_does() {
    let redis = Redis::start();
    let cluster = Cluster::start(3, 4, RaftOptions::default());
    let (mut r, mut c) = (redis.client(), cluster.client(3));
    same_replies(
        &mut r,
        &mut c,
        &[
            &["APPEND", "s:a", "Hello"],
            &["APPEND", "s:a", " World"],
            &["GET", "s:a"],
            &["STRLEN", "s:a"],
            &["STRLEN", "s:missing"],
            &["GETRANGE", "s:a", "0", "4"],
            &["GETRANGE", "s:a", "-5", "-1"],
            &["GETRANGE", "s:a", "-3", "-5"],
            &["GETRANGE", "s:a", "5", "3"],
            &["GETRANGE", "s:a", "0", "100"],
            &["GETRANGE", "s:a", "-100", "2"],
            &["GETRANGE", "s:missing", "0", "1"],
            &["GETRANGE", "s:a", "x", "1"],
            &["SUBSTR", "s:a", "6", "-1"],
            &["SETRANGE", "s:a", "6", "Redis"],
            &["GET", "s:a"],
            &["SETRANGE", "s:pad", "3", "x"],
            &["GET", "s:pad"],
            &["SETRANGE", "s:empty", "5", ""],
            &["EXISTS", "s:empty"],
            &["SETRANGE", "s:a", "-1", "x"],
            &["SETRANGE", "s:a", "536870912", "x"],
            &["SETNX", "s:nx", "1"],
            &["SETNX", "s:nx", "2"],
            &["GET", "s:nx"],
            &["SETEX", "s:ex", "100", "v"],
            &["TTL", "s:ex"],
            &["SETEX", "s:ex", "0", "v"],
            &["SETEX", "s:ex", "-3", "v"],
            &["SETEX", "s:ex", "abc", "v"],
            &["PSETEX", "s:px", "100000", "v"],
            &["TTL", "s:px"],
            &["PSETEX", "s:px", "0", "v"],
            &["GETSET", "s:nx", "3"],
            &["GETSET", "s:new", "1"],
            &["TTL", "s:ex"],
            &["GETSET", "s:ex", "w"],
            &["TTL", "s:ex"],
            &["GETDEL", "s:nx"],
            &["GETDEL", "s:nx"],
            &["SET", "s:g", "v"],
            &["GETEX", "s:g"],
            &["GETEX", "s:g", "EX", "100"],
            &["TTL", "s:g"],
            &["GETEX", "s:g", "PERSIST"],
            &["TTL", "s:g"],
            &["GETEX", "s:g", "PX", "0"],
            &["GETEX", "s:g", "EX"],
            &["GETEX", "s:g", "BOGUS"],
            &["GETEX", "s:g", "EXAT", "4102444800"],
            &["EXPIRETIME", "s:g"],
            &["GETEX", "s:missing", "EX", "10"],
            &["MSET", "{u}a", "1", "{u}b", "2"],
            &["MGET", "{u}a", "{u}b", "{u}c"],
            &["MSET", "{u}a"],
            &["MSETNX", "{u}c", "3", "{u}a", "9"],
            &["MGET", "{u}a", "{u}c"],
            &["MSETNX", "{u}c", "3", "{u}d", "4"],
            &["MGET", "{u}c", "{u}d"],
            &["TYPE", "{u}c"],
            &["TYPE", "s:missing"],
            &["TOUCH", "{u}c", "{u}d", "s:missing"],
            &["UNLINK", "{u}c", "s:missing"],
            &["EXISTS", "{u}c"],
            &["SET", "s:ttl", "v", "EX", "100"],
            &["APPEND", "s:ttl", "w"],
            &["TTL", "s:ttl"],
        ],
    );
    // Keys on several shards cannot be set atomically.
    let spread: Vec<String> = (0..8).map(|i| format!("spread:{i}")).collect();
    let mut mset = vec!["MSET"];
    for key in &spread {
        mset.extend([key.as_str(), "v"]);
    }
    assert_eq!(
        c.cmd(&mset),
        Value::Error("CROSSSLOT Keys in request don't hash to the same slot".into())
    );
}

#[test]
fn t83_keyspace_commands_answer_as_redis_does() {
    let redis = Redis::start();
    let cluster = Cluster::start(3, 4, RaftOptions::default());
    let (mut r, mut c) = (redis.client(), cluster.client(1));
    for client in [&mut r, &mut c] {
        assert_eq!(client.cmd(&["FLUSHALL"]), Value::Simple("OK".into()));
    }
    same_replies(
        &mut r,
        &mut c,
        &[
            &["RANDOMKEY"],
            &["SET", "{k}a", "1", "EX", "100"],
            &["RENAME", "{k}a", "{k}b"],
            &["GET", "{k}a"],
            &["GET", "{k}b"],
            &["TTL", "{k}b"],
            &["RENAME", "{k}missing", "{k}c"],
            &["RENAME", "{k}b", "{k}b"],
            &["SET", "{k}c", "3"],
            &["RENAMENX", "{k}b", "{k}c"],
            &["RENAMENX", "{k}b", "{k}d"],
            &["RENAMENX", "{k}missing", "{k}e"],
            &["COPY", "{k}d", "{k}e"],
            &["GET", "{k}e"],
            &["TTL", "{k}e"],
            &["COPY", "{k}c", "{k}e"],
            &["COPY", "{k}c", "{k}e", "REPLACE"],
            &["GET", "{k}e"],
            &["COPY", "{k}c", "{k}c"],
            &["COPY", "{k}missing", "{k}f"],
            &["COPY", "{k}c", "{k}f", "BOGUS"],
            &["DBSIZE"],
            &["SCAN", "x"],
            &["SCAN", "0", "COUNT", "0"],
            &["SCAN", "0", "BOGUS", "1"],
            &["FLUSHDB", "BOGUS"],
        ],
    );
    // KEYS and SCAN find the same keys as Redis, in any order.
    for i in 0..300 {
        let key = format!("user:{i}:{}", if i % 3 == 0 { "name" } else { "mail" });
        r.cmd(&["SET", &key, "v"]);
        c.cmd(&["SET", &key, "v"]);
    }
    for pattern in ["*", "user:1?:name", "user:*:name", "user:[12]*:mail", "nothing*"] {
        assert_eq!(
            sorted(keys(&mut c, pattern)),
            sorted(keys(&mut r, pattern)),
            "KEYS {pattern}"
        );
        assert_eq!(
            sorted(scan_all(&mut c, pattern)),
            sorted(keys(&mut r, pattern)),
            "SCAN MATCH {pattern}"
        );
    }
    let Value::Bulk(Some(random)) = c.cmd(&["RANDOMKEY"]) else {
        panic!("a key")
    };
    assert_eq!(c.cmd(&["EXISTS", std::str::from_utf8(&random).unwrap()]), Value::Int(1));
    let Value::Array(Some(mut page)) = c.cmd(&["SCAN", "0", "TYPE", "hash", "COUNT", "1000"]) else {
        panic!("SCAN answers [cursor, keys]");
    };
    assert!(strings(page.pop().unwrap()).is_empty(), "no hashes yet");
    for client in [&mut r, &mut c] {
        assert_eq!(client.cmd(&["FLUSHDB", "ASYNC"]), Value::Simple("OK".into()));
        assert_eq!(client.cmd(&["DBSIZE"]), Value::Int(0));
    }
    assert_eq!(
        c.cmd(&["RENAME", "spread:1", "spread:2"]),
        Value::Error("CROSSSLOT Keys in request don't hash to the same slot".into())
    );
}

#[test]
fn t84_connection_commands_answer_as_redis_does() {
    let redis = Redis::start();
    let cluster = Cluster::start(3, 2, RaftOptions::default());
    let (mut r, mut c) = (redis.client(), cluster.client(1));
    same_replies(
        &mut r,
        &mut c,
        &[
            &["SELECT", "0"],
            &["SELECT", "x"],
            &["AUTH", "secret"],
            &["AUTH", "default", "anything"],
            &["AUTH", "bob", "secret"],
            &["CLIENT", "GETNAME"],
            &["CLIENT", "SETNAME", "has space"],
            &["CLIENT", "SETNAME", "worker-1"],
            &["CLIENT", "GETNAME"],
            &["CLIENT", "NO-EVICT", "on"],
            &["CLIENT", "NO-EVICT", "maybe"],
            &["CLIENT", "BOGUS"],
            &["CLIENT", "KILL", "127.0.0.1:1"],
            &["RESET"],
            &["CLIENT", "GETNAME"],
            &["PING"],
        ],
    );
    // CLIENT REPLY: a skipped reply and replies switched off are not sent.
    for client in [&mut r, &mut c] {
        client.send_raw(b"CLIENT REPLY SKIP\r\nSET x 1\r\nPING\r\n");
        assert_eq!(client.read_value().unwrap(), Value::Simple("PONG".into()));
        client.send_raw(b"CLIENT REPLY OFF\r\nSET x 2\r\nCLIENT REPLY ON\r\n");
        assert_eq!(client.read_value().unwrap(), Value::Simple("OK".into()));
    }
    assert_eq!(
        c.cmd(&["SELECT", "1"]),
        Value::Error("ERR SELECT is not allowed in cluster mode".into())
    );
    let Value::Array(Some(time)) = c.cmd(&["TIME"]) else {
        panic!("TIME is an array")
    };
    let seconds: u64 = time[0].text().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(seconds.abs_diff(now) < 5);
    let port = cluster.topology.node(1).unwrap().resp_addr.port().to_string();
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "p*t"]),
        Value::Array(Some(vec![
            Value::Bulk(Some(b"port".to_vec())),
            Value::Bulk(Some(port.into_bytes()))
        ]))
    );
    assert!(matches!(c.cmd(&["CONFIG", "SET", "port", "1"]), Value::Error(e) if e.contains("not supported")));

    // CLIENT LIST and KILL see the other connections of the node.
    let mut other = cluster.client(1);
    let Value::Int(other_id) = other.cmd(&["CLIENT", "ID"]) else {
        panic!("CLIENT ID is an integer")
    };
    other.cmd(&["CLIENT", "SETNAME", "victim"]);
    let list = c.cmd(&["CLIENT", "LIST"]).text().unwrap();
    assert!(
        list.lines()
            .any(|l| l.starts_with(&format!("id={other_id} ")) && l.contains(" name=victim ")),
        "{list}"
    );
    assert!(c.cmd(&["CLIENT", "INFO"]).text().unwrap().contains("cmd=client"));
    assert_eq!(c.cmd(&["CLIENT", "KILL", "ID", &other_id.to_string()]), Value::Int(1));
    assert!(other.try_cmd(&["PING"]).is_err(), "a killed connection is closed");
}

#[test]
fn t85_hash_commands_answer_as_redis_does() {
    let redis = Redis::start();
    let cluster = Cluster::start(3, 4, RaftOptions::default());
    let (mut r, mut c) = (redis.client(), cluster.client(2));
    same_replies(
        &mut r,
        &mut c,
        &[
            &["HSET", "h", "a", "1", "b", "2"],
            &["HSET", "h", "b", "3", "c", "4"],
            &["HSET", "h", "a"],
            &["HGET", "h", "b"],
            &["HGET", "h", "zz"],
            &["HGET", "missing", "a"],
            &["HMGET", "h", "a", "zz", "c"],
            &["HGETALL", "h"],
            &["HKEYS", "h"],
            &["HVALS", "h"],
            &["HLEN", "h"],
            &["HLEN", "missing"],
            &["HEXISTS", "h", "a"],
            &["HEXISTS", "h", "zz"],
            &["HSTRLEN", "h", "a"],
            &["HSETNX", "h", "a", "9"],
            &["HSETNX", "h", "d", "9"],
            &["HMSET", "h", "e", "5"],
            &["HDEL", "h", "a", "zz"],
            &["HGETALL", "h"],
            &["HINCRBY", "h", "n", "5"],
            &["HINCRBY", "h", "n", "-7"],
            &["HINCRBY", "h", "n", "x"],
            &["HSET", "h", "t", "text"],
            &["HINCRBY", "h", "t", "1"],
            &["HSET", "h", "big", "9223372036854775807"],
            &["HINCRBY", "h", "big", "1"],
            &["HSCAN", "h", "0", "MATCH", "[be]*"],
            &["HSCAN", "h", "x"],
            &["TYPE", "h"],
            &["HRANDFIELD", "missing"],
            &["HRANDFIELD", "missing", "3"],
            &["PING"],
            &["SET", "s", "v"],
            &["HGET", "s", "a"],
            &["HSET", "s", "a", "1"],
            &["GET", "h"],
            &["INCR", "h"],
            &["APPEND", "h", "x"],
            &["STRLEN", "h"],
            &["GETDEL", "h"],
            &["SET", "h", "v", "GET"],
            &["MGET", "h", "s"],
            &["EXPIRE", "h", "100"],
            &["TTL", "h"],
            &["RENAME", "h", "{h}2"],
            &["HLEN", "{h}2"],
            &["DEL", "{h}2"],
            &["HSET", "d", "only", "1"],
            &["HDEL", "d", "only"],
            &["EXISTS", "d"],
            &["SET", "h3", "x"],
            &["HSET", "h3"],
        ],
    );
    // Random fields come from the hash, as many as asked.
    for client in [&mut r, &mut c] {
        let Value::Array(Some(fields)) = client.cmd(&["HRANDFIELD", "s2", "2"]) else {
            panic!()
        };
        assert!(fields.is_empty());
        client.cmd(&["HSET", "r", "a", "1", "b", "2", "c", "3"]);
        let Value::Array(Some(fields)) = client.cmd(&["HRANDFIELD", "r", "-5"]) else {
            panic!()
        };
        assert_eq!(fields.len(), 5);
        let Value::Array(Some(fields)) = client.cmd(&["HRANDFIELD", "r", "10", "WITHVALUES"]) else {
            panic!()
        };
        assert_eq!(fields.len(), 6, "each of the 3 fields once, with its value");
    }
}

#[test]
fn t86_transactions_answer_as_redis_does() {
    let redis = Redis::start();
    let cluster = Cluster::start(3, 4, RaftOptions::default());
    let (mut r, mut c) = (redis.client(), cluster.client(3));
    same_replies(
        &mut r,
        &mut c,
        &[
            &["EXEC"],
            &["DISCARD"],
            &["MULTI"],
            &["MULTI"],
            &["SET", "{t}a", "1"],
            &["INCR", "{t}a"],
            &["GET", "{t}a"],
            &["SET", "{t}b", "x", "EX", "abc"],
            &["PING"],
            &["HSET", "{t}a", "f", "v"],
            &["MGET", "{t}a", "{t}b"],
            &["DEL", "{t}a", "{t}b"],
            &["EXEC"],
            &["MULTI"],
            &["SET", "{t}a", "1"],
            &["NOSUCHCOMMAND"],
            &["GET"],
            &["EXEC"],
            &["GET", "{t}a"],
            &["MULTI"],
            &["SET", "{t}a", "2"],
            &["DISCARD"],
            &["GET", "{t}a"],
            &["MULTI"],
            &["EXEC"],
            &["WATCH", "{t}w"],
            &["MULTI"],
            &["WATCH", "{t}w"],
            &["SET", "{t}w", "1"],
            &["EXEC"],
            &["GET", "{t}w"],
        ],
    );
    // A watched key changed by another client: EXEC applies nothing.
    for (client, mut other) in [(&mut r, redis.client()), (&mut c, cluster.client(1))] {
        assert_eq!(client.cmd(&["WATCH", "{t}w"]), Value::Simple("OK".into()));
        assert_eq!(other.cmd(&["SET", "{t}w", "changed"]), Value::Simple("OK".into()));
        assert_eq!(client.cmd(&["MULTI"]), Value::Simple("OK".into()));
        assert_eq!(client.cmd(&["SET", "{t}w", "mine"]), Value::Simple("QUEUED".into()));
        assert_eq!(client.cmd(&["EXEC"]), Value::Array(None), "EXEC answers nil");
        assert_eq!(client.cmd(&["GET", "{t}w"]).text().as_deref(), Some("changed"));
    }
    // Keys of several shards cannot be one entry.
    assert_eq!(c.cmd(&["MULTI"]), Value::Simple("OK".into()));
    for i in 0..8 {
        c.cmd(&["SET", &format!("spread:{i}"), "v"]);
    }
    assert_eq!(
        c.cmd(&["EXEC"]),
        Value::Error("CROSSSLOT Keys in request don't hash to the same slot".into())
    );
}

fn sorted(mut keys: Vec<String>) -> Vec<String> {
    keys.sort();
    keys
}

fn strings(value: Value) -> Vec<String> {
    let Value::Array(Some(items)) = value else {
        panic!("an array: {value:?}")
    };
    items.iter().map(|v| v.text().expect("bulk strings")).collect()
}

fn keys(client: &mut Resp, pattern: &str) -> Vec<String> {
    strings(client.cmd(&["KEYS", pattern]))
}

/// Every key a full `SCAN MATCH pattern` returns (each key once).
fn scan_all(client: &mut Resp, pattern: &str) -> Vec<String> {
    let mut cursor = "0".to_string();
    let mut found = std::collections::BTreeSet::new();
    for _ in 0..10_000 {
        let Value::Array(Some(mut page)) = client.cmd(&["SCAN", &cursor, "MATCH", pattern, "COUNT", "7"]) else {
            panic!("SCAN answers [cursor, keys]");
        };
        let keys = strings(page.pop().unwrap());
        cursor = page.pop().unwrap().text().unwrap();
        found.extend(keys);
        if cursor == "0" {
            return found.into_iter().collect();
        }
    }
    panic!("SCAN did not finish");
}

#[test]
fn t81_leaders_remove_expired_keys_everywhere() {
    let cluster = Cluster::start(3, 4, RaftOptions::default());
    let mut client = cluster.client(1);
    let before = keys_held(&cluster, 1);
    for i in 0..2000 {
        let key = format!("x:{i}");
        assert_eq!(client.cmd(&["SET", &key, "v", "PX", "200"]), Value::Simple("OK".into()));
    }
    client.cmd(&["SET", "x:kept", "v"]);
    assert_eq!(
        client.cmd(&["SET", "x:renewed", "v", "PX", "200"]),
        Value::Simple("OK".into())
    );
    assert_eq!(client.cmd(&["PERSIST", "x:renewed"]), Value::Int(1));
    // Every node's replicas shrink back to the two new live keys: the
    // leaders proposed the removals, and followers applied them.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let held: Vec<u64> = cluster.ids().iter().map(|&id| keys_held(&cluster, id)).collect();
        if held.iter().all(|&n| n == before + 2) {
            break;
        }
        assert!(Instant::now() < deadline, "expired keys still held: {held:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(client.cmd(&["GET", "x:renewed"]).text().as_deref(), Some("v"));
    assert_eq!(client.cmd(&["DBSIZE"]), Value::Int(before as i64 + 2));
}

/// Keys a node holds in memory, expired or not (`INFO keyspace`).
fn keys_held(cluster: &Cluster, id: u64) -> u64 {
    let Value::Bulk(Some(text)) = cluster.client(id).cmd(&["INFO", "keyspace"]) else {
        panic!("INFO did not answer a bulk string");
    };
    String::from_utf8(text)
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("db0:keys="))
        .map_or(0, |rest| rest.split(',').next().unwrap().parse().unwrap())
}

#[test]
fn t88_acl_commands_answer_as_redis_does() {
    let redis = Redis::start();
    let cluster = Cluster::start(3, 2, RaftOptions::default());
    let (mut r, mut c) = (redis.client(), cluster.client(2));
    same_replies(
        &mut r,
        &mut c,
        &[
            &["ACL", "WHOAMI"],
            &["ACL", "SETUSER", "alice", "on", ">secret", "~app:*", "+@read", "+set"],
            &["ACL", "GETUSER", "alice"],
            &["ACL", "LIST"],
            &["ACL", "USERS"],
            &["ACL", "SETUSER", "bob", "bogus"],
            &["ACL", "SETUSER", "bob", "+nosuchcmd"],
            &["ACL", "SETUSER", "bob", "+@nosuch"],
            &["ACL", "SETUSER", "bob", "#abc"],
            &["ACL", "SETUSER", "bob"],
            &["ACL", "GETUSER", "bob"],
            &[
                "ACL",
                "SETUSER",
                "bob",
                "on",
                "nopass",
                "allkeys",
                "+get",
                "-get",
                "+get",
                "nocommands",
                "+@hash",
            ],
            &["ACL", "GETUSER", "bob"],
            &["ACL", "GETUSER", "nobody"],
            &["ACL", "DELUSER", "default"],
            &["ACL", "DELUSER", "bob", "nobody"],
            &["ACL", "CAT", "nosuch"],
            &["ACL", "CAT", "a", "b"],
            &["ACL", "CAT"],
            &["ACL", "GETUSER"],
            &["ACL", "FOO"],
            &["ACL", "SAVE"],
            &["AUTH", "alice", "wrong"],
            &["AUTH", "nobody", "x"],
            &["AUTH", "x"],
            &["AUTH", "default", "anything"],
        ],
    );
    // A restricted user, on fresh connections.
    let (mut r, mut c) = (redis.client(), cluster.client(1));
    same_replies(
        &mut r,
        &mut c,
        &[
            &["AUTH", "alice", "secret"],
            &["ACL", "WHOAMI"],
            &["GET", "app:1"],
            &["SET", "app:1", "v"],
            &["GET", "app:1"],
            &["GET", "other"],
            &["MGET", "app:1", "other"],
            &["DEL", "app:1"],
            &["CLIENT", "ID"],
            &["AUTH", "default", "x"],
            &["ACL", "SETUSER", "default", ">pw"],
        ],
    );
    // The default user now needs a password (on the node that changed it:
    // other nodes learn of it a moment later).
    let (mut r, mut c) = (redis.client(), cluster.client(1));
    same_replies(
        &mut r,
        &mut c,
        &[
            &["PING"],
            &["GET", "app:1"],
            &["HELLO", "3"],
            &["HELLO", "2", "AUTH", "default", "wrong"],
            &["ACL", "WHOAMI"],
            &["AUTH", "wrong"],
            &["AUTH", "pw"],
            &["ACL", "WHOAMI"],
            &["RESET"],
            &["PING"],
            &["AUTH", "default", "pw"],
            &["ACL", "SETUSER", "default", "nopass"],
            &["AUTH", "x"],
        ],
    );
}

//! Failover of a two-region dev cluster with a witness: a planned
//! failover and back through `CAIRN.FAILOVER`, with bad requests refused
//! and nothing lost; and the primary region killed whole, after which the
//! cluster fails over by itself and writes go on through the same
//! read/write listener, losing nothing acknowledged (`durability =
//! "witness"`), and the old primary comes back as a secondary; and with
//! `durability = "zone"` and slow links between regions, the writes a
//! killed primary had not shipped are exactly those its lost-writes report
//! lists when it comes back, and the count reaches `CAIRN.FAILOVERS` even
//! if it crashed before telling it; and a failover whose driver stopped between
//! opening the target and recording the switch is finished by the next;
//! and one given up after opening the target leaves the cluster writing
//! and shipping as before, and the next failover loses nothing; and a
//! failover group of some shards fails over without the others, asked or
//! when its primary region dies (writes to the others never stop).

mod fixtures;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use cairn_proto::admin::admin_client::AdminClient;
use cairn_proto::admin::{FailoverRequest, StatusRequest};
use fixtures::{
    ONE_CLUSTER_AT_A_TIME, Processes, Resp, Value, free_base, kill, listeners, replication_lines, restart,
    restart_with, restart_with_env, start_dev, start_dev_with,
};

/// Runs `args` through `addr` until it answers something other than an
/// error (within 30 s).
fn until_ok(addr: SocketAddr, args: &[&str]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = Resp::try_connect(addr).and_then(|mut c| c.try_cmd(args).ok());
        match answer {
            Some(Value::Error(_)) | None => {}
            Some(value) => return value,
        }
        assert!(Instant::now() < deadline, "{args:?} through {addr} never succeeded");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn write_keys(addr: SocketAddr, keys: std::ops::Range<u32>) {
    for i in keys {
        let answer = until_ok(addr, &["SET", &format!("key-{i}"), &format!("value-{i}")]);
        assert_eq!(answer, Value::Simple("OK".into()));
    }
}

/// Asserts that `addr` answers every key of `keys` with its value.
fn assert_keys(addr: SocketAddr, keys: std::ops::Range<u32>) {
    let mut client = Resp::connect(addr);
    for i in keys {
        let got = client.cmd(&["GET", &format!("key-{i}")]);
        assert_eq!(got.text(), Some(format!("value-{i}")), "key-{i} through {addr}");
    }
}

/// Waits (up to 30 s) until `addr` reads `key` as `value`; `what` says
/// what never happened otherwise.
fn until_value(addr: SocketAddr, key: &str, value: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Resp::connect(addr).cmd(&["GET", key]).text().as_deref() != Some(value) {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value of `field` in `CAIRN.STATUS`-shaped text.
fn field(text: &str, field: &str) -> String {
    let prefix = format!("{field}:");
    text.split([' ', '\n'])
        .find_map(|part| part.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {field} in {text}"))
        .to_string()
}

/// The writes the node at `addr` holds, over its shards (their gseqs).
fn writes_held(addr: SocketAddr) -> u64 {
    replication_lines(addr, "cairn_shard")
        .iter()
        .map(|line| {
            let gseq = line.split(',').find_map(|part| part.strip_prefix("gseq="));
            gseq.unwrap_or_else(|| panic!("no gseq in {line}"))
                .parse::<u64>()
                .unwrap()
        })
        .sum()
}

fn status(addr: SocketAddr) -> String {
    until_ok(addr, &["CAIRN.STATUS"]).text().unwrap()
}

/// A dev cluster of `cairn-server-failpoints` nodes, each with `env`.
fn start_failing(dir: &Path, base: u16, shape: &[&str], env: &[(&str, &str)]) -> Processes {
    let (dev, _) = start_dev_with("cairn-server-failpoints", dir, base, shape, env);
    Processes {
        dev,
        restarted: Vec::new(),
    }
}

/// `CAIRN.FAILOVER` of the default group to region2, forced if `force`.
fn to_region2(force: bool) -> Vec<&'static str> {
    let mut args = vec!["CAIRN.FAILOVER", "default", "TO", "region2"];
    if force {
        args.push("FORCE");
    }
    args
}

fn error_of(value: Value) -> String {
    match value {
        Value::Error(message) => message,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn t82_a_planned_failover_and_back_loses_nothing_and_refuses_bad_requests() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let base = free_base(7);
    let shape = ["--shards", "2", "--manual-failover"];
    let (dev, _) = start_dev("cairn-server", dir.path(), base, &shape);
    let _processes = Processes {
        dev,
        restarted: Vec::new(),
    };
    let (rw, _) = listeners(base, 1);
    write_keys(rw, 0..50);
    let before = status(rw);
    assert_eq!(
        (field(&before, "epoch"), field(&before, "primary")),
        ("1".into(), "region1".into())
    );

    // Bad requests name what is wrong and change nothing.
    let mut admin = Resp::connect(rw);
    let refusals = [
        (vec!["CAIRN.FAILOVER", "default", "TO", "witness"], "is the witness"),
        (
            vec!["CAIRN.FAILOVER", "default", "TO", "mars"],
            "no region named 'mars'",
        ),
        (
            vec!["CAIRN.FAILOVER", "default", "TO", "region1"],
            "already the primary",
        ),
        (
            vec!["CAIRN.FAILOVER", "others", "TO", "region2"],
            "no failover group named 'others'",
        ),
        (vec!["CAIRN.FAILOVER", "default", "INTO", "region2"], "syntax error"),
    ];
    for (args, expected) in refusals {
        let message = error_of(admin.cmd(&args));
        assert!(message.contains(expected), "{args:?} answered {message}");
    }
    assert_eq!(field(&status(rw), "epoch"), "1", "nothing changed");

    // A planned failover: no record lost, writes go on through the same
    // listener, the old primary becomes a secondary fed by the new one.
    let started = Instant::now();
    let done = admin
        .cmd(&["CAIRN.FAILOVER", "default", "TO", "region2"])
        .text()
        .unwrap();
    println!("planned failover: {done} (answered after {:?})", started.elapsed());
    assert_eq!(field(&done, "to"), "region2");
    assert_eq!(field(&done, "lost_records"), "0");
    let after = status(rw);
    assert_eq!(
        (field(&after, "epoch"), field(&after, "primary")),
        ("2".into(), "region2".into())
    );
    assert_keys(rw, 0..50);
    write_keys(rw, 50..100);
    let (_, old_primary_ro) = listeners(base, 2);
    until_value(
        old_primary_ro,
        "key-99",
        "value-99",
        "region1 never received writes from region2",
    );

    // And back, through the Admin service.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let grpc = format!("http://127.0.0.1:{}", base + 2);
    let (back, failovers) = runtime.block_on(async {
        let mut admin = AdminClient::connect(grpc).await.unwrap();
        let wrong = FailoverRequest {
            group: "default".into(),
            to: "region2".into(),
            force: false,
        };
        let refused = admin.failover(wrong).await.unwrap_err();
        assert!(refused.message().contains("already the primary"), "{refused:?}");
        let request = FailoverRequest {
            group: "default".into(),
            to: "region1".into(),
            force: false,
        };
        let back = admin.failover(request).await.unwrap().into_inner();
        let failovers = admin.failovers(StatusRequest {}).await.unwrap().into_inner();
        (back, failovers)
    });
    println!("planned failback: {back:?}");
    assert_eq!(
        (back.to.as_str(), back.kind.as_str(), back.lost_records),
        ("region1", "planned", 0)
    );
    assert_eq!((back.from_epoch, back.to_epoch), (2, 3));
    assert_eq!(failovers.failovers.len(), 2);
    assert_eq!(failovers.failovers[0].to_epoch, 2, "where the failback began");
    write_keys(rw, 100..120);
    assert_keys(rw, 0..120);
    let history = until_ok(rw, &["CAIRN.FAILOVERS"]).text().unwrap();
    assert_eq!(history.lines().count(), 2, "{history}");
    assert!(history.lines().all(|l| l.contains("kind:planned")), "{history}");

    // Once shipping caught up, a forced failover would lose nothing.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rpo = until_ok(rw, &["CAIRN.RPO"]).text().unwrap();
        let caught_up = rpo.lines().count() == 2 && rpo.lines().all(|l| field(l, "lost_records") == "0");
        if caught_up {
            println!("{rpo}");
            break;
        }
        assert!(Instant::now() < deadline, "RPO never reached 0: {rpo}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn t85_a_failover_whose_driver_stopped_before_the_switch_is_taken_up_again() {
    for force in [false, true] {
        let _one = ONE_CLUSTER_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let base = free_base(7);
        let shape = ["--shards", "2", "--manual-failover"];
        // Each node's driver stops once after it opened the target and
        // before it recorded the switch, as one that lost the meta group
        // or died there would; the next drive must finish the failover.
        let env = [("FAILPOINTS", "failover-before-switch=1*return")];
        let _processes = start_failing(dir.path(), base, &shape, &env);
        let (rw, _) = listeners(base, 1);
        write_keys(rw, 0..50);
        let args = to_region2(force);
        let answer = Resp::connect(rw).patient(Duration::from_secs(40)).cmd(&args);
        let done = answer.text().unwrap_or_else(|| panic!("{args:?} answered {answer:?}"));
        println!("{args:?}: {done}");
        assert_eq!(field(&done, "to"), "region2");
        assert_eq!(field(&status(rw), "epoch"), "2");
        let drives: usize = [1, 4, 7]
            .iter()
            .map(|node| {
                let log = std::fs::read_to_string(dir.path().join(format!("node{node}/log"))).unwrap();
                log.matches("failing over").count()
            })
            .sum();
        assert!(
            drives >= 2,
            "the failover was driven {drives} times; the fault point never fired"
        );
        write_keys(rw, 50..100);
        assert_keys(rw, 0..100);

        // The old primary lost nothing, says so, and follows region2.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let history = until_ok(rw, &["CAIRN.FAILOVERS"]).text().unwrap();
            if field(&history, "lost_records") == "0" {
                break;
            }
            assert!(Instant::now() < deadline, "the old primary never reported: {history}");
            std::thread::sleep(Duration::from_millis(100));
        }
        let (_, old_primary_ro) = listeners(base, 2);
        until_value(
            old_primary_ro,
            "key-99",
            "value-99",
            "region1 never received writes from region2",
        );
    }
}

#[test]
fn t86_a_failover_given_up_with_its_target_open_leaves_the_cluster_as_it_was() {
    for force in [false, true] {
        let _one = ONE_CLUSTER_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let base = free_base(7);
        let shape = ["--shards", "2", "--manual-failover", "--durability", "witness"];
        // The first failover gives up after it opened region2's groups
        // (and, forced, after the witness took its epoch).
        let env = [("FAILPOINTS", "failover-abort-before-switch=1*return")];
        let _processes = start_failing(dir.path(), base, &shape, &env);
        let (rw, _) = listeners(base, 1);
        let (region2, _) = listeners(base, 5);
        write_keys(rw, 0..50);
        let args = to_region2(force);
        let patient = || Resp::connect(rw).patient(Duration::from_secs(40));
        let why = error_of(patient().cmd(&args));
        assert!(why.contains("given up before the switch"), "{args:?}: {why}");
        assert_eq!(field(&status(rw), "epoch"), "1");

        // Region1 takes writes again, each held by the witness before it
        // is answered, and region2 takes them shipped again.
        write_keys(rw, 50..100);
        let deadline = Instant::now() + Duration::from_secs(30);
        while writes_held(region2) < 100 {
            assert!(
                Instant::now() < deadline,
                "region2 never took shipping again after the failover was given up: {:?}",
                replication_lines(region2, "cairn_shard")
            );
            std::thread::sleep(Duration::from_millis(100));
        }

        // The next failover opens an epoch of its own and loses nothing.
        let answer = patient().cmd(&args);
        let done = answer.text().unwrap_or_else(|| panic!("{args:?} answered {answer:?}"));
        println!("{args:?}: {done}");
        assert_eq!(field(&done, "epoch"), "1->3");
        assert_eq!(field(&status(rw), "epoch"), "3");
        write_keys(rw, 100..120);
        assert_keys(rw, 0..120);
        let history = until_ok(rw, &["CAIRN.FAILOVERS"]).text().unwrap();
        assert!(history.contains("aborted:given_up_before_the_switch"), "{history}");
    }
}

#[test]
fn t83_the_primary_region_killed_whole_fails_over_by_itself_and_loses_nothing() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let base = free_base(7);
    let grace_ms = 3000;
    let shape = [
        "--shards",
        "2",
        "--durability",
        "witness",
        "--failover-grace-ms",
        &grace_ms.to_string(),
    ];
    let (dev, _) = start_dev("cairn-server", dir.path(), base, &shape);
    let mut processes = Processes {
        dev,
        restarted: Vec::new(),
    };
    let (rw, _) = listeners(base, 4);
    write_keys(rw, 0..100);

    for node in 1..=3 {
        kill(dir.path(), node);
    }
    let killed = Instant::now();
    write_keys(rw, 100..101);
    let rto = killed.elapsed();
    println!("automatic failover: writes went on {rto:?} after the primary region died (grace {grace_ms} ms)");
    assert_keys(rw, 0..101);
    let history = until_ok(rw, &["CAIRN.FAILOVERS"]).text().unwrap();
    println!("{history}");
    assert!(
        history.contains("kind:automatic") && history.contains("to:region2"),
        "{history}"
    );
    assert_eq!(field(&status(rw), "primary"), "region2");

    // The old primary comes back as a secondary: it reports what it
    // discarded (nothing: every acknowledged write reached the witness)
    // and is fed by the new primary.
    for node in 1..=3 {
        processes.restarted.push(restart(dir.path(), node));
    }
    write_keys(rw, 101..110);
    let (_, old_ro) = listeners(base, 1);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = Resp::try_connect(old_ro).and_then(|mut c| c.try_cmd(&["GET", "key-109"]).ok());
        let history = until_ok(rw, &["CAIRN.FAILOVERS"]).text().unwrap();
        if got.and_then(|v| v.text()).as_deref() == Some("value-109") && field(&history, "lost_records") == "0" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "region1 never caught up as a secondary: {history}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (old_rw, _) = listeners(base, 1);
    assert_keys(old_rw, 0..110);
}

/// The keys of the writes in dev node `node`'s lost-writes report.
fn reported_keys(dir: &Path, node: u16) -> Vec<String> {
    let report = std::fs::read_to_string(dir.join(format!("node{node}/lost-writes.log"))).unwrap_or_default();
    report
        .lines()
        .filter_map(|line| line.split("key: b\"").nth(1))
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn t84_what_a_killed_primary_had_not_shipped_is_exactly_what_it_reports_lost() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let base = free_base(7);
    // Zone durability, and 50 ms on every request between regions: writes
    // are answered long before the other regions have them.
    let shape = [
        "--shards",
        "1",
        "--failover-grace-ms",
        "2000",
        "--region-latency-ms",
        "50",
    ];
    let binary = "cairn-server-failpoints";
    let (dev, _) = start_dev(binary, dir.path(), base, &shape);
    let mut processes = Processes {
        dev,
        restarted: Vec::new(),
    };
    let (old_rw, _) = listeners(base, 1);
    write_keys(old_rw, 0..200);
    for node in 1..=3 {
        kill(dir.path(), node);
    }

    let (rw, _) = listeners(base, 4);
    write_keys(rw, 1000..1001);
    let mut client = Resp::connect(rw);
    let missing: Vec<String> = (0..200)
        .map(|i| format!("key-{i}"))
        .filter(|key| client.cmd(&["GET", key]) == Value::Bulk(None))
        .collect();
    println!(
        "{} of 200 acknowledged writes did not reach region2 or the witness",
        missing.len()
    );

    // The old primary comes back, writes what it gives up to its report
    // and gives it up, but stops before telling the meta group the count
    // (a fault point, as a crash there would)...
    let env = [("FAILPOINTS", "step-down-before-report=return")];
    for node in 1..=3 {
        processes
            .restarted
            .push(restart_with_env(binary, dir.path(), node, &env));
    }
    let counted = |node: u16| {
        std::fs::read_to_string(dir.path().join(format!("node{node}/lost-writes.log")))
            .is_ok_and(|report| report.contains(" discarded="))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(1..=3).any(counted) {
        assert!(Instant::now() < deadline, "region1 never stepped down");
        std::thread::sleep(Duration::from_millis(100));
    }
    let history = until_ok(rw, &["CAIRN.FAILOVERS"]).text().unwrap();
    assert!(field(&history, "lost_records").contains("unknown"), "{history}");
    // ... so when it starts again, it tells the count from its report.
    for mut child in processes.restarted.drain(..) {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    for node in 1..=3 {
        processes.restarted.push(restart_with(binary, dir.path(), node));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let lost = loop {
        let history = until_ok(rw, &["CAIRN.FAILOVERS"]).text().unwrap();
        let lost = field(&history, "lost_records");
        if !lost.contains("unknown") {
            break lost.parse::<usize>().unwrap();
        }
        assert!(Instant::now() < deadline, "region1 never reported: {history}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut reported: Vec<String> = (1..=3).flat_map(|node| reported_keys(dir.path(), node)).collect();
    reported.sort_by_key(|key| key[4..].parse::<u32>().unwrap());
    assert_eq!(lost, missing.len(), "CAIRN.FAILOVERS counts what was lost");
    // INFO says the same once the node's view of the meta group caught up.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let info = replication_lines(rw, "cairn_failover");
        if info[0].contains(&format!("lost_records={lost}")) && info[0].contains("primary=region2") {
            break;
        }
        assert!(Instant::now() < deadline, "{info:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(reported, missing, "the report lists exactly the writes lost");
    // The old primary then holds what the new one does.
    write_keys(rw, 1001..1002);
    let (_, old_ro) = listeners(base, 1);
    until_value(old_ro, "key-1001", "value-1001", "region1 never resynced");
    let mut old = Resp::connect(old_ro);
    for key in &missing {
        assert_eq!(old.cmd(&["GET", key]), Value::Bulk(None), "{key} was discarded");
    }
}

/// The port of each slot range's master, as `CLUSTER SLOTS` through
/// `addr` lists them (in slot order).
fn masters(addr: SocketAddr) -> Vec<u16> {
    let Value::Array(Some(ranges)) = Resp::connect(addr).cmd(&["CLUSTER", "SLOTS"]) else {
        panic!("CLUSTER SLOTS did not answer an array");
    };
    ranges
        .into_iter()
        .map(|range| match range {
            Value::Array(Some(fields)) => match &fields[2] {
                Value::Array(Some(node)) => match node[1] {
                    Value::Int(port) => u16::try_from(port).unwrap(),
                    ref other => panic!("CLUSTER SLOTS: a port is {other:?}"),
                },
                other => panic!("CLUSTER SLOTS: a node is {other:?}"),
            },
            other => panic!("CLUSTER SLOTS: a range is {other:?}"),
        })
        .collect()
}

/// The `CAIRN.STATUS` block of failover group `group`.
fn group_status(addr: SocketAddr, group: &str) -> String {
    let text = status(addr);
    let block = text
        .split("\n\n")
        .find(|b| b.starts_with(&format!("failover_group:{group}\n")));
    block
        .unwrap_or_else(|| panic!("no group {group} in {text}"))
        .to_string()
}

#[test]
fn t91_failover_groups_of_some_shards_fail_over_on_their_own() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let base = free_base(7);
    let shape = ["--shards", "4", "--manual-failover", "--failover-group", "orders:1,3"];
    let (dev, _) = start_dev("cairn-server", dir.path(), base, &shape);
    let _processes = Processes {
        dev,
        restarted: Vec::new(),
    };
    let (rw, _) = listeners(base, 1);
    write_keys(rw, 0..80);
    let orders = group_status(rw, "orders");
    let default = group_status(rw, "default");
    assert_eq!(
        (field(&orders, "shards"), field(&orders, "primary")),
        ("1,3".into(), "region1".into())
    );
    assert_eq!(
        (field(&default, "shards"), field(&default, "primary")),
        ("0,2".into(), "region1".into())
    );

    // One group moves; the other stays where it was.
    let done = until_ok(rw, &["CAIRN.FAILOVER", "orders", "TO", "region2"])
        .text()
        .unwrap();
    println!("failover of orders: {done}");
    assert_eq!(
        (
            field(&done, "group"),
            field(&done, "epoch"),
            field(&done, "lost_records")
        ),
        ("orders".into(), "1->2".into(), "0".into())
    );
    assert_eq!(field(&done, "handover").split(',').count(), 2, "its two shards: {done}");
    let orders = group_status(rw, "orders");
    let default = group_status(rw, "default");
    assert_eq!(
        (field(&orders, "primary"), field(&orders, "epoch")),
        ("region2".into(), "2".into())
    );
    assert_eq!(
        (field(&default, "primary"), field(&default, "epoch")),
        ("region1".into(), "1".into())
    );
    let region = |port: u16| if port < base + 30 { "region1" } else { "region2" };
    let served: Vec<&str> = masters(rw).into_iter().map(region).collect();
    assert_eq!(served, ["region1", "region2", "region1", "region2"], "by shard");
    assert_keys(rw, 0..80);
    write_keys(rw, 80..160);
    assert_keys(rw, 0..160);
    let info = replication_lines(rw, "cairn_failover_");
    assert!(
        info.iter()
            .any(|l| l.starts_with("cairn_failover_orders:epoch=2,primary=region2"))
            && info
                .iter()
                .any(|l| l.starts_with("cairn_failover_default:epoch=1,primary=region1")),
        "{info:?}"
    );

    // Each failover opens an epoch no group was in before.
    let done = until_ok(rw, &to_region2(false)).text().unwrap();
    assert_eq!(
        (field(&done, "group"), field(&done, "epoch")),
        ("default".into(), "1->3".into())
    );
    let back = until_ok(rw, &["CAIRN.FAILOVER", "orders", "TO", "region1"])
        .text()
        .unwrap();
    assert_eq!(field(&back, "epoch"), "2->4");
    let served: Vec<&str> = masters(rw).into_iter().map(region).collect();
    assert_eq!(served, ["region2", "region1", "region2", "region1"], "by shard");
    write_keys(rw, 160..200);
    assert_keys(rw, 0..200);
    let history = until_ok(rw, &["CAIRN.FAILOVERS"]).text().unwrap();
    let groups: Vec<String> = history.lines().map(|l| field(l, "group")).collect();
    assert_eq!(groups, ["orders", "default", "orders"], "{history}");
    assert!(history.lines().all(|l| field(l, "lost_records") == "0"), "{history}");
}

/// The shard of `key` in a cluster of 4 shards (4096 slots each), as
/// `CLUSTER KEYSLOT` through `addr` places it.
fn shard_of(addr: SocketAddr, key: &str) -> u64 {
    match Resp::connect(addr).cmd(&["CLUSTER", "KEYSLOT", key]) {
        Value::Int(slot) => slot as u64 / 4096,
        other => panic!("CLUSTER KEYSLOT answered {other:?}"),
    }
}

#[test]
fn t92_a_region_lost_moves_only_the_groups_whose_primary_it_was() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let base = free_base(7);
    let shape = [
        "--shards",
        "4",
        "--durability",
        "witness",
        "--failover-grace-ms",
        "3000",
        "--failover-group",
        "orders:1,3:region2",
    ];
    let (dev, _) = start_dev("cairn-server", dir.path(), base, &shape);
    let _processes = Processes {
        dev,
        restarted: Vec::new(),
    };
    let (rw, _) = listeners(base, 1);
    write_keys(rw, 0..100);
    let (orders, default): (Vec<u32>, Vec<u32>) = (100..300).partition(|&i| shard_of(rw, &format!("key-{i}")) % 2 == 1);

    // region2, orders' primary, dies whole.
    for node in 4..=6 {
        kill(dir.path(), node);
    }
    let killed = Instant::now();
    // default's writes go on at once: each is answered OK the first time.
    let mut client = Resp::connect(rw);
    let mut slowest = Duration::ZERO;
    for &i in &default[..50] {
        let sent = Instant::now();
        let answer = client.cmd(&["SET", &format!("key-{i}"), &format!("value-{i}")]);
        assert_eq!(answer, Value::Simple("OK".into()), "key-{i} of default");
        slowest = slowest.max(sent.elapsed());
    }
    println!("default: 50 writes after region2 died, the slowest answered in {slowest:?}");
    // orders' writes go on once it failed over by itself.
    let first = orders[0];
    write_keys(rw, first..first + 1);
    println!(
        "orders: writes went on {:?} after region2 died (grace 3000 ms)",
        killed.elapsed()
    );
    let history = until_ok(rw, &["CAIRN.FAILOVERS"]).text().unwrap();
    println!("{history}");
    assert_eq!(history.lines().count(), 1, "only orders failed over: {history}");
    assert_eq!(
        (field(&history, "group"), field(&history, "kind"), field(&history, "to")),
        ("orders".into(), "automatic".into(), "region1".into())
    );
    let default_status = group_status(rw, "default");
    assert_eq!(
        (field(&default_status, "primary"), field(&default_status, "epoch")),
        ("region1".into(), "1".into())
    );
    assert_keys(rw, 0..100);
    for &i in default[..50].iter().chain(&orders[..1]) {
        assert_keys(rw, i..i + 1);
    }
}

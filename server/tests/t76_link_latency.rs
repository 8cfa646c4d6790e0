//! The link-latency knob of `cairn-server-failpoints`: a request to a node
//! of another region waits the latency injected between regions, so a
//! write through a secondary region's node (forwarded to the primary)
//! takes at least that long; the build users run refuses the knob.

mod fixtures;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use fixtures::{ONE_CLUSTER_AT_A_TIME, Resp, Value, dev_refusal, free_base, start_dev, stop_dev, wait_for_set};

const LATENCY_MS: u64 = 60;

#[test]
fn t76_a_write_through_another_region_waits_the_injected_latency() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let port = free_base(2);
    let latency = LATENCY_MS.to_string();
    let shape = [
        "--regions",
        "2",
        "--zones",
        "1",
        "--shards",
        "1",
        "--region-latency-ms",
        &latency,
    ];
    let (mut dev, _) = start_dev("cairn-server-failpoints", dir.path(), port, &shape);
    let secondary = SocketAddr::from(([127, 0, 0, 1], port + 10));
    wait_for_set(secondary, "warm", "up");
    let mut client = Resp::connect(secondary);
    for i in 0..5 {
        let started = Instant::now();
        assert_eq!(client.cmd(&["SET", "k", &i.to_string()]), Value::Simple("OK".into()));
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(LATENCY_MS),
            "a write forwarded across regions took {took:?}, less than the injected {LATENCY_MS} ms"
        );
    }
    stop_dev(&mut dev);
}

#[test]
fn t77_the_build_users_run_refuses_the_latency_knob() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = dev_refusal(
        &dir.path().join("cluster"),
        &["--regions", "2", "--region-latency-ms", "5"],
    );
    assert!(
        stderr.contains("--region-latency-ms") && stderr.contains("cairn-server-failpoints"),
        "{stderr}"
    );
    assert!(!dir.path().join("cluster").exists(), "nothing written");
}

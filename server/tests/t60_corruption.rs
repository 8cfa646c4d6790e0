//! Corrupted files are detected, named with their offset, and never served:
//! a node falls back to an older valid snapshot where it can, and refuses to
//! start where it cannot.

mod fixtures;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cairn_server::config::RaftOptions;
use fixtures::{Cluster, Value};

fn snapshots(cluster: &Cluster, id: u64) -> Vec<PathBuf> {
    let dir = cluster.node_dir(id).join("snapshots").join("shard-0");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "snap"))
        .collect();
    files.sort();
    files
}

fn flip_middle_byte(path: &PathBuf) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(path, bytes).unwrap();
}

/// Sets `k0`..`k{n-1}` to `v0`..
fn fill(cluster: &Cluster, n: usize) {
    let mut client = cluster.client(1);
    for i in 0..n {
        assert_eq!(
            client.cmd(&["SET", &format!("k{i}"), &format!("v{i}")]),
            Value::Simple("OK".into())
        );
    }
}

/// Sets `k0`..`k{n-1}` to `v0`.. again and again until node 1 keeps
/// `wanted` snapshots: a group takes one once it has applied as many
/// writes since its last as it holds keys.
fn fill_until_snapshots(cluster: &Cluster, n: usize, wanted: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        fill(cluster, n);
        let taken = snapshots(cluster, 1).len();
        let next = Instant::now() + Duration::from_secs(3);
        while snapshots(cluster, 1).len() == taken && Instant::now() < next {
            std::thread::sleep(Duration::from_millis(50));
        }
        if snapshots(cluster, 1).len() >= wanted {
            return;
        }
        assert!(Instant::now() < deadline, "node 1 took no {wanted} snapshots");
    }
}

#[test]
fn t60_corrupt_newest_snapshot_falls_back_to_the_older_one() {
    // Logs kept behind a snapshot outnumber the writes between two, so the
    // older snapshot plus the log still reach the present.
    let mut cluster = Cluster::start(
        1,
        1,
        RaftOptions {
            snapshot_every: 200,
            logs_kept_behind_snapshot: 10_000,
            ..RaftOptions::default()
        },
    );
    fill_until_snapshots(&cluster, 700, 2);
    cluster.stop(1);
    let files = snapshots(&cluster, 1);
    assert!(files.len() >= 2, "two snapshots kept: {files:?}");
    let newest = files.last().unwrap();
    flip_middle_byte(newest);
    cluster.start_node(1);
    cluster.wait_ready(Duration::from_secs(30));
    let log = cluster.log(1);
    assert!(
        log.contains("snapshot unusable") && log.contains(&newest.display().to_string()) && log.contains("offset"),
        "the corrupt file is named in the log"
    );
    let mut client = cluster.client(1);
    for i in 0..700 {
        assert_eq!(client.cmd(&["GET", &format!("k{i}")]).text(), Some(format!("v{i}")));
    }
}

#[test]
fn t61_no_valid_snapshot_and_a_purged_log_refuses_to_start() {
    let mut cluster = Cluster::start(
        1,
        1,
        RaftOptions {
            snapshot_every: 100,
            logs_kept_behind_snapshot: 0,
            ..RaftOptions::default()
        },
    );
    fill_until_snapshots(&cluster, 500, 1);
    cluster.stop(1);
    let files = snapshots(&cluster, 1);
    for file in &files {
        flip_middle_byte(file);
    }
    let started = Instant::now();
    let (ok, stderr) = fixtures::run_server(&[std::path::Path::new("--config"), &cluster.config(1)]);
    assert!(!ok, "a node without a trustworthy state must not start");
    let newest = files.last().unwrap().display().to_string();
    assert!(
        stderr.contains(&newest) && stderr.contains("offset") && stderr.contains("crc32"),
        "the error names the file and the offset: {stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn t62_a_damaged_write_ahead_log_refuses_to_start() {
    let mut cluster = Cluster::start(1, 1, RaftOptions::default());
    fill(&cluster, 2000);
    cluster.kill(1);
    let store = cluster.node_dir(1).join("store");
    let wal = std::fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .expect("the write-ahead log holds the writes");
    flip_middle_byte(&wal);
    let (ok, stderr) = fixtures::run_server(&[std::path::Path::new("--config"), &cluster.config(1)]);
    assert!(!ok, "a node whose log lost acknowledged records must not start");
    assert!(
        stderr.contains("Corruption") && stderr.contains(&store.display().to_string()),
        "the error names the store and the damage: {stderr}"
    );
}

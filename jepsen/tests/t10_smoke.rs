//! The CI smoke matrix: every workload through every path it supports
//! (cairn-client, its batches, the Redis protocol) once under kill, pause
//! and partition (partitions where the run can make network namespaces),
//! against a real cluster; and proof that the checker is not vacuous: a
//! stale read planted in a real history is caught, and so is a server with
//! its linearizer switched off.

use std::path::{Path, PathBuf};
use std::process::Command;

use cairn_jepsen::checker;
use cairn_jepsen::history::{self, Kind, Status};
use cairn_jepsen::region::Discarded;

const JEPSEN: &str = env!("CARGO_BIN_EXE_cairn-jepsen");

fn require(binary: &str) -> PathBuf {
    let path = Path::new(JEPSEN).with_file_name(binary);
    assert!(
        path.exists(),
        "{} missing: run scripts/build-jepsen first (scripts/test does)",
        path.display()
    );
    path
}

fn run(workload: &str, out: &Path, extra: &[&str]) -> (bool, String) {
    let output = Command::new(JEPSEN)
        .args([
            "run",
            "--workload",
            workload,
            "--nemesis",
            "kill,pause,partition",
            "--time",
            "10",
        ])
        .args(extra)
        .args(["--nemesis-interval", "2", "--seed", "7", "--clients", "6"])
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn t10_every_workload_passes_under_kill_pause_and_partition() {
    require("cairn-server");
    let dir = tempfile::tempdir().unwrap();
    for (workload, via) in [
        ("register", "client"),
        ("set", "resp"),
        ("set", "client"),
        ("set", "batch"),
        ("counter", "client"),
        ("counter", "batch"),
        ("counter", "resp"),
    ] {
        let name = if via == "client" {
            workload.to_string()
        } else {
            format!("{workload}-{via}")
        };
        let out = dir.path().join(&name);
        let (passed, summary) = run(workload, &out, &["--via", via]);
        println!("{name}:\n{summary}");
        assert!(passed, "{name} failed:\n{summary}");
        assert!(summary.contains("faults injected: 2"), "{summary}");
        for file in ["history.jsonl", "summary.txt", "report.html"] {
            assert!(out.join(file).exists(), "{file} is written");
        }
        assert!(out.join("cluster/node1/log").exists(), "node logs are kept");
    }

    // Plant a stale read in the real register history: a read that began
    // after a second write had returned now sees the first write's value.
    let path = dir.path().join("register/history.jsonl");
    let mut ops = history::load(&path).unwrap();
    assert!(checker::check_all(&ops, &Discarded::default()).valid());
    let ok_writes: Vec<_> = ops
        .iter()
        .filter(|o| o.op == Kind::Write && o.status == Status::Ok)
        .cloned()
        .collect();
    let planted = ops.iter().position(|r| {
        r.op == Kind::Read
            && r.status == Status::Ok
            && ok_writes.iter().any(|w2| {
                w2.key == r.key
                    && w2.ret < r.call
                    && r.result.as_ref().and_then(|v| v.as_str()) == w2.value.as_deref()
                    && ok_writes.iter().any(|w1| w1.key == r.key && w1.ret < w2.call)
            })
    });
    let i = planted.expect("the history has a read after two sequential writes");
    let read = ops[i].clone();
    let second = ok_writes
        .iter()
        .find(|w2| w2.key == read.key && w2.value.as_deref() == read.result.as_ref().and_then(|v| v.as_str()))
        .unwrap();
    let first = ok_writes
        .iter()
        .find(|w1| w1.key == read.key && w1.ret < second.call)
        .unwrap();
    ops[i].result = Some(serde_json::json!(first.value.clone().unwrap()));
    let tampered = dir.path().join("tampered.jsonl");
    history::save(&tampered, &ops).unwrap();
    let output = Command::new(JEPSEN).arg("check").arg(&tampered).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "a stale read must fail the check:\n{stdout}");
    assert!(stdout.contains(&format!("key {:?}", read.key)), "{stdout}");
}

#[test]
fn t20_a_server_that_serves_stale_reads_is_caught() {
    require("cairn-server-failpoints");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bug");
    // Through the raw gRPC service of every node in turn, so that reads
    // reach followers (cairn-client would read from leaders only).
    let (passed, summary) = run("register", &out, &["--inject-bug", "stale-read", "--via", "grpc"]);
    println!("{summary}");
    assert!(!passed, "reads without the linearizer must fail the check:\n{summary}");
    assert!(summary.contains("not linearizable"), "{summary}");
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        report.contains("No linearization"),
        "a failing run draws the failing keys"
    );
}

//! `cairn-server dev`: a whole local cluster from one command, with the
//! files and the behaviour its users rely on.

mod fixtures;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fixtures::{Resp, Value, free_port, server_binary, signal};

/// A first port whose node ports (+0, +2, +10, +12, +20, +22) are all free.
fn free_base() -> u16 {
    loop {
        let base = free_port();
        let all_free = [0, 2, 10, 12, 20, 22]
            .iter()
            .all(|off| std::net::TcpListener::bind(("127.0.0.1", base + off)).is_ok());
        if all_free {
            return base;
        }
    }
}

fn start_dev(dir: &std::path::Path, port: u16) -> (std::process::Child, Vec<String>) {
    let mut child = Command::new(server_binary("cairn-server"))
        .args(["dev", "--dir"])
        .arg(dir)
        .args(["--port", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    while !lines.last().is_some_and(|l: &String| l.starts_with("try:")) {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "dev exited early: {lines:?}");
        lines.push(line.trim_end().to_string());
    }
    // Keep draining stdout so the parent never blocks on a full pipe.
    std::thread::spawn(move || for _ in out.lines() {});
    (child, lines)
}

fn wait_for_set(addr: SocketAddr, key: &str, value: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ok = Resp::try_connect(addr)
            .and_then(|mut c| c.try_cmd(&["SET", key, value]).ok())
            .is_some_and(|v| v == Value::Simple("OK".into()));
        if ok {
            return;
        }
        assert!(Instant::now() < deadline, "dev cluster not serving on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn t70_dev_cluster_starts_stops_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_base();
    let (mut dev, table) = start_dev(dir.path(), port);
    let table = table.join("\n");
    for node in 1..=3 {
        assert!(
            table.contains(&format!("127.0.0.1:{}", port + 10 * (node - 1))),
            "{table}"
        );
        assert!(dir.path().join(format!("node{node}/node.toml")).exists());
    }
    assert!(dir.path().join("topology.toml").exists());
    let first = SocketAddr::from(([127, 0, 0, 1], port));
    wait_for_set(first, "dev-key", "kept");
    let pids: Vec<u32> = (1..=3)
        .map(|n| {
            let text = std::fs::read_to_string(dir.path().join(format!("node{n}/pid"))).unwrap();
            text.trim().parse().unwrap()
        })
        .collect();

    // Ctrl-C stops every child.
    signal(dev.id(), "INT");
    assert!(dev.wait().unwrap().success());
    for pid in &pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "node process {pid} still running"
        );
    }

    // Same directory again: same cluster, same data.
    let (mut dev, _) = start_dev(dir.path(), port);
    wait_for_set(first, "another", "1");
    let mut client = Resp::connect(SocketAddr::from(([127, 0, 0, 1], port + 20)));
    assert_eq!(client.cmd(&["GET", "dev-key"]).text().as_deref(), Some("kept"));
    signal(dev.id(), "INT");
    assert!(dev.wait().unwrap().success());

    // Asking for a different shape on an existing directory is refused.
    let out = Command::new(server_binary("cairn-server"))
        .args(["dev", "--dir"])
        .arg(dir.path())
        .args(["--zones", "5"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already holds a cluster of 3 zones"), "{stderr}");
}

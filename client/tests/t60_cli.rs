//! `cairn-cli` against a real cluster: redis-cli's output, `--raw`, cluster
//! redirections, the REPL on piped input, `admin status`, and clear errors.

#[path = "../../server/tests/fixtures/mod.rs"]
mod fixtures;

use std::io::Write;
use std::process::{Command, Stdio};

use cairn_server::config::RaftOptions;
use fixtures::Cluster;

const CLI: &str = env!("CARGO_BIN_EXE_cairn-cli");

fn cli(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(CLI).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn t60_cli_speaks_like_redis_cli() {
    let cluster = Cluster::start(3, 4, RaftOptions::default());
    let node = cluster.topology.node(1).unwrap();
    let port = node.resp_addr.port().to_string();
    let p = |args: &[&str]| {
        let mut all = vec!["-p", port.as_str()];
        all.extend_from_slice(args);
        cli(&all)
    };
    assert_eq!(p(&["SET", "greeting", "hello world"]).1, "OK\n");
    assert_eq!(p(&["GET", "greeting"]).1, "\"hello world\"\n");
    assert_eq!(p(&["--raw", "GET", "greeting"]).1, "hello world\n");
    assert_eq!(p(&["INCR", "visits"]).1, "(integer) 1\n");
    assert_eq!(p(&["GET", "nothing"]).1, "(nil)\n");
    assert_eq!(
        p(&["-r", "3", "INCR", "visits"]).1,
        "(integer) 2\n(integer) 3\n(integer) 4\n"
    );
    assert!(
        p(&["INCR", "greeting"])
            .1
            .starts_with("(error) ERR value is not an integer")
    );
    p(&["HSET", "h", "a", "1", "b", "2"]);
    assert_eq!(p(&["HGETALL", "h"]).1, "1) \"a\"\n2) \"1\"\n3) \"b\"\n4) \"2\"\n");

    // Cluster mode follows MOVED from a node that does not lead the key.
    let leaders = cluster.leaders(1);
    let key = cluster
        .key_per_shard()
        .into_iter()
        .enumerate()
        .find(|(shard, _)| leaders[&(*shard as u64)] != 1);
    if let Some((_, key)) = key {
        p(&["SET", &key, "v"]);
        let (ok, out, _) = p(&["-c", "GET", &key]);
        assert!(ok);
        assert!(out.starts_with("-> Redirected to slot ["), "{out}");
        assert!(out.ends_with("\"v\"\n"), "{out}");
    }

    // The REPL reads piped lines too.
    let mut child = Command::new(CLI)
        .args(["-p", &port])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"set 'a key' \"two\\nlines\"\nget 'a key'\nquit\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("OK") && stdout.contains("\"two\\nlines\""), "{stdout}");

    let grpc = node.grpc_addr.port().to_string();
    let (ok, out, err) = p(&["--grpc-port", &grpc, "admin", "status"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("shard") && out.lines().count() >= 1 + 1 + 3 + 1 + 4,
        "{out}"
    );

    let (ok, _, err) = cli(&["-p", "1", "PING"]);
    assert!(
        !ok && err.contains("Could not connect to Cairn at 127.0.0.1:1"),
        "{err}"
    );
    let (ok, _, err) = p(&["--tls", "PING"]);
    assert!(!ok && err.contains("--tls is not supported"), "{err}");
}

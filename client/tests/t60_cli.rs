//! `cairn-cli` against a real cluster: redis-cli's output (compared with
//! redis-cli itself), bare output when piped, `-x`, `-e`, `--pass`,
//! cluster redirections, the REPL on piped input, `admin status`, TLS
//! (against a TLS redis-server, as Cairn's listener has no TLS yet), and
//! clear errors.

#[path = "../../server/tests/fixtures/mod.rs"]
mod fixtures;

use std::io::Write;
use std::path::Path;
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
    // Piped, output is bare, as redis-cli's is; --no-raw keeps the
    // terminal's form.
    assert_eq!(p(&["GET", "greeting"]).1, "hello world\n");
    assert_eq!(p(&["--no-raw", "GET", "greeting"]).1, "\"hello world\"\n");
    assert_eq!(p(&["--no-raw", "INCR", "visits"]).1, "(integer) 1\n");
    assert_eq!(p(&["--no-raw", "GET", "nothing"]).1, "(nil)\n");
    assert_eq!(
        p(&["--no-raw", "-r", "3", "INCR", "visits"]).1,
        "(integer) 2\n(integer) 3\n(integer) 4\n"
    );
    assert!(
        p(&["--no-raw", "INCR", "greeting"])
            .1
            .starts_with("(error) ERR value is not an integer")
    );
    p(&["HSET", "h", "a", "1", "b", "2"]);
    assert_eq!(
        p(&["--no-raw", "HGETALL", "h"]).1,
        "1) \"a\"\n2) \"1\"\n3) \"b\"\n4) \"2\"\n"
    );
    // The same text as redis-cli's, piped and not, for the same commands.
    for args in [
        &["GET", "greeting"][..],
        &["HGETALL", "h"],
        &["INCR", "greeting"],
        &["GET", "nothing"],
        &["--no-raw", "HGETALL", "h"],
        &["--no-raw", "INCR", "greeting"],
        &["--raw", "GET", "visits"],
        &["--no-raw", "GET", "visits"],
    ] {
        let mut all = vec!["-p", port.as_str()];
        all.extend_from_slice(args);
        let theirs = Command::new("redis-cli").args(&all).output().unwrap();
        assert_eq!(cli(&all).1, String::from_utf8_lossy(&theirs.stdout), "{args:?}");
    }
    // -x reads the last argument from stdin; -e turns an error into a
    // failing exit status; --user/--pass log in.
    let mut child = Command::new(CLI)
        .args(["-p", &port, "-x", "SET", "from-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"line one\nline two\n").unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    assert_eq!(p(&["STRLEN", "from-stdin"]).1, "18\n");
    // Values are bytes: what -x stores, a piped GET gives back exactly.
    let every_byte: Vec<u8> = (0..=255u8).collect();
    let mut child = Command::new(CLI)
        .args(["-p", &port, "-x", "SET", "binary"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&every_byte).unwrap();
    assert!(child.wait().unwrap().success());
    let out = Command::new(CLI).args(["-p", &port, "GET", "binary"]).output().unwrap();
    assert_eq!(out.stdout, [&every_byte[..], b"\n"].concat());
    assert!(p(&["INCR", "greeting"]).0, "without -e an error still exits 0");
    assert!(!p(&["-e", "INCR", "greeting"]).0);
    assert_eq!(p(&["--user", "default", "--pass", "any", "PING"]).1, "PONG\n");

    // Cluster mode follows MOVED from a node that does not lead the key.
    let leaders = cluster.leaders(1);
    let key = cluster
        .key_per_shard()
        .into_iter()
        .enumerate()
        .find(|(shard, _)| leaders[&(*shard as u64)] != 1);
    if let Some((_, key)) = key {
        p(&["SET", &key, "v"]);
        // (redis-cli names the redirection only on a terminal.)
        let (ok, out, _) = p(&["-c", "GET", &key]);
        assert!(ok);
        assert_eq!(out, "v\n");
        let theirs = Command::new("redis-cli")
            .args(["-c", "-p", &port, "GET", &key])
            .output()
            .unwrap();
        assert_eq!(out, String::from_utf8_lossy(&theirs.stdout));
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
        .write_all(b"set 'a key' \"two\\nlines\"\nget 'a key'\nhelp get\nquit\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("OK\ntwo\nlines\n"),
        "bare output, as redis-cli's when piped: {stdout}"
    );
    assert!(stdout.contains("summary: Get the value of a key"), "help get: {stdout}");

    let grpc = node.grpc_addr.port().to_string();
    let (ok, out, err) = p(&["--grpc-port", &grpc, "admin", "status"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("shard") && out.lines().count() >= 1 + 1 + 3 + 1 + 4,
        "{out}"
    );
    assert!(
        out.contains("role") && out.contains("primary"),
        "each node's region role: {out}"
    );

    let (ok, _, err) = cli(&["-p", "1", "PING"]);
    assert!(
        !ok && err.contains("Could not connect to Cairn at 127.0.0.1:1"),
        "{err}"
    );
    let (ok, _, err) = p(&["--tls", "--cacert", "/nonexistent.pem", "PING"]);
    assert!(!ok && err.contains("--cacert /nonexistent.pem"), "{err}");
}

/// A CA and a certificate for `localhost`/127.0.0.1 signed by it, made
/// with openssl in `dir`.
fn certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stderr(Stdio::null())
            .status()
            .expect("openssl is installed (scripts/setup)");
        assert!(status.success(), "openssl {args:?}");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "1",
        "-subj",
        "/CN=cairn-test-ca",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
    ]);
}

#[test]
fn t61_cli_speaks_tls() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let port = fixtures::free_port().to_string();
    let file = |name: &str| dir.path().join(name).display().to_string();
    let mut redis = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--tls-port",
            &port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args([
            "--tls-cert-file",
            &file("server.crt"),
            "--tls-key-file",
            &file("server.key"),
        ])
        .args(["--tls-ca-cert-file", &file("ca.crt"), "--tls-auth-clients", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server is installed (scripts/setup)");
    let cacert = file("ca.crt");
    let tls = |host: &str, args: &[&str]| {
        let mut all = vec!["-h", host, "-p", port.as_str(), "--tls", "--cacert", cacert.as_str()];
        all.extend_from_slice(args);
        cli(&all)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !tls("localhost", &["PING"]).0 {
        assert!(std::time::Instant::now() < deadline, "no TLS PING answer");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(tls("localhost", &["SET", "k", "over tls"]).1, "OK\n");
    assert_eq!(tls("127.0.0.1", &["GET", "k"]).1, "over tls\n");
    // Without the CA the server's certificate is not trusted.
    let (ok, _, err) = cli(&["-h", "localhost", "-p", &port, "--tls", "PING"]);
    assert!(!ok && err.contains("Could not connect"), "{err}");
    let _ = redis.kill();
    let _ = redis.wait();
}

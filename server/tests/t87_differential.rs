//! Differential testing against a real Redis: seeded random sequences of
//! commands over strings, hashes, deadlines and malformed arguments, sent
//! to `redis-server` and to a Cairn cluster, replies compared byte for byte
//! in RESP2 and in RESP3, once command by command and once in pipelines
//! of random depth (Cairn runs pipelined requests on distinct keys side by
//! side; the replies must still be Redis's, in order).
//!
//! Keys carry one hash tag so multi-key commands stay in one shard (across
//! shards Cairn answers `-CROSSSLOT` by design, see docs/compatibility.md).
//! Deadlines are absolute and far away, and only read back as absolute
//! times (`EXPIRETIME`), so the two servers' clocks never show in a reply.
//! A failure prints the seed and the commands up to the first difference;
//! `CAIRN_DIFF_SEED=n` replays one seed.
//!
//! Needs `redis-server` (installed by `scripts/setup`).

mod fixtures;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use cairn_server::config::RaftOptions;
use fixtures::{Cluster, Redis, Resp};

/// Commands per seed and protocol.
const STEPS: usize = 400;

const KEYS: &[&str] = &["{d}a", "{d}b", "{d}c", "{d}h"];
const FIELDS: &[&str] = &["f", "g", "n"];
const VALUES: &[&str] = &[
    "",
    "v",
    "10",
    "-3",
    "0",
    "3.5",
    "abc",
    " 1",
    "1e3",
    "9223372036854775807",
    "-9223372036854775808",
];
const INTEGERS: &[&str] = &[
    "1",
    "-1",
    "0",
    "100",
    "9223372036854775807",
    "-9223372036854775808",
    "x",
    "1.5",
    "",
];
const FLOATS: &[&str] = &[
    "0.1", "-0.25", "1e3", "1.5", "abc", "inf", "-inf", "5.0e-3", "", "1e", "3",
];
/// Far-future deadlines (seconds), so nothing expires while a run lasts.
const DEADLINES: &[&str] = &["4102444800", "4102444900", "4102445000"];
const OFFSETS: &[&str] = &["0", "1", "3", "-1", "-3", "100", "x"];

/// One random command: a name and its arguments.
fn command(rng: &mut StdRng) -> Vec<String> {
    let which = rng.random_range(0..44);
    let mut pick = |list: &[&str]| list.choose(rng).expect("not empty").to_string();
    let key = pick(KEYS);
    let other = pick(KEYS);
    let field = pick(FIELDS);
    let value = pick(VALUES);
    let integer = pick(INTEGERS);
    let float = pick(FLOATS);
    let deadline = pick(DEADLINES);
    let (from, to) = (pick(OFFSETS), pick(OFFSETS));
    let set_option = pick(&["", "NX", "XX", "GET", "KEEPTTL", "EXAT", "NX GET", "XX KEEPTTL", "EX"]);
    let expire_option = pick(&["", "NX", "XX", "GT", "LT", "NX XX", "BOGUS"]);
    let text = match which {
        0 => format!("SET {key} {value} {set_option}"),
        1 => format!("SET {key} {value} EXAT {deadline}"),
        2 => format!("GET {key}"),
        3 => format!("GETDEL {key}"),
        4 => format!("GETEX {key} EXAT {deadline}"),
        5 => format!("GETEX {key} PERSIST"),
        6 => format!("GETSET {key} {value}"),
        7 => format!("SETNX {key} {value}"),
        8 => format!("APPEND {key} {value}"),
        9 => format!("STRLEN {key}"),
        10 => format!("GETRANGE {key} {from} {to}"),
        11 => format!("SETRANGE {key} {from} {value}"),
        12 => format!("INCR {key}"),
        13 => format!("DECRBY {key} {integer}"),
        14 => format!("INCRBY {key} {integer}"),
        15 => format!("INCRBYFLOAT {key} {float}"),
        16 => format!("MGET {key} {other}"),
        17 => format!("MSET {key} {value} {other} {integer}"),
        18 => format!("MSETNX {key} {value} {other} {value}"),
        19 => format!("DEL {key} {other}"),
        20 => format!("EXISTS {key} {other} {key}"),
        21 => format!("TYPE {key}"),
        22 => format!("RENAME {key} {other}"),
        23 => format!("RENAMENX {key} {other}"),
        24 => format!("COPY {key} {other} {}", pick(&["", "REPLACE"])),
        25 => format!("EXPIREAT {key} {deadline} {expire_option}"),
        26 => format!("PEXPIREAT {key} {deadline}000 {expire_option}"),
        27 => format!("EXPIRETIME {key}"),
        28 => format!("PEXPIRETIME {key}"),
        29 => format!("PERSIST {key}"),
        30 => format!("HSET {key} {field} {value} {} {integer}", pick(FIELDS)),
        31 => format!("HSETNX {key} {field} {value}"),
        32 => format!("HGET {key} {field}"),
        33 => format!("HMGET {key} {field} {}", pick(FIELDS)),
        34 => format!("HDEL {key} {field}"),
        35 => format!("HEXISTS {key} {field}"),
        36 => format!("HLEN {key}"),
        37 => format!("HSTRLEN {key} {field}"),
        38 => format!("{} {key}", pick(&["HKEYS", "HVALS", "HGETALL"])),
        39 => format!("HINCRBY {key} {field} {integer}"),
        40 => format!("HINCRBYFLOAT {key} {field} {float}"),
        41 => format!("EXPIREAT {key} 1"),
        42 => pick(&[
            "GET",
            "SET k",
            "HSET k f",
            "INCRBY k",
            "EXPIREAT",
            "GETEX k EX",
            "HGETALL",
        ]),
        _ => format!("SUBSTR {key} {from} {to}"),
    };
    text.split(' ')
        .filter(|word| !word.is_empty())
        .map(str::to_string)
        .collect()
}

/// Pipelines are at most this deep.
const MAX_DEPTH: usize = 24;

/// Runs one seed's sequence on both, in `protocol` (2 or 3), sent in
/// pipelines of random depth up to `max_depth` (1: one command at a time),
/// and fails at the first reply that differs in any byte.
fn compare(redis: &mut Resp, cairn: &mut Resp, seed: u64, protocol: &str, max_depth: usize) {
    for client in [&mut *redis, &mut *cairn] {
        client.raw_cmd(&["HELLO", protocol]);
        client.raw_cmd(&["FLUSHALL"]);
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let commands: Vec<Vec<String>> = (0..STEPS).map(|_| command(&mut rng)).collect();
    let mut sent = Vec::new();
    let mut rest = &commands[..];
    while !rest.is_empty() {
        let depth = rng.random_range(1..=max_depth).min(rest.len());
        let (batch, next) = rest.split_at(depth);
        rest = next;
        let batch: Vec<Vec<&str>> = batch
            .iter()
            .map(|args| args.iter().map(String::as_str).collect())
            .collect();
        let expected = redis.raw_pipeline(&batch);
        let got = cairn.raw_pipeline(&batch);
        for ((args, got), expected) in batch.iter().zip(got).zip(expected) {
            sent.push(args.join(" "));
            assert!(
                got == expected,
                "seed {seed}, RESP{protocol}, pipelines up to {max_depth} deep: after\n  {}\n\
                 Cairn answered {:?}\nRedis answered {:?}",
                sent.join("\n  "),
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&expected),
            );
        }
    }
}

#[test]
fn t87_random_sequences_answer_byte_for_byte_as_redis_does() {
    let seeds: Vec<u64> = match std::env::var("CAIRN_DIFF_SEED") {
        Ok(seed) => vec![seed.parse().expect("CAIRN_DIFF_SEED is a number")],
        Err(_) => (1..=8).collect(),
    };
    let redis = Redis::start();
    let cluster = Cluster::start(3, 4, RaftOptions::default());
    let (mut r, mut c) = (redis.client(), cluster.client(2));
    for seed in seeds {
        for protocol in ["2", "3"] {
            for max_depth in [1, MAX_DEPTH] {
                compare(&mut r, &mut c, seed, protocol, max_depth);
            }
        }
    }
}

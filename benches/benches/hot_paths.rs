//! Micro-benchmarks of the paths every request takes: framing a RESP
//! request, encoding a reply, hashing a key to its slot, applying a write to
//! the keyspace, and appending a batch of entries to the Raft log (with and
//! without waiting for the fsync); and of encoding a shard's snapshot,
//! which that shard's writes wait for.
//!
//! Run with `cargo bench -p cairn-bench --bench hot_paths`; the figures are
//! in BENCHMARKS.md. Keys are 16 bytes and values 64, as in `cairn-bench
//! compare`.

use std::hint::black_box;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use openraft::vote::RaftLeaderIdExt;

use cairn_proto::resp::{Limits, parse_request};
use cairn_proto::slot::key_slot;
use cairn_server::config::Fsync;
use cairn_server::keyspace::{Keyspace, SetCondition, Write, WriteOp};
use cairn_server::raft::log_store::LogStore;
use cairn_server::raft::snapshot_file::{self, Contents};
use cairn_server::raft::typ::{Entry, IoFlushed, LogId, SnapshotMeta, TypeConfig};
use cairn_server::resp::frame::{Frame, Protocol};
use cairn_server::storage::{GroupCommit, RocksStorage, Storage};
use openraft::storage::RaftLogStorage;
use openraft::type_config::TypeConfigExt;

/// Requests in one pipelined read.
const PIPELINE: usize = 16;

fn key(i: usize) -> Bytes {
    Bytes::from(format!("key:{i:012}"))
}

fn value() -> Bytes {
    Bytes::from(vec![b'v'; 64])
}

fn set(i: usize) -> Write {
    Write::new(WriteOp::Set {
        key: key(i),
        value: value(),
        expire_at_ms: None,
        condition: SetCondition::Always,
        keep_ttl: false,
        get: false,
    })
}

fn resp(c: &mut Criterion) {
    let mut wire = Vec::new();
    for i in 0..PIPELINE {
        let key = key(i);
        wire.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$16\r\n");
        wire.extend_from_slice(&key);
        wire.extend_from_slice(b"\r\n$64\r\n");
        wire.extend_from_slice(&value());
        wire.extend_from_slice(b"\r\n");
    }
    let limits = Limits::default();
    let mut group = c.benchmark_group("resp");
    group.throughput(Throughput::Elements(PIPELINE as u64));
    group.bench_function("parse 16 pipelined SETs", |b| {
        b.iter_batched(
            || BytesMut::from(&wire[..]),
            |mut input| {
                // The buffer ends after the last request: `Incomplete`.
                while let Ok(Some(args)) = parse_request(&mut input, &limits) {
                    black_box(args);
                }
                assert!(input.is_empty(), "every request parsed");
            },
            BatchSize::SmallInput,
        )
    });
    let reply = Frame::bulk(value());
    group.bench_function("encode 16 bulk replies", |b| {
        let mut output = BytesMut::with_capacity(4096);
        b.iter(|| {
            output.clear();
            for _ in 0..PIPELINE {
                reply.encode(Protocol::Resp2, &mut output);
            }
            black_box(&output);
        })
    });
    group.finish();
}

fn slots(c: &mut Criterion) {
    let keys: Vec<Bytes> = (0..1024).map(key).collect();
    let mut group = c.benchmark_group("slot");
    group.throughput(Throughput::Elements(keys.len() as u64));
    group.bench_function("key_slot of 1024 keys", |b| {
        b.iter(|| keys.iter().map(|k| u32::from(key_slot(k))).sum::<u32>())
    });
    group.finish();
}

fn apply(c: &mut Criterion) {
    const WRITES: usize = 1024;
    let writes: Vec<Write> = (0..WRITES).map(set).collect();
    let mut group = c.benchmark_group("apply");
    group.throughput(Throughput::Elements(WRITES as u64));
    group.bench_function("1024 SETs to new keys", |b| {
        b.iter_batched(
            Keyspace::default,
            |mut keyspace| {
                for write in &writes {
                    black_box(keyspace.apply(write));
                }
                keyspace
            },
            BatchSize::LargeInput,
        )
    });
    let mut full = Keyspace::default();
    for write in &writes {
        full.apply(write);
    }
    group.bench_function("1024 SETs overwriting", |b| {
        b.iter(|| {
            for write in &writes {
                black_box(full.apply(write));
            }
        })
    });
    group.finish();
}

fn log_append(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let storage: Arc<dyn Storage> = Arc::new(RocksStorage::open(dir.path()).expect("store"));
    let commit = GroupCommit::start(&storage).expect("committer");
    let leader = <openraft::alias::LeaderIdOf<TypeConfig> as RaftLeaderIdExt>::new_committed(1, 1);
    let mut group = c.benchmark_group("log_append");
    for (name, fsync) in [("no fsync", Fsync::Never), ("fsynced", Fsync::Always)] {
        for batch in [1usize, 64] {
            let log = LogStore::new(storage.clone(), 1, fsync, commit.clone());
            let mut next = 1u64;
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_function(format!("{batch} SET entries, {name}"), |b| {
                b.to_async(&runtime).iter(|| {
                    let entries: Vec<Entry> = (0..batch)
                        .map(|i| Entry {
                            log_id: LogId::new(leader, next + i as u64),
                            payload: openraft::EntryPayload::Normal(set(i)),
                        })
                        .collect();
                    next += batch as u64;
                    let mut log = log.clone();
                    async move {
                        let (done, flushed) = TypeConfig::oneshot();
                        log.append(entries, IoFlushed::signal(done)).await.expect("append");
                        flushed.await.expect("flushed").expect("durable");
                    }
                })
            });
        }
    }
    group.finish();
}

fn snapshot(c: &mut Criterion) {
    const KEYS: usize = 250_000;
    let mut contents = Contents::default();
    for i in 0..KEYS {
        contents.keyspace.apply(&set(i));
    }
    let view = contents.view();
    let meta = SnapshotMeta::default();
    let mut group = c.benchmark_group("snapshot");
    group.sample_size(10);
    group.throughput(Throughput::Elements(KEYS as u64));
    group.bench_function("encode 250,000 keys", |b| {
        b.iter(|| black_box(snapshot_file::encode(&meta, view).expect("encoded")))
    });
    group.finish();
}

criterion_group!(benches, resp, slots, apply, log_append, snapshot);
criterion_main!(benches);

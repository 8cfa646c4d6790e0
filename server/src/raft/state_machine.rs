//! The Raft state machine of one shard: the in-memory keyspace plus its
//! snapshot files.
//!
//! Applied state lives in memory ([`Applied`]) behind a read-write lock that
//! the shard layer reads from (reads never touch disk). Durability comes
//! from the Raft log and from snapshots: on restart openraft installs the
//! newest valid snapshot and re-applies the committed log tail on top.
//!
//! A snapshot is encoded under the state's read lock, off the runtime's
//! threads: reads go on meanwhile, and the group's applies wait for it on
//! an asynchronous gate, without holding a thread. A thread blocked on the
//! write lock would also hold up every read that came after it (the lock
//! lets a waiting writer go first), and with it every connection that
//! thread serves. When a group takes a snapshot is decided by
//! [`crate::compaction`], from the writes and items this state counts.
//!
//! Snapshot files live in the shard's own directory, named by the index
//! they cover. The two newest are kept: if the newest fails its checksums
//! (the error names file and offset), the older one is tried; if none is
//! usable the group refuses to start rather than serve wrong data.
//!
//! # Correctness
//!
//! Apply is deterministic: it depends only on the entry and the keyspace
//! (see [`crate::keyspace`]); no clock, no randomness, no I/O. Every client
//! write applied gets the shard's next gseq, and a group that ships to other
//! regions keeps it as a record of its cross-region log; a secondary
//! region's group applies such records, shipped to it as entries of its own
//! log, in gseq order (see [`crate::xlog`]).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use futures::{Stream, TryStreamExt};
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use tokio::sync::Mutex as Gate;

use crate::acl::Users;
use crate::error::{Error, Result};
use crate::keyspace::{Keyspace, KvError, Reply, Write, WriteOp};
use crate::meta::{Meta, MetaAnswer};
use crate::raft::snapshot_file::{self, Contents, SnapshotFile, Target, View};
use crate::raft::typ::{LogId, Snapshot, SnapshotMeta, StoredMembership, TypeConfig};
use crate::sessions::Sessions;
use crate::wire;
use crate::xlog::{Accept, Record, Stance, Xlog};

/// How many snapshot files a shard keeps.
const SNAPSHOTS_KEPT: usize = 2;

/// A shard's applied state.
#[derive(Debug, Default)]
pub struct Applied {
    /// The keys.
    pub keyspace: Keyspace,
    /// The clients' sessions (exactly-once writes).
    pub sessions: Sessions,
    /// The users ([`crate::acl::ACL_SHARD`] only; empty elsewhere).
    pub users: Users,
    /// The shard's cross-region log.
    pub xlog: Xlog,
    /// The failover group and its history ([`crate::meta::META_GROUP`]
    /// only; empty elsewhere).
    pub meta: Meta,
    /// The last log entry applied.
    pub last_applied: Option<LogId>,
    /// The last membership applied.
    pub membership: StoredMembership,
    /// Client writes applied since the process started (those the log
    /// replays at a start count again).
    pub writes: u64,
    /// What `writes` was when the newest snapshot was taken or installed.
    pub writes_at_snapshot: AtomicU64,
    /// The items (see [`Applied::snapshot_taken`]) the newest snapshot
    /// taken or installed holds.
    pub items_at_snapshot: AtomicU64,
}

impl Applied {
    /// Client writes applied since the newest snapshot was taken or
    /// installed.
    pub fn writes_since_snapshot(&self) -> u64 {
        self.writes
            .saturating_sub(self.writes_at_snapshot.load(Ordering::Relaxed))
    }

    /// What a snapshot of this state holds, borrowed.
    pub fn view(&self) -> View<'_> {
        View {
            keyspace: &self.keyspace,
            sessions: &self.sessions,
            users: &self.users,
            xlog: &self.xlog,
            meta: &self.meta,
        }
    }

    /// Records that a snapshot of this state was taken or installed, its
    /// keyspace holding `key_items` ([`Keyspace::items`], a walk of every
    /// key, which an install counts before it takes the write lock).
    fn snapshot_taken(&self, key_items: usize) {
        self.writes_at_snapshot.store(self.writes, Ordering::Relaxed);
        let items = key_items + self.xlog.window().len();
        self.items_at_snapshot.store(items as u64, Ordering::Relaxed);
    }
}

/// The newest valid snapshot file, and its contents while it has been read
/// (verified) but not yet installed.
type CurrentSnapshot = (PathBuf, Option<Contents>);

/// The shard's state machine handle; clones share the same state.
#[derive(Clone)]
pub struct StateMachine {
    applied: Arc<RwLock<Applied>>,
    dir: PathBuf,
    /// The newest snapshot known to be complete and valid, with its contents
    /// when it was just verified and not yet installed (saves a second read
    /// at start-up).
    current: Arc<Mutex<Option<CurrentSnapshot>>>,
    /// Held while a snapshot is encoded, and by each apply: an apply
    /// waits for an encoding here, asynchronously, never on the lock.
    gate: Arc<Gate<()>>,
}

impl StateMachine {
    /// A state machine whose snapshots live in `dir` (created if missing),
    /// keeping its applied client writes as cross-region log records when
    /// `keeps_xlog` (a cluster of several regions), and taking client
    /// writes as `stance` says until its log or a snapshot says otherwise.
    pub fn open(dir: PathBuf, keeps_xlog: bool, stance: Stance) -> Result<Self> {
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let applied = Applied {
            xlog: Xlog::new(keeps_xlog, stance),
            ..Applied::default()
        };
        Ok(StateMachine {
            applied: Arc::new(RwLock::new(applied)),
            dir,
            current: Arc::default(),
            gate: Arc::default(),
        })
    }

    /// The shared applied state, for reads.
    pub fn applied(&self) -> Arc<RwLock<Applied>> {
        self.applied.clone()
    }

    /// The directory snapshots are written to (and received into).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file_name(meta: &SnapshotMeta) -> PathBuf {
        let index = meta.last_log_id.as_ref().map_or(0, |id| id.index() + 1);
        PathBuf::from(format!("{index:020}.snap"))
    }

    /// Snapshot files in the directory, newest first.
    fn files(&self) -> io::Result<Vec<PathBuf>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "snap"))
            .collect();
        files.sort();
        files.reverse();
        Ok(files)
    }

    /// Encodes the applied state under the read lock and writes it to a
    /// snapshot file; blocks, so it runs off the runtime's threads.
    fn write_snapshot(&self) -> io::Result<(SnapshotMeta, PathBuf)> {
        let started = std::time::Instant::now();
        let (meta, encoded) = {
            let _gate = self.gate.blocking_lock();
            let applied = self.applied.read().expect("state lock");
            applied.snapshot_taken(applied.keyspace.items());
            let meta = SnapshotMeta {
                last_log_id: applied.last_applied,
                last_membership: applied.membership.clone(),
            };
            let encoded = snapshot_file::encode(&meta, applied.view())?;
            (meta, encoded)
        };
        let encoded_in = started.elapsed();
        let path = self.dir.join(Self::file_name(&meta));
        snapshot_file::write(&path, &encoded).map_err(io::Error::other)?;
        tracing::info!(
            path = %path.display(),
            bytes = encoded.len(),
            encode_ms = encoded_in.as_millis() as u64,
            write_ms = (started.elapsed() - encoded_in).as_millis() as u64,
            "snapshot written"
        );
        Ok((meta, path))
    }

    /// Makes `path` the current snapshot and deletes all but the newest few.
    fn adopt(&self, path: PathBuf) -> io::Result<()> {
        *self.current.lock().expect("snapshot lock") = Some((path.clone(), None));
        for old in self
            .files()?
            .into_iter()
            .filter(|p| p != &path)
            .skip(SNAPSHOTS_KEPT - 1)
        {
            std::fs::remove_file(&old)?;
        }
        Ok(())
    }
}

/// Builds a snapshot from the applied state, off the apply path.
pub struct SnapshotBuilder {
    sm: StateMachine,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = SnapshotFile;

    async fn build_snapshot(&mut self) -> io::Result<Snapshot> {
        // Encoded in place, never copied (see `snapshot_file::encode`).
        let sm = self.sm.clone();
        let (meta, path) = tokio::task::spawn_blocking(move || sm.write_snapshot())
            .await
            .map_err(io::Error::other)??;
        self.sm.adopt(path.clone())?;
        Ok(Snapshot {
            meta,
            snapshot: SnapshotFile { path },
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotFile;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> io::Result<(Option<LogId>, StoredMembership)> {
        let applied = self.applied.read().expect("state lock");
        Ok((applied.last_applied, applied.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> io::Result<()>
    where
        Strm: Stream<Item = io::Result<EntryResponder<TypeConfig>>> + Unpin + OptionalSend,
    {
        while let Some((entry, responder)) = entries.try_next().await? {
            fail::fail_point!("apply-before");
            let _gate = self.gate.lock().await;
            let reply = {
                let mut applied = self.applied.write().expect("state lock");
                applied.last_applied = Some(entry.log_id);
                match entry.payload {
                    EntryPayload::Blank => Reply::Ok,
                    EntryPayload::Normal(write) => {
                        applied.writes += client_writes(&write);
                        apply_write(&mut applied, &write)
                    }
                    EntryPayload::Membership(membership) => {
                        applied.membership = StoredMembership::new(Some(entry.log_id), membership);
                        Reply::Ok
                    }
                }
            };
            fail::fail_point!("apply-after");
            if let Some(responder) = responder {
                responder.send(reply);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder { sm: self.clone() }
    }

    async fn install_snapshot(&mut self, meta: &SnapshotMeta, snapshot: SnapshotFile) -> io::Result<()> {
        fail::fail_point!("snapshot-install");
        let preloaded = {
            let mut current = self.current.lock().expect("snapshot lock");
            match current.as_mut() {
                Some((path, contents)) if *path == snapshot.path => contents.take(),
                _ => None,
            }
        };
        let contents = match preloaded {
            Some(contents) => contents,
            None => {
                let path = snapshot.path.clone();
                let (_, contents) = tokio::task::spawn_blocking(move || snapshot_file::read(&path))
                    .await
                    .map_err(io::Error::other)?
                    .map_err(io::Error::other)?;
                contents
            }
        };
        let path = self.dir.join(Self::file_name(meta));
        if snapshot.path != path {
            // A received file sits in our directory and is moved into place;
            // any other file (another replica's, in tests) is copied.
            if snapshot.path.parent() == Some(self.dir.as_path()) {
                std::fs::rename(&snapshot.path, &path)?;
            } else {
                std::fs::copy(&snapshot.path, &path)?;
            }
            snapshot_file::sync_dir(&path).map_err(io::Error::other)?;
        }
        let key_items = contents.keyspace.items();
        {
            let _gate = self.gate.lock().await;
            let mut applied = self.applied.write().expect("state lock");
            applied.keyspace = contents.keyspace;
            applied.sessions = contents.sessions;
            applied.users = contents.users;
            applied.xlog = contents.xlog.adopted(&applied.xlog, contents.stance);
            applied.meta = contents.meta;
            applied.last_applied = meta.last_log_id;
            applied.membership = meta.last_membership.clone();
            applied.snapshot_taken(key_items);
        }
        self.adopt(path)?;
        tracing::info!(last_log_id = ?meta.last_log_id, "snapshot installed");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> io::Result<Option<Snapshot>> {
        let known = self
            .current
            .lock()
            .expect("snapshot lock")
            .as_ref()
            .map(|(p, _)| p.clone());
        if let Some(path) = known {
            let meta = snapshot_file::read_meta(&path).map_err(io::Error::other)?;
            return Ok(Some(Snapshot {
                meta,
                snapshot: SnapshotFile { path },
            }));
        }
        let mut first_error = None;
        for path in self.files()? {
            let read_path = path.clone();
            let verified = tokio::task::spawn_blocking(move || snapshot_file::read(&read_path))
                .await
                .map_err(io::Error::other)?;
            match verified {
                Ok((meta, contents)) => {
                    *self.current.lock().expect("snapshot lock") = Some((path.clone(), Some(contents)));
                    return Ok(Some(Snapshot {
                        meta,
                        snapshot: SnapshotFile { path },
                    }));
                }
                Err(err) => {
                    tracing::error!(cause = %err, "snapshot unusable, trying an older one");
                    first_error.get_or_insert(err);
                }
            }
        }
        // Snapshots existed but none is valid: starting empty would serve a
        // keyspace missing everything the purged log held, so refuse.
        match first_error {
            Some(err) => Err(io::Error::other(err)),
            None => Ok(None),
        }
    }
}

/// The client writes `write` holds: those of a batch, the shipped records,
/// or itself.
fn client_writes(write: &Write) -> u64 {
    match &write.op {
        WriteOp::Batch { writes } => writes.len() as u64,
        WriteOp::Xlog { records, .. } => records.len() as u64,
        _ => 1,
    }
}

/// Applies a write of the group's log: a client write (numbered in the
/// cross-region log, refused once the group is sealed), shipping from the
/// primary (refused unless sealed and of its epoch or a later one), the
/// log's trim, seal and opening, a meta op, or a batch of client writes
/// (one reply each, as if each were an entry of its own).
fn apply_write(applied: &mut Applied, write: &Write) -> Reply {
    match &write.op {
        WriteOp::Batch { writes } => Reply::List(writes.iter().map(|write| apply_write(applied, write)).collect()),
        WriteOp::Xlog {
            records,
            as_of_ms,
            epoch,
        } => match applied.xlog.admits(*epoch) {
            true => apply_records(applied, records, *as_of_ms),
            false => Reply::Err(KvError::Fenced),
        },
        WriteOp::XlogTrim { through } => {
            applied.xlog.trim(*through);
            Reply::Ok
        }
        WriteOp::XlogReset {
            gseq,
            part,
            last,
            image,
            epoch,
        } => match applied.xlog.admits(*epoch) {
            true => apply_reset_part(applied, *gseq, *part, *last, image),
            false => Reply::Err(KvError::Fenced),
        },
        WriteOp::XlogSeal => {
            applied.xlog.seal();
            Reply::Int(applied.xlog.gseq() as i64)
        }
        WriteOp::XlogDiscard => {
            applied.xlog.discard();
            Reply::Int(applied.xlog.gseq() as i64)
        }
        WriteOp::XlogClose { abandoned, epoch } => {
            applied.xlog.close(*abandoned, *epoch);
            Reply::Int(applied.xlog.gseq() as i64)
        }
        // A partial copy must not take writes.
        WriteOp::XlogOpen { .. } if applied.xlog.resetting().is_some() => Reply::Nil,
        WriteOp::XlogOpen { epoch } => {
            applied.xlog.open(*epoch);
            Reply::Int(applied.xlog.gseq() as i64)
        }
        WriteOp::Meta(op) => {
            let refused = applied.meta.apply(op, write.now_ms);
            Reply::Meta(Box::new(MetaAnswer {
                refused,
                meta: applied.meta.clone(),
            }))
        }
        _ if !applied.xlog.stance().serving => Reply::Err(KvError::NotServing),
        _ => {
            let reply = apply_client_write(applied, write);
            applied.xlog.append(write.now_ms, || {
                wire::encode(write).expect("a write that was decoded encodes again")
            });
            reply
        }
    }
}

/// Applies a client write to the keys, sessions and users, as the primary
/// region did when it was proposed.
fn apply_client_write(applied: &mut Applied, write: &Write) -> Reply {
    let Applied {
        keyspace,
        sessions,
        users,
        ..
    } = applied;
    match (&write.op, write.session) {
        (WriteOp::Acl(change), _) => users.apply(change),
        (_, Some(tag)) => sessions.apply(tag, write.now_ms, || keyspace.apply(write)),
        (_, None) => keyspace.apply(write),
    }
}

/// Applies shipped records in gseq order, skipping those already applied
/// and stopping at a gap, a bad checksum or an undecodable write (the
/// shipper sends again from the gseq replied). Marks the replica fresh as
/// of `as_of_ms` when it then holds every record of the batch. A copy
/// waiting for a resync takes nothing (`NeedsCopy`: the shipper resyncs).
fn apply_records(applied: &mut Applied, records: &[Record], as_of_ms: u64) -> Reply {
    if applied.xlog.resetting().is_some() {
        return Reply::Err(KvError::NeedsCopy);
    }
    for record in records {
        match applied.xlog.accept(record) {
            Accept::Duplicate => continue,
            Accept::Refuse => break,
            Accept::Next => {}
        }
        let write: Write = match wire::decode(&record.payload) {
            Ok(write) => write,
            Err(err) => {
                tracing::error!(gseq = record.gseq, cause = %err, "shipped record not applied");
                break;
            }
        };
        apply_client_write(applied, &write);
        applied.xlog.applied(record.gseq);
    }
    let holds_all = records.last().is_none_or(|r| r.gseq <= applied.xlog.gseq());
    if holds_all && as_of_ms > 0 {
        applied.xlog.fresh_as_of(as_of_ms);
    }
    Reply::Int(applied.xlog.gseq() as i64)
}

/// Applies one part of a resync (see [`crate::xlog`]): part 0 empties the
/// keys, sessions and users first; the last part sets the gseq. A part out
/// of order is refused (`Nil`), and one that cannot be read stops the
/// resync until the shipper starts it over.
fn apply_reset_part(applied: &mut Applied, gseq: u64, part: u32, last: bool, image: &[u8]) -> Reply {
    if !applied.xlog.take_part(gseq, part) {
        return Reply::Nil;
    }
    if part == 0 {
        applied.keyspace = Keyspace::default();
        applied.sessions = Sessions::default();
        applied.users = Users::default();
    }
    let mut into = Target {
        keyspace: &mut applied.keyspace,
        sessions: &mut applied.sessions,
        users: &mut applied.users,
        unfinished: applied.xlog.unfinished_mut(),
    };
    let restored = snapshot_file::restore_part(image, &mut into).and_then(|()| match applied.xlog.unfinished() {
        Some(value) if last => Err(format!("the copy ends inside the long value of key {:?}", value.key)),
        _ => Ok(()),
    });
    if let Err(err) = restored {
        tracing::error!(gseq, part, cause = %err, "resync part not applied");
        applied.xlog.abort_reset();
        return Reply::Nil;
    }
    if last {
        applied.xlog.finish_reset(gseq);
        return Reply::Int(gseq as i64);
    }
    Reply::Ok
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use openraft::vote::RaftLeaderIdExt;

    use super::*;
    use crate::keyspace::Read;
    use crate::sessions::SessionTag;

    fn incr(key: &str, delta: i64, seq: Option<u64>) -> Write {
        Write {
            now_ms: 1,
            session: seq.map(|seq| SessionTag {
                client: 7,
                seq,
                acked_below: 0,
            }),
            op: WriteOp::IncrBy {
                key: Bytes::from(key.to_string()),
                delta,
            },
        }
    }

    #[test]
    fn a_batch_applies_each_write_as_an_entry_of_its_own() {
        let mut applied = Applied {
            xlog: Xlog::new(true, Stance::open_in(1)),
            ..Applied::default()
        };
        let writes = vec![
            incr("a", 1, Some(1)),
            incr("b", 5, None),
            // A retry of the first write: answered again, applied once.
            incr("a", 1, Some(1)),
            incr("a", 10, Some(2)),
        ];
        let reply = apply_write(&mut applied, &Write::new(WriteOp::Batch { writes: writes.into() }));
        assert_eq!(
            reply,
            Reply::List(vec![Reply::Int(1), Reply::Int(5), Reply::Int(1), Reply::Int(11)])
        );
        let get = |key: &str| Read::Get {
            key: Bytes::from(key.to_string()),
        };
        assert_eq!(applied.keyspace.read(&get("a"), 1), Reply::Value(Bytes::from("11")));
        // One cross-region record per write, as four entries would make.
        assert_eq!(applied.xlog.gseq(), 4);
    }

    /// A state machine of its own directory.
    fn state_machine() -> (tempfile::TempDir, StateMachine) {
        let dir = tempfile::tempdir().unwrap();
        let sm = StateMachine::open(dir.path().join("snapshots"), false, Stance::open_in(1)).unwrap();
        (dir, sm)
    }

    /// Applies `writes` as the entries at `first` and after.
    async fn apply(sm: &mut StateMachine, first: u64, writes: Vec<Write>) {
        let entries = writes.into_iter().zip(first..).map(|(write, index)| {
            let leader = <openraft::alias::LeaderIdOf<TypeConfig> as RaftLeaderIdExt>::new_committed(1, 1);
            let entry = crate::raft::typ::Entry {
                log_id: LogId::new(leader, index),
                payload: EntryPayload::Normal(write),
            };
            Ok((entry, None))
        });
        sm.apply(futures::stream::iter(entries)).await.unwrap();
    }

    #[tokio::test]
    async fn writes_since_the_last_snapshot_are_counted_from_it() {
        let (_dir, mut sm) = state_machine();
        let batch = Write::new(WriteOp::Batch {
            writes: vec![incr("b", 1, None), incr("c", 1, None), incr("b", 1, None)].into(),
        });
        apply(&mut sm, 1, vec![incr("a", 1, None), batch]).await;
        let since = |sm: &StateMachine| {
            let applied = sm.applied.read().unwrap();
            let items = applied.items_at_snapshot.load(Ordering::Relaxed);
            (applied.writes_since_snapshot(), items)
        };
        assert_eq!(since(&sm), (4, 0), "every write of a batch counts; no snapshot yet");
        sm.get_snapshot_builder().await.build_snapshot().await.unwrap();
        assert_eq!(since(&sm), (0, 3), "keys a, b, c");
        apply(&mut sm, 3, vec![incr("d", 1, None)]).await;
        assert_eq!(since(&sm), (1, 3), "as of the snapshot");
    }

    #[tokio::test]
    async fn an_apply_waits_for_an_encoding_without_holding_up_reads() {
        let (_dir, mut sm) = state_machine();
        let gate = sm.gate.clone();
        let encoding = gate.lock().await;
        let applied = sm.applied();
        let apply = tokio::spawn(async move {
            apply(&mut sm, 1, vec![incr("a", 1, None)]).await;
        });
        // One thread: the apply runs up to the gate while this task yields.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!apply.is_finished(), "the apply waits for the encoding");
        let read = applied.try_read().map(|applied| applied.keyspace.len());
        assert_eq!(read.ok(), Some(0), "reads are not held up");
        drop(encoding);
        apply.await.unwrap();
        assert_eq!(applied.read().unwrap().keyspace.len(), 1);
    }

    #[test]
    fn a_batch_is_stored_as_the_sequence_it_always_was() {
        // Logs written when a batch held a `Vec` must still decode.
        let writes = vec![incr("a", 1, Some(1)), incr("b", 5, None)];
        let shared: Arc<[Write]> = writes.clone().into();
        let stored = wire::encode(&writes).unwrap();
        assert_eq!(wire::encode(&shared).unwrap(), stored);
        let decoded: Arc<[Write]> = wire::decode(&stored).unwrap();
        assert_eq!(decoded, shared);
    }
}

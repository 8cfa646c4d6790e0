//! One shard as seen from this node: its Raft group and its keyspace.
//!
//! A [`Shard`] executes requests only when this node leads the group:
//!
//! - a write is proposed (with others queued beside it, see
//!   [`crate::proposals`]) and answers once it is committed by a majority
//!   of zones and applied;
//! - a read first proves leadership with openraft's linearizer — a leader
//!   lease (no round trip) and, when the lease has lapsed, ReadIndex (one
//!   heartbeat round) — and waits until everything committed before the read
//!   arrived is applied; then it reads memory. A node that merely believes it
//!   leads never answers. While the lease clearly holds, the proof needs no
//!   message to the Raft core at all (see [`Shard::holds_lease`]).
//!
//! Weaker reads are served by any replica, for callers that ask for them:
//! [`Shard::read_local`] answers from memory as it is (stale), and
//! [`Shard::read_bounded`] only when the replica heard from its leader
//! within the bound and had applied everything the leader had committed
//! then (so it misses at most the writes of that window, plus the one-way
//! network delay of the leader's message).
//!
//! A replica of a secondary region's group is read with
//! [`Shard::read_fresh`]: its freshness is the primary's clock carried by
//! the cross-region log (see [`crate::xlog`]). The leader of a primary
//! region's group keeps what it shipped to each destination region
//! ([`Shard::progress`], written by [`crate::shipping`]); with
//! `durability = "witness"` a client write is proposed only while the
//! witness acknowledges that shipping, and answered only once the witness
//! holds it; a linearizable read is answered only once the witness holds
//! every write applied when it was read, so no value a client saw is lost
//! with the region (cairn-jepsen found a read of a write that a forced
//! failover then discarded).
//!
//! In a cluster of several regions a client's write or linearizable read
//! is taken only while the node holds the primary lease of the shard's
//! failover group ([`crate::lease`]; else [`Error::NoLease`]), and a group a failover
//! sealed refuses them ([`Error::NotServing`]: the seal is an entry of the
//! group's log, so a write applied after it is refused at apply, and a read
//! linearized after it sees it). Both mean nothing was done, and the
//! forwarding node tries the primary it then knows.
//!
//! Anything else is [`Error::NotLeader`] with the leader this node knows of,
//! so the caller ([`crate::node::Node`]) forwards it. A write whose entry was
//! appended but then discarded by a leader change is [`Error::Indeterminate`]:
//! it may yet commit, so it must not be retried blindly.
//!
//! openraft's futures are large (`client_write`, `ensure_linearizable`
//! and `wait` take 2–4 KB each), and a future holds every future it
//! awaits, so each caller up to the connection's boxed request would
//! carry them and copy them whole at every move: several KB per request.
//! They are boxed where they are awaited, here and in
//! [`crate::proposals`] (and so is forwarding's gRPC call in
//! [`crate::node`]), which keeps a request's own future small.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use openraft::async_runtime::WatchReceiver;
use openraft::error::{LinearizableReadError, RaftError};
use openraft::vote::RaftLeaderId;
use openraft::{Instant as _, ReadPolicy, ServerState};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::acl::{User, Users};
use crate::error::{Error, Result};
use crate::keyspace::{KvError, Read, Reply, Rpo, Write};
use crate::lease::Lease;
use crate::meta::MetaAnswer;
use crate::placement::{RegionIndex, shard_of_group};
use crate::proposals::{Proposed, Proposer};
use crate::raft::snapshot_file;
use crate::raft::state_machine::Applied;
use crate::raft::typ::{GroupId, NodeId, Raft, RaftMetrics};
use crate::xlog::{Lag, Progress, Record, Since, Stance};

/// A request for one shard, as executed locally or forwarded to its leader.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    /// A mutation, proposed through Raft.
    Write(Write),
    /// A linearizable read (leader lease, ReadIndex when it lapsed).
    Read(Read),
    /// A linearizable read confirmed by a ReadIndex round (no clock trusted).
    ReadIndex(Read),
    /// The users table, read linearizably (from [`crate::acl::ACL_SHARD`]).
    Users,
    /// The meta group's state, read linearizably (from
    /// [`crate::meta::META_GROUP`]).
    Meta,
    /// What a forced failover now would lose, asked of the primary's
    /// leader: the records the regions `safe_in` have not acknowledged.
    Rpo {
        /// The region that would take over, and the witness.
        safe_in: Vec<RegionIndex>,
    },
    /// Whether the group takes client writes and the gseq it holds, read
    /// linearizably (what a failover's driver asks of a target it may
    /// have opened already).
    Stance,
}

/// The answer to a [`Request`], with where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// The command's reply.
    pub reply: Reply,
    /// The Raft log index the answer reflects.
    pub index: u64,
    /// The node that executed it.
    pub served_by: NodeId,
}

/// What a client's request must hold before a group takes it.
#[derive(Debug, Clone, Default)]
pub struct WritePolicy {
    /// The witness region, when a client write must wait for it
    /// (`durability = "witness"`).
    pub witness: Option<RegionIndex>,
    /// The node's primary lease of the shard's failover group, in a
    /// cluster of several regions: client writes and linearizable reads
    /// are taken only while it holds.
    pub lease: Option<Arc<Lease>>,
}

/// How long a write waits for the witness (`durability = "witness"`).
pub const WITNESS_WAIT: Duration = Duration::from_secs(5);

/// The current time in ms since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One shard's group on this node.
pub struct Shard {
    /// The group's id (see [`crate::placement`]).
    pub group: GroupId,
    /// The shard the group replicates.
    pub shard: u64,
    node: NodeId,
    raft: Raft,
    /// Where writes are proposed.
    proposer: Proposer,
    applied: Arc<RwLock<Applied>>,
    snapshot_dir: PathBuf,
    /// How long after a majority's acknowledgement reads may be served
    /// on the lease alone.
    lease: Duration,
    /// When the leader's last successful append arrived, and the commit
    /// index it carried.
    leader_contact: Mutex<Option<(Instant, u64)>>,
    /// What this node, leading, shipped to each destination region.
    progress: watch::Sender<BTreeMap<RegionIndex, Progress>>,
    /// What a client's request must hold.
    policy: WritePolicy,
    /// The index of the last entry in this replica's log when the process
    /// started: a read is served only once everything up to it is applied
    /// (see [`Shard::holds_lease`]).
    restart_horizon: u64,
}

impl Shard {
    /// Wraps a started group whose log ended at `restart_horizon` when
    /// the process started, taking client requests as `policy` says.
    pub fn new(
        group: GroupId,
        node: NodeId,
        raft: Raft,
        applied: Arc<RwLock<Applied>>,
        snapshot_dir: PathBuf,
        restart_horizon: u64,
        policy: WritePolicy,
    ) -> Self {
        let lease = Duration::from_millis(raft.config().election_timeout_min);
        Shard {
            group,
            shard: shard_of_group(group),
            node,
            lease,
            proposer: Proposer::start(raft.clone(), shard_of_group(group)),
            raft,
            applied,
            snapshot_dir,
            leader_contact: Mutex::new(None),
            progress: watch::Sender::default(),
            policy,
            restart_horizon,
        }
    }

    /// Records an append from the leader, received at `at` and carrying the
    /// leader's commit index, that this replica accepted.
    pub fn note_leader_contact(&self, at: Instant, leader_commit: u64) {
        let mut contact = self.leader_contact.lock().expect("contact lock");
        if contact.is_none_or(|(last, _)| last < at) {
            *contact = Some((at, leader_commit));
        }
    }

    /// The group's Raft handle (for the peer-facing RPC service).
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// Where snapshots received from a leader are written.
    pub fn snapshot_dir(&self) -> &PathBuf {
        &self.snapshot_dir
    }

    /// A copy of the group's current metrics.
    pub fn metrics(&self) -> RaftMetrics {
        self.raft.metrics().borrow_watched().clone()
    }

    /// The leader this node currently knows of.
    pub fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow_watched().current_leader
    }

    /// Up to `limit` keys whose deadline passed by `now_ms` (for active
    /// expiry).
    pub fn expired(&self, now_ms: u64, limit: usize) -> Vec<bytes::Bytes> {
        self.applied.read().expect("state lock").keyspace.expired(now_ms, limit)
    }

    /// Number of keys held that have a deadline.
    pub fn expiring_count(&self) -> usize {
        self.applied.read().expect("state lock").keyspace.expiring()
    }

    /// The user of this name in the replicated users table (see
    /// [`crate::acl`]).
    pub fn user(&self, name: &str) -> Option<Arc<User>> {
        self.applied.read().expect("state lock").users.get(name)
    }

    /// Waits (up to `timeout`) until this replica has applied the entry at
    /// `index`; whether it has.
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> bool {
        let wait = self.raft.wait(Some(timeout));
        Box::pin(wait.applied_index_at_least(Some(index), "local replica catches up"))
            .await
            .is_ok()
    }

    /// The replicated users table.
    pub fn users(&self) -> Users {
        self.applied.read().expect("state lock").users.clone()
    }

    /// Entries and writes this node proposed to the group.
    pub fn proposed(&self) -> &Proposed {
        self.proposer.proposed()
    }

    /// Client writes applied since the newest snapshot, and the items
    /// (strings, fields of hashes and cross-region records) that snapshot
    /// holds (see [`crate::compaction`]).
    pub fn since_snapshot(&self) -> (u64, u64) {
        let applied = self.applied.read().expect("state lock");
        let items = applied.items_at_snapshot.load(std::sync::atomic::Ordering::Relaxed);
        (applied.writes_since_snapshot(), items)
    }

    /// Number of keys held in memory.
    pub fn key_count(&self) -> usize {
        self.applied.read().expect("state lock").keyspace.len()
    }

    /// The gseq of the last write applied here, and the primary's clock as
    /// of which this replica holds every write (a secondary's; 0 before
    /// its first complete batch).
    pub fn xlog_position(&self) -> (u64, u64) {
        let applied = self.applied.read().expect("state lock");
        (applied.xlog.gseq(), applied.xlog.fresh_ms())
    }

    /// The cross-region log's records after `acked` (see
    /// [`crate::xlog::Xlog::since`]).
    pub fn xlog_since(&self, acked: u64, max_bytes: usize) -> Since {
        self.applied.read().expect("state lock").xlog.since(acked, max_bytes)
    }

    /// A copy of the shard's keys, sessions and users in parts of about
    /// `max_part` bytes, and the gseq it is as of: what a destination of
    /// the cross-region log is resynced from.
    pub fn xlog_image(&self, max_part: usize) -> std::io::Result<(u64, Vec<bytes::Bytes>)> {
        let applied = self.applied.read().expect("state lock");
        Ok((applied.xlog.gseq(), snapshot_file::image(applied.view(), max_part)?))
    }

    /// The gseq through which the cross-region log must be trimmed to hold
    /// at most `max_bytes` of writes (0: none need be).
    pub fn xlog_over_bytes(&self, max_bytes: u64) -> u64 {
        self.applied.read().expect("state lock").xlog.over_bytes(max_bytes)
    }

    /// How many records the cross-region log holds.
    pub fn xlog_kept(&self) -> usize {
        self.applied.read().expect("state lock").xlog.window().len()
    }

    /// The oldest record the cross-region log still holds, if any.
    pub fn xlog_oldest(&self) -> Option<u64> {
        self.applied
            .read()
            .expect("state lock")
            .xlog
            .window()
            .next()
            .map(|r| r.gseq)
    }

    /// The index of the last log entry applied here.
    pub fn applied_index(&self) -> u64 {
        let applied = self.applied.read().expect("state lock");
        applied.last_applied.as_ref().map_or(0, |id| id.index())
    }

    /// Each destination region's progress, and what it lacks now (for
    /// `INFO replication` and the Admin status).
    pub fn shipping(&self) -> Vec<(RegionIndex, Progress, Lag)> {
        let progress = self.progress();
        let applied = self.applied.read().expect("state lock");
        let now = now_ms();
        progress
            .into_iter()
            .map(|(region, p)| {
                let lag = applied.xlog.lag(p.acked, now);
                (region, p, lag)
            })
            .collect()
    }

    /// What was shipped to each destination region, as this node last
    /// led the group.
    pub fn progress(&self) -> BTreeMap<RegionIndex, Progress> {
        self.progress.borrow().clone()
    }

    /// Records what was shipped to `region`.
    pub fn set_progress(&self, region: RegionIndex, progress: Progress) {
        self.progress.send_modify(|all| {
            all.insert(region, progress);
        });
    }

    /// Forgets what was shipped to `region` (this node no longer ships).
    pub fn clear_progress(&self, region: RegionIndex) {
        self.progress.send_modify(|all| {
            all.remove(&region);
        });
    }

    /// Reads this replica's memory if it held every write the primary had
    /// applied `bound` ago, by the primary's clock (see [`crate::xlog`]);
    /// `None` when it cannot tell.
    pub fn read_fresh(&self, read: &Read, bound: Duration) -> Option<Answer> {
        let applied = self.applied.read().expect("state lock");
        let (fresh_ms, now) = (applied.xlog.fresh_ms(), now_ms());
        let within = fresh_ms > 0 && now.saturating_sub(fresh_ms) <= bound.as_millis() as u64;
        within.then(|| self.answer(&applied, read, now))
    }

    /// Executes `request` here; [`Error::NotLeader`] if this node does not lead.
    pub async fn execute(&self, request: Request) -> Result<Answer> {
        match request {
            Request::Write(write) => self.write(write).await,
            Request::Read(read) => self.read(&read, ReadPolicy::LeaseRead).await,
            Request::ReadIndex(read) => self.read(&read, ReadPolicy::ReadIndex).await,
            Request::Users => self.read_users().await,
            Request::Meta => self.read_meta().await,
            Request::Rpo { safe_in } => self.rpo(&safe_in).await,
            Request::Stance => self.read_stance().await,
        }
    }

    async fn read_stance(&self) -> Result<Answer> {
        self.linearize(ReadPolicy::LeaseRead).await?;
        let applied = self.applied.read().expect("state lock");
        Ok(Answer {
            reply: Reply::Stance {
                stance: applied.xlog.stance(),
                gseq: applied.xlog.gseq(),
            },
            index: applied.last_applied.as_ref().map_or(0, |id| id.index()),
            served_by: self.node,
        })
    }

    /// What this leader's region would lose if it died now: the records
    /// none of `safe_in` acknowledged.
    async fn rpo(&self, safe_in: &[RegionIndex]) -> Result<Answer> {
        self.linearize(ReadPolicy::LeaseRead).await?;
        let progress = self.progress();
        let safe = safe_in.iter().filter_map(|r| progress.get(r)).map(|p| p.acked).max();
        let applied = self.applied.read().expect("state lock");
        let safe = safe.unwrap_or(0);
        let rpo = Rpo {
            head: applied.xlog.gseq(),
            safe,
            lost: applied.xlog.lag(safe, now_ms()),
        };
        Ok(Answer {
            reply: Reply::Rpo(rpo),
            index: applied.last_applied.as_ref().map_or(0, |id| id.index()),
            served_by: self.node,
        })
    }

    /// Whether this group takes client writes, and its epoch.
    pub fn stance(&self) -> Stance {
        self.applied.read().expect("state lock").xlog.stance()
    }

    /// The records past `gseq` that this group's log keeps.
    pub fn xlog_after(&self, gseq: u64) -> Vec<Record> {
        let applied = self.applied.read().expect("state lock");
        applied.xlog.after(gseq).cloned().collect()
    }

    /// Refuses a client's request while the node's primary lease does not
    /// hold (in a cluster of several regions).
    fn check_lease(&self) -> Result<()> {
        match &self.policy.lease {
            Some(lease) if !lease.holds() => Err(Error::NoLease { shard: self.shard }),
            _ => Ok(()),
        }
    }

    /// Refuses a read once a failover sealed the group (applied here
    /// before the read was linearized).
    fn check_serving(&self, applied: &Applied) -> Result<()> {
        match applied.xlog.stance().serving {
            true => Ok(()),
            false => Err(Error::NotServing { shard: self.shard }),
        }
    }

    async fn write(&self, write: Write) -> Result<Answer> {
        let client = !write.op.is_bookkeeping();
        if client {
            self.check_lease()?;
        }
        let witness = self.policy.witness.filter(|_| client);
        if let Some(region) = witness {
            self.check_witness(region)?;
        }
        let (reply, index) = self.proposer.write(write).await?;
        if reply == Reply::Err(KvError::NotServing) {
            return Err(Error::NotServing { shard: self.shard });
        }
        let answer = Answer {
            reply,
            index,
            served_by: self.node,
        };
        if let Some(region) = witness {
            // The log's head now is at or past this write's gseq.
            let (gseq, _) = self.xlog_position();
            self.wait_witnessed(region, gseq).await?;
        }
        Ok(answer)
    }

    /// Refuses a write before it is proposed when the witness has not
    /// acknowledged this leader's shipping lately.
    fn check_witness(&self, region: RegionIndex) -> Result<()> {
        let reachable = self.progress.borrow().get(&region).is_some_and(|p| p.stuck.is_none());
        match reachable {
            true => Ok(()),
            false => Err(Error::NoWitness { shard: self.shard }),
        }
    }

    /// Waits until the witness acknowledged `gseq`.
    async fn wait_witnessed(&self, region: RegionIndex, gseq: u64) -> Result<()> {
        let mut progress = self.progress.subscribe();
        let witnessed = progress.wait_for(|all| all.get(&region).is_some_and(|p| p.acked >= gseq));
        match tokio::time::timeout(WITNESS_WAIT, witnessed).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(Error::NotWitnessed {
                shard: self.shard,
                waited_ms: WITNESS_WAIT.as_millis() as u64,
            }),
        }
    }

    /// Reads this replica's memory as it is, however far behind: for reads
    /// that asked for stale data (and for the `stale-read` fault point).
    pub fn read_local(&self, read: &Read) -> Answer {
        let applied = self.applied.read().expect("state lock");
        self.answer(&applied, read, now_ms())
    }

    /// `read` answered from `applied` at `now_ms`.
    fn answer(&self, applied: &Applied, read: &Read, now_ms: u64) -> Answer {
        Answer {
            reply: applied.keyspace.read(read, now_ms),
            index: applied.last_applied.as_ref().map_or(0, |id| id.index()),
            served_by: self.node,
        }
    }

    /// Reads this replica's memory if it is provably at most `bound` behind
    /// its leader; `None` when it cannot tell (the caller asks the leader).
    pub fn read_bounded(&self, read: &Read, bound: Duration) -> Option<Answer> {
        let (at, leader_commit) = (*self.leader_contact.lock().expect("contact lock"))?;
        if at.elapsed() > bound {
            return None;
        }
        let answer = self.read_local(read);
        (answer.index >= leader_commit).then_some(answer)
    }

    /// Whether this node leads the group under a lease it may read on
    /// without asking the Raft core: its metrics say it leads, a majority
    /// acknowledged it less than the election timeout's lower bound ago,
    /// it has applied its own term's first entry, and it has applied its
    /// log as it was when the process started.
    ///
    /// # Correctness
    ///
    /// A voter that acknowledged this leader grants no other vote for the
    /// lease (openraft's, the election timeout's upper bound, is longer than
    /// the one used here), so no other leader can have committed anything
    /// since. Applying its own term's first entry means every entry of
    /// earlier terms is in memory, and an entry of its own term is
    /// acknowledged to a client only after this node applied it: so every
    /// write that completed before the read began is in memory. Metrics are
    /// published after the fact, so they can only show an older quorum
    /// acknowledgement than the core holds, never a newer one.
    ///
    /// That last step holds only for writes this process acknowledged. A
    /// leader killed and started again at once comes back leading the same
    /// term (its vote is durable, and the followers still follow it) with
    /// only the entries it knew committed applied: writes the previous
    /// process acknowledged may sit unapplied in its log (cairn-jepsen's
    /// crash fault caught such a leader serving a value overwritten before
    /// the read began). They are all in the log it started with, so reads
    /// wait until that is applied: the leader commits it again with the
    /// followers' next acknowledgements.
    fn holds_lease(&self) -> bool {
        let metrics = self.raft.metrics();
        let m = metrics.borrow_watched();
        m.state == ServerState::Leader
            && m.current_leader == Some(self.node)
            && m.last_applied.as_ref().is_some_and(|applied| {
                applied.committed_leader_id().term() == m.current_term && applied.index() >= self.restart_horizon
            })
            && m.last_quorum_acked
                .as_ref()
                .is_some_and(|acked| acked.elapsed() < self.lease)
    }

    async fn read(&self, read: &Read, policy: ReadPolicy) -> Result<Answer> {
        self.check_lease()?;
        self.linearize(policy).await?;
        let (answer, gseq) = {
            let applied = self.applied.read().expect("state lock");
            self.check_serving(&applied)?;
            (self.answer(&applied, read, now_ms()), applied.xlog.gseq())
        };
        // With `durability = "witness"` nothing a read returns may be lost
        // with this region: it waits, as writes do, until the witness
        // holds every write it could have seen.
        if let Some(region) = self.policy.witness {
            self.wait_witnessed(region, gseq).await?;
        }
        Ok(answer)
    }

    /// The users table, read as a linearizable read is (for nodes that
    /// hold no replica of the ACL shard).
    async fn read_users(&self) -> Result<Answer> {
        self.check_lease()?;
        self.linearize(ReadPolicy::LeaseRead).await?;
        let applied = self.applied.read().expect("state lock");
        self.check_serving(&applied)?;
        Ok(Answer {
            reply: Reply::Users(applied.users.clone()),
            index: applied.last_applied.as_ref().map_or(0, |id| id.index()),
            served_by: self.node,
        })
    }

    /// The meta group's state, read as a linearizable read is.
    async fn read_meta(&self) -> Result<Answer> {
        self.linearize(ReadPolicy::LeaseRead).await?;
        let applied = self.applied.read().expect("state lock");
        let answer = MetaAnswer {
            refused: None,
            meta: applied.meta.clone(),
        };
        Ok(Answer {
            reply: Reply::Meta(Box::new(answer)),
            index: applied.last_applied.as_ref().map_or(0, |id| id.index()),
            served_by: self.node,
        })
    }

    /// Proves that this node leads and that everything committed before
    /// the call is applied: with the lease alone while it clearly holds
    /// (see [`Shard::holds_lease`]), else through openraft's linearizer
    /// (`policy`; a lease read whose lease lapsed falls back to ReadIndex).
    async fn linearize(&self, policy: ReadPolicy) -> Result<()> {
        let lease = matches!(policy, ReadPolicy::LeaseRead);
        if lease && self.holds_lease() {
            return Ok(());
        }
        let confirmed = match Box::pin(self.raft.ensure_linearizable(policy)).await {
            Err(RaftError::APIError(LinearizableReadError::QuorumNotEnough(_))) if lease => {
                Box::pin(self.raft.ensure_linearizable(ReadPolicy::ReadIndex)).await
            }
            other => other,
        };
        match confirmed {
            // See holds_lease: the log this process started with must be
            // applied too.
            Ok(_) if self.applied_index() >= self.restart_horizon => Ok(()),
            Ok(_) if self.wait_applied(self.restart_horizon, self.lease).await => Ok(()),
            Ok(_) => Err(Error::NoLeader { shard: self.shard }),
            Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(forward))) => Err(Error::NotLeader {
                shard: self.shard,
                leader: forward.leader_id,
            }),
            Err(RaftError::APIError(LinearizableReadError::QuorumNotEnough(_))) => {
                Err(Error::NoLeader { shard: self.shard })
            }
            Err(err) => Err(Error::Fatal {
                shard: self.shard,
                detail: err.to_string(),
            }),
        }
    }
}

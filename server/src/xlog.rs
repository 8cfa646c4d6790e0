//! The cross-region log of one shard: every write the primary region's
//! group applied, numbered, so that other regions can apply the same
//! writes in the same order.
//!
//! Applying a client write in a group assigns it the shard's next *gseq*
//! (global sequence number). A group of the primary region that has
//! somewhere to ship to also keeps the write as a [`Record`] — its gseq, the
//! primary's clock when it was proposed, the encoded write and a crc32 of
//! it — in a window of untrimmed records. A secondary region's group
//! applies records only in gseq order, each exactly once
//! ([`Xlog::accept`]), so shipping may repeat records or restart anywhere
//! at or below what the destination holds.
//!
//! The window is part of the state machine: every replica of the group
//! holds the same records (apply is deterministic), it is written into
//! snapshots with the keyspace, and a restarted replica rebuilds it by
//! re-applying its log over its snapshot. So a new leader ships from where
//! the old one stopped, whichever replica it is, and nothing here needs its
//! own fsync. Records leave the window only through a replicated trim
//! (`WriteOp::XlogTrim`), once every destination acknowledged them.
//!
//! A secondary replica's freshness is the primary's clock: [`Xlog::fresh_ms`]
//! is the primary leader's time at which it had applied nothing this
//! replica lacks (the shipper says so with each batch that reaches its
//! head). Its own leader's heartbeats say nothing about the primary.
//!
//! Which group takes the writes is part of this state too ([`Stance`]):
//! a group serves client writes only while it is open, for the epoch it
//! was opened in. A failover seals the old primary's groups
//! (`WriteOp::XlogSeal`: writes applied after it are refused, whoever
//! proposed them) and opens the new one's (`WriteOp::XlogOpen`); a sealed
//! group takes shipped records and resyncs only from its epoch or a later
//! one, so an old primary that has not yet heard of a failover cannot ship
//! into the new one. A group opened by a failover that was then aborted
//! is closed again (`WriteOp::XlogClose`), back to the current epoch.
//!
//! This module knows records as bytes; the state machine encodes and
//! decodes the writes in them (see [`crate::raft::state_machine`]).

use std::collections::VecDeque;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// One write of the cross-region log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Its place in the shard's sequence, from 1.
    pub gseq: u64,
    /// The primary's clock (ms since the Unix epoch) when it was proposed.
    pub proposed_ms: u64,
    /// The write, encoded.
    pub payload: Bytes,
    /// crc32 of `payload`.
    pub crc32: u32,
}

impl Record {
    /// A record of `payload` at `gseq`, with its checksum.
    pub fn new(gseq: u64, proposed_ms: u64, payload: Bytes) -> Self {
        let crc32 = crc32fast::hash(&payload);
        Record {
            gseq,
            proposed_ms,
            payload,
            crc32,
        }
    }

    /// Whether the payload still matches its checksum.
    pub fn intact(&self) -> bool {
        crc32fast::hash(&self.payload) == self.crc32
    }
}

/// What a replica does with a shipped record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// It is the next one: apply it.
    Next,
    /// It is already applied: skip it.
    Duplicate,
    /// Records are missing before it, or it is corrupt: stop here (the
    /// shipper sends again from what the replica acknowledges).
    Refuse,
}

/// What a destination lacks, as far as the window can tell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lag {
    /// Records not yet acknowledged.
    pub records: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// How long ago the oldest of them was proposed (0 when none is).
    pub ms: u64,
}

/// Records after a destination's acknowledged gseq.
#[derive(Debug, PartialEq, Eq)]
pub enum Since {
    /// The next records, oldest first (empty when the destination has
    /// them all), and whether they reach the head of the log.
    Records {
        /// The records.
        records: Vec<Record>,
        /// Whether the last of them is the newest applied.
        complete: bool,
    },
    /// The destination needs records the window no longer holds.
    Trimmed,
    /// The destination claims records this log never had.
    Ahead,
}

/// Whether a group takes client writes, and in which epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stance {
    /// The newest epoch the group was opened in or shipped from.
    pub epoch: u64,
    /// Whether it applies client writes (its region is the primary).
    pub serving: bool,
}

impl Stance {
    /// Applying client writes in `epoch`.
    pub fn open_in(epoch: u64) -> Self {
        Stance { epoch, serving: true }
    }
}

/// A group's position in the cross-region log, and the window of records
/// it keeps for shipping.
#[derive(Debug, Default, Clone)]
pub struct Xlog {
    /// Whether applied client writes are kept as records (a cluster of
    /// several regions); set when the state machine opens, never
    /// snapshotted.
    keeps: bool,
    /// Whether client writes are applied, and the epoch.
    stance: Stance,
    /// The gseq of the last write applied.
    gseq: u64,
    /// The primary's clock as of which this replica holds every write (a
    /// secondary's; 0 until the first complete batch).
    fresh_ms: u64,
    /// Untrimmed records, gseqs `gseq - window.len() + 1 ..= gseq`.
    window: VecDeque<Record>,
    /// The bytes of their payloads.
    window_bytes: usize,
    /// A resync under way: the gseq it brings, and the part expected next.
    resetting: Option<(u64, u32)>,
    /// The long value the resync's last part left partly restored, which
    /// the next part continues.
    unfinished: Option<Unfinished>,
}

/// A string or hash too long for one block of a snapshot, restored piece
/// by piece (see [`crate::raft::snapshot_file`]): its key, and how much of
/// it is in, in bytes of a string or fields of a hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unfinished {
    /// The key.
    pub key: Bytes,
    /// The bytes or fields restored so far.
    pub filled: u64,
    /// The bytes or fields it holds once whole.
    pub total: u64,
}

impl Xlog {
    /// An empty log that keeps records when `keeps`, in `stance`.
    pub fn new(keeps: bool, stance: Stance) -> Self {
        Xlog {
            keeps,
            stance,
            ..Xlog::default()
        }
    }

    /// A log as a snapshot holds it (see [`Xlog::window`]), keeping
    /// records until [`Xlog::adopted`] says otherwise.
    pub fn restored(
        gseq: u64,
        fresh_ms: u64,
        resetting: Option<(u64, u32)>,
        unfinished: Option<Unfinished>,
        window: Vec<Record>,
    ) -> Self {
        Xlog {
            keeps: true,
            stance: Stance::default(),
            gseq,
            fresh_ms,
            window_bytes: window.iter().map(|r| r.payload.len()).sum(),
            window: window.into(),
            resetting,
            unfinished,
        }
    }

    /// This log (restored from a snapshot) in place of `current`: keeping
    /// records as `current` does, in the snapshot's `stance` or, from a
    /// snapshot older than stances, in `current`'s.
    pub fn adopted(mut self, current: &Xlog, stance: Option<Stance>) -> Self {
        self.keeps = current.keeps;
        self.stance = stance.unwrap_or(current.stance);
        if !self.keeps {
            self.clear_window();
        }
        self
    }

    /// Whether client writes are applied, and the epoch.
    pub fn stance(&self) -> Stance {
        self.stance
    }

    /// Stops applying client writes (a failover away from this region).
    pub fn seal(&mut self) {
        self.stance.serving = false;
    }

    /// Gives up this copy: an old primary's, whose writes past the
    /// handover were discarded. Client writes stop, the copy is no longer
    /// fresh, and it refuses shipped records and opening as a resync cut
    /// short does, until a resync replaces it.
    pub fn discard(&mut self) {
        self.stance.serving = false;
        self.resetting = Some((self.gseq, u32::MAX));
        self.unfinished = None;
        self.fresh_ms = 0;
        self.clear_window();
    }

    /// Applies client writes from now on, in `epoch`.
    pub fn open(&mut self, epoch: u64) {
        self.stance = Stance::open_in(epoch);
    }

    /// Closes the group if it is open in `abandoned`, an epoch no region
    /// is ever primary in: it took no client write there, and takes
    /// shipping from `epoch` (the current one) on, as before it was
    /// opened.
    pub fn close(&mut self, abandoned: u64, epoch: u64) {
        if self.stance == Stance::open_in(abandoned) {
            self.stance = Stance { epoch, serving: false };
        }
    }

    /// Whether shipping from `epoch` may change this log: only a sealed
    /// group takes it, and only from its epoch or a later one (which it
    /// then is in).
    pub fn admits(&mut self, epoch: u64) -> bool {
        let admitted = !self.stance.serving && epoch >= self.stance.epoch;
        if admitted {
            self.stance.epoch = epoch;
        }
        admitted
    }

    /// The records kept after `gseq`: what an old primary discards when it
    /// finds the new one started after `gseq`.
    pub fn after(&self, gseq: u64) -> impl Iterator<Item = &Record> {
        self.window.iter().filter(move |r| r.gseq > gseq)
    }

    /// Whether applied writes are kept as records.
    pub fn keeps(&self) -> bool {
        self.keeps
    }

    /// The gseq of the last write applied.
    pub fn gseq(&self) -> u64 {
        self.gseq
    }

    /// The primary's clock as of which every write is applied here.
    pub fn fresh_ms(&self) -> u64 {
        self.fresh_ms
    }

    /// The untrimmed records, oldest first.
    pub fn window(&self) -> impl ExactSizeIterator<Item = &Record> {
        self.window.iter()
    }

    /// Numbers a write applied here (on the primary), keeping it as a
    /// record if this log keeps any; `payload` encodes it, and is called
    /// only then.
    pub fn append(&mut self, proposed_ms: u64, payload: impl FnOnce() -> Bytes) {
        self.gseq += 1;
        if self.keeps {
            let record = Record::new(self.gseq, proposed_ms, payload());
            self.window_bytes += record.payload.len();
            self.window.push_back(record);
        }
    }

    /// What to do with a shipped record.
    pub fn accept(&self, record: &Record) -> Accept {
        if self.resetting.is_some() {
            Accept::Refuse
        } else if record.gseq <= self.gseq {
            Accept::Duplicate
        } else if record.gseq == self.gseq + 1 && record.intact() {
            Accept::Next
        } else {
            Accept::Refuse
        }
    }

    /// Notes that the shipped record at `gseq` was applied here (a
    /// destination keeps no window: it starts one if it becomes primary).
    pub fn applied(&mut self, gseq: u64) {
        self.gseq = gseq;
    }

    /// The resync under way, if any: the gseq it brings and the part
    /// expected next.
    pub fn resetting(&self) -> Option<(u64, u32)> {
        self.resetting
    }

    /// The long value the resync's parts so far left partly restored.
    pub fn unfinished(&self) -> Option<&Unfinished> {
        self.unfinished.as_ref()
    }

    /// The same, for the next part to continue.
    pub fn unfinished_mut(&mut self) -> &mut Option<Unfinished> {
        &mut self.unfinished
    }

    /// Whether `part` of a resync to `gseq` is the one expected: part 0
    /// always is (it starts the resync over), any other only right after
    /// the one before it. Marks it taken when it is.
    pub fn take_part(&mut self, gseq: u64, part: u32) -> bool {
        let expected = part == 0 || self.resetting == Some((gseq, part));
        if expected {
            if part == 0 {
                self.unfinished = None;
            }
            self.resetting = Some((gseq, part + 1));
            self.clear_window();
            self.fresh_ms = 0;
        }
        expected
    }

    /// Ends the resync: this replica now holds everything up to `gseq`.
    pub fn finish_reset(&mut self, gseq: u64) {
        self.resetting = None;
        self.unfinished = None;
        self.gseq = gseq;
    }

    /// Stops a resync whose part could not be read: every part is refused
    /// until the next part 0.
    pub fn abort_reset(&mut self) {
        if let Some((gseq, _)) = self.resetting {
            self.resetting = Some((gseq, u32::MAX));
        }
        self.unfinished = None;
    }

    /// Notes that the primary had applied nothing this replica lacks at
    /// its clock's `as_of_ms`.
    pub fn fresh_as_of(&mut self, as_of_ms: u64) {
        self.fresh_ms = self.fresh_ms.max(as_of_ms);
    }

    /// Drops the records up to and including `through`.
    pub fn trim(&mut self, through: u64) {
        while self.window.front().is_some_and(|r| r.gseq <= through) {
            if let Some(record) = self.window.pop_front() {
                self.window_bytes -= record.payload.len();
            }
        }
    }

    /// The gseq through which the oldest records must be trimmed for the
    /// rest to hold at most `max_bytes` of payload (0: none need be).
    pub fn over_bytes(&self, max_bytes: u64) -> u64 {
        let mut held = self.window_bytes as u64;
        let mut through = 0;
        for record in &self.window {
            if held <= max_bytes {
                break;
            }
            held -= record.payload.len() as u64;
            through = record.gseq;
        }
        through
    }

    /// Drops every record.
    fn clear_window(&mut self) {
        self.window.clear();
        self.window_bytes = 0;
    }

    /// The records after `acked`, up to about `max_bytes` of payload (at
    /// least one record when there is any).
    pub fn since(&self, acked: u64, max_bytes: usize) -> Since {
        if acked > self.gseq {
            return Since::Ahead;
        }
        let first = self.gseq + 1 - self.window.len() as u64;
        if acked + 1 < first {
            return Since::Trimmed;
        }
        let mut bytes = 0;
        let records: Vec<Record> = self
            .window
            .range((acked + 1 - first) as usize..)
            .take_while(|r| {
                let fits = bytes == 0 || bytes + r.payload.len() <= max_bytes;
                bytes += r.payload.len();
                fits
            })
            .cloned()
            .collect();
        let complete = records.last().map_or(acked, |r| r.gseq) == self.gseq;
        Since::Records { records, complete }
    }

    /// What a destination that acknowledged `acked` lacks, at `now_ms`.
    pub fn lag(&self, acked: u64, now_ms: u64) -> Lag {
        let unacked = self.window.iter().filter(|r| r.gseq > acked);
        let mut lag = Lag {
            records: self.gseq.saturating_sub(acked),
            ..Lag::default()
        };
        for (i, record) in unacked.enumerate() {
            if i == 0 {
                lag.ms = now_ms.saturating_sub(record.proposed_ms);
            }
            lag.bytes += record.payload.len() as u64;
        }
        lag
    }
}

/// A destination as the shipping leader last heard from it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// The highest gseq sent.
    pub shipped: u64,
    /// The highest gseq the destination acknowledged applying.
    pub acked: u64,
    /// Why shipping is stuck, if it is.
    pub stuck: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(n: u64) -> Xlog {
        let mut log = Xlog::new(true, Stance::default());
        for i in 1..=n {
            log.append(1000 + i, || Bytes::from(vec![i as u8; 10]));
        }
        log
    }

    fn gseqs(since: Since) -> (Vec<u64>, bool) {
        match since {
            Since::Records { records, complete } => (records.iter().map(|r| r.gseq).collect(), complete),
            other => panic!("expected records, got {other:?}"),
        }
    }

    #[test]
    fn a_log_that_keeps_nothing_still_numbers_writes() {
        let mut log = Xlog::new(false, Stance::default());
        log.append(1, || unreachable!("nothing is encoded when nothing is kept"));
        log.append(2, || unreachable!("nothing is encoded when nothing is kept"));
        assert_eq!(log.gseq(), 2);
        assert_eq!(log.window().len(), 0);
    }

    #[test]
    fn since_gives_the_records_after_the_ack_within_the_byte_budget() {
        let log = log_of(5);
        assert_eq!(gseqs(log.since(0, 1 << 20)), (vec![1, 2, 3, 4, 5], true));
        assert_eq!(gseqs(log.since(2, 25)), (vec![3, 4], false));
        assert_eq!(gseqs(log.since(2, 1)), (vec![3], false), "at least one record");
        assert_eq!(gseqs(log.since(5, 1 << 20)), (vec![], true));
        assert_eq!(log.since(6, 1 << 20), Since::Ahead);
    }

    #[test]
    fn trimmed_records_are_no_longer_shipped() {
        let mut log = log_of(5);
        log.trim(3);
        assert_eq!(log.window().len(), 2);
        assert_eq!(log.since(2, 1 << 20), Since::Trimmed);
        assert_eq!(gseqs(log.since(3, 1 << 20)), (vec![4, 5], true));
        log.trim(9);
        assert_eq!(gseqs(log.since(5, 1 << 20)), (vec![], true));
    }

    #[test]
    fn the_records_over_a_byte_bound_are_the_oldest() {
        // Twelve records of 10 bytes.
        let mut log = log_of(12);
        assert_eq!(log.over_bytes(120), 0, "120 bytes held");
        assert_eq!(log.over_bytes(119), 1);
        assert_eq!(log.over_bytes(30), 9, "the three newest hold 30");
        assert_eq!(log.over_bytes(29), 10);
        assert_eq!(log.over_bytes(0), 12);
        log.trim(log.over_bytes(30));
        assert_eq!(log.window().len(), 3);
        assert_eq!(log.over_bytes(30), 0);
        log.discard();
        assert_eq!(log.over_bytes(0), 0, "nothing held");
    }

    #[test]
    fn records_are_applied_once_in_order_and_only_when_intact() {
        let source = log_of(3);
        let records: Vec<Record> = source.window().cloned().collect();
        let mut copy = Xlog::new(false, Stance::default());
        assert_eq!(copy.accept(&records[1]), Accept::Refuse, "a gap");
        assert_eq!(copy.accept(&records[0]), Accept::Next);
        copy.applied(records[0].gseq);
        assert_eq!(copy.accept(&records[0]), Accept::Duplicate);
        let mut corrupt = records[1].clone();
        corrupt.payload = Bytes::from_static(b"flipped");
        assert_eq!(copy.accept(&corrupt), Accept::Refuse, "a bad checksum");
        assert_eq!(copy.accept(&records[1]), Accept::Next);
    }

    #[test]
    fn lag_counts_unacknowledged_records_bytes_and_age() {
        let log = log_of(4);
        assert_eq!(
            log.lag(1, 1010),
            Lag {
                records: 3,
                bytes: 30,
                ms: 8
            }
        );
        assert_eq!(log.lag(4, 1010), Lag::default());
    }

    #[test]
    fn a_resync_takes_its_parts_in_order_and_refuses_records_meanwhile() {
        let source = log_of(3);
        let records: Vec<Record> = source.window().cloned().collect();
        let mut copy = Xlog::new(false, Stance::default());
        copy.fresh_as_of(5);
        assert!(!copy.take_part(40, 1), "a resync starts with part 0");
        assert!(copy.take_part(40, 0));
        assert_eq!(copy.fresh_ms(), 0, "not fresh while resyncing");
        assert_eq!(copy.accept(&records[0]), Accept::Refuse);
        assert!(!copy.take_part(40, 2), "part 1 comes first");
        assert!(copy.take_part(40, 1));
        copy.abort_reset();
        assert!(!copy.take_part(40, 2), "refused after an abort");
        assert!(copy.take_part(41, 0), "until the next part 0");
        copy.finish_reset(41);
        assert_eq!((copy.gseq(), copy.resetting()), (41, None));
        assert_eq!(copy.accept(&records[0]), Accept::Duplicate);
    }

    #[test]
    fn a_discarded_copy_takes_nothing_until_a_resync_replaces_it() {
        let mut old = log_of(3);
        old.open(1);
        old.fresh_as_of(5);
        let next = Record::new(4, 0, Bytes::from_static(b"w"));
        old.discard();
        assert!(!old.stance().serving, "client writes stop");
        assert_eq!(old.fresh_ms(), 0, "its reads are no longer fresh");
        assert_eq!(old.window().len(), 0);
        assert_eq!(old.accept(&next), Accept::Refuse, "shipping waits for the copy");
        assert!(!old.take_part(3, 1), "only a resync from its start replaces it");
        assert!(old.take_part(9, 0));
        old.finish_reset(9);
        assert_eq!((old.gseq(), old.resetting()), (9, None));
    }

    #[test]
    fn only_a_sealed_group_takes_shipping_and_only_from_its_epoch_on() {
        let mut log = Xlog::new(
            true,
            Stance {
                epoch: 1,
                serving: true,
            },
        );
        assert!(!log.admits(2), "a serving group ships, it is not shipped to");
        log.seal();
        assert!(!log.admits(0), "an older epoch");
        assert!(log.admits(2));
        assert_eq!(
            log.stance(),
            Stance {
                epoch: 2,
                serving: false
            }
        );
        assert!(!log.admits(1), "the epoch only moves forward");
        log.open(3);
        assert!(!log.admits(3));
        log.append(1, || Bytes::from_static(b"a"));
        log.append(2, || Bytes::from_static(b"b"));
        assert_eq!(log.after(1).map(|r| r.gseq).collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn a_group_open_in_an_abandoned_epoch_closes_back_to_the_current_one() {
        let mut log = Xlog::new(
            false,
            Stance {
                epoch: 1,
                serving: false,
            },
        );
        log.open(2);
        log.close(3, 1);
        assert!(log.stance().serving, "open in another epoch: left as it is");
        log.close(2, 1);
        assert_eq!(
            log.stance(),
            Stance {
                epoch: 1,
                serving: false
            }
        );
        assert!(log.admits(1), "the current primary ships to it again");
    }

    #[test]
    fn freshness_only_moves_forward() {
        let mut log = Xlog::new(false, Stance::default());
        log.fresh_as_of(50);
        log.fresh_as_of(40);
        assert_eq!(log.fresh_ms(), 50);
    }
}

//! Snapshot files: a shard's keyspace streamed to disk in checksummed blocks.
//!
//! Layout: the magic `CAIRNSN1`, then blocks of
//! `len (u32 LE) ‖ crc32 (u32 LE) ‖ payload`. The first block holds the
//! snapshot metadata, the following blocks hold up to [`BLOCK_BYTES`] of
//! records each (strings, and hashes in blocks of their own; a string or
//! hash over [`PIECE_BYTES`] has a block naming it, then blocks of its
//! pieces, so that no block, and no part of a resync, holds a whole long
//! value), then blocks
//! of client sessions (see [`crate::sessions`]), the users, the shard's
//! position in the cross-region log and its untrimmed records (see
//! [`crate::xlog`]), and a final block holds the record count, so a truncated
//! file is detected as surely as a flipped bit. Every error names the file
//! and the byte offset of the bad block.
//!
//! Files are written under a temporary name, fsynced and renamed, so a crash
//! never leaves a half-written file under a snapshot's name.

use std::fs::File;
use std::io::{BufReader, Read, Write as _};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::acl::{User, Users};
use crate::error::{Error, Result};
use crate::keyspace::{Data, Keyspace, Value};
use crate::layout::Layout;
use crate::meta::{Failover, FailoverGroup, Meta};
use crate::raft::typ::SnapshotMeta;
use crate::sessions::{ClientSession, Sessions};
use crate::xlog::{Record, Stance, Unfinished, Xlog};

const MAGIC: &[u8; 8] = b"CAIRNSN1";
/// Records are grouped into blocks of about this many bytes.
pub const BLOCK_BYTES: usize = 64 * 1024;
/// A string or hash larger than this is written in pieces of about this
/// many bytes: a string may hold 512 MiB, a hash any number of fields.
pub const PIECE_BYTES: usize = 1 << 20;
/// A block larger than this is corrupt, not large (protects the reader).
const MAX_BLOCK: usize = 512 * 1024 * 1024;

/// A snapshot as openraft hands it around: the path of a complete file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFile {
    /// Where the file is.
    pub path: PathBuf,
}

/// What a snapshot holds: a shard's keys and its client sessions.
#[derive(Debug, Clone, Default)]
pub struct Contents {
    /// The keys.
    pub keyspace: Keyspace,
    /// The sessions that deduplicate retried writes.
    pub sessions: Sessions,
    /// The users (in [`crate::acl::ACL_SHARD`]'s snapshots).
    pub users: Users,
    /// The cross-region log: position and untrimmed records.
    pub xlog: Xlog,
    /// Whether the group took client writes, and its epoch (absent from
    /// older files: see [`Xlog::adopted`]).
    pub stance: Option<Stance>,
    /// The meta group's state ([`crate::meta::META_GROUP`]'s snapshots).
    pub meta: Meta,
}

impl Contents {
    /// These contents as a snapshot would be encoded from them.
    pub fn view(&self) -> View<'_> {
        View {
            keyspace: &self.keyspace,
            sessions: &self.sessions,
            users: &self.users,
            xlog: &self.xlog,
            meta: &self.meta,
        }
    }
}

/// What a snapshot holds, borrowed from a shard's live state: it is
/// encoded in place, never copied.
#[derive(Clone, Copy)]
pub struct View<'a> {
    /// The keys.
    pub keyspace: &'a Keyspace,
    /// The sessions.
    pub sessions: &'a Sessions,
    /// The users.
    pub users: &'a Users,
    /// The cross-region log.
    pub xlog: &'a Xlog,
    /// The meta group's state.
    pub meta: &'a Meta,
}

/// Sessions per block at most; a block of sessions also ends once their
/// replies reach [`BLOCK_BYTES`] (a session keeps at most
/// [`crate::sessions::REPLY_BYTES_PER_CLIENT`] of them).
const SESSIONS_PER_BLOCK: usize = 64;
/// Cross-region log records per block at most; a block of them also ends
/// once their payloads reach [`BLOCK_BYTES`] (one is a write, at most
/// [`crate::proposals::MAX_WRITE_BYTES`]).
const XLOG_RECORDS_PER_BLOCK: usize = 256;

/// A block's payload. Keys and values are `B`: `Bytes` when read, and
/// [`Raw`] borrowings of the live keyspace when written.
#[derive(Serialize, Deserialize)]
enum Block<B = Bytes> {
    Meta(SnapshotMeta),
    Records(Strings<B>),
    End {
        records: u64,
    },
    Sessions(Vec<(u64, ClientSession)>),
    Hashes(Hashes<B>),
    Users(Vec<(String, User)>),
    /// The position in the cross-region log (absent from older files:
    /// nothing applied has a gseq then).
    XlogPosition {
        gseq: u64,
        fresh_ms: u64,
    },
    XlogRecords(Vec<Record>),
    /// A resync from the primary is under way (see [`crate::xlog`]).
    XlogResetting {
        gseq: u64,
        next_part: u32,
    },
    /// Whether the group takes client writes, and its epoch.
    XlogStance(Stance),
    /// The meta group's failover groups and history (its snapshots only).
    MetaGroups {
        groups: Vec<FailoverGroup>,
        history: Vec<Failover>,
    },
    /// The cluster's layout, as the meta group records it (absent from
    /// older files, and until a node proposed it).
    MetaLayout(Layout),
    /// The newest epoch a failover began towards (absent before the first).
    MetaBegun(u64),
    /// A string over [`PIECE_BYTES`]; its bytes follow in `StringPiece`
    /// blocks.
    LongString {
        key: B,
        len: u64,
        expire_at_ms: Option<u64>,
    },
    /// The next bytes of the `LongString` before it.
    StringPiece(B),
    /// A hash of more than [`PIECE_BYTES`]; its fields follow in
    /// `HashPiece` blocks.
    LongHash {
        key: B,
        fields: u64,
        expire_at_ms: Option<u64>,
    },
    /// The next fields of the `LongHash` before it.
    HashPiece(Vec<(B, B)>),
    /// The long value a resync under way left partly restored (absent
    /// when none).
    XlogUnfinished(Unfinished),
}

/// Bytes of the live state, written as `Bytes` is (so a block written with
/// them reads back as `Block<Bytes>`) without being copied first.
struct Raw<'a>(&'a [u8]);

impl Serialize for Raw<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

struct BlockWriter {
    out: Vec<u8>,
}

impl BlockWriter {
    fn put(&mut self, block: &Block<Raw<'_>>) -> std::io::Result<()> {
        let payload = postcard::to_allocvec(block).map_err(std::io::Error::other)?;
        if payload.len() > MAX_BLOCK {
            let len = payload.len();
            return Err(std::io::Error::other(format!(
                "a block of {len} bytes is over the {MAX_BLOCK}-byte bound of a block"
            )));
        }
        self.out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        self.out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        self.out.extend_from_slice(&payload);
        Ok(())
    }
}

/// String records and hashes gathered for the next blocks.
type Strings<B = Bytes> = Vec<(B, B, Option<u64>)>;
type Hashes<B = Bytes> = Vec<(B, Vec<(B, B)>, Option<u64>)>;

/// Writes the gathered records as blocks (none for an empty kind).
fn flush<'a>(
    writer: &mut BlockWriter,
    records: &mut Strings<Raw<'a>>,
    hashes: &mut Hashes<Raw<'a>>,
) -> std::io::Result<()> {
    if !records.is_empty() {
        writer.put(&Block::Records(std::mem::take(records)))?;
    }
    if !hashes.is_empty() {
        writer.put(&Block::Hashes(std::mem::take(hashes)))?;
    }
    Ok(())
}

/// Encodes a snapshot of `contents` as of `meta`. Keys and values are
/// encoded straight from the live keyspace ([`Raw`]), never copied nor
/// shared (a shared view would cost every stored key a reference-count
/// header for good), so the memory used is the encoded file plus one
/// block's list of references.
pub fn encode(meta: &SnapshotMeta, contents: View<'_>) -> std::io::Result<Vec<u8>> {
    let mut writer = BlockWriter { out: MAGIC.to_vec() };
    writer.put(&Block::Meta(meta.clone()))?;
    let count = put_state(&mut writer, contents)?;
    writer.put(&Block::XlogPosition {
        gseq: contents.xlog.gseq(),
        fresh_ms: contents.xlog.fresh_ms(),
    })?;
    if let Some((gseq, next_part)) = contents.xlog.resetting() {
        writer.put(&Block::XlogResetting { gseq, next_part })?;
    }
    if let Some(unfinished) = contents.xlog.unfinished() {
        writer.put(&Block::XlogUnfinished(unfinished.clone()))?;
    }
    writer.put(&Block::XlogStance(contents.xlog.stance()))?;
    let Meta {
        groups,
        history,
        layout,
        begun,
    } = contents.meta;
    if !groups.is_empty() {
        writer.put(&Block::MetaGroups {
            groups: groups.clone(),
            history: history.clone(),
        })?;
    }
    if let Some(layout) = layout {
        writer.put(&Block::MetaLayout(layout.clone()))?;
    }
    if *begun > 0 {
        writer.put(&Block::MetaBegun(*begun))?;
    }
    // Records share their payloads with the live log: cloning one costs
    // a reference count, not a copy.
    let records = contents
        .xlog
        .window()
        .map(|record| (record.clone(), record.payload.len()));
    let bound = (XLOG_RECORDS_PER_BLOCK, BLOCK_BYTES);
    put_in_blocks(&mut writer, records, bound, Block::XlogRecords)?;
    writer.put(&Block::End { records: count })?;
    Ok(writer.out)
}

/// Writes the blocks of the keys, sessions and users; how many keys.
fn put_state(writer: &mut BlockWriter, contents: View<'_>) -> std::io::Result<u64> {
    let mut records = Vec::new();
    let mut bytes = 0;
    let mut count = 0u64;
    let mut hashes = Vec::new();
    for (key, value) in contents.keyspace.iter() {
        count += 1;
        let expire_at_ms = value.expire_at_ms();
        match &value.data {
            Data::Str(data) if data.len() > PIECE_BYTES => {
                flush(writer, &mut records, &mut hashes)?;
                let len = data.len() as u64;
                writer.put(&Block::LongString {
                    key: Raw(key),
                    len,
                    expire_at_ms,
                })?;
                for piece in data.chunks(PIECE_BYTES) {
                    writer.put(&Block::StringPiece(Raw(piece)))?;
                }
            }
            Data::Str(data) => {
                bytes += key.len() + data.len() + 16;
                records.push((Raw(key), Raw(data), expire_at_ms));
            }
            Data::Hash(fields) => {
                let size = fields.iter().map(|(f, v)| f.len() + v.len() + 16).sum::<usize>();
                if size > PIECE_BYTES {
                    flush(writer, &mut records, &mut hashes)?;
                    put_long_hash(writer, Raw(key), fields, expire_at_ms)?;
                } else {
                    bytes += key.len() + size;
                    let fields = fields.iter().map(|(f, v)| (Raw(f), Raw(v))).collect();
                    hashes.push((Raw(key), fields, expire_at_ms));
                }
            }
        }
        if bytes >= BLOCK_BYTES {
            flush(writer, &mut records, &mut hashes)?;
            bytes = 0;
        }
    }
    flush(writer, &mut records, &mut hashes)?;
    let sessions = contents
        .sessions
        .iter()
        .map(|(client, session)| ((*client, session.clone()), session.reply_bytes()));
    put_in_blocks(writer, sessions, (SESSIONS_PER_BLOCK, BLOCK_BYTES), Block::Sessions)?;
    let users: Vec<(String, User)> = contents
        .users
        .iter()
        .map(|(n, u)| (n.clone(), User::clone(u)))
        .collect();
    if !users.is_empty() {
        writer.put(&Block::Users(users))?;
    }
    Ok(count)
}

/// Writes a hash of more than [`PIECE_BYTES`]: a block naming it, then
/// its fields in pieces of about that many bytes.
fn put_long_hash(
    writer: &mut BlockWriter,
    key: Raw<'_>,
    fields: &IndexMap<Bytes, Bytes>,
    expire_at_ms: Option<u64>,
) -> std::io::Result<()> {
    writer.put(&Block::LongHash {
        key,
        fields: fields.len() as u64,
        expire_at_ms,
    })?;
    let fields = fields.iter().map(|(field, value)| {
        let size = field.len() + value.len() + 16;
        ((Raw(field), Raw(value)), size)
    });
    put_in_blocks(writer, fields, (usize::MAX, PIECE_BYTES), Block::HashPiece)
}

/// Writes `items` (each with its size) as blocks made by `block`, each
/// ending once it holds `bound.0` items or their sizes reach `bound.1`.
fn put_in_blocks<'a, T>(
    writer: &mut BlockWriter,
    items: impl Iterator<Item = (T, usize)>,
    bound: (usize, usize),
    block: impl Fn(Vec<T>) -> Block<Raw<'a>>,
) -> std::io::Result<()> {
    let (mut gathered, mut bytes) = (Vec::new(), 0);
    for (item, size) in items {
        gathered.push(item);
        bytes += size;
        if gathered.len() >= bound.0 || bytes >= bound.1 {
            writer.put(&block(std::mem::take(&mut gathered)))?;
            bytes = 0;
        }
    }
    if !gathered.is_empty() {
        writer.put(&block(gathered))?;
    }
    Ok(())
}

/// A shard's keys, sessions and users as blocks, in parts of whole blocks
/// of about `max_part` bytes at most (one part at least): the copy a
/// destination of the cross-region log is resynced from, one part per
/// entry of its log (see [`restore_part`]).
pub fn image(contents: View<'_>, max_part: usize) -> std::io::Result<Vec<Bytes>> {
    let mut writer = BlockWriter { out: Vec::new() };
    put_state(&mut writer, contents)?;
    let encoded = Bytes::from(writer.out);
    let mut parts = Vec::new();
    let (mut start, mut at) = (0, 0);
    while at < encoded.len() {
        let len = u32::from_le_bytes(encoded[at..at + 4].try_into().expect("4 bytes")) as usize;
        let end = at + 8 + len;
        if end - start > max_part && at > start {
            parts.push(encoded.slice(start..at));
            start = at;
        }
        at = end;
    }
    if start < encoded.len() || parts.is_empty() {
        parts.push(encoded.slice(start..));
    }
    Ok(parts)
}

/// Where restored keys, sessions and users go.
pub struct Target<'a> {
    /// The keys.
    pub keyspace: &'a mut Keyspace,
    /// The sessions.
    pub sessions: &'a mut Sessions,
    /// The users.
    pub users: &'a mut Users,
    /// The long value whose pieces are still to come, if any.
    pub unfinished: &'a mut Option<Unfinished>,
}

/// Restores a part made by [`image`] into `into`; a bad block is named by
/// its offset in the part.
pub fn restore_part(part: &[u8], into: &mut Target<'_>) -> std::result::Result<(), String> {
    let mut at = 0;
    while at < part.len() {
        if part.len() - at < 8 {
            return Err(format!("block at {at} is truncated"));
        }
        let len = u32::from_le_bytes(part[at..at + 4].try_into().expect("4 bytes")) as usize;
        let stored = u32::from_le_bytes(part[at + 4..at + 8].try_into().expect("4 bytes"));
        let payload = part
            .get(at + 8..at + 8 + len)
            .ok_or_else(|| format!("block at {at} is truncated"))?;
        let block = decode_block(payload, stored).map_err(|e| format!("block at {at}: {e}"))?;
        restore(block, into).map_err(|e| format!("block at {at}: {e}"))?;
        at += 8 + len;
    }
    Ok(())
}

/// Puts a block of keys, sessions or users into `into`; how many keys it
/// started (other blocks are left alone). A long value's pieces must
/// follow it, each in order and none missing.
fn restore(block: Block, into: &mut Target<'_>) -> std::result::Result<u64, String> {
    match (block, into.unfinished.take()) {
        (Block::StringPiece(piece), Some(unfinished)) => {
            let at = unfinished.filled as usize;
            match into.keyspace.restoring(&unfinished.key) {
                Some(Data::Str(data)) if at + piece.len() <= data.len() => {
                    data[at..at + piece.len()].copy_from_slice(&piece);
                }
                _ => return Err(misfit(&unfinished, piece.len())),
            }
            advance(into, unfinished, piece.len())
        }
        (Block::HashPiece(piece), Some(unfinished)) => {
            let count = piece.len();
            let fits = unfinished.filled + count as u64 <= unfinished.total;
            match into.keyspace.restoring(&unfinished.key) {
                Some(Data::Hash(fields)) if fits => fields.extend(piece),
                _ => return Err(misfit(&unfinished, count)),
            }
            advance(into, unfinished, count)
        }
        (Block::StringPiece(_) | Block::HashPiece(_), None) => Err("a piece of no long value".into()),
        (_, Some(unfinished)) => Err(format!(
            "the long value of key {:?} ends after {} of its {}",
            unfinished.key, unfinished.filled, unfinished.total
        )),
        (block, None) => Ok(restore_whole(block, into)),
    }
}

/// Notes that `count` more bytes or fields of `unfinished` are in; it
/// stays open until all are. No key starts with a piece.
fn advance(into: &mut Target<'_>, mut unfinished: Unfinished, count: usize) -> std::result::Result<u64, String> {
    unfinished.filled += count as u64;
    if unfinished.filled < unfinished.total {
        *into.unfinished = Some(unfinished);
    }
    Ok(0)
}

/// Why a piece of `count` bytes or fields cannot go into `unfinished`.
fn misfit(unfinished: &Unfinished, count: usize) -> String {
    format!(
        "a piece of {count} does not fit the long value of key {:?} ({} of {} in)",
        unfinished.key, unfinished.filled, unfinished.total
    )
}

/// Puts a block other than a long value's piece into `into`; how many keys
/// it started.
fn restore_whole(block: Block, into: &mut Target<'_>) -> u64 {
    match block {
        Block::Records(records) => {
            let count = records.len() as u64;
            for (key, data, expire_at_ms) in records {
                into.keyspace.restore(&key, Value::string(&data, expire_at_ms));
            }
            count
        }
        Block::Hashes(hashes) => {
            let count = hashes.len() as u64;
            for (key, fields, expire_at_ms) in hashes {
                let value = Value::new(Data::Hash(Box::new(fields.into_iter().collect())), expire_at_ms);
                into.keyspace.restore(&key, value);
            }
            count
        }
        Block::LongString { key, len, expire_at_ms } => {
            let data = vec![0; len as usize].into_boxed_slice();
            into.keyspace.restore(&key, Value::new(Data::Str(data), expire_at_ms));
            open(into, key, len);
            1
        }
        Block::LongHash {
            key,
            fields,
            expire_at_ms,
        } => {
            let hash = IndexMap::with_capacity(fields as usize);
            into.keyspace
                .restore(&key, Value::new(Data::Hash(Box::new(hash)), expire_at_ms));
            open(into, key, fields);
            1
        }
        Block::Sessions(sessions) => {
            for (client, session) in sessions {
                into.sessions.restore(client, session);
            }
            0
        }
        Block::Users(users) => {
            for (name, user) in users {
                into.users.restore(name, user);
            }
            0
        }
        _ => 0,
    }
}

/// Notes that the long value at `key` awaits `total` bytes or fields.
fn open(into: &mut Target<'_>, key: Bytes, total: u64) {
    if total > 0 {
        *into.unfinished = Some(Unfinished { key, filled: 0, total });
    }
}

/// Checks a block's payload against its stored crc32 and decodes it.
fn decode_block(payload: &[u8], stored: u32) -> std::result::Result<Block, String> {
    let actual = crc32fast::hash(payload);
    if actual != stored {
        return Err(format!(
            "crc32 mismatch (stored {stored:#010x}, computed {actual:#010x})"
        ));
    }
    postcard::from_bytes(payload).map_err(|e| format!("undecodable block: {e}"))
}

/// Writes an encoded snapshot to `path` (via a temporary file, fsynced,
/// then renamed into place).
pub fn write(path: &Path, encoded: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let io = |e| Error::io(&tmp, e);
    let mut file = File::create(&tmp).map_err(io)?;
    file.write_all(encoded).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    sync_dir(path)
}

/// Fsyncs the directory holding `path`, so a rename is durable.
pub fn sync_dir(path: &Path) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

struct BlockReader {
    input: BufReader<File>,
    path: PathBuf,
    offset: u64,
}

impl BlockReader {
    fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let mut reader = BlockReader {
            input: BufReader::new(file),
            path: path.to_path_buf(),
            offset: 0,
        };
        let mut magic = [0u8; 8];
        reader.read_exact(&mut magic)?;
        if &magic != MAGIC {
            return Err(reader.corrupt(0, "not a Cairn snapshot (bad magic)".into()));
        }
        Ok(reader)
    }

    fn corrupt(&self, offset: u64, detail: String) -> Error {
        Error::Corrupt {
            what: "snapshot block",
            path: self.path.clone(),
            offset,
            detail,
        }
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<()> {
        match self.input.read_exact(buf) {
            Ok(()) => {
                self.offset += buf.len() as u64;
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err(self.corrupt(self.offset, "file ends early (truncated)".into()))
            }
            Err(e) => Err(Error::io(&self.path, e)),
        }
    }

    fn next(&mut self) -> Result<Block> {
        let start = self.offset;
        let mut header = [0u8; 8];
        self.read_exact(&mut header)?;
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let stored = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        if len > MAX_BLOCK {
            return Err(self.corrupt(start, format!("block length {len} is implausible")));
        }
        let mut payload = vec![0u8; len];
        self.read_exact(&mut payload)?;
        decode_block(&payload, stored).map_err(|detail| self.corrupt(start, detail))
    }
}

/// Reads only the metadata of a snapshot file (its first block).
pub fn read_meta(path: &Path) -> Result<SnapshotMeta> {
    let mut reader = BlockReader::open(path)?;
    match reader.next()? {
        Block::Meta(meta) => Ok(meta),
        _ => Err(reader.corrupt(8, "first block is not the metadata".into())),
    }
}

/// Reads and verifies a whole snapshot file.
pub fn read(path: &Path) -> Result<(SnapshotMeta, Contents)> {
    let mut reader = BlockReader::open(path)?;
    let meta = match reader.next()? {
        Block::Meta(meta) => meta,
        _ => return Err(reader.corrupt(8, "first block is not the metadata".into())),
    };
    let mut contents = Contents::default();
    let mut count = 0u64;
    let (mut gseq, mut fresh_ms, mut resetting, mut window) = (0, 0, None, Vec::new());
    // The resync's unfinished value, and this file's own.
    let (mut resync_unfinished, mut unfinished) = (None, None);
    loop {
        let start = reader.offset;
        match reader.next()? {
            Block::XlogPosition { gseq: g, fresh_ms: f } => (gseq, fresh_ms) = (g, f),
            Block::XlogResetting { gseq, next_part } => resetting = Some((gseq, next_part)),
            Block::XlogUnfinished(value) => resync_unfinished = Some(value),
            Block::XlogRecords(records) => window.extend(records),
            Block::XlogStance(stance) => contents.stance = Some(stance),
            Block::MetaGroups { groups, history } => {
                contents.meta.groups = groups;
                contents.meta.history = history;
            }
            Block::MetaLayout(layout) => contents.meta.layout = Some(layout),
            Block::MetaBegun(begun) => contents.meta.begun = begun,
            Block::End { .. } if unfinished.is_some() => {
                return Err(reader.corrupt(start, "end block before a long value's last piece".into()));
            }
            Block::End { records } if records == count => {
                contents.xlog = Xlog::restored(gseq, fresh_ms, resetting, resync_unfinished, window);
                return Ok((meta, contents));
            }
            Block::End { records } => {
                return Err(reader.corrupt(start, format!("end block counts {records} records, file holds {count}")));
            }
            Block::Meta(_) => return Err(reader.corrupt(start, "second metadata block".into())),
            block => {
                let mut into = Target {
                    keyspace: &mut contents.keyspace,
                    sessions: &mut contents.sessions,
                    users: &mut contents.users,
                    unfinished: &mut unfinished,
                };
                count += restore(block, &mut into).map_err(|detail| reader.corrupt(start, detail))?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::{AclChange, Rule};
    use crate::keyspace::{HashWrite, Reply, SetCondition, Write, WriteOp};
    use crate::sessions::SessionTag;

    fn contents(n: usize) -> Contents {
        let mut contents = Contents::default();
        for i in 0..n {
            let write = Write {
                now_ms: 0,
                session: None,
                op: WriteOp::Set {
                    key: Bytes::from(format!("key-{i}")),
                    value: Bytes::from(vec![b'x'; 100]),
                    expire_at_ms: (i % 2 == 0).then_some(10_000 + i as u64),
                    condition: SetCondition::Always,
                    keep_ttl: false,
                    get: false,
                },
            };
            let tag = SessionTag {
                client: i as u64 % 100,
                seq: i as u64,
                acked_below: 0,
            };
            let keyspace = &mut contents.keyspace;
            contents.sessions.apply(tag, 0, || keyspace.apply(&write));
        }
        contents.keyspace.apply(&Write {
            now_ms: 0,
            session: None,
            op: WriteOp::Hash(HashWrite::Set {
                key: Bytes::from("a-hash"),
                pairs: vec![
                    (Bytes::from("f"), Bytes::from("v")),
                    (Bytes::from("g"), Bytes::from("w")),
                ],
                if_absent: false,
            }),
        });
        contents.users.apply(&AclChange::SetUser {
            name: "app".into(),
            rules: vec![
                Rule::On,
                Rule::AddPassword(crate::acl::digest("pw")),
                Rule::Allow("@read".into()),
            ],
            base: User::default(),
        });
        contents.xlog = Xlog::new(
            true,
            Stance {
                epoch: 3,
                serving: true,
            },
        );
        for i in 0..600u64 {
            contents.xlog.append(i, || Bytes::from(i.to_string()));
        }
        contents.xlog.trim(10);
        contents.xlog.fresh_as_of(77);
        contents
    }

    #[test]
    fn a_block_written_from_borrowed_bytes_reads_as_one_of_bytes() {
        let hash = vec![(Raw(b"f"), Raw(b"v"))];
        let written = Block::Hashes(vec![(Raw(b"h"), hash, None)]);
        let encoded = postcard::to_allocvec(&written).unwrap();
        let owned: Hashes = vec![(Bytes::from("h"), vec![(Bytes::from("f"), Bytes::from("v"))], None)];
        assert_eq!(encoded, postcard::to_allocvec(&Block::Hashes(owned)).unwrap());
        let strings = Block::Records(vec![(Raw(b"k"), Raw(b"value"), Some(5))]);
        let read: Block = postcard::from_bytes(&postcard::to_allocvec(&strings).unwrap()).unwrap();
        assert!(matches!(read, Block::Records(r) if r == [(Bytes::from("k"), Bytes::from("value"), Some(5))]));
    }

    #[test]
    fn round_trip_keeps_every_key_and_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.snap");
        let original = contents(5000);
        write(&path, &encode(&SnapshotMeta::default(), original.view()).unwrap()).unwrap();
        let (meta, back) = read(&path).unwrap();
        assert_eq!(meta, SnapshotMeta::default());
        assert_eq!(back.keyspace.len(), 5001, "5000 strings and a hash");
        for (k, v) in original.keyspace.iter() {
            let got = back.keyspace.iter().find(|(bk, _)| *bk == k).unwrap().1;
            assert_eq!(got, v);
        }
        assert_eq!(back.sessions, original.sessions);
        assert_eq!(back.sessions.len(), 100);
        assert_eq!(back.users, original.users);
        assert!(back.users.get("app").is_some_and(|u| u.accepts(b"pw")));
        assert_eq!((back.xlog.gseq(), back.xlog.fresh_ms()), (600, 77));
        assert!(
            back.xlog.window().eq(original.xlog.window()),
            "the untrimmed records 11..=600"
        );
        assert_eq!(
            back.stance,
            Some(Stance {
                epoch: 3,
                serving: true
            })
        );
        let mut restored = back.sessions;
        let repeat = SessionTag {
            client: 3,
            seq: 3,
            acked_below: 0,
        };
        assert_eq!(restored.apply(repeat, 0, || Reply::Nil), Reply::Ok);
        assert!(!dir.path().join("s.tmp").exists());
    }

    #[test]
    fn the_meta_groups_state_round_trips_with_its_layout() {
        use crate::config::{Durability, FailoverOptions};
        use crate::dev::{Shape, topology};
        use crate::meta::MetaOp;

        let shape = Shape {
            regions: 2,
            zones: 3,
            witness: true,
            shards: 2,
        };
        let topology = topology(7000, shape, Durability::Zone, FailoverOptions::default()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.snap");
        let mut original = Contents::default();
        let begin = MetaOp::Begin {
            group: "default".into(),
            to: 1,
            forced: false,
            by: "test".into(),
        };
        for op in [
            MetaOp::Layout(Layout::of(&topology)),
            MetaOp::Init(topology.failover_groups()),
            begin,
        ] {
            assert_eq!(original.meta.apply(&op, 5), None);
        }
        write(&path, &encode(&SnapshotMeta::default(), original.view()).unwrap()).unwrap();
        let (_, back) = read(&path).unwrap();
        assert_eq!(back.meta, original.meta);
        assert!(back.meta.layout.is_some() && !back.meta.groups.is_empty() && back.meta.begun == 2);
    }

    #[test]
    fn an_image_in_parts_restores_the_same_keys_sessions_and_users() {
        let original = contents(3000);
        let parts = image(original.view(), 100 * 1024).unwrap();
        assert!(parts.len() > 2, "{} parts", parts.len());
        assert!(
            parts.iter().all(|p| p.len() <= 100 * 1024),
            "whole blocks, each under the bound"
        );
        let mut back = Contents::default();
        let mut unfinished = None;
        let mut into = target(&mut back, &mut unfinished);
        for part in &parts {
            restore_part(part, &mut into).unwrap();
        }
        let mut flipped = parts[1].to_vec();
        flipped[20] ^= 1;
        let err = restore_part(&flipped, &mut into).unwrap_err();
        assert!(err.contains("block at 0") && err.contains("crc32"), "{err}");

        assert_same_keys(&back.keyspace, &original.keyspace);
        assert_eq!(back.sessions, original.sessions);
        assert_eq!(back.users, original.users);

        let empty = image(Contents::default().view(), 1024).unwrap();
        assert_eq!(empty.len(), 1, "an empty shard is one empty part");
    }

    /// `contents(n)` with a string and a hash too long for one block:
    /// 3.5 MiB of bytes that differ from piece to piece, and 40,000
    /// fields of about 2.4 MiB in all.
    fn contents_with_long_values(n: usize) -> Contents {
        let mut contents = contents(n);
        // Sessions and cross-region records of 60 KiB each, 3.75 MiB of
        // each kind.
        let reply = Reply::Value(Bytes::from(vec![b'r'; 60 << 10]));
        for client in 0..64 {
            let tag = SessionTag {
                client: 1000 + client,
                seq: 0,
                acked_below: 0,
            };
            contents.sessions.apply(tag, 0, || reply.clone());
        }
        for i in 0..64 {
            contents.xlog.append(i, || Bytes::from(vec![b'w'; 60 << 10]));
        }
        let long: Vec<u8> = (0..PIECE_BYTES * 7 / 2).map(|i| (i / 1000) as u8).collect();
        contents
            .keyspace
            .restore(b"long-string", Value::string(&long, Some(99_000)));
        let fields = (0..40_000).map(|i| (Bytes::from(format!("field-{i}")), Bytes::from(format!("value-{i:040}"))));
        let hash = Value::new(Data::Hash(Box::new(fields.collect())), None);
        contents.keyspace.restore(b"long-hash", hash);
        contents
    }

    /// The payload size of each block after the magic of `encoded`.
    fn block_sizes(encoded: &[u8]) -> Vec<usize> {
        let mut at = MAGIC.len();
        let mut sizes = Vec::new();
        while at < encoded.len() {
            let len = u32::from_le_bytes(encoded[at..at + 4].try_into().unwrap()) as usize;
            sizes.push(len);
            at += 8 + len;
        }
        sizes
    }

    /// The index of the first part that starts with a long value's piece.
    fn first_piece(parts: &[Bytes]) -> usize {
        parts
            .iter()
            .position(|part| {
                matches!(
                    postcard::from_bytes::<Block>(&part[8..]),
                    Ok(Block::StringPiece(_) | Block::HashPiece(_))
                )
            })
            .expect("a piece")
    }

    /// Where parts restore into `contents`, with the value they leave
    /// unfinished kept in `unfinished`.
    fn target<'a>(contents: &'a mut Contents, unfinished: &'a mut Option<Unfinished>) -> Target<'a> {
        Target {
            keyspace: &mut contents.keyspace,
            sessions: &mut contents.sessions,
            users: &mut contents.users,
            unfinished,
        }
    }

    /// Asserts that `back` holds exactly the keys of `original`.
    fn assert_same_keys(back: &Keyspace, original: &Keyspace) {
        assert_eq!(back.len(), original.len());
        for (k, v) in original.iter() {
            assert_eq!(back.iter().find(|(bk, _)| *bk == k).unwrap().1, v);
        }
    }

    #[test]
    fn long_values_are_written_in_pieces_and_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.snap");
        let original = contents_with_long_values(100);
        let encoded = encode(&SnapshotMeta::default(), original.view()).unwrap();
        let largest = block_sizes(&encoded).into_iter().max().unwrap();
        assert!(
            largest <= PIECE_BYTES + 1024,
            "a block of {largest} bytes holds more than a piece"
        );
        write(&path, &encoded).unwrap();
        let (_, back) = read(&path).unwrap();
        assert_same_keys(&back.keyspace, &original.keyspace);
        assert_eq!(back.sessions, original.sessions);
        assert!(back.xlog.window().eq(original.xlog.window()));
    }

    #[test]
    fn a_long_value_cut_short_is_refused_by_name() {
        let original = contents_with_long_values(0);
        let parts = image(original.view(), 1).unwrap();
        assert!(parts.len() > 10, "a part per block: {}", parts.len());
        let mut back = Contents::default();
        let mut unfinished = None;
        let mut into = target(&mut back, &mut unfinished);
        // Every part through a long value's first piece, then the last
        // part (the sessions and users).
        let first_piece = first_piece(&parts);
        for part in &parts[..=first_piece] {
            restore_part(part, &mut into).unwrap();
        }
        let err = restore_part(parts.last().unwrap(), &mut into).unwrap_err();
        assert!(
            err.contains("the long value of key") && err.contains("long-") && err.contains("ends after"),
            "names the key: {err}"
        );
        let mut none = None;
        let mut into = target(&mut back, &mut none);
        let err = restore_part(&parts[first_piece + 1], &mut into).unwrap_err();
        assert!(err.contains("a piece of no long value"), "{err}");
    }

    /// Takes `parts`, numbered from `first`, of a resync to `gseq` into
    /// `copy`, as a replica applies them.
    fn take_parts(copy: &mut Contents, gseq: u64, parts: &[Bytes], first: usize) {
        for (i, part) in parts.iter().enumerate() {
            assert!(copy.xlog.take_part(gseq, (first + i) as u32));
            let mut into = Target {
                keyspace: &mut copy.keyspace,
                sessions: &mut copy.sessions,
                users: &mut copy.users,
                unfinished: copy.xlog.unfinished_mut(),
            };
            restore_part(part, &mut into).unwrap();
        }
    }

    #[test]
    fn a_resync_inside_a_long_value_survives_a_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.snap");
        let source = contents_with_long_values(10);
        let parts = image(source.view(), 64 * 1024).unwrap();
        // The copy takes its first parts, up to the middle of a long
        // value, then is snapshotted and read back.
        let mut copy = Contents::default();
        let gseq = source.xlog.gseq();
        let middle = first_piece(&parts) + 1;
        take_parts(&mut copy, gseq, &parts[..middle], 0);
        assert!(copy.xlog.unfinished().is_some(), "stopped inside a long value");
        write(&path, &encode(&SnapshotMeta::default(), copy.view()).unwrap()).unwrap();
        let (_, mut back) = read(&path).unwrap();
        assert_eq!(back.xlog.unfinished(), copy.xlog.unfinished());
        assert_eq!(back.xlog.resetting(), Some((gseq, middle as u32)));
        take_parts(&mut back, gseq, &parts[middle..], middle);
        assert_eq!(back.xlog.unfinished(), None);
        assert_same_keys(&back.keyspace, &source.keyspace);
    }

    #[test]
    fn a_flipped_byte_is_reported_with_file_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.snap");
        write(&path, &encode(&SnapshotMeta::default(), contents(3000).view()).unwrap()).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let err = read(&path).unwrap_err();
        let Error::Corrupt {
            path: p,
            offset,
            detail,
            ..
        } = &err
        else {
            panic!("expected corruption, got {err}");
        };
        assert_eq!(p, &path);
        assert!(
            *offset <= at as u64 && *offset > 8,
            "offset {offset} vs flipped byte at {at}"
        );
        assert!(detail.contains("crc32"), "{detail}");
        assert!(err.to_string().contains("s.snap"), "{err}");
    }

    #[test]
    fn a_truncated_file_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.snap");
        write(&path, &encode(&SnapshotMeta::default(), contents(3000).view()).unwrap()).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
    }
}

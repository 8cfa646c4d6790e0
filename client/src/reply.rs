//! What calls return: the value and where it came from.

use std::time::Duration;

use bytes::Bytes;
use cairn_proto::kv;

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    /// The shard that answered.
    pub shard: u64,
    /// The Raft log index the answer reflects (the write's own index for a
    /// write).
    pub index: u64,
    /// The node that served it.
    pub served_by: u64,
}

impl From<Option<kv::ReplyHeader>> for Header {
    fn from(header: Option<kv::ReplyHeader>) -> Self {
        let header = header.unwrap_or_default();
        Header {
            shard: header.shard,
            index: header.applied_index,
            served_by: header.served_by,
        }
    }
}

/// A value and the header of the answer it came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply<T> {
    /// The value.
    pub value: T,
    /// Where it came from.
    pub header: Header,
}

impl<T> Reply<T> {
    /// The value alone.
    pub fn into_value(self) -> T {
        self.value
    }
}

/// The outcome of a compare-and-set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CasOutcome {
    /// Whether the new value was stored.
    pub swapped: bool,
    /// The value found when it was not (`None`: the key was absent).
    pub current: Option<Bytes>,
}

/// A key's remaining time to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// The key does not exist.
    Missing,
    /// The key never expires.
    Persistent,
    /// The key expires after this long.
    ExpiresIn(Duration),
}

impl Ttl {
    pub(crate) fn from_ms(ms: i64) -> Self {
        match ms {
            -1 => Ttl::Persistent,
            ms if ms < 0 => Ttl::Missing,
            ms => Ttl::ExpiresIn(Duration::from_millis(ms as u64)),
        }
    }
}

/// The answer to an `mget`: values in the order of the keys asked, and one
/// header per shard that answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MGet {
    /// The values (`None`: absent).
    pub values: Vec<Option<Bytes>>,
    /// One per shard involved.
    pub headers: Vec<Header>,
}

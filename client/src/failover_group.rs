//! Handles per failover group: [`Client::read_write`] and
//! [`Client::read_only`].
//!
//! A failover group's writes and linearizable reads are taken by its
//! primary region only, and a failover moves that to another region in a
//! new epoch. Each key is served by the failover group of its shard: the
//! read/write handle routes every call to that group's primary shard
//! leader; it learns of a failover from the topology stream (a
//! status of a later epoch replaces the whole routing picture, one of an
//! earlier epoch changes no route) or, failing that, from the refusals of
//! the old primary's nodes, which forward to the new one.
//!
//! The read-only handle reads the replicas in the client's own region
//! ([`ClientBuilder::region`](crate::ClientBuilder::region)), within a
//! staleness bound: a secondary region's replica answers when its
//! cross-region log shows it at most that far behind the primary, and the
//! primary's leader answers otherwise. It has no write methods, so a write
//! through it does not compile.

use std::time::Duration;

use bytes::Bytes;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::options::Consistency;
use crate::reply::{MGet, Reply, Ttl};

/// The name of the one failover group of a cluster of one region, which
/// reports none.
const SINGLE_REGION_GROUP: &str = "default";

/// The staleness bound of a new read-only handle, as the read-only
/// listener's default.
const DEFAULT_BOUND: Duration = Duration::from_secs(1);

impl Client {
    /// The handle for failover group `group`'s reads and writes, which
    /// follows the group's primary region across failovers.
    pub fn read_write(&self, group: &str) -> Result<Client> {
        self.check_group(group)?;
        Ok(self.clone())
    }

    /// The handle for reads of failover group `group` from the replicas in
    /// this client's region, at most 1 s stale (see
    /// [`ReadOnly::max_staleness`]).
    pub fn read_only(&self, group: &str) -> Result<ReadOnly> {
        self.check_group(group)?;
        let mut client = self.with(self.options.consistency(Consistency::BoundedStaleness(DEFAULT_BOUND)));
        client.local_reads = true;
        Ok(ReadOnly { client })
    }

    /// The region this client runs in.
    pub fn region(&self) -> &str {
        &self.inner.region
    }

    fn check_group(&self, group: &str) -> Result<()> {
        let topology = self.inner.topology.read().expect("topology lock");
        let known: Vec<&str> = match topology.failover_groups.is_empty() {
            true => vec![SINGLE_REGION_GROUP],
            false => topology.failover_groups.iter().map(|g| g.name.as_str()).collect(),
        };
        if known.contains(&group) {
            Ok(())
        } else {
            Err(Error::InvalidArgument(format!(
                "the cluster has no failover group {group:?} (it has {})",
                known.join(", ")
            )))
        }
    }
}

/// Reads of one failover group from the client's own region; made by
/// [`Client::read_only`]. Clones are cheap.
#[derive(Debug, Clone)]
pub struct ReadOnly {
    client: Client,
}

impl ReadOnly {
    /// This handle with another staleness bound (at least 1 ms).
    pub fn max_staleness(&self, bound: Duration) -> ReadOnly {
        let bound = bound.max(Duration::from_millis(1));
        let options = self.client.options.consistency(Consistency::BoundedStaleness(bound));
        ReadOnly {
            client: self.client.with(options),
        }
    }

    /// This handle with another call deadline.
    pub fn deadline(&self, deadline: Duration) -> ReadOnly {
        ReadOnly {
            client: self.client.with(self.client.options.deadline(deadline)),
        }
    }

    /// The value of `key` (`None` if absent).
    pub async fn get(&self, key: impl Into<Bytes>) -> Result<Reply<Option<Bytes>>> {
        self.client.get(key).await
    }

    /// The values of several keys.
    pub async fn mget<K: Into<Bytes>>(&self, keys: impl IntoIterator<Item = K>) -> Result<MGet> {
        self.client.mget(keys).await
    }

    /// How long `key` has left to live.
    pub async fn ttl(&self, key: impl Into<Bytes>) -> Result<Reply<Ttl>> {
        self.client.ttl(key).await
    }
}

//! The regions of a run: which one is each failover group's primary,
//! failovers asked for, and what each failover discarded.
//!
//! The harness learns what it needs as an operator would, through the
//! Redis protocol of any data node: `CAIRN.STATUS` names each group's
//! shards and primary, `CAIRN.FAILOVER` moves one, `CAIRN.FAILOVERS` says
//! when each failover of each group switched. An old primary that comes
//! back writes what it discarded to `lost-writes.log` in its data dir, one
//! line per record with its shard and the epoch it was written in (every
//! group starts in epoch 1, so the shard's group tells which failover
//! ended it); [`discarded`] joins them into, per key, the time (on the
//! history's clock) after which no read may see that write.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::resp_client::{Reply, RespClient};

/// How long one admin command may take (a failover waits for its switch).
const ADMIN_TIMEOUT: Duration = Duration::from_secs(40);

/// Writes an old primary discarded: per key, when the epoch they were
/// written in ended (ns on the history's clock).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Discarded {
    /// Key → switch time of the failover that ended the write's epoch.
    pub keys: BTreeMap<String, u64>,
    /// Keys whose discarded write carried a client session: its client
    /// may have retried it, and the new primary applied it again, so it
    /// may be present after all.
    #[serde(default)]
    pub retried: BTreeSet<String>,
}

impl Discarded {
    /// Reads `discarded.json` next to a saved history, if there is one.
    pub fn load_beside(history: &Path) -> anyhow::Result<Discarded> {
        let path = history.with_file_name(FILE);
        if !path.exists() {
            return Ok(Discarded::default());
        }
        let text = std::fs::read_to_string(&path)?;
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// Writes `discarded.json` in `dir`.
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::write(dir.join(FILE), serde_json::to_string_pretty(self)?)?;
        Ok(())
    }
}

/// The file [`Discarded`] is saved in.
const FILE: &str = "discarded.json";

/// Runs one command on the first of `nodes` that answers it without an
/// error; the last error otherwise.
async fn command(nodes: &[SocketAddr], args: &[&[u8]]) -> anyhow::Result<String> {
    let mut last = anyhow::anyhow!("no node to ask");
    for &addr in nodes {
        let answer = async {
            let mut client = RespClient::connect(addr).await?;
            client.call(args).await
        };
        match tokio::time::timeout(ADMIN_TIMEOUT, answer).await {
            Ok(Ok(Reply::Bulk(Some(text)))) => return Ok(String::from_utf8_lossy(&text).into_owned()),
            Ok(Ok(Reply::Error(e))) => last = anyhow::anyhow!("{addr}: {e}"),
            Ok(Ok(other)) => last = anyhow::anyhow!("{addr}: unexpected reply {other:?}"),
            Ok(Err(e)) => last = anyhow::anyhow!("{addr}: {e}"),
            Err(_) => last = anyhow::anyhow!("{addr}: no answer within {ADMIN_TIMEOUT:?}"),
        }
    }
    Err(last)
}

/// A failover group as `CAIRN.STATUS` describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Its name.
    pub name: String,
    /// Its primary region.
    pub primary: String,
    /// Its shards.
    pub shards: Vec<u64>,
}

/// Every failover group, as the first node that answers describes them
/// (the first is the one the topology declares first, or `default`).
pub async fn groups(nodes: &[SocketAddr]) -> anyhow::Result<Vec<Group>> {
    let status = command(nodes, &[b"CAIRN.STATUS"]).await?;
    let groups = parse_groups(&status);
    anyhow::ensure!(!groups.is_empty(), "CAIRN.STATUS named no failover group: {status}");
    Ok(groups)
}

/// The groups of `CAIRN.STATUS`'s blocks.
fn parse_groups(status: &str) -> Vec<Group> {
    let group = |block: &str| {
        let field = |name: &str| block.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':'));
        Some(Group {
            name: field("failover_group")?.to_string(),
            primary: field("primary")?.to_string(),
            shards: field("shards")?.split(',').filter_map(|s| s.parse().ok()).collect(),
        })
    };
    status.split("\n\n").filter_map(group).collect()
}

/// Asks for a failover of `group` to `to` (forced or planned) and returns
/// the cluster's description of it.
pub async fn failover(nodes: &[SocketAddr], group: &str, to: &str, force: bool) -> anyhow::Result<String> {
    let mut args: Vec<&[u8]> = vec![b"CAIRN.FAILOVER", group.as_bytes(), b"TO", to.as_bytes()];
    if force {
        args.push(b"FORCE");
    }
    Ok(command(nodes, &args).await?.trim().to_string())
}

/// One completed failover as `CAIRN.FAILOVERS` describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Switch {
    /// The failover group it moved.
    pub group: String,
    /// The epoch it ended.
    pub from_epoch: u64,
    /// Wall-clock ms when the new primary took over.
    pub switched_ms: u64,
    /// Whether every shard of the old primary reported what it lost.
    pub reported: bool,
}

/// Reads one `CAIRN.FAILOVERS` line; `None` for an aborted failover.
fn switch(line: &str) -> Option<Switch> {
    let field = |name: &str| {
        line.split(' ')
            .find_map(|part| part.strip_prefix(name)?.strip_prefix(':'))
    };
    let (from, _) = field("epoch")?.split_once("->")?;
    let started: u64 = field("started_ms")?.parse().ok()?;
    let rto: u64 = field("rto_ms")?.parse().ok()?;
    Some(Switch {
        group: field("group")?.to_string(),
        from_epoch: from.parse().ok()?,
        switched_ms: started + rto,
        reported: !field("lost_records")?.contains("unknown"),
    })
}

/// Every completed failover; waits up to `patience` for the old primaries'
/// reports of what they lost.
pub async fn switches(nodes: &[SocketAddr], patience: Duration) -> anyhow::Result<Vec<Switch>> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let history = command(nodes, &[b"CAIRN.FAILOVERS"]).await?;
        let switches: Vec<Switch> = history.lines().filter_map(switch).collect();
        if switches.iter().all(|s| s.reported) || tokio::time::Instant::now() > deadline {
            return Ok(switches);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// One record of a `lost-writes.log`.
#[derive(Debug, PartialEq)]
struct Reported {
    epoch: u64,
    shard: u64,
    key: String,
    /// Whether the write carried a client session.
    session: bool,
}

/// The records of a `lost-writes.log` (writes of one key; other records
/// are skipped).
fn reported(text: &str) -> Vec<Reported> {
    text.lines()
        .filter_map(|line| {
            let epoch = line.strip_prefix("epoch=")?.split(' ').next()?.parse().ok()?;
            let shard = line.split(' ').nth(1)?.strip_prefix("shard=")?.parse().ok()?;
            let (head, write) = line.split_once(" write=")?;
            let key = write.split("key: b\"").nth(1)?.split('"').next()?;
            Some(Reported {
                epoch,
                shard,
                key: key.to_string(),
                session: head.contains(" session="),
            })
        })
        .collect()
}

/// What the old primaries discarded, from their reports (`files`), the
/// failover history and the `groups`, on the clock of a history whose
/// time 0 was `started` (wall clock).
pub fn discarded(
    files: &[std::path::PathBuf],
    switches: &[Switch],
    groups: &[Group],
    started: SystemTime,
) -> Discarded {
    let started_ms = started.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let mut discarded = Discarded::default();
    for file in files {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for record in reported(&text) {
            let group = groups.iter().find(|g| g.shards.contains(&record.shard));
            let ended = switches
                .iter()
                .find(|s| group.is_some_and(|g| g.name == s.group) && s.from_epoch == record.epoch)
                .map_or(u64::MAX, |s| s.switched_ms.saturating_sub(started_ms) * 1_000_000);
            if record.session {
                discarded.retried.insert(record.key.clone());
            }
            discarded.keys.insert(record.key, ended);
        }
    }
    discarded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_failover_history_and_the_reports() {
        let line = "group:default epoch:2->3 from:region1 to:region2 kind:forced by:automatic started_ms:1000 rto_ms:250 handover:0=5,1=7 lost_records:3";
        assert_eq!(
            switch(line),
            Some(Switch {
                group: "default".into(),
                from_epoch: 2,
                switched_ms: 1250,
                reported: true
            })
        );
        let waiting = line.replace("lost_records:3", "lost_records:1+unknown(1_shards_not_reported)");
        assert!(!switch(&waiting).unwrap().reported);
        assert_eq!(
            switch("group:default epoch:2 from:region1 to:region2 kind:planned started_ms:5 aborted:why"),
            None
        );
        let report = "epoch=2 shard=1 gseq=9 proposed_ms=1 write=Set { key: b\"s1:4-17\", value: b\"1\" }\n\
                      epoch=2 shard=0 gseq=3 proposed_ms=1 session=7:12 write=Incr { key: b\"c0\", delta: 1 }\n";
        let record = |shard, key: &str, session| Reported {
            epoch: 2,
            shard,
            key: key.into(),
            session,
        };
        assert_eq!(reported(report), [record(1, "s1:4-17", false), record(0, "c0", true)]);
        let status = "failover_group:orders\nshards:1,3\nepoch:2\nprimary:region2\n\n\
                      failover_group:default\nshards:0,2\nepoch:1\nprimary:region1\n\n\
                      layout:recorded shards=4 regions=3 nodes=7\n";
        let groups = parse_groups(status);
        let names: Vec<(&str, &str, &[u64])> = groups
            .iter()
            .map(|g| (g.name.as_str(), g.primary.as_str(), &g.shards[..]))
            .collect();
        assert_eq!(
            names,
            [("orders", "region2", &[1, 3][..]), ("default", "region1", &[0, 2][..])]
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lost-writes.log");
        std::fs::write(&file, report).unwrap();
        let ended = |group: &str, switched_ms| Switch {
            group: group.into(),
            from_epoch: 2,
            switched_ms,
            reported: true,
        };
        let switches = [ended("default", 5), ended("orders", 7)];
        let found = discarded(&[file], &switches, &groups, UNIX_EPOCH);
        assert_eq!(found.keys.get("s1:4-17"), Some(&7_000_000), "shard 1's group, orders");
        assert_eq!(found.keys.get("c0"), Some(&5_000_000), "shard 0's, default");
    }
}

//! The regions of a run: which one is the primary, failovers asked for,
//! and what each failover discarded.
//!
//! The harness learns what it needs as an operator would, through the
//! Redis protocol of any data node: `CAIRN.STATUS` names the primary,
//! `CAIRN.FAILOVER` moves it, `CAIRN.FAILOVERS` says when each failover
//! switched. An old primary that comes back writes what it discarded to
//! `lost-writes.log` in its data dir, one line per record with the epoch
//! it was written in; [`discarded`] joins the two into, per key, the time
//! (on the history's clock) after which no read may see that write.

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

/// The primary region, as the first node that answers names it.
pub async fn primary(nodes: &[SocketAddr]) -> anyhow::Result<String> {
    let status = command(nodes, &[b"CAIRN.STATUS"]).await?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("primary:"))
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("CAIRN.STATUS named no primary: {status}"))
}

/// Asks for a failover to `to` (forced or planned) and returns the
/// cluster's description of it.
pub async fn failover(nodes: &[SocketAddr], to: &str, force: bool) -> anyhow::Result<String> {
    let mut args: Vec<&[u8]> = vec![b"CAIRN.FAILOVER", b"default", b"TO", to.as_bytes()];
    if force {
        args.push(b"FORCE");
    }
    Ok(command(nodes, &args).await?.trim().to_string())
}

/// One completed failover as `CAIRN.FAILOVERS` describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Switch {
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
            let (head, write) = line.split_once(" write=")?;
            let key = write.split("key: b\"").nth(1)?.split('"').next()?;
            Some(Reported {
                epoch,
                key: key.to_string(),
                session: head.contains(" session="),
            })
        })
        .collect()
}

/// What the old primaries discarded, from their reports (`files`) and the
/// failover history, on the clock of a history whose time 0 was
/// `started` (wall clock).
pub fn discarded(files: &[std::path::PathBuf], switches: &[Switch], started: SystemTime) -> Discarded {
    let started_ms = started.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let mut discarded = Discarded::default();
    for file in files {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for record in reported(&text) {
            let ended = switches
                .iter()
                .find(|s| s.from_epoch == record.epoch)
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
        let line = "epoch:2->3 from:region1 to:region2 kind:forced by:automatic started_ms:1000 rto_ms:250 handover:5,7 lost_records:3";
        assert_eq!(
            switch(line),
            Some(Switch {
                from_epoch: 2,
                switched_ms: 1250,
                reported: true
            })
        );
        let waiting = line.replace("lost_records:3", "lost_records:1+unknown(1_shards_not_reported)");
        assert!(!switch(&waiting).unwrap().reported);
        assert_eq!(
            switch("epoch:2 from:region1 to:region2 kind:planned started_ms:5 aborted:why"),
            None
        );
        let report = "epoch=2 shard=1 gseq=9 proposed_ms=1 write=Set { key: b\"s1:4-17\", value: b\"1\" }\n\
                      epoch=2 shard=0 gseq=3 proposed_ms=1 session=7:12 write=Incr { key: b\"c0\", delta: 1 }\n";
        let record = |key: &str, session| Reported {
            epoch: 2,
            key: key.into(),
            session,
        };
        assert_eq!(reported(report), [record("s1:4-17", false), record("c0", true)]);
    }
}

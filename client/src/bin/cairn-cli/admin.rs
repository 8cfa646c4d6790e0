//! `cairn-cli admin …`: the node's Admin service, for operators.
//!
//! - `status`: nodes, shards (leader, term, indexes, gseq, keys), the
//!   failover groups, and, asked of a primary leader, what it shipped to
//!   each other region;
//! - `failover [GROUP to] REGION [force]`: moves the failover group's
//!   primary (`default`'s, unless named) there and prints the failover
//!   once it switched;
//! - `failovers`: every failover (group, kind, RTO, records lost);
//! - `rpo`: per shard, what a forced failover now would lose;
//! - `drill [GROUP]`: a planned failover of the group (`default`) to its
//!   next region and back, printing each one's RTO and the records lost
//!   (none, if all is well).

use std::process::ExitCode;

use cairn_proto::admin::admin_client::AdminClient;
use cairn_proto::admin::{FailoverRecord, FailoverRequest, StatusReply, StatusRequest};
use tonic::transport::Channel;

/// The failover group a command names when it names none.
const GROUP: &str = "default";

type Failure = Box<dyn std::error::Error>;

/// Runs `words` (after `admin`) against the Admin service at `addr`.
pub fn run(addr: &str, words: &[String]) -> ExitCode {
    let what = words.first().map(|s| s.to_lowercase());
    let usage = "try `cairn-cli admin status|failover [GROUP to] REGION [force]|failovers|rpo|drill [GROUP]`";
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let result = runtime.block_on(async {
        let connect = || async {
            AdminClient::connect(addr.to_string())
                .await
                .map_err(|e| format!("cannot reach the Admin service at {addr}: {e}"))
        };
        match (what.as_deref(), &words[1.min(words.len())..]) {
            (Some("status"), []) => status(&mut connect().await?).await,
            (Some("failover"), [group, to, region, rest @ ..]) if to.eq_ignore_ascii_case("to") => match rest {
                [] => failover(&mut connect().await?, group, region, false).await,
                [force] if force.eq_ignore_ascii_case("force") => {
                    failover(&mut connect().await?, group, region, true).await
                }
                _ => Err(format!("unknown admin command; {usage}").into()),
            },
            (Some("failover"), [region]) => failover(&mut connect().await?, GROUP, region, false).await,
            (Some("failover"), [region, force]) if force.eq_ignore_ascii_case("force") => {
                failover(&mut connect().await?, GROUP, region, true).await
            }
            (Some("failovers"), []) => failovers(&mut connect().await?).await,
            (Some("rpo"), []) => rpo(&mut connect().await?).await,
            (Some("drill"), []) => drill(&mut connect().await?, GROUP).await,
            (Some("drill"), [group]) => drill(&mut connect().await?, group).await,
            _ => Err(format!("unknown admin command; {usage}").into()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("cairn-cli: {err}");
            ExitCode::from(1)
        }
    }
}

/// A failover on one line.
fn line(f: &FailoverRecord) -> String {
    let epochs = match f.aborted.is_empty() {
        true => format!("epoch {} -> {}", f.from_epoch, f.to_epoch),
        false => format!("epoch {}", f.from_epoch),
    };
    let mut text = format!(
        "{}  {epochs}  {} -> {}  {}  by {}  rto {} ms",
        f.group, f.from, f.to, f.kind, f.by, f.rto_ms
    );
    if !f.aborted.is_empty() {
        return format!("{text}  aborted: {}", f.aborted);
    }
    text.push_str(&format!("  lost {} records", f.lost_records));
    if f.shards_unreported > 0 {
        text.push_str(&format!(" (+ {} shards not reported yet)", f.shards_unreported));
    }
    text
}

async fn failover(admin: &mut AdminClient<Channel>, group: &str, region: &str, force: bool) -> Result<(), Failure> {
    let request = FailoverRequest {
        group: group.into(),
        to: region.into(),
        force,
    };
    let done = admin.failover(request).await.map_err(|s| s.message().to_string())?;
    println!("{}", line(&done.into_inner()));
    Ok(())
}

async fn failovers(admin: &mut AdminClient<Channel>) -> Result<(), Failure> {
    let reply = admin.failovers(StatusRequest {}).await?.into_inner();
    if reply.failovers.is_empty() {
        println!("no failover yet");
    }
    for failover in &reply.failovers {
        println!("{}", line(failover));
    }
    Ok(())
}

async fn rpo(admin: &mut AdminClient<Channel>) -> Result<(), Failure> {
    let reply = admin.rpo(StatusRequest {}).await.map_err(|s| s.message().to_string())?;
    println!(
        "{:<7}{:<10}{:<10}{:<14}{:<12}lost_ms",
        "shard", "head", "safe", "lost_records", "lost_bytes"
    );
    for s in &reply.into_inner().shards {
        println!(
            "{:<7}{:<10}{:<10}{:<14}{:<12}{}",
            s.shard, s.head, s.safe, s.lost_records, s.lost_bytes, s.lost_ms
        );
    }
    Ok(())
}

/// A planned failover of failover group `name` to its next region and
/// back.
async fn drill(admin: &mut AdminClient<Channel>, name: &str) -> Result<(), Failure> {
    let status = admin.status(StatusRequest {}).await?.into_inner();
    if status.failover_groups.is_empty() {
        return Err("this cluster has one region: there is no failover group".into());
    }
    let names: Vec<&str> = status.failover_groups.iter().map(|g| g.name.as_str()).collect();
    let group = status.failover_groups.iter().find(|g| g.name == name).ok_or_else(|| {
        format!(
            "no failover group named '{name}' (failover groups: {})",
            names.join(", ")
        )
    })?;
    let primary = group.primary.clone();
    let next = group
        .regions
        .iter()
        .find(|r| **r != primary)
        .ok_or("the failover group has no other data region")?;
    let mut lost = 0;
    for to in [next, &primary] {
        let request = FailoverRequest {
            group: name.into(),
            to: to.clone(),
            force: false,
        };
        let done = admin.failover(request).await.map_err(|s| s.message().to_string())?;
        let done = done.into_inner();
        lost += done.lost_records;
        println!("{}", line(&done));
    }
    println!("drill of {name}: {primary} -> {next} -> {primary}, {lost} records lost");
    Ok(())
}

async fn status(admin: &mut AdminClient<Channel>) -> Result<(), Failure> {
    let status: StatusReply = admin.status(StatusRequest {}).await?.into_inner();
    println!(
        "cluster {} (answered by node {})",
        status.cluster_name, status.answered_by
    );
    for group in &status.failover_groups {
        let policy = match group.policy.as_str() {
            "automatic" => format!("automatic after {} ms", group.grace_ms),
            other => other.to_string(),
        };
        let state = match group.failing_to.as_str() {
            "" => group.state.clone(),
            to => format!("{} to {to}", group.state),
        };
        let shards: Vec<String> = group.shards.iter().map(u64::to_string).collect();
        println!(
            "failover group {} (shards {}): epoch {}, primary {}, regions {}, {policy}, durability {}, {state}",
            group.name,
            shards.join(","),
            group.epoch,
            group.primary,
            group.regions.join(","),
            group.durability
        );
    }
    println!(
        "{:<6}{:<10}{:<11}{:<6}{:<22}{:<22}{:<22}",
        "node", "region", "role", "zone", "resp", "ro", "grpc"
    );
    for n in &status.nodes {
        let ro = if n.ro_addr.is_empty() { "-" } else { &n.ro_addr };
        println!(
            "{:<6}{:<10}{:<11}{:<6}{:<22}{:<22}{:<22}",
            n.id, n.region, n.region_role, n.zone, n.resp_addr, ro, n.grpc_addr
        );
    }
    println!(
        "{:<7}{:<14}{:<8}{:<7}{:<12}{:<12}{:<10}keys",
        "shard", "slots", "leader", "term", "committed", "applied", "gseq"
    );
    for s in &status.shards {
        let slots = format!("{}-{}", s.first_slot, s.last_slot);
        let leader = if s.leader == 0 {
            "-".to_string()
        } else {
            s.leader.to_string()
        };
        println!(
            "{:<7}{:<14}{:<8}{:<7}{:<12}{:<12}{:<10}{}",
            s.shard, slots, leader, s.term, s.committed_index, s.applied_index, s.gseq, s.keys
        );
    }
    let shipping: Vec<_> = status
        .shards
        .iter()
        .flat_map(|s| s.shipping.iter().map(move |x| (s.shard, x)))
        .collect();
    if !shipping.is_empty() {
        println!(
            "cross-region log, as node {} ships it:\n{:<7}{:<10}{:<10}{:<10}{:<13}{:<11}{:<8}stuck",
            status.answered_by, "shard", "region", "shipped", "acked", "lag_records", "lag_bytes", "lag_ms"
        );
        for (shard, x) in shipping {
            let stuck = if x.stuck.is_empty() { "-" } else { &x.stuck };
            println!(
                "{:<7}{:<10}{:<10}{:<10}{:<13}{:<11}{:<8}{}",
                shard, x.region, x.shipped, x.acked, x.lag_records, x.lag_bytes, x.lag_ms, stuck
            );
        }
    }
    Ok(())
}

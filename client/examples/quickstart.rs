//! Writes, reads and compare-and-sets a key through cairn-client, printing
//! what it did and where each answer came from.
//!
//! ```sh
//! cairn-server dev &      # prints each node's gRPC address
//! cargo run --release -p cairn-client --example quickstart -- --seed 127.0.0.1:6381
//! ```

use std::time::Duration;

use cairn_client::{CallOptions, Client, Consistency, SetOptions};
use clap::Parser;

/// Command-line arguments.
#[derive(Parser)]
struct Args {
    /// gRPC address (HOST:PORT) of any node, as printed by `cairn-server dev`.
    #[arg(long, default_value = "127.0.0.1:6381")]
    seed: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = Client::builder().seeds([args.seed.clone()]).build().await?;
    let topology = client.topology();
    println!(
        "connected to cluster {:?} through {}: {} nodes, {} shards",
        topology.cluster_name,
        args.seed,
        topology.nodes.len(),
        topology.shards.len()
    );

    let set = client.set("quickstart:greeting", "hello").await?;
    println!(
        "SET quickstart:greeting hello      -> stored={} (shard {}, index {}, node {})",
        set.value, set.header.shard, set.header.index, set.header.served_by
    );

    let got = client.get("quickstart:greeting").await?;
    println!(
        "GET quickstart:greeting            -> {:?} (node {})",
        got.value.as_deref().map(String::from_utf8_lossy),
        got.header.served_by
    );

    let cas = client
        .compare_and_set("quickstart:greeting", Some("hello".into()), "hi")
        .await?;
    println!("CAS quickstart:greeting hello->hi  -> swapped={}", cas.value.swapped);
    let again = client
        .compare_and_set("quickstart:greeting", Some("hello".into()), "hey")
        .await?;
    println!(
        "CAS quickstart:greeting hello->hey -> swapped={} (current {:?})",
        again.value.swapped,
        again.value.current.as_deref().map(String::from_utf8_lossy)
    );

    let visits = client.incr("quickstart:visits", 1).await?;
    println!("INCR quickstart:visits             -> {}", visits.value);

    client
        .set_with(
            "quickstart:session",
            "alice",
            SetOptions::default().ttl(Duration::from_secs(60)),
        )
        .await?;
    let ttl = client.ttl("quickstart:session").await?;
    println!("TTL quickstart:session             -> {:?}", ttl.value);

    let stale = client.with(CallOptions::default().consistency(Consistency::Stale));
    let local = stale.get("quickstart:greeting").await?;
    println!(
        "GET (stale) quickstart:greeting    -> {:?} (node {})",
        local.value.as_deref().map(String::from_utf8_lossy),
        local.header.served_by
    );
    Ok(())
}

//! Failover-group handles on a two-region dev cluster: the read/write
//! handle follows a planned failover from the topology stream, and the
//! read-only handle reads the client's own region's replicas.

#[path = "../../server/tests/fixtures/mod.rs"]
mod fixtures;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cairn_client::{Client, Error};
use cairn_proto::admin::FailoverRequest;
use cairn_proto::admin::admin_client::AdminClient;
use fixtures::{Processes, free_base, listeners, start_dev, wait_for_set};

/// Nodes of the dev cluster: region1 is 1–3, region2 is 4–6, the witness 7.
const REGION2: [u64; 3] = [4, 5, 6];

fn grpc(base: u16, node: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], base + 10 * (node - 1) + 2))
}

/// Waits until `client`'s topology shows the `default` group in epoch
/// `epoch`.
async fn until_epoch(client: &Client, epoch: u64) -> Duration {
    let started = Instant::now();
    let default_epoch = |client: &Client| client.topology().failover_group("default").map_or(0, |g| g.epoch);
    while default_epoch(client) < epoch {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the topology stream never announced epoch {epoch}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t55_handles_follow_a_failover_and_read_their_own_region() {
    let dir = tempfile::tempdir().unwrap();
    let base = free_base(7);
    let (dev, _) = start_dev(
        "cairn-server",
        dir.path(),
        base,
        &["--shards", "2", "--manual-failover"],
    );
    let _processes = Processes {
        dev,
        restarted: Vec::new(),
    };
    // `dev` answers once it has started the nodes, not once they serve.
    for node in [1, 4] {
        wait_for_set(listeners(base, node).0, "ready", "1");
    }
    let seeds = [grpc(base, 1).to_string(), grpc(base, 4).to_string()];

    // Bad input names what is wrong.
    let wrong_region = Client::builder().seeds(seeds.clone()).region("mars").build().await;
    match wrong_region {
        Err(Error::InvalidArgument(message)) => assert!(
            message.contains("no region \"mars\"") && message.contains("region2"),
            "{message}"
        ),
        other => panic!("a client in an unknown region was built: {other:?}"),
    }
    let client = Client::builder().seeds(seeds).region("region2").build().await.unwrap();
    assert_eq!(client.region(), "region2");
    match client.read_write("others") {
        Err(Error::InvalidArgument(message)) => assert!(message.contains("no failover group \"others\"")),
        other => panic!("a handle on an unknown group: {other:?}"),
    }
    let rw = client.read_write("default").unwrap();
    let ro = client
        .read_only("default")
        .unwrap()
        .max_staleness(Duration::from_secs(2));
    assert_eq!(client.topology().failover_group("default").unwrap().primary, "region1");

    // Writes go to region1. A read-only read is answered by a region2
    // replica once it can show it is within the bound, by region1's leader
    // until then, and is never older than the bound either way.
    for i in 0..20 {
        let reply = rw.set(format!("key-{i}"), format!("before-{i}")).await.unwrap();
        assert!(!REGION2.contains(&reply.header.served_by), "written in region1");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for i in 0..20 {
        loop {
            let reply = ro.get(format!("key-{i}")).await.unwrap();
            let fresh = reply.value.as_deref() == Some(format!("before-{i}").as_bytes());
            if fresh && REGION2.contains(&reply.header.served_by) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "key-{i} was never read from region2 (last from node {}: {:?})",
                reply.header.served_by,
                reply.value
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    // A planned failover to region2: the stream announces the new epoch,
    // and the same handle writes to region2 and keeps every write.
    let mut admin = AdminClient::connect(format!("http://{}", grpc(base, 1))).await.unwrap();
    let record = admin
        .failover(FailoverRequest {
            group: "default".into(),
            to: "region2".into(),
            force: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((record.from_epoch, record.to.as_str()), (1, "region2"));
    let heard_after = until_epoch(&client, 2).await;
    println!("the client heard of epoch 2 {heard_after:?} after the failover answered");
    assert_eq!(client.topology().failover_group("default").unwrap().primary, "region2");
    let refused = client.stats().not_leader;
    for i in 0..20 {
        let reply = rw.set(format!("key-{i}"), format!("after-{i}")).await.unwrap();
        assert!(
            REGION2.contains(&reply.header.served_by),
            "key-{i} written by node {} after the failover",
            reply.header.served_by
        );
    }
    assert_eq!(
        client.stats().not_leader,
        refused,
        "no write went to region1's old leaders"
    );
    for i in 20..40 {
        rw.set(format!("key-{i}"), format!("after-{i}")).await.unwrap();
    }
    for i in 0..40 {
        let reply = ro.get(format!("key-{i}")).await.unwrap();
        assert_eq!(reply.value.as_deref(), Some(format!("after-{i}").as_bytes()));
        assert!(
            REGION2.contains(&reply.header.served_by),
            "the primary's own replicas answer"
        );
    }
}

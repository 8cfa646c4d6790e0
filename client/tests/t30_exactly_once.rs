//! A write whose reply is lost (dropped by the node after the write was
//! applied, through the `kv-reply-lost` fault point) is retried by the
//! client and applied exactly once; the same loss makes a naive retry loop
//! apply it again and again. A batch retries such writes the same way.
//!
//! Needs `cairn-server-failpoints` (built by `scripts/build-jepsen`).

#[path = "../../server/tests/fixtures/mod.rs"]
mod fixtures;

use cairn_client::{Batch, Client, Outcome};
use cairn_proto::kv::IncrRequest;
use cairn_proto::kv::kv_client::KvClient;
use cairn_server::config::RaftOptions;
use fixtures::Cluster;

/// Each node drops the replies of its first three writes.
const LOST: &str = "kv-reply-lost=3*return";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t30_a_lost_reply_is_retried_and_applied_once() {
    let cluster = Cluster::start_with(
        3,
        2,
        RaftOptions::default(),
        "cairn-server-failpoints",
        &[("FAILPOINTS", LOST)],
    );
    let addr = |id: u64| cluster.topology.node(id).unwrap().grpc_addr.to_string();
    let client = Client::builder().seeds([addr(1)]).build().await.unwrap();

    let before = client.stats();
    let reply = client.incr("once", 1).await.unwrap();
    let spent = client.stats().attempts - before.attempts;
    assert_eq!(reply.value, 1, "applied once, answered with the first reply");
    assert_eq!(spent, 4, "three replies lost, the fourth attempt got the answer");
    assert_eq!(client.get("once").await.unwrap().value.as_deref(), Some(&b"1"[..]));
    assert_eq!(client.incr("once", 1).await.unwrap().value, 2);

    // Without a session, the same losses turn one intended increment into
    // several: what the client's sessions prevent.
    let leader = reply.header.served_by;
    let other = if leader == 1 { 2 } else { 1 };
    let mut naive = KvClient::connect(format!("http://{}", addr(other))).await.unwrap();
    let mut tries = 0;
    let value = loop {
        tries += 1;
        let request = IncrRequest {
            key: "naive".into(),
            delta: 1,
            session: None,
        };
        if let Ok(reply) = naive.incr(request).await {
            break reply.into_inner().value;
        }
    };
    assert_eq!(tries, 4);
    assert_eq!(value, 4, "every lost reply was a write applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t31_a_batch_retries_lost_replies_and_applies_each_write_once() {
    let cluster = Cluster::start_with(
        3,
        2,
        RaftOptions::default(),
        "cairn-server-failpoints",
        &[("FAILPOINTS", LOST)],
    );
    let addr = cluster.topology.node(1).unwrap().grpc_addr.to_string();
    let client = Client::builder().seeds([addr]).build().await.unwrap();

    let keys: Vec<String> = (0..12).map(|i| format!("batch:{i}")).collect();
    let batch = keys.iter().fold(Batch::new(), |batch, key| batch.incr(key.clone(), 1));
    let outcomes = client.batch(&batch).await;
    for (key, outcome) in keys.iter().zip(&outcomes) {
        let outcome = &outcome.as_ref().unwrap().value;
        assert_eq!(
            outcome,
            &Outcome::Counter(1),
            "{key}: applied once, answered with the first reply"
        );
    }
    let gets = keys.iter().fold(Batch::new(), |batch, key| batch.get(key.clone()));
    for (key, outcome) in keys.iter().zip(client.batch(&gets).await) {
        assert_eq!(
            outcome.unwrap().value,
            Outcome::Value(Some("1".into())),
            "{key} incremented once"
        );
    }
}

//! Every call of the API against a real cluster: values, conditions, TTLs,
//! compare-and-set, fan-out, batches, consistency levels and reply headers;
//! and permanent errors returned at once, never retried.

#[path = "../../server/tests/fixtures/mod.rs"]
mod fixtures;

use std::time::Duration;

use bytes::Bytes;
use cairn_client::{Batch, CallOptions, Client, Condition, Consistency, Error, Outcome, SetOptions, Ttl};
use cairn_server::config::RaftOptions;
use fixtures::Cluster;

fn seed(cluster: &Cluster, id: u64) -> String {
    cluster.topology.node(id).unwrap().grpc_addr.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t10_every_call_answers_like_the_docs_say() {
    let cluster = Cluster::start(3, 4, RaftOptions::default());
    let client = Client::builder().seeds([seed(&cluster, 2)]).build().await.unwrap();
    let topology = client.topology();
    assert_eq!((topology.nodes.len(), topology.shards.len()), (3, 4));
    assert!(topology.shards.iter().all(|s| s.leader.is_some()));

    let set = client.set("a:1", "one").await.unwrap();
    assert!(set.value);
    let leader = topology.leader(topology.shard_of_key(b"a:1")).unwrap();
    assert_eq!(set.header.served_by, leader, "writes go straight to the leader");
    let got = client.get("a:1").await.unwrap();
    assert_eq!(got.value.as_deref(), Some(&b"one"[..]));
    assert!(got.header.index >= set.header.index, "the read reflects the write");
    assert_eq!(got.header.shard, set.header.shard);

    let nx = SetOptions::default().condition(Condition::IfAbsent);
    assert!(!client.set_with("a:1", "two", nx).await.unwrap().value);
    assert!(client.set_with("a:new", "two", nx).await.unwrap().value);
    let xx = SetOptions::default().condition(Condition::IfPresent);
    assert!(!client.set_with("a:none", "x", xx).await.unwrap().value);

    client
        .set_with("a:ttl", "x", SetOptions::default().ttl(Duration::from_secs(30)))
        .await
        .unwrap();
    let Ttl::ExpiresIn(left) = client.ttl("a:ttl").await.unwrap().value else {
        panic!("a:ttl has a deadline");
    };
    assert!(
        left > Duration::from_secs(25) && left <= Duration::from_secs(30),
        "{left:?}"
    );
    assert_eq!(client.ttl("a:1").await.unwrap().value, Ttl::Persistent);
    assert_eq!(client.ttl("a:none").await.unwrap().value, Ttl::Missing);
    assert!(client.expire("a:1", Duration::from_millis(200)).await.unwrap().value);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(client.get("a:1").await.unwrap().value, None, "expired");

    assert_eq!(client.incr("a:n", 5).await.unwrap().value, 5);
    assert_eq!(client.incr("a:n", -7).await.unwrap().value, -2);
    let cas = client.compare_and_set("a:cas", None, "v1").await.unwrap().value;
    assert!(cas.swapped);
    let cas = client
        .compare_and_set("a:cas", Some(Bytes::from("nope")), "v2")
        .await
        .unwrap()
        .value;
    assert!(!cas.swapped);
    assert_eq!(cas.current.as_deref(), Some(&b"v1"[..]));
    assert!(client.delete("a:cas").await.unwrap().value);
    assert!(!client.delete("a:cas").await.unwrap().value);

    // Keys on every shard, fetched at once, in the order asked.
    let keys: Vec<String> = (0..20).map(|i| format!("m:{i}")).collect();
    for (i, key) in keys.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
        client.set(key.clone(), i.to_string()).await.unwrap();
    }
    let mget = client.mget(keys.clone()).await.unwrap();
    for (i, value) in mget.values.iter().enumerate() {
        let expected = (i % 2 == 0).then(|| Bytes::from(i.to_string()));
        assert_eq!(value, &expected, "{}", keys[i]);
    }
    assert_eq!(mget.headers.len(), 4, "one header per shard");

    let batch = Batch::new().set("b:1", "x").incr("b:n", 2).get("b:1").delete("b:none");
    let outcomes: Vec<Outcome> = client
        .batch(&batch)
        .await
        .into_iter()
        .map(|r| r.unwrap().value)
        .collect();
    assert_eq!(outcomes[1], Outcome::Counter(2));
    assert_eq!(outcomes[3], Outcome::Done(false));
    assert!(
        matches!(&outcomes[2], Outcome::Value(_)),
        "concurrent with the set: either answer"
    );

    // Weaker reads are served by any replica; they may lag for a moment.
    for consistency in [
        Consistency::ReadIndex,
        Consistency::BoundedStaleness(Duration::from_secs(10)),
        Consistency::Stale,
    ] {
        let relaxed = client.with(CallOptions::default().consistency(consistency));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while relaxed.get("b:1").await.unwrap().value.as_deref() != Some(&b"x"[..]) {
            assert!(
                consistency != Consistency::ReadIndex,
                "a read-index read sees every write before it"
            );
            assert!(
                std::time::Instant::now() < deadline,
                "{consistency:?} never saw the write"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t11_permanent_errors_are_returned_at_once() {
    let cluster = Cluster::start(3, 2, RaftOptions::default());
    let client = Client::builder().seeds([seed(&cluster, 1)]).build().await.unwrap();
    client.set("p:text", "not a number").await.unwrap();

    let before = client.stats();
    let err = client.incr("p:text", 1).await.unwrap_err();
    assert!(matches!(err, Error::Rejected(_)), "{err:?}");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("not an integer"), "{err}");
    let after = client.stats();
    assert_eq!(after.attempts - before.attempts, 1, "sent once, not retried");
    assert_eq!(after.errors - before.errors, 1);

    let err = client.get("").await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    assert!(err.to_string().contains("key must not be empty"), "{err}");
    let err = client
        .set_with("p:x", "v", SetOptions::default().ttl(Duration::from_micros(10)))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ttl"), "{err}");
    assert_eq!(client.stats().attempts, after.attempts, "invalid calls are never sent");

    let err = Client::builder().seeds(["127.0.0.1:1"]).build().await.unwrap_err();
    assert!(matches!(err, Error::Discovery(_)), "{err:?}");
    assert!(err.to_string().contains("127.0.0.1:1"), "names the seed: {err}");
    let err = Client::builder().build().await.unwrap_err();
    assert!(err.to_string().contains("no seed"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t12_a_value_of_20_mib_is_written_and_read_back() {
    let cluster = Cluster::start(3, 1, RaftOptions::default());
    let client = Client::builder().seeds([seed(&cluster, 1)]).build().await.unwrap();
    let value: Bytes = (0..20u32 << 20).map(|i| (i / 4096) as u8).collect();
    assert!(client.set("big", value.clone()).await.unwrap().value);
    let got = client.get("big").await.unwrap().value.expect("big is there");
    assert!(got == value, "read back {} bytes of {}", got.len(), value.len());
    let outcomes = client.batch(&Batch::new().get("big")).await;
    let outcome = outcomes.into_iter().next().unwrap().unwrap().value;
    assert!(
        matches!(&outcome, Outcome::Value(Some(v)) if *v == value),
        "through a batch too"
    );
}

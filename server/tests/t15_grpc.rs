//! The gRPC `Kv` and `Admin` services answer on every node, route by slot
//! to the shard leader, and say where each answer came from.

mod fixtures;

use cairn_proto::admin::StatusRequest;
use cairn_proto::admin::admin_client::AdminClient;
use cairn_proto::kv::kv_client::KvClient;
use cairn_proto::kv::{
    BatchOp, BatchRequest, CompareAndSetRequest, Consistency, DeleteRequest, ExpireRequest, GetRequest, IncrRequest,
    MGetRequest, ReadOptions, SetCondition, SetRequest, TtlRequest, WriteSession, batch_op, batch_result,
};
use cairn_server::config::RaftOptions;
use fixtures::Cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t15_kv_and_admin_over_grpc() {
    let cluster = Cluster::start(3, 4, RaftOptions::default());
    let addr = |id: u64| format!("http://{}", cluster.topology.node(id).unwrap().grpc_addr);
    let mut one = KvClient::connect(addr(1)).await.unwrap();
    let mut two = KvClient::connect(addr(2)).await.unwrap();

    let set = one
        .set(SetRequest {
            key: "g:1".into(),
            value: "v1".into(),
            ttl_ms: 0,
            condition: SetCondition::Always.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(set.applied);
    let header = set.header.unwrap();
    assert!(header.applied_index > 0 && header.served_by > 0);

    let got = two
        .get(GetRequest {
            key: "g:1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.value.as_deref(), Some(&b"v1"[..]));
    assert!(
        got.header.unwrap().applied_index >= header.applied_index,
        "a read reflects the write before it"
    );

    let nx = two
        .set(SetRequest {
            key: "g:1".into(),
            value: "other".into(),
            ttl_ms: 0,
            condition: SetCondition::IfAbsent.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!nx.applied, "NX does not overwrite");

    let incr = one
        .incr(IncrRequest {
            key: "g:n".into(),
            delta: 5,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(incr.value, 5);
    let err = one
        .incr(IncrRequest {
            key: "g:1".into(),
            delta: 1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);

    let cas = |expected: Option<&'static str>, new: &'static str| CompareAndSetRequest {
        key: "g:cas".into(),
        expected: expected.map(Into::into),
        new_value: new.into(),
        ..Default::default()
    };
    assert!(two.compare_and_set(cas(None, "a")).await.unwrap().into_inner().swapped);
    let failed = one.compare_and_set(cas(Some("x"), "b")).await.unwrap().into_inner();
    assert!(!failed.swapped);
    assert_eq!(failed.current.as_deref(), Some(&b"a"[..]));
    assert!(
        one.compare_and_set(cas(Some("a"), "b"))
            .await
            .unwrap()
            .into_inner()
            .swapped
    );

    let keys: Vec<_> = ["g:1", "g:n", "g:cas", "g:none"].iter().map(|k| (*k).into()).collect();
    let mget = two
        .m_get(MGetRequest {
            keys,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let values: Vec<Option<&[u8]>> = mget.values.iter().map(|v| v.value.as_deref()).collect();
    assert_eq!(values, [Some(&b"v1"[..]), Some(b"5"), Some(b"b"), None]);

    let deleted = one
        .delete(DeleteRequest {
            keys: vec!["g:1".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.deleted, 1);
    assert_eq!(
        two.get(GetRequest {
            key: "g:1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .value,
        None
    );

    let empty = one
        .get(GetRequest {
            key: "".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(empty.code(), tonic::Code::InvalidArgument);

    // A retried write with the same session tag is answered, not applied again.
    let tagged = || IncrRequest {
        key: "g:once".into(),
        delta: 1,
        session: Some(WriteSession {
            client_id: 42,
            seq: 7,
            acked_below: 7,
        }),
    };
    assert_eq!(one.incr(tagged()).await.unwrap().into_inner().value, 1);
    assert_eq!(two.incr(tagged()).await.unwrap().into_inner().value, 1);
    let read = |key: &'static str, consistency: Consistency, max_staleness_ms| GetRequest {
        key: key.into(),
        read: Some(ReadOptions {
            consistency: consistency.into(),
            max_staleness_ms,
        }),
    };
    for (consistency, bound) in [
        (Consistency::ReadIndex, 0),
        (Consistency::BoundedStaleness, 60_000),
        (Consistency::Stale, 0),
    ] {
        // Weaker reads may lag for a moment, then node 2 serves them itself.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let got = two.get(read("g:once", consistency, bound)).await.unwrap().into_inner();
            let local = consistency == Consistency::ReadIndex || got.header.unwrap().served_by == 2;
            if got.value.as_deref() == Some(&b"1"[..]) && local {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{consistency:?}: {got:?} is not served by node 2 with the write"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    let unbounded = two
        .get(read("g:once", Consistency::BoundedStaleness, 0))
        .await
        .unwrap_err();
    assert_eq!(unbounded.code(), tonic::Code::InvalidArgument);
    assert!(unbounded.message().contains("max_staleness_ms"), "{unbounded:?}");

    let expire = |ttl_ms| ExpireRequest {
        key: "g:once".into(),
        ttl_ms,
        ..Default::default()
    };
    assert!(one.expire(expire(60_000)).await.unwrap().into_inner().applied);
    let ttl = one
        .ttl(TtlRequest {
            key: "g:once".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .ttl_ms;
    assert!((50_000..=60_000).contains(&ttl), "ttl {ttl}");
    assert!(one.expire(expire(0)).await.unwrap().into_inner().applied);
    assert!(!one.expire(expire(1000)).await.unwrap().into_inner().applied);

    // Asked not to forward, a node that does not lead names the leader.
    let mut direct = tonic::Request::new(GetRequest {
        key: "g:1".into(),
        ..Default::default()
    });
    direct.metadata_mut().insert("cairn-route", "direct".parse().unwrap());
    let mut admin = AdminClient::connect(addr(3)).await.unwrap();
    let leader = {
        let status = admin.status(StatusRequest {}).await.unwrap().into_inner();
        let slot = cairn_server::slot::key_slot(b"g:1");
        status
            .shards
            .iter()
            .find(|s| (s.first_slot..=s.last_slot).contains(&u32::from(slot)))
            .unwrap()
            .leader
    };
    let not_leader = KvClient::connect(addr(leader % 3 + 1))
        .await
        .unwrap()
        .get(direct)
        .await
        .unwrap_err();
    assert_eq!(not_leader.code(), tonic::Code::Unavailable);
    assert_eq!(
        not_leader.metadata().get("cairn-leader").unwrap().to_str().unwrap(),
        leader.to_string()
    );

    // A batch: operations on every shard in one call, each answered on its
    // own and in the request's order.
    let op = |op| BatchOp { op: Some(op) };
    let keys: Vec<String> = (0..8).map(|i| format!("bt:{i}")).collect();
    let mut ops: Vec<BatchOp> = keys
        .iter()
        .map(|key| {
            op(batch_op::Op::Set(SetRequest {
                key: key.clone().into(),
                value: format!("v-{key}").into(),
                ..Default::default()
            }))
        })
        .collect();
    ops.push(op(batch_op::Op::Incr(IncrRequest {
        key: "bt:n".into(),
        delta: 5,
        session: None,
    })));
    ops.push(BatchOp { op: None });
    ops.push(op(batch_op::Op::Delete(DeleteRequest {
        keys: vec!["bt:none".into()],
        session: None,
    })));
    let results = two.batch(BatchRequest { ops }).await.unwrap().into_inner().results;
    let results: Vec<batch_result::Result> = results.into_iter().map(|r| r.result.unwrap()).collect();
    assert_eq!(results.len(), 11);
    for result in &results[..8] {
        assert!(
            matches!(result, batch_result::Result::Set(r) if r.applied),
            "{result:?}"
        );
    }
    assert!(matches!(&results[8], batch_result::Result::Incr(r) if r.value == 5));
    assert!(
        matches!(&results[9], batch_result::Result::Failed(f)
            if f.code == i32::from(tonic::Code::InvalidArgument) && f.message.contains("names no operation")),
        "{:?}",
        results[9]
    );
    assert!(matches!(&results[10], batch_result::Result::Delete(r) if r.deleted == 0));
    let gets = keys
        .iter()
        .map(|key| {
            op(batch_op::Op::Get(GetRequest {
                key: key.clone().into(),
                ..Default::default()
            }))
        })
        .collect();
    let results = one
        .batch(BatchRequest { ops: gets })
        .await
        .unwrap()
        .into_inner()
        .results;
    for (key, result) in keys.iter().zip(results) {
        match result.result.unwrap() {
            batch_result::Result::Get(r) => assert_eq!(r.value.as_deref(), Some(format!("v-{key}").as_bytes())),
            other => panic!("{key}: {other:?}"),
        }
    }
    // Asked not to forward, a node that does not lead names the leader, per
    // operation.
    let mut direct = tonic::Request::new(BatchRequest {
        ops: vec![op(batch_op::Op::Get(GetRequest {
            key: "g:1".into(),
            ..Default::default()
        }))],
    });
    direct.metadata_mut().insert("cairn-route", "direct".parse().unwrap());
    let mut results = KvClient::connect(addr(leader % 3 + 1))
        .await
        .unwrap()
        .batch(direct)
        .await
        .unwrap()
        .into_inner()
        .results;
    match results.pop().unwrap().result.unwrap() {
        batch_result::Result::Failed(failed) => {
            assert_eq!(failed.code, i32::from(tonic::Code::Unavailable));
            assert_eq!(failed.leader, Some(leader));
        }
        other => panic!("a node that does not lead answered {other:?}"),
    }

    let status = admin.status(StatusRequest {}).await.unwrap().into_inner();
    assert_eq!(status.answered_by, 3);
    assert_eq!(status.nodes.len(), 3);
    assert_eq!(status.shards.len(), 4);
    assert_eq!(status.shards.first().unwrap().first_slot, 0);
    assert_eq!(status.shards.last().unwrap().last_slot, 16383);
    for shard in &status.shards {
        assert!(shard.leader != 0, "shard {} has a leader", shard.shard);
        assert_eq!(shard.voters.len(), 3);
        assert!(shard.applied_index <= shard.committed_index);
    }
}

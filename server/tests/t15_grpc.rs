//! The gRPC `Kv` and `Admin` services answer on every node, route by slot
//! to the shard leader, and say where each answer came from.

mod fixtures;

use cairn_proto::admin::StatusRequest;
use cairn_proto::admin::admin_client::AdminClient;
use cairn_proto::kv::kv_client::KvClient;
use cairn_proto::kv::{
    CompareAndSetRequest, DeleteRequest, GetRequest, IncrRequest, MGetRequest, SetCondition, SetRequest,
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
        })
        .await
        .unwrap()
        .into_inner();
    assert!(set.applied);
    let header = set.header.unwrap();
    assert!(header.applied_index > 0 && header.served_by > 0);

    let got = two.get(GetRequest { key: "g:1".into() }).await.unwrap().into_inner();
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
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!nx.applied, "NX does not overwrite");

    let incr = one
        .incr(IncrRequest {
            key: "g:n".into(),
            delta: 5,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(incr.value, 5);
    let err = one
        .incr(IncrRequest {
            key: "g:1".into(),
            delta: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);

    let cas = |expected: Option<&'static str>, new: &'static str| CompareAndSetRequest {
        key: "g:cas".into(),
        expected: expected.map(Into::into),
        new_value: new.into(),
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
    let mget = two.m_get(MGetRequest { keys }).await.unwrap().into_inner();
    let values: Vec<Option<&[u8]>> = mget.values.iter().map(|v| v.value.as_deref()).collect();
    assert_eq!(values, [Some(&b"v1"[..]), Some(b"5"), Some(b"b"), None]);

    let deleted = one
        .delete(DeleteRequest {
            keys: vec!["g:1".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.deleted, 1);
    assert_eq!(
        two.get(GetRequest { key: "g:1".into() })
            .await
            .unwrap()
            .into_inner()
            .value,
        None
    );

    let empty = one.get(GetRequest { key: "".into() }).await.unwrap_err();
    assert_eq!(empty.code(), tonic::Code::InvalidArgument);

    let mut admin = AdminClient::connect(addr(3)).await.unwrap();
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

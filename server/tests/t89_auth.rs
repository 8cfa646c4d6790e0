//! Who may connect: `requirepass` from the node config, and ACL users made
//! on one node that every node knows, that survive a restart of the whole
//! cluster, and whose deletion disconnects their clients.

mod fixtures;

use std::time::{Duration, Instant};

use fixtures::{Cluster, Resp, Value};

fn ok() -> Value {
    Value::Simple("OK".into())
}

/// A connection to `id` that has not logged in.
fn anonymous(cluster: &Cluster, id: u64) -> Resp {
    Resp::connect(cluster.topology.node(id).unwrap().resp_addr)
}

/// Retries `AUTH user password` on node `id` until it answers `+OK` (the
/// node's replica of the users may be a moment behind).
fn log_in_eventually(cluster: &Cluster, id: u64, user: &str, password: &str) -> Resp {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut client = anonymous(cluster, id);
        if client.cmd(&["AUTH", user, password]) == ok() {
            return client;
        }
        assert!(Instant::now() < deadline, "{user} cannot log in on node {id}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn t89_requirepass_and_users_hold_cluster_wide_and_across_restarts() {
    let mut cluster = Cluster::start_with_password(3, 4, "s3cret");
    let noauth = Value::Error("NOAUTH Authentication required.".into());
    let mut guest = anonymous(&cluster, 1);
    assert_eq!(guest.cmd(&["GET", "k"]), noauth);
    assert_eq!(
        guest.cmd(&["AUTH", "wrong"]),
        Value::Error("WRONGPASS invalid username-password pair or user is disabled.".into())
    );
    assert_eq!(guest.cmd(&["AUTH", "s3cret"]), ok());
    assert_eq!(guest.cmd(&["CONFIG", "GET", "requirepass"]).text(), None);

    // A user made through node 1 logs in on node 1 at once, and on node 3.
    let mut admin = cluster.client(1);
    let created = admin.cmd(&[
        "ACL",
        "SETUSER",
        "app",
        "on",
        ">apppw",
        "~app:*",
        "+@all",
        "-@dangerous",
    ]);
    assert_eq!(created, ok());
    let mut app = anonymous(&cluster, 1);
    assert_eq!(app.cmd(&["AUTH", "app", "apppw"]), ok());
    assert_eq!(app.cmd(&["SET", "app:1", "v"]), ok());
    assert_eq!(
        app.cmd(&["FLUSHALL"]),
        Value::Error("NOPERM this user has no permissions to run the 'flushall' command".into())
    );
    let mut elsewhere = log_in_eventually(&cluster, 3, "app", "apppw");
    assert_eq!(elsewhere.cmd(&["GET", "app:1"]), Value::Bulk(Some(b"v".to_vec())));
    assert_eq!(
        elsewhere.cmd(&["GET", "secret:1"]),
        Value::Error("NOPERM this user has no permissions to access one of the keys used as arguments".into())
    );

    // Users and the password survive a restart of every node.
    for id in cluster.ids() {
        cluster.stop(id);
    }
    for id in cluster.ids() {
        cluster.start_node(id);
    }
    cluster.wait_ready(Duration::from_secs(30));
    let mut app = log_in_eventually(&cluster, 2, "app", "apppw");
    assert_eq!(app.cmd(&["GET", "app:1"]), Value::Bulk(Some(b"v".to_vec())));
    assert_eq!(anonymous(&cluster, 2).cmd(&["PING"]), noauth);

    // Deleting the user disconnects its clients on their next command.
    assert_eq!(cluster.client(2).cmd(&["ACL", "DELUSER", "app"]), Value::Int(1));
    assert!(
        app.try_cmd(&["GET", "app:1"]).is_err() || app.try_cmd(&["PING"]).is_err(),
        "a deleted user's connection is closed"
    );
    let mut gone = anonymous(&cluster, 2);
    assert_eq!(
        gone.cmd(&["AUTH", "app", "apppw"]),
        Value::Error("WRONGPASS invalid username-password pair or user is disabled.".into())
    );
}

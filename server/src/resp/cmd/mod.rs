//! The command table and what every command shares.
//!
//! Each command (or small family) lives in its own file with a `SPEC` (name,
//! arity, flags, key positions — Redis's `COMMAND` conventions) and a
//! handler. A handler runs synchronously, so it may change the client's
//! state (protocol version, name) and returns an [`Outcome`]: a reply now,
//! a future that runs against the cluster, or a reply followed by closing
//! the connection. [`dispatch`] checks the name and arity the way Redis does
//! before a handler sees the arguments.

mod acl;
mod append;
mod auth;
mod cairn;
mod client;
mod cluster;
mod command;
mod command_docs;
mod configcmd;
mod dbsize;
mod del;
mod echo;
mod exists;
mod expire;
mod flush;
mod get;
mod getdel;
mod hash;
mod hello;
mod incr;
mod info;
mod keys;
mod keytype;
mod mget;
mod mset;
mod multi;
mod ping;
mod quit;
mod randomkey;
mod range;
mod rename;
mod reset;
mod scan;
mod select;
mod set;
mod setex;
mod strlen;
mod time;
mod ttl;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use futures::future::BoxFuture;

use super::clients::ClientEntry;
use super::frame::{Frame, Protocol};
use super::server::Shared;
use crate::error::Error;
use crate::keyspace::{KvError, Reply, Write, WriteOp};
use crate::sessions::REPLY_NOT_KEPT;
use crate::shard::Request;

/// One connected client's state.
#[derive(Debug)]
pub struct Client {
    /// What other connections see of this one (id, name, kill switch).
    pub entry: Arc<ClientEntry>,
    /// RESP version in use (`HELLO`).
    pub protocol: Protocol,
    /// Asked for the slot map (or sent `READONLY`/`READWRITE`): gets
    /// `-MOVED` for shards led elsewhere instead of forwarding.
    pub cluster_aware: bool,
    /// Which replies are sent (`CLIENT REPLY`).
    pub reply: ReplyMode,
    /// Commands queued since `MULTI`, if one is open.
    pub transaction: Option<multi::Transaction>,
    /// Keys watched (`WATCH`) and their fingerprints when watched.
    pub watched: multi::Watched,
    /// The user it is logged in as; `None` until `AUTH` when the
    /// `default` user needs a password.
    pub user: Option<String>,
}

/// `CLIENT REPLY`'s modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
    /// Every reply.
    On,
    /// None.
    Off,
    /// None for the next command, then on.
    Skip,
}

impl Client {
    /// A new RESP2 client of a listener.
    pub fn new(entry: Arc<ClientEntry>, shared: &Shared) -> Self {
        let mut client = Client {
            entry,
            protocol: Protocol::Resp2,
            cluster_aware: false,
            reply: ReplyMode::On,
            transaction: None,
            watched: multi::Watched::default(),
            user: None,
        };
        client.set_user(acl::initial_user(shared));
        client
    }

    /// Logs the client in as `user` (or out).
    pub fn set_user(&mut self, user: Option<String>) {
        self.entry.set_user(user.clone());
        self.user = user;
    }

    /// The client's id.
    pub fn id(&self) -> u64 {
        self.entry.id
    }

    /// Switches RESP version.
    pub fn set_protocol(&mut self, protocol: Protocol) {
        self.protocol = protocol;
        self.entry.set_protocol(if protocol == Protocol::Resp3 { 3 } else { 2 });
    }
}

/// What a handler produced.
pub enum Outcome {
    /// The reply, already known.
    Reply(Frame),
    /// One request to one shard (which `MULTI` can queue).
    Call(Call),
    /// The reply, once the cluster has answered.
    Later(BoxFuture<'static, Frame>),
    /// Reply, then close the connection.
    Close(Frame),
}

/// A request for one shard and how to turn its reply into the command's.
pub struct Call {
    /// The shard.
    pub shard: u64,
    /// What to run there.
    pub request: Request,
    /// The command's reply for the shard's.
    pub reply: fn(Reply) -> Frame,
}

impl Call {
    /// Runs the request as the listener it came through does.
    pub async fn run(self, shared: &Shared) -> Frame {
        match shared.execute(self.shard, self.request).await {
            Ok(answer) => reply_frame(answer.reply, self.reply),
            Err(err) => error_frame(err),
        }
    }
}

/// The command's reply for a shard's reply (errors in Redis's words).
pub fn reply_frame(reply: Reply, format: fn(Reply) -> Frame) -> Frame {
    match reply {
        Reply::Err(err) => kv_error(err),
        other => format(other),
    }
}

/// A command handler: shared node state, the client, the arguments
/// (`args[0]` is the command name as sent).
pub type Handler = fn(&Arc<Shared>, &mut Client, Vec<Bytes>) -> Outcome;

/// A command's description, as `COMMAND INFO` reports it.
pub struct Spec {
    /// Lower-case name.
    pub name: &'static str,
    /// Redis arity: exact argument count including the name, or `-n` for
    /// "at least n".
    pub arity: i64,
    /// Redis command flags.
    pub flags: &'static [&'static str],
    /// First key argument (0: none).
    pub first_key: i64,
    /// Last key argument (-1: the last argument).
    pub last_key: i64,
    /// Step between keys.
    pub step: i64,
    /// ACL categories.
    pub categories: &'static [&'static str],
    /// The handler.
    pub run: Handler,
}

/// Every command, in `COMMAND` order.
pub static TABLE: &[&Spec] = &[
    &acl::SPEC,
    &append::SPEC,
    &auth::SPEC,
    &cairn::FAILOVER,
    &cairn::FAILOVERS,
    &cairn::RPO,
    &cairn::STATUS,
    &client::SPEC,
    &cluster::CLUSTER,
    &command::SPEC,
    &configcmd::SPEC,
    &rename::COPY,
    &dbsize::SPEC,
    &incr::DECR,
    &incr::DECRBY,
    &del::SPEC,
    &multi::DISCARD,
    &echo::SPEC,
    &multi::EXEC,
    &exists::SPEC,
    &expire::EXPIRE,
    &expire::EXPIREAT,
    &ttl::EXPIRETIME,
    &flush::FLUSHALL,
    &flush::FLUSHDB,
    &get::SPEC,
    &getdel::GETDEL,
    &getdel::GETEX,
    &range::GETRANGE,
    &setex::GETSET,
    &hash::HDEL,
    &hello::SPEC,
    &hash::HEXISTS,
    &hash::HGET,
    &hash::HGETALL,
    &hash::HINCRBY,
    &hash::HINCRBYFLOAT,
    &hash::HKEYS,
    &hash::HLEN,
    &hash::HMGET,
    &hash::HMSET,
    &hash::HRANDFIELD,
    &hash::HSCAN,
    &hash::HSET,
    &hash::HSETNX,
    &hash::HSTRLEN,
    &hash::HVALS,
    &incr::INCR,
    &incr::INCRBY,
    &incr::INCRBYFLOAT,
    &info::SPEC,
    &keys::SPEC,
    &time::LASTSAVE,
    &mget::SPEC,
    &mset::MSET,
    &mset::MSETNX,
    &multi::MULTI,
    &expire::PERSIST,
    &expire::PEXPIRE,
    &expire::PEXPIREAT,
    &ttl::PEXPIRETIME,
    &ping::SPEC,
    &setex::PSETEX,
    &ttl::PTTL,
    &quit::SPEC,
    &randomkey::SPEC,
    &cluster::READONLY,
    &cluster::READWRITE,
    &rename::RENAME,
    &rename::RENAMENX,
    &reset::SPEC,
    &scan::SPEC,
    &select::SPEC,
    &set::SPEC,
    &setex::SETEX,
    &setex::SETNX,
    &range::SETRANGE,
    &strlen::SPEC,
    &range::SUBSTR,
    &time::TIME,
    &exists::TOUCH,
    &ttl::TTL,
    &keytype::SPEC,
    &del::UNLINK,
    &multi::UNWATCH,
    &multi::WATCH,
];

static BY_NAME: LazyLock<HashMap<&'static str, &'static Spec>> =
    LazyLock::new(|| TABLE.iter().map(|spec| (spec.name, *spec)).collect());

/// Longest command name [`spec_of`] looks up; no command's is longer.
const LONGEST_NAME: usize = 32;

/// The command named `name`, in any case; `None` if there is none. Looked
/// up once per request, without allocating.
pub fn spec_of(name: &[u8]) -> Option<&'static Spec> {
    let mut lower = [0u8; LONGEST_NAME];
    let lower = lower.get_mut(..name.len())?;
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    BY_NAME.get(std::str::from_utf8(lower).ok()?).copied()
}

/// Runs one request, for the command `spec` if its name is known.
pub fn dispatch(shared: &Arc<Shared>, client: &mut Client, spec: Option<&'static Spec>, args: Vec<Bytes>) -> Outcome {
    let Some(spec) = spec else {
        multi::fail(client);
        return Outcome::Reply(unknown_command(&args));
    };
    client.entry.touch(spec.name);
    let argc = args.len() as i64;
    if (spec.arity > 0 && argc != spec.arity) || (spec.arity < 0 && argc < -spec.arity) {
        multi::fail(client);
        return Outcome::Reply(Frame::error(format!(
            "ERR wrong number of arguments for '{}' command",
            spec.name
        )));
    }
    if let Err(denied) = acl::check(shared, client, spec, &args) {
        multi::fail(client);
        return Outcome::Reply(denied);
    }
    if shared.read_only.is_some() && spec.flags.contains(&"write") {
        multi::fail(client);
        return Outcome::Reply(error_frame(Error::ReadOnly));
    }
    // The read-only listener answers from its own replica: no redirects.
    if client.cluster_aware
        && shared.read_only.is_none()
        && let Some(moved) = moved(shared, spec, &args)
    {
        return Outcome::Reply(moved);
    }
    if client.transaction.is_some() && !multi::CONTROL.contains(&spec.name) {
        return multi::queue(shared, client, spec, args);
    }
    (spec.run)(shared, client, args)
}

/// The keys of a request that touches nothing but them, so that it may run
/// beside earlier pipelined requests on other keys (see
/// [`super::pipeline`]); `None` for a request that must wait for every
/// earlier one: unknown, keyless, or queued in a transaction.
pub fn independent_keys(client: &Client, spec: Option<&Spec>, args: &[Bytes]) -> Option<Vec<Bytes>> {
    if client.transaction.is_some() {
        return None;
    }
    let spec = spec?;
    let keys: Vec<Bytes> = key_positions(spec, args.len()).map(|i| args[i].clone()).collect();
    (!keys.is_empty()).then_some(keys)
}

/// Where the keys are among `argc` arguments, by the command's key spec.
pub fn key_positions(spec: &Spec, argc: usize) -> impl Iterator<Item = usize> {
    let first = usize::try_from(spec.first_key).unwrap_or(0);
    let last = if spec.last_key < 0 {
        argc as i64 + spec.last_key
    } else {
        spec.last_key
    };
    let last = usize::try_from(last).unwrap_or(0).min(argc.saturating_sub(1));
    let step = usize::try_from(spec.step).unwrap_or(1).max(1);
    // A command without keys (`first_key` 0) has none.
    (first > 0).then_some(first..=last).into_iter().flatten().step_by(step)
}

/// For a cluster-aware client: `-MOVED slot host:port` when the command's
/// first key belongs to a shard this node knows to be led elsewhere.
fn moved(shared: &Shared, spec: &Spec, args: &[Bytes]) -> Option<Frame> {
    let key = args.get(usize::try_from(spec.first_key).ok().filter(|&i| i > 0)?)?;
    let node = &shared.node;
    let slot = crate::slot::key_slot(key);
    let leader = node.shard(node.slots().shard_of_slot(slot))?.leader()?;
    if leader == node.id() {
        return None;
    }
    let addr = node.config().topology.node(leader)?.resp_addr;
    Some(Frame::error(format!("MOVED {slot} {addr}")))
}

fn unknown_command(args: &[Bytes]) -> Frame {
    let mut listed = String::new();
    for arg in &args[1..] {
        if listed.len() >= 128 {
            break;
        }
        let room = 128 - listed.len();
        let text = String::from_utf8_lossy(arg);
        let text: String = text.chars().take(room).collect();
        listed.push_str(&format!("'{text}' "));
    }
    let name: String = String::from_utf8_lossy(&args[0]).chars().take(128).collect();
    Frame::error(format!(
        "ERR unknown command '{name}', with args beginning with: {listed}"
    ))
}

/// `-ERR syntax error`.
pub fn syntax_error() -> Frame {
    Frame::error("ERR syntax error")
}

/// Redis's reply for an argument that must be an integer.
pub fn not_integer() -> Frame {
    Frame::error("ERR value is not an integer or out of range")
}

/// Redis's error for a value or argument that is not a float.
pub fn not_float() -> Frame {
    Frame::error("ERR value is not a valid float")
}

/// Parses an integer argument as Redis does.
pub fn parse_int(arg: &[u8]) -> Result<i64, Frame> {
    crate::keyspace::parse_i64(arg).ok_or_else(not_integer)
}

/// The Redis-shaped error for a failure of the cluster.
pub fn error_frame(err: Error) -> Frame {
    match err {
        Error::NoLeader { shard } | Error::NotLeader { shard, .. } => Frame::error(format!(
            "CLUSTERDOWN shard {shard} has no reachable leader right now, try again"
        )),
        Error::Unreachable { .. } | Error::NoLease { .. } | Error::NotServing { .. } => {
            Frame::error(format!("TRYAGAIN {err}"))
        }
        // Redis's words for a write sent to a replica.
        Error::ReadOnly => Frame::error("READONLY You can't write against a read only replica."),
        Error::PastStalenessBound { .. } => Frame::error(format!("MASTERDOWN {err}")),
        // Redis's words when min-replicas-to-write is not met.
        Error::NoWitness { .. } | Error::NotWitnessed { .. } => {
            Frame::error(format!("NOREPLICAS Not enough good replicas to write: {err}"))
        }
        other => Frame::error(format!("ERR {other}")),
    }
}

/// The Redis reply for a deterministic command failure.
pub fn kv_error(err: KvError) -> Frame {
    match err {
        KvError::NotInteger => not_integer(),
        KvError::Overflow => Frame::error("ERR increment or decrement would overflow"),
        KvError::DuplicateRequest => Frame::error("ERR duplicate of a write that was already answered"),
        KvError::TooLong => Frame::error("ERR string exceeds maximum allowed size (proto-max-bulk-len)"),
        KvError::NoSuchKey => Frame::error("ERR no such key"),
        KvError::WrongType => Frame::error("WRONGTYPE Operation against a key holding the wrong kind of value"),
        KvError::HashNotInteger => Frame::error("ERR hash value is not an integer"),
        KvError::NotFloat => not_float(),
        KvError::NanOrInfinity => Frame::error("ERR increment would produce NaN or Infinity"),
        KvError::HashNotFloat => Frame::error("ERR hash value is not a float"),
        KvError::NotServing => Frame::error("TRYAGAIN the region is failing over; try again"),
        KvError::Fenced => Frame::error("ERR shipping refused by a group of another epoch"),
        KvError::NeedsCopy => Frame::error("ERR shipping refused: the group needs a copy of the shard first"),
        KvError::ReplyNotKept => Frame::error(format!("ERR {REPLY_NOT_KEPT}")),
    }
}

/// An integer reply.
pub fn integer(reply: Reply) -> Frame {
    match reply {
        Reply::Int(n) => Frame::Integer(n),
        other => Frame::error(format!("ERR unexpected reply {other:?}")),
    }
}

/// A value, or nil.
pub fn bulk_or_null(reply: Reply) -> Frame {
    match reply {
        Reply::Value(v) => Frame::Bulk(v),
        _ => Frame::Null,
    }
}

/// Redis Cluster's error for a multi-key command whose keys live on more
/// than one shard (it cannot be applied atomically).
pub fn one_shard(shared: &Shared, keys: &[&Bytes]) -> Result<(), Frame> {
    let slots = shared.node.slots();
    let mut shards = keys.iter().map(|key| slots.shard_of_key(key));
    let first = shards.next();
    if shards.any(|shard| Some(shard) != first) {
        return Err(Frame::error("CROSSSLOT Keys in request don't hash to the same slot"));
    }
    Ok(())
}

/// A write request stamped with this node's clock.
pub fn write(op: WriteOp) -> Request {
    Request::Write(Write::new(op))
}

/// Runs `request` on the shard of `key` and hands the reply to `reply`.
pub fn on_key(shared: &Arc<Shared>, key: &[u8], request: Request, reply: fn(Reply) -> Frame) -> Outcome {
    Outcome::Call(Call {
        shard: shared.node.slots().shard_of_key(key),
        request,
        reply,
    })
}

/// Splits `keys` by shard, runs `make(keys of one shard)` on each shard
/// concurrently and returns each shard's reply with the positions of its
/// keys in `keys`. Not atomic across shards.
pub async fn fan_out(
    shared: &Arc<Shared>,
    keys: &[Bytes],
    make: fn(Vec<Bytes>) -> Request,
) -> Result<Vec<(Vec<usize>, Reply)>, Frame> {
    let node = &shared.node;
    let mut by_shard: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, key) in keys.iter().enumerate() {
        by_shard.entry(node.slots().shard_of_key(key)).or_default().push(i);
    }
    let calls = by_shard.into_iter().map(|(shard, positions)| async move {
        let shard_keys = positions.iter().map(|&i| keys[i].clone()).collect();
        match shared.execute(shard, make(shard_keys)).await {
            Ok(answer) => match answer.reply {
                Reply::Err(err) => Err(kv_error(err)),
                reply => Ok((positions, reply)),
            },
            Err(err) => Err(error_frame(err)),
        }
    });
    futures::future::try_join_all(calls).await
}

/// Runs `request` on every shard concurrently; the replies in shard order.
/// Not atomic across shards.
pub async fn on_every_shard(shared: &Shared, request: Request) -> Result<Vec<Reply>, Frame> {
    let shards = 0..u64::from(shared.node.slots().shards());
    let calls = shards.map(|shard| shared.execute(shard, request.clone()));
    let answers = futures::future::try_join_all(calls).await.map_err(error_frame)?;
    answers
        .into_iter()
        .map(|answer| match answer.reply {
            Reply::Err(err) => Err(kv_error(err)),
            reply => Ok(reply),
        })
        .collect()
}

/// Sums the integer replies of a fan-out (`DEL`, `EXISTS`); keys of one
/// shard make one call (which `MULTI` can queue).
pub fn sum_fan_out(shared: &Arc<Shared>, args: Vec<Bytes>, make: fn(Vec<Bytes>) -> Request) -> Outcome {
    let keys: Vec<&Bytes> = args[1..].iter().collect();
    if one_shard(shared, &keys).is_ok() {
        return on_key(shared, &args[1].clone(), make(args[1..].to_vec()), integer);
    }
    let shared = shared.clone();
    Outcome::Later(Box::pin(async move {
        match fan_out(&shared, &args[1..], make).await {
            Ok(replies) => Frame::Integer(
                replies
                    .into_iter()
                    .map(|(_, reply)| if let Reply::Int(n) = reply { n } else { 0 })
                    .sum(),
            ),
            Err(frame) => frame,
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_is_found_in_any_case_and_no_other() {
        for spec in TABLE {
            assert!(spec.name.len() <= LONGEST_NAME, "{} is too long to look up", spec.name);
            let upper = spec.name.to_ascii_uppercase();
            assert_eq!(spec_of(upper.as_bytes()).map(|s| s.name), Some(spec.name));
        }
        assert!(spec_of(b"nosuchcommand").is_none());
        assert!(spec_of(&[b'g'; LONGEST_NAME + 1]).is_none());
        assert!(spec_of(b"g\xffet").is_none());
    }

    #[test]
    fn table_names_are_unique_lowercase_and_sorted() {
        let names: Vec<&str> = TABLE.iter().map(|s| s.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
        assert!(names.iter().all(|n| n.chars().all(|c| !c.is_ascii_uppercase())));
    }

    #[test]
    fn unknown_command_wording_matches_redis() {
        let args = vec![Bytes::from("FOO"), Bytes::from("a"), Bytes::from("b")];
        assert_eq!(
            unknown_command(&args),
            Frame::error("ERR unknown command 'FOO', with args beginning with: 'a' 'b' ")
        );
    }
}

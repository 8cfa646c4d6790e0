//! The Redis-protocol side of the load generator: pipelined connections,
//! and the slot map that routes a cluster-aware run straight to each
//! slot's master (Cairn: the shard leader; Redis Cluster: the master).
//!
//! A connection writes a whole pipeline of commands in one write and then
//! reads as many replies; an error reply counts as a failed operation, a
//! `-MOVED` makes the run re-read the slot map. A cluster-aware session
//! splits a pipeline by node, writes every node its part, and only then
//! reads the replies, as cluster clients' pipelines do: each node sees its
//! part at once, and the whole pipeline is in flight together.
//!
//! The generator shares the machine with the servers it measures, so it
//! keeps its own work small: commands are encoded without formatting
//! machinery and reply lines read into one reused buffer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::workload::Op;

/// A reply, as far as the generator looks at it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `+…`, `:…`, or a bulk string.
    Data(Vec<u8>),
    /// `-…`.
    Error(String),
    /// Nil.
    Nil,
    /// `*…`.
    Array(Vec<Value>),
}

/// One pipelined connection.
pub struct Connection {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    out: Vec<u8>,
    /// The reply line being read.
    line: Vec<u8>,
}

fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
    let mut number = itoa::Buffer::new();
    out.push(b'*');
    out.extend_from_slice(number.format(args.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for arg in args {
        out.push(b'$');
        out.extend_from_slice(number.format(arg.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

fn bad(what: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what)
}

impl Connection {
    /// Connects to `addr`.
    pub async fn open(addr: SocketAddr) -> std::io::Result<Connection> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (read, write) = stream.into_split();
        Ok(Connection {
            reader: BufReader::with_capacity(64 * 1024, read),
            writer: write,
            out: Vec::with_capacity(64 * 1024),
            line: Vec::with_capacity(64),
        })
    }

    /// Sends one command and reads its reply.
    pub async fn call(&mut self, args: &[&[u8]]) -> std::io::Result<Value> {
        self.out.clear();
        encode(&mut self.out, args);
        self.writer.write_all(&self.out).await?;
        self.read().await
    }

    /// A field of `INFO <section>`, if the server has it.
    pub async fn info_field(&mut self, section: &str, field: &str) -> anyhow::Result<Option<String>> {
        let reply = self.call(&[b"INFO", section.as_bytes()]).await?;
        let Value::Data(text) = reply else {
            anyhow::bail!("INFO {section} answered {reply:?}");
        };
        let prefix = format!("{field}:");
        Ok(String::from_utf8_lossy(&text)
            .lines()
            .find_map(|line| line.strip_prefix(&prefix).map(str::to_string)))
    }

    /// Sends every operation in one write (`SET` with `value`); their
    /// replies are then read by [`Connection::replies`].
    pub async fn send(&mut self, ops: &[Op], value: &[u8]) -> std::io::Result<()> {
        self.out.clear();
        for op in ops {
            match op {
                Op::Get(key) => encode(&mut self.out, &[b"GET", key]),
                Op::Set(key) => encode(&mut self.out, &[b"SET", key, value]),
                Op::Incr(key) => encode(&mut self.out, &[b"INCR", key]),
            }
        }
        self.writer.write_all(&self.out).await
    }

    /// Reads `count` replies, in order.
    pub async fn replies(&mut self, count: usize) -> std::io::Result<Vec<Value>> {
        let mut replies = Vec::with_capacity(count);
        for _ in 0..count {
            replies.push(self.read().await?);
        }
        Ok(replies)
    }

    /// Reads the next reply line into `self.line`, without its `\r\n`.
    async fn line(&mut self) -> std::io::Result<()> {
        self.line.clear();
        if self.reader.read_until(b'\n', &mut self.line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.line.truncate(self.line.len().saturating_sub(2));
        Ok(())
    }

    async fn read(&mut self) -> std::io::Result<Value> {
        self.line().await?;
        let (&kind, rest) = self.line.split_first().ok_or_else(|| bad("empty reply line".into()))?;
        let number = || {
            std::str::from_utf8(rest)
                .ok()
                .and_then(|n| n.parse::<i64>().ok())
                .ok_or_else(|| bad(format!("bad length {:?}", String::from_utf8_lossy(rest))))
        };
        Ok(match kind {
            b'+' | b':' => Value::Data(rest.to_vec()),
            b'-' => Value::Error(String::from_utf8_lossy(rest).into_owned()),
            b'$' => match number()? {
                n if n < 0 => Value::Nil,
                n => {
                    let mut data = vec![0; n as usize + 2];
                    self.reader.read_exact(&mut data).await?;
                    data.truncate(n as usize);
                    Value::Data(data)
                }
            },
            b'*' => match number()? {
                n if n < 0 => Value::Nil,
                n => {
                    let mut items = Vec::with_capacity(n as usize);
                    for _ in 0..n {
                        // Arrays nest: the inner read is boxed.
                        items.push(Box::pin(self.read()).await?);
                    }
                    Value::Array(items)
                }
            },
            other => return Err(bad(format!("unexpected reply type {:?}", other as char))),
        })
    }
}

/// One task's connections to a server or cluster, and how it routes.
pub struct RespSession {
    map: Option<SlotMap>,
    connections: HashMap<SocketAddr, Connection>,
    target: SocketAddr,
}

impl RespSession {
    /// Connects lazily to `target`; with `cluster`, reads the slot map.
    pub async fn open(target: SocketAddr, cluster: bool) -> anyhow::Result<RespSession> {
        let map = if cluster {
            Some(SlotMap::fetch(target).await?)
        } else {
            None
        };
        Ok(RespSession {
            map,
            connections: HashMap::new(),
            target,
        })
    }

    fn addr_of(&self, key: &[u8]) -> SocketAddr {
        self.map.as_ref().map_or(self.target, |map| map.addr_of(key))
    }

    /// Sends `ops`, each node its part, all before any reply is read;
    /// calls `done` with each part's size, round-trip time (from its
    /// write to its last reply) and errors. A `-MOVED` reloads the slot
    /// map.
    pub async fn send(
        &mut self,
        ops: Vec<Op>,
        value: &[u8],
        mut done: impl FnMut(usize, Duration, usize),
    ) -> anyhow::Result<()> {
        let mut parts: HashMap<SocketAddr, Vec<Op>> = HashMap::new();
        for op in ops {
            parts.entry(self.addr_of(op.key())).or_default().push(op);
        }
        let mut sent = Vec::with_capacity(parts.len());
        for (addr, part) in parts {
            let conn = match self.connections.entry(addr) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => e.insert(Connection::open(addr).await?),
            };
            let start = Instant::now();
            conn.send(&part, value).await?;
            sent.push((addr, part.len(), start));
        }
        let mut moved = false;
        for (addr, count, start) in sent {
            let conn = self.connections.get_mut(&addr).expect("opened to send");
            let replies = conn.replies(count).await?;
            let errors = replies.iter().filter(|r| matches!(r, Value::Error(_))).count();
            moved |= replies
                .iter()
                .any(|r| matches!(r, Value::Error(e) if e.starts_with("MOVED ")));
            done(count, start.elapsed(), errors);
        }
        if moved && let Some(map) = self.map.as_mut() {
            *map = SlotMap::fetch(self.target).await?;
        }
        Ok(())
    }
}

/// Slot ranges and the address serving each (`CLUSTER SLOTS`).
#[derive(Debug, Clone)]
pub struct SlotMap {
    ranges: Vec<(u16, u16, SocketAddr)>,
}

impl SlotMap {
    /// Reads the map from the node at `seed`.
    pub async fn fetch(seed: SocketAddr) -> anyhow::Result<SlotMap> {
        let mut conn = Connection::open(seed).await?;
        let Value::Array(ranges) = conn.call(&[b"CLUSTER", b"SLOTS"]).await? else {
            anyhow::bail!("{seed} did not answer CLUSTER SLOTS with a slot map (not a cluster?)");
        };
        let mut map = Vec::new();
        for range in ranges {
            let Value::Array(fields) = range else { continue };
            let (Some(Value::Data(start)), Some(Value::Data(end)), Some(Value::Array(master))) =
                (fields.first(), fields.get(1), fields.get(2))
            else {
                anyhow::bail!("{seed}: malformed CLUSTER SLOTS entry");
            };
            let (Some(Value::Data(host)), Some(Value::Data(port))) = (master.first(), master.get(1)) else {
                anyhow::bail!("{seed}: CLUSTER SLOTS entry without an address");
            };
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            let host = if host.is_empty() {
                seed.ip().to_string()
            } else {
                text(host)
            };
            let addr: SocketAddr = format!("{host}:{}", text(port)).parse()?;
            map.push((text(start).parse()?, text(end).parse()?, addr));
        }
        anyhow::ensure!(!map.is_empty(), "{seed}: CLUSTER SLOTS lists no slots");
        Ok(SlotMap { ranges: map })
    }

    /// How many slot ranges (shards) the map has.
    pub fn ranges(&self) -> usize {
        self.ranges.len()
    }

    /// The address serving `key`.
    pub fn addr_of(&self, key: &[u8]) -> SocketAddr {
        let slot = cairn_proto::slot::key_slot(key);
        self.ranges
            .iter()
            .find(|(start, end, _)| (*start..=*end).contains(&slot))
            .map_or(self.ranges[0].2, |(_, _, addr)| *addr)
    }
}

//! Replication's own link: each group's stream of AppendEntries requests
//! to a follower runs on a TCP connection of its own, as length-prefixed
//! frames, beside the node's gRPC services on the same `grpc_addr`.
//!
//! Replication is the one kind of Raft traffic every write pays for, once
//! per follower and batch. Carried as an HTTP/2 stream, each message passed
//! through hyper's connection task at each end on its way between the
//! socket and the group, and HTTP/2 took a fifth of a node's CPU under
//! writes with 8 groups (BENCHMARKS.md). On a connection of its own a
//! message is written by the task that asks openraft for it and read by
//! the task that answers it.
//!
//! A connection opens with [`MAGIC`] and the group's id; the node's
//! listener tells it from an HTTP/2 connection by those first bytes (see
//! `crate::grpc`). Then each request and each answer is one frame: its
//! length as a big-endian `u32`, then the message as [`crate::wire`]
//! encodes it. Answers come in request order, and one request is in flight
//! at a time (see [`crate::raft::network::Peers::stream_append`]).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::raft::typ::GroupId;

/// The first bytes of a replication connection (an HTTP/2 connection
/// starts with `PRI * HTTP/2.0`).
pub const MAGIC: [u8; 8] = *b"CAIRNAPP";

/// The largest frame taken. A Raft append carries at most
/// [`crate::raft::log_store::PAYLOAD_BYTES`] of entries and one entry
/// more, which [`crate::proposals`] keeps within this (checked where it is
/// compiled).
pub const MAX_FRAME: usize = 64 * 1024 * 1024;

/// The leader's end of a replication connection.
pub struct Link {
    receiver: Receiver,
    sender: Sender,
}

impl Link {
    /// Connects to the node at `addr` for group `group`'s stream.
    pub async fn open(addr: SocketAddr, group: GroupId) -> io::Result<Link> {
        let socket = TcpStream::connect(addr).await?;
        // Nagle's algorithm would hold each request back for the previous
        // answer's delayed ACK.
        socket.set_nodelay(true)?;
        let (receiver, mut sender) = halves(socket);
        let mut hello = MAGIC.to_vec();
        hello.extend_from_slice(&group.to_be_bytes());
        sender.0.write_all(&hello).await?;
        Ok(Link { receiver, sender })
    }

    /// Sends `request` and waits for its answer.
    pub async fn exchange(&mut self, request: &[u8]) -> io::Result<Vec<u8>> {
        self.sender.send(request).await?;
        self.receiver.receive().await
    }

    /// Whether the connection is still open with nothing unread: the peer
    /// has not closed it (a restart, a stream it ended).
    fn is_idle(&self) -> bool {
        let mut byte = [0];
        self.receiver.0.buffer().is_empty()
            && matches!(self.receiver.0.get_ref().try_read(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

/// Links not in use, by peer and group, for the next stream to take up:
/// openraft opens a stream for every heartbeat and every replication
/// session, and a connection each would cost a handshake (and a socket
/// in TIME-WAIT) several times a second per group and follower.
#[derive(Default)]
pub struct Idle(Mutex<HashMap<(SocketAddr, GroupId), Vec<Link>>>);

impl Idle {
    /// An idle link to `addr` for `group`, if one is still open.
    pub fn take(&self, addr: SocketAddr, group: GroupId) -> Option<Link> {
        let mut idle = self.0.lock().expect("idle links lock");
        let links = idle.get_mut(&(addr, group))?;
        std::iter::from_fn(|| links.pop()).find(Link::is_idle)
    }

    /// Keeps `link`, whose last request was answered, for the next stream.
    pub fn put(&self, addr: SocketAddr, group: GroupId, link: Link) {
        let mut idle = self.0.lock().expect("idle links lock");
        idle.entry((addr, group)).or_default().push(link);
    }
}

/// The accepting end of `socket`, whose [`MAGIC`] was read: the group its
/// stream is for, and its halves.
pub async fn accept(socket: TcpStream) -> io::Result<(GroupId, Receiver, Sender)> {
    let (mut receiver, sender) = halves(socket);
    let group = receiver.0.read_u64().await?;
    Ok((group, receiver, sender))
}

fn halves(socket: TcpStream) -> (Receiver, Sender) {
    let (reader, writer) = socket.into_split();
    (Receiver(BufReader::new(reader)), Sender(writer))
}

/// The end of a replication connection that frames arrive at.
pub struct Receiver(BufReader<OwnedReadHalf>);

impl Receiver {
    /// The next frame's message.
    pub async fn receive(&mut self) -> io::Result<Vec<u8>> {
        read_frame(&mut self.0).await
    }
}

/// The end of a replication connection that frames leave from.
pub struct Sender(OwnedWriteHalf);

impl Sender {
    /// Sends one frame holding `message`.
    pub async fn send(&mut self, message: &[u8]) -> io::Result<()> {
        write_frame(&mut self.0, message).await
    }
}

/// Writes `message` as one frame, in one write.
async fn write_frame(writer: &mut (impl AsyncWrite + Unpin), message: &[u8]) -> io::Result<()> {
    let len = u32::try_from(message.len())
        .ok()
        .filter(|&len| len as usize <= MAX_FRAME)
        .ok_or_else(|| too_large(message.len()))?;
    let mut frame = Vec::with_capacity(4 + message.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(message);
    writer.write_all(&frame).await
}

/// Reads one frame's message.
async fn read_frame(reader: &mut (impl AsyncRead + Unpin)) -> io::Result<Vec<u8>> {
    let len = reader.read_u32().await? as usize;
    if len > MAX_FRAME {
        return Err(too_large(len));
    }
    let mut message = vec![0; len];
    reader.read_exact(&mut message).await?;
    Ok(message)
}

fn too_large(len: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("a replication frame of {len} bytes, over the {MAX_FRAME}-byte limit"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_arrive_whole_and_in_order_on_the_group_named() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut link = Link::open(addr, 42).await.unwrap();
            link.sender.send(b"first").await.unwrap();
            link.sender.send(&[]).await.unwrap();
            link.exchange(&vec![7; 100_000]).await.unwrap()
        });
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut magic = [0; 8];
        socket.read_exact(&mut magic).await.unwrap();
        assert_eq!(magic, MAGIC);
        let (group, mut receiver, mut sender) = accept(socket).await.unwrap();
        assert_eq!(group, 42);
        assert_eq!(receiver.receive().await.unwrap(), b"first");
        assert_eq!(receiver.receive().await.unwrap(), b"");
        assert_eq!(receiver.receive().await.unwrap(), vec![7; 100_000]);
        sender.send(b"answer").await.unwrap();
        assert_eq!(client.await.unwrap(), b"answer");
    }

    #[tokio::test]
    async fn an_idle_link_is_taken_up_again_until_its_peer_closes_it() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let idle = Idle::default();
        idle.put(addr, 1, Link::open(addr, 1).await.unwrap());
        let (socket, _) = listener.accept().await.unwrap();
        assert!(idle.take(addr, 2).is_none(), "another group's link");
        let link = idle.take(addr, 1).expect("the open link");
        assert!(idle.take(addr, 1).is_none(), "taken once");
        drop(socket);
        // The peer's close has arrived once the link reads as ready.
        link.receiver.0.get_ref().readable().await.unwrap();
        idle.put(addr, 1, link);
        assert!(idle.take(addr, 1).is_none(), "a link its peer closed");
    }

    #[tokio::test]
    async fn a_frame_over_the_limit_is_refused_by_name() {
        let mut bytes: &[u8] = &(MAX_FRAME as u32 + 1).to_be_bytes();
        let err = read_frame(&mut bytes).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("over the 67108864-byte limit"), "{err}");
    }
}

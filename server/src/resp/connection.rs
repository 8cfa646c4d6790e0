//! One client connection: read requests, run them, write replies in order.
//!
//! Every complete request already buffered is started before the socket is
//! read again; requests on distinct keys run side by side (see
//! [`super::pipeline`] for the ordering rule), and their replies are written
//! in request order in one batch (or whenever 64 KiB are pending). A request
//! answered on its first poll while nothing is in flight (a read served
//! from memory) is encoded at once, without a place in the pipeline. A
//! protocol error gets Redis's `-ERR Protocol error: …` and closes the
//! connection; so does a request that outgrows the query buffer limit. A
//! client idle past the idle timeout is closed. Nothing else is affected.
//! The task ends when the client leaves, after `QUIT`, or on shutdown (after
//! the command in flight).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;

use bytes::BytesMut;
use futures::FutureExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use cairn_proto::resp::{Limits, ParseError, parse_request};

use super::clients::ClientEntry;
use super::cmd::{self, Client, Outcome, ReplyMode};
use super::frame::Frame;
use super::pipeline::Pipeline;
use super::server::Shared;

/// Initial read buffer size.
const READ_BUFFER: usize = 16 * 1024;
/// Replies are written out once this much is pending, so a client that
/// pipelines many requests (or reads slowly) holds at most about this much
/// reply memory, and waits on its own socket without holding others up.
const OUTPUT_FLUSH: usize = 64 * 1024;

/// A client's connection task.
pub struct Connection {
    socket: TcpStream,
    shared: Arc<Shared>,
    client: Client,
    stop: watch::Receiver<bool>,
}

impl Connection {
    /// Wraps an accepted socket.
    pub fn new(
        socket: TcpStream,
        addr: SocketAddr,
        local: SocketAddr,
        shared: Arc<Shared>,
        stop: watch::Receiver<bool>,
    ) -> Self {
        let id = shared.next_client_id.fetch_add(1, Ordering::Relaxed);
        let entry = Arc::new(ClientEntry::new(id, addr, local));
        let client = Client::new(entry, &shared);
        Connection {
            socket,
            shared,
            client,
            stop,
        }
    }

    /// Serves the client until it leaves or the node stops.
    pub async fn run(mut self) {
        self.shared.clients.fetch_add(1, Ordering::Relaxed);
        self.shared.registry.add(self.client.entry.clone());
        if let Err(err) = self.serve().await {
            tracing::debug!(client = self.client.id(), cause = %err, "connection closed");
        }
        self.shared.registry.remove(self.client.id());
        self.shared.clients.fetch_sub(1, Ordering::Relaxed);
    }

    async fn serve(&mut self) -> std::io::Result<()> {
        let config = &self.shared.node.config().clients;
        let limits = Limits {
            max_bulk_len: config.proto_max_bulk_len,
            ..Limits::default()
        };
        let idle = (config.idle_timeout_secs > 0).then(|| std::time::Duration::from_secs(config.idle_timeout_secs));
        let query_limit = config.query_buffer_limit;
        let mut input = BytesMut::with_capacity(READ_BUFFER);
        let mut output = BytesMut::with_capacity(READ_BUFFER);
        let mut pipeline = Pipeline::default();
        loop {
            loop {
                let args = match parse_request(&mut input, &limits) {
                    Ok(Some(args)) => args,
                    Ok(None) if input.is_empty() => break,
                    Ok(None) => continue,
                    Err(ParseError::Incomplete) => break,
                    Err(err @ ParseError::Protocol(_)) => {
                        Frame::error(format!("ERR {err}")).encode(self.client.protocol, &mut output);
                        self.socket.write_all(&output).await?;
                        return Ok(());
                    }
                };
                self.shared.commands.fetch_add(1, Ordering::Relaxed);
                let spec = cmd::spec_of(&args[0]);
                let keys = cmd::independent_keys(&self.client, spec, &args);
                let overlaps = keys.as_deref().is_some_and(|keys| pipeline.admits(keys));
                if !overlaps {
                    pipeline.drain(self.client.protocol, &mut output).await;
                }
                let mode = self.client.reply;
                let outcome = cmd::dispatch(&self.shared, &mut self.client, spec, args);
                // `CLIENT REPLY`: a skipped command's reply is dropped, and
                // so is every reply while replies are off.
                let emit = match (mode, self.client.reply) {
                    (ReplyMode::Skip, _) => {
                        self.client.reply = ReplyMode::On;
                        false
                    }
                    (_, reply) => reply == ReplyMode::On,
                };
                let reply = match outcome {
                    Outcome::Reply(frame) if pipeline.is_empty() => {
                        if emit {
                            frame.encode(self.client.protocol, &mut output);
                        }
                        None
                    }
                    Outcome::Reply(frame) => Some(futures::future::ready(frame).boxed()),
                    Outcome::Call(call) => {
                        let shared = self.shared.clone();
                        Some(async move { call.run(&shared).await }.boxed())
                    }
                    Outcome::Later(future) => Some(future),
                    Outcome::Close(frame) => {
                        pipeline.drain(self.client.protocol, &mut output).await;
                        if emit {
                            frame.encode(self.client.protocol, &mut output);
                        }
                        self.socket.write_all(&output).await?;
                        return Ok(());
                    }
                };
                if let Some(mut reply) = reply {
                    // A request that is answered at once (a read served
                    // from memory) with nothing in flight before it needs
                    // no place in the pipeline; one still under way keeps
                    // its place there, polled once already.
                    let answered = match pipeline.is_empty() {
                        true => futures::poll!(&mut reply),
                        false => Poll::Pending,
                    };
                    match answered {
                        Poll::Ready(frame) if emit => frame.encode(self.client.protocol, &mut output),
                        Poll::Ready(_) => {}
                        Poll::Pending => pipeline.push(keys.unwrap_or_default(), reply, emit),
                    }
                }
                if self.client.entry.is_killed() {
                    pipeline.drain(self.client.protocol, &mut output).await;
                    self.socket.write_all(&output).await?;
                    return Ok(());
                }
                if output.len() >= OUTPUT_FLUSH {
                    self.socket.write_all(&output).await?;
                    output.clear();
                }
            }
            pipeline.drain(self.client.protocol, &mut output).await;
            if !output.is_empty() {
                self.socket.write_all(&output).await?;
                output.clear();
            }
            if *self.stop.borrow() {
                return Ok(());
            }
            if input.len() > query_limit {
                let message = format!("ERR Protocol error: query buffer limit of {query_limit} bytes exceeded");
                Frame::error(message).encode(self.client.protocol, &mut output);
                self.socket.write_all(&output).await?;
                return Ok(());
            }
            let idle_for = async {
                match idle {
                    Some(idle) => tokio::time::sleep(idle).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                read = self.socket.read_buf(&mut input) => {
                    if read? == 0 {
                        return Ok(());
                    }
                }
                _ = self.stop.changed() => return Ok(()),
                () = self.client.entry.killed() => return Ok(()),
                () = idle_for => return Ok(()),
            }
        }
    }
}

//! A connection's pipeline: requests whose replies are still being
//! computed, answered in the order they were sent.
//!
//! Redis runs a pipeline one command at a time, which costs nothing when
//! every command is a memory access. Here a write waits for a Raft commit
//! and a read for the leader's lease, so running a client's pipelined
//! requests one after the other would make each wait for the previous one's
//! round trip. Instead, consecutive requests run side by side as long as
//! none of them touches a key that an earlier one still in flight touches.
//!
//! # Correctness
//!
//! Requests that share a key never overlap: the later one starts only when
//! every earlier request has answered, so a client reads its own writes
//! and two writes to one key apply in the order sent, exactly as in Redis.
//! Requests on different keys are concurrent from the client's side anyway
//! (the second was sent before the first was answered), so any order
//! between them is linearizable. A request that is not known to touch only
//! its named keys (no keys, a transaction, connection state) starts only
//! once the pipeline is empty, so it sees every earlier request's effect.
//! Replies are written strictly in request order whatever order the
//! requests finish in.

use bytes::{Bytes, BytesMut};
use futures::future::{self, BoxFuture, Join, Ready};
use futures::stream::{FuturesOrdered, StreamExt};
use hashbrown::HashSet;

use super::frame::{Frame, Protocol};

/// Most requests of one connection in flight at once; beyond it the next
/// request waits for the pipeline to drain, so a client that pipelines
/// thousands of requests holds a bounded number of pending proposals.
pub const MAX_IN_FLIGHT: usize = 256;

/// A reply on its way, and whether the client is to receive it
/// (`CLIENT REPLY OFF|SKIP` drop replies).
type Pending = Join<BoxFuture<'static, Frame>, Ready<bool>>;

/// The requests of one connection still in flight.
#[derive(Default)]
pub struct Pipeline {
    replies: FuturesOrdered<Pending>,
    /// The keys the requests in flight touch, hashed with a fast hash
    /// rather than SipHash: they are this client's own keys, so keys chosen
    /// to collide would slow only this client's requests, and every
    /// pipelined request hashes its keys twice.
    keys: HashSet<Bytes>,
}

impl Pipeline {
    /// Whether a request touching exactly `keys` may start now, beside the
    /// requests in flight.
    pub fn admits(&self, keys: &[Bytes]) -> bool {
        self.replies.len() < MAX_IN_FLIGHT && keys.iter().all(|key| !self.keys.contains(key))
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.replies.is_empty()
    }

    /// Adds a started request touching `keys`; its reply follows every
    /// earlier one.
    pub fn push(&mut self, keys: Vec<Bytes>, reply: BoxFuture<'static, Frame>, emit: bool) {
        self.keys.extend(keys);
        self.replies.push_back(future::join(reply, future::ready(emit)));
    }

    /// Waits for every request in flight and encodes the replies that are
    /// to be sent into `output`, in request order.
    pub async fn drain(&mut self, protocol: Protocol, output: &mut BytesMut) {
        while let Some((frame, emit)) = self.replies.next().await {
            if emit {
                frame.encode(protocol, output);
            }
        }
        self.keys.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::FutureExt;

    use super::*;

    fn key(name: &str) -> Bytes {
        Bytes::copy_from_slice(name.as_bytes())
    }

    #[test]
    fn a_request_sharing_a_key_with_one_in_flight_waits() {
        let mut pipeline = Pipeline::default();
        assert!(pipeline.admits(&[key("a")]));
        pipeline.push(vec![key("a"), key("b")], async { Frame::ok() }.boxed(), true);
        assert!(!pipeline.admits(&[key("b")]));
        assert!(!pipeline.admits(&[key("c"), key("a")]));
        assert!(pipeline.admits(&[key("c")]));
    }

    #[test]
    fn the_pipeline_is_bounded() {
        let mut pipeline = Pipeline::default();
        for i in 0..MAX_IN_FLIGHT {
            pipeline.push(vec![key(&i.to_string())], async { Frame::ok() }.boxed(), true);
        }
        assert!(!pipeline.admits(&[key("other")]));
    }

    #[tokio::test]
    async fn replies_come_out_in_request_order_and_dropped_ones_stay_out() {
        let mut pipeline = Pipeline::default();
        let slow = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Frame::Integer(1)
        };
        pipeline.push(vec![key("a")], slow.boxed(), true);
        pipeline.push(vec![key("b")], async { Frame::Integer(2) }.boxed(), false);
        pipeline.push(vec![key("c")], async { Frame::Integer(3) }.boxed(), true);
        let mut output = BytesMut::new();
        pipeline.drain(Protocol::Resp2, &mut output).await;
        assert_eq!(&output[..], b":1\r\n:3\r\n");
        assert!(pipeline.is_empty());
        assert!(pipeline.admits(&[key("a")]));
    }
}

//! The Redis front: RESP2/RESP3 on the node's `resp_addr`.
//!
//! - [`frame`]: reply values and their encoding in either protocol version.
//! - requests are framed by [`cairn_proto::resp`] (multibulk or inline),
//!   zero-copy, with Redis's limits and error texts.
//! - [`server`] and [`connection`]: the accept loop and one task per client,
//!   answering pipelined requests in order; [`pipeline`]: which of them
//!   may run side by side; [`clients`]: who is connected
//!   (`CLIENT LIST`, `CLIENT KILL`).
//! - [`cmd`]: one file per command (or small family), dispatched from one
//!   table that also answers `COMMAND`.
//!
//! Any node answers any key: commands run through
//! [`crate::node::Node::execute`], which forwards to the shard's leader.

pub mod clients;
pub mod cmd;
pub mod connection;
pub mod frame;
pub mod pipeline;
pub mod server;

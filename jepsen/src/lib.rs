//! cairn-jepsen: runs a real Cairn cluster under faults, records what its
//! clients saw, and checks the history for linearizability violations and
//! lost or duplicated writes.
//!
//! - [`history`]: operations as clients saw them, in JSON Lines.
//! - [`checker`]: linearizability (Wing–Gong/Lowe), set and counter checks.
//! - [`cluster`]: real `cairn-server` processes to break.
//! - [`nemesis`]: the faults, on a schedule.
//! - [`net`]: network namespaces, so partitions are real packet loss.
//! - [`region`]: the primary region, failovers, and what they discarded.
//! - [`workload`]: concurrent clients over gRPC and the Redis protocol.
//! - [`run`]: one whole test, from start to verdict.
//! - [`report`]: an HTML timeline of what failed.

pub mod checker;
pub mod cluster;
pub mod history;
pub mod nemesis;
pub mod net;
pub mod region;
pub mod report;
pub mod resp_client;
pub mod run;
pub mod workload;

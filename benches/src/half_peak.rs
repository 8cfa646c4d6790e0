//! Read latency at half of a server's peak throughput.
//!
//! A server's latency at full load is mostly queueing; what an application
//! sized with room to spare sees is its latency at part of the peak. The
//! usual way to get there is a paced (open-loop) generator, but on a small
//! shared machine a paced generator measures its own timer and thread
//! wake-ups as much as the server: a release every 100 µs arrives
//! milliseconds late about once in a hundred, which is the p99. So the load
//! is lowered the closed-loop way instead: fewer connections, each sending
//! its next request when the last is answered. [`measure`] tries 1, 2, 4, …
//! connections in short runs, takes the fewest whose throughput reaches
//! half of the peak, and measures a full window with that many.

use std::time::Duration;

use serde::Serialize;

use crate::report::Measured;
use crate::runner::{self, Load};

/// How long each trial of the search runs (or the load's window, when
/// shorter).
const TRIAL: Duration = Duration::from_secs(2);

/// The load at half of the peak and what it measured.
#[derive(Debug, Clone, Serialize)]
pub struct HalfPeak {
    /// The peak it is half of, in operations per second.
    pub peak_ops_per_sec: f64,
    /// Connections that reach half of the peak (per node, cluster-aware).
    pub connections: usize,
    /// The full window at that many connections.
    #[serde(flatten)]
    pub measured: Measured,
}

impl HalfPeak {
    /// This run's throughput over the peak.
    pub fn share_of_peak(&self) -> f64 {
        self.measured.ops_per_sec / self.peak_ops_per_sec
    }
}

/// Measures `load` (its key space already written) with the fewest
/// connections, up to its own, whose throughput reaches half of
/// `peak_ops_per_sec`.
pub async fn measure(load: &Load, peak_ops_per_sec: f64) -> anyhow::Result<HalfPeak> {
    let trial = Load {
        warmup: Duration::from_millis(500).min(load.warmup),
        duration: TRIAL.min(load.duration),
        preload: false,
        ..load.clone()
    };
    let candidates = std::iter::successors(Some(1usize), |c| Some(c * 2)).take_while(|&c| c < load.connections);
    let mut connections = load.connections;
    for candidate in candidates {
        eprintln!("trying {candidate} connections for half of {peak_ops_per_sec:.0} ops/s");
        let tried = runner::run(Load {
            connections: candidate,
            ..trial.clone()
        })
        .await?;
        if tried.ops_per_sec >= peak_ops_per_sec / 2.0 {
            connections = candidate;
            break;
        }
    }
    let measured = runner::run(Load {
        connections,
        preload: false,
        ..load.clone()
    })
    .await?;
    Ok(HalfPeak {
        peak_ops_per_sec,
        connections,
        measured,
    })
}

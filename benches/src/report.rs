//! What a run measured, as a table for people and JSON for tools.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// How `compare` and `memory` print their results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Plain-text tables.
    Table,
    /// One JSON document.
    Json,
    /// A Markdown report (what `make benchmarks` writes to BENCHMARKS.md).
    Markdown,
}

/// This machine: cores and memory.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            let kib: u64 = info.lines().next()?.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib / (1024 * 1024))
        })
        .unwrap_or(0);
    format!("{cores} cores, {mem_gib} GiB")
}

/// Today's date (UTC), `YYYY-MM-DD`.
pub fn today() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%F"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// Throughput and latency of one run (the measured window only).
#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    /// Operations completed.
    pub ops: u64,
    /// Operations answered with an error.
    pub errors: u64,
    /// Operations per second.
    pub ops_per_sec: f64,
    /// Latency percentiles and maximum, in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

impl Measured {
    /// Summarises a histogram of latencies in microseconds.
    pub fn new(histogram: &Histogram<u64>, ops: u64, errors: u64, window: Duration) -> Measured {
        let ms = |micros: u64| micros as f64 / 1000.0;
        Measured {
            ops,
            errors,
            ops_per_sec: ops as f64 / window.as_secs_f64(),
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            p999_ms: ms(histogram.value_at_quantile(0.999)),
            max_ms: ms(histogram.max()),
        }
    }

    /// The table header.
    pub fn header() -> String {
        format!(
            "{:<28} {:>12} {:>9} {:>9} {:>9} {:>9} {:>8}",
            "run", "ops/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "errors"
        )
    }

    /// The Markdown header cells of [`Measured::markdown_cells`], with
    /// their alignment row.
    pub const MARKDOWN_HEADER: (&str, &str) = (
        "ops/s | p50 ms | p99 ms | p99.9 ms | max ms | errors |",
        "---:|---:|---:|---:|---:|---:|",
    );

    /// The measured figures as the last cells of a Markdown table row.
    pub fn markdown_cells(&self) -> String {
        format!(
            "{:.0} | {:.3} | {:.3} | {:.3} | {:.3} | {} |",
            self.ops_per_sec, self.p50_ms, self.p99_ms, self.p999_ms, self.max_ms, self.errors
        )
    }

    /// One table row.
    pub fn row(&self, label: &str) -> String {
        format!(
            "{:<28} {:>12.0} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>8}",
            label, self.ops_per_sec, self.p50_ms, self.p99_ms, self.p999_ms, self.max_ms, self.errors
        )
    }
}

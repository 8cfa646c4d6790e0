//! The pace of a node's background tasks.
//!
//! Active expiry, compaction, the users' refresh, the leases and failover
//! each wake at a period of their own to look at the node, until the node
//! stops. A [`Ticker`] is that loop's head: a tick every period (a tick
//! missed while the task worked is not made up in a burst, it is delayed),
//! and the end of the loop once the node's stop signal turns true, also
//! when it comes in the middle of the task's work.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{Interval, MissedTickBehavior};

/// A period's ticks, until the node stops.
pub struct Ticker {
    interval: Interval,
    stop: watch::Receiver<bool>,
}

impl Ticker {
    /// Ticks every `period` (the first at once) until `stop` turns true.
    pub fn new(period: Duration, stop: watch::Receiver<bool>) -> Self {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Ticker { interval, stop }
    }

    /// Waits for the next tick; false once the node is stopping.
    pub async fn tick(&mut self) -> bool {
        tokio::select! {
            _ = self.interval.tick() => true,
            _ = self.stop.wait_for(|stop| *stop) => false,
        }
    }

    /// Runs `work` to its end, unless the node stops first (`None`).
    pub async fn unless_stopped<T>(&mut self, work: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            done = work => Some(done),
            _ = self.stop.wait_for(|stop| *stop) => None,
        }
    }
}

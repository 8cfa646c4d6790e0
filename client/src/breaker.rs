//! One circuit breaker per node, so a dead node costs one failure, not one
//! timeout per request.
//!
//! Closed: requests flow; after [`BreakerConfig::failure_threshold`]
//! consecutive node failures (refused connections, attempt timeouts) the
//! breaker opens. Open: the node is skipped for
//! [`BreakerConfig::open_for`]. Half-open: after that, one probe goes through
//! (a request, or the client's background health probe); success closes the
//! breaker, failure opens it again.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Thresholds of every node's breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// How long an open breaker skips its node before a probe.
    pub open_for: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 3,
            open_for: Duration::from_secs(1),
        }
    }
}

/// A breaker's state, as reported to callers and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Requests flow.
    Closed,
    /// The node is skipped.
    Open,
    /// One probe may go through.
    HalfOpen,
}

#[derive(Debug)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// The breaker of one node.
#[derive(Debug)]
pub(crate) struct Breaker {
    config: BreakerConfig,
    state: Mutex<State>,
}

impl Breaker {
    pub(crate) fn new(config: BreakerConfig) -> Self {
        Breaker {
            config,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    /// Whether a request may go to the node now; in half-open state only
    /// the first caller gets to probe.
    pub(crate) fn allow(&self) -> bool {
        let mut state = self.state.lock().expect("breaker lock");
        match *state {
            State::Closed { .. } => true,
            State::Open { until } if Instant::now() >= until => {
                *state = State::HalfOpen { probing: true };
                true
            }
            State::Open { .. } => false,
            State::HalfOpen { probing: true } => false,
            State::HalfOpen { probing: false } => {
                *state = State::HalfOpen { probing: true };
                true
            }
        }
    }

    /// The node answered.
    pub(crate) fn success(&self) {
        *self.state.lock().expect("breaker lock") = State::Closed { failures: 0 };
    }

    /// The node failed; returns true when this opened the breaker.
    pub(crate) fn failure(&self) -> bool {
        let mut state = self.state.lock().expect("breaker lock");
        let open = match *state {
            State::Closed { failures } if failures + 1 < self.config.failure_threshold => {
                *state = State::Closed { failures: failures + 1 };
                false
            }
            State::Open { .. } => false,
            _ => true,
        };
        if open {
            *state = State::Open {
                until: Instant::now() + self.config.open_for,
            };
        }
        open
    }

    /// The state now (an open breaker past its time reads as half-open).
    pub(crate) fn state(&self) -> BreakerState {
        match *self.state.lock().expect("breaker lock") {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { until } if Instant::now() < until => BreakerState::Open,
            State::Open { .. } | State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_then_probes_once_and_closes_on_success() {
        let breaker = Breaker::new(BreakerConfig {
            failure_threshold: 2,
            open_for: Duration::from_millis(30),
        });
        assert!(!breaker.failure());
        assert!(breaker.allow());
        assert!(breaker.failure(), "second failure opens");
        assert_eq!(breaker.state(), BreakerState::Open);
        assert!(!breaker.allow());
        std::thread::sleep(Duration::from_millis(40));
        assert!(breaker.allow(), "one probe after the open period");
        assert!(!breaker.allow(), "only one");
        assert!(breaker.failure(), "a failed probe opens it again");
        assert!(!breaker.allow());
        std::thread::sleep(Duration::from_millis(40));
        assert!(breaker.allow());
        breaker.success();
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert!(breaker.allow() && breaker.allow());
    }
}

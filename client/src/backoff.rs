//! Exponential backoff with full jitter between attempts.
//!
//! The pause before attempt `n` is a uniformly random duration between zero
//! and `min(max, base · 2ⁿ)`, so clients that failed together do not retry
//! together.

use std::time::Duration;

use rand::Rng;

/// Backoff settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first pause.
    pub base: Duration,
    /// The largest ceiling.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(10),
            max: Duration::from_millis(500),
        }
    }
}

impl Backoff {
    /// The pause before retry number `retry` (0 for the first retry).
    pub fn pause(&self, retry: u32) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX))
            .min(self.max);
        rand::rng().random_range(Duration::ZERO..=ceiling)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_up_to_the_ceiling() {
        let backoff = Backoff::default();
        for retry in 0..40 {
            let ceiling = (backoff.base * 2u32.pow(retry.min(20))).min(backoff.max);
            assert!(backoff.pause(retry) <= ceiling);
        }
    }
}

//! A counter incremented by one per `incr`: the final value must lie
//! between the acknowledged increments and those plus the ones whose outcome
//! is unknown. Anything else means an increment was lost or applied twice.

use std::collections::BTreeMap;

use crate::history::{Kind, Op, Status};

/// What the counter check found for one counter.
#[derive(Debug, Clone, PartialEq)]
pub struct CounterVerdict {
    /// The counter's key.
    pub key: String,
    /// Acknowledged increments.
    pub acknowledged: i64,
    /// Increments with unknown outcome.
    pub unknown: i64,
    /// The final value read, if any.
    pub read: Option<i64>,
}

impl CounterVerdict {
    /// Whether the final value is possible.
    pub fn valid(&self) -> bool {
        self.read
            .is_some_and(|v| v >= self.acknowledged && v <= self.acknowledged + self.unknown)
    }
}

/// Checks every counter in the history against its last `ok` read.
pub fn check(history: &[Op]) -> Vec<CounterVerdict> {
    let mut counters: BTreeMap<&str, CounterVerdict> = BTreeMap::new();
    let mut last_read: BTreeMap<&str, u64> = BTreeMap::new();
    for op in history {
        let verdict = counters.entry(&op.key).or_insert_with(|| CounterVerdict {
            key: op.key.clone(),
            acknowledged: 0,
            unknown: 0,
            read: None,
        });
        match (op.op, op.status) {
            (Kind::Incr, Status::Ok) => verdict.acknowledged += 1,
            (Kind::Incr, Status::Unknown) => verdict.unknown += 1,
            (Kind::Read, Status::Ok) if last_read.get(op.key.as_str()).is_none_or(|&t| t <= op.call) => {
                last_read.insert(&op.key, op.call);
                verdict.read = op.result.as_ref().and_then(|r| r.as_i64()).or(Some(0));
            }
            _ => {}
        }
    }
    counters.into_values().collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn incr(status: Status) -> Op {
        Op {
            client: 1,
            call: 0,
            ret: 1,
            op: Kind::Incr,
            key: "c".into(),
            value: None,
            expected: None,
            new: None,
            status,
            result: None,
        }
    }

    fn read(n: i64) -> Op {
        Op {
            op: Kind::Read,
            call: 5,
            ret: 6,
            result: Some(json!(n)),
            ..incr(Status::Ok)
        }
    }

    #[test]
    fn final_value_must_be_within_the_indeterminate_bound() {
        let ops = |n| {
            vec![
                incr(Status::Ok),
                incr(Status::Ok),
                incr(Status::Unknown),
                incr(Status::Fail),
                read(n),
            ]
        };
        assert!(check(&ops(2))[0].valid());
        assert!(check(&ops(3))[0].valid());
        assert!(!check(&ops(1))[0].valid(), "a lost increment");
        assert!(!check(&ops(4))[0].valid(), "an increment applied twice");
    }
}

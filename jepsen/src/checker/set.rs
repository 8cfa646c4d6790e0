//! Lost and phantom elements of a grow-only set.
//!
//! Every `add` that was acknowledged (`ok`) must be in the final read; an
//! `unknown` add may or may not be; an element the final read holds that no
//! add attempted, or holds twice, is a phantom or a duplicate.

use std::collections::{BTreeMap, BTreeSet};

use crate::history::{Kind, Op, Status};

/// What the set check found for one set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SetVerdict {
    /// The set's key.
    pub key: String,
    /// Acknowledged adds.
    pub acknowledged: usize,
    /// Adds with unknown outcome.
    pub unknown: usize,
    /// Acknowledged elements missing from the final read.
    pub lost: Vec<String>,
    /// Elements read that no add attempted.
    pub phantom: Vec<String>,
    /// Elements read more than once.
    pub duplicated: Vec<String>,
    /// Whether a final read was recorded at all.
    pub read: bool,
}

impl SetVerdict {
    /// Whether the set kept every acknowledged element and nothing else.
    pub fn valid(&self) -> bool {
        self.read && self.lost.is_empty() && self.phantom.is_empty() && self.duplicated.is_empty()
    }
}

/// Checks every set in the history; the final read is the last `ok` read of
/// each key.
pub fn check(history: &[Op]) -> Vec<SetVerdict> {
    let mut sets: BTreeMap<&str, (Vec<&Op>, Option<&Op>)> = BTreeMap::new();
    for op in history {
        match op.op {
            Kind::Add => sets.entry(&op.key).or_default().0.push(op),
            Kind::Read if op.status == Status::Ok => {
                let entry = sets.entry(&op.key).or_default();
                if entry.1.is_none_or(|r| r.call <= op.call) {
                    entry.1 = Some(op);
                }
            }
            _ => {}
        }
    }
    sets.into_iter()
        .map(|(key, (adds, read))| {
            let attempted: BTreeSet<&str> = adds
                .iter()
                .filter(|a| a.status != Status::Fail)
                .filter_map(|a| a.value.as_deref())
                .collect();
            let acknowledged: Vec<&str> = adds
                .iter()
                .filter(|a| a.status == Status::Ok)
                .filter_map(|a| a.value.as_deref())
                .collect();
            let mut verdict = SetVerdict {
                key: key.to_string(),
                acknowledged: acknowledged.len(),
                unknown: adds.iter().filter(|a| a.status == Status::Unknown).count(),
                read: read.is_some(),
                ..SetVerdict::default()
            };
            let Some(read) = read else { return verdict };
            let elements: Vec<String> = read
                .result
                .as_ref()
                .and_then(|r| r.as_array())
                .map(|a| a.iter().filter_map(|e| e.as_str().map(String::from)).collect())
                .unwrap_or_default();
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for e in &elements {
                *counts.entry(e.as_str()).or_default() += 1;
            }
            verdict.lost = acknowledged
                .iter()
                .filter(|e| !counts.contains_key(*e))
                .map(|e| e.to_string())
                .collect();
            verdict.phantom = counts
                .keys()
                .filter(|e| !attempted.contains(*e))
                .map(|e| e.to_string())
                .collect();
            verdict.duplicated = counts
                .iter()
                .filter(|(_, n)| **n > 1)
                .map(|(e, _)| e.to_string())
                .collect();
            verdict
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn add(e: &str, status: Status) -> Op {
        Op {
            client: 1,
            call: 0,
            ret: 1,
            op: Kind::Add,
            key: "s".into(),
            value: Some(e.into()),
            expected: None,
            new: None,
            status,
            result: None,
        }
    }

    fn read(elements: &[&str]) -> Op {
        Op {
            op: Kind::Read,
            value: None,
            call: 10,
            ret: 11,
            result: Some(json!(elements)),
            ..add("", Status::Ok)
        }
    }

    #[test]
    fn lost_phantom_and_duplicate_elements_are_reported() {
        let history = [
            add("a", Status::Ok),
            add("b", Status::Ok),
            add("c", Status::Unknown),
            add("d", Status::Fail),
            read(&["a", "a", "z", "c"]),
        ];
        let v = &check(&history)[0];
        assert_eq!(v.lost, ["b"]);
        assert_eq!(v.phantom, ["z"]);
        assert_eq!(v.duplicated, ["a"]);
        assert!(!v.valid());
        let fine = [add("a", Status::Ok), add("c", Status::Unknown), read(&["a"])];
        assert!(check(&fine)[0].valid());
        let failed_but_seen = [add("d", Status::Fail), read(&["d"])];
        assert_eq!(
            check(&failed_but_seen)[0].phantom,
            ["d"],
            "a failed add must not appear"
        );
    }
}

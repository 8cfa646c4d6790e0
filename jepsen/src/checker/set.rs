//! Lost and phantom elements of a grow-only set.
//!
//! Every `add` that was acknowledged (`ok`) must be in the final read; an
//! `unknown` add may or may not be; an element the final read holds that no
//! add attempted, or holds twice, is a phantom or a duplicate.
//!
//! After a forced failover with `durability = "zone"`, the old primary's
//! unshipped tail is discarded and listed in its lost-writes report
//! ([`Discarded`]). Such an element may be missing, and must be: the
//! report must name exactly what was lost. No `contains` probe may see it
//! once the failover that discarded it switched, and a probe of an element
//! acknowledged before the probe began must find it unless it was
//! discarded. A discarded write that carried a client session (from
//! cairn-client) may have been retried and applied again by the new
//! primary, so it may be present, and seen, after all.

use std::collections::{BTreeMap, BTreeSet};

use crate::history::{Kind, Op, Status};
use crate::region::Discarded;

/// What the set check found for one set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SetVerdict {
    /// The set's key.
    pub key: String,
    /// Acknowledged adds.
    pub acknowledged: usize,
    /// Adds with unknown outcome.
    pub unknown: usize,
    /// Acknowledged elements missing from the final read and from every
    /// lost-writes report.
    pub lost: Vec<String>,
    /// Acknowledged elements a lost-writes report lists.
    pub discarded: Vec<String>,
    /// Elements a report lists as lost that the final read holds.
    pub discarded_present: Vec<String>,
    /// Elements read that no add attempted.
    pub phantom: Vec<String>,
    /// Elements read more than once.
    pub duplicated: Vec<String>,
    /// Probes that found a discarded element after its epoch ended.
    pub read_discarded: Vec<String>,
    /// Probes that missed an element acknowledged before they began.
    pub stale_probes: Vec<String>,
    /// Whether a final read was recorded at all.
    pub read: bool,
}

impl SetVerdict {
    /// Whether the set kept every acknowledged element but those reported
    /// lost, and nothing else, and every probe saw what it should.
    pub fn valid(&self) -> bool {
        self.read
            && self.lost.is_empty()
            && self.discarded_present.is_empty()
            && self.phantom.is_empty()
            && self.duplicated.is_empty()
            && self.read_discarded.is_empty()
            && self.stale_probes.is_empty()
    }
}

/// Checks every set in the history; the final read is the last `ok` read of
/// each key.
pub fn check(history: &[Op], discarded: &Discarded) -> Vec<SetVerdict> {
    let mut sets: BTreeMap<&str, (Vec<&Op>, Option<&Op>)> = BTreeMap::new();
    for op in history {
        match op.op {
            Kind::Add | Kind::Contains => sets.entry(&op.key).or_default().0.push(op),
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
        .map(|(key, (ops, read))| check_one(key, &ops, read, discarded))
        .collect()
}

fn check_one(key: &str, ops: &[&Op], read: Option<&Op>, discarded: &Discarded) -> SetVerdict {
    let adds: Vec<&Op> = ops.iter().copied().filter(|op| op.op == Kind::Add).collect();
    // When each discarded element's epoch ended, and whether its client
    // may have written it again since.
    let ended = |element: &str| discarded.keys.get(&format!("{key}:{element}")).copied();
    let retried = |element: &str| discarded.retried.contains(&format!("{key}:{element}"));
    let attempted: BTreeSet<&str> = adds
        .iter()
        .filter(|a| a.status != Status::Fail)
        .filter_map(|a| a.value.as_deref())
        .collect();
    let acknowledged: BTreeMap<&str, u64> = adds
        .iter()
        .filter(|a| a.status == Status::Ok)
        .filter_map(|a| Some((a.value.as_deref()?, a.ret)))
        .collect();
    let mut verdict = SetVerdict {
        key: key.to_string(),
        acknowledged: acknowledged.len(),
        unknown: adds.iter().filter(|a| a.status == Status::Unknown).count(),
        read: read.is_some(),
        discarded: acknowledged
            .keys()
            .filter(|e| ended(e).is_some())
            .map(|e| e.to_string())
            .collect(),
        ..SetVerdict::default()
    };
    for probe in ops
        .iter()
        .filter(|op| op.op == Kind::Contains && op.status == Status::Ok)
    {
        let Some(element) = probe.value.as_deref() else {
            continue;
        };
        let found = probe.result.as_ref().and_then(|r| r.as_bool()) == Some(true);
        match ended(element) {
            Some(ended) if found && probe.call > ended && !retried(element) => {
                verdict.read_discarded.push(element.to_string());
            }
            Some(_) => {}
            None if !found && acknowledged.get(element).is_some_and(|&ack| ack < probe.call) => {
                verdict.stale_probes.push(element.to_string());
            }
            None => {}
        }
    }
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
        .keys()
        .filter(|e| !counts.contains_key(*e) && ended(e).is_none())
        .map(|e| e.to_string())
        .collect();
    verdict.discarded_present = counts
        .keys()
        .filter(|e| ended(e).is_some() && !retried(e))
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
        let none = Discarded::default();
        let v = &check(&history, &none)[0];
        assert_eq!(v.lost, ["b"]);
        assert_eq!(v.phantom, ["z"]);
        assert_eq!(v.duplicated, ["a"]);
        assert!(!v.valid());
        let fine = [add("a", Status::Ok), add("c", Status::Unknown), read(&["a"])];
        assert!(check(&fine, &none)[0].valid());
        let failed_but_seen = [add("d", Status::Fail), read(&["d"])];
        assert_eq!(
            check(&failed_but_seen, &none)[0].phantom,
            ["d"],
            "a failed add must not appear"
        );
    }

    fn probe(e: &str, call: u64, found: bool) -> Op {
        Op {
            op: Kind::Contains,
            call,
            ret: call + 1,
            result: Some(json!(found)),
            ..add(e, Status::Ok)
        }
    }

    #[test]
    fn a_discarded_element_must_be_reported_missing_and_unseen_after_its_epoch() {
        let mut discarded = Discarded {
            keys: [("s:b".to_string(), 5), ("s:c".to_string(), 5)].into(),
            ..Discarded::default()
        };
        let history = [
            add("a", Status::Ok),
            add("b", Status::Ok),
            probe("b", 3, true),
            probe("a", 4, true),
            read(&["a"]),
        ];
        let v = &check(&history, &discarded)[0];
        assert!(v.valid(), "{v:?}");
        assert_eq!(v.discarded, ["b"]);

        let seen_late = [add("b", Status::Ok), probe("b", 6, true), read(&[])];
        assert_eq!(check(&seen_late, &discarded)[0].read_discarded, ["b"]);
        let kept = [add("b", Status::Ok), read(&["b"])];
        assert_eq!(
            check(&kept, &discarded)[0].discarded_present,
            ["b"],
            "the report lists a write that survived"
        );
        let unreported = [add("a", Status::Ok), read(&[])];
        assert_eq!(check(&unreported, &discarded)[0].lost, ["a"]);
        let stale = [add("a", Status::Ok), probe("a", 4, false), read(&["a"])];
        assert_eq!(check(&stale, &discarded)[0].stale_probes, ["a"]);

        discarded.retried.insert("s:b".into());
        let retried = [add("b", Status::Ok), probe("b", 6, true), read(&["b"])];
        assert!(
            check(&retried, &discarded)[0].valid(),
            "a client's retry applied it again"
        );
    }
}

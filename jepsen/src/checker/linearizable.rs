//! Per-key linearizability of a register history.
//!
//! The search is Wing and Gong's (1993) with Lowe's memoisation (2017), the
//! algorithm Knossos and Porcupine use: walk the history's call and return
//! events in time order; at a call, try to linearize that operation now
//! (apply it to the model; it must produce the recorded result), remember
//! `(set of linearized operations, state)` so no configuration is explored
//! twice, and restart from the first remaining event; at a return of an
//! operation not yet linearized, undo the last choice. The history is
//! linearizable when every operation has been linearized.
//!
//! Registers are independent, so each key is checked alone
//! (P-compositionality): a failure is reported with that key's history
//! only. That history is then shrunk to a smallest failing core
//! ([`minimise`]): operations are dropped one at a time as long as what
//! remains is still not linearizable, never dropping the write a remaining
//! operation observed, so the core shows the violation on its own — often
//! just a write, a later write and a read that saw the first.
//!
//! An operation with status `unknown` may have taken effect at any time
//! after its call, or never: its return is taken as "the end of time", so it
//! can be linearized late enough to affect nothing. `fail` operations and
//! reads that did not complete had no effect and are left out.

use std::collections::{BTreeMap, HashSet};

use crate::history::{Kind, Op, Status};

/// The register model's state: the value, or absent.
type State = Option<String>;

/// The outcome for one key.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyVerdict {
    /// The key.
    pub key: String,
    /// Operations checked for it.
    pub ops: usize,
    /// Whether a linearization was found.
    pub linearizable: bool,
    /// When not linearizable: the key's operations, for the report.
    pub history: Vec<Op>,
    /// When not linearizable: a smallest sub-history that still is not.
    pub core: Vec<Op>,
}

/// Linearizability checks a minimisation may spend.
const MINIMISE_BUDGET: usize = 5_000;

/// Checks every key of a register history.
pub fn check(history: &[Op]) -> Vec<KeyVerdict> {
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in history {
        if matches!(op.op, Kind::Read | Kind::Write | Kind::Cas | Kind::Delete) {
            by_key.entry(op.key.as_str()).or_default().push(op);
        }
    }
    by_key
        .into_iter()
        .map(|(key, ops)| {
            let linearizable = check_key(&ops);
            let (history, core) = if linearizable {
                (Vec::new(), Vec::new())
            } else {
                let core = minimise(&ops).into_iter().cloned().collect();
                (ops.iter().copied().cloned().collect(), core)
            };
            KeyVerdict {
                key: key.to_string(),
                ops: ops.len(),
                linearizable,
                history,
                core,
            }
        })
        .collect()
}

/// Shrinks a non-linearizable key history to a smallest failing core: a
/// sub-history that is still not linearizable and from which no single
/// operation can be dropped (within [`MINIMISE_BUDGET`] checks). A write,
/// or a compare-and-set, whose value a remaining operation observed is
/// kept, so every value in the core has its origin in it.
pub fn minimise<'a>(ops: &[&'a Op]) -> Vec<&'a Op> {
    // Operations the search ignores anyway go first.
    let mut core: Vec<&Op> = ops
        .iter()
        .copied()
        .filter(|op| op.status == Status::Ok || (op.status == Status::Unknown && op.op != Kind::Read))
        .collect();
    let mut budget = MINIMISE_BUDGET;
    loop {
        let mut shrunk = false;
        let mut i = core.len();
        while i > 0 && budget > 0 {
            i -= 1;
            if is_observed(&core, i) {
                continue;
            }
            let mut candidate = core.clone();
            candidate.remove(i);
            budget -= 1;
            if !check_key(&candidate) {
                core = candidate;
                shrunk = true;
            }
        }
        if !shrunk || budget == 0 {
            return core;
        }
    }
}

/// Whether the value `core[i]` stores is read or expected by another
/// operation of `core`.
fn is_observed(core: &[&Op], i: usize) -> bool {
    let stored = match core[i].op {
        Kind::Write => core[i].value.as_deref(),
        Kind::Cas => core[i].new.as_deref(),
        _ => None,
    };
    let Some(stored) = stored else {
        return false;
    };
    core.iter().enumerate().any(|(j, op)| {
        j != i
            && match op.op {
                Kind::Read => op.result.as_ref().and_then(|r| r.as_str()) == Some(stored),
                Kind::Cas => op.expected.as_ref().and_then(|e| e.as_deref()) == Some(stored),
                _ => false,
            }
    })
}

/// An operation as the search sees it.
struct Entry<'a> {
    op: &'a Op,
    call: u64,
    ret: u64,
}

/// Applies `op` to `state`: the next state if the op may happen now with
/// the result it recorded.
fn step(state: &State, op: &Op) -> Option<State> {
    let known = op.status == Status::Ok;
    match op.op {
        Kind::Read => {
            let seen = op.result.as_ref().and_then(|r| r.as_str().map(str::to_string));
            (seen == *state).then(|| state.clone())
        }
        Kind::Write => Some(op.value.clone()),
        Kind::Delete => Some(None),
        Kind::Cas => {
            let expected = op.expected.clone().flatten();
            let matches = expected == *state;
            let swapped = op.result.as_ref().and_then(|r| r.as_bool());
            match (known, swapped) {
                (true, Some(true)) => matches.then(|| op.new.clone()),
                (true, _) => (!matches).then(|| state.clone()),
                // Unknown: it did whatever the state at this point implies.
                (false, _) => Some(if matches { op.new.clone() } else { state.clone() }),
            }
        }
        Kind::Add | Kind::Contains | Kind::Incr => None,
    }
}

fn check_key(ops: &[&Op]) -> bool {
    let entries: Vec<Entry> = ops
        .iter()
        .filter(|op| match op.status {
            Status::Ok => true,
            Status::Fail => false,
            Status::Unknown => op.op != Kind::Read,
        })
        .map(|op| Entry {
            op,
            call: op.call,
            ret: if op.status == Status::Ok { op.ret } else { u64::MAX },
        })
        .collect();
    let n = entries.len();
    if n == 0 {
        return true;
    }
    // Events: (time, is_return, op index), calls before returns at a tie
    // would let an op see a write that returned at the same instant; order
    // returns first so ties are strict.
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * n);
    for (i, e) in entries.iter().enumerate() {
        events.push((e.call, false, i));
        events.push((e.ret, true, i));
    }
    events.sort_by_key(|&(time, is_return, i)| (time, !is_return, i));

    let mut linearized = vec![false; n];
    let mut done = 0;
    let mut state: State = None;
    let mut seen: HashSet<(Vec<u64>, State)> = HashSet::new();
    // Stack of (op index, state before it, event position to resume from).
    let mut stack: Vec<(usize, State, usize)> = Vec::new();
    let mut pos = 0;
    while done < n {
        // Skip events of operations already linearized.
        while pos < events.len() && linearized[events[pos].2] {
            pos += 1;
        }
        if pos == events.len() {
            // Every remaining op is unknown and can be placed at the end.
            return true;
        }
        let (_, is_return, i) = events[pos];
        if !is_return {
            if let Some(next) = step(&state, entries[i].op) {
                linearized[i] = true;
                let key = (bits(&linearized), next.clone());
                if seen.insert(key) {
                    stack.push((i, std::mem::replace(&mut state, next), pos));
                    done += 1;
                    pos = 0;
                    continue;
                }
                linearized[i] = false;
            }
            pos += 1;
        } else {
            // An op must be linearized before it returned: undo the last choice.
            let Some((last, previous, at)) = stack.pop() else {
                return false;
            };
            linearized[last] = false;
            state = previous;
            done -= 1;
            pos = at + 1;
        }
    }
    true
}

fn bits(flags: &[bool]) -> Vec<u64> {
    let mut words = vec![0u64; flags.len().div_ceil(64)];
    for (i, &f) in flags.iter().enumerate() {
        if f {
            words[i / 64] |= 1 << (i % 64);
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn op(client: u64, call: u64, ret: u64, kind: Kind, status: Status) -> Op {
        Op {
            client,
            call,
            ret,
            op: kind,
            key: "k".into(),
            value: None,
            expected: None,
            new: None,
            status,
            result: None,
        }
    }
    fn write(client: u64, call: u64, ret: u64, v: &str) -> Op {
        Op {
            value: Some(v.into()),
            ..op(client, call, ret, Kind::Write, Status::Ok)
        }
    }
    fn read(client: u64, call: u64, ret: u64, v: Option<&str>) -> Op {
        Op {
            result: Some(v.map_or(json!(null), |v| json!(v))),
            ..op(client, call, ret, Kind::Read, Status::Ok)
        }
    }
    fn cas(client: u64, call: u64, ret: u64, from: Option<&str>, to: &str, swapped: bool) -> Op {
        Op {
            expected: Some(from.map(String::from)),
            new: Some(to.into()),
            result: Some(json!(swapped)),
            ..op(client, call, ret, Kind::Cas, Status::Ok)
        }
    }
    fn ok(history: &[Op]) -> bool {
        check(history).iter().all(|v| v.linearizable)
    }

    #[test]
    fn concurrent_operations_may_take_either_order() {
        assert!(ok(&[
            write(1, 0, 10, "a"),
            read(2, 1, 9, None),
            read(3, 2, 8, Some("a"))
        ]));
        assert!(ok(&[
            write(1, 0, 10, "a"),
            write(2, 0, 10, "b"),
            read(3, 11, 12, Some("a"))
        ]));
    }

    #[test]
    fn a_stale_read_is_caught() {
        let history = [write(1, 0, 10, "a"), write(1, 20, 30, "b"), read(2, 40, 50, Some("a"))];
        let verdicts = check(&history);
        assert!(!verdicts[0].linearizable);
        assert_eq!(verdicts[0].history.len(), 3, "the failing key's history is reported");
    }

    #[test]
    fn a_failing_history_shrinks_to_the_ops_that_explain_it() {
        // A busy key where one read, late, saw a long-overwritten value.
        let mut history = Vec::new();
        for i in 0..30u64 {
            history.push(write(i % 3, 100 * i, 100 * i + 10, &format!("v{i}")));
            history.push(read(3, 100 * i + 20, 100 * i + 30, Some(&format!("v{i}"))));
        }
        history.push(read(4, 5000, 5010, Some("v3")));
        let verdict = check(&history).remove(0);
        assert!(!verdict.linearizable);
        let core: Vec<(Kind, Option<String>, Option<serde_json::Value>)> = verdict
            .core
            .iter()
            .map(|o| (o.op, o.value.clone(), o.result.clone()))
            .collect();
        assert_eq!(verdict.core.len(), 3, "{core:?}");
        assert!(
            verdict.core.iter().any(|o| o.value.as_deref() == Some("v3")),
            "{core:?}"
        );
        assert_eq!(verdict.core.last().unwrap().call, 5000);
        assert_eq!(verdict.history.len(), 61, "the whole key is kept too");
    }

    #[test]
    fn a_lost_write_is_caught() {
        assert!(!ok(&[write(1, 0, 10, "a"), read(2, 20, 30, None)]));
    }

    #[test]
    fn a_double_applied_cas_is_caught() {
        // Two clients both succeed at swapping the same expected value.
        let history = [
            write(1, 0, 1, "a"),
            cas(2, 10, 20, Some("a"), "b", true),
            cas(3, 30, 40, Some("a"), "c", true),
        ];
        assert!(!ok(&history));
        // Concurrent, only one may win: fine when the other failed.
        let fine = [
            write(1, 0, 1, "a"),
            cas(2, 10, 40, Some("a"), "b", true),
            cas(3, 10, 40, Some("a"), "c", false),
            read(1, 50, 60, Some("b")),
        ];
        assert!(ok(&fine));
    }

    #[test]
    fn a_failed_write_must_not_be_visible() {
        let failed = Op {
            status: Status::Fail,
            ..write(1, 0, 10, "x")
        };
        assert!(!ok(&[failed.clone(), read(2, 20, 30, Some("x"))]));
        assert!(ok(&[failed, read(2, 20, 30, None)]));
    }

    #[test]
    fn an_unknown_write_may_land_late_or_never() {
        let unknown = Op {
            status: Status::Unknown,
            ..write(1, 0, 10, "x")
        };
        assert!(ok(&[
            unknown.clone(),
            read(2, 20, 30, None),
            read(2, 40, 50, Some("x"))
        ]));
        assert!(ok(&[unknown.clone(), read(2, 20, 30, None)]));
        // But once seen it cannot un-happen.
        assert!(!ok(&[unknown, read(2, 20, 30, Some("x")), read(2, 40, 50, None)]));
    }

    #[test]
    fn cas_against_absent_and_delete() {
        let delete = op(1, 30, 40, Kind::Delete, Status::Ok);
        assert!(ok(&[
            cas(1, 0, 10, None, "a", true),
            cas(2, 11, 20, None, "b", false),
            delete,
            read(2, 50, 60, None),
        ]));
    }

    #[test]
    fn search_stays_fast_on_many_concurrent_writes() {
        // 14 concurrent writes then reads: memoisation keeps this from
        // exploring 14! orders (it visits at most 2^14 subsets per state).
        let mut history: Vec<Op> = (0..14).map(|i| write(i, 0, 100, &format!("v{i}"))).collect();
        history.push(read(99, 200, 300, Some("v7")));
        assert!(ok(&history));
        history.push(read(99, 400, 500, Some("v3")));
        assert!(!ok(&history));
    }
}

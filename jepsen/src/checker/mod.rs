//! Checkers: given a history, is it what a correct Cairn could have done?
//!
//! - [`linearizable`]: registers (read / write / cas / delete), per key.
//! - [`set`]: grow-only sets: no acknowledged element lost (but those the
//!   lost-writes reports list), none invented.
//! - [`counter`]: increments: none lost, none applied twice.
//!
//! [`check_all`] sorts a history's keys by what was done to them (a key
//! with `add`s is a set, one with `incr`s a counter, any other a register)
//! and runs each checker on its keys.

pub mod counter;
pub mod linearizable;
pub mod set;

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::history::{Kind, Op};
use crate::region::Discarded;

/// Every checker's findings.
#[derive(Debug, Default)]
pub struct Report {
    /// Register keys.
    pub registers: Vec<linearizable::KeyVerdict>,
    /// Sets.
    pub sets: Vec<set::SetVerdict>,
    /// Counters.
    pub counters: Vec<counter::CounterVerdict>,
}

impl Report {
    /// Whether every checker passed.
    pub fn valid(&self) -> bool {
        self.registers.iter().all(|v| v.linearizable)
            && self.sets.iter().all(set::SetVerdict::valid)
            && self.counters.iter().all(counter::CounterVerdict::valid)
    }

    /// A human summary, one line per checker plus every failure.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
        if !self.registers.is_empty() {
            let bad: Vec<_> = self.registers.iter().filter(|v| !v.linearizable).collect();
            let ops: usize = self.registers.iter().map(|v| v.ops).sum();
            let _ = writeln!(
                out,
                "linearizable: {} ({} keys, {ops} ops, {} not linearizable)",
                verdict(bad.is_empty()),
                self.registers.len(),
                bad.len()
            );
            for v in bad {
                let _ = writeln!(
                    out,
                    "  key {:?}: no linearization of its {} ops; smallest failing sub-history: {} ops",
                    v.key,
                    v.ops,
                    v.core.len()
                );
            }
        }
        for v in &self.sets {
            let _ = writeln!(
                out,
                "set {:?}: {} ({} acknowledged, {} unknown, lost {:?}, phantom {:?}, duplicated {:?}{})",
                v.key,
                verdict(v.valid()),
                v.acknowledged,
                v.unknown,
                v.lost,
                v.phantom,
                v.duplicated,
                if v.read { "" } else { ", no final read" }
            );
            if !v.discarded.is_empty() || !v.discarded_present.is_empty() {
                let _ = writeln!(
                    out,
                    "  lost-writes report: {} acknowledged adds discarded, {} listed but kept {:?}",
                    v.discarded.len(),
                    v.discarded_present.len(),
                    v.discarded_present
                );
            }
            if !v.read_discarded.is_empty() || !v.stale_probes.is_empty() {
                let _ = writeln!(
                    out,
                    "  probes: saw discarded writes after their epoch ended {:?}, missed acknowledged ones {:?}",
                    v.read_discarded, v.stale_probes
                );
            }
        }
        for v in &self.counters {
            let _ = writeln!(
                out,
                "counter {:?}: {} (read {:?}, acknowledged {}, unknown {})",
                v.key,
                verdict(v.valid()),
                v.read,
                v.acknowledged,
                v.unknown
            );
        }
        out
    }
}

/// Runs every checker on the keys it applies to; `discarded` is what the
/// old primaries' lost-writes reports list.
pub fn check_all(history: &[Op], discarded: &Discarded) -> Report {
    let keys_with = |kind: Kind| -> BTreeSet<&str> {
        history
            .iter()
            .filter(|op| op.op == kind)
            .map(|op| op.key.as_str())
            .collect()
    };
    let sets = keys_with(Kind::Add);
    let counters = keys_with(Kind::Incr);
    let pick =
        |wanted: &dyn Fn(&str) -> bool| -> Vec<Op> { history.iter().filter(|op| wanted(&op.key)).cloned().collect() };
    Report {
        registers: linearizable::check(&pick(&|k| !sets.contains(k) && !counters.contains(k))),
        sets: set::check(&pick(&|k| sets.contains(k)), discarded),
        counters: counter::check(&pick(&|k| counters.contains(k))),
    }
}

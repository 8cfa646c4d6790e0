//! The run's HTML report: the summary, and a timeline of the keys that
//! failed the linearizability check (or, when none did, of the busiest key,
//! to show what was checked), so a person can see what happened: one lane
//! per client, one bar per operation from its call to its return, coloured
//! by outcome; reads that returned a value already overwritten before they
//! began (or never written) are outlined in red.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use crate::checker::linearizable::KeyVerdict;
use crate::history::{Kind, Op, Status};

/// Keys drawn at most (the rest are listed in the summary).
const MAX_KEYS: usize = 5;

/// Writes the report to `path`: `summary` as text, then timelines.
pub fn write(path: &Path, summary: &str, verdicts: &[KeyVerdict], history: &[Op]) -> anyhow::Result<()> {
    let failing: Vec<&KeyVerdict> = verdicts.iter().filter(|v| !v.linearizable).take(MAX_KEYS).collect();
    let mut html = String::from(
        "<!doctype html><meta charset=utf-8><title>cairn-jepsen report</title>\
         <style>body{font:13px sans-serif;margin:20px}rect.ok{fill:#8fc98f}rect.fail{fill:#ccc}\
         rect.unknown{fill:#f0c36d}rect.bad{stroke:#d00;stroke-width:3}text{font:10px monospace}</style>\
         <h1>cairn-jepsen report</h1><pre>",
    );
    html.push_str(&escape(summary));
    html.push_str(
        "</pre><p>Bars run from call to return (unknown: to the end). Green ok, grey fail, amber unknown; \
         red outline: a read of a value overwritten before it began.</p>",
    );
    if failing.is_empty() {
        // Everything passed: draw the busiest register key as an example.
        let busiest = verdicts.iter().max_by_key(|v| v.ops);
        if let Some(v) = busiest {
            let ops: Vec<Op> = history.iter().filter(|o| o.key == v.key).cloned().collect();
            html.push_str("<h2>Example: the busiest key (linearizable)</h2>");
            draw_key(&mut html, &v.key, &ops);
        }
    }
    for verdict in failing {
        html.push_str(
            "<h2>No linearization</h2><p>The smallest failing sub-history first, then every operation on the key.</p>",
        );
        draw_key(
            &mut html,
            &format!("{} (smallest failing sub-history)", verdict.key),
            &verdict.core,
        );
        draw_key(&mut html, &verdict.key, &verdict.history);
    }
    std::fs::write(path, html)?;
    Ok(())
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;")
}

/// Reads that saw a value that had already been overwritten (or never
/// written) before they started.
fn stale_reads(ops: &[Op]) -> Vec<usize> {
    let writes: HashMap<&str, &Op> = ops
        .iter()
        .filter(|o| o.op == Kind::Write && o.status != Status::Fail)
        .filter_map(|o| o.value.as_deref().map(|v| (v, o)))
        .collect();
    let overwritten_by = |w: &Op, before: u64| {
        ops.iter().any(|o2| {
            o2.status == Status::Ok && matches!(o2.op, Kind::Write | Kind::Delete) && o2.call > w.ret && o2.ret < before
        })
    };
    ops.iter()
        .enumerate()
        .filter(|(_, r)| r.op == Kind::Read && r.status == Status::Ok)
        .filter(|(_, r)| match r.result.as_ref().and_then(|v| v.as_str()) {
            Some(v) => match writes.get(v) {
                Some(w) => w.status == Status::Ok && overwritten_by(w, r.call),
                None => true,
            },
            None => false,
        })
        .map(|(i, _)| i)
        .collect()
}

fn label(op: &Op) -> String {
    let text = |v: &Option<String>| v.clone().unwrap_or_else(|| "∅".into());
    match op.op {
        Kind::Read => format!("r {}", op.result.as_ref().map_or("?".into(), |v| v.to_string())),
        Kind::Write => format!("w {}", text(&op.value)),
        Kind::Cas => format!(
            "cas {}→{} {}",
            text(&op.expected.clone().flatten()),
            text(&op.new),
            op.result.as_ref().map_or("?".into(), |v| v.to_string())
        ),
        Kind::Delete => "del".into(),
        Kind::Add | Kind::Contains | Kind::Incr => format!("{:?}", op.op),
    }
}

fn draw_key(html: &mut String, key: &str, ops: &[Op]) {
    let stale = stale_reads(ops);
    let start = ops.iter().map(|o| o.call).min().unwrap_or(0);
    let end = ops
        .iter()
        .map(|o| if o.status == Status::Ok { o.ret } else { o.call })
        .max()
        .unwrap_or(1);
    let span = (end - start).max(1) as f64;
    let mut lanes: BTreeMap<u64, usize> = BTreeMap::new();
    for op in ops {
        let next = lanes.len();
        lanes.entry(op.client).or_insert(next);
    }
    let width = 1400.0;
    let height = 40 + 28 * lanes.len();
    let _ = write!(
        html,
        "<h3>key {:?} ({} ops, {} suspicious reads)</h3><svg width={} height={height}>",
        key,
        ops.len(),
        stale.len(),
        width + 120.0
    );
    for (client, lane) in &lanes {
        let _ = write!(html, "<text x=0 y={}>client {client}</text>", 34 + 28 * lane);
    }
    for (i, op) in ops.iter().enumerate() {
        let x = 100.0 + width * (op.call - start) as f64 / span;
        let ret = if op.status == Status::Ok { op.ret } else { end };
        let w = (width * (ret.saturating_sub(op.call)) as f64 / span).max(2.0);
        let y = 20 + 28 * lanes[&op.client];
        let class = match op.status {
            Status::Ok => "ok",
            Status::Fail => "fail",
            Status::Unknown => "unknown",
        };
        let bad = if stale.contains(&i) { " bad" } else { "" };
        let text = escape(&label(op));
        let _ = write!(
            html,
            "<rect class='{class}{bad}' x={x:.1} y={y} width={w:.1} height=20><title>{text} [{}..{}] ns</title></rect>\
             <text x={:.1} y={}>{text}</text>",
            op.call,
            op.ret,
            x + 2.0,
            y + 14
        );
    }
    html.push_str("</svg>");
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn op(kind: Kind, call: u64, ret: u64, value: Option<&str>, result: Option<&str>) -> Op {
        Op {
            client: call,
            call,
            ret,
            op: kind,
            key: "k".into(),
            value: value.map(String::from),
            expected: None,
            new: None,
            status: Status::Ok,
            result: result.map(|r| json!(r)),
        }
    }

    #[test]
    fn a_stale_read_is_marked_and_drawn() {
        let ops = vec![
            op(Kind::Write, 0, 10, Some("a"), None),
            op(Kind::Write, 20, 30, Some("b"), None),
            op(Kind::Read, 40, 50, None, Some("a")),
            op(Kind::Read, 60, 70, None, Some("b")),
        ];
        assert_eq!(stale_reads(&ops), vec![2]);
        let verdicts = crate::checker::linearizable::check(&ops);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.html");
        write(&path, "verdict: FAIL", &verdicts, &ops).unwrap();
        let html = std::fs::read_to_string(&path).unwrap();
        assert!(
            html.contains("verdict: FAIL") && html.contains("No linearization"),
            "{html}"
        );
        assert!(html.contains("key \"k\"") && html.contains("class='ok bad'"), "{html}");
    }
}

//! Histories: every operation a test performed, as the clients saw it.
//!
//! One [`Op`] per operation, written as one JSON object per line:
//! `client`, `call` and `return` (ns on one monotonic clock shared by all
//! clients of a run), `op`, `key`, `value` (write, add), `expected` and
//! `new` (cas; `expected: null` means the key must be absent), `status` and
//! `result` (read: the value or null; cas and contains: true/false; a
//! final read of a set: the elements; of a counter: the number).
//!
//! `status` is `ok` (it happened, with this result), `fail` (it certainly
//! had no effect) or `unknown` (a timeout or a lost connection: it may have
//! taken effect, at any time after `call`, or never). A client never
//! reports `fail` unless the system told it nothing happened.

use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// What an operation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Read a register (or, as a final read, a whole set or counter).
    Read,
    /// Write a register.
    Write,
    /// Compare-and-set a register.
    Cas,
    /// Delete a register.
    Delete,
    /// Add an element to a set.
    Add,
    /// Ask whether one element (`value`) is in a set; `result` says.
    Contains,
    /// Increment a counter by one.
    Incr,
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// It took effect, with the recorded result.
    Ok,
    /// It certainly had no effect.
    Fail,
    /// It may or may not have taken effect.
    Unknown,
}

/// One operation of a history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    /// The client (thread or connection) that ran it; a client runs one
    /// operation at a time.
    pub client: u64,
    /// When it was invoked, in ns since the start of the run.
    pub call: u64,
    /// When its outcome was known, in ns since the start of the run.
    #[serde(rename = "return")]
    pub ret: u64,
    /// What it did.
    pub op: Kind,
    /// The key (register, set or counter name).
    pub key: String,
    /// The value written (write) or element added (add).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// For cas: the value expected; `null` means "absent".
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub expected: Option<Option<String>>,
    /// For cas: the value to store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<String>,
    /// How it ended.
    pub status: Status,
    /// What it returned (see the module docs); absent unless `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
}

/// Reads a field that may be `null`: present-and-null is `Some(None)`,
/// absent is `None` (the field default).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Collects the operations of a run, stamping them on one clock.
pub struct Recorder {
    start: Instant,
    ops: Mutex<Vec<Op>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            start: Instant::now(),
            ops: Mutex::default(),
        }
    }
}

impl Recorder {
    /// Nanoseconds since the run started.
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Adds a finished operation.
    pub fn record(&self, op: Op) {
        self.ops.lock().expect("history lock").push(op);
    }

    /// Every operation so far, in order of invocation.
    pub fn ops(&self) -> Vec<Op> {
        let mut ops = self.ops.lock().expect("history lock").clone();
        ops.sort_by_key(|op| (op.call, op.client));
        ops
    }
}

/// Writes a history as JSON Lines.
pub fn save(path: &Path, ops: &[Op]) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for op in ops {
        serde_json::to_writer(&mut out, op)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// Reads a history written by [`save`]; errors name the line.
pub fn load(path: &Path) -> anyhow::Result<Vec<Op>> {
    let file = std::fs::File::open(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut ops = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let op: Op = serde_json::from_str(&line).map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), n + 1))?;
        if op.ret < op.call {
            anyhow::bail!(
                "{}:{}: return ({}) before call ({})",
                path.display(),
                n + 1,
                op.ret,
                op.call
            );
        }
        ops.push(op);
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_round_trip_in_the_documented_format() {
        let op = Op {
            client: 1,
            call: 10,
            ret: 20,
            op: Kind::Cas,
            key: "k".into(),
            value: None,
            expected: Some(None),
            new: Some("v".into()),
            status: Status::Ok,
            result: Some(serde_json::Value::Bool(true)),
        };
        let line = serde_json::to_string(&op).unwrap();
        assert_eq!(
            line,
            r#"{"client":1,"call":10,"return":20,"op":"cas","key":"k","expected":null,"new":"v","status":"ok","result":true}"#
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        save(&path, std::slice::from_ref(&op)).unwrap();
        assert_eq!(load(&path).unwrap(), vec![op]);
        std::fs::write(&path, "{\"client\":1}\n").unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("h.jsonl:1"), "{err}");
    }
}

//! Replies printed the way redis-cli prints them: `(integer) 1`, quoted
//! strings with escapes, `(nil)`, numbered and indented arrays; or, with
//! `--raw`, the bare values one per line.

use super::resp::Value;

/// redis-cli's quoting of a bulk string.
fn quoted(data: &[u8]) -> String {
    let mut out = String::from("\"");
    for &b in data {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            b if b.is_ascii_graphic() || b == b' ' => out.push(b as char),
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    out
}

/// A reply as redis-cli shows it in a terminal.
pub fn human(value: &Value) -> String {
    match value {
        Value::Simple(text) => text.clone(),
        Value::Error(text) => format!("(error) {text}"),
        Value::Int(n) => format!("(integer) {n}"),
        Value::Bulk(Some(data)) => quoted(data),
        Value::Bulk(None) | Value::Array(None) | Value::Null => "(nil)".into(),
        Value::Double(text) => format!("(double) {text}"),
        Value::Bool(b) => format!("({b})"),
        Value::Array(Some(items)) | Value::Set(items) if items.is_empty() => "(empty array)".into(),
        Value::Array(Some(items)) | Value::Set(items) => numbered(items.iter().map(human).collect(), ")"),
        Value::Map(pairs) if pairs.is_empty() => "(empty hash)".into(),
        Value::Map(pairs) => numbered(
            pairs
                .iter()
                .map(|(k, v)| format!("{} => {}", human(k), human(v)))
                .collect(),
            "#",
        ),
    }
}

/// `1) first`, `2) second`, … with continuation lines indented under
/// their item.
fn numbered(items: Vec<String>, mark: &str) -> String {
    let width = items.len().to_string().len();
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let prefix = format!("{:>width$}{mark} ", i + 1);
            let pad = " ".repeat(prefix.len());
            item.lines()
                .enumerate()
                .map(|(j, line)| {
                    if j == 0 {
                        format!("{prefix}{line}")
                    } else {
                        format!("{pad}{line}")
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A reply as `redis-cli --raw` prints it: values as their bytes (binary
/// safe, so `cairn-cli GET k > file` saves the value exactly).
pub fn raw(value: &Value) -> Vec<u8> {
    let join = |parts: Vec<Vec<u8>>| parts.join(&b'\n');
    match value {
        Value::Simple(text) | Value::Double(text) => text.clone().into_bytes(),
        // redis-cli ends a bare error with a blank line.
        Value::Error(text) => format!("{text}\n").into_bytes(),
        Value::Int(n) => n.to_string().into_bytes(),
        Value::Bulk(Some(data)) => data.clone(),
        Value::Bulk(None) | Value::Array(None) | Value::Null => Vec::new(),
        Value::Bool(b) => i32::from(*b).to_string().into_bytes(),
        Value::Array(Some(items)) | Value::Set(items) => join(items.iter().map(raw).collect()),
        Value::Map(pairs) => join(pairs.iter().map(|(k, v)| join(vec![raw(k), raw(v)])).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_look_like_redis_cli() {
        assert_eq!(human(&Value::Int(3)), "(integer) 3");
        assert_eq!(human(&Value::Bulk(Some(b"a\"b\n\x01".to_vec()))), "\"a\\\"b\\n\\x01\"");
        assert_eq!(human(&Value::Bulk(None)), "(nil)");
        assert_eq!(human(&Value::Array(Some(vec![]))), "(empty array)");
        let nested = Value::Array(Some(vec![
            Value::Bulk(Some(b"x".to_vec())),
            Value::Array(Some(vec![Value::Int(1), Value::Int(2)])),
        ]));
        assert_eq!(human(&nested), "1) \"x\"\n2) 1) (integer) 1\n   2) (integer) 2");
        assert_eq!(raw(&nested), b"x\n1\n2");
        assert_eq!(human(&Value::Error("ERR x".into())), "(error) ERR x");
    }
}

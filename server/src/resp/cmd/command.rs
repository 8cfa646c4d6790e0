//! `COMMAND [COUNT | INFO name ... | DOCS [name ...] | LIST]`, generated
//! from the command table so it always tells the truth about what this
//! server implements.

use super::{Client, Outcome, Spec, TABLE, command_docs};
use crate::resp::frame::Frame;

/// `COMMAND`.
pub static SPEC: Spec = Spec {
    name: "command",
    arity: -1,
    flags: &["loading", "stale"],
    first_key: 0,
    last_key: 0,
    step: 0,
    categories: &["@slow", "@connection"],
    run: |_, _: &mut Client, args| {
        let sub = args.get(1).map(|a| a.to_ascii_lowercase());
        let names: Vec<String> = args
            .iter()
            .skip(2)
            .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
            .collect();
        let frame = match sub.as_deref() {
            None => Frame::Array(TABLE.iter().map(|s| info(s)).collect()),
            Some(b"count") => Frame::Integer(TABLE.len() as i64),
            Some(b"list") => Frame::Array(TABLE.iter().map(|s| Frame::bulk(s.name)).collect()),
            Some(b"info") => Frame::Array(names.iter().map(|n| find(n).map_or(Frame::NullArray, info)).collect()),
            Some(b"docs") => Frame::Map(
                TABLE
                    .iter()
                    .filter(|s| names.is_empty() || names.iter().any(|n| n == s.name))
                    .map(|s| (Frame::bulk(s.name), docs(s)))
                    .collect(),
            ),
            Some(other) => Frame::error(format!(
                "ERR unknown subcommand '{}'. Try COMMAND HELP.",
                String::from_utf8_lossy(other)
            )),
        };
        Outcome::Reply(frame)
    },
};

fn find(name: &str) -> Option<&'static Spec> {
    TABLE.iter().copied().find(|s| s.name == name)
}

fn info(spec: &Spec) -> Frame {
    Frame::Array(vec![
        Frame::bulk(spec.name),
        Frame::Integer(spec.arity),
        Frame::Set(spec.flags.iter().map(|f| Frame::Simple((*f).into())).collect()),
        Frame::Integer(spec.first_key),
        Frame::Integer(spec.last_key),
        Frame::Integer(spec.step),
        Frame::Set(spec.categories.iter().map(|c| Frame::Simple((*c).into())).collect()),
        Frame::Set(Vec::new()),
        Frame::Set(Vec::new()),
        Frame::Array(Vec::new()),
    ])
}

fn docs(spec: &Spec) -> Frame {
    let doc = command_docs::of(spec.name);
    let field = |name: &str, value: &str| (Frame::bulk(name.to_string()), Frame::bulk(value.to_string()));
    Frame::Map(vec![
        field("summary", doc.map_or("", |d| d.summary)),
        field("since", doc.map_or("", |d| d.since)),
        field("group", doc.map_or("server", |d| d.group)),
    ])
}

//! `CONFIG GET pattern [pattern ...]`: a read-only view of the settings
//! this node really runs with, under Redis's parameter names where Redis
//! has one. Settings come from the node's config file; `CONFIG SET`,
//! `REWRITE` and `RESETSTAT` are refused with an error that says so.

use super::{Client, Outcome, Spec};
use crate::config::Fsync;
use crate::keyspace::glob;
use crate::resp::frame::Frame;
use crate::resp::server::Shared;

/// `(name, value)` of every parameter `CONFIG GET` knows.
fn parameters(shared: &Shared) -> Vec<(&'static str, String)> {
    let config = shared.node.config();
    let me = config.me();
    vec![
        ("bind", me.resp_addr.ip().to_string()),
        ("port", me.resp_addr.port().to_string()),
        ("dir", config.data_dir.display().to_string()),
        ("databases", "1".into()),
        ("cluster-enabled", "yes".into()),
        ("appendonly", "no".into()),
        ("save", String::new()),
        (
            "appendfsync",
            match config.storage.fsync {
                Fsync::Always => "always",
                Fsync::Never => "no",
            }
            .into(),
        ),
        ("proto-max-bulk-len", config.clients.proto_max_bulk_len.to_string()),
        (
            "client-query-buffer-limit",
            config.clients.query_buffer_limit.to_string(),
        ),
        ("maxclients", config.clients.max_clients.to_string()),
        ("maxmemory", "0".into()),
        ("maxmemory-policy", "noeviction".into()),
        ("timeout", config.clients.idle_timeout_secs.to_string()),
        ("requirepass", config.auth.requirepass.clone().unwrap_or_default()),
    ]
}

/// `CONFIG`.
pub static SPEC: Spec = Spec {
    name: "config",
    arity: -2,
    flags: &["admin", "noscript", "loading", "stale"],
    first_key: 0,
    last_key: 0,
    step: 0,
    categories: &["@admin", "@slow", "@dangerous"],
    run: |shared, _: &mut Client, args| {
        let sub = args[1].to_ascii_lowercase();
        Outcome::Reply(match sub.as_slice() {
            b"get" if args.len() >= 3 => Frame::Map(
                parameters(shared)
                    .into_iter()
                    .filter(|(name, _)| {
                        args[2..]
                            .iter()
                            .any(|pattern| glob::matches(&pattern.to_ascii_lowercase(), name.as_bytes()))
                    })
                    .map(|(name, value)| (Frame::bulk(name), Frame::bulk(value)))
                    .collect(),
            ),
            b"get" => Frame::error("ERR wrong number of arguments for 'config|get' command"),
            b"set" | b"rewrite" | b"resetstat" => Frame::error(format!(
                "ERR CONFIG {} is not supported: settings come from the node's config file",
                String::from_utf8_lossy(&args[1]).to_uppercase()
            )),
            _ => Frame::error(format!(
                "ERR unknown subcommand '{}'. Try CONFIG HELP.",
                String::from_utf8_lossy(&args[1])
            )),
        })
    },
};

//! Users and their permissions, as Redis 7's ACLs describe them.
//!
//! A user is a name with a switch (`on`/`off`), passwords (kept only as
//! SHA-256 digests, as Redis keeps them: a plaintext password never enters
//! the Raft log), key patterns, and command rules: `+get`, `-@dangerous`,
//! `+client|id`, applied in order, so the last rule that names a command or
//! one of its categories decides.
//!
//! The table of users is replicated: `ACL SETUSER` and `ACL DELUSER` become
//! [`AclChange`] entries in the Raft log of [`ACL_SHARD`], whose state
//! machine keeps the [`Users`] and writes them into its snapshots, so every
//! node holding a replica of that shard sees the same users, and they
//! survive restarts. Rules are parsed and checked (unknown commands, bad
//! hashes) where the command arrives; applying a change cannot fail.
//!
//! The `default` user exists before any `ACL SETUSER`: on, allowed
//! everything, and either without a password or with the node's
//! `auth.requirepass`. The first change to `default` starts from that user
//! as the proposing node describes it, carried in the entry, so apply never
//! reads a node's own config.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::keyspace::{Reply, glob};

/// The shard whose Raft group holds the users.
pub const ACL_SHARD: u64 = 0;

/// The user every connection starts as.
pub const DEFAULT_USER: &str = "default";

/// Redis's command categories, in Redis's order (`ACL CAT`).
pub const CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// One `ACL SETUSER` modifier, checked and with passwords already hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rule {
    /// `on`: the user may authenticate.
    On,
    /// `off`: it may not.
    Off,
    /// `nopass`: any password is accepted.
    NoPass,
    /// `resetpass`: no password is accepted (and not `nopass`).
    ResetPass,
    /// `>password` or `#digest`.
    AddPassword(String),
    /// `<password` or `!digest`.
    RemovePassword(String),
    /// `~pattern`; `allkeys` is `~*`.
    KeyPattern(String),
    /// `resetkeys`.
    ResetKeys,
    /// `&pattern`; `allchannels` is `&*`.
    ChannelPattern(String),
    /// `resetchannels`.
    ResetChannels,
    /// `+command`, `+command|sub`, `+@category`; `allcommands` is `+@all`.
    Allow(String),
    /// `-command`, `-command|sub`, `-@category`; `nocommands` is `-@all`.
    Deny(String),
    /// `reset`: back to a new user's state.
    Reset,
}

impl Rule {
    /// Reads one modifier; `known_command` says whether a command (or
    /// `command|subcommand`) exists. The error is Redis's reason text.
    pub fn parse(text: &str, known_command: impl Fn(&str) -> bool) -> Result<Rule, String> {
        let lower = text.to_ascii_lowercase();
        let rule = match lower.as_str() {
            "on" => Rule::On,
            "off" => Rule::Off,
            "nopass" => Rule::NoPass,
            "resetpass" => Rule::ResetPass,
            "allkeys" => Rule::KeyPattern("*".into()),
            "resetkeys" => Rule::ResetKeys,
            "allchannels" => Rule::ChannelPattern("*".into()),
            "resetchannels" => Rule::ResetChannels,
            "allcommands" => Rule::Allow("@all".into()),
            "nocommands" => Rule::Deny("@all".into()),
            "reset" => Rule::Reset,
            _ => match text.split_at(text.len().min(1)) {
                (">", password) => Rule::AddPassword(digest(password)),
                ("<", password) => Rule::RemovePassword(digest(password)),
                ("#", hash) => Rule::AddPassword(checked_digest(hash)?),
                ("!", hash) => Rule::RemovePassword(checked_digest(hash)?),
                ("~", pattern) => Rule::KeyPattern(pattern.into()),
                ("&", pattern) => Rule::ChannelPattern(pattern.into()),
                ("%", _) | ("(", _) => {
                    return Err("Cairn supports ~pattern key permissions only \
                                (no %R~/%W~ read-write patterns, no selectors)"
                        .into());
                }
                (sign @ ("+" | "-"), _) => {
                    let what = lower[1..].to_string();
                    let known = match what.strip_prefix('@') {
                        Some(category) => category == "all" || CATEGORIES.contains(&category),
                        None => known_command(&what),
                    };
                    if !known {
                        return Err("Unknown command or category name in ACL".into());
                    }
                    if sign == "+" {
                        Rule::Allow(what)
                    } else {
                        Rule::Deny(what)
                    }
                }
                _ => return Err("Syntax error".into()),
            },
        };
        Ok(rule)
    }
}

/// The SHA-256 digest of a password, in lower-case hex (as Redis shows it).
pub fn digest(password: &str) -> String {
    Sha256::digest(password.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn checked_digest(hash: &str) -> Result<String, String> {
    let valid = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if valid {
        Ok(hash.to_string())
    } else {
        Err("The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters".into())
    }
}

/// One user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// `on`.
    pub enabled: bool,
    /// Any password is accepted.
    pub nopass: bool,
    /// SHA-256 digests of the accepted passwords, in the order added.
    pub passwords: Vec<String>,
    /// Key glob patterns (`*` for every key).
    pub keys: Vec<String>,
    /// Pub/sub channel patterns (kept and shown; Cairn has no pub/sub).
    pub channels: Vec<String>,
    /// Command rules after the leading `+@all` / `-@all`, in order, e.g.
    /// `+@read`, `-get`.
    pub commands: Vec<String>,
    /// Whether the rules start from every command allowed (`+@all`).
    pub all_commands: bool,
}

impl Default for User {
    /// A user as `ACL SETUSER name` creates it: off, no passwords, no keys,
    /// no channels, no commands.
    fn default() -> Self {
        User {
            enabled: false,
            nopass: false,
            passwords: Vec::new(),
            keys: Vec::new(),
            channels: Vec::new(),
            commands: Vec::new(),
            all_commands: false,
        }
    }
}

impl User {
    /// The `default` user of a node: everything allowed, with `requirepass`
    /// as its password, or no password needed.
    pub fn default_user(requirepass: Option<&str>) -> User {
        User {
            enabled: true,
            nopass: requirepass.is_none(),
            passwords: requirepass.map(digest).into_iter().collect(),
            keys: vec!["*".into()],
            channels: vec!["*".into()],
            commands: Vec::new(),
            all_commands: true,
        }
    }

    /// Applies one modifier.
    pub fn apply(&mut self, rule: &Rule) {
        match rule {
            Rule::On => self.enabled = true,
            Rule::Off => self.enabled = false,
            Rule::NoPass => {
                self.nopass = true;
                self.passwords.clear();
            }
            Rule::ResetPass => {
                self.nopass = false;
                self.passwords.clear();
            }
            Rule::AddPassword(hash) => {
                self.nopass = false;
                if !self.passwords.contains(hash) {
                    self.passwords.push(hash.clone());
                }
            }
            Rule::RemovePassword(hash) => self.passwords.retain(|p| p != hash),
            Rule::KeyPattern(pattern) => add_pattern(&mut self.keys, pattern),
            Rule::ResetKeys => self.keys.clear(),
            Rule::ChannelPattern(pattern) => add_pattern(&mut self.channels, pattern),
            Rule::ResetChannels => self.channels.clear(),
            Rule::Allow(what) | Rule::Deny(what) if what == "@all" => {
                self.all_commands = matches!(rule, Rule::Allow(_));
                self.commands.clear();
            }
            Rule::Allow(what) | Rule::Deny(what) => {
                self.commands.retain(|r| r[1..] != *what);
                let sign = if matches!(rule, Rule::Allow(_)) { '+' } else { '-' };
                self.commands.push(format!("{sign}{what}"));
            }
            Rule::Reset => *self = User::default(),
        }
    }

    /// Whether `password` lets a client in as this user.
    pub fn accepts(&self, password: &[u8]) -> bool {
        let password = String::from_utf8_lossy(password);
        self.enabled && (self.nopass || self.passwords.contains(&digest(&password)))
    }

    /// Whether the user may run `command` (lower case), called with
    /// `subcommand` for container commands, in `categories` (`@read` …).
    pub fn may_run(&self, command: &str, subcommand: Option<&[u8]>, categories: &[&str]) -> bool {
        let mut allowed = self.all_commands;
        for rule in &self.commands {
            let (sign, what) = rule.split_at(1);
            let hit = match what.strip_prefix('@') {
                Some(category) => categories.iter().any(|c| c[1..] == *category),
                None => match what.split_once('|') {
                    Some((name, sub)) => {
                        name == command && subcommand.is_some_and(|s| s.eq_ignore_ascii_case(sub.as_bytes()))
                    }
                    None => what == command,
                },
            };
            if hit {
                allowed = sign == "+";
            }
        }
        allowed
    }

    /// Whether the user may touch `key`.
    pub fn may_access(&self, key: &[u8]) -> bool {
        self.keys.iter().any(|pattern| glob::matches(pattern.as_bytes(), key))
    }

    /// Flags as `ACL GETUSER` lists them.
    pub fn flags(&self) -> Vec<&'static str> {
        let mut flags = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            flags.push("nopass");
        }
        flags
    }

    /// The command rules as Redis prints them: `+@all` or `-@all`, then
    /// the rules in order.
    pub fn command_rules(&self) -> String {
        let mut text = String::from(if self.all_commands { "+@all" } else { "-@all" });
        for rule in &self.commands {
            text.push(' ');
            text.push_str(rule);
        }
        text
    }

    /// Key patterns as Redis prints them (`~a ~b`).
    pub fn key_rules(&self) -> String {
        prefixed('~', &self.keys)
    }

    /// Channel patterns as Redis prints them (`&*`, or empty).
    pub fn channel_rules(&self) -> String {
        prefixed('&', &self.channels)
    }

    /// The user as one `ACL LIST` line (without the name).
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self.flags().into_iter().map(String::from).collect();
        parts.extend(self.passwords.iter().map(|p| format!("#{p}")));
        parts.extend(self.keys.iter().map(|k| format!("~{k}")));
        if self.channels.is_empty() {
            parts.push("resetchannels".into());
        } else {
            parts.extend(self.channels.iter().map(|c| format!("&{c}")));
        }
        parts.push(self.command_rules());
        parts.join(" ")
    }
}

/// Adds a pattern; `*` replaces every other, and after `*` nothing is added.
fn add_pattern(patterns: &mut Vec<String>, pattern: &str) {
    if pattern == "*" {
        *patterns = vec!["*".into()];
    } else if !patterns.iter().any(|p| p == "*" || p == pattern) {
        patterns.push(pattern.into());
    }
}

fn prefixed(prefix: char, patterns: &[String]) -> String {
    patterns
        .iter()
        .map(|p| format!("{prefix}{p}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A change to the users, as it travels in the Raft log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AclChange {
    /// Create or modify a user (`ACL SETUSER`), all rules or none.
    SetUser {
        /// The user's name.
        name: String,
        /// The modifiers, in order.
        rules: Vec<Rule>,
        /// The user to start from when the table has none of this name
        /// (`default` as the proposing node has it; else a new user).
        base: User,
    },
    /// Remove users (`ACL DELUSER`); replies how many existed.
    DelUser {
        /// The names (never `default`).
        names: Vec<String>,
    },
}

/// The replicated table of users (only what `ACL SETUSER` made; the
/// `default` user is each node's own until changed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Users {
    users: BTreeMap<String, Arc<User>>,
}

impl Users {
    /// Applies a change: `+OK` for `SetUser`, how many users were removed
    /// for `DelUser`.
    pub fn apply(&mut self, change: &AclChange) -> Reply {
        match change {
            AclChange::SetUser { name, rules, base } => {
                let mut user = self.users.get(name).map_or_else(|| base.clone(), |u| User::clone(u));
                for rule in rules {
                    user.apply(rule);
                }
                self.users.insert(name.clone(), Arc::new(user));
                Reply::Ok
            }
            AclChange::DelUser { names } => {
                Reply::Int(names.iter().filter(|n| self.users.remove(*n).is_some()).count() as i64)
            }
        }
    }

    /// The user of this name, if the table has one.
    pub fn get(&self, name: &str) -> Option<Arc<User>> {
        self.users.get(name).cloned()
    }

    /// Every user, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Arc<User>)> {
        self.users.iter()
    }

    /// Puts back a user read from a snapshot.
    pub fn restore(&mut self, name: String, user: User) {
        self.users.insert(name, Arc::new(user));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(rules: &[&str]) -> User {
        let mut user = User::default();
        for text in rules {
            user.apply(&Rule::parse(text, |c| ["get", "set", "client|id", "client"].contains(&c)).unwrap());
        }
        user
    }

    #[test]
    fn the_last_matching_rule_decides() {
        let u = user(&["on", "+@read", "-get", "+set"]);
        assert!(!u.may_run("get", None, &["@read", "@string"]));
        assert!(u.may_run("strlen", None, &["@read", "@string"]));
        assert!(u.may_run("set", None, &["@write"]));
        assert!(!u.may_run("del", None, &["@write"]));
        assert_eq!(u.command_rules(), "-@all +@read -get +set");
        let u = user(&["+client|id"]);
        assert!(u.may_run("client", Some(b"ID"), &["@slow"]));
        assert!(!u.may_run("client", Some(b"kill"), &["@slow"]));
        assert_eq!(user(&["+get", "nocommands", "+set"]).command_rules(), "-@all +set");
    }

    #[test]
    fn passwords_are_digests_and_keys_are_globs() {
        let u = user(&["on", ">secret", "~app:*"]);
        assert_eq!(u.passwords, vec![digest("secret")]);
        assert!(u.accepts(b"secret") && !u.accepts(b"other"));
        assert!(u.may_access(b"app:1") && !u.may_access(b"other"));
        assert!(!user(&[">secret"]).accepts(b"secret"), "an off user never gets in");
        assert_eq!(
            u.describe(),
            format!("on #{} ~app:* resetchannels -@all", digest("secret"))
        );
    }

    #[test]
    fn bad_modifiers_are_named() {
        let known = |_: &str| false;
        assert_eq!(Rule::parse("bogus", known).unwrap_err(), "Syntax error");
        assert_eq!(
            Rule::parse("+nosuch", known).unwrap_err(),
            "Unknown command or category name in ACL"
        );
        assert!(Rule::parse("#abc", known).unwrap_err().contains("64 characters"));
    }
}

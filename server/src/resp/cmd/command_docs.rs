//! What `COMMAND DOCS` says of each command: Redis's own summary, the
//! Redis version that introduced it, and its group, so clients and tools
//! that print command help show the same text for Cairn as for Redis.

/// One command's documentation.
pub struct Doc {
    /// Lower-case command name.
    pub name: &'static str,
    /// One line saying what it does.
    pub summary: &'static str,
    /// The Redis version that introduced it.
    pub since: &'static str,
    /// Redis's command group (`string`, `generic`, `hash`…).
    pub group: &'static str,
}

/// The documentation of `name`, if Cairn has the command.
pub fn of(name: &str) -> Option<&'static Doc> {
    DOCS.iter().find(|doc| doc.name == name)
}

const fn doc(name: &'static str, summary: &'static str, since: &'static str, group: &'static str) -> Doc {
    Doc {
        name,
        summary,
        since,
        group,
    }
}

static DOCS: &[Doc] = &[
    doc("acl", "A container for Access List Control commands", "6.0.0", "server"),
    doc("append", "Append a value to a key", "2.0.0", "string"),
    doc("auth", "Authenticate to the server", "1.0.0", "connection"),
    doc(
        "cairn.failover",
        "Move a failover group's primary to another region (FORCE: without the old primary)",
        "cairn",
        "cairn",
    ),
    doc(
        "cairn.failovers",
        "The failover group's failovers: when, RTO, records lost",
        "cairn",
        "cairn",
    ),
    doc(
        "cairn.rpo",
        "Per shard, what a forced failover now would lose",
        "cairn",
        "cairn",
    ),
    doc(
        "cairn.status",
        "The failover groups: shards, epoch, primary, policy and state",
        "cairn",
        "cairn",
    ),
    doc(
        "client",
        "A container for client connection commands",
        "2.4.0",
        "connection",
    ),
    doc("cluster", "A container for cluster commands", "3.0.0", "cluster"),
    doc("command", "Get array of Redis command details", "2.8.13", "server"),
    doc(
        "config",
        "A container for server configuration commands",
        "2.0.0",
        "server",
    ),
    doc("copy", "Copy a key", "6.2.0", "generic"),
    doc(
        "dbsize",
        "Return the number of keys in the selected database",
        "1.0.0",
        "server",
    ),
    doc("decr", "Decrement the integer value of a key by one", "1.0.0", "string"),
    doc(
        "decrby",
        "Decrement the integer value of a key by the given number",
        "1.0.0",
        "string",
    ),
    doc("del", "Delete a key", "1.0.0", "generic"),
    doc(
        "discard",
        "Discard all commands issued after MULTI",
        "2.0.0",
        "transactions",
    ),
    doc("echo", "Echo the given string", "1.0.0", "connection"),
    doc(
        "exec",
        "Execute all commands issued after MULTI",
        "1.2.0",
        "transactions",
    ),
    doc("exists", "Determine if a key exists", "1.0.0", "generic"),
    doc("expire", "Set a key's time to live in seconds", "1.0.0", "generic"),
    doc(
        "expireat",
        "Set the expiration for a key as a UNIX timestamp",
        "1.2.0",
        "generic",
    ),
    doc(
        "expiretime",
        "Get the expiration Unix timestamp for a key",
        "7.0.0",
        "generic",
    ),
    doc("flushall", "Remove all keys from all databases", "1.0.0", "server"),
    doc(
        "flushdb",
        "Remove all keys from the current database",
        "1.0.0",
        "server",
    ),
    doc("get", "Get the value of a key", "1.0.0", "string"),
    doc("getdel", "Get the value of a key and delete the key", "6.2.0", "string"),
    doc(
        "getex",
        "Get the value of a key and optionally set its expiration",
        "6.2.0",
        "string",
    ),
    doc(
        "getrange",
        "Get a substring of the string stored at a key",
        "2.4.0",
        "string",
    ),
    doc(
        "getset",
        "Set the string value of a key and return its old value",
        "1.0.0",
        "string",
    ),
    doc("hdel", "Delete one or more hash fields", "2.0.0", "hash"),
    doc("hello", "Handshake with Redis", "6.0.0", "connection"),
    doc("hexists", "Determine if a hash field exists", "2.0.0", "hash"),
    doc("hget", "Get the value of a hash field", "2.0.0", "hash"),
    doc("hgetall", "Get all the fields and values in a hash", "2.0.0", "hash"),
    doc(
        "hincrby",
        "Increment the integer value of a hash field by the given number",
        "2.0.0",
        "hash",
    ),
    doc(
        "hincrbyfloat",
        "Increment the float value of a hash field by the given amount",
        "2.6.0",
        "hash",
    ),
    doc("hkeys", "Get all the fields in a hash", "2.0.0", "hash"),
    doc("hlen", "Get the number of fields in a hash", "2.0.0", "hash"),
    doc("hmget", "Get the values of all the given hash fields", "2.0.0", "hash"),
    doc("hmset", "Set multiple hash fields to multiple values", "2.0.0", "hash"),
    doc(
        "hrandfield",
        "Get one or multiple random fields from a hash",
        "6.2.0",
        "hash",
    ),
    doc(
        "hscan",
        "Incrementally iterate hash fields and associated values",
        "2.8.0",
        "hash",
    ),
    doc("hset", "Set the string value of a hash field", "2.0.0", "hash"),
    doc(
        "hsetnx",
        "Set the value of a hash field, only if the field does not exist",
        "2.0.0",
        "hash",
    ),
    doc(
        "hstrlen",
        "Get the length of the value of a hash field",
        "3.2.0",
        "hash",
    ),
    doc("hvals", "Get all the values in a hash", "2.0.0", "hash"),
    doc("incr", "Increment the integer value of a key by one", "1.0.0", "string"),
    doc(
        "incrby",
        "Increment the integer value of a key by the given amount",
        "1.0.0",
        "string",
    ),
    doc(
        "incrbyfloat",
        "Increment the float value of a key by the given amount",
        "2.6.0",
        "string",
    ),
    doc(
        "info",
        "Get information and statistics about the server",
        "1.0.0",
        "server",
    ),
    doc("keys", "Find all keys matching the given pattern", "1.0.0", "generic"),
    doc(
        "lastsave",
        "Get the UNIX time stamp of the last successful save to disk",
        "1.0.0",
        "server",
    ),
    doc("mget", "Get the values of all the given keys", "1.0.0", "string"),
    doc("mset", "Set multiple keys to multiple values", "1.0.1", "string"),
    doc(
        "msetnx",
        "Set multiple keys to multiple values, only if none of the keys exist",
        "1.0.1",
        "string",
    ),
    doc(
        "multi",
        "Mark the start of a transaction block",
        "1.2.0",
        "transactions",
    ),
    doc("persist", "Remove the expiration from a key", "2.2.0", "generic"),
    doc(
        "pexpire",
        "Set a key's time to live in milliseconds",
        "2.6.0",
        "generic",
    ),
    doc(
        "pexpireat",
        "Set the expiration for a key as a UNIX timestamp specified in milliseconds",
        "2.6.0",
        "generic",
    ),
    doc(
        "pexpiretime",
        "Get the expiration Unix timestamp for a key in milliseconds",
        "7.0.0",
        "generic",
    ),
    doc("ping", "Ping the server", "1.0.0", "connection"),
    doc(
        "psetex",
        "Set the value and expiration in milliseconds of a key",
        "2.6.0",
        "string",
    ),
    doc(
        "pttl",
        "Get the time to live for a key in milliseconds",
        "2.6.0",
        "generic",
    ),
    doc("quit", "Close the connection", "1.0.0", "connection"),
    doc("randomkey", "Return a random key from the keyspace", "1.0.0", "generic"),
    doc(
        "readonly",
        "Enables read queries for a connection to a cluster replica node",
        "3.0.0",
        "cluster",
    ),
    doc(
        "readwrite",
        "Disables read queries for a connection to a cluster replica node",
        "3.0.0",
        "cluster",
    ),
    doc("rename", "Rename a key", "1.0.0", "generic"),
    doc(
        "renamenx",
        "Rename a key, only if the new key does not exist",
        "1.0.0",
        "generic",
    ),
    doc("reset", "Reset the connection", "6.2.0", "connection"),
    doc("scan", "Incrementally iterate the keys space", "2.8.0", "generic"),
    doc(
        "select",
        "Change the selected database for the current connection",
        "1.0.0",
        "connection",
    ),
    doc("set", "Set the string value of a key", "1.0.0", "string"),
    doc("setex", "Set the value and expiration of a key", "2.0.0", "string"),
    doc(
        "setnx",
        "Set the value of a key, only if the key does not exist",
        "1.0.0",
        "string",
    ),
    doc(
        "setrange",
        "Overwrite part of a string at key starting at the specified offset",
        "2.2.0",
        "string",
    ),
    doc(
        "strlen",
        "Get the length of the value stored in a key",
        "2.2.0",
        "string",
    ),
    doc(
        "substr",
        "Get a substring of the string stored at a key",
        "1.0.0",
        "string",
    ),
    doc("time", "Return the current server time", "2.6.0", "server"),
    doc(
        "touch",
        "Alters the last access time of a key(s). Returns the number of existing keys specified.",
        "3.2.1",
        "generic",
    ),
    doc("ttl", "Get the time to live for a key in seconds", "1.0.0", "generic"),
    doc("type", "Determine the type stored at key", "1.0.0", "generic"),
    doc(
        "unlink",
        "Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking.",
        "4.0.0",
        "generic",
    ),
    doc("unwatch", "Forget about all watched keys", "2.2.0", "transactions"),
    doc(
        "watch",
        "Watch the given keys to determine execution of the MULTI/EXEC block",
        "2.2.0",
        "transactions",
    ),
];

#[cfg(test)]
mod tests {
    #[test]
    fn every_command_is_documented() {
        for spec in super::super::TABLE {
            assert!(
                super::of(spec.name).is_some(),
                "{} has no COMMAND DOCS entry",
                spec.name
            );
        }
    }
}

//! The registry of connected clients: what `CLIENT LIST` shows and what
//! `CLIENT KILL` acts on.
//!
//! Each connection registers a [`ClientEntry`] when it starts and removes
//! it when it ends. The entry holds what other connections may read (name,
//! last command, activity) and a kill switch the connection task watches.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::Notify;

/// One connected client, as other connections see it.
#[derive(Debug)]
pub struct ClientEntry {
    /// Unique id on this node.
    pub id: u64,
    /// The client's address.
    pub addr: SocketAddr,
    /// The listener's address it connected to.
    pub local: SocketAddr,
    /// When it connected.
    pub connected: Instant,
    name: Mutex<Option<Bytes>>,
    user: Mutex<Option<String>>,
    last_command: Mutex<&'static str>,
    /// Milliseconds after `connected` of its last command.
    last_active_ms: AtomicU64,
    protocol: AtomicU8,
    killed: AtomicBool,
    kill: Notify,
}

impl ClientEntry {
    /// A new entry.
    pub fn new(id: u64, addr: SocketAddr, local: SocketAddr) -> Self {
        ClientEntry {
            id,
            addr,
            local,
            connected: Instant::now(),
            name: Mutex::new(None),
            user: Mutex::new(None),
            last_command: Mutex::new("NULL"),
            last_active_ms: AtomicU64::new(0),
            protocol: AtomicU8::new(2),
            killed: AtomicBool::new(false),
            kill: Notify::new(),
        }
    }

    /// The name set by `CLIENT SETNAME` or `HELLO … SETNAME`.
    pub fn name(&self) -> Option<Bytes> {
        self.name.lock().expect("name lock").clone()
    }

    /// The user it is logged in as.
    pub fn user(&self) -> Option<String> {
        self.user.lock().expect("user lock").clone()
    }

    /// Records who it is logged in as.
    pub fn set_user(&self, user: Option<String>) {
        *self.user.lock().expect("user lock") = user;
    }

    /// Sets (or clears) the name.
    pub fn set_name(&self, name: Option<Bytes>) {
        *self.name.lock().expect("name lock") = name;
    }

    /// Records the RESP version in use (2 or 3), for listings.
    pub fn set_protocol(&self, version: u8) {
        self.protocol.store(version, Ordering::Relaxed);
    }

    /// Records a command about to run.
    pub fn touch(&self, command: &'static str) {
        *self.last_command.lock().expect("command lock") = command;
        self.last_active_ms
            .store(self.connected.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Asks the connection to close.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Relaxed);
        self.kill.notify_one();
    }

    /// Whether the connection was asked to close.
    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Relaxed)
    }

    /// Completes when the connection is asked to close.
    pub async fn killed(&self) {
        self.kill.notified().await;
    }

    /// The `CLIENT LIST` line, in Redis's field order.
    pub fn describe(&self) -> String {
        let age = self.connected.elapsed();
        let idle = age.as_millis() as u64 - self.last_active_ms.load(Ordering::Relaxed).min(age.as_millis() as u64);
        let name = self
            .name()
            .map(|n| String::from_utf8_lossy(&n).into_owned())
            .unwrap_or_default();
        format!(
            "id={} addr={} laddr={} fd=-1 name={name} age={} idle={} flags=N db=0 sub=0 psub=0 ssub=0 \
             multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 \
             events=r cmd={} user={} redir=-1 resp={}",
            self.id,
            self.addr,
            self.local,
            age.as_secs(),
            idle / 1000,
            self.last_command.lock().expect("command lock"),
            self.user().as_deref().unwrap_or(crate::acl::DEFAULT_USER),
            self.protocol.load(Ordering::Relaxed),
        )
    }
}

/// Every connected client of a listener.
#[derive(Debug, Default)]
pub struct Registry {
    clients: Mutex<BTreeMap<u64, Arc<ClientEntry>>>,
}

impl Registry {
    /// Adds a connection.
    pub fn add(&self, entry: Arc<ClientEntry>) {
        self.clients.lock().expect("registry lock").insert(entry.id, entry);
    }

    /// Removes a connection.
    pub fn remove(&self, id: u64) {
        self.clients.lock().expect("registry lock").remove(&id);
    }

    /// Every connection, by id.
    pub fn all(&self) -> Vec<Arc<ClientEntry>> {
        self.clients.lock().expect("registry lock").values().cloned().collect()
    }
}

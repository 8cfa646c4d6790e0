//! Where the nodes of a run live on the network, and how links are cut.
//!
//! With root and iproute2/iptables, every node runs in its own network
//! namespace, attached by a veth pair to a bridge the harness creates, with
//! its own address in `10.77.X.0/24` (X chosen per run). A partition is
//! real packet loss: iptables rules inside the node namespaces drop traffic
//! between the two sides. The harness itself (the clients) sits on the
//! bridge and keeps reaching every node, so an isolated leader still hears
//! from clients — the case a stale read would come from.
//!
//! Without root, nodes run on loopback and partitions cannot be injected;
//! the run says so. Everything created here is removed on drop, and stale
//! leftovers with this run's names are removed before creating.

use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};

use anyhow::Context;

/// The network of a run.
pub enum Net {
    /// Every node on 127.0.0.1; links cannot be cut.
    Loopback,
    /// One namespace per node on a private bridge.
    Namespaces {
        /// The run's subnet byte X of `10.77.X.0/24`.
        subnet: u8,
        /// Number of nodes.
        nodes: usize,
    },
}

fn sh(args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("running {}", args.join(" ")))?;
    anyhow::ensure!(status.success(), "`{}` failed ({status})", args.join(" "));
    Ok(())
}

fn available(tool: &str, version_flag: &str) -> bool {
    Command::new(tool)
        .arg(version_flag)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Net {
    /// Namespaces when this process can make them, else loopback (and why).
    pub fn create(nodes: usize) -> anyhow::Result<(Net, Option<String>)> {
        if !nix::unistd::geteuid().is_root() {
            return Ok((Net::Loopback, Some("not running as root".into())));
        }
        if !available("ip", "-V") || !available("iptables", "--version") {
            return Ok((Net::Loopback, Some("iproute2 or iptables is not installed".into())));
        }
        let subnet = 20 + (std::process::id() % 200) as u8;
        let net = Net::Namespaces { subnet, nodes };
        net.remove();
        net.build().context("creating network namespaces")?;
        Ok((net, None))
    }

    fn bridge(subnet: u8) -> String {
        format!("cjb{subnet}")
    }

    /// The namespace of node `id` (1-based).
    pub fn namespace(&self, id: u64) -> Option<String> {
        match self {
            Net::Loopback => None,
            Net::Namespaces { subnet, .. } => Some(format!("cj{subnet}n{id}")),
        }
    }

    /// The address node `id` listens on.
    pub fn address(&self, id: u64) -> IpAddr {
        match self {
            Net::Loopback => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Net::Namespaces { subnet, .. } => IpAddr::V4(Ipv4Addr::new(10, 77, *subnet, 10 + id as u8)),
        }
    }

    /// Whether links can be cut.
    pub fn can_partition(&self) -> bool {
        matches!(self, Net::Namespaces { .. })
    }

    fn build(&self) -> anyhow::Result<()> {
        let Net::Namespaces { subnet, nodes } = self else {
            return Ok(());
        };
        let bridge = Self::bridge(*subnet);
        sh(&["ip", "link", "add", &bridge, "type", "bridge"])?;
        sh(&["ip", "addr", "add", &format!("10.77.{subnet}.1/24"), "dev", &bridge])?;
        sh(&["ip", "link", "set", &bridge, "up"])?;
        for id in 1..=*nodes as u64 {
            let ns = self.namespace(id).expect("namespaces");
            let veth = format!("cj{subnet}v{id}");
            sh(&["ip", "netns", "add", &ns])?;
            sh(&[
                "ip", "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ])?;
            sh(&["ip", "link", "set", &veth, "master", &bridge, "up"])?;
            let addr = format!("{}/24", self.address(id));
            sh(&["ip", "netns", "exec", &ns, "ip", "addr", "add", &addr, "dev", "eth0"])?;
            sh(&["ip", "netns", "exec", &ns, "ip", "link", "set", "eth0", "up"])?;
            sh(&["ip", "netns", "exec", &ns, "ip", "link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    /// Drops all traffic between every node of `a` and every node of `b`.
    pub fn cut(&self, a: &[u64], b: &[u64]) -> anyhow::Result<()> {
        for &x in a {
            for &y in b {
                self.drop_between(x, y)?;
                self.drop_between(y, x)?;
            }
        }
        Ok(())
    }

    fn drop_between(&self, node: u64, peer: u64) -> anyhow::Result<()> {
        let Some(ns) = self.namespace(node) else {
            anyhow::bail!("cannot cut links on loopback");
        };
        let peer = self.address(peer).to_string();
        sh(&[
            "ip", "netns", "exec", &ns, "iptables", "-A", "INPUT", "-s", &peer, "-j", "DROP",
        ])?;
        sh(&[
            "ip", "netns", "exec", &ns, "iptables", "-A", "OUTPUT", "-d", &peer, "-j", "DROP",
        ])
    }

    /// Removes every rule: all links work again.
    pub fn heal(&self) -> anyhow::Result<()> {
        if let Net::Namespaces { nodes, .. } = self {
            for id in 1..=*nodes as u64 {
                let ns = self.namespace(id).expect("namespaces");
                sh(&["ip", "netns", "exec", &ns, "iptables", "-F"])?;
            }
        }
        Ok(())
    }

    /// Deletes the namespaces and the bridge (best effort).
    fn remove(&self) {
        if let Net::Namespaces { subnet, nodes } = self {
            for id in 1..=*nodes as u64 {
                let _ = sh(&["ip", "netns", "del", &self.namespace(id).expect("namespaces")]);
            }
            let _ = sh(&["ip", "link", "del", &Self::bridge(*subnet)]);
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.remove();
    }
}

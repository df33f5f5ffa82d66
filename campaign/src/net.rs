//! The campaign's network: one namespace per host, all on one bridge, and the firewall rules
//! that cut them apart.
//!
//! ```text
//!  hapgc-br (namespace holding the bridge hapgc0 and the hosts' veth ends)
//!     ├── hapgc-node1 10.213.0.11   ha-agent + PostgreSQL (+ ha-fence)   :5432 :8008
//!     ├── hapgc-node2 10.213.0.12
//!     ├── hapgc-node3 10.213.0.13
//!     ├── hapgc-etcd1 10.213.0.21   etcd :2379 :2380
//!     ├── hapgc-etcd2 10.213.0.22
//!     ├── hapgc-etcd3 10.213.0.23
//!     ├── hapgc-client 10.213.0.30  HAProxy :5000 :5001 :7000 and the writer through it
//!     └── hapgc-observer 10.213.0.40  direct writers, health probes, switchover requests
//! ```
//!
//! The bridge lives in a namespace of its own rather than the machine's: with `br_netfilter`
//! loaded (Docker loads it), bridged packets pass the bridge namespace's iptables FORWARD
//! chain, and Docker's `FORWARD DROP` policy in the machine's namespace would drop them. A
//! fresh namespace has an empty, accepting firewall, and the campaign never touches the
//! machine's own network configuration. Removing the namespaces removes everything.
//!
//! Faults are iptables rules inside the victim's namespace (INPUT/OUTPUT DROP by peer
//! address, or NFQUEUE to the delayer); healing flushes them. The observer is never cut off:
//! it stands for the campaign's own view of the cluster (like Jepsen's control node), and it
//! must see a cut-off primary to notice that it still accepts writes.

use std::net::Ipv4Addr;
use std::process::Command;

use anyhow::{Context, bail};

/// Which of up to ten campaigns that may run side by side (`--instance`, 0-9): instance 0 is
/// the layout of the module docs (`hapgc-*`, 10.213.0.0/24, the CI schedule's); instance N
/// uses `hapgcN-*` namespaces on 10.213.N.0/24, with its own lock and data directory, so
/// that the long asynchronous and synchronous runs can share a machine (and the CI schedule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Instance(u8);

impl Instance {
    /// The largest instance number.
    pub const MAX: u8 = 9;

    /// Instance `n`, if `n` is at most [`Instance::MAX`].
    pub fn new(n: u8) -> Option<Instance> {
        (n <= Self::MAX).then_some(Instance(n))
    }

    /// Every namespace of the instance starts with this (`hapgc-`, `hapgc1-`, ...).
    pub fn prefix(self) -> String {
        match self.0 {
            0 => "hapgc-".to_string(),
            n => format!("hapgc{n}-"),
        }
    }

    /// The namespace holding the bridge.
    pub fn bridge_ns(self) -> String {
        format!("{}br", self.prefix())
    }

    /// The bridge (inside [`Instance::bridge_ns`]).
    pub fn bridge(self) -> String {
        format!("hapgc{}", self.0)
    }

    /// The hosts' network, `10.213.N.0/24`.
    pub fn subnet(self) -> String {
        format!("10.213.{}.0/24", self.0)
    }

    /// The lock that keeps two runs of the same instance apart.
    pub fn lock_path(self) -> std::path::PathBuf {
        match self.0 {
            0 => "/run/hapg-campaign.lock".into(),
            n => format!("/run/hapg-campaign{n}.lock").into(),
        }
    }

    /// Where members' and etcd's data live during a run (removed before and after).
    pub fn data_dir(self) -> std::path::PathBuf {
        match self.0 {
            0 => "/tmp/hapg-campaign-data".into(),
            n => format!("/tmp/hapg-campaign{n}-data").into(),
        }
    }

    fn addr(self, last_octet: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.0, last_octet)
    }
}

/// One host: a namespace with one address on the bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Short name (`node1`, `etcd2`, `client`, `observer`).
    pub name: String,
    /// Namespace (`hapgc-node1`).
    pub ns: String,
    /// Address on the bridge.
    pub addr: Ipv4Addr,
}

impl Host {
    fn new(instance: Instance, name: &str, last_octet: u8) -> Host {
        Host {
            name: name.to_string(),
            ns: format!("{}{name}", instance.prefix()),
            addr: instance.addr(last_octet),
        }
    }
}

/// The hosts of a campaign.
#[derive(Debug, Clone)]
pub struct Topology {
    /// Which campaign instance the hosts belong to.
    pub instance: Instance,
    /// The three cluster members.
    pub members: Vec<Host>,
    /// The three etcd members.
    pub etcd: Vec<Host>,
    /// HAProxy and the writer through it.
    pub client: Host,
    /// The campaign's observer.
    pub observer: Host,
}

impl Topology {
    /// The fixed layout of the module docs (instance 0).
    pub fn standard() -> Topology {
        Topology::of(Instance::default())
    }

    /// The layout of the module docs on `instance`'s namespaces and network.
    pub fn of(instance: Instance) -> Topology {
        Topology {
            instance,
            members: (1..=3u8)
                .map(|i| Host::new(instance, &format!("node{i}"), 10 + i))
                .collect(),
            etcd: (1..=3u8)
                .map(|i| Host::new(instance, &format!("etcd{i}"), 20 + i))
                .collect(),
            client: Host::new(instance, "client", 30),
            observer: Host::new(instance, "observer", 40),
        }
    }

    /// Every host.
    pub fn all(&self) -> Vec<&Host> {
        self.members
            .iter()
            .chain(&self.etcd)
            .chain([&self.client, &self.observer])
            .collect()
    }

    /// The member called `name`.
    pub fn member(&self, name: &str) -> Option<&Host> {
        self.members.iter().find(|h| h.name == name)
    }

    /// The member with address `addr`.
    pub fn member_by_addr(&self, addr: &str) -> Option<&Host> {
        self.members.iter().find(|h| h.addr.to_string() == addr)
    }

    /// Creates the bridge namespace, the bridge, and every host with its veth pair.
    pub fn create(&self) -> anyhow::Result<()> {
        let (bridge_ns, bridge) = (self.instance.bridge_ns(), self.instance.bridge());
        let (bridge_ns, bridge) = (bridge_ns.as_str(), bridge.as_str());
        ip(&["netns", "add", bridge_ns])?;
        ip(&["-n", bridge_ns, "link", "set", "lo", "up"])?;
        ip(&["-n", bridge_ns, "link", "add", bridge, "type", "bridge"])?;
        ip(&["-n", bridge_ns, "link", "set", bridge, "up"])?;
        for h in self.all() {
            ip(&["netns", "add", &h.ns])?;
            ip(&[
                "-n", bridge_ns, "link", "add", &h.name, "type", "veth", "peer", "name", "eth0",
                "netns", &h.ns,
            ])?;
            ip(&[
                "-n", bridge_ns, "link", "set", &h.name, "master", bridge, "up",
            ])?;
            ip(&[
                "-n",
                &h.ns,
                "addr",
                "add",
                &format!("{}/24", h.addr),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &h.ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &h.ns, "link", "set", "lo", "up"])?;
        }
        Ok(())
    }
}

/// Runs `ip ARGS`; an error carries its stderr.
pub fn ip(args: &[&str]) -> anyhow::Result<()> {
    run("ip", args)
}

/// Runs `ip netns exec NS PROGRAM ARGS`.
pub fn ns_exec(ns: &str, program: &str, args: &[&str]) -> anyhow::Result<()> {
    let mut all = vec!["netns", "exec", ns, program];
    all.extend_from_slice(args);
    run("ip", &all)
}

fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("run {program} (install iproute2 / iptables)"))?;
    if !out.status.success() {
        bail!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Drops every packet between the host in `ns` and `peers`, both ways.
pub fn cut(ns: &str, peers: &[Ipv4Addr]) -> anyhow::Result<()> {
    let rules: Vec<String> = peers
        .iter()
        .flat_map(|p| {
            [
                format!("-A INPUT -s {p} -j DROP"),
                format!("-A OUTPUT -d {p} -j DROP"),
            ]
        })
        .collect();
    apply_rules(ns, &rules)
}

/// Drops every packet from `peers` to the host in `ns` (it can still send to them).
pub fn cut_incoming(ns: &str, peers: &[Ipv4Addr]) -> anyhow::Result<()> {
    let rules: Vec<String> = peers
        .iter()
        .map(|p| format!("-A INPUT -s {p} -j DROP"))
        .collect();
    apply_rules(ns, &rules)
}

/// Adds `rules` to the filter table of `ns` in one transaction (`iptables-restore
/// --noflush`): a cut takes effect for every peer at the same instant. Added one by one, a
/// leader already cut from its replicas but not yet from HAProxy acknowledged a write that
/// then existed nowhere else.
fn apply_rules(ns: &str, rules: &[String]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "iptables-restore", "--noflush"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("run iptables-restore (install iptables)")?;
    let input = format!("*filter\n{}\nCOMMIT\n", rules.join("\n"));
    child
        .stdin
        .take()
        .context("iptables-restore stdin")?
        .write_all(input.as_bytes())
        .context("write rules to iptables-restore")?;
    let out = child
        .wait_with_output()
        .context("wait for iptables-restore")?;
    if !out.status.success() {
        bail!(
            "iptables-restore in {ns} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Sends every packet the host in `ns` puts on the bridge through NFQUEUE 0 (the delayer
/// releases them); `--queue-bypass` lets them through when no delayer is bound.
pub fn queue_outgoing(ns: &str) -> anyhow::Result<()> {
    ns_exec(
        ns,
        "iptables",
        &[
            "-w",
            "-A",
            "OUTPUT",
            "-o",
            "eth0",
            "-j",
            "NFQUEUE",
            "--queue-num",
            "0",
            "--queue-bypass",
        ],
    )
}

/// Removes every rule from the host in `ns`.
pub fn heal(ns: &str) -> anyhow::Result<()> {
    ns_exec(ns, "iptables", &["-w", "-F", "INPUT"])?;
    ns_exec(ns, "iptables", &["-w", "-F", "OUTPUT"])
}

/// The namespaces of `instance` (their name starts with its [`Instance::prefix`]).
pub fn campaign_namespaces(instance: Instance) -> Vec<String> {
    let prefix = instance.prefix();
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&prefix))
        .map(str::to_string)
        .collect()
}

/// The processes in namespace `ns` (`ip netns pids`), never this process itself.
pub fn ns_pids(ns: &str) -> Vec<u32> {
    let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() else {
        return Vec::new();
    };
    let me = std::process::id();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .filter(|p| *p != me)
        .collect()
}

/// Removes everything a campaign of `instance` creates on the machine: kills every process
/// in its namespaces, deletes the namespaces (which deletes the bridge and the veths). Best
/// effort and idempotent; returns what could not be removed.
pub fn destroy_all(instance: Instance) -> Vec<String> {
    let mut problems = Vec::new();
    let namespaces = campaign_namespaces(instance);
    for _ in 0..50 {
        let mut any = false;
        for ns in &namespaces {
            for pid in ns_pids(ns) {
                any = true;
                crate::procs::signal(pid, nix::sys::signal::Signal::SIGCONT);
                crate::procs::signal(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
        if !any {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    for ns in &namespaces {
        let left = ns_pids(ns);
        if !left.is_empty() {
            problems.push(format!("processes {left:?} in {ns} survived SIGKILL"));
        }
        if let Err(e) = ip(&["netns", "del", ns]) {
            problems.push(format!("{e:#}"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_zero_keeps_the_documented_layout_and_others_do_not_overlap_it() {
        let zero = Topology::of(Instance::default());
        assert_eq!(zero.members[0].ns, "hapgc-node1");
        assert_eq!(zero.members[0].addr, Ipv4Addr::new(10, 213, 0, 11));
        assert_eq!(Instance::default().bridge_ns(), "hapgc-br");
        assert_eq!(Instance::default().bridge(), "hapgc0");
        let two = Instance::new(2).unwrap();
        let t = Topology::of(two);
        assert_eq!(t.etcd[2].ns, "hapgc2-etcd3");
        assert_eq!(t.etcd[2].addr, Ipv4Addr::new(10, 213, 2, 23));
        assert_eq!(two.subnet(), "10.213.2.0/24");
        // Clean-up of one instance selects namespaces by prefix: it must never match another's.
        assert!(!t.members[0].ns.starts_with(&Instance::default().prefix()));
        assert!(!zero.members[0].ns.starts_with(&two.prefix()));
        assert_ne!(two.lock_path(), Instance::default().lock_path());
        assert_ne!(two.data_dir(), Instance::default().data_dir());
        assert!(Instance::new(Instance::MAX + 1).is_none());
    }
}

//! The NAT test's little internet, built from network namespaces and nftables: an
//! "internet" namespace routing between two documentation ranges that exist only inside
//! these namespaces (198.51.100.0/24 for public hosts: the relay and a public HTTP
//! neighbour; 203.0.113.0/24 for the routers' WAN side), and two home routers, each
//! doing NAT for one node on a private LAN behind it and silently dropping (not
//! resetting) whatever arrives unsolicited, as home routers do.
//!
//! Namespaces are named like the fault suite's (`lfault-<pid>-...`), so its stale-run
//! cleanup also removes ours; everything is deleted on drop, also when a test panics.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lattice_node::NodeKey;
use serde_json::Value;

use super::agent::Agent;
use super::netns::{PREFIX, run};

const LATTICE: &str = env!("CARGO_BIN_EXE_lattice");
pub const RELAY_IP: &str = "198.51.100.10";
pub const PUBLIC_IP: &str = "198.51.100.20";
pub const RELAY_PORT: u16 = 4001;
pub const P2P_PORT: u16 = 7600;
pub const HTTP_PORT: u16 = 8080;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// How a router translates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NatKind {
    /// Port-preserving masquerade, one mapping per inside socket: hole punching works.
    Cone,
    /// `masquerade random,fully-random`: a new random port towards every destination, so
    /// the port a peer learns from the relay is not the one it would meet.
    Symmetric,
    /// Cone for TCP, and every UDP packet dropped (QUIC cannot get out).
    ConeNoUdp,
}

/// One namespace with a veth leg on the internet bridge.
fn attach(bridge: &str, ns: &str, leg: &str, cidr: &str, gateway: &str) -> Result<(), String> {
    run(
        "ip",
        &[
            "-n", bridge, "link", "add", leg, "type", "veth", "peer", "name", "wan", "netns", ns,
        ],
    )?;
    run("ip", &["-n", bridge, "link", "set", leg, "master", "br0"])?;
    run("ip", &["-n", bridge, "link", "set", leg, "up"])?;
    run("ip", &["-n", ns, "addr", "add", cidr, "dev", "wan"])?;
    run("ip", &["-n", ns, "link", "set", "wan", "up"])?;
    run("ip", &["-n", ns, "route", "add", "default", "via", gateway])?;
    Ok(())
}

fn nft(ns: &str, script: &str) -> Result<(), String> {
    use std::io::Write;
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("nft in {ns}: {e}"))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(script.as_bytes())
        .map_err(|e| format!("nft in {ns}: {e}"))?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "nft in {ns} failed: {}\n{script}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// The router's rules: forward the LAN out and only replies back in; drop the rest.
fn router_rules(kind: NatKind) -> String {
    let masquerade = match kind {
        NatKind::Symmetric => "masquerade random,fully-random",
        NatKind::Cone | NatKind::ConeNoUdp => "masquerade",
    };
    let udp = match kind {
        NatKind::ConeNoUdp => "meta l4proto udp drop;",
        _ => "",
    };
    format!(
        "table ip nat {{
  chain post {{ type nat hook postrouting priority 100; oifname \"wan\" {masquerade}; }};
}};
table inet natfilter {{
  chain forwarding {{ type filter hook forward priority 0; policy drop; {udp}
    ct state established,related accept; iifname \"lan\" oifname \"wan\" accept; }};
  chain inbound {{ type filter hook input priority 0; iifname \"wan\" ct state established,related accept; iifname \"wan\" drop; }};
}};
"
    )
}

/// The namespaces of one NAT scenario. Dropping it deletes them all.
pub struct Internet {
    pub namespaces: Vec<String>,
    pub relay: String,
    pub public: String,
    /// The two nodes' namespaces, behind router 0 and router 1.
    pub homes: [String; 2],
}

impl Internet {
    pub fn create(kind: NatKind) -> Result<Internet, String> {
        let id = COUNTER.fetch_add(1, Ordering::SeqCst);
        let base = format!("{PREFIX}{}-nat{id}", std::process::id());
        let name = |s: &str| format!("{base}-{s}");
        let mut net = Internet {
            namespaces: Vec::new(),
            relay: name("relay"),
            public: name("pub"),
            homes: [name("home0"), name("home1")],
        };
        let inet = name("inet");
        let routers = [name("rt0"), name("rt1")];
        // `net` owns each namespace from its creation, so a failure later removes it.
        for ns in [&inet, &net.relay, &net.public, &routers[0], &routers[1]]
            .into_iter()
            .chain(net.homes.iter())
            .cloned()
            .collect::<Vec<_>>()
        {
            run("ip", &["netns", "add", &ns])?;
            net.namespaces.push(ns.clone());
            run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        }
        run("ip", &["-n", &inet, "link", "add", "br0", "type", "bridge"])?;
        run(
            "ip",
            &["-n", &inet, "addr", "add", "198.51.100.1/24", "dev", "br0"],
        )?;
        run(
            "ip",
            &["-n", &inet, "addr", "add", "203.0.113.1/24", "dev", "br0"],
        )?;
        run("ip", &["-n", &inet, "link", "set", "br0", "up"])?;
        sysctl_forward(&inet)?;
        attach(
            &inet,
            &net.relay,
            "vrelay",
            &format!("{RELAY_IP}/24"),
            "198.51.100.1",
        )?;
        attach(
            &inet,
            &net.public,
            "vpub",
            &format!("{PUBLIC_IP}/24"),
            "198.51.100.1",
        )?;
        for (i, rt) in routers.iter().enumerate() {
            attach(
                &inet,
                rt,
                &format!("vrt{i}"),
                &format!("203.0.113.{}/24", 10 + i),
                "203.0.113.1",
            )?;
            sysctl_forward(rt)?;
            let home = &net.homes[i];
            run(
                "ip",
                &[
                    "-n", rt, "link", "add", "lan", "type", "veth", "peer", "name", "eth0",
                    "netns", home,
                ],
            )?;
            run(
                "ip",
                &[
                    "-n",
                    rt,
                    "addr",
                    "add",
                    &format!("10.0.{i}.1/24"),
                    "dev",
                    "lan",
                ],
            )?;
            run("ip", &["-n", rt, "link", "set", "lan", "up"])?;
            run(
                "ip",
                &[
                    "-n",
                    home,
                    "addr",
                    "add",
                    &format!("{}/24", home_ip(i)),
                    "dev",
                    "eth0",
                ],
            )?;
            run("ip", &["-n", home, "link", "set", "eth0", "up"])?;
            run(
                "ip",
                &[
                    "-n",
                    home,
                    "route",
                    "add",
                    "default",
                    "via",
                    &format!("10.0.{i}.1"),
                ],
            )?;
            nft(rt, &router_rules(kind))?;
        }
        Ok(net)
    }
}

fn sysctl_forward(ns: &str) -> Result<(), String> {
    run(
        "ip",
        &[
            "netns",
            "exec",
            ns,
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.ip_forward=1",
        ],
    )
    .map(|_| ())
}

/// The private LAN address of the node behind router `i`.
pub fn home_ip(i: usize) -> String {
    format!("10.0.{i}.2")
}

impl Drop for Internet {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            if let Ok(pids) = run("ip", &["netns", "pids", ns]) {
                for pid in pids.split_whitespace() {
                    let _ = run("kill", &["-KILL", pid]);
                }
            }
            if let Err(e) = run("ip", &["netns", "del", ns]) {
                eprintln!("nat: cleanup: {e}");
            }
        }
    }
}

/// A `lattice` process (node or relay) in a namespace, with its log in its directory.
pub struct Process {
    pub name: String,
    pub dir: PathBuf,
    child: Option<Child>,
    /// Reaches the node's HTTP API inside the namespace (none for the relay).
    agent: Option<Agent>,
    pub http: String,
}

impl Process {
    pub fn start(
        name: &str,
        ns: &str,
        dir: &Path,
        command: &str,
        env: &[(String, String)],
        http: Option<String>,
    ) -> Process {
        std::fs::create_dir_all(dir).expect("the process directory");
        let log = File::create(dir.join("log")).expect("the log opens");
        let child = Command::new("ip")
            .args(["netns", "exec", ns, LATTICE, command])
            .current_dir(dir)
            .env_clear()
            .env("HOME", dir)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("lattice starts");
        // The agent's own relay is not used here: it binds a throwaway loopback port.
        let agent = http.as_ref().map(|_| {
            let unused: SocketAddr = "127.0.0.1:0".parse().unwrap();
            Agent::start(ns, &dir.join("agent.sock"), unused, unused)
        });
        Process {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            child: Some(child),
            agent,
            http: http.unwrap_or_default(),
        }
    }

    pub fn status(&self) -> Result<Value, String> {
        let agent = self.agent.as_ref().ok_or("no HTTP API")?;
        let (code, body) = super::nodes::http_via(
            agent.socket_path(),
            &self.http,
            "GET",
            "/api/lattice/p2p/status",
            None,
            Duration::from_secs(2),
        )?;
        if code != 200 {
            return Err(format!("status answered {code}: {body}"));
        }
        serde_json::from_str(&body).map_err(|e| format!("status is not JSON: {e}"))
    }

    pub fn put(&self, payload: &Value) -> Result<String, String> {
        let agent = self.agent.as_ref().ok_or("no HTTP API")?;
        super::nodes::put_via(agent.socket_path(), &self.http, payload)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A fresh key and its PeerId text.
pub fn key() -> (NodeKey, String) {
    let k = NodeKey::generate().expect("a key");
    let id = k.peer_id().to_string();
    (k, id)
}

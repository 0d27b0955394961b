//! Network namespaces and nftables rules the suite creates for itself: one bridge
//! namespace, one namespace per node joined to it by a veth pair, private addresses
//! (10.213.0.0/24) that exist only inside them. Everything is removed on drop, also when
//! a test panics, and namespaces left behind by a run that was killed are removed when
//! the next run starts.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Every namespace this suite makes starts with this, then the pid of the run.
pub const PREFIX: &str = "lfault-";
/// The port the other nodes dial (a relay in the node's namespace in front of the node).
pub const P2P_PORT: u16 = 7600;
pub const HTTP_PORT: u16 = 8080;
/// The nftables table the faults live in (one per node namespace).
const TABLE: &str = "lfault";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Why the suite cannot run here, if it cannot.
pub fn unavailable() -> Option<String> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        });
    if uid.as_deref() != Some("0") {
        return Some("not running as root (network namespaces and nftables need it)".into());
    }
    for (tool, package) in [("ip", "iproute2"), ("nft", "nftables")] {
        let found = Command::new(tool)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Some(format!(
                "`{tool}` is missing (install {package}: scripts/setup.sh test does)"
            ));
        }
    }
    None
}

/// Runs a command and returns its stdout, or an error naming the command and its stderr.
pub fn run(cmd: &str, args: &[&str]) -> Result<String, String> {
    run_with_input(cmd, args, None)
}

fn run_with_input(cmd: &str, args: &[&str], input: Option<&str>) -> Result<String, String> {
    use std::io::Write;
    let mut child = Command::new(cmd)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{cmd} {}: {e}", args.join(" ")))?;
    if let Some(text) = input {
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| format!("{cmd}: writing its input: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{cmd} {}: {e}", args.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "`{cmd} {}` failed ({}): {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            input.map(|i| format!("\ninput:\n{i}")).unwrap_or_default()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Removes namespaces of this suite whose run (the pid in the name) is gone, killing
/// whatever still runs inside them first.
pub fn remove_stale() {
    let Ok(list) = run("ip", &["netns", "list"]) else {
        return;
    };
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        if pid == std::process::id().to_string() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        eprintln!("faults: removing stale namespace {name}");
        kill_all_in(name);
        let _ = run("ip", &["netns", "del", name]);
    }
}

fn kill_all_in(ns: &str) {
    if let Ok(pids) = run("ip", &["netns", "pids", ns]) {
        for pid in pids.split_whitespace() {
            let _ = run("kill", &["-KILL", pid]);
        }
    }
}

/// The namespaces of one cluster. Dropping it deletes them all.
pub struct Net {
    pub bridge: String,
    pub nodes: Vec<String>,
}

impl Net {
    /// Creates the bridge namespace and `n` node namespaces, each with `eth0` at
    /// `10.213.0.(i+1)/24` on the bridge.
    pub fn create(n: usize) -> Result<Net, String> {
        let id = COUNTER.fetch_add(1, Ordering::SeqCst);
        let base = format!("{PREFIX}{}-{id}", std::process::id());
        let mut net = Net {
            bridge: format!("{base}-br"),
            nodes: Vec::new(),
        };
        // `net` owns every namespace from its creation on, so a half-built one is removed
        // (by drop) when a later step fails.
        run("ip", &["netns", "add", &net.bridge])?;
        let br = net.bridge.clone();
        run("ip", &["-n", &br, "link", "add", "br0", "type", "bridge"])?;
        run("ip", &["-n", &br, "link", "set", "br0", "up"])?;
        run("ip", &["-n", &br, "link", "set", "lo", "up"])?;
        for i in 0..n {
            let ns = format!("{base}-n{i}");
            run("ip", &["netns", "add", &ns])?;
            net.nodes.push(ns.clone());
            let veth = format!("v{i}");
            run(
                "ip",
                &[
                    "-n", &br, "link", "add", &veth, "type", "veth", "peer", "name", "eth0",
                    "netns", &ns,
                ],
            )?;
            run("ip", &["-n", &br, "link", "set", &veth, "master", "br0"])?;
            run("ip", &["-n", &br, "link", "set", &veth, "up"])?;
            run(
                "ip",
                &[
                    "-n",
                    &ns,
                    "addr",
                    "add",
                    &format!("{}/24", addr(i)),
                    "dev",
                    "eth0",
                ],
            )?;
            run("ip", &["-n", &ns, "link", "set", "eth0", "up"])?;
            run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(net)
    }

    /// Replaces the fault rules of node `i` with `input` and `output` rules (nft syntax,
    /// one rule per string); empty lists heal it. One atomic nft transaction.
    pub fn set_rules(&self, i: usize, input: &[String], output: &[String]) -> Result<(), String> {
        let chain = |name: &str, hook: &str, rules: &[String]| {
            let mut s = format!("  chain {name} {{ type filter hook {hook} priority 0;\n");
            for r in rules {
                s.push_str(&format!("    {r}\n"));
            }
            s.push_str("  }\n");
            s
        };
        // Declaring the table first makes the delete valid whether it exists or not.
        let script = format!(
            "table inet {TABLE}\ndelete table inet {TABLE}\ntable inet {TABLE} {{\n{}{}}}\n",
            chain("i", "input", input),
            chain("o", "output", output)
        );
        run_with_input(
            "ip",
            &["netns", "exec", &self.nodes[i], "nft", "-f", "-"],
            Some(&script),
        )
        .map(|_| ())
    }

    /// Packets the counters of node `i`'s fault rules have seen.
    pub fn packets(&self, i: usize) -> Result<u64, String> {
        let table = run(
            "ip",
            &[
                "netns",
                "exec",
                &self.nodes[i],
                "nft",
                "list",
                "table",
                "inet",
                TABLE,
            ],
        )?;
        Ok(table
            .split_whitespace()
            .collect::<Vec<_>>()
            .windows(2)
            .filter(|w| w[0] == "packets")
            .filter_map(|w| w[1].parse::<u64>().ok())
            .sum())
    }

    pub fn heal(&self, i: usize) -> Result<(), String> {
        self.set_rules(i, &[], &[])
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in self.nodes.iter().chain(std::iter::once(&self.bridge)) {
            kill_all_in(ns);
            if let Err(e) = run("ip", &["netns", "del", ns]) {
                eprintln!("faults: cleanup: {e}");
            }
        }
    }
}

/// Node `i`'s address inside the namespaces.
pub fn addr(i: usize) -> String {
    format!("10.213.0.{}", i + 1)
}

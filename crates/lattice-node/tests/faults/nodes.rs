//! Real `lattice node` processes, one per namespace, configured with env variables as a
//! user configures them, and a small HTTP/1.1 client that reaches their API through the
//! namespace's agent.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lattice_node::NodeKey;
use serde_json::Value;

use super::agent::Agent;
use super::netns::{self, HTTP_PORT, Net, P2P_PORT};

const LATTICE: &str = env!("CARGO_BIN_EXE_lattice");
pub const TOKEN: &str = "fault-suite-token-0123456789";
/// Where each node listens for P2P itself; only its agent's relay connects there.
const NODE_P2P_PORT: u16 = 7601;

/// The timers of one cluster, compressed to seconds (written to the nodes' env as
/// milliseconds).
#[derive(Clone, Debug)]
pub struct Timers {
    pub heartbeat: Duration,
    pub peer_timeout: Duration,
    pub fallback_after: Duration,
    pub http_poll: Duration,
}

impl Timers {
    pub fn fast(peer_timeout: Duration) -> Timers {
        Timers {
            heartbeat: Duration::from_millis(250),
            peer_timeout,
            fallback_after: Duration::from_secs(2),
            http_poll: Duration::from_millis(500),
        }
    }

    /// The bound from a silent drop to the HTTP fallback.
    pub fn fallback_bound(&self) -> Duration {
        self.peer_timeout + self.fallback_after + 2 * self.heartbeat
    }
}

fn ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

pub struct Node {
    pub index: usize,
    pub ns: String,
    pub dir: PathBuf,
    pub env: Vec<(String, String)>,
    pub child: Option<Child>,
    pub agent: Agent,
    pub starts: usize,
}

impl Node {
    pub fn http_addr(&self) -> String {
        format!("{}:{HTTP_PORT}", netns::addr(self.index))
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.join("node.log"))
            .expect("the node's log opens");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns, LATTICE, "node"])
            .current_dir(&self.dir)
            .env_clear()
            .env("HOME", &self.dir)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("lattice node starts");
        self.child = Some(child);
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the node runs").id()
    }

    pub fn signal(&self, sig: &str) {
        netns::run("kill", &[&format!("-{sig}"), &self.pid().to_string()])
            .unwrap_or_else(|e| panic!("signalling node {}: {e}", self.index));
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart of a running node");
        self.spawn();
    }

    /// The last lines of the node's log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// One HTTP request to this node's API; `Ok((status, body))`.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        timeout: Duration,
    ) -> Result<(u16, String), String> {
        http_via(
            self.agent.socket_path(),
            &self.http_addr(),
            method,
            path,
            body,
            timeout,
        )
    }

    pub fn status(&self) -> Result<Value, String> {
        let (code, body) = self.request(
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

    /// Which of `ids` this node does not hold: the newest page first, then one lookup per
    /// id the page did not include.
    pub fn missing(&self, ids: &BTreeSet<String>) -> Result<Vec<String>, String> {
        let (code, body) = self.request(
            "GET",
            "/api/lattice/entries?limit=1000",
            None,
            Duration::from_secs(5),
        )?;
        if code != 200 {
            return Err(format!("entries answered {code}"));
        }
        let v: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
        let listed: BTreeSet<String> = v["entries"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["id"].as_str().map(str::to_string))
            .collect();
        let mut missing = Vec::new();
        for id in ids.iter().filter(|id| !listed.contains(*id)) {
            let (code, _) = self.request(
                "GET",
                &format!("/api/lattice/entries/{id}"),
                None,
                Duration::from_secs(2),
            )?;
            match code {
                200 => {}
                404 => missing.push(id.clone()),
                other => return Err(format!("entry lookup answered {other}")),
            }
        }
        Ok(missing)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // SIGKILL ends a stopped process too.
        self.kill();
    }
}

/// Nodes in namespaces, each naming all others as bootstrap peers and HTTP neighbours.
/// Field order matters: nodes (and agents) go before the namespaces are deleted.
pub struct Cluster {
    pub nodes: Vec<Node>,
    /// Every status read (by the sampler or by a wait) adds to it.
    pub history: std::sync::Arc<super::checker::History>,
    pub timers: Timers,
    pub net: Net,
    /// Holds the nodes' data directories and the agents' sockets; removed last.
    _dir: tempfile::TempDir,
}

impl Cluster {
    pub fn start(n: usize, timers: Timers) -> Cluster {
        let net = Net::create(n).unwrap_or_else(|e| panic!("creating namespaces: {e}"));
        let dir = tempfile::tempdir().expect("a temp dir");
        let keys: Vec<NodeKey> = (0..n).map(|_| NodeKey::generate().unwrap()).collect();
        let mut nodes = Vec::new();
        for i in 0..n {
            let node_dir = dir.path().join(format!("n{i}"));
            std::fs::create_dir_all(&node_dir).unwrap();
            let others = (0..n).filter(|&j| j != i);
            let bootstrap: Vec<String> = others
                .clone()
                .map(|j| {
                    format!(
                        "/ip4/{}/tcp/{P2P_PORT}/p2p/{}",
                        netns::addr(j),
                        keys[j].peer_id()
                    )
                })
                .collect();
            let neighbors: Vec<String> = others
                .map(|j| format!("http://{}:{HTTP_PORT}", netns::addr(j)))
                .collect();
            let env: Vec<(String, String)> = [
                ("LATTICE_P2P_KEY", keys[i].to_base64()),
                (
                    "LATTICE_DATA_DIR",
                    node_dir.join("data").display().to_string(),
                ),
                (
                    "LATTICE_P2P_LISTEN",
                    format!("/ip4/127.0.0.1/tcp/{NODE_P2P_PORT}"),
                ),
                (
                    "LATTICE_HTTP_LISTEN",
                    format!("{}:{HTTP_PORT}", netns::addr(i)),
                ),
                ("LATTICE_BOOTSTRAP", bootstrap.join(",")),
                ("LATTICE_HTTP_NEIGHBORS", neighbors.join(",")),
                ("LATTICE_API_TOKEN", TOKEN.to_string()),
                ("LATTICE_MODE", "auto".to_string()),
                ("LATTICE_HEARTBEAT", ms(timers.heartbeat)),
                ("LATTICE_PEER_TIMEOUT", ms(timers.peer_timeout)),
                ("LATTICE_FALLBACK_AFTER", ms(timers.fallback_after)),
                ("LATTICE_HTTP_POLL", ms(timers.http_poll)),
                ("RUST_LOG", "info".to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            let listen: SocketAddr = format!("{}:{P2P_PORT}", netns::addr(i)).parse().unwrap();
            let target: SocketAddr = format!("127.0.0.1:{NODE_P2P_PORT}").parse().unwrap();
            let agent = super::agent::Agent::start(
                &net.nodes[i],
                &dir.path().join(format!("agent{i}.sock")),
                listen,
                target,
            );
            let mut node = Node {
                index: i,
                ns: net.nodes[i].clone(),
                dir: node_dir,
                env,
                child: None,
                agent,
                starts: 0,
            };
            node.spawn();
            nodes.push(node);
        }
        Cluster {
            nodes,
            history: super::checker::History::new(n),
            timers,
            net,
            _dir: dir,
        }
    }

    /// Every node's status, `None` for one that does not answer.
    pub fn statuses(&self) -> Vec<Option<Value>> {
        let st: Vec<Option<Value>> = self.nodes.iter().map(|n| n.status().ok()).collect();
        for (i, s) in st.iter().enumerate() {
            if let Some(s) = s {
                self.history.record_status(i, s);
            }
        }
        st
    }

    /// Waits until `cond` holds on all statuses, up to `limit`; the time it took.
    pub fn wait_until(
        &self,
        what: &str,
        limit: Duration,
        mut cond: impl FnMut(&[Value]) -> bool,
    ) -> Result<Duration, String> {
        let start = Instant::now();
        let mut last = Vec::new();
        loop {
            let st = self.statuses();
            if st.iter().all(Option::is_some) {
                let st: Vec<Value> = st.into_iter().flatten().collect();
                if cond(&st) {
                    return Ok(start.elapsed());
                }
                last = st;
            }
            if start.elapsed() > limit {
                return Err(format!(
                    "{what}: not within {limit:?}; last statuses:\n{}",
                    last.iter().map(summary).collect::<Vec<_>>().join("\n")
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The logs' tails, for a failure message.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| {
                format!(
                    "--- node {} log (last 25 lines):\n{}",
                    n.index,
                    n.log_tail(25)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The status fields a failure message needs, on one line.
pub fn summary(s: &Value) -> String {
    let neighbors: Vec<String> = s["neighbors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| format!("{}={}", n["url"], n["health"]))
        .collect();
    format!(
        "{} sync_mode={} peer_count={} peers={} entries={} root={} fallback_since={} neighbors=[{}] last_transition={}",
        s["node"]["http_listen"],
        s["sync_mode"],
        s["peer_count"],
        s["peers"].as_array().map_or(0, Vec::len),
        s["entry_count"],
        s["merkle_root"]
            .as_str()
            .map_or("?", |r| &r[..r.len().min(12)]),
        s["fallback_active_since_ms"],
        neighbors.join(" "),
        s["last_transition"],
    )
}

/// Every node in P2P mode with all others as live peers, and the same root.
pub fn converged_on_p2p(st: &[Value]) -> bool {
    let n = st.len() as u64;
    st.iter()
        .all(|s| s["sync_mode"] == "P2P" && s["peer_count"].as_u64() == Some(n - 1))
        && same_root(st)
}

pub fn same_root(st: &[Value]) -> bool {
    st.windows(2).all(|w| {
        w[0]["merkle_root"] == w[1]["merkle_root"] && w[0]["entry_count"] == w[1]["entry_count"]
    })
}

/// Writes an entry through the agent at `socket`; the id when the node acknowledged it
/// (201).
pub fn put_via(socket: &Path, addr: &str, payload: &Value) -> Result<String, String> {
    let body = serde_json::json!({ "payload": payload }).to_string();
    let (code, text) = http_via(
        socket,
        addr,
        "POST",
        "/api/lattice/entries",
        Some(&body),
        Duration::from_secs(2),
    )?;
    if code != 201 {
        return Err(format!("put answered {code}: {text}"));
    }
    let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    v["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("201 without an id: {text}"))
}

/// A minimal HTTP/1.1 client over an agent's tunnel (one request per connection).
pub fn http_via(
    socket: &Path,
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    timeout: Duration,
) -> Result<(u16, String), String> {
    let deadline = Instant::now() + timeout;
    let mut s = super::agent::connect(socket, addr, timeout)?;
    let body = body.unwrap_or("");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {TOKEN}\r\n"
    );
    if method == "POST" {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes())
        .map_err(|e| format!("{method} {path}: {e}"))?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("{method} {path}: timed out after {timeout:?}"));
        }
        s.set_read_timeout(Some(left)).ok();
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("{method} {path}: {e}")),
        }
        if raw.len() > 8 * 1024 * 1024 {
            return Err(format!("{method} {path}: answer over 8 MiB"));
        }
    }
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{method} {path}: no complete answer ({} bytes)", raw.len()))?;
    let code: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("{method} {path}: bad status line"))?;
    let chunked = head
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Ok((code, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

//! What the suite records while faults run, and the checks over it: a history of writes
//! (every acknowledged id, by node), and each node's sync-mode transitions as its own
//! status reported them (`last_transition`, sampled often enough that none is missed
//! between two samples at these timers).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value, json};

use super::nodes::{Cluster, Node};

/// The wall clock in unix ms, the clock the nodes stamp transitions with.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

/// One transition as a node reported it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Transition {
    pub at_ms: u64,
    pub from: String,
    pub to: String,
    pub reason: String,
}

/// Everything acknowledged, and every transition seen, shared with the sampler threads.
#[derive(Default)]
pub struct History {
    /// id -> the node that acknowledged it (201).
    pub acked: Mutex<BTreeMap<String, usize>>,
    pub failed_writes: Mutex<usize>,
    pub transitions: Mutex<Vec<BTreeSet<Transition>>>,
}

impl History {
    pub fn new(n: usize) -> Arc<History> {
        let h = History::default();
        *h.transitions.lock().unwrap() = vec![BTreeSet::new(); n];
        Arc::new(h)
    }

    pub fn record_status(&self, node: usize, s: &Value) {
        let t = &s["last_transition"];
        if t.is_null() {
            return;
        }
        let tr = Transition {
            at_ms: t["at_ms"].as_u64().unwrap_or(0),
            from: t["from"].as_str().unwrap_or("").to_string(),
            to: t["to"].as_str().unwrap_or("").to_string(),
            reason: t["reason"].as_str().unwrap_or("").to_string(),
        };
        self.transitions.lock().unwrap()[node].insert(tr);
    }

    /// Transitions of `node` stamped in `[from_ms, to_ms]`.
    pub fn transitions_between(&self, node: usize, from_ms: u64, to_ms: u64) -> Vec<Transition> {
        self.transitions.lock().unwrap()[node]
            .iter()
            .filter(|t| t.at_ms >= from_ms && t.at_ms <= to_ms)
            .cloned()
            .collect()
    }

    pub fn acked_ids(&self) -> BTreeSet<String> {
        self.acked.lock().unwrap().keys().cloned().collect()
    }

    pub fn acked_count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }
}

/// Background threads: one sampling every node's status, one writing entries round-robin
/// to the nodes marked writable. Both stop on drop; both are bounded in count too.
pub struct Recorder {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

const SAMPLE_EVERY: Duration = Duration::from_millis(100);
const WRITE_EVERY: Duration = Duration::from_millis(150);
/// Upper bounds on the work of one recorder, whatever happens.
const MAX_SAMPLES: usize = 20_000;
const MAX_WRITES: usize = 2_000;

impl Recorder {
    /// The threads take each node's agent socket and address, not the cluster itself.
    pub fn start(cluster: &Cluster, writable: Arc<Mutex<Vec<bool>>>, tag: u64) -> Recorder {
        let history = cluster.history.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let targets: Vec<Target> = cluster.nodes.iter().map(Target::of).collect();
        {
            let (stop, history, targets) = (stop.clone(), history.clone(), targets.clone());
            threads.push(std::thread::spawn(move || {
                for _ in 0..MAX_SAMPLES {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    for (i, t) in targets.iter().enumerate() {
                        if let Ok(s) = t.status() {
                            history.record_status(i, &s);
                        }
                    }
                    std::thread::sleep(SAMPLE_EVERY);
                }
            }));
        }
        {
            let stop = stop.clone();
            threads.push(std::thread::spawn(move || {
                for n in 0..MAX_WRITES {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let i = n % targets.len();
                    if writable.lock().unwrap()[i] {
                        let payload = json!({ "schedule": tag, "n": n, "via": i });
                        match targets[i].put(&payload) {
                            Ok(id) => {
                                history.acked.lock().unwrap().insert(id, i);
                            }
                            Err(_) => *history.failed_writes.lock().unwrap() += 1,
                        }
                    }
                    std::thread::sleep(WRITE_EVERY);
                }
            }));
        }
        Recorder { stop, threads }
    }

    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.halt();
    }
}

/// A burst of writes to one node, as fast as it answers, until a write fails (it was
/// killed) or 500 writes.
pub struct Burst {
    /// Writes acknowledged so far.
    pub acked: Arc<std::sync::atomic::AtomicUsize>,
    /// The acknowledged count and the first failure, if any.
    pub done: JoinHandle<(usize, Option<String>)>,
}

pub fn write_burst(node: &Node, history: &Arc<History>, tag: u64) -> Burst {
    let target = Target::of(node);
    let via = node.index;
    let history = history.clone();
    let acked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = acked.clone();
    let done = std::thread::spawn(move || {
        for n in 0..500 {
            match target.put(&json!({ "burst": tag, "n": n })) {
                Ok(id) => {
                    history.acked.lock().unwrap().insert(id, via);
                    count.fetch_add(1, Ordering::SeqCst);
                }
                Err(e) => {
                    *history.failed_writes.lock().unwrap() += 1;
                    return (count.load(Ordering::SeqCst), Some(e));
                }
            }
        }
        (count.load(Ordering::SeqCst), None)
    });
    Burst { acked, done }
}

/// What a thread needs to reach one node: its agent's socket and its address.
#[derive(Clone)]
pub struct Target {
    node: Arc<NodeRef>,
}

struct NodeRef {
    socket: std::path::PathBuf,
    addr: String,
}

impl Target {
    fn of(n: &Node) -> Target {
        Target {
            node: Arc::new(NodeRef {
                socket: n.agent.socket_path().to_path_buf(),
                addr: n.http_addr(),
            }),
        }
    }

    fn status(&self) -> Result<Value, String> {
        let (code, body) = super::nodes::http_via(
            &self.node.socket,
            &self.node.addr,
            "GET",
            "/api/lattice/p2p/status",
            None,
            Duration::from_secs(1),
        )?;
        if code != 200 {
            return Err(format!("status {code}"));
        }
        serde_json::from_str(&body).map_err(|e| e.to_string())
    }

    fn put(&self, payload: &Value) -> Result<String, String> {
        super::nodes::put_via(&self.node.socket, &self.node.addr, payload)
    }
}

/// The figures a run prints at its end.
#[derive(Default, Debug)]
pub struct Figures {
    pub schedules: usize,
    pub failed: usize,
    pub faults: usize,
    pub acknowledged: usize,
    pub lost: usize,
    pub worst_converge: Duration,
    pub worst_p2p_restore: Duration,
    pub worst_fallback: Option<Duration>,
}

impl Figures {
    /// Written straight to stdout, past the test harness's capture, so the figures show in
    /// a plain `cargo test` run too.
    pub fn print(&self, what: &str) {
        use std::io::Write;
        let _ = writeln!(
            std::io::stdout(),
            "fault suite figures ({what}): schedules run {} ({} failed), faults injected {}, entries acknowledged {}, entries lost {}, worst time to converge after heal {:.1} s, worst time to P2P after heal {:.1} s, worst time to fallback after a drop {}",
            self.schedules,
            self.failed,
            self.faults,
            self.acknowledged,
            self.lost,
            self.worst_converge.as_secs_f64(),
            self.worst_p2p_restore.as_secs_f64(),
            self.worst_fallback
                .map_or("-".to_string(), |d| format!("{:.1} s", d.as_secs_f64())),
        );
    }
}

/// What the final check of a history found.
pub struct Verdict {
    /// How long the roots took to become equal, if they did within the bound.
    pub converged: Option<Duration>,
    /// The most acknowledged entries any one node lacks (must be 0).
    pub lost: usize,
    /// Everything wrong, one line each; empty when all is well.
    pub problems: Vec<String>,
}

/// The final check of a history: after the final heal, every node's root and count are
/// equal (within `bound`), and every acknowledged id is on every node (looked up on
/// each, whether or not the roots agree).
pub fn check_history(cluster: &Cluster, bound: Duration) -> Verdict {
    let history = &cluster.history;
    let mut problems = Vec::new();
    let converged = cluster
        .wait_until(
            "roots equal after the final heal",
            bound,
            super::nodes::same_root,
        )
        .map_err(|e| problems.push(e))
        .ok();
    let acked = history.acked_ids();
    if acked.is_empty() {
        problems.push("no write was acknowledged at all: nothing to check".into());
    }
    let mut lost = 0;
    for n in &cluster.nodes {
        match n.missing(&acked) {
            Ok(missing) if missing.is_empty() => {}
            Ok(missing) => {
                lost = lost.max(missing.len());
                problems.push(format!(
                    "node {} lacks {} of {} acknowledged entries, e.g. {}",
                    n.index,
                    missing.len(),
                    acked.len(),
                    missing[0]
                ));
            }
            Err(e) => problems.push(format!("node {}: cannot list its entries: {e}", n.index)),
        }
    }
    Verdict {
        converged,
        lost,
        problems,
    }
}

//! The nemesis: faults, what each is expected to do to the lungs, seeded random
//! schedules of them, and running one fault against a cluster with its checks.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::checker::{Figures, now_ms};
use super::netns::{P2P_PORT, addr};
use super::nodes::{Cluster, converged_on_p2p, same_root};

/// P2P restored on every node (full mesh) within this after a heal (the issue's figure),
/// and roots equal on every node within this after the heal.
pub const RESTORE_BOUND: Duration = Duration::from_secs(15);
pub const CONVERGE_BOUND: Duration = Duration::from_secs(15);
/// Delay the relays add in each direction under `Latency` (200 ms round trip).
const LATENCY: Duration = Duration::from_millis(100);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Silent drop of the P2P port on every node.
    DropAll,
    /// Silent drop of the P2P port on one node: it is isolated, the others keep each other.
    Isolate(usize),
    /// P2P packets from the first node to the second vanish; the other way they pass.
    OneWay(usize, usize),
    /// The P2P port of one node answers with a TCP reset.
    Reject(usize),
    /// One node cut off entirely, P2P and HTTP.
    Cut(usize),
    /// 5 % of P2P packets dropped at every node.
    Loss,
    /// 100 ms added to each direction of every P2P connection.
    Latency,
    /// SIGSTOP of one node for longer than the peer timeout, then SIGCONT.
    Pause(usize),
    /// SIGKILL of one node while entries are being written, then a restart on its data.
    Kill(usize),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::DropAll => write!(f, "silent drop of P2P on all nodes"),
            Fault::Isolate(i) => write!(f, "silent drop of P2P isolating node {i}"),
            Fault::OneWay(a, b) => write!(f, "silent drop of P2P from node {a} to node {b} only"),
            Fault::Reject(i) => write!(f, "TCP reset of P2P at node {i}"),
            Fault::Cut(i) => write!(f, "node {i} cut off entirely (P2P and HTTP)"),
            Fault::Loss => write!(f, "5% loss of P2P packets on every node"),
            Fault::Latency => write!(
                f,
                "{}ms latency each way on every P2P link",
                LATENCY.as_millis()
            ),
            Fault::Pause(i) => write!(f, "SIGSTOP of node {i}, then SIGCONT"),
            Fault::Kill(i) => write!(f, "SIGKILL of node {i} during writes, then restart"),
        }
    }
}

/// What a fault must do to one node's lungs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Falls back to HTTP within the bound, returns to P2P after the heal.
    Fallback,
    /// No transition at all while the fault lasts and until P2P is back.
    Stay,
    /// Not checked (the node itself was stopped or killed).
    Any,
}

impl Fault {
    pub fn expect(&self, node: usize, n: usize) -> Expect {
        match *self {
            Fault::DropAll => Expect::Fallback,
            Fault::Isolate(i) | Fault::Reject(i) | Fault::Cut(i) if i == node => Expect::Fallback,
            Fault::Isolate(_) | Fault::Reject(_) | Fault::Cut(_) => Expect::Stay,
            // Each keeps the third node.
            Fault::OneWay(..) if n >= 3 => Expect::Stay,
            Fault::OneWay(..) => Expect::Any,
            Fault::Loss | Fault::Latency => Expect::Stay,
            Fault::Pause(i) | Fault::Kill(i) if i == node => Expect::Any,
            Fault::Pause(_) | Fault::Kill(_) => Expect::Stay,
        }
    }

    /// Whether this fault needs a peer timeout of at least 3 s to be survivable.
    pub fn is_degradation(&self) -> bool {
        matches!(self, Fault::Loss | Fault::Latency)
    }

    /// The nft rules (input, output) the fault puts on node `node`.
    fn rules(&self, node: usize) -> (Vec<String>, Vec<String>) {
        let both = |verdict: &str| {
            vec![
                format!("tcp dport {P2P_PORT} counter {verdict}"),
                format!("tcp sport {P2P_PORT} counter {verdict}"),
            ]
        };
        match *self {
            Fault::DropAll => (both("drop"), both("drop")),
            Fault::Isolate(i) if i == node => (both("drop"), both("drop")),
            Fault::Reject(i) if i == node => {
                // The resets nft makes pass the hooks too (to the peer through output, to
                // our own sockets through input): let them through.
                let mut rules = vec!["tcp flags & rst == rst accept".to_string()];
                rules.extend(both("reject with tcp reset"));
                (rules.clone(), rules)
            }
            Fault::OneWay(a, b) if a == node => (
                vec![],
                vec![
                    format!("ip daddr {} tcp dport {P2P_PORT} counter drop", addr(b)),
                    format!("ip daddr {} tcp sport {P2P_PORT} counter drop", addr(b)),
                ],
            ),
            Fault::Cut(i) if i == node => (
                vec![r#"iifname "eth0" counter drop"#.into()],
                vec![r#"oifname "eth0" counter drop"#.into()],
            ),
            Fault::Loss => (both("numgen random mod 100 < 5 counter drop"), vec![]),
            _ => (vec![], vec![]),
        }
    }
}

/// The names of the fault kinds, for `LATTICE_FAULT_KINDS`, in [`Schedule::generate`]'s
/// order.
pub const KINDS: [&str; 9] = [
    "drop-all", "isolate", "one-way", "reject", "cut", "loss", "latency", "pause", "kill",
];

/// Parses `LATTICE_FAULT_KINDS` (comma-separated names from [`KINDS`]); all when unset.
pub fn kinds_from(value: Option<&str>) -> Result<Vec<usize>, String> {
    let Some(v) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok((0..KINDS.len()).collect());
    };
    v.split(',')
        .map(|k| {
            KINDS.iter().position(|x| *x == k.trim()).ok_or_else(|| {
                format!(
                    "LATTICE_FAULT_KINDS: {k:?} is not one of {}",
                    KINDS.join(", ")
                )
            })
        })
        .collect()
}

/// A seeded schedule: the faults, in order, and the peer timeout they need.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub seed: u64,
    pub faults: Vec<Fault>,
}

impl Schedule {
    /// `kinds`: the fault kinds to draw from (indexes into [`KINDS`]).
    pub fn generate(seed: u64, n: usize, count: usize, kinds: &[usize]) -> Schedule {
        let mut rng = fastrand::Rng::with_seed(seed);
        let faults = (0..count)
            .map(|_| {
                let a = rng.usize(0..n);
                let b = (a + 1 + rng.usize(0..n - 1)) % n;
                match kinds[rng.usize(0..kinds.len())] {
                    0 => Fault::DropAll,
                    1 => Fault::Isolate(a),
                    2 => Fault::OneWay(a, b),
                    3 => Fault::Reject(a),
                    4 => Fault::Cut(a),
                    5 => Fault::Loss,
                    6 => Fault::Latency,
                    7 => Fault::Pause(a),
                    _ => Fault::Kill(a),
                }
            })
            .collect();
        Schedule { seed, faults }
    }

    pub fn peer_timeout(&self) -> Duration {
        if self.faults.iter().any(Fault::is_degradation) {
            Duration::from_secs(3)
        } else {
            Duration::from_secs(1)
        }
    }
}

/// Which nodes the background writer may write to (not one that is stopped or dead).
pub type Writable = Arc<Mutex<Vec<bool>>>;

fn set_writable(w: &Writable, v: bool) {
    w.lock().unwrap().iter_mut().for_each(|x| *x = v);
}

/// Runs one fault against a cluster that is converged on P2P, checks what it must do, heals
/// it and waits until the cluster is converged on P2P again.
pub fn run_fault(
    cluster: &mut Cluster,
    fault: Fault,
    writable: &Writable,
    figures: &mut Figures,
) -> Result<(), String> {
    let history = cluster.history.clone();
    let n = cluster.nodes.len();
    let timers = cluster.timers.clone();
    let bound = timers.fallback_bound();
    let fallback: Vec<usize> = (0..n)
        .filter(|&i| fault.expect(i, n) == Expect::Fallback)
        .collect();
    let mut start_ms = now_ms();
    let started = Instant::now();

    // Inject. A partition starts when the first rule is in place (nft has committed it
    // when it returns); the links of nodes whose rules come later are cut later still,
    // so timing from here never favours the node.
    let mut first = true;
    for i in 0..n {
        let (input, output) = fault.rules(i);
        if !input.is_empty() || !output.is_empty() {
            cluster.net.set_rules(i, &input, &output)?;
            if first {
                start_ms = now_ms();
                first = false;
            }
        }
    }
    match fault {
        Fault::Latency => cluster
            .nodes
            .iter()
            .for_each(|x| x.agent.set_delay(LATENCY)),
        Fault::Pause(i) => {
            writable.lock().unwrap()[i] = false;
            cluster.nodes[i].signal("STOP");
        }
        Fault::Kill(i) => {
            // A burst of writes to it, and the kill in the middle of the burst: some are
            // acknowledged just before it dies, some are in flight when it does.
            let burst = super::checker::write_burst(&cluster.nodes[i], &history, start_ms);
            let deadline = Instant::now() + Duration::from_secs(10);
            while burst.acked.load(std::sync::atomic::Ordering::SeqCst) < 3
                && !burst.done.is_finished()
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            writable.lock().unwrap()[i] = false;
            cluster.nodes[i].kill();
            let (acked, failure) = burst.done.join().expect("the burst writer does not panic");
            if acked < 3 || failure.is_none() {
                return Err(format!(
                    "{fault}: the kill did not land during writes ({acked} acknowledged before it, failure after it: {failure:?})"
                ));
            }
        }
        _ => {}
    }

    // While it lasts.
    if !fallback.is_empty() {
        let limit = bound + Duration::from_secs(3);
        let fb = fallback.clone();
        cluster.wait_until(&format!("{fault}: fallback on nodes {fb:?}"), limit, |st| {
            fb.iter().all(|&i| st[i]["sync_mode"] == "HTTP")
        })?;
        for &i in &fallback {
            let t = history_or_status_fallback(cluster, i, start_ms)?;
            let took = Duration::from_millis(t.saturating_sub(start_ms));
            if took > bound {
                return Err(format!(
                    "{fault}: node {i} fell back {took:?} after the drop, over the bound {bound:?}"
                ));
            }
            figures.worst_fallback = Some(figures.worst_fallback.unwrap_or_default().max(took));
        }
        if !matches!(fault, Fault::Cut(_)) {
            // Entries written during the partition reach every node over HTTP (P2P is
            // still blackholed, so HTTP is the only way they can travel).
            std::thread::sleep(timers.http_poll * 2);
            set_writable(writable, false);
            let acked = history.acked_ids();
            cluster.wait_until(
                &format!("{fault}: entries written during the partition on every node"),
                CONVERGE_BOUND,
                same_root,
            )?;
            for x in &cluster.nodes {
                let missing = x.missing(&acked)?;
                if !missing.is_empty() {
                    return Err(format!(
                        "{fault}: during the partition node {} lacks {} acknowledged entries",
                        x.index,
                        missing.len()
                    ));
                }
            }
            set_writable(writable, true);
        } else {
            std::thread::sleep(timers.http_poll * 4);
        }
    } else {
        let hold = match fault {
            Fault::Pause(_) => 2 * timers.peer_timeout + Duration::from_millis(500),
            Fault::Kill(_) => Duration::from_secs(1),
            // Long enough for a false fallback to show.
            _ => timers.peer_timeout + timers.fallback_after + Duration::from_secs(2),
        };
        if fault == Fault::Latency {
            let felt = latency_felt(cluster, hold);
            if felt < LATENCY * 2 {
                return Err(format!(
                    "{fault}: a node saw no ping round trip of {:?} or more (its largest was {felt:?}): the delay did not reach the pings, or they are rarer than the {hold:?} the fault lasts",
                    LATENCY * 2
                ));
            }
        } else {
            std::thread::sleep(hold);
        }
    }

    // The fault was real: its rules matched packets.
    let mut matched = 0;
    let mut with_rules = false;
    for i in 0..n {
        let (input, output) = fault.rules(i);
        if !input.is_empty() || !output.is_empty() {
            with_rules = true;
            matched += cluster.net.packets(i)?;
        }
    }
    if with_rules && matched == 0 {
        return Err(format!("{fault}: its nftables rules matched no packet"));
    }

    // Heal.
    set_writable(writable, false);
    for i in 0..n {
        let (input, output) = fault.rules(i);
        if !input.is_empty() || !output.is_empty() {
            cluster.net.heal(i)?;
        }
    }
    match fault {
        Fault::Latency => cluster
            .nodes
            .iter()
            .for_each(|x| x.agent.set_delay(Duration::ZERO)),
        Fault::Pause(i) => cluster.nodes[i].signal("CONT"),
        Fault::Kill(i) => cluster.nodes[i].restart(),
        _ => {}
    }
    let healed = Instant::now();
    let restored = cluster.wait_until(
        &format!("{fault}: P2P restored on every node (full mesh) after the heal"),
        RESTORE_BOUND,
        |st| {
            let n = st.len() as u64;
            st.iter()
                .all(|s| s["sync_mode"] == "P2P" && s["peer_count"].as_u64() == Some(n - 1))
        },
    )?;
    cluster.wait_until(
        &format!("{fault}: roots equal within {CONVERGE_BOUND:?} of the heal"),
        CONVERGE_BOUND.saturating_sub(healed.elapsed()),
        converged_on_p2p,
    )?;
    let to_converge = healed.elapsed();
    figures.worst_p2p_restore = figures.worst_p2p_restore.max(restored);
    figures.worst_converge = figures.worst_converge.max(to_converge);
    let end_ms = now_ms();

    // The transitions are the expected ones (the latest one read now, so the sampler's
    // interval cannot hide it).
    cluster.statuses();
    for i in 0..n {
        let seen = history.transitions_between(i, start_ms, end_ms);
        match fault.expect(i, n) {
            Expect::Stay if !seen.is_empty() => {
                return Err(format!(
                    "{fault}: node {i} must not change lungs, but did: {seen:?}"
                ));
            }
            Expect::Fallback => {
                let back = seen.iter().any(|t| t.to == "P2P");
                if !back {
                    return Err(format!(
                        "{fault}: node {i} shows no return to P2P after the heal: {seen:?}"
                    ));
                }
            }
            _ => {}
        }
    }
    set_writable(writable, true);
    figures.faults += 1;
    println!(
        "  {fault}: ok in {:.1} s (P2P back {:.1} s after the heal, converged {:.1} s after)",
        started.elapsed().as_secs_f64(),
        restored.as_secs_f64(),
        to_converge.as_secs_f64()
    );
    Ok(())
}

/// Waits `hold`, sampling the peers' ping round trips; the smallest over the nodes of the
/// largest round trip each saw (so every node felt at least that).
fn latency_felt(cluster: &Cluster, hold: Duration) -> Duration {
    let start = Instant::now();
    let mut worst_per_node = vec![0f64; cluster.nodes.len()];
    while start.elapsed() < hold {
        for (i, s) in cluster.statuses().iter().enumerate() {
            let rtt = s
                .iter()
                .flat_map(|s| s["peers"].as_array().into_iter().flatten())
                .filter_map(|p| p["rtt_ms"].as_f64())
                .fold(0f64, f64::max);
            worst_per_node[i] = worst_per_node[i].max(rtt);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let felt = worst_per_node.iter().copied().fold(f64::INFINITY, f64::min);
    Duration::from_secs_f64(felt.max(0.0) / 1000.0)
}

/// When node `i` switched to HTTP after `start_ms`, from the sampled transitions, or from
/// its status if a later transition already replaced it there.
fn history_or_status_fallback(cluster: &Cluster, i: usize, start_ms: u64) -> Result<u64, String> {
    let history = &cluster.history;
    if let Some(t) = history
        .transitions_between(i, start_ms, u64::MAX)
        .into_iter()
        .find(|t| t.to == "HTTP")
    {
        return Ok(t.at_ms);
    }
    let s = cluster.nodes[i].status()?;
    history.record_status(i, &s);
    s["fallback_active_since_ms"]
        .as_u64()
        .ok_or_else(|| format!("node {i} is on HTTP but reports no fallback time"))
}

//! A local cluster for demonstrations: N nodes in one process on loopback, connected over
//! P2P and listing each other as HTTP neighbours, whose P2P can be cut and restored for
//! real. `lattice demo` and the desktop app both use it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::api::{self as server, ServerOptions};
use crate::config::{Config, Overrides};
use crate::ledger::Appended;
use crate::node::{NodeError, NodeHandle, NodeOptions};
use crate::status::{EventKind, Lung, Status};
use crate::sync::lungs::LungEvent;

mod controller;
pub use controller::{
    CutCounter, TRAFFIC_MAX_ENTRIES, TRAFFIC_MAX_PER_SECOND, TRAFFIC_PER_SECOND, TrafficOptions,
    TrafficStatus,
};
use controller::{CutTracker, Traffic};

#[derive(Clone, Debug)]
pub struct DemoOptions {
    pub nodes: usize,
    /// Compressed timers: heartbeat 500ms, fallback 6s, poll 1s.
    pub fast: bool,
    /// Where the nodes keep their ledgers (one subdirectory each).
    pub data_dir: PathBuf,
}

pub struct DemoNode {
    pub name: String,
    pub handle: NodeHandle,
    pub http: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

pub struct DemoCluster {
    pub nodes: Vec<DemoNode>,
    pub fallback_after: Duration,
    /// The automatic traffic while it runs (or ran: it stops by itself when bounded out).
    traffic: std::sync::Mutex<Option<Traffic>>,
    /// The last cut's counter: from "cut" on, kept after the restore until the next cut.
    cut: std::sync::Mutex<Option<CutTracker>>,
    /// Numbers the sample entries, so each one differs.
    samples: std::sync::atomic::AtomicU64,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("there is no demo node {0}")]
    NoSuchNode(usize),
    #[error(
        "demo traffic is 1 to {max} entries a second and at least one entry, not {per_second}/s for {max_entries}",
        max = TRAFFIC_MAX_PER_SECOND
    )]
    InvalidTraffic { per_second: u32, max_entries: u64 },
}

fn timers(fast: bool) -> [(&'static str, &'static str); 3] {
    if fast {
        [
            ("LATTICE_HEARTBEAT", "500ms"),
            ("LATTICE_FALLBACK_AFTER", "6s"),
            ("LATTICE_HTTP_POLL", "1s"),
        ]
    } else {
        [
            ("LATTICE_HEARTBEAT", "5s"),
            ("LATTICE_FALLBACK_AFTER", "60s"),
            ("LATTICE_HTTP_POLL", "10s"),
        ]
    }
}

impl DemoCluster {
    /// Starts the nodes one by one; each bootstraps to every node before it.
    pub async fn start(options: &DemoOptions) -> Result<DemoCluster, DemoError> {
        let n = options.nodes.max(1);
        let mut listeners = Vec::new();
        for _ in 0..n {
            listeners.push(tokio::net::TcpListener::bind("127.0.0.1:0").await?);
        }
        let urls: Vec<String> = listeners
            .iter()
            .map(|l| l.local_addr().map(|a| format!("http://{a}")))
            .collect::<Result<_, _>>()?;
        // A fresh closed ledger each time: only these nodes may write, so a demo never
        // writes into a real ledger and no outside node merges with it.
        let (genesis, keys) = crate::ledger::genesis::demo_ledger(n)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut nodes: Vec<DemoNode> = Vec::new();
        let mut fallback_after = Duration::ZERO;
        for (i, listener) in listeners.into_iter().enumerate() {
            let mut bootstrap = Vec::new();
            for earlier in &nodes {
                bootstrap.extend(wait_for_p2p_addr(&earlier.handle).await);
            }
            let neighbors: Vec<&str> = urls
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, u)| u.as_str())
                .collect();
            let http = listener.local_addr()?;
            let mut vars: Vec<(String, String)> = timers(options.fast)
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            vars.extend([
                ("LATTICE_P2P_KEY".into(), keys[i].to_base64()),
                ("LATTICE_LEDGER".into(), genesis.id().to_hex()),
                ("LATTICE_GENESIS".into(), genesis.to_base64()),
                ("LATTICE_P2P_LISTEN".into(), "/ip4/127.0.0.1/tcp/0".into()),
                ("LATTICE_BOOTSTRAP".into(), bootstrap.join(",")),
                ("LATTICE_HTTP_LISTEN".into(), http.to_string()),
                ("LATTICE_HTTP_NEIGHBORS".into(), neighbors.join(",")),
                ("LATTICE_NODE_NAME".into(), branch_name(i)),
            ]);
            let overrides = Overrides {
                data_dir: Some(options.data_dir.join(format!("node-{}", i + 1))),
                ..Overrides::default()
            };
            let config = Config::from_pairs(&vars, &overrides)?;
            fallback_after = config.fallback_after;
            let node_options = if options.fast {
                NodeOptions::fast()
            } else {
                NodeOptions::default()
            };
            let handle = NodeHandle::start(config, node_options).await?;
            // Each demo node serves the dashboard too, so a browser can watch any of them.
            let server_options = ServerOptions {
                ui_dir: server::find_ui_dir(),
                ..ServerOptions::default()
            };
            let app = server::router(handle.clone(), &server_options);
            let server = tokio::spawn(server::serve(
                listener,
                app,
                server_options,
                handle.shutdown_token(),
            ));
            nodes.push(DemoNode {
                name: branch_name(i),
                handle,
                http,
                server,
            });
        }
        Ok(DemoCluster {
            nodes,
            fallback_after,
            traffic: std::sync::Mutex::new(None),
            cut: std::sync::Mutex::new(None),
            samples: std::sync::atomic::AtomicU64::new(0),
        })
    }

    pub fn statuses(&self) -> Vec<Status> {
        self.nodes.iter().map(|n| n.handle.status()).collect()
    }

    /// Cuts P2P on every node: connections closed, new ones refused. A new cut (not one
    /// already running) starts a new cut counter.
    pub async fn cut_p2p(&self) -> Result<(), NodeError> {
        {
            let mut cut = self.cut.lock().expect("not poisoned");
            if cut.as_ref().is_none_or(|c| c.is_restored()) {
                *cut = Some(CutTracker::start(&self.stores()));
            }
        }
        for n in &self.nodes {
            n.handle.set_p2p_blocked(true).await?;
        }
        Ok(())
    }

    /// Restores P2P on every node; the cut counter stops counting new entries but keeps
    /// following where the cut's entries arrive.
    pub async fn restore_p2p(&self) -> Result<(), NodeError> {
        if let Some(cut) = self.cut.lock().expect("not poisoned").as_ref() {
            cut.restored();
        }
        for n in &self.nodes {
            n.handle.set_p2p_blocked(false).await?;
        }
        Ok(())
    }

    /// What the last cut did: entries written during it and on how many nodes they are.
    pub fn cut_counter(&self) -> Option<CutCounter> {
        let cut = self.cut.lock().expect("not poisoned");
        cut.as_ref().map(|c| c.counter(&self.stores()))
    }

    fn stores(&self) -> Vec<crate::ledger::Store> {
        self.nodes
            .iter()
            .map(|n| n.handle.store().clone())
            .collect()
    }

    /// Turns the automatic traffic on (a few entries a second, round-robin from every
    /// node, bounded) or off. Turning on what is on changes nothing; bad options are
    /// refused and change nothing.
    pub async fn set_traffic(
        &self,
        on: bool,
        options: TrafficOptions,
    ) -> Result<TrafficStatus, DemoError> {
        if on
            && (options.per_second == 0
                || options.per_second > TRAFFIC_MAX_PER_SECOND
                || options.max_entries == 0)
        {
            return Err(DemoError::InvalidTraffic {
                per_second: options.per_second,
                max_entries: options.max_entries,
            });
        }
        let stopping = {
            let mut traffic = self.traffic.lock().expect("not poisoned");
            match traffic.as_mut() {
                Some(t) if on && t.is_on() => None,
                Some(t) if !on => t.stop(),
                _ if on => {
                    let nodes = self
                        .nodes
                        .iter()
                        .map(|n| (n.name.clone(), n.handle.clone()))
                        .collect();
                    traffic
                        .replace(Traffic::spawn(nodes, options))
                        .and_then(|mut old| old.stop())
                }
                _ => None,
            }
        };
        if let Some(task) = stopping {
            let _ = task.await;
        }
        Ok(self.traffic())
    }

    pub fn traffic(&self) -> TrafficStatus {
        match self.traffic.lock().expect("not poisoned").as_ref() {
            Some(t) => t.status(),
            None => TrafficStatus {
                on: false,
                per_second: TRAFFIC_PER_SECOND,
                written: 0,
                max_entries: TRAFFIC_MAX_ENTRIES,
            },
        }
    }

    /// Writes one sample entry on node `index` (0-based), signed by that node.
    pub async fn write_sample(&self, index: usize) -> Result<Appended, DemoError> {
        let node = self
            .nodes
            .get(index)
            .ok_or(DemoError::NoSuchNode(index + 1))?;
        let n = self
            .samples
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let payload = serde_json::json!({ "demo": "sample", "from": node.name, "n": n });
        Ok(node.handle.put(&payload).await?)
    }

    pub fn roots_equal(&self) -> bool {
        let s = self.statuses();
        s.iter().all(|x| x.merkle_root == s[0].merkle_root)
    }

    pub async fn shutdown(self) {
        let traffic = self.traffic.lock().expect("not poisoned").take();
        if let Some(task) = traffic.and_then(|mut t| t.stop()) {
            let _ = task.await;
        }
        drop(self.cut.lock().expect("not poisoned").take());
        for n in &self.nodes {
            n.handle.shutdown_token().cancel();
        }
        for n in self.nodes {
            let _ = n.server.await;
            n.handle.shutdown().await;
        }
    }
}

/// Names an audience can follow: "Branch A", "Branch B", ... ("Branch 27" past Z).
pub fn branch_name(i: usize) -> String {
    match u8::try_from(i).ok().filter(|i| *i < 26) {
        Some(i) => format!("Branch {}", char::from(b'A' + i)),
        None => format!("Branch {}", i + 1),
    }
}

async fn wait_for_p2p_addr(node: &NodeHandle) -> Vec<String> {
    for _ in 0..500 {
        let addrs = node.p2p_addrs().await;
        if !addrs.is_empty() {
            return addrs;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Vec::new()
}

/// Plays the story unattended, printing each step, transition and root as it happens.
/// Returns Ok with the final root when every step happened and all roots ended equal.
pub async fn run_script(
    cluster: &DemoCluster,
    say: Arc<dyn Fn(String) + Send + Sync>,
) -> Result<String, String> {
    let started = Instant::now();
    let stamp = move || format!("[{:>6.2}s]", started.elapsed().as_secs_f64());
    let line = {
        let say = say.clone();
        move |text: String| say(format!("{} {text}", stamp()))
    };
    // Transitions, syncs and rejections, as they happen.
    for n in &cluster.nodes {
        let mut events = n.handle.subscribe_events();
        let (name, say) = (n.name.clone(), say.clone());
        tokio::spawn(async move {
            while let Ok(e) = events.recv().await {
                let text = match e.what {
                    EventKind::Lung {
                        event: LungEvent::Transition(t),
                    } => {
                        format!("{name}: {} -> {}: {}", t.from, t.to, t.reason)
                    }
                    EventKind::Lung {
                        event: LungEvent::PeerlessTimerStarted { .. },
                    } => {
                        format!("{name}: no P2P peers, fallback countdown started")
                    }
                    EventKind::SyncCompleted { lung, with, report }
                        if report.pulled + report.pushed > 0 =>
                    {
                        format!(
                            "{name}: {lung} sync with {}: pulled {}, pushed {} ({} bytes)",
                            shorten(&with),
                            report.pulled,
                            report.pushed,
                            report.bytes_sent + report.bytes_received
                        )
                    }
                    _ => continue,
                };
                say(format!(
                    "[{:>6.2}s]   {text}",
                    started.elapsed().as_secs_f64()
                ));
            }
        });
    }
    let step_limit = cluster.fallback_after + Duration::from_secs(30);
    let n = cluster.nodes.len();
    let all_lung = |lung: Lung| move |s: &[Status]| s.iter().all(|x| x.sync_mode == lung);
    let equal = |count: usize| {
        move |s: &[Status]| {
            s.iter()
                .all(|x| x.entry_count >= count && x.merkle_root == s[0].merkle_root)
        }
    };

    line(format!("{n} nodes started; HTTP APIs:"));
    for node in &cluster.nodes {
        say(format!(
            "           {}  http://{}/  {}",
            node.name,
            node.http,
            node.handle.peer_id()
        ));
    }
    line("step 1: waiting for every node to connect over P2P".into());
    let peers = n.saturating_sub(1);
    wait_until(cluster, "P2P connection", step_limit, move |s| {
        s.iter().all(|x| {
            x.peers.iter().filter(|p| p.info.sync_capable).count() >= peers
                && x.sync_mode == Lung::P2p
        })
    })
    .await?;
    line("step 1: all connected; sync over P2P".into());

    let base = cluster.statuses()[0].entry_count;
    for (i, node) in cluster.nodes.iter().enumerate().take(2) {
        let put = node
            .handle
            .put(&serde_json::json!({ "demo": "gossiped over P2P", "from": node.name, "n": i }))
            .await
            .map_err(|e| e.to_string())?;
        line(format!(
            "step 2: {} wrote entry {}",
            node.name,
            &put.id.to_hex()[..12]
        ));
    }
    wait_until(
        cluster,
        "P2P convergence",
        step_limit,
        equal(base + 2.min(n)),
    )
    .await?;
    wait_until(
        cluster,
        "P2P carrying sync",
        step_limit,
        all_lung(Lung::P2p),
    )
    .await?;
    line(format!(
        "step 2: entries reached every node over P2P; root {}",
        &cluster.statuses()[0].merkle_root[..16]
    ));

    cluster.cut_p2p().await.map_err(|e| e.to_string())?;
    line(format!(
        "step 3: P2P CUT on every node; HTTP takes over in {}s",
        cluster.fallback_after.as_secs_f64()
    ));
    wait_until(cluster, "HTTP fallback", step_limit, all_lung(Lung::Http)).await?;
    line("step 3: HTTP fallback active on every node".into());

    let base = cluster.statuses()[0].entry_count;
    for node in cluster.nodes.iter().skip(1).take(2) {
        let put = node
            .handle
            .put(&serde_json::json!({ "demo": "written while P2P is cut", "from": node.name }))
            .await
            .map_err(|e| e.to_string())?;
        line(format!(
            "step 4: {} wrote entry {} during the cut",
            node.name,
            &put.id.to_hex()[..12]
        ));
    }
    let written = n.saturating_sub(1).min(2);
    wait_until(
        cluster,
        "HTTP convergence",
        step_limit,
        equal(base + written),
    )
    .await?;
    line(format!(
        "step 4: entries still converged over HTTP; root {}",
        &cluster.statuses()[0].merkle_root[..16]
    ));

    cluster.restore_p2p().await.map_err(|e| e.to_string())?;
    line("step 5: P2P RESTORED on every node".into());
    wait_until(cluster, "P2P recovery", step_limit, move |s| {
        s.iter()
            .all(|x| x.sync_mode == Lung::P2p && !x.http_sync_enabled)
    })
    .await?;
    line("step 5: every node back on P2P; HTTP on standby".into());
    let base = cluster.statuses()[0].entry_count;
    cluster.nodes[0]
        .handle
        .put(&serde_json::json!({ "demo": "after recovery" }))
        .await
        .map_err(|e| e.to_string())?;
    wait_until(cluster, "final convergence", step_limit, equal(base + 1)).await?;
    let root = cluster.statuses()[0].merkle_root.clone();
    line(format!("step 6: all {n} roots equal: {root}"));
    Ok(root)
}

/// Waits until `cond` holds for the cluster's statuses, or fails naming the step.
async fn wait_until(
    cluster: &DemoCluster,
    what: &str,
    limit: Duration,
    cond: impl Fn(&[Status]) -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        if cond(&cluster.statuses()) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "step failed: {what} did not happen within {}s",
                limit.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn shorten(s: &str) -> String {
    if s.len() > 20 {
        format!("..{}", &s[s.len() - 8..])
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn cluster(nodes: usize) -> (DemoCluster, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let options = DemoOptions {
            nodes,
            fast: true,
            data_dir: dir.path().to_owned(),
        };
        (DemoCluster::start(&options).await.unwrap(), dir)
    }

    async fn until(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for: {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn authors(cluster: &DemoCluster) -> std::collections::BTreeSet<String> {
        let store = cluster.nodes[0].handle.store();
        store
            .latest(1000)
            .unwrap()
            .iter()
            .map(|e| e.author())
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_demo_starts_a_fresh_closed_ledger_its_nodes_alone_may_write() {
        let (first, _a) = cluster(2).await;
        let (second, _b) = cluster(2).await;
        let ledger = |c: &DemoCluster, i: usize| c.nodes[i].handle.status().ledger;
        let (l0, l1) = (ledger(&first, 0), ledger(&first, 1));
        assert_eq!(l0.id, l1.id, "one cluster, one ledger");
        assert!(!l0.open && l0.can_write && l1.can_write, "{l0:?} {l1:?}");
        assert_eq!(l0.authors, 2);
        assert_ne!(l0.id, ledger(&second, 0).id, "each demo has its own ledger");
        first.shutdown().await;
        second.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn traffic_writes_from_every_node_stops_by_itself_at_its_bound_and_when_switched_off() {
        let (cluster, _dir) = cluster(2).await;
        let bounded = TrafficOptions {
            per_second: 40,
            max_entries: 6,
        };
        let on = cluster.set_traffic(true, bounded).await.unwrap();
        assert!(on.on);
        until("six entries written", || cluster.traffic().written == 6).await;
        until("the bounded run ends", || !cluster.traffic().on).await;
        until("node 1 holds what both wrote", || {
            cluster.nodes[0].handle.store().len() == 6
        })
        .await;
        let ids: std::collections::BTreeSet<String> = cluster
            .nodes
            .iter()
            .map(|n| n.handle.peer_id().to_string())
            .collect();
        assert_eq!(authors(&cluster), ids, "round-robin from every node");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(cluster.traffic().written, 6, "no entry past the bound");

        let run = TrafficOptions {
            per_second: 40,
            max_entries: 10_000,
        };
        cluster.set_traffic(true, run).await.unwrap();
        until("traffic flows again", || cluster.traffic().written >= 2).await;
        let off = cluster.set_traffic(false, run).await.unwrap();
        assert!(!off.on);
        let own = |c: &DemoCluster| -> usize {
            // What each node wrote itself is in its own store at once (no replication).
            c.nodes
                .iter()
                .map(|n| {
                    let me = n.handle.peer_id().to_string();
                    let all = n.handle.store().latest(100_000).unwrap();
                    all.iter().filter(|e| e.author() == me).count()
                })
                .sum()
        };
        let written = own(&cluster);
        assert_eq!(written as u64, 6 + off.written);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(own(&cluster), written, "nothing is written once it is off");
        assert_eq!(cluster.traffic().written, off.written);
        cluster.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn traffic_outside_its_bounds_is_refused_and_changes_nothing() {
        let (cluster, _dir) = cluster(2).await;
        for (per_second, max_entries) in [(0, 10), (TRAFFIC_MAX_PER_SECOND + 1, 10), (3, 0)] {
            let options = TrafficOptions {
                per_second,
                max_entries,
            };
            let refused = cluster.set_traffic(true, options).await.unwrap_err();
            assert!(
                matches!(refused, DemoError::InvalidTraffic { .. }),
                "{refused}"
            );
            assert!(
                refused.to_string().contains(&per_second.to_string()),
                "{refused}"
            );
        }
        assert!(!cluster.traffic().on);
        assert!(matches!(
            cluster.write_sample(2).await,
            Err(DemoError::NoSuchNode(3))
        ));
        cluster.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_cut_counter_counts_entries_written_during_the_cut_and_how_far_they_got() {
        let (cluster, _dir) = cluster(2).await;
        assert_eq!(cluster.cut_counter(), None, "no cut, no counter");
        until("both nodes linked by P2P", || {
            cluster.statuses().iter().all(|s| s.peer_count == 1)
        })
        .await;
        cluster.write_sample(0).await.unwrap();
        until("the entry before the cut is everywhere", || {
            cluster.statuses().iter().all(|s| s.entry_count == 1)
        })
        .await;

        cluster.cut_p2p().await.unwrap();
        let counter = cluster.cut_counter().unwrap();
        assert_eq!((counter.written, counter.nodes), (0, 2), "{counter:?}");
        assert_eq!(counter.restored_ms, None);
        cluster.write_sample(1).await.unwrap();
        // P2P is cut and HTTP only takes over after the fallback (6 s): the entry is on
        // its writer alone.
        until("the counter sees the entry", || {
            cluster.cut_counter().unwrap().written == 1
        })
        .await;
        let counter = cluster.cut_counter().unwrap();
        assert_eq!(
            (counter.on_every_node, counter.least_delivered),
            (0, 1),
            "{counter:?}"
        );
        until("HTTP delivers it to both nodes", || {
            let c = cluster.cut_counter().unwrap();
            c.on_every_node == 1 && c.least_delivered == 2
        })
        .await;

        cluster.restore_p2p().await.unwrap();
        let restored = cluster.cut_counter().unwrap();
        assert!(restored.restored_ms.is_some_and(|r| r >= restored.since_ms));
        cluster.write_sample(0).await.unwrap();
        until("the entry after the restore is everywhere", || {
            cluster.statuses().iter().all(|s| s.entry_count == 3)
        })
        .await;
        assert_eq!(
            cluster.cut_counter().unwrap().written,
            1,
            "written after the restore: not counted"
        );

        // A new cut starts a new count.
        cluster.cut_p2p().await.unwrap();
        let next = cluster.cut_counter().unwrap();
        assert_eq!((next.written, next.restored_ms), (0, None), "{next:?}");
        cluster.shutdown().await;
    }

    #[test]
    fn demo_nodes_are_named_branch_a_onwards() {
        let names: Vec<String> = (0..4).map(super::branch_name).collect();
        assert_eq!(names, ["Branch A", "Branch B", "Branch C", "Branch D"]);
        assert_eq!(super::branch_name(26), "Branch 27");
    }
}

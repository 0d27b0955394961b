//! A local cluster for demonstrations: N nodes in one process on loopback, connected over
//! P2P and listing each other as HTTP neighbours, whose P2P can be cut and restored for
//! real. `lattice demo` and the desktop app both use it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{Config, Overrides};
use crate::http::server::{self, ServerOptions};
use crate::identity::NodeKey;
use crate::node::{NodeError, NodeHandle, NodeOptions};
use crate::status::{EventKind, Lung, Status};
use crate::sync::lungs::LungEvent;

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
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{0}")]
    Node(#[from] NodeError),
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
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
                (
                    "LATTICE_P2P_KEY".into(),
                    NodeKey::generate()
                        .map_err(|e| std::io::Error::other(e.to_string()))?
                        .to_base64(),
                ),
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
        })
    }

    pub fn statuses(&self) -> Vec<Status> {
        self.nodes.iter().map(|n| n.handle.status()).collect()
    }

    /// Cuts P2P on every node: connections closed, new ones refused.
    pub async fn cut_p2p(&self) -> Result<(), NodeError> {
        for n in &self.nodes {
            n.handle.set_p2p_blocked(true).await?;
        }
        Ok(())
    }

    pub async fn restore_p2p(&self) -> Result<(), NodeError> {
        for n in &self.nodes {
            n.handle.set_p2p_blocked(false).await?;
        }
        Ok(())
    }

    pub fn roots_equal(&self) -> bool {
        let s = self.statuses();
        s.iter().all(|x| x.merkle_root == s[0].merkle_root)
    }

    pub async fn shutdown(self) {
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
    #[test]
    fn demo_nodes_are_named_branch_a_onwards() {
        let names: Vec<String> = (0..4).map(super::branch_name).collect();
        assert_eq!(names, ["Branch A", "Branch B", "Branch C", "Branch D"]);
        assert_eq!(super::branch_name(26), "Branch 27");
    }
}

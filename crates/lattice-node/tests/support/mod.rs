//! Real nodes on loopback for integration tests: each with its own data directory,
//! HTTP API on a real socket, and millisecond timers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lattice_node::NodeKey;
use lattice_node::api::{self as server, ServerOptions};
use lattice_node::config::{Config, Mode, Overrides};
use lattice_node::http::client::ClientLimits;
use lattice_node::node::{NodeHandle, NodeOptions};
use lattice_node::status::Status;
use tokio::net::TcpListener;

pub const TOKEN: &str = "test-token-0123456789abcdef";

pub struct TestNode {
    pub node: NodeHandle,
    pub addr: SocketAddr,
    pub server: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl TestNode {
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
    pub fn status(&self) -> Status {
        self.node.status()
    }
    pub async fn stop(self) {
        self.stop_keeping_data().await;
    }

    /// Stops the node and hands back its data directory for a restart.
    /// Each part gets a deadline that names it: a stop that hangs fails the test saying
    /// what did not close, instead of hanging the whole run (seen once, not explained).
    pub async fn stop_keeping_data(self) -> tempfile::TempDir {
        const DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);
        self.node.shutdown_token().cancel();
        if tokio::time::timeout(DEADLINE, self.server).await.is_err() {
            panic!(
                "the HTTP server of {} did not stop within {DEADLINE:?} of its shutdown token",
                self.addr
            );
        }
        if tokio::time::timeout(DEADLINE, self.node.shutdown())
            .await
            .is_err()
        {
            panic!(
                "NodeHandle::shutdown of {} did not return within {DEADLINE:?}: the actor, the swarm or the store's writer is still open",
                self.addr
            );
        }
        self._dir
    }
}

/// Timers for tests: heartbeat 50ms, fallback 300ms, poll 150ms. The peer timeout is
/// a generous 1s (not the default three heartbeats) so a busy machine causes no false
/// disconnects in tests that are not about liveness.
pub fn fast_vars() -> Vec<(String, String)> {
    [
        ("LATTICE_HEARTBEAT", "50ms"),
        ("LATTICE_PEER_TIMEOUT", "1s"),
        ("LATTICE_FALLBACK_AFTER", "300ms"),
        ("LATTICE_HTTP_POLL", "150ms"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

pub fn client_limits() -> ClientLimits {
    ClientLimits {
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_millis(1500),
        ..ClientLimits::default()
    }
}

pub fn server_options() -> ServerOptions {
    ServerOptions {
        header_read_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_secs(5),
        sse_keepalive: Duration::from_millis(200),
        sse_status_interval: Duration::from_millis(20),
        ..ServerOptions::default()
    }
}

/// Binds `n` loopback listeners first, so every node can name the others as neighbours.
pub async fn listeners(n: usize) -> Vec<TcpListener> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    out
}

/// Starts a node on `listener` with `neighbors` and extra variables.
pub async fn start_node(
    listener: TcpListener,
    neighbors: &[String],
    extra: &[(&str, &str)],
    seed: u8,
) -> TestNode {
    start_node_in(
        tempfile::tempdir().unwrap(),
        listener,
        neighbors,
        extra,
        seed,
    )
    .await
}

/// Like [`start_node`], in a given data directory (to restart a node on its data).
pub async fn start_node_in(
    dir: tempfile::TempDir,
    listener: TcpListener,
    neighbors: &[String],
    extra: &[(&str, &str)],
    seed: u8,
) -> TestNode {
    start_node_with(dir, listener, neighbors, extra, seed, |_| {}).await
}

/// The key of a test node started with `seed`: the same for the same seed within one test
/// (a restarted node keeps its PeerId), different across the tests of one binary, which
/// run at once. With one key per seed for all, a node of one test redialing a stopped
/// peer at its old port could reach another test's node with the same PeerId there and
/// connect across tests (seen in CI: a node that never dialed its own bootstrap peer,
/// because "that PeerId" was already connected).
pub fn node_key(seed: u8) -> NodeKey {
    use sha2::{Digest, Sha256};
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("unnamed");
    let digest = Sha256::new()
        .chain_update(test.as_bytes())
        .chain_update([seed])
        .finalize();
    NodeKey::from_seed(digest.into())
}

/// Like [`start_node_in`], with the test's node options changed by `adjust`.
pub async fn start_node_with(
    dir: tempfile::TempDir,
    listener: TcpListener,
    neighbors: &[String],
    extra: &[(&str, &str)],
    seed: u8,
    adjust: impl FnOnce(&mut NodeOptions),
) -> TestNode {
    let addr = listener.local_addr().unwrap();
    let mut vars = fast_vars();
    vars.push(("LATTICE_P2P_LISTEN".into(), "/ip4/127.0.0.1/tcp/0".into()));
    vars.push(("LATTICE_HTTP_LISTEN".into(), addr.to_string()));
    vars.push(("LATTICE_HTTP_NEIGHBORS".into(), neighbors.join(",")));
    vars.push(("LATTICE_P2P_KEY".into(), node_key(seed).to_base64()));
    // Later pairs win: the test's own settings override the defaults above.
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let overrides = Overrides {
        data_dir: Some(dir.path().to_owned()),
        ..Overrides::default()
    };
    let config = Config::from_pairs(&vars, &overrides).unwrap();
    let mut options = NodeOptions {
        client_limits: client_limits(),
        events_idle: Duration::from_secs(2),
        p2p_reconcile_every: Duration::from_millis(500),
        ..NodeOptions::fast()
    };
    adjust(&mut options);
    let node = NodeHandle::start(config, options).await.unwrap();
    let opts = server_options();
    let app = server::router(node.clone(), &opts);
    let server = tokio::spawn(server::serve(listener, app, opts, node.shutdown_token()));
    TestNode {
        node,
        addr,
        server,
        _dir: dir,
    }
}

/// The base URLs of `listeners`, in order.
pub fn urls_of(listeners: &[TcpListener]) -> Vec<String> {
    listeners
        .iter()
        .map(|l| format!("http://{}", l.local_addr().unwrap()))
        .collect()
}

/// Every URL but the `i`th.
pub fn others(urls: &[String], i: usize) -> Vec<String> {
    let mut rest = urls.to_vec();
    rest.remove(i);
    rest
}

/// A full mesh of `n` nodes, each the HTTP neighbour of every other, with no P2P peers.
pub async fn cluster(n: usize, extra: &[(&str, &str)]) -> Vec<TestNode> {
    mesh(n, extra, false).await
}

/// `n` nodes connected over P2P (node i bootstraps to every earlier node) and listing
/// each other as HTTP neighbours.
pub async fn p2p_cluster(n: usize, extra: &[(&str, &str)]) -> Vec<TestNode> {
    mesh(n, extra, true).await
}

async fn mesh(n: usize, extra: &[(&str, &str)], p2p: bool) -> Vec<TestNode> {
    let ls = listeners(n).await;
    let urls = urls_of(&ls);
    let mut nodes: Vec<TestNode> = Vec::new();
    for (i, l) in ls.into_iter().enumerate() {
        let mut bootstrap = Vec::new();
        if p2p {
            for earlier in &nodes {
                bootstrap.extend(p2p_addr(earlier).await);
            }
        }
        let boot = bootstrap.join(",");
        let mut vars: Vec<(&str, &str)> = extra.to_vec();
        if p2p {
            vars.push(("LATTICE_BOOTSTRAP", &boot));
        }
        let seed = if p2p { 100 } else { 1 } + i as u8;
        nodes.push(start_node(l, &others(&urls, i), &vars, seed).await);
    }
    nodes
}

/// Waits until `cond` holds, checking every 10ms, failing after `within`.
pub async fn eventually(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn roots_equal(nodes: &[TestNode]) -> bool {
    let first = nodes[0].status().merkle_root;
    nodes.iter().all(|n| n.status().merkle_root == first)
}

pub fn all_in(nodes: &[TestNode], lung: &str) -> bool {
    nodes.iter().all(|n| {
        let s = serde_json::to_value(n.status()).unwrap();
        s["sync_mode"] == lung
    })
}

pub fn mode_of(n: &TestNode) -> Mode {
    n.status().mode
}

pub const WAIT: Duration = Duration::from_secs(15);

/// The node's P2P address, once bound.
pub async fn p2p_addr(n: &TestNode) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let addrs = n.node.p2p_addrs().await;
        if !addrs.is_empty() {
            return addrs;
        }
        assert!(
            Instant::now() < deadline,
            "the node never bound a P2P address"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn sync_peers(n: &TestNode) -> usize {
    n.status()
        .peers
        .iter()
        .filter(|p| p.info.sync_capable)
        .count()
}

//! The benchmark prices Lattice v1 and v2 in process; this proves the price is the HTTP
//! lung's: the same reconciliation against a real node over a real loopback socket
//! makes the same requests and moves the same body bytes each way (v2 under one fixed
//! salt, so both runs draw the same sketch).

use std::path::Path;
use std::time::Duration;

use lattice_bench::corpus;
use lattice_bench::reconcile::{ANSWERING_SEED, answering_peer};
use lattice_bench::wire::HttpLungRemote;
use lattice_node::NodeKey;
use lattice_node::api::{self as server, ServerOptions};
use lattice_node::config::{Config, Overrides};
use lattice_node::http::client::{ClientLimits, NeighborClient};
use lattice_node::ledger::{DEFAULT_MAX_PAYLOAD, Entry, Store, StoreOptions};
use lattice_node::node::{NodeHandle, NodeOptions};
use lattice_node::sync::reconcile::{
    ChildrenRequest, ChildrenResponse, EntriesMessage, FetchRequest, IdsRequest, IdsResponse,
    LedgerState, PushResponse, ReconcileReport, Remote, TransportError, reconcile_with,
};
use lattice_node::sync::reconcile_v2::{Method, Options};
use lattice_node::sync::riblt::Salt;

async fn filled(dir: &Path, entries: &[Entry]) -> Store {
    let store = Store::open(dir, StoreOptions::default()).unwrap();
    store.append_batch(entries.to_vec()).await.unwrap();
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_process_lung_sends_and_receives_what_a_real_node_does_in_v1() {
    let v1 = Options {
        v1_only: true,
        ..Options::default()
    };
    assert_eq!(parity(&v1, false).await, Method::Walk);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_process_lung_sends_and_receives_what_a_real_node_does_in_v2() {
    let v2 = Options {
        salt: Some(Salt([0x5a; 16])),
        ..Options::default()
    };
    assert_eq!(parity(&v2, false).await, Method::Sketch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v2_asker_walks_with_an_http_peer_that_announces_v1_only() {
    assert_eq!(parity(&Options::default(), true).await, Method::Walk);
}

/// A remote whose state answer announces no versions, as a node older than v2 answers;
/// every request still goes over the real transport.
struct AnnouncesV1Only<R>(R);

impl<R: Remote + Send> Remote for AnnouncesV1Only<R> {
    async fn state(&self) -> Result<LedgerState, TransportError> {
        let mut s = self.0.state().await?;
        s.versions.clear();
        Ok(s)
    }
    async fn children(&self, req: &ChildrenRequest) -> Result<ChildrenResponse, TransportError> {
        self.0.children(req).await
    }
    async fn ids(&self, req: &IdsRequest) -> Result<IdsResponse, TransportError> {
        self.0.ids(req).await
    }
    async fn fetch(&self, req: &FetchRequest) -> Result<EntriesMessage, TransportError> {
        self.0.fetch(req).await
    }
    async fn push(&self, req: &EntriesMessage) -> Result<PushResponse, TransportError> {
        self.0.push(req).await
    }
    fn bytes(&self) -> (u64, u64) {
        self.0.bytes()
    }
}

async fn reconcile_as<R: Remote + Send>(
    local: &Store,
    remote: R,
    options: &Options,
    v1_peer: bool,
) -> ReconcileReport {
    if v1_peer {
        reconcile_with(
            local,
            &AnnouncesV1Only(remote),
            DEFAULT_MAX_PAYLOAD,
            options,
        )
        .await
    } else {
        reconcile_with(local, &remote, DEFAULT_MAX_PAYLOAD, options).await
    }
    .unwrap()
}

/// Reconciles in process and against a real node with `options` (the other side
/// announcing v1 only if `v1_peer`); how it went.
async fn parity(options: &Options, v1_peer: bool) -> Method {
    let tmp = tempfile::tempdir().unwrap();
    let authors = corpus::authors();
    let base = corpus::sign_range(&authors, 0..300);
    let extra = |k: u64| corpus::extra_entry(&authors, 7, k, corpus::T0_MS + k * 37_000 + 1);
    // The answering side has 8 entries more, the initiating side 5 the other lacks.
    let answering: Vec<Entry> = base.iter().cloned().chain((0..8).map(extra)).collect();
    let initiating: Vec<Entry> = base.iter().cloned().chain((8..13).map(extra)).collect();

    // In process, as the benchmark runs it.
    let a1 = filled(&tmp.path().join("a1"), &answering).await;
    let b1 = filled(&tmp.path().join("b1"), &initiating).await;
    let remote = HttpLungRemote::new(a1.clone(), answering_peer(), DEFAULT_MAX_PAYLOAD);
    let priced = reconcile_as(&b1, remote, options, v1_peer).await;

    // Against a real node serving the same ledger.
    let a2_dir = tmp.path().join("a2");
    filled(&a2_dir, &answering).await.close();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let vars = [
        ("LATTICE_HTTP_LISTEN", addr.to_string()),
        ("LATTICE_P2P_LISTEN", "/ip4/127.0.0.1/tcp/0".to_string()),
        (
            "LATTICE_P2P_KEY",
            NodeKey::from_seed(ANSWERING_SEED).to_base64(),
        ),
        (
            "LATTICE_API_TOKEN",
            "bench-parity-token-0123456789".to_string(),
        ),
    ];
    let overrides = Overrides {
        data_dir: Some(a2_dir),
        ..Overrides::default()
    };
    let config = Config::from_pairs(&vars, &overrides).unwrap();
    let token = config.api_token.clone();
    let node = NodeHandle::start(config, NodeOptions::fast())
        .await
        .unwrap();
    let serving_options = ServerOptions {
        request_timeout: Duration::from_secs(10),
        ..ServerOptions::default()
    };
    let app = server::router(node.clone(), &serving_options);
    let serving = tokio::spawn(server::serve(
        listener,
        app,
        serving_options,
        node.shutdown_token(),
    ));
    let base_url = url::Url::parse(&format!("http://{addr}/")).unwrap();
    let client = NeighborClient::new(base_url, token, ClientLimits::default()).unwrap();
    let b2 = filled(&tmp.path().join("b2"), &initiating).await;
    let real = reconcile_as(&b2, client, options, v1_peer).await;
    assert_eq!(real.method, priced.method);

    assert_eq!((real.pulled, real.pushed), (8, 5), "{real:?}");
    assert_eq!(
        (
            real.requests,
            real.rounds,
            real.bytes_sent,
            real.bytes_received
        ),
        (
            priced.requests,
            priced.rounds,
            priced.bytes_sent,
            priced.bytes_received
        ),
        "a real node: {real:?}; in process: {priced:?}"
    );
    assert_eq!((real.pulled, real.pushed), (priced.pulled, priced.pushed));
    assert_eq!(node.store().root(), b2.root());
    assert_eq!(a1.root(), b2.root());

    node.shutdown_token().cancel();
    let _ = serving.await;
    node.shutdown().await;
    real.method
}

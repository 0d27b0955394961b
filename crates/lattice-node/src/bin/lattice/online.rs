//! The commands that run a node or talk to a running one over its HTTP API.

use std::time::Duration;

use anyhow::{Context as _, anyhow};
use lattice_node::api::{self as server, ServerOptions};
use lattice_node::config::{Config, Mode};
use lattice_node::demo::{DemoCluster, DemoOptions};
use lattice_node::http::client::{ClientLimits, NeighborClient};
use lattice_node::node::{Created, NodeHandle, NodeOptions};
use lattice_node::status::Status;
use url::Url;

use crate::Failure;

/// `lattice node`: runs until Ctrl-C or SIGTERM, then shuts down gracefully.
pub fn run_node(config: Config) -> Result<(), Failure> {
    server::check_listen_security(&config).map_err(Failure::Config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        // The API listens before the node's lungs start: a neighbour started at the same
        // moment finds our port open (its connection waits in the backlog until we serve)
        // instead of refused.
        let listener = server::bind(&config).await.map_err(|e| anyhow!(e))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let node = NodeHandle::start(config, NodeOptions::default())
            .await
            .map_err(|e| anyhow!(e))?;
        let ui_dir = server::find_ui_dir();
        let options = ServerOptions {
            ui_dir: ui_dir.clone(),
            ..ServerOptions::default()
        };
        let app = server::router(node.clone(), &options);
        let server_task =
            tokio::spawn(server::serve(listener, app, options, node.shutdown_token()));
        match &ui_dir {
            Some(dir) => tracing::info!("dashboard: http://{addr}/ (from {})", dir.display()),
            None if server::dashboard::embedded() => {
                tracing::info!("dashboard: http://{addr}/ (built into this binary)")
            }
            None => tracing::info!(
                "this binary was built without the dashboard and no LATTICE_UI_DIR is set; API only"
            ),
        }
        let status = node.status();
        tracing::info!(
            "node {} serving its API on http://{addr}/ ({} entries, root {})",
            status.node.peer_id,
            status.entry_count,
            &status.merkle_root[..16]
        );
        wait_for_signal().await;
        tracing::info!("shutting down: closing listeners, finishing in-flight commits");
        node.shutdown_token().cancel();
        let _ = server_task.await;
        node.shutdown().await;
        tracing::info!("stopped");
        Ok::<(), Failure>(())
    })
}

/// `lattice relay`: runs until Ctrl-C or SIGTERM.
pub fn run_relay(config: Config) -> Result<(), Failure> {
    let key = config.key.clone().ok_or_else(|| {
        Failure::Config(
            "LATTICE_P2P_KEY is not set: a relay needs a stable PeerId that clients name in LATTICE_RELAYS (run `lattice keygen`)".into(),
        )
    })?;
    // The relay holds no ledger data, only the record that says who its members are.
    let ledger = match (config.ledger, &config.genesis) {
        (None, _) => None,
        (Some(_), Some(g)) => Some(g.clone()),
        (Some(id), None) => {
            return Err(Failure::Config(format!(
                "LATTICE_LEDGER is {id} but LATTICE_GENESIS is not set: a relay serves a ledger's members only with its genesis record (copy LATTICE_GENESIS from the env file `lattice init` wrote)"
            )));
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let cancel = tokio_util::sync::CancellationToken::new();
        let relay = lattice_node::p2p::relay::spawn_relay(
            lattice_node::p2p::relay::RelayConfig {
                key,
                listen: config.p2p_listen.clone(),
                announce: Vec::new(),
                allow: config.p2p_allow.clone(),
                psk: config.p2p_psk,
                dial_timeout: Duration::from_secs(10),
                ping_interval: config.heartbeat.min(config.peer_timeout / 3),
                peer_timeout: config.peer_timeout,
                autonat_global_only: config.autonat_global_only,
                ledger,
            },
            cancel.clone(),
        )
        .map_err(|e| anyhow!(e))?;
        let addrs = relay.listen_addrs().await;
        tracing::info!(
            "relay {} ready; clients set LATTICE_RELAYS to one of: {}",
            relay.peer_id,
            addrs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        wait_for_signal().await;
        cancel.cancel();
        tracing::info!("relay stopped");
        Ok::<(), Failure>(())
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The URL of the node this configuration describes, unless `--url` names another.
fn node_url(config: &Config, url: Option<&str>) -> Result<Url, Failure> {
    let text = match url {
        Some(u) => u.to_string(),
        None => {
            let mut addr = config.http_listen;
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{addr}/")
        }
    };
    let mut url = Url::parse(&text)
        .map_err(|e| Failure::Config(format!("--url: {text:?} is not a URL ({e})")))?;
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

pub(crate) fn client(config: &Config, url: Option<&str>) -> Result<NeighborClient, Failure> {
    let limits = ClientLimits {
        request_timeout: Duration::from_secs(30),
        ..ClientLimits::default()
    };
    let url = node_url(config, url)?;
    NeighborClient::new(url.clone(), config.api_token.clone(), limits)
        .map_err(|e| Failure::Other(anyhow!("{url}: {e}")))
}

pub(crate) fn call_error(
    url: &Url,
) -> impl Fn(lattice_node::http::client::ClientError) -> Failure + '_ {
    move |e| Failure::Other(anyhow!("{url}: {e}"))
}

pub async fn status(config: &Config, url: Option<&str>, json: bool) -> Result<(), Failure> {
    let client = client(config, url)?;
    let status: serde_json::Value = client
        .get_json("api/lattice/p2p/status", &[])
        .await
        .map_err(call_error(client.base()))?;
    if json {
        // Exactly what the node said.
        println!(
            "{}",
            serde_json::to_string_pretty(&status).expect("JSON prints")
        );
        return Ok(());
    }
    print_status(&typed(client.base(), status)?);
    Ok(())
}

/// A status answer read as the node's own [`Status`] type: a node of another version
/// whose status this binary cannot read is said so, not half printed.
fn typed(url: &Url, status: serde_json::Value) -> Result<Status, Failure> {
    serde_json::from_value(status).map_err(|e| {
        Failure::Other(anyhow!(
            "{url}: the node's status is not one this lattice {} reads ({e}); `lattice status --json` prints it as sent",
            env!("CARGO_PKG_VERSION")
        ))
    })
}

/// A wire value (a state, a lung) as the JSON names it.
fn wire<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "?".into(),
    }
}

fn ago(ms: Option<u64>, now: u64) -> String {
    match ms {
        Some(t) => format!("{:.1}s ago", now.saturating_sub(t) as f64 / 1000.0),
        None => "never".into(),
    }
}

fn print_status(s: &Status) {
    let now = s.now_ms;
    match &s.node.name {
        Some(name) => println!("node      {name} ({})", s.node.peer_id),
        None => println!("node      {}", s.node.peer_id),
    }
    let ledger = &s.ledger;
    if ledger.open {
        println!(
            "ledger    {} (OPEN development ledger: anyone who can reach this node can write into it; `lattice init` makes a ledger of your own)",
            ledger.id
        );
    } else {
        println!(
            "ledger    {} ({}; {} authors; this node {})",
            ledger.id,
            ledger.name,
            ledger.authors,
            if ledger.can_write {
                "may write"
            } else {
                "may NOT write"
            }
        );
    }
    // The states are the node's own decision (sync::states): shown, never worked out here.
    let st = &s.states;
    println!(
        "sync      {}: {} (snapshot {})",
        wire(&st.sync_state),
        st.sync_reason,
        s.seq
    );
    for (lung, state, reason, flow) in [
        (
            "p2p",
            wire(&st.p2p_state),
            &st.p2p_reason,
            &s.entries_by_lung.p2p,
        ),
        (
            "http",
            wire(&st.http_state),
            &st.http_reason,
            &s.entries_by_lung.http,
        ),
    ] {
        println!(
            "{lung:<9} {state}: {reason}  (entries {} received, {} sent)",
            flow.received, flow.sent
        );
    }
    println!("phase     fallback {}", wire(&st.fallback_phase));
    println!(
        "mode      {} (sync over {}; HTTP sync {})",
        s.mode,
        wire(&s.sync_mode),
        if s.http_sync_enabled { "on" } else { "standby" }
    );
    println!(
        "peers     {} (heartbeat {})",
        s.peer_count,
        if s.heartbeat_active {
            "steering"
        } else {
            "overridden by the mode"
        }
    );
    if let Some(deadline) = s.fallback_deadline_ms {
        println!(
            "fallback  HTTP takes over in {:.1}s unless peers return",
            deadline.saturating_sub(now) as f64 / 1000.0
        );
    } else if let Some(since) = s.fallback_active_since_ms {
        println!(
            "fallback  HTTP fallback active since {}",
            ago(Some(since), now)
        );
    }
    if let Some(t) = &s.last_transition {
        println!(
            "last      {} -> {} {}: {}",
            wire(&t.from),
            wire(&t.to),
            ago(Some(t.at_ms), now),
            t.reason
        );
    }
    println!("root      {} ({} entries)", s.merkle_root, s.entry_count);
    if let Some(failure) = &s.store_failure {
        println!("STORE     {failure}");
    }
    println!("reach     {}", s.reachability.as_str());
    for p in s.peers.iter().map(|p| &p.info) {
        match &p.other_ledger {
            None => println!(
                "peer      {} {} over {}{}",
                p.peer_id,
                p.path,
                p.transport,
                if p.sync_capable { ", sync peer" } else { "" }
            ),
            Some(other) => println!(
                "REFUSED   peer {}: holds ledger {other}, not ours (other_ledger)",
                p.peer_id
            ),
        }
    }
    for p in s
        .peers
        .iter()
        .map(|p| &p.info)
        .filter(|p| !p.admitted && p.other_ledger.is_none())
    {
        println!(
            "PENDING   peer {} at {}: not admitted (lattice peers accept|ignore {})",
            p.peer_id,
            p.address.as_deref().unwrap_or("?"),
            p.peer_id
        );
    }
    for n in &s.neighbors {
        let matches = match n.root_matches {
            Some(true) => "root matches",
            Some(false) => "root differs",
            None => "root unknown",
        };
        let who = match (&n.name, &n.peer_id) {
            (Some(name), Some(id)) => format!("  {name} ({id})"),
            (None, Some(id)) => format!("  {id}"),
            _ => String::new(),
        };
        println!(
            "neighbor  {}{who}  {}  {matches}  checked {}  last sync {}{}",
            n.url,
            wire(&n.health),
            ago(n.checked_at_ms, now),
            ago(n.last_sync_ms, now),
            n.last_error
                .as_ref()
                .map(|e| format!("  error: {e}"))
                .unwrap_or_default()
        );
    }
}

pub async fn switch(config: &Config, mode: Mode, url: Option<&str>) -> Result<(), Failure> {
    let client = client(config, url)?;
    let path = format!("api/lattice/sync/switch?mode={mode}");
    let status = client
        .post_json(&path, &serde_json::json!({}))
        .await
        .map_err(call_error(client.base()))?;
    let status = typed(client.base(), status)?;
    println!(
        "mode {} (sync over {})",
        status.mode,
        wire(&status.sync_mode)
    );
    Ok(())
}

pub async fn put(config: &Config, payload: serde_json::Value, url: &str) -> Result<(), Failure> {
    let client = client(config, Some(url))?;
    let answer: Created = client
        .post_json(
            "api/lattice/entries",
            &serde_json::json!({ "payload": payload }),
        )
        .await
        .map_err(call_error(client.base()))?;
    let note = if answer.inserted {
        ""
    } else {
        " (already present)"
    };
    println!("id      {}{note}", answer.id);
    println!("root    {}", answer.merkle_root);
    println!("entries {}", answer.entry_count);
    Ok(())
}

pub async fn p2p(config: &Config, block: bool, url: Option<&str>) -> Result<(), Failure> {
    let client = client(config, url)?;
    let path = if block {
        "api/lattice/p2p/block"
    } else {
        "api/lattice/p2p/unblock"
    };
    let status = client
        .post_json(path, &serde_json::json!({}))
        .await
        .map_err(call_error(client.base()))?;
    let status = typed(client.base(), status)?;
    println!(
        "P2P {} ({} peers; sync over {})",
        if status.p2p_blocked {
            "cut"
        } else {
            "restored"
        },
        status.peer_count,
        wire(&status.sync_mode)
    );
    Ok(())
}

/// `lattice demo`: a local cluster, by hand or scripted.
pub fn demo(nodes: usize, fast: bool, script: bool) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let data_dir = std::env::temp_dir().join(format!("lattice-demo-{}", std::process::id()));
    let result = runtime.block_on(async {
        let options = DemoOptions {
            nodes,
            fast,
            data_dir: data_dir.clone(),
        };
        let cluster = DemoCluster::start(&options).await.map_err(|e| anyhow!(e))?;
        let outcome = if script {
            let say: std::sync::Arc<dyn Fn(String) + Send + Sync> =
                std::sync::Arc::new(|line| println!("{line}"));
            match lattice_node::demo::run_script(&cluster, say).await {
                Ok(root) => {
                    println!("VERDICT: PASS: every step happened and all {nodes} roots are equal ({root})");
                    Ok(())
                }
                Err(e) => {
                    println!("VERDICT: FAIL: {e}");
                    Err(Failure::Other(anyhow!("the demo failed: {e}")))
                }
            }
        } else {
            println!("{nodes} nodes running on loopback (Ctrl-C to stop):");
            for n in &cluster.nodes {
                println!("  {}  http://{}/  {}", n.name, n.http, n.handle.peer_id());
            }
            println!("try: lattice status --url http://{}/", cluster.nodes[0].http);
            println!("     lattice p2p block --url http://{}/", cluster.nodes[0].http);
            wait_for_signal().await;
            Ok(())
        };
        cluster.shutdown().await;
        outcome
    });
    let _ = std::fs::remove_dir_all(&data_dir);
    result
}

//! The node's life and its snapshots' clock, over a real store, swarm and server.

use std::time::Duration;

use tokio::net::TcpListener;

use super::*;
use crate::api::{self as server, ServerOptions};
use crate::config::Overrides;

const DEADLINE: Duration = Duration::from_secs(10);

fn config(dir: &tempfile::TempDir, extra: &[(&str, &str)]) -> Config {
    let mut vars = vec![
        ("LATTICE_HEARTBEAT", "50ms"),
        ("LATTICE_FALLBACK_AFTER", "60s"),
        ("LATTICE_HTTP_POLL", "150ms"),
        ("LATTICE_P2P_LISTEN", "/ip4/127.0.0.1/tcp/0"),
        ("LATTICE_HTTP_LISTEN", "127.0.0.1:0"),
    ];
    vars.extend_from_slice(extra);
    let overrides = Overrides {
        data_dir: Some(dir.path().to_owned()),
        ..Overrides::default()
    };
    Config::from_pairs(&vars, &overrides).unwrap()
}

fn payload(n: u32) -> serde_json::Value {
    serde_json::json!({ "n": n })
}

/// A signed entry of this node's key, appended straight to a store clone.
fn entry(node: &NodeHandle, n: u32) -> Entry {
    Entry::sign(&node.shared.key, now_ms(), &payload(n), 1024).unwrap()
}

/// The P2P port the node listens on, once bound.
async fn p2p_port(node: &NodeHandle) -> u16 {
    for _ in 0..100 {
        if let Some(addr) = node.shared.p2p.listen_addrs().await.first() {
            for p in addr.iter() {
                if let libp2p::multiaddr::Protocol::Tcp(port) = p {
                    return port;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the swarm never listened");
}

#[tokio::test]
async fn dropping_the_last_outside_handle_stops_the_node_though_its_server_holds_one() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeHandle::start(config(&dir, &[]), NodeOptions::fast())
        .await
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = ServerOptions::default();
    let app = server::router(node.clone(), &options);
    let server = tokio::spawn(server::serve(listener, app, options, node.shutdown_token()));
    let store = node.store().clone();
    let mut status = node.subscribe_status();
    let extra = node.clone();
    drop(node);
    // Another outside handle still keeps it alive.
    let meanwhile = tokio::time::timeout(Duration::from_millis(300), status.changed()).await;
    assert!(
        !matches!(meanwhile, Ok(Err(_))),
        "the node stopped while a handle was held"
    );
    let e = entry(&extra, 1);
    drop(extra);
    let stopped =
        tokio::time::timeout(DEADLINE, async { while status.changed().await.is_ok() {} }).await;
    assert!(stopped.is_ok(), "the actor still runs with no handle left");
    tokio::time::timeout(DEADLINE, server)
        .await
        .expect("the server stops with the node")
        .unwrap();
    assert!(
        store.append(e).await.is_err(),
        "the store's writer outlived the node"
    );
}

#[tokio::test]
async fn shutdown_returns_once_the_swarm_and_the_store_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeHandle::start(config(&dir, &[]), NodeOptions::fast())
        .await
        .unwrap();
    let port = p2p_port(&node).await;
    let store = node.store().clone();
    let e = entry(&node, 2);
    node.shutdown().await;
    let swarm_closed = tokio::time::timeout(Duration::ZERO, node.shared.p2p.closed()).await;
    assert!(
        swarm_closed.is_ok(),
        "shutdown returned before the swarm closed"
    );
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "the P2P port still accepts connections"
    );
    assert!(
        store.append(e).await.is_err(),
        "the store still takes entries"
    );
    assert!(matches!(
        node.switch_mode(Mode::Http).await,
        Err(NodeError::ShuttingDown)
    ));
}

#[tokio::test]
async fn a_snapshot_reads_one_clock_even_after_the_wall_clock_stepped_forward() {
    // The steady clock started an hour before the wall clock now reads: what a node sees
    // after the wall clock stepped an hour forward while it ran.
    WALL_STEP_MS.set(3_600_000);
    let dir = tempfile::tempdir().unwrap();
    // A neighbour that refuses connections, so its check fails and is retried.
    let refused = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", refused.local_addr().unwrap());
    drop(refused);
    let config = config(&dir, &[("LATTICE_HTTP_NEIGHBORS", url.as_str())]);
    let node = NodeHandle::start(config, NodeOptions::fast())
        .await
        .unwrap();
    WALL_STEP_MS.set(0);
    let mut rx = node.subscribe_status();
    let checked = tokio::time::timeout(
        DEADLINE,
        rx.wait_for(|s| s.neighbors[0].checked_at_ms.is_some() && s.fallback_deadline_ms.is_some()),
    )
    .await
    .expect("the neighbour is checked")
    .unwrap()
    .clone();
    let since = checked.peerless_since_ms.unwrap();
    let deadline = checked.fallback_deadline_ms.unwrap();
    let n = &checked.neighbors[0];
    let at = n.checked_at_ms.unwrap();
    assert!(
        since <= at && at <= checked.now_ms && checked.now_ms < deadline,
        "peerless since {since}, checked at {at}, now {}, deadline {deadline}",
        checked.now_ms
    );
    let next = n.next_attempt_ms.expect("a failed check is retried");
    assert!(
        next <= at + 150,
        "next attempt {next} is on another clock than {at}"
    );
    node.shutdown().await;
}

//! The HTTP lung on standby and at its start: neighbours are checked while P2P carries
//! sync, followers find a neighbour that starts late, and what the lung reports is true.
//! Real nodes on loopback; status is read as JSON, the shape every face sees.

mod support;

use std::time::Duration;

use lattice_node::node::now_ms;
use lattice_node::status::EventKind;
use serde_json::{Value, json};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn status_json(n: &TestNode) -> Value {
    serde_json::to_value(n.status()).unwrap()
}

/// The node's `neighbors[i]` as JSON.
fn neighbor(n: &TestNode, i: usize) -> Value {
    status_json(n)["neighbors"][i].clone()
}

fn checked_at(nb: &Value) -> Option<u64> {
    nb["checked_at_ms"].as_u64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_standby_each_neighbour_is_checked_every_poll_so_health_and_root_match_stay_live() {
    let nodes = cluster(2, &[("LATTICE_MODE", "p2p")]).await;
    eventually(
        "each node sees the other healthy, freshly checked, root matching",
        WAIT,
        || {
            nodes.iter().all(|n| {
                let nb = neighbor(n, 0);
                nb["health"] == "healthy" && nb["root_matches"] == true && checked_at(&nb).is_some()
            })
        },
    )
    .await;
    assert!(nodes.iter().all(|n| !n.status().http_sync_enabled));

    let put = nodes[0]
        .node
        .put(&json!({ "on": "standby" }))
        .await
        .unwrap();
    eventually("node 1 sees node 0's root change", WAIT, || {
        neighbor(&nodes[1], 0)["root_matches"] == false
    })
    .await;
    // The entry reaches node 1 another way; its view of node 0 must follow, unsynced.
    let entries = nodes[0].node.store().get_many(&[put.id]).unwrap();
    nodes[1].node.ingest(entries).await.unwrap();
    eventually("both see matching roots again", WAIT, || {
        nodes.iter().all(|n| neighbor(n, 0)["root_matches"] == true)
    })
    .await;
    for n in &nodes {
        assert_eq!(
            neighbor(n, 0)["last_sync_ms"],
            Value::Null,
            "a standby check reconciled"
        );
    }

    let mut nodes = nodes;
    let stopped = nodes.pop().unwrap();
    stopped.stop().await;
    let stopped_at = now_ms();
    eventually(
        "the stopped neighbour shows unhealthy, checked after it stopped",
        WAIT,
        || {
            let nb = neighbor(&nodes[0], 0);
            nb["health"] == "unhealthy"
                && nb["last_error_kind"] == "connect"
                && checked_at(&nb).is_some_and(|t| t >= stopped_at)
        },
    )
    .await;
    let first = checked_at(&neighbor(&nodes[0], 0)).unwrap();
    eventually("it is checked again, not left as it was", WAIT, || {
        checked_at(&neighbor(&nodes[0], 0)).is_some_and(|t| t > first)
    })
    .await;
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_p2p_carries_sync_in_auto_mode_the_neighbours_are_checked_too() {
    let nodes = p2p_cluster(2, &[]).await;
    eventually("P2P carries sync on both", WAIT, || {
        nodes.iter().all(|n| sync_peers(n) == 1) && all_in(&nodes, "P2P")
    })
    .await;
    let since = now_ms();
    eventually(
        "each neighbour is healthy and checked while HTTP stands by",
        WAIT,
        || {
            nodes.iter().all(|n| {
                let nb = neighbor(n, 0);
                nb["health"] == "healthy" && checked_at(&nb).is_some_and(|t| t >= since)
            })
        },
    )
    .await;
    assert!(nodes.iter().all(|n| !n.status().http_sync_enabled));
    for n in nodes {
        n.stop().await;
    }
}

/// A neighbour that accepts connections, reads the request and then either says nothing
/// or drips a never-ending header one byte at a time.
async fn stalling_neighbor(drip: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let head = b"HTTP/1.1 200 OK\r\nx-drip: ";
                // Bounded: 60 s of bytes at most, far longer than any request timeout.
                for i in 0..600 {
                    if drip {
                        let byte = if i < head.len() { head[i] } else { b'.' };
                        if sock.write_all(&[byte]).await.is_err() {
                            return;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_standby_a_neighbour_that_stalls_or_drips_becomes_unhealthy_with_a_timeout() {
    let silent = stalling_neighbor(false).await;
    let drip = stalling_neighbor(true).await;
    let l = listeners(1).await.pop().unwrap();
    let node = start_node(l, &[silent, drip], &[("LATTICE_MODE", "p2p")], 60).await;
    eventually("both stalling neighbours time out", WAIT, || {
        (0..2).all(|i| {
            let nb = neighbor(&node, i);
            nb["health"] == "unhealthy" && nb["last_error_kind"] == "timeout"
        })
    })
    .await;
    assert!(!node.status().http_sync_enabled);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_that_found_its_neighbour_not_listening_follows_it_soon_after_it_starts() {
    // The neighbour's address is known but nothing listens there yet.
    let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let late = probe.local_addr().unwrap();
    drop(probe);
    // A minute between polls: only the follower's own retry can be prompt.
    let vars = [("LATTICE_MODE", "http"), ("LATTICE_HTTP_POLL", "60s")];
    let l = listeners(1).await.pop().unwrap();
    let a = start_node(l, &[format!("http://{late}")], &vars, 62).await;
    eventually(
        "the first contact (poll and stream) was refused",
        WAIT,
        || neighbor(&a, 0)["last_error_kind"] == "connect",
    )
    .await;

    let b = start_node(TcpListener::bind(late).await.unwrap(), &[], &vars, 63).await;
    // The old first retry came after two polls (two minutes here).
    eventually(
        "A follows B's event stream within seconds of B starting",
        Duration::from_secs(10),
        || neighbor(&a, 0)["events_connected"] == true,
    )
    .await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_diverged_event_names_our_root_from_before_the_sync() {
    let lb = listeners(1).await.pop().unwrap();
    let b_url = format!("http://{}", lb.local_addr().unwrap());
    let b = start_node(lb, &[], &[("LATTICE_MODE", "p2p")], 64).await;
    b.node.put(&json!({ "only": "on b" })).await.unwrap();
    // The store's root: the status snapshot follows a commit a moment later.
    let theirs = hex::encode(b.node.store().root());

    let la = listeners(1).await.pop().unwrap();
    let a = start_node(la, &[b_url], &[("LATTICE_HTTP_POLL", "60s")], 65).await;
    let ours_before = hex::encode(a.node.store().root());
    let mut events = a.node.subscribe_events();
    a.node
        .switch_mode(lattice_node::config::Mode::Http)
        .await
        .unwrap();
    let diverged = tokio::time::timeout(WAIT, async {
        loop {
            if let EventKind::Diverged { ours, theirs, .. } = events.recv().await.unwrap().what {
                return (ours, theirs);
            }
        }
    })
    .await
    .expect("no diverged event");
    assert_eq!(diverged, (ours_before.clone(), theirs.clone()));
    assert_ne!(diverged.0, diverged.1, "ours and theirs are the same root");
    assert_eq!(
        hex::encode(a.node.store().root()),
        theirs,
        "A pulled B's entry"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neighbour_error_counters_are_in_metrics_at_zero_from_the_start() {
    let mut urls = Vec::new();
    for _ in 0..2 {
        let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
        urls.push(format!("http://{}", probe.local_addr().unwrap()));
    }
    // Forced p2p and a long poll: nothing has failed yet when metrics are read.
    let vars = [("LATTICE_MODE", "p2p"), ("LATTICE_HTTP_POLL", "60s")];
    let l = listeners(1).await.pop().unwrap();
    let node = start_node(l, &urls, &vars, 66).await;
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, node.node.registry()).unwrap();
    for url in &urls {
        // The first check may already have been refused; nothing else can have failed.
        let refused =
            format!("lattice_neighbor_errors_total{{neighbor=\"{url}/\",kind=\"connect\"}} ");
        assert!(text.contains(&refused), "no {refused:?} in\n{text}");
        for kind in ["timeout", "status", "forged_entry"] {
            let line =
                format!("lattice_neighbor_errors_total{{neighbor=\"{url}/\",kind=\"{kind}\"}} 0\n");
            assert!(text.contains(&line), "no {line:?} in\n{text}");
        }
    }
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_neighbour_down_through_a_long_standby_is_synced_soon_after_it_returns() {
    // B holds an entry, then goes away (its data kept for the restart).
    let lb = listeners(1).await.pop().unwrap();
    let b_addr = lb.local_addr().unwrap();
    let b = start_node(lb, &[], &[("LATTICE_MODE", "p2p")], 67).await;
    let put = b.node.put(&json!({ "held": "by b" })).await.unwrap();
    let b_dir = b.stop_keeping_data().await;

    let vars = [("LATTICE_MODE", "p2p"), ("LATTICE_HTTP_POLL", "100ms")];
    let la = listeners(1).await.pop().unwrap();
    let a = start_node(la, &[format!("http://{b_addr}")], &vars, 68).await;
    let failures = |a: &TestNode| a.status().neighbors[0].consecutive_failures;
    eventually("many standby checks of B fail", WAIT, || failures(&a) >= 12).await;
    let at_switch = failures(&a);
    a.node
        .switch_mode(lattice_node::config::Mode::Http)
        .await
        .unwrap();
    eventually("a sync with B fails too", WAIT, || failures(&a) > at_switch).await;

    let b = start_node_in(
        b_dir,
        TcpListener::bind(b_addr).await.unwrap(),
        &[],
        &[],
        67,
    )
    .await;
    // Backing off by the standby's failures too would wait 2^12 polls (capped at 5 min).
    eventually(
        "A pulls B's entry within seconds of B's return",
        Duration::from_secs(10),
        || a.node.store().contains(&put.id),
    )
    .await;
    a.stop().await;
    b.stop().await;
}

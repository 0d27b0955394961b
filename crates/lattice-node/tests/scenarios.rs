//! The scenarios Lattice exists for, with real nodes on loopback: P2P in the normal
//! world, HTTP taking over when P2P is cut (politely, or by a silent drop that only
//! liveness notices), P2P restored with nothing lost, and no false fallback on a slow
//! link. Faults on the P2P link come from a relay in the test (`test_relay`).

mod support;
#[path = "../src/p2p/test_relay.rs"]
mod test_relay;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;
use support::*;

fn counts(nodes: &[TestNode]) -> Vec<usize> {
    nodes.iter().map(|n| n.status().entry_count).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2p_carries_sync_then_http_takes_over_when_it_is_cut_then_p2p_returns() {
    let nodes = p2p_cluster(3, &[]).await;

    // 1. The normal world: everyone connected over P2P, sync over P2P.
    eventually(
        "every node has two sync peers and syncs over P2P",
        WAIT,
        || nodes.iter().all(|n| sync_peers(n) == 2) && all_in(&nodes, "P2P"),
    )
    .await;
    let mut written = HashSet::new();
    for (i, n) in nodes.iter().enumerate() {
        written.insert(
            n.node
                .put(&json!({ "scenario": 1, "node": i }))
                .await
                .unwrap()
                .id,
        );
    }
    eventually(
        "entries written anywhere reach everyone over P2P",
        WAIT,
        || counts(&nodes) == [3, 3, 3] && roots_equal(&nodes),
    )
    .await;
    assert!(all_in(&nodes, "P2P"));
    assert!(nodes.iter().all(|n| !n.status().http_sync_enabled));

    // 2. An attack kills P2P: every node cuts every connection and refuses new ones.
    for n in &nodes {
        let s = n.node.set_p2p_blocked(true).await.unwrap();
        assert!(s.p2p_blocked);
    }
    eventually(
        "after the fallback time every node syncs over HTTP",
        WAIT,
        || all_in(&nodes, "HTTP") && nodes.iter().all(|n| n.status().peer_count == 0),
    )
    .await;
    for (i, n) in nodes.iter().enumerate().skip(1) {
        written.insert(
            n.node
                .put(&json!({ "scenario": 2, "node": i }))
                .await
                .unwrap()
                .id,
        );
    }
    eventually(
        "entries written during the cut still reach everyone",
        WAIT,
        || counts(&nodes) == [5, 5, 5] && roots_equal(&nodes),
    )
    .await;

    // 3. P2P restored: back to P2P, HTTP on standby, nothing lost.
    for n in &nodes {
        n.node.set_p2p_blocked(false).await.unwrap();
    }
    eventually(
        "every node returns to P2P with HTTP on standby",
        WAIT,
        || {
            all_in(&nodes, "P2P")
                && nodes
                    .iter()
                    .all(|n| !n.status().http_sync_enabled && sync_peers(n) == 2)
        },
    )
    .await;
    written.insert(
        nodes[2]
            .node
            .put(&json!({ "scenario": 3 }))
            .await
            .unwrap()
            .id,
    );
    eventually("roots equal after recovery", WAIT, || {
        counts(&nodes) == [6, 6, 6] && roots_equal(&nodes)
    })
    .await;
    for n in &nodes {
        for id in &written {
            assert!(n.node.store().contains(id), "entry {id} lost");
        }
        let t = n.status().last_transition.unwrap();
        assert_eq!(t.to.to_string(), "P2P", "{t:?}");
    }
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_catches_up_over_p2p() {
    // Forced p2p: HTTP cannot be what carries the catch-up.
    let nodes = p2p_cluster(2, &[("LATTICE_MODE", "p2p")]).await;
    eventually("connected", WAIT, || {
        nodes.iter().all(|n| sync_peers(n) == 1)
    })
    .await;
    let mut nodes = nodes;
    let second = nodes.pop().unwrap();
    let dir = second.stop_keeping_data().await;
    for i in 0..5 {
        nodes[0]
            .node
            .put(&json!({ "while_down": i }))
            .await
            .unwrap();
    }
    let boot = p2p_addr(&nodes[0]).await.join(",");
    let listener = listeners(1).await.pop().unwrap();
    let restarted = start_node_in(
        dir,
        listener,
        &[],
        &[("LATTICE_MODE", "p2p"), ("LATTICE_BOOTSTRAP", &boot)],
        101,
    )
    .await;
    eventually("the restarted node catches up over P2P", WAIT, || {
        restarted.status().entry_count == 5
            && restarted.status().merkle_root == nodes[0].status().merkle_root
    })
    .await;
    assert!(!restarted.status().http_sync_enabled);
    restarted.stop().await;
    for n in nodes {
        n.stop().await;
    }
}

/// Every snapshot `rx` shows until `done` holds satisfies: `peer_count` is the number of
/// sync-capable entries in `peers[]`, and `has_peers` says whether it is above zero.
async fn peer_count_agrees_until(
    rx: &mut tokio::sync::watch::Receiver<lattice_node::status::Status>,
    what: &str,
    done: impl Fn(&lattice_node::status::Status) -> bool,
) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        {
            let s = rx.borrow_and_update();
            let capable = s.peers.iter().filter(|p| p.info.sync_capable).count();
            assert_eq!(s.peer_count, capable, "peer_count disagrees with peers[]");
            assert_eq!(s.has_peers, capable > 0, "has_peers disagrees with peers[]");
            if done(&s) {
                return;
            }
        }
        let Ok(changed) = tokio::time::timeout_at(deadline, rx.changed()).await else {
            // What the node showed last, so a failure says where it stood.
            let s = rx.borrow();
            panic!(
                "timed out waiting for: {what}; last snapshot: peer_count {}, peers {:?}, states {:?}",
                s.peer_count,
                s.peers
                    .iter()
                    .map(|p| (&p.info.peer_id, p.info.sync_capable, p.info.in_mesh))
                    .collect::<Vec<_>>(),
                s.states,
            );
        };
        changed.expect("the node stopped publishing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_count_and_has_peers_follow_the_peer_list_in_every_snapshot() {
    // A slow heartbeat: a count sampled at the heartbeat would lag the list for seconds.
    let nodes = p2p_cluster(
        2,
        &[
            ("LATTICE_HEARTBEAT", "3s"),
            ("LATTICE_PEER_TIMEOUT", "9s"),
            ("LATTICE_FALLBACK_AFTER", "30s"),
        ],
    )
    .await;
    let mut rx = nodes[0].node.subscribe_status();
    peer_count_agrees_until(&mut rx, "the peer counts", |s| s.peer_count == 1).await;
    nodes[1].node.set_p2p_blocked(true).await.unwrap();
    peer_count_agrees_until(&mut rx, "the peer is gone", |s| s.peers.is_empty()).await;
    for n in nodes {
        n.stop().await;
    }
}

fn socket_of(addr: &str) -> SocketAddr {
    // "/ip4/127.0.0.1/tcp/PORT/p2p/ID"
    let parts: Vec<&str> = addr.split('/').collect();
    format!("{}:{}", parts[2], parts[4]).parse().unwrap()
}

fn relay_addr(r: &test_relay::Relay) -> String {
    format!("/ip4/127.0.0.1/tcp/{}", r.addr().port())
}

/// Two nodes whose every P2P path goes through a relay: each tells its peers the
/// relay's address instead of its own, so a redial cannot get around a fault. They are
/// each other's HTTP neighbours, which no relay stands between.
async fn relayed_nodes(timers: &[(&str, &str)]) -> ([TestNode; 2], [test_relay::Relay; 2]) {
    use test_relay::Relay;
    let relays = [Relay::bind().await, Relay::bind().await];
    let ls = listeners(2).await;
    let urls = urls_of(&ls);
    let mut ls = ls.into_iter();
    let announce = |i: usize| {
        let a: lattice_node::p2p::Multiaddr = relay_addr(&relays[i]).parse().unwrap();
        move |o: &mut lattice_node::node::NodeOptions| o.p2p_announce = vec![a]
    };
    let first = start_node_with(
        tempfile::tempdir().unwrap(),
        ls.next().unwrap(),
        &others(&urls, 0),
        timers,
        100,
        announce(0),
    )
    .await;
    let first_p2p = p2p_addr(&first).await[0].clone();
    relays[0].forward_to(socket_of(&first_p2p));
    let boot = format!("{}/p2p/{}", relay_addr(&relays[0]), first.node.peer_id());
    let mut vars = timers.to_vec();
    vars.push(("LATTICE_BOOTSTRAP", &boot));
    let second = start_node_with(
        tempfile::tempdir().unwrap(),
        ls.next().unwrap(),
        &others(&urls, 1),
        &vars,
        101,
        announce(1),
    )
    .await;
    relays[1].forward_to(socket_of(&p2p_addr(&second).await[0]));
    let nodes = [first, second];
    eventually("both nodes sync over P2P", WAIT, || {
        all_in(&nodes, "P2P") && nodes.iter().all(|n| sync_peers(n) == 1)
    })
    .await;
    (nodes, relays)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_drop_of_p2p_falls_back_to_http_within_the_bound_and_p2p_returns_after_the_heal() {
    use test_relay::Mode;
    let (heartbeat, peer_timeout, fallback) = (200, 1000, 1000);
    let (h, t, f) = (
        format!("{heartbeat}ms"),
        format!("{peer_timeout}ms"),
        format!("{fallback}ms"),
    );
    let timers = [
        ("LATTICE_HEARTBEAT", h.as_str()),
        ("LATTICE_PEER_TIMEOUT", t.as_str()),
        ("LATTICE_FALLBACK_AFTER", f.as_str()),
        ("LATTICE_HTTP_POLL", "200ms"),
    ];
    let (nodes, relays) = relayed_nodes(&timers).await;

    for r in &relays {
        r.set(Mode::Blackhole);
    }
    let cut = std::time::Instant::now();
    eventually("every node falls back to HTTP", WAIT, || {
        all_in(&nodes, "HTTP") && nodes.iter().all(|n| n.status().http_sync_enabled)
    })
    .await;
    let took = cut.elapsed();
    // The bound, plus one second for a busy machine's scheduling.
    let bound = Duration::from_millis(peer_timeout + fallback + 2 * heartbeat);
    assert!(
        took <= bound + Duration::from_secs(1),
        "fell back after {took:?}; the bound is {bound:?}"
    );
    assert!(nodes.iter().all(|n| n.status().peer_count == 0));

    let mut written = HashSet::new();
    for (i, n) in nodes.iter().enumerate() {
        written.insert(n.node.put(&json!({ "partition": i })).await.unwrap().id);
    }
    eventually(
        "entries written in the partition cross over HTTP",
        WAIT,
        || counts(&nodes) == [2, 2] && roots_equal(&nodes),
    )
    .await;

    for r in &relays {
        r.set(Mode::Pass);
    }
    let healed = std::time::Instant::now();
    eventually("P2P returns on every node after the heal", WAIT, || {
        all_in(&nodes, "P2P")
            && nodes
                .iter()
                .all(|n| sync_peers(n) == 1 && !n.status().http_sync_enabled)
    })
    .await;
    println!(
        "fell back {took:?} after the drop (bound {bound:?}); P2P back {:?} after the heal",
        healed.elapsed()
    );
    written.insert(
        nodes[1]
            .node
            .put(&json!({ "healed": true }))
            .await
            .unwrap()
            .id,
    );
    eventually("roots equal after the heal", WAIT, || {
        counts(&nodes) == [3, 3] && roots_equal(&nodes)
    })
    .await;
    for n in &nodes {
        for id in &written {
            assert!(n.node.store().contains(id), "entry {id} lost");
        }
    }
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_p2p_link_that_still_answers_causes_no_fallback() {
    let timers = [
        ("LATTICE_HEARTBEAT", "250ms"),
        ("LATTICE_PEER_TIMEOUT", "3s"),
        ("LATTICE_FALLBACK_AFTER", "1s"),
    ];
    let (nodes, relays) = relayed_nodes(&timers).await;
    // 200 ms each way, a 400 ms round trip: twice the issue's.
    for r in &relays {
        r.set(test_relay::Mode::Delay(Duration::from_millis(200)));
    }
    eventually("pings show the delay", WAIT, || {
        nodes.iter().all(|n| {
            n.status()
                .peers
                .iter()
                .any(|p| p.info.rtt_ms.is_some_and(|r| r >= 400.0))
        })
    })
    .await;
    let before: Vec<_> = nodes.iter().map(|n| n.status().last_transition).collect();
    let e = nodes[0]
        .node
        .put(&json!({ "slow": true }))
        .await
        .unwrap()
        .id;
    // Longer than peer timeout + fallback: any false fallback would have happened.
    let until = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < until {
        for n in &nodes {
            let s = n.status();
            assert_eq!(s.peer_count, 1, "the slow peer stopped counting");
            assert!(!s.http_sync_enabled, "a false fallback");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after: Vec<_> = nodes.iter().map(|n| n.status().last_transition).collect();
    assert_eq!(before, after, "no mode transition under mere latency");
    assert!(
        nodes[1].node.store().contains(&e),
        "the entry crossed the slow link"
    );
    for n in nodes {
        n.stop().await;
    }
}

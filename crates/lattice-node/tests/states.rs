//! The lung states in a real node's snapshot match its real situation: two nodes on
//! loopback, linked by P2P and HTTP, taken through a cut, forced modes and a peer's end.

mod support;

use lattice_node::config::Mode;
use lattice_node::status::{FallbackPhase, HttpState, P2pState, Status, SyncState};
use support::*;

fn states(s: &Status) -> (P2pState, HttpState, SyncState) {
    (s.states.p2p_state, s.states.http_state, s.states.sync_state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_states_follow_the_node_through_cut_forced_modes_and_a_peer_leaving() {
    // A fallback long enough that the countdown is seen, short enough for a test.
    let timers = [("LATTICE_FALLBACK_AFTER", "1500ms")];
    let ls = listeners(2).await;
    let urls = urls_of(&ls);
    let mut ls = ls.into_iter();
    let a_vars = [timers[0], ("LATTICE_NODE_NAME", "Branch A")];
    let a = start_node(ls.next().unwrap(), &others(&urls, 0), &a_vars, 41).await;
    let boot = p2p_addr(&a).await.join(",");
    let b_vars = [
        timers[0],
        ("LATTICE_NODE_NAME", "Branch B"),
        ("LATTICE_BOOTSTRAP", boot.as_str()),
    ];
    let b = start_node(ls.next().unwrap(), &others(&urls, 1), &b_vars, 42).await;
    assert_eq!(a.status().node.name.as_deref(), Some("Branch A"));

    // Every snapshot a face sees of A comes with a larger seq than the one before.
    let mut watch = a.node.subscribe_status();
    let seqs = tokio::spawn(async move {
        let mut seen = vec![watch.borrow_and_update().seq];
        while watch.changed().await.is_ok() {
            seen.push(watch.borrow_and_update().seq);
        }
        seen
    });

    // P2P carrying with a peer; HTTP on standby with the neighbour checked healthy,
    // and the neighbour known by the PeerId and name its state answer gave.
    eventually("A carries over P2P, HTTP on standby", WAIT, || {
        states(&a.status()) == (P2pState::Carrying, HttpState::Standby, SyncState::P2p)
    })
    .await;
    assert_eq!(a.status().states.fallback_phase, FallbackPhase::Watching);
    eventually("A knows B's PeerId and name", WAIT, || {
        let s = a.status();
        s.neighbors[0].peer_id.as_deref() == Some(b.node.peer_id())
            && s.neighbors[0].name.as_deref() == Some("Branch B")
    })
    .await;

    // An entry written on A reaches B by P2P, and the P2P counters say so.
    a.node.put(&serde_json::json!({"n": 1})).await.unwrap();
    eventually("B counts an entry received over P2P", WAIT, || {
        b.status().entries_by_lung.p2p.received >= 1
    })
    .await;
    eventually("A counts an entry sent over P2P", WAIT, || {
        a.status().entries_by_lung.p2p.sent >= 1
    })
    .await;
    assert_eq!(b.status().entries_by_lung.http.received, 0);

    // Cut: P2P says so at once; after the fallback HTTP carries with the healthy B.
    let cut = a.node.set_p2p_blocked(true).await.unwrap();
    assert_eq!(cut.states.p2p_state, P2pState::Cut);
    eventually("A carries over HTTP after the fallback", WAIT, || {
        let s = a.status();
        states(&s) == (P2pState::Cut, HttpState::Carrying, SyncState::Http)
            && s.states.fallback_phase == FallbackPhase::Active
    })
    .await;
    b.node.put(&serde_json::json!({"n": 2})).await.unwrap();
    eventually("A counts an entry received over HTTP", WAIT, || {
        a.status().entries_by_lung.http.received >= 1
    })
    .await;

    // Restored: back on P2P.
    a.node.set_p2p_blocked(false).await.unwrap();
    eventually("A carries over P2P again", WAIT, || {
        let s = a.status();
        s.states.p2p_state == P2pState::Carrying && s.states.sync_state == SyncState::P2p
    })
    .await;

    // Forced modes turn the other lung off.
    let http = a.node.switch_mode(Mode::Http).await.unwrap();
    assert_eq!(http.states.p2p_state, P2pState::Off);
    assert_eq!(http.states.fallback_phase, FallbackPhase::Forced);
    eventually("forced http carries over HTTP", WAIT, || {
        states(&a.status()) == (P2pState::Off, HttpState::Carrying, SyncState::Http)
    })
    .await;
    let p2p = a.node.switch_mode(Mode::P2p).await.unwrap();
    assert_eq!(p2p.states.http_state, HttpState::Off);
    eventually("forced p2p carries over P2P", WAIT, || {
        states(&a.status()) == (P2pState::Carrying, HttpState::Off, SyncState::P2p)
    })
    .await;
    a.node.switch_mode(Mode::Auto).await.unwrap();
    eventually("auto on P2P again", WAIT, || {
        states(&a.status()).0 == P2pState::Carrying
            && a.status().states.sync_state == SyncState::P2p
    })
    .await;

    // The peer leaves: a countdown (nothing carries meanwhile), then HTTP fails too
    // (B was the only neighbour): isolated.
    b.stop().await;
    eventually("A counts down after the peer left", WAIT, || {
        let s = a.status();
        s.states.p2p_state == P2pState::Countdown
            && s.states.fallback_phase == FallbackPhase::Countdown
            && s.states.sync_state == SyncState::Isolated
            && s.fallback_deadline_ms.is_some()
    })
    .await;
    eventually("A is isolated after the fallback", WAIT, || {
        states(&a.status()) == (P2pState::Down, HttpState::Failing, SyncState::Isolated)
    })
    .await;

    // The last snapshot is read once A has stopped: a tick between reading it and the
    // stop publishes one more (seen once in a full run: 49 seen, 48 read before).
    let after = a.node.detached();
    a.stop().await;
    let last = after.status().seq;
    let seqs = seqs.await.unwrap();
    assert!(seqs.len() > 5, "{seqs:?}");
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "seq strictly increases: {seqs:?}"
    );
    assert_eq!(*seqs.last().unwrap(), last);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_answer_names_the_node_by_peer_id_and_name() {
    let ls = listeners(1).await;
    let a = start_node(
        ls.into_iter().next().unwrap(),
        &[],
        &[("LATTICE_NODE_NAME", "Branch A")],
        43,
    )
    .await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let text = http
        .get(format!("{}api/lattice/state", a.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["node"], a.node.peer_id());
    assert_eq!(body["name"], "Branch A");
    let s = serde_json::to_value(a.status()).unwrap();
    assert_eq!(s["node"]["name"], "Branch A");
    a.stop().await;
}

/// What one side takes, the other counts given: entries a neighbour's reconciliation
/// fetched from a node are that node's "sent", on each lung, not only what it pushed
/// itself. B holds entries and asks nobody; A reconciles with B, so everything A receives
/// B served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_a_neighbour_or_peer_takes_count_as_sent_on_the_lung_that_carried_them() {
    const K: u64 = 3;
    // HTTP: A lists B as its neighbour, B lists nobody.
    let ls = listeners(2).await;
    let urls = urls_of(&ls);
    let mut ls = ls.into_iter();
    let http = [("LATTICE_MODE", "http")];
    let b = holding(K, ls.next().unwrap(), &http, 51).await;
    let a = start_node(ls.next().unwrap(), &urls[..1], &http, 52).await;
    eventually("A holds B's entries, received over HTTP", WAIT, || {
        a.status().entries_by_lung.http.received == K
    })
    .await;
    eventually("B counts them sent over HTTP", WAIT, || {
        b.status().entries_by_lung.http.sent == K
    })
    .await;
    assert_eq!(a.status().entries_by_lung.http.sent, 0);
    assert_eq!(b.status().entries_by_lung.http.received, 0);
    a.stop().await;
    b.stop().await;

    // P2P: D dials C, which holds the entries. Whichever side reconciles first, D
    // receives each entry once and C gave each at least once (served or pushed).
    let ls = listeners(2).await;
    let mut ls = ls.into_iter();
    let p2p = [("LATTICE_MODE", "p2p")];
    let c = holding(K, ls.next().unwrap(), &p2p, 53).await;
    let boot = p2p_addr(&c).await.join(",");
    let d_vars = [p2p[0], ("LATTICE_BOOTSTRAP", boot.as_str())];
    let d = start_node(ls.next().unwrap(), &[], &d_vars, 54).await;
    eventually("D holds C's entries, received over P2P", WAIT, || {
        d.status().entries_by_lung.p2p.received == K
    })
    .await;
    eventually("C counts them sent over P2P", WAIT, || {
        c.status().entries_by_lung.p2p.sent >= K
    })
    .await;
    assert_eq!(c.status().entries_by_lung.p2p.received, 0);
    c.stop().await;
    d.stop().await;
}

/// A node with no neighbour that holds `k` entries of its own.
async fn holding(
    k: u64,
    listener: tokio::net::TcpListener,
    vars: &[(&str, &str)],
    seed: u8,
) -> TestNode {
    let node = start_node(listener, &[], vars, seed).await;
    for n in 0..k {
        node.node
            .put(&serde_json::json!({ "served": n }))
            .await
            .unwrap();
    }
    node
}

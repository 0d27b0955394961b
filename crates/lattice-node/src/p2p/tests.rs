//! Two real swarms on 127.0.0.1: connection, gossip, forgery, reconciliation, blocking.
//! Every wait is a condition with a deadline.

use std::future::Future;
use std::time::Duration;

use libp2p::multiaddr::Protocol;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

use super::*;
use crate::ledger::{DEFAULT_MAX_PAYLOAD, StoreOptions};
use crate::sync::reconcile::{Remote, reconcile};

pub(super) const DEADLINE: Duration = Duration::from_secs(5);

pub(super) struct TestPeer {
    pub handle: P2pHandle,
    pub events: mpsc::Receiver<P2pEvent>,
    pub store: Store,
    pub key: NodeKey,
    pub cancel: CancellationToken,
    _dir: tempfile::TempDir,
}

impl TestPeer {
    pub(super) fn new(
        handle: P2pHandle,
        events: mpsc::Receiver<P2pEvent>,
        store: Store,
        key: NodeKey,
        cancel: CancellationToken,
        dir: tempfile::TempDir,
    ) -> Self {
        Self {
            handle,
            events,
            store,
            key,
            cancel,
            _dir: dir,
        }
    }
}

impl Drop for TestPeer {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

pub(super) fn config(key: &NodeKey, bootstrap: Vec<Multiaddr>) -> P2pConfig {
    P2pConfig {
        key: key.clone(),
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        bootstrap,
        allow: None,
        mdns: false,
        max_payload: DEFAULT_MAX_PAYLOAD,
        redial_min: Duration::from_millis(50),
        redial_max: Duration::from_millis(400),
        request_timeout: Duration::from_secs(3),
        peer_timeout: Duration::from_secs(2),
        ping_interval: Duration::from_millis(200),
        dial_timeout: Duration::from_secs(2),
        gossip_heartbeat: Duration::from_millis(100),
        psk: None,
        announce: Vec::new(),
        relays: Vec::new(),
        upnp: false,
        autonat_global_only: true,
        peer_rate: None,
        sync_json_only: false,
    }
}

async fn start(seed: u8, bootstrap: Vec<Multiaddr>) -> TestPeer {
    start_with(seed, bootstrap, None).await
}

async fn start_with(seed: u8, bootstrap: Vec<Multiaddr>, allow: Option<Vec<PeerId>>) -> TestPeer {
    start_full(seed, bootstrap, allow, None).await
}

async fn start_full(
    seed: u8,
    bootstrap: Vec<Multiaddr>,
    allow: Option<Vec<PeerId>>,
    psk: Option<[u8; 32]>,
) -> TestPeer {
    start_custom(seed, |c| {
        c.bootstrap = bootstrap;
        c.allow = allow;
        c.psk = psk;
    })
    .await
}

/// A peer with the test configuration, changed by `adjust`.
pub(super) async fn start_custom(seed: u8, adjust: impl FnOnce(&mut P2pConfig)) -> TestPeer {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let key = NodeKey::from_seed([seed; 32]);
    let cancel = CancellationToken::new();
    let mut config = config(&key, Vec::new());
    adjust(&mut config);
    let (handle, events) = spawn(config, store.clone(), cancel.clone()).unwrap();
    TestPeer {
        handle,
        events,
        store,
        key,
        cancel,
        _dir: dir,
    }
}

pub(super) async fn dial_addr(peer: &TestPeer) -> Multiaddr {
    let addrs = peer.handle.listen_addrs().await;
    assert!(!addrs.is_empty(), "the swarm reports where it listens");
    addrs[0].clone().with(Protocol::P2p(peer.handle.peer_id()))
}

/// A, and B bootstrapped to A; both see one sync peer.
async fn connected_pair() -> (TestPeer, TestPeer) {
    let mut a = start(1, vec![]).await;
    let mut b = start(2, vec![dial_addr(&a).await]).await;
    next_event(&mut a, |e| *e == P2pEvent::SyncPeers { count: 1 }).await;
    next_event(&mut b, |e| *e == P2pEvent::SyncPeers { count: 1 }).await;
    (a, b)
}

pub(super) async fn next_event(peer: &mut TestPeer, want: impl Fn(&P2pEvent) -> bool) -> P2pEvent {
    let wait = async {
        loop {
            let event = peer.events.recv().await.expect("the swarm task is running");
            if want(&event) {
                return event;
            }
        }
    };
    timeout(DEADLINE, wait)
        .await
        .expect("the expected event came before the deadline")
}

pub(super) async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + DEADLINE;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub(super) fn entry(key: &NodeKey, n: u64) -> Entry {
    Entry::sign(
        key,
        1_700_000_000_000 + n,
        &json!({ "n": n }),
        DEFAULT_MAX_PAYLOAD,
    )
    .unwrap()
}

pub(super) async fn in_mesh(from: &TestPeer, peer: PeerId) -> bool {
    let id = peer.to_string();
    from.handle
        .peers()
        .await
        .iter()
        .any(|p| p.peer_id == id && p.in_mesh)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrapped_peers_connect_and_both_count_one_sync_peer() {
    let (a, b) = connected_pair().await;
    let peers = a.handle.peers().await;
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].peer_id, b.handle.peer_id().to_string());
    assert_eq!(peers[0].transport, "tcp");
    assert!(peers[0].sync_capable);
    assert!(peers[0].address.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_published_on_one_peer_is_stored_by_the_other() {
    let (a, b) = connected_pair().await;
    let b_id = b.handle.peer_id();
    eventually("B is in A's gossip mesh", || in_mesh(&a, b_id)).await;

    let e = entry(&a.key, 1);
    a.store.append(e.clone()).await.unwrap();
    a.handle.publish(&e).await;
    eventually("B stores the gossiped entry", || async {
        b.store.contains(&e.id())
    })
    .await;
    assert_eq!(a.store.root(), b.store.root());
}

/// Gossip brings each entry once per mesh peer; only the first copy is worth a signature
/// check (issue 12). A copy of an entry the node already holds costs none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gossiped_copy_of_a_held_entry_is_not_verified_again() {
    let (a, b) = connected_pair().await;
    let b_id = b.handle.peer_id();
    eventually("B is in A's gossip mesh", || in_mesh(&a, b_id)).await;

    // B already holds `held` (as after a reconciliation); A gossips it, then a new one.
    let held = entry(&a.key, 1);
    b.store.append(held.clone()).await.unwrap();
    a.store.append(held.clone()).await.unwrap();
    a.handle.publish(&held).await;
    let fresh = entry(&a.key, 2);
    a.store.append(fresh.clone()).await.unwrap();
    a.handle.publish(&fresh).await;
    eventually("B stores the new entry", || async {
        b.store.contains(&fresh.id())
    })
    .await;
    // One peer's gossip is handled in order: the copy came before the new entry.
    assert_eq!(b.handle.gossip_signature_checks(), 1);
    assert_eq!(b.store.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_gossiped_entry_is_rejected_and_never_stored() {
    let (a, mut b) = connected_pair().await;
    let b_id = b.handle.peer_id();
    eventually("B is in A's gossip mesh", || in_mesh(&a, b_id)).await;

    let mut forged: serde_json::Value = serde_json::from_str(&entry(&a.key, 7).to_json()).unwrap();
    let sig = forged["signature"].as_str().unwrap().to_string();
    let flipped = if sig.starts_with('0') { "1" } else { "0" };
    forged["signature"] = json!(format!("{flipped}{}", &sig[1..]));
    a.handle.publish_raw(forged.to_string().into_bytes()).await;

    let event = next_event(&mut b, |e| matches!(e, P2pEvent::GossipRejected { .. })).await;
    assert!(matches!(event, P2pEvent::GossipRejected { peer, .. } if peer == a.handle.peer_id()));
    assert_eq!(b.store.len(), 0, "the forged entry is never stored");
    let score = b.handle.gossip_score(a.handle.peer_id()).await.unwrap();
    assert!(score < 0.0, "the forger's score fell: {score}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_over_p2p_pulls_and_pushes_the_difference() {
    let (a, b) = connected_pair().await;
    let shared = entry(&a.key, 0);
    let only_a: Vec<Entry> = (1..=5).map(|n| entry(&a.key, n)).collect();
    let only_b: Vec<Entry> = (10..=12).map(|n| entry(&b.key, n)).collect();
    let mut batch_a = only_a.clone();
    batch_a.push(shared.clone());
    let mut batch_b = only_b.clone();
    batch_b.push(shared);
    a.store.append_batch(batch_a).await.unwrap();
    b.store.append_batch(batch_b).await.unwrap();
    assert_ne!(a.store.root(), b.store.root());

    let remote = b.handle.remote(a.handle.peer_id());
    let report = reconcile(&b.store, &remote, DEFAULT_MAX_PAYLOAD)
        .await
        .unwrap();
    assert_eq!(report.pulled, only_a.len());
    assert_eq!(report.pushed, only_b.len());
    assert_eq!(a.store.root(), b.store.root());
    assert_eq!(a.store.len(), 9);
    let (sent, received) = remote.bytes();
    assert!(sent > 0 && received > 0);

    let again = reconcile(&b.store, &remote, DEFAULT_MAX_PAYLOAD)
        .await
        .unwrap();
    assert!(again.in_sync_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_cuts_p2p_refuses_redials_and_unblocking_reconnects() {
    let (mut a, mut b) = connected_pair().await;

    a.handle.set_blocked(true).await;
    next_event(&mut a, |e| *e == P2pEvent::SyncPeers { count: 0 }).await;
    next_event(&mut b, |e| *e == P2pEvent::SyncPeers { count: 0 }).await;
    eventually("B's redial is refused by A", || async {
        a.handle.denied_connections().await >= 2
    })
    .await;
    assert!(a.handle.peers().await.is_empty());
    assert!(b.handle.peers().await.is_empty());

    a.handle.set_blocked(false).await;
    next_event(&mut a, |e| *e == P2pEvent::SyncPeers { count: 1 }).await;
    next_event(&mut b, |e| *e == P2pEvent::SyncPeers { count: 1 }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allow_list_admits_listed_peers_and_refuses_the_rest() {
    let listed = NodeKey::from_seed([2; 32]).peer_id();
    let mut a = start_with(1, vec![], Some(vec![listed])).await;
    let a_addr = dial_addr(&a).await;
    let stranger = start(3, vec![a_addr.clone()]).await;
    let mut b = start(2, vec![a_addr]).await;
    next_event(&mut b, |e| *e == P2pEvent::SyncPeers { count: 1 }).await;
    next_event(&mut a, |e| *e == P2pEvent::SyncPeers { count: 1 }).await;

    let refused = reconcile(
        &stranger.store,
        &stranger.handle.remote(a.handle.peer_id()),
        DEFAULT_MAX_PAYLOAD,
    )
    .await;
    assert!(refused.is_err(), "a peer off the list cannot sync");
    let peers = a.handle.peers().await;
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].peer_id, listed.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pre_shared_key_admits_holders_and_keeps_others_out() {
    let key = Some([7u8; 32]);
    let mut a = start_full(1, vec![], None, key).await;
    let a_addr = dial_addr(&a).await;
    let outsider = start_full(3, vec![a_addr.clone()], None, Some([8u8; 32])).await;
    let plain = start(4, vec![a_addr.clone()]).await;
    let mut b = start_full(2, vec![a_addr], None, key).await;
    next_event(&mut b, |e| *e == P2pEvent::SyncPeers { count: 1 }).await;
    next_event(&mut a, |e| *e == P2pEvent::SyncPeers { count: 1 }).await;
    for other in [&outsider, &plain] {
        let refused = reconcile(
            &other.store,
            &other.handle.remote(a.handle.peer_id()),
            DEFAULT_MAX_PAYLOAD,
        )
        .await;
        assert!(refused.is_err(), "a node without the key cannot sync");
    }
    let peers = a.handle.peers().await;
    assert_eq!(peers.len(), 1, "{peers:?}");
    assert_eq!(peers[0].peer_id, b.handle.peer_id().to_string());
}

#[test]
fn entries_messages_survive_the_json_envelope() {
    let key = NodeKey::from_seed([9; 32]);
    let (msg, _) = crate::sync::reconcile::bounded_message(&[entry(&key, 1)]);
    let text = serde_json::to_string(&SyncRequest::Push(msg)).unwrap();
    let back: SyncRequest = serde_json::from_slice(text.as_bytes()).unwrap();
    let SyncRequest::Push(back) = back else {
        panic!("a push comes back as a push")
    };
    assert_eq!(
        Entry::from_json(back.entries[0].get(), DEFAULT_MAX_PAYLOAD).unwrap(),
        entry(&key, 1)
    );
    let state = serde_json::to_string(&SyncRequest::State).unwrap();
    assert_eq!(state, "\"state\"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libp2p_metrics_are_exported_under_one_libp2p_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let key = NodeKey::from_seed([1; 32]);
    let cancel = CancellationToken::new();
    let mut registry = prometheus_client::registry::Registry::default();
    let _ = spawn_with_metrics(config(&key, vec![]), store, cancel.clone(), &mut registry).unwrap();
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    cancel.cancel();
    assert!(text.contains("libp2p_swarm_"), "{text}");
    assert!(!text.contains("libp2p_libp2p_"), "{text}");
}

//! Reconciliation v2 over two real swarms on 127.0.0.1, and its negotiation with peers
//! that speak v1 only.

use super::tests::{TestPeer, dial_addr, entry, next_event, start_custom};
use super::*;
use crate::ledger::DEFAULT_MAX_PAYLOAD;
use crate::sync::reconcile::{
    ChildrenRequest, ChildrenResponse, EntriesMessage, FetchRequest, IdsRequest, IdsResponse,
    LedgerState, PushResponse, Remote, TransportError, reconcile, reconcile_with,
};
use crate::sync::reconcile_v2::{Method, Options};

/// A, and B bootstrapped to A (seeds of this file only); both see one sync peer.
async fn pair(seed: u8) -> (TestPeer, TestPeer) {
    let mut a = start_custom(seed, |_| {}).await;
    let addr = dial_addr(&a).await;
    let mut b = start_custom(seed + 1, |c| c.bootstrap = vec![addr]).await;
    next_event(&mut a, |e| *e == P2pEvent::SyncPeers { count: 1 }).await;
    next_event(&mut b, |e| *e == P2pEvent::SyncPeers { count: 1 }).await;
    (a, b)
}

/// Gives A `only_a` and B `only_b` on top of `shared` entries.
async fn fill(a: &TestPeer, b: &TestPeer, shared: u64, only_a: u64, only_b: u64) {
    let common: Vec<Entry> = (0..shared).map(|n| entry(&a.key, n)).collect();
    let mut batch_a = common.clone();
    batch_a.extend((1000..1000 + only_a).map(|n| entry(&a.key, n)));
    let mut batch_b = common;
    batch_b.extend((2000..2000 + only_b).map(|n| entry(&b.key, n)));
    a.store.append_batch(batch_a).await.unwrap();
    b.store.append_batch(batch_b).await.unwrap();
}

/// The P2P remote of a peer as an older node would answer its state: no versions.
/// (Everything else goes over the real swarm.)
struct AnnouncesV1Only<'a>(&'a P2pRemote);

impl Remote for AnnouncesV1Only<'_> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_v2_over_p2p_finds_the_difference_through_the_sketch() {
    let (a, b) = pair(61).await;
    fill(&a, &b, 200, 6, 3).await;

    let remote = b.handle.remote(a.handle.peer_id());
    let report = reconcile(&b.store, &remote, DEFAULT_MAX_PAYLOAD)
        .await
        .unwrap();
    assert_eq!(report.method, Method::Sketch);
    assert!(report.symbols > 0);
    assert_eq!((report.pulled, report.pushed), (6, 3));
    assert_eq!(a.store.root(), b.store.root());
    let again = reconcile(&b.store, &remote, DEFAULT_MAX_PAYLOAD)
        .await
        .unwrap();
    assert!(again.in_sync_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v1_only_asker_reconciles_with_a_v2_node_over_p2p() {
    let (a, b) = pair(63).await;
    fill(&a, &b, 100, 4, 2).await;

    let remote = b.handle.remote(a.handle.peer_id());
    let old = Options {
        v1_only: true,
        ..Options::default()
    };
    let report = reconcile_with(&b.store, &remote, DEFAULT_MAX_PAYLOAD, &old)
        .await
        .unwrap();
    assert_eq!(report.method, Method::Walk);
    assert_eq!((report.pulled, report.pushed), (4, 2));
    assert_eq!(a.store.root(), b.store.root());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v2_asker_walks_with_a_p2p_peer_that_announces_v1_only() {
    let (a, b) = pair(65).await;
    fill(&a, &b, 100, 3, 5).await;

    let remote = b.handle.remote(a.handle.peer_id());
    let old_peer = AnnouncesV1Only(&remote);
    let report = reconcile(&b.store, &old_peer, DEFAULT_MAX_PAYLOAD)
        .await
        .unwrap();
    assert_eq!(report.method, Method::Walk);
    assert_eq!(report.symbols, 0, "no sketch was asked of a v1 peer");
    assert_eq!((report.pulled, report.pushed), (3, 5));
    assert_eq!(a.store.root(), b.store.root());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_p2p_sketch_that_does_not_decode_within_its_cap_falls_back_to_ids() {
    let (a, b) = pair(67).await;
    fill(&a, &b, 100, 30, 30).await;

    let remote = b.handle.remote(a.handle.peer_id());
    let capped = Options {
        max_symbols: Some(24),
        ..Options::default()
    };
    let report = reconcile_with(&b.store, &remote, DEFAULT_MAX_PAYLOAD, &capped)
        .await
        .unwrap();
    // Equal counts: the hello brought 20 symbols; one page of 4 more reached the cap.
    assert_eq!(report.method, Method::Ids, "60 differences in 24 symbols");
    assert_eq!(report.symbols, 24);
    assert_eq!((report.pulled, report.pushed), (30, 30));
    assert_eq!(a.store.root(), b.store.root());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_ledgers_over_the_binary_protocol_cost_one_hello_of_at_most_64_bytes() {
    let (a, b) = pair(69).await;
    fill(&a, &b, 50, 0, 0).await;

    let remote = b.handle.remote(a.handle.peer_id());
    let report = reconcile(&b.store, &remote, DEFAULT_MAX_PAYLOAD)
        .await
        .unwrap();
    assert!(report.in_sync_before);
    assert_eq!(report.requests, 1);
    // The hello and its answer, each behind a one-byte tag.
    let bytes = report.bytes_sent + report.bytes_received;
    assert!(bytes <= 64, "{bytes} bytes to find equal ledgers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v2_asker_reconciles_with_a_peer_that_speaks_only_the_json_protocol() {
    // A offers only `/lattice/sync/1.0.0`, as nodes before the binary protocol do.
    let mut a = start_custom(71, |c| c.sync_json_only = true).await;
    let addr = dial_addr(&a).await;
    let mut b = start_custom(72, |c| c.bootstrap = vec![addr]).await;
    next_event(&mut a, |e| *e == P2pEvent::SyncPeers { count: 1 }).await;
    next_event(&mut b, |e| *e == P2pEvent::SyncPeers { count: 1 }).await;
    fill(&a, &b, 100, 5, 4).await;

    // Both ways: the current node asking the older one, and the older one asking.
    let remote = b.handle.remote(a.handle.peer_id());
    let report = reconcile(&b.store, &remote, DEFAULT_MAX_PAYLOAD)
        .await
        .unwrap();
    assert_eq!(
        report.method,
        Method::Sketch,
        "its state announces v2's sketch"
    );
    assert_eq!((report.pulled, report.pushed), (5, 4));
    assert_eq!(a.store.root(), b.store.root());
    b.store
        .append_batch(vec![entry(&b.key, 3000)])
        .await
        .unwrap();
    let back = a.handle.remote(b.handle.peer_id());
    let report = reconcile(&a.store, &back, DEFAULT_MAX_PAYLOAD)
        .await
        .unwrap();
    assert_eq!((report.pulled, report.pushed), (1, 0));
    assert_eq!(a.store.root(), b.store.root());
}

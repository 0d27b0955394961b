//! Real swarms on 127.0.0.1 holding configured ledgers: a non-member's entries are
//! refused on gossip (before forwarding), in P2P sync and in a P2P push; a peer of
//! another ledger is never a sync peer and is named.

use std::sync::Arc;

use super::tests::{DEADLINE, TestPeer, config, dial_addr, entry, eventually, in_mesh, next_event};
use super::*;
use crate::ledger::{Genesis, Ledger, StoreOptions};
use crate::sync::reconcile::{EntriesMessage, Remote, bounded_message, reconcile};

/// A closed ledger whose authors are the keys of seeds 1 and 2.
fn members_ledger(name: &str) -> Genesis {
    Genesis::sign(
        &NodeKey::from_seed([1; 32]),
        name,
        false,
        &[
            NodeKey::from_seed([1; 32]).public_bytes(),
            NodeKey::from_seed([2; 32]).public_bytes(),
        ],
        &[],
        1,
    )
    .unwrap()
}

fn outsider() -> NodeKey {
    NodeKey::from_seed([3; 32])
}

/// Writes `entries` into the directory's database behind the store's back, as a
/// misbehaving node's own database would hold them.
fn plant(dir: &std::path::Path, entries: &[Entry]) {
    let conn = rusqlite::Connection::open(dir.join(crate::ledger::store::DB_FILE)).unwrap();
    for e in entries {
        conn.execute(
            "INSERT INTO entries (id, author, created_at, payload, signature, received_at) VALUES (?1, ?2, ?3, ?4, ?5, 0)",
            rusqlite::params![
                e.id().as_bytes().as_slice(),
                e.author_key().as_slice(),
                e.created_at() as i64,
                e.payload_json(),
                e.signature().as_slice()
            ],
        )
        .unwrap();
    }
}

/// A peer on `genesis`'s ledger, its store holding `planted` entries whatever their author.
async fn start_on(
    seed: u8,
    genesis: &Genesis,
    bootstrap: Vec<Multiaddr>,
    planted: &[Entry],
) -> TestPeer {
    let dir = tempfile::tempdir().unwrap();
    let options = || StoreOptions {
        ledger: Arc::new(Ledger::new(genesis.clone())),
        ..StoreOptions::default()
    };
    if !planted.is_empty() {
        // Opened once so the directory records its ledger, then planted.
        Store::open(dir.path(), options()).unwrap().close();
        plant(dir.path(), planted);
    }
    let store = Store::open(dir.path(), options()).unwrap();
    let key = NodeKey::from_seed([seed; 32]);
    let cancel = CancellationToken::new();
    let (handle, events) = spawn(config(&key, bootstrap), store.clone(), cancel.clone()).unwrap();
    TestPeer::new(handle, events, store, key, cancel, dir)
}

async fn pair_on(genesis: &Genesis, planted_a: &[Entry]) -> (TestPeer, TestPeer) {
    let mut a = start_on(1, genesis, vec![], planted_a).await;
    let mut b = start_on(2, genesis, vec![dial_addr(&a).await], &[]).await;
    next_event(&mut a, |e| *e == P2pEvent::SyncPeers { count: 1 }).await;
    next_event(&mut b, |e| *e == P2pEvent::SyncPeers { count: 1 }).await;
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_members_gossiped_entry_is_rejected_before_forwarding_and_a_members_is_stored() {
    let g = members_ledger("gossip");
    let (a, mut b) = pair_on(&g, &[]).await;
    let b_id = b.handle.peer_id();
    eventually("B is in A's gossip mesh", || in_mesh(&a, b_id)).await;

    let foreign = entry(&outsider(), 1);
    a.handle.publish_raw(foreign.to_json().into_bytes()).await;
    let event = next_event(&mut b, |e| matches!(e, P2pEvent::GossipRejected { .. })).await;
    let P2pEvent::GossipRejected { peer, kind, reason } = event else {
        unreachable!()
    };
    assert_eq!(peer, a.handle.peer_id());
    assert_eq!(kind, "unauthorized_author", "{reason}");
    assert!(
        reason.contains(&outsider().peer_id().to_string()),
        "{reason}"
    );
    assert!(!b.store.contains(&foreign.id()));
    assert!(b.store.ledger().was_refused(&foreign.id()));
    let score = b.handle.gossip_score(a.handle.peer_id()).await.unwrap();
    assert!(score < 0.0, "the sender's score fell: {score}");

    let member = entry(&a.key, 2);
    a.handle.publish(&member).await;
    eventually("B stores the member's gossiped entry", || async {
        b.store.contains(&member.id())
    })
    .await;
    assert_eq!(b.store.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2p_sync_refuses_a_non_members_entries_and_does_not_fetch_them_again() {
    let g = members_ledger("sync");
    let foreign: Vec<Entry> = (0..3).map(|n| entry(&outsider(), n)).collect();
    let a_key = NodeKey::from_seed([1; 32]);
    let mut planted = foreign.clone();
    planted.push(entry(&a_key, 10));
    let (a, b) = pair_on(&g, &planted).await;
    assert_eq!(a.store.len(), 4, "A serves what its database holds");

    let remote = b.handle.remote(a.handle.peer_id());
    let report = reconcile(&b.store, &remote, crate::ledger::DEFAULT_MAX_PAYLOAD)
        .await
        .unwrap();
    assert_eq!(report.pulled, 1, "the member's entry is pulled");
    assert_eq!(report.refused, foreign.len());
    assert_eq!(b.store.len(), 1);
    for e in &foreign {
        assert!(!b.store.contains(&e.id()));
    }
    let again = reconcile(&b.store, &remote, crate::ledger::DEFAULT_MAX_PAYLOAD)
        .await
        .unwrap();
    assert_eq!(again.refused, 0, "refused ids are not fetched again");
    assert_eq!(again.pulled, 0);

    // A push of a non-member's entry over the sync protocol is refused whole.
    let back = b.handle.remote(a.handle.peer_id());
    let (msg, _) = bounded_message(&[entry(&outsider(), 99)]);
    let err = back
        .push(&EntriesMessage {
            entries: msg.entries,
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind, "unauthorized_author", "{err}");
    assert_eq!(a.store.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_of_another_ledger_is_never_a_sync_peer_and_is_named() {
    let ours = members_ledger("ours");
    let theirs = members_ledger("theirs");
    let a = start_on(1, &ours, vec![], &[]).await;
    let b = start_on(2, &theirs, vec![dial_addr(&a).await], &[]).await;
    let want = theirs.id().to_hex();
    eventually("A names B's ledger", || async {
        a.handle
            .peers()
            .await
            .iter()
            .any(|p| p.other_ledger.as_deref() == Some(want.as_str()))
    })
    .await;
    // A peer that answered the sync protocol would count within a round trip of identify;
    // one of another ledger is given a window many times that and still never counts.
    tokio::time::sleep(DEADLINE / 5).await;
    let peers = a.handle.peers().await;
    assert!(peers.iter().all(|p| !p.sync_capable), "{peers:?}");
    let back = b.handle.peers().await;
    assert!(
        back.iter()
            .any(|p| p.other_ledger.as_deref() == Some(ours.id().to_hex().as_str())),
        "{back:?}"
    );
}

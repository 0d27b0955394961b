//! `LATTICE_PEER_RATE` on real swarms: a peer gossiping faster than the limit has the
//! excess dropped and counted, and its score falls; reconciliation (asked for, so not
//! limited) still brings every entry.

use super::rate::PeerRate;
use super::tests::{dial_addr, entry, eventually, in_mesh, next_event, start_custom};
use super::*;
use crate::sync::reconcile::reconcile;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_over_the_peer_rate_is_dropped_counted_and_scored_and_reconciliation_still_catches_up()
 {
    let mut a = start_custom(1, |_| {}).await;
    let addr = dial_addr(&a).await;
    // One entry a second with a burst of 5: a flood of 40 at once must overflow it.
    let mut b = start_custom(2, |c| {
        c.bootstrap = vec![addr];
        c.peer_rate = Some(PeerRate {
            per_second: 1,
            burst: 5,
        });
    })
    .await;
    next_event(&mut a, |e| *e == P2pEvent::SyncPeers { count: 1 }).await;
    next_event(&mut b, |e| *e == P2pEvent::SyncPeers { count: 1 }).await;
    let a_id = a.handle.peer_id();
    eventually("A is in B's gossip mesh", || in_mesh(&b, a_id)).await;

    let flood: Vec<Entry> = (0..40).map(|n| entry(&a.key, n)).collect();
    a.store.append_batch(flood.clone()).await.unwrap();
    for e in &flood {
        a.handle.publish(e).await;
    }
    let dropped = || async {
        b.handle
            .peers()
            .await
            .iter()
            .find(|p| p.peer_id == a_id.to_string())
            .map_or(0, |p| p.rate_dropped)
    };
    // Beyond the burst the excess is dropped; a few rejections graylist A, after which
    // gossipsub ignores the rest of its flood before it reaches the limiter.
    eventually("B drops what is over A's rate", || async {
        dropped().await >= 1
    })
    .await;
    eventually("and A's score falls", || async {
        b.handle.gossip_score(a_id).await.is_some_and(|s| s < 0.0)
    })
    .await;
    assert!(
        b.store.len() < flood.len(),
        "not everything was stored from gossip: {}",
        b.store.len()
    );

    let remote = b.handle.remote(a_id);
    reconcile(&b.store, &remote, crate::ledger::DEFAULT_MAX_PAYLOAD)
        .await
        .unwrap();
    assert_eq!(
        b.store.len(),
        flood.len(),
        "entries asked for are not limited"
    );
    assert_eq!(b.store.root(), a.store.root());
}

/// A sync `Push` is unsolicited too: it draws on the same per-peer bucket as gossip. Over
/// it, the first entries are stored and the answer is `rate_limited`, which the pusher's
/// reconciliation takes as "the rest later", not as a failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_push_over_the_peer_rate_stores_the_bucket_s_worth_and_answers_rate_limited() {
    use crate::sync::reconcile::{RATE_LIMITED, Remote, bounded_message};
    let mut a = start_custom(1, |_| {}).await;
    let addr = dial_addr(&a).await;
    let mut b = start_custom(2, |c| {
        c.bootstrap = vec![addr];
        c.peer_rate = Some(PeerRate {
            per_second: 1,
            burst: 5,
        });
    })
    .await;
    next_event(&mut a, |e| *e == P2pEvent::SyncPeers { count: 1 }).await;
    next_event(&mut b, |e| *e == P2pEvent::SyncPeers { count: 1 }).await;

    let batch: Vec<Entry> = (0..8).map(|n| entry(&a.key, n)).collect();
    let (msg, _) = bounded_message(&batch);
    let err = a
        .handle
        .remote(b.handle.peer_id())
        .push(&msg)
        .await
        .unwrap_err();
    assert_eq!(err.kind, RATE_LIMITED, "{err}");
    assert!(err.message.contains("3 of 8"), "{err}");
    assert_eq!(b.store.len(), 5, "the burst's worth is stored");

    // The pusher's reconciliation is not failed by it.
    a.store.append_batch(batch).await.unwrap();
    let report = reconcile(&a.store, &a.handle.remote(b.handle.peer_id()), 1 << 16).await;
    assert!(report.is_ok(), "{report:?}");
}

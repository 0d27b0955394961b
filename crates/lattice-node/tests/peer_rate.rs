//! `LATTICE_PEER_RATE` on the HTTP lung, with real nodes on loopback: entries pushed to
//! the API beyond a caller's bucket are dropped with a 429 (the shared error shape and a
//! `Retry-After`) and counted; entries a followed neighbour announces on its event stream
//! beyond its bucket are dropped and counted in its status, and the poll (a
//! reconciliation: asked for, so not limited) still brings every one.

mod support;

use lattice_node::ledger::Entry;
use serde_json::{Value, json};
use support::*;

fn entry(seed: u8, i: u64) -> Entry {
    Entry::sign(&node_key(seed), i, &json!({ "i": i }), 4096).unwrap()
}

fn push_body(entries: &[Entry]) -> String {
    let entries: Vec<Value> = entries
        .iter()
        .map(|e| serde_json::from_str(&e.to_json()).unwrap())
        .collect();
    json!({ "entries": entries }).to_string()
}

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn metric(n: &TestNode, line_start: &str) -> Option<f64> {
    let text = http()
        .get(format!("{}metrics", n.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_pushes_over_the_peer_rate_are_dropped_with_429_and_retry_after_and_counted() {
    let ls = listeners(1).await;
    // A burst of 5, refilled once a second.
    let n = start_node(
        ls.into_iter().next().unwrap(),
        &[],
        &[("LATTICE_PEER_RATE", "1:5")],
        1,
    )
    .await;
    let http = http();
    let url = format!("{}api/lattice/reconcile/push", n.url());
    let batch: Vec<Entry> = (0..8).map(|i| entry(2, i)).collect();
    let resp = http
        .post(&url)
        .header("content-type", "application/json")
        .body(push_body(&batch))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    let body: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(body["error"], "rate_limited", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("3 of 8") && message.contains("127.0.0.1"),
        "{message}"
    );
    assert_eq!(n.node.store().len(), 5, "the burst's worth is stored");
    assert_eq!(
        metric(
            &n,
            "lattice_unsolicited_dropped_entries_total{source=\"http_push\"}"
        )
        .await,
        Some(3.0)
    );

    // The bucket refills at its rate: a later push is taken again.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let resp = http
            .post(&url)
            .header("content-type", "application/json")
            .body(push_body(&[entry(2, 100)]))
            .send()
            .await
            .unwrap();
        match resp.status().as_u16() {
            200 => break,
            429 => assert!(std::time::Instant::now() < deadline, "never refilled"),
            other => panic!("unexpected {other}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(n.node.store().len(), 6);
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followed_event_stream_over_the_peer_rate_is_dropped_and_counted_and_the_poll_still_brings_all()
 {
    let ls = listeners(2).await;
    let urls = urls_of(&ls);
    let mut ls = ls.into_iter();
    // B is the source; A follows B's stream with a bucket of 3 refilled once a second.
    let b = start_node(ls.next().unwrap(), &[], &[], 2).await;
    let a = start_node(
        ls.next().unwrap(),
        &[urls[0].clone()],
        &[("LATTICE_PEER_RATE", "1:3")],
        1,
    )
    .await;
    eventually("A follows B's event stream", WAIT, || {
        a.status().neighbors[0].events_connected
    })
    .await;
    for i in 0..12 {
        b.node.put(&json!({ "i": i })).await.unwrap();
    }
    eventually(
        "A drops what B's stream announces over the rate",
        WAIT,
        || a.status().neighbors[0].rate_dropped >= 5,
    )
    .await;
    eventually("the poll brings every entry anyway", WAIT, || {
        a.status().entry_count == 12 && a.status().merkle_root == b.status().merkle_root
    })
    .await;
    assert!(
        metric(
            &a,
            "lattice_unsolicited_dropped_entries_total{source=\"event_stream\"}"
        )
        .await
        .is_some_and(|v| v >= 5.0)
    );
    a.stop().await;
    b.stop().await;
}

/// A pusher whose neighbour limits it is not failing: it stops pushing for this sync
/// (what was taken is stored) and pushes the rest in later syncs as the bucket refills,
/// so the neighbour stays healthy in its status and gets every entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_over_the_neighbours_rate_is_finished_later_without_marking_the_neighbour_failed() {
    let ls = listeners(2).await;
    let urls = urls_of(&ls);
    let mut ls = ls.into_iter();
    // B only receives (no neighbours of its own, so it never pulls), five a second.
    let b = start_node(ls.next().unwrap(), &[], &[("LATTICE_PEER_RATE", "5:5")], 2).await;
    let a = start_node(
        ls.next().unwrap(),
        &[urls[0].clone()],
        &[("LATTICE_MODE", "http")],
        1,
    )
    .await;
    for i in 0..15 {
        a.node.put(&json!({ "i": i })).await.unwrap();
    }
    let deadline = std::time::Instant::now() + WAIT;
    while b.node.store().len() < 15 {
        let n = &a.status().neighbors[0];
        assert_eq!(
            n.consecutive_failures, 0,
            "a limited push is no failure: {:?}",
            n.last_error
        );
        assert!(std::time::Instant::now() < deadline, "B never got all 15");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        metric(
            &b,
            "lattice_unsolicited_dropped_entries_total{source=\"http_push\"}"
        )
        .await
        .is_some_and(|v| v > 0.0),
        "B did limit A's pushes"
    );
    a.stop().await;
    b.stop().await;
}

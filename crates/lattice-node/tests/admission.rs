//! Explicit P2P admission with real nodes on loopback: on a closed ledger a peer that is
//! neither configured nor a member is pending (shown, not synced with, not counted, it
//! learns nothing), `lattice peers accept` admits it and the decision is kept in the data
//! directory, `lattice peers ignore` shuts it out again; members keep syncing throughout.
//! And an outsider's key (a node of the same ledger whose key is no member, its database
//! holding its own entries as a misbehaving node's would) serves and pushes entries on
//! every lung: none is stored anywhere, while members' entries flow on the same paths.

mod support;

use std::process::Command;
use std::sync::Arc;

use lattice_node::ledger::{Entry, Genesis, Ledger, Store, StoreOptions};
use serde_json::{Value, json};
use support::*;

const LATTICE: &str = env!("CARGO_BIN_EXE_lattice");

fn peer_of(n: &TestNode, peer: &str) -> Option<Value> {
    serde_json::to_value(n.status()).unwrap()["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["peer_id"] == peer)
        .cloned()
}

fn peers_cli(url: &str, args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(LATTICE)
        .arg("peers")
        .args(args)
        .args(["--url", url])
        .env_remove("LATTICE_ENV_FILE")
        .env_remove("LATTICE_API_TOKEN")
        .env_remove("LATTICE_LEDGER")
        .env_remove("LATTICE_GENESIS")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "lattice peers {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_peer_is_pending_until_accepted_and_learns_nothing_meanwhile() {
    // Seeds 1 and 2 are authors; 3 is a node of the same ledger with a non-member key.
    let g = Genesis::sign(
        &node_key(1),
        "bank",
        false,
        &[node_key(1).public_bytes(), node_key(2).public_bytes()],
        &[],
        1,
    )
    .unwrap();
    let (id, text) = (g.id().to_hex(), g.to_base64());
    let vars = [
        ("LATTICE_LEDGER", id.as_str()),
        ("LATTICE_GENESIS", text.as_str()),
    ];
    let mut ls = listeners(3).await.into_iter();
    let a = start_node(ls.next().unwrap(), &[], &vars, 1).await;
    let boot = p2p_addr(&a).await.join(",");
    let mut with_boot = vars.to_vec();
    with_boot.push(("LATTICE_BOOTSTRAP", &boot));
    let member = start_node(ls.next().unwrap(), &[], &with_boot, 2).await;
    let stranger = start_node(ls.next().unwrap(), &[], &with_boot, 3).await;
    let stranger_id = stranger.node.peer_id().to_string();

    eventually(
        "A shows the stranger as pending, the member as a sync peer",
        WAIT,
        || {
            peer_of(&a, &stranger_id).is_some_and(|p| p["admitted"] == false)
                && peer_of(&a, member.node.peer_id()).is_some_and(|p| p["sync_capable"] == true)
        },
    )
    .await;
    let listed = peers_cli(&a.url(), &["list"]);
    assert!(
        listed.contains(&format!("pending      {stranger_id}")),
        "{listed}"
    );

    let written = a.node.put(&json!({"secret": 1})).await.unwrap();
    eventually("the member gets A's entry", WAIT, || {
        member.node.store().contains(&written.id)
    })
    .await;
    let more = a.node.put(&json!({"secret": 2})).await.unwrap();
    eventually("the member gets A's second entry", WAIT, || {
        member.node.store().contains(&more.id)
    })
    .await;
    assert_eq!(
        stranger.node.store().len(),
        0,
        "a pending peer learns nothing"
    );
    let s = peer_of(&a, &stranger_id).unwrap();
    assert_eq!(s["sync_capable"], false, "and it is not counted");
    assert_eq!(a.status().peer_count, 1, "only the member counts");
    assert_eq!(
        peer_of(&stranger, a.node.peer_id()).map(|p| p["sync_capable"].clone()),
        Some(Value::Bool(false)),
        "the stranger does not count A either: A refuses to sync with it"
    );

    let out = peers_cli(&a.url(), &["accept", &stranger_id]);
    assert!(out.contains("accepted"), "{out}");
    eventually("accepted, the stranger syncs and is counted", WAIT, || {
        stranger.node.store().contains(&more.id)
            && peer_of(&a, &stranger_id).is_some_and(|p| p["sync_capable"] == true)
    })
    .await;
    let kept = a.node.store().path().parent().unwrap().join("peers.json");
    let file = std::fs::read_to_string(&kept).unwrap();
    assert!(file.contains(&stranger_id), "the decision is kept: {file}");
    // Admitted is not authorised: its key still cannot write.
    assert_eq!(
        stranger
            .node
            .put(&json!({"x": 1}))
            .await
            .unwrap_err()
            .kind(),
        "unauthorized_author"
    );

    peers_cli(&a.url(), &["ignore", &stranger_id]);
    eventually("ignored, the stranger is shut out again", WAIT, || {
        peer_of(&a, &stranger_id).is_none_or(|p| p["sync_capable"] == false)
            && !peer_of(&stranger, a.node.peer_id()).is_some_and(|p| p["sync_capable"] == true)
    })
    .await;
    let last = a.node.put(&json!({"secret": 3})).await.unwrap();
    eventually("the member still syncs", WAIT, || {
        member.node.store().contains(&last.id)
    })
    .await;
    assert!(!stranger.node.store().contains(&last.id));
    for n in [a, member, stranger] {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_peer_id_is_refused_with_a_clear_error_and_changes_nothing() {
    let ls = listeners(1).await;
    let a = start_node(ls.into_iter().next().unwrap(), &[], &[], 1).await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let resp = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{}api/lattice/peers/not-a-peer/accept", a.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(body["error"], "bad_peer_id", "{body}");
    assert!(
        !a.node
            .store()
            .path()
            .parent()
            .unwrap()
            .join("peers.json")
            .exists()
    );
    a.stop().await;
}

/// Writes `entries` into a data directory's database behind its store's back, as a
/// misbehaving node's own database would hold them (its node would refuse to write them).
fn plant(dir: &std::path::Path, genesis: &Genesis, entries: &[Entry]) {
    let options = StoreOptions {
        ledger: Arc::new(Ledger::new(genesis.clone())),
        ..StoreOptions::default()
    };
    // Opened once so the directory records its ledger.
    Store::open(dir, options).unwrap().close();
    let conn = rusqlite::Connection::open(dir.join(lattice_node::ledger::store::DB_FILE)).unwrap();
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

/// A hostile HTTP neighbour: it answers the state of a real node of our ledger (so it
/// passes the ledger check) and its event stream announces `events`, in order, then
/// stays open.
async fn hostile_neighbour(state: String, events: Vec<Entry>) -> String {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let body: String = events
        .iter()
        .map(|e| format!("event: entry\ndata: {}\n\n", e.to_json()))
        .collect();
    let app = axum::Router::new()
        .route(
            "/api/lattice/state",
            get(move || async move { ([("content-type", "application/json")], state) }),
        )
        .route(
            "/api/lattice/events",
            get(move || async move {
                let first = futures_util::stream::iter([Ok::<_, std::io::Error>(
                    axum::body::Bytes::from(body),
                )]);
                let stream = futures_util::StreamExt::chain(first, futures_util::stream::pending());
                (
                    [("content-type", "text/event-stream")],
                    axum::body::Body::from_stream(stream),
                )
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// Each lung is proved to have carried the outsider's entries by a member's entry that
/// only that path holds, behind them in the same answer or stream: once it arrives, the
/// outsider's were seen, and refused. (Gossip from an outsider's key is refused before
/// forwarding on real swarms in `p2p::ledger_tests`: a `lattice` node never publishes
/// what its own store refused, so it cannot be made to gossip them here.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outsiders_entries_served_streamed_or_pushed_on_every_lung_reach_no_store_and_members_flow()
 {
    // Seeds 1 and 2 are authors; 3 is the outsider.
    let g = Genesis::sign(
        &node_key(1),
        "bank",
        false,
        &[node_key(1).public_bytes(), node_key(2).public_bytes()],
        &[],
        1,
    )
    .unwrap();
    let (id, text) = (g.id().to_hex(), g.to_base64());
    let vars = [
        ("LATTICE_LEDGER", id.as_str()),
        ("LATTICE_GENESIS", text.as_str()),
    ];
    let signed =
        |seed: u8, n: u64| Entry::sign(&node_key(seed), n, &json!({ "n": n }), 4096).unwrap();
    let outsiders: Vec<Entry> = (0..3).map(|n| signed(3, n)).collect();
    // A member's entry that only the outsider's database holds.
    let via_outsider = signed(2, 100);

    let ls = listeners(3).await;
    let urls = urls_of(&ls);
    let mut ls = ls.into_iter();
    // P: a member on P2P, admitting the outsider (as if accepted), so it syncs with it.
    let outsider_id = node_key(3).peer_id().to_string();
    let mut p_vars = vars.to_vec();
    p_vars.push(("LATTICE_P2P_ALLOW", &outsider_id));
    let p = start_node(ls.next().unwrap(), &[], &p_vars, 1).await;
    // O: the outsider, serving what it holds over P2P (to P) and HTTP (to H).
    let o_dir = tempfile::tempdir().unwrap();
    let mut planted = outsiders.clone();
    planted.push(via_outsider.clone());
    plant(o_dir.path(), &g, &planted);
    let boot = p2p_addr(&p).await.join(",");
    let mut o_vars = vars.to_vec();
    o_vars.push(("LATTICE_BOOTSTRAP", &boot));
    let o = start_node_in(o_dir, ls.next().unwrap(), &[], &o_vars, 3).await;
    assert_eq!(
        o.node.store().len(),
        4,
        "the outsider serves its own entries"
    );

    // F: a hostile neighbour streaming an outsider's entry, then a member's.
    let state = http_client()
        .get(format!("{}api/lattice/state", p.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let streamed = signed(3, 200);
    let via_stream = signed(1, 201);
    let f = hostile_neighbour(state, vec![streamed.clone(), via_stream.clone()]).await;
    // H: a member on the HTTP lung, whose neighbours are the outsider and F.
    let mut h_vars = vars.to_vec();
    h_vars.push(("LATTICE_MODE", "http"));
    let h = start_node(ls.next().unwrap(), &[urls[1].clone(), f], &h_vars, 2).await;

    eventually(
        "P syncs with the outsider over P2P and gets the member's entry it served",
        WAIT,
        || p.node.store().contains(&via_outsider.id()),
    )
    .await;
    eventually(
        "H reconciles with the outsider over HTTP and gets the member's entry it served",
        WAIT,
        || h.node.store().contains(&via_outsider.id()),
    )
    .await;
    eventually(
        "H follows F's stream and stores the member's entry behind the outsider's",
        WAIT,
        || h.node.store().contains(&via_stream.id()),
    )
    .await;

    // The outsider pushes its entries to both members' APIs: refused whole.
    for target in [&p, &h] {
        let entries: Vec<Value> = outsiders
            .iter()
            .map(|e| serde_json::from_str(&e.to_json()).unwrap())
            .collect();
        let resp = http_client()
            .post(format!("{}api/lattice/reconcile/push", target.url()))
            .header("content-type", "application/json")
            .body(json!({ "entries": entries }).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 403);
        let body: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
        assert_eq!(body["error"], "unauthorized_author", "{body}");
    }

    // A member's new entry still flows from P through the outsider to H.
    let fresh = p.node.put(&json!({"fresh": 1})).await.unwrap();
    eventually("P's new entry reaches H", WAIT, || {
        h.node.store().contains(&fresh.id)
    })
    .await;
    for member in [&p, &h] {
        for e in outsiders.iter().chain([&streamed]) {
            assert!(
                !member.node.store().contains(&e.id()),
                "an outsider's entry reached a member's store"
            );
        }
    }
    for n in [p, o, h] {
        n.stop().await;
    }
}

fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

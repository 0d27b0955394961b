//! Explicit P2P admission with real nodes on loopback: on a closed ledger a peer that is
//! neither configured nor a member is pending (shown, not synced with, not counted, it
//! learns nothing), `lattice peers accept` admits it and the decision is kept in the data
//! directory, `lattice peers ignore` shuts it out again; members keep syncing throughout.

mod support;

use std::process::Command;

use lattice_node::ledger::Genesis;
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

//! Ledger identity and authorised authors, with real nodes on loopback: two ledgers made
//! by `lattice init` never merge; a non-member's key cannot write by POST or HTTP push
//! while members keep syncing; a data directory of one ledger is refused for another; a
//! node with only the ledger id fetches the genesis record from a neighbour.

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use lattice_node::config::{Config, Overrides};
use lattice_node::ledger::{Entry, Genesis};
use lattice_node::node::{NodeHandle, NodeOptions};
use serde_json::{Value, json};
use support::*;

const LATTICE: &str = env!("CARGO_BIN_EXE_lattice");

/// Runs `lattice init --name NAME` on a fresh env file; returns the variables it wrote.
fn lattice_init(dir: &Path, name: &str) -> HashMap<String, String> {
    let env_file = dir.join("node.env");
    let out = Command::new(LATTICE)
        .args(["init", "--name", name, "--env-file"])
        .arg(&env_file)
        .env_remove("LATTICE_ENV_FILE")
        .env_remove("LATTICE_LEDGER")
        .env_remove("LATTICE_GENESIS")
        .env_remove("LATTICE_P2P_KEY")
        .current_dir(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "lattice init failed: {stderr}");
    let vars: HashMap<String, String> = std::fs::read_to_string(&env_file)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(
        stdout.trim(),
        vars["LATTICE_LEDGER"],
        "init prints the ledger id"
    );
    assert!(
        !stdout.contains(&vars["LATTICE_P2P_KEY"]) && !stderr.contains(&vars["LATTICE_P2P_KEY"]),
        "the secret key is never echoed"
    );
    vars
}

fn ledger_vars(vars: &HashMap<String, String>) -> Vec<(&str, &str)> {
    ["LATTICE_LEDGER", "LATTICE_GENESIS", "LATTICE_P2P_KEY"]
        .iter()
        .map(|k| (*k, vars[*k].as_str()))
        .collect()
}

fn status_json(n: &TestNode) -> Value {
    serde_json::to_value(n.status()).unwrap()
}

/// Whether `n`'s status names `other` as a refused peer and as a refused neighbour.
fn names_other_ledger(n: &TestNode, other: &str) -> bool {
    let s = status_json(n);
    let peer = s["peers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["other_ledger"] == other && p["sync_capable"] == false);
    let neighbor = s["neighbors"].as_array().unwrap().iter().any(|x| {
        x["ledger"] == other
            && x["last_error_kind"] == "other_ledger"
            && x["health"] == "unhealthy"
            && x["last_error"].as_str().is_some_and(|e| e.contains(other))
    });
    peer && neighbor
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_init_ledgers_whose_nodes_meet_never_exchange_an_entry_and_name_each_other() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir_a, dir_b) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir_all(&dir_a).unwrap();
    std::fs::create_dir_all(&dir_b).unwrap();
    let va = lattice_init(&dir_a, "ledger-a");
    let vb = lattice_init(&dir_b, "ledger-b");
    let (id_a, id_b) = (va["LATTICE_LEDGER"].clone(), vb["LATTICE_LEDGER"].clone());
    assert_ne!(id_a, id_b);

    let ls = listeners(2).await;
    let urls = urls_of(&ls);
    let mut ls = ls.into_iter();
    let a = start_node(ls.next().unwrap(), &[urls[1].clone()], &ledger_vars(&va), 1).await;
    let boot = p2p_addr(&a).await.join(",");
    let mut b_vars = ledger_vars(&vb);
    b_vars.push(("LATTICE_BOOTSTRAP", &boot));
    let b = start_node(ls.next().unwrap(), &[urls[0].clone()], &b_vars, 2).await;

    a.node.put(&json!({"from": "a"})).await.unwrap();
    b.node.put(&json!({"from": "b"})).await.unwrap();
    assert_eq!(status_json(&a)["ledger"]["id"], id_a.as_str());
    assert_eq!(status_json(&a)["ledger"]["open"], false);

    eventually("each names the other's ledger", WAIT, || {
        names_other_ledger(&a, &id_b) && names_other_ledger(&b, &id_a)
    })
    .await;
    // Forced onto HTTP, both try to reconcile and are refused, twice over.
    for n in [&a, &b] {
        n.node
            .switch_mode(lattice_node::config::Mode::Http)
            .await
            .unwrap();
    }
    eventually("two refused HTTP syncs each way", WAIT, || {
        [&a, &b].iter().all(|n| {
            let s = status_json(n);
            s["neighbors"][0]["consecutive_failures"].as_u64() >= Some(2)
                && s["neighbors"][0]["last_error_kind"] == "other_ledger"
        })
    })
    .await;
    assert_eq!(a.status().entry_count, 1);
    assert_eq!(b.status().entry_count, 1);
    assert_eq!(
        a.status().peer_count,
        0,
        "another ledger's peer counts for nothing"
    );
    a.stop().await;
    b.stop().await;
}

/// A closed ledger whose authors are the keys of seeds 1 and 2.
fn members_genesis() -> Genesis {
    Genesis::sign(
        &node_key(1),
        "members",
        false,
        &[node_key(1).public_bytes(), node_key(2).public_bytes()],
        &[],
        7,
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_member_cannot_write_by_post_or_http_push_and_members_still_sync() {
    let g = members_genesis();
    let (id, text) = (g.id().to_hex(), g.to_base64());
    let vars = [
        ("LATTICE_LEDGER", id.as_str()),
        ("LATTICE_GENESIS", text.as_str()),
    ];
    let mut nodes = cluster(3, &vars).await; // seeds 1, 2, 3: the third is no member
    let outsider = nodes.pop().unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();

    // The outsider's own node cannot write, and says why.
    let err = outsider.node.put(&json!({"x": 1})).await.unwrap_err();
    assert_eq!(err.kind(), "unauthorized_author");
    assert!(err.to_string().contains(outsider.node.peer_id()), "{err}");
    let resp = http
        .post(format!("{}api/lattice/entries", outsider.url()))
        .header("content-type", "application/json")
        .body(json!({"payload": {"x": 2}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let body: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(body["error"], "unauthorized_author", "{body}");
    assert_eq!(status_json(&outsider)["ledger"]["can_write"], false);

    // A push of an outsider-signed entry to a member is refused whole.
    let foreign = Entry::sign(&node_key(3), 1, &json!({"y": 1}), 1024).unwrap();
    let member = Entry::sign(&node_key(2), 1, &json!({"y": 2}), 1024).unwrap();
    let push = json!({"entries": [
        serde_json::from_str::<Value>(&member.to_json()).unwrap(),
        serde_json::from_str::<Value>(&foreign.to_json()).unwrap(),
    ]});
    let resp = http
        .post(format!("{}api/lattice/reconcile/push", nodes[0].url()))
        .header("content-type", "application/json")
        .body(push.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let body: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(body["error"], "unauthorized_author", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains(&foreign.author())
    );
    assert_eq!(
        nodes[0].status().entry_count,
        0,
        "nothing of the push is stored"
    );

    // Members still write and sync.
    nodes[0].node.put(&json!({"ok": 1})).await.unwrap();
    nodes[1].node.put(&json!({"ok": 2})).await.unwrap();
    // The outsider may read what members write (reading is the token's business).
    eventually("members converge, and the outsider follows", WAIT, || {
        nodes.iter().all(|n| n.status().entry_count == 2)
            && roots_equal(&nodes)
            && outsider.status().merkle_root == nodes[0].status().merkle_root
    })
    .await;
    for n in nodes {
        n.stop().await;
    }
    outsider.stop().await;
}

fn config_in(dir: &Path, vars: &[(&str, &str)]) -> Config {
    let overrides = Overrides {
        data_dir: Some(dir.to_owned()),
        ..Overrides::default()
    };
    let mut all: Vec<(String, String)> = fast_vars();
    all.push(("LATTICE_P2P_LISTEN".into(), "/ip4/127.0.0.1/tcp/0".into()));
    all.push(("LATTICE_HTTP_LISTEN".into(), "127.0.0.1:0".into()));
    all.push(("LATTICE_P2P_KEY".into(), node_key(1).to_base64()));
    all.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Config::from_pairs(&all, &overrides).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_of_one_ledger_is_refused_for_another_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let a = members_genesis();
    let b = Genesis::sign(
        &node_key(1),
        "other",
        false,
        &[node_key(1).public_bytes()],
        &[],
        7,
    )
    .unwrap();
    let (ia, ta, ib, tb) = (
        a.id().to_hex(),
        a.to_base64(),
        b.id().to_hex(),
        b.to_base64(),
    );
    let on_a = [
        ("LATTICE_LEDGER", ia.as_str()),
        ("LATTICE_GENESIS", ta.as_str()),
    ];
    let on_b = [
        ("LATTICE_LEDGER", ib.as_str()),
        ("LATTICE_GENESIS", tb.as_str()),
    ];

    let node = NodeHandle::start(config_in(dir.path(), &on_a), NodeOptions::fast())
        .await
        .unwrap();
    node.put(&json!({"n": 1})).await.unwrap();
    node.shutdown().await;
    drop(node);

    let err = NodeHandle::start(config_in(dir.path(), &on_b), NodeOptions::fast())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "other_ledger");
    let text = err.to_string();
    assert!(text.contains(&ia) && text.contains(&ib), "{text}");
    // Nor may the directory be reused as the open development ledger.
    let err = NodeHandle::start(config_in(dir.path(), &[]), NodeOptions::fast())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "other_ledger");

    // Its own ledger opens it again, from the id alone (the directory keeps the record).
    let node = NodeHandle::start(
        config_in(dir.path(), &[("LATTICE_LEDGER", ia.as_str())]),
        NodeOptions::fast(),
    )
    .await
    .unwrap();
    assert_eq!(node.status().entry_count, 1);
    assert_eq!(node.status().ledger.id, ia);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_only_the_ledger_id_fetches_and_checks_the_genesis_from_a_neighbour() {
    let g = members_genesis();
    let (id, text) = (g.id().to_hex(), g.to_base64());
    let ls = listeners(2).await;
    let urls = urls_of(&ls);
    let mut ls = ls.into_iter();
    let full = [
        ("LATTICE_LEDGER", id.as_str()),
        ("LATTICE_GENESIS", text.as_str()),
    ];
    let a = start_node(ls.next().unwrap(), &[urls[1].clone()], &full, 1).await;
    let b = start_node(
        ls.next().unwrap(),
        &[urls[0].clone()],
        &[("LATTICE_LEDGER", id.as_str())],
        2,
    )
    .await;
    assert_eq!(b.status().ledger.id, id);
    assert_eq!(b.status().ledger.name, "members");
    a.node.put(&json!({"n": 1})).await.unwrap();
    eventually("the fetched ledger syncs", WAIT, || {
        b.status().entry_count == 1
    })
    .await;

    // A neighbour of another ledger has no record that matches: the node refuses to start.
    let dir = tempfile::tempdir().unwrap();
    let wrong = "0".repeat(64);
    let mut config = config_in(dir.path(), &[("LATTICE_LEDGER", wrong.as_str())]);
    config.http_neighbors = vec![a.url().parse().unwrap()];
    config.http_poll = std::time::Duration::from_millis(20);
    let err = NodeHandle::start(config, NodeOptions::fast())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "no_genesis", "{err}");
    assert!(err.to_string().contains(&wrong));
    a.stop().await;
    b.stop().await;
}

/// The P2P way to the record: a node whose only partner is a bootstrap peer (no HTTP
/// neighbour) fetches it over `/lattice/genesis/1.0.0`, checks it and syncs; a bootstrap
/// peer of another ledger answers its own record, which is refused naming both ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_only_the_ledger_id_fetches_the_genesis_from_a_bootstrap_peer_and_refuses_another_ledgers()
 {
    let g = members_genesis();
    let (id, text) = (g.id().to_hex(), g.to_base64());
    let ls = listeners(2).await;
    let mut ls = ls.into_iter();
    let full = [
        ("LATTICE_LEDGER", id.as_str()),
        ("LATTICE_GENESIS", text.as_str()),
    ];
    let a = start_node(ls.next().unwrap(), &[], &full, 1).await;
    let boot = p2p_addr(&a).await.join(",");
    let b = start_node(
        ls.next().unwrap(),
        &[],
        &[
            ("LATTICE_LEDGER", id.as_str()),
            ("LATTICE_BOOTSTRAP", &boot),
        ],
        2,
    )
    .await;
    assert_eq!(b.status().ledger.id, id);
    assert_eq!(b.status().ledger.name, "members");
    a.node.put(&json!({"n": 1})).await.unwrap();
    eventually("the fetched ledger syncs over P2P", WAIT, || {
        b.status().entry_count == 1 && sync_peers(&b) == 1
    })
    .await;

    // A bootstrap peer of another ledger: its record is refused, the node does not start.
    let other = Genesis::sign(
        &node_key(3),
        "other",
        false,
        &[node_key(3).public_bytes()],
        &[],
        7,
    )
    .unwrap();
    let (oid, otext) = (other.id().to_hex(), other.to_base64());
    let ol = listeners(1).await.into_iter().next().unwrap();
    let o = start_node(
        ol,
        &[],
        &[
            ("LATTICE_LEDGER", oid.as_str()),
            ("LATTICE_GENESIS", otext.as_str()),
        ],
        3,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let oboot = p2p_addr(&o).await.join(",");
    let mut config = config_in(
        dir.path(),
        &[
            ("LATTICE_LEDGER", id.as_str()),
            ("LATTICE_BOOTSTRAP", &oboot),
        ],
    );
    config.http_poll = std::time::Duration::from_millis(20);
    let err = NodeHandle::start(config, NodeOptions::fast())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "no_genesis", "{err}");
    let text = err.to_string();
    assert!(text.contains(&id) && text.contains(&oid), "{text}");
    assert!(
        lattice_node::ledger::store::recorded_genesis(dir.path())
            .unwrap()
            .is_none(),
        "nothing of the wrong record is kept"
    );
    a.stop().await;
    b.stop().await;
    o.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_configured_ledger_status_says_the_open_development_ledger() {
    let ls = listeners(1).await;
    let n = start_node(ls.into_iter().next().unwrap(), &[], &[], 1).await;
    let s = status_json(&n);
    assert_eq!(s["ledger"]["open"], true);
    assert_eq!(s["ledger"]["name"], "development");
    assert_eq!(s["ledger"]["id"], Genesis::development().id().to_hex());
    assert_eq!(s["ledger"]["can_write"], true);
    n.node.put(&json!({"anyone": true})).await.unwrap();
    n.stop().await;
}

fn lattice(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(LATTICE)
        .args(args)
        .env_remove("LATTICE_ENV_FILE")
        .env_remove("LATTICE_LEDGER")
        .env_remove("LATTICE_GENESIS")
        .env_remove("LATTICE_P2P_KEY")
        .env_remove("LATTICE_DATA_DIR")
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn import_refuses_a_non_members_entries_and_init_refuses_to_replace_a_ledger() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // An outsider writes on the open development ledger and exports.
    let dev = ["--env-file", "dev.env", "--data-dir", "dev-data"];
    assert!(
        lattice(dir, &[&dev[..], &["keygen"]].concat())
            .status
            .success()
    );
    let put = lattice(dir, &[&dev[..], &["put", r#"{"n":1}"#]].concat());
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );
    let export = lattice(dir, &[&dev[..], &["export"]].concat());
    std::fs::write(dir.join("foreign.jsonl"), &export.stdout).unwrap();

    let vars = lattice_init(dir, "closed");
    let mine = ["--env-file", "node.env", "--data-dir", "closed-data"];
    let import = lattice(dir, &[&mine[..], &["import", "foreign.jsonl"]].concat());
    assert_eq!(import.status.code(), Some(1));
    let err = String::from_utf8_lossy(&import.stderr);
    assert!(err.contains("is not an author of ledger"), "{err}");
    assert!(err.contains(&vars["LATTICE_LEDGER"]), "{err}");
    let put = lattice(dir, &[&mine[..], &["put", r#"{"n":2}"#]].concat());
    assert!(
        put.status.success(),
        "the founder may write: {}",
        String::from_utf8_lossy(&put.stderr)
    );
    let root = lattice(dir, &[&mine[..], &["list", "--json"]].concat());
    assert_eq!(String::from_utf8_lossy(&root.stdout).lines().count(), 1);

    let again = lattice(dir, &["--env-file", "node.env", "init", "--name", "other"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    let text = std::fs::read_to_string(dir.join("node.env")).unwrap();
    assert!(text.contains(&vars["LATTICE_LEDGER"]), "nothing changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_node_never_takes_entries_from_a_closed_ledgers_event_stream() {
    let g = members_genesis();
    let (id, text) = (g.id().to_hex(), g.to_base64());
    let ls = listeners(3).await;
    let urls = urls_of(&ls);
    let mut ls = ls.into_iter();
    // A (open, forced onto HTTP) follows B (closed ledger) and C (open, like A).
    let http = [("LATTICE_MODE", "http")];
    let a = start_node(ls.next().unwrap(), &others(&urls, 0), &http, 5).await;
    let closed = [
        ("LATTICE_LEDGER", id.as_str()),
        ("LATTICE_GENESIS", text.as_str()),
    ];
    let b = start_node(ls.next().unwrap(), &[], &closed, 1).await;
    let c = start_node(ls.next().unwrap(), &[], &[], 6).await;
    eventually("A has refused B as another ledger's node", WAIT, || {
        a.status().neighbors[0].last_error_kind.as_deref() == Some("other_ledger")
    })
    .await;
    for n in 0..5 {
        b.node.put(&json!({"b": n})).await.unwrap();
    }
    // C's entry, written after B's, reaches A by the same lung: B's never do.
    let from_c = c.node.put(&json!({"c": 1})).await.unwrap();
    eventually("A has C's entry", WAIT, || {
        a.node.store().contains(&from_c.id)
    })
    .await;
    eventually("A follows C's event stream", WAIT, || {
        a.status().neighbors[1].events_connected
    })
    .await;
    let last = c.node.put(&json!({"c": 2})).await.unwrap();
    eventually("A has C's second entry", WAIT, || {
        a.node.store().contains(&last.id)
    })
    .await;
    // The store, not the status snapshot, which may lag the last commit by a tick.
    assert_eq!(a.node.store().len(), 2, "nothing of B's ledger reached A");
    for n in [a, b, c] {
        n.stop().await;
    }
}

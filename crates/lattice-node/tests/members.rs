//! Membership records on real stores and real nodes: an author added on a running
//! network writes from the add, is refused after its removal (what the removal keeps
//! stays), a removal evicts what it does not keep, and all roots stay equal.

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use lattice_node::ledger::{Entry, Genesis, Ledger, Merkle, Op, Store, StoreOptions};
use serde_json::{Value, json};
use support::*;

const LATTICE: &str = env!("CARGO_BIN_EXE_lattice");

fn entry(seed: u8, i: u64) -> Entry {
    Entry::sign(&node_key(seed), i, &json!({ "i": i }), 4096).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_evicts_the_authors_entries_it_does_not_keep_and_survives_a_reopen() {
    let g = Genesis::sign(
        &node_key(1),
        "bank",
        false,
        &[node_key(2).public_bytes(), node_key(3).public_bytes()],
        &[],
        1,
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let options = || StoreOptions {
        ledger: Arc::new(Ledger::new(g.clone())),
        ..StoreOptions::default()
    };
    let store = Store::open(tmp.path(), options()).unwrap();
    let (kept, other, late) = (entry(3, 1), entry(3, 2), entry(3, 3));
    let stays = entry(2, 1);
    store
        .append_batch(vec![kept.clone(), stays.clone()])
        .await
        .unwrap();
    // A node that saw only `kept` issues the removal; `other` reaches this store first.
    let remove = store
        .ledger()
        .sign_record(
            &node_key(1),
            Op::Remove,
            &node_key(3).public_bytes(),
            [kept.id()].into(),
            5,
            4096,
        )
        .unwrap();
    store.append(other.clone()).await.unwrap();
    store.append(remove.clone()).await.unwrap();
    assert!(store.contains(&kept.id()) && store.contains(&stays.id()));
    assert!(
        !store.contains(&other.id()),
        "evicted: not kept by the removal"
    );
    let expected = Merkle::from_ids(vec![kept.id(), stays.id(), remove.id()]).root();
    assert_eq!(store.root(), expected);
    let err = store.append(late.clone()).await.unwrap_err();
    assert_eq!(err.kind(), "unauthorized_author");
    assert!(
        err.to_string().contains("was removed as an author"),
        "{err}"
    );
    let _ = tokio::task::spawn_blocking(move || store.close()).await;

    // Reopened, the directory's records give the same membership and root.
    let store = Store::open(tmp.path(), options()).unwrap();
    assert_eq!(store.root(), expected);
    assert!(store.append(late).await.is_err());
    assert!(!store.ledger().is_member(&node_key(3).public_bytes()));
    assert!(store.verify_all().unwrap().problems.is_empty());
    let _ = tokio::task::spawn_blocking(move || store.close()).await;
}

/// Writes an env file for the CLI holding the administrator key and the ledger.
fn admin_env(dir: &Path, g: &Genesis, seed: u8) -> std::path::PathBuf {
    let path = dir.join("admin.env");
    std::fs::write(
        &path,
        format!(
            "LATTICE_P2P_KEY={}\nLATTICE_LEDGER={}\nLATTICE_GENESIS={}\nLATTICE_DATA_DIR={}\n",
            node_key(seed).to_base64(),
            g.id(),
            g.to_base64(),
            dir.join("unused-data").display()
        ),
    )
    .unwrap();
    path
}

fn members_cli(env: &Path, args: &[&str]) -> String {
    let out = Command::new(LATTICE)
        .arg("--env-file")
        .arg(env)
        .arg("members")
        .args(args)
        .env_remove("LATTICE_ENV_FILE")
        .env_remove("LATTICE_P2P_KEY")
        .env_remove("LATTICE_LEDGER")
        .env_remove("LATTICE_GENESIS")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "lattice members {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn ledger_of(n: &TestNode) -> Value {
    serde_json::to_value(n.status()).unwrap()["ledger"].clone()
}

async fn push(n: &TestNode, e: &Entry) -> u16 {
    let body = json!({ "entries": [serde_json::from_str::<Value>(&e.to_json()).unwrap()] });
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{}api/lattice/reconcile/push", n.url()))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_author_added_and_removed_on_a_running_network_writes_only_in_between() {
    // p2p_cluster seeds are 100, 101, 102; 100 founds the ledger, 102 starts outside.
    let g = Genesis::sign(
        &node_key(100),
        "bank",
        false,
        &[node_key(100).public_bytes(), node_key(101).public_bytes()],
        &[],
        1,
    )
    .unwrap();
    let (id, text) = (g.id().to_hex(), g.to_base64());
    let vars = [
        ("LATTICE_LEDGER", id.as_str()),
        ("LATTICE_GENESIS", text.as_str()),
    ];
    let nodes = p2p_cluster(3, &vars).await;
    let newcomer = node_key(102).peer_id().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let env = admin_env(tmp.path(), &g, 100);

    // Before the add: the newcomer cannot write, and its entry pushed to a member is refused.
    let early = entry(102, 1);
    assert_eq!(
        nodes[2]
            .node
            .put(&json!({"x": 0}))
            .await
            .unwrap_err()
            .kind(),
        "unauthorized_author"
    );
    assert_eq!(push(&nodes[0], &early).await, 403);
    assert!(nodes[0].node.store().ledger().was_refused(&early.id()));

    let out = members_cli(&env, &["add", &newcomer, "--url", &nodes[0].url()]);
    assert!(out.contains("add"), "{out}");
    eventually("every node counts the newcomer as an author", WAIT, || {
        nodes.iter().all(|n| {
            ledger_of(n)["authors"] == 3
                && n.node
                    .store()
                    .ledger()
                    .is_member(&node_key(102).public_bytes())
        })
    })
    .await;
    assert_eq!(ledger_of(&nodes[2])["can_write"], true);
    let written = nodes[2].node.put(&json!({"x": 1})).await.unwrap();
    assert_eq!(
        push(&nodes[1], &early).await,
        200,
        "the early entry is checked again and accepted"
    );
    eventually("all hold the newcomer's entries, roots equal", WAIT, || {
        nodes
            .iter()
            .all(|n| n.node.store().contains(&written.id) && n.node.store().contains(&early.id()))
            && roots_equal(&nodes)
    })
    .await;

    let listed = members_cli(&env, &["list", "--url", &nodes[1].url()]);
    assert!(listed.contains(&format!("author  {newcomer}")), "{listed}");

    let out = members_cli(&env, &["remove", &newcomer, "--url", &nodes[0].url()]);
    assert!(out.contains("kept    2 entries"), "{out}");
    eventually("every node has removed the newcomer", WAIT, || {
        nodes
            .iter()
            .all(|n| ledger_of(n)["authors"] == 2 && ledger_of(n)["can_write"] != Value::Null)
            && ledger_of(&nodes[2])["can_write"] == false
    })
    .await;
    let err = nodes[2].node.put(&json!({"x": 2})).await.unwrap_err();
    assert_eq!(err.kind(), "unauthorized_author");
    assert_eq!(push(&nodes[1], &entry(102, 9)).await, 403);
    nodes[0].node.put(&json!({"after": 1})).await.unwrap();
    eventually(
        "members still sync; the kept entries stay; roots equal",
        WAIT,
        || {
            nodes.iter().all(|n| {
                let s = n.node.store();
                s.contains(&written.id) && s.contains(&early.id()) && s.len() == 5
            }) && roots_equal(&nodes)
        },
    )
    .await;
    for n in nodes {
        n.stop().await;
    }
}

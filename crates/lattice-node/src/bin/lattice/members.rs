//! `lattice members list|add|remove`: the ledger's membership, and records that change it.
//!
//! A record is signed here with the env file's key (LATTICE_P2P_KEY), which must be an
//! administrator named in the genesis record (`lattice init` makes its own key one).
//! With --url the record is built on the running node's current head and pushed to it
//! (it then travels like any entry); without, it is appended to the local data
//! directory (which must not be in use by a running node).

use std::collections::BTreeSet;

use anyhow::anyhow;
use lattice_node::config::Config;
use lattice_node::ledger::membership::sign_record_on;
use lattice_node::ledger::{EntryId, Op, Store};
use lattice_node::time::now_ms;
use serde_json::Value;

use super::online::{call_error, client};
use super::{Failure, store_options};

#[derive(Debug, clap::Subcommand)]
pub enum MembersCommand {
    /// Show who may write: authors, administrators, removed authors and every record.
    List {
        /// Ask the running node at this base URL instead of reading the data directory.
        #[arg(long)]
        url: Option<String>,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// Let PEER_ID write: sign an add record with this node's (administrator) key.
    Add {
        peer_id: String,
        /// Send the record to the running node at this base URL.
        #[arg(long)]
        url: Option<String>,
    },
    /// Stop PEER_ID writing. Its entries stored now (on the node asked) stay valid;
    /// any other entry of it is refused everywhere, and evicted where already held.
    Remove {
        peer_id: String,
        /// Send the record to the running node at this base URL.
        #[arg(long)]
        url: Option<String>,
    },
}

pub async fn run(config: &Config, command: MembersCommand) -> Result<(), Failure> {
    match command {
        MembersCommand::List {
            url: Some(url),
            json,
        } => {
            let client = client(config, Some(&url))?;
            let info: Value = client
                .get_json("api/lattice/members", &[])
                .await
                .map_err(call_error(client.base()))?;
            print(&info, json);
            Ok(())
        }
        MembersCommand::List { url: None, json } => {
            let store = Store::open_read_only(&config.data_dir, store_options(config)?)
                .map_err(|e| anyhow!(e))?;
            let info = serde_json::to_value(store.ledger().members()).expect("serializes");
            print(&info, json);
            Ok(())
        }
        MembersCommand::Add { peer_id, url } => change(config, Op::Add, &peer_id, url).await,
        MembersCommand::Remove { peer_id, url } => change(config, Op::Remove, &peer_id, url).await,
    }
}

fn print(info: &Value, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(info).expect("JSON prints")
        );
        return;
    }
    if info["open"] == true {
        println!(
            "ledger {} is an OPEN development ledger: anyone may write",
            info["ledger"]
        );
        return;
    }
    let list = |k: &str| -> Vec<String> {
        info[k]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    println!("ledger  {}", info["ledger"].as_str().unwrap_or("?"));
    for a in list("authors") {
        println!("author  {a}");
    }
    for a in list("admins") {
        println!("admin   {a}");
    }
    for r in info["removed"].as_array().into_iter().flatten() {
        println!(
            "removed {} ({} entries kept)",
            r["author"].as_str().unwrap_or("?"),
            r["kept"]
        );
    }
    for r in info["records"].as_array().into_iter().flatten() {
        println!(
            "record  {} {} {}{}",
            r["id"].as_str().unwrap_or("?"),
            r["op"].as_str().unwrap_or("?"),
            r["author"].as_str().unwrap_or("?"),
            if r["applied"] == true {
                ""
            } else {
                " (superseded: another record followed the same predecessor and won; re-issue it)"
            }
        );
    }
}

/// The ed25519 public key a PeerId names (`None`: not a PeerId, or not of such a key).
pub(crate) fn ed25519_key_of(peer_id: &str) -> Option<[u8; 32]> {
    peer_id
        .trim()
        .parse::<lattice_node::p2p::PeerId>()
        .ok()
        .and_then(|p| lattice_node::identity::public_key_of(&p))
}

fn key_of(peer_id: &str) -> Result<[u8; 32], Failure> {
    ed25519_key_of(peer_id).ok_or_else(|| {
        Failure::Config(format!(
            "{peer_id:?} is not the PeerId of an ed25519 key (`lattice keygen` prints one)"
        ))
    })
}

async fn change(
    config: &Config,
    op: Op,
    peer_id: &str,
    url: Option<String>,
) -> Result<(), Failure> {
    let author = key_of(peer_id)?;
    let admin = config.key.clone().ok_or_else(|| {
        Failure::Config(
            "LATTICE_P2P_KEY is not set: membership records are signed with an administrator's key"
                .into(),
        )
    })?;
    let Some(url) = url else {
        let store =
            Store::open(&config.data_dir, store_options(config)?).map_err(|e| anyhow!(e))?;
        let keep = store.ids_of_author(&author).map_err(|e| anyhow!(e))?;
        let record = store
            .ledger()
            .sign_record(&admin, op, &author, keep, now_ms(), config.max_payload)
            .map_err(|e| anyhow!(e))?;
        let appended = store.append(record).await.map_err(|e| anyhow!(e))?;
        let _ = tokio::task::spawn_blocking(move || store.close()).await;
        println!("record  {} ({op} {peer_id})", appended.id);
        return Ok(());
    };
    let client = client(config, Some(&url))?;
    let query: Vec<(&str, String)> = match op {
        Op::Remove => vec![("author", peer_id.trim().to_string())],
        Op::Add => vec![],
    };
    let info: Value = client
        .get_json("api/lattice/members", &query)
        .await
        .map_err(call_error(client.base()))?;
    let ledger = info["ledger"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("{}: the members answer names no ledger", client.base()))?;
    let head: [u8; 32] = info["head"]
        .as_str()
        .and_then(|h| hex::decode(h).ok())
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow!("{}: the members answer has no head", client.base()))?;
    let is_member = info["authors"]
        .as_array()
        .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(peer_id.trim())));
    match op {
        Op::Add if is_member => return Err(anyhow!("{peer_id} is already an author").into()),
        Op::Remove if !is_member => return Err(anyhow!("{peer_id} is not an author").into()),
        _ => {}
    }
    let keep: BTreeSet<EntryId> =
        serde_json::from_value(info["author_entries"].clone()).unwrap_or_default();
    let record = sign_record_on(
        &admin,
        ledger,
        head,
        op,
        &author,
        &keep,
        now_ms(),
        config.max_payload,
    )
    .map_err(|e| anyhow!(e))?;
    let wire: Value = serde_json::from_str(&record.to_json()).expect("an entry is JSON");
    let _: Value = client
        .post_json(
            "api/lattice/reconcile/push",
            &serde_json::json!({ "entries": [wire] }),
        )
        .await
        .map_err(call_error(client.base()))?;
    println!("record  {} ({op} {peer_id})", record.id());
    if op == Op::Remove {
        println!("kept    {} entries of {peer_id}", keep.len());
    }
    Ok(())
}

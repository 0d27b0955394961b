//! `lattice peers list|accept|ignore`: P2P admission on a running node.

use lattice_node::config::Config;
use serde_json::Value;

use super::Failure;
use super::online::{call_error, client};

#[derive(Debug, clap::Subcommand)]
pub enum PeersCommand {
    /// Every connected peer with its standing, and the decisions kept.
    List {
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// Admit PEER_ID: sync with it and count it. Kept in the node's data directory.
    Accept { peer_id: String },
    /// Refuse PEER_ID: its connections are closed whenever it connects. Also how an
    /// accepted peer is removed again.
    Ignore { peer_id: String },
}

pub async fn run(config: &Config, command: PeersCommand, url: Option<&str>) -> Result<(), Failure> {
    let client = client(config, url)?;
    let (peer, accept) = match command {
        PeersCommand::List { json } => {
            let answer: Value = client
                .get_json("api/lattice/peers", &[])
                .await
                .map_err(call_error(client.base()))?;
            print(&answer, json);
            return Ok(());
        }
        PeersCommand::Accept { peer_id } => (peer_id, true),
        PeersCommand::Ignore { peer_id } => (peer_id, false),
    };
    let peer = peer.trim();
    if peer.parse::<lattice_node::p2p::PeerId>().is_err() {
        return Err(Failure::Config(format!(
            "{peer:?} is not a PeerId (`lattice peers list` shows them)"
        )));
    }
    let decision = if accept { "accept" } else { "ignore" };
    let _: Value = client
        .post_json(
            &format!("api/lattice/peers/{peer}/{decision}"),
            &serde_json::json!({}),
        )
        .await
        .map_err(call_error(client.base()))?;
    println!("{peer} {}", if accept { "accepted" } else { "ignored" });
    Ok(())
}

fn print(answer: &Value, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(answer).expect("JSON prints")
        );
        return;
    }
    if answer["enforced"] == false {
        println!("open development ledger: every peer is admitted");
    }
    let text = |v: &Value| v.as_str().unwrap_or("-").to_string();
    for p in answer["peers"].as_array().into_iter().flatten() {
        let standing = if p["other_ledger"].is_string() {
            "other_ledger"
        } else if p["admitted"] == true {
            "admitted"
        } else {
            "pending"
        };
        println!(
            "{standing:<12} {} {}",
            text(&p["peer_id"]),
            text(&p["address"])
        );
    }
    for (label, key) in [("accepted", "accepted"), ("ignored", "ignored")] {
        for p in answer[key].as_array().into_iter().flatten() {
            println!("{label:<12} {}", text(p));
        }
    }
}

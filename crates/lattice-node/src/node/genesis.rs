//! Which ledger the node holds: its genesis record found (configuration, data directory
//! a neighbour or a bootstrap peer, always checked against `LATTICE_LEDGER`) and announced in the log.

use std::collections::BTreeMap;

use super::NodeError;
use crate::config::Config;
use crate::http::client::{ClientLimits, NeighborClient};
use crate::identity::NodeKey;
use crate::ledger::{Genesis, GenesisError, Ledger, StoreError};
use crate::p2p::P2pConfig;
use crate::p2p::genesis::GenesisFetcher;

/// Tells the log which ledger this node holds; plainly, when it is open to anyone.
pub(super) fn announce_ledger(ledger: &Ledger, key: &NodeKey, can_write: bool) {
    let g = ledger.genesis();
    if g.is_open() {
        tracing::warn!(
            "[LEDGER] open development ledger {}: anyone who can reach this node can write into it and sync with it; run `lattice init` for a ledger of your own",
            ledger.id()
        );
    } else {
        tracing::info!(
            "[LEDGER] ledger {:?} ({}): {} authors; this node ({}) {}",
            g.name(),
            ledger.id(),
            g.authors().count(),
            key.peer_id(),
            if can_write {
                "is one of them"
            } else {
                "is not one of them and cannot write"
            }
        );
    }
}

/// Rounds of asking the neighbours and bootstrap peers for a missing genesis record
/// (they may be starting).
const GENESIS_ROUNDS: usize = 5;

/// The genesis record of the configured ledger: the development ledger when none is
/// configured; else `LATTICE_GENESIS`, the data directory's, or one fetched from an HTTP
/// neighbour or a P2P bootstrap peer, each checked against `LATTICE_LEDGER` (a record is
/// never trusted for its id). A record of another ledger is refused and the next source
/// asked; when none had the right one, the error names what each wrong one held.
pub(super) async fn resolve_genesis(
    config: &Config,
    limits: ClientLimits,
    p2p: &P2pConfig,
) -> Result<Genesis, NodeError> {
    let Some(id) = config.ledger else {
        return Ok(Genesis::development());
    };
    if let Some(g) = &config.genesis {
        return Ok(g.clone());
    }
    let dir = config.data_dir.clone();
    let recorded =
        tokio::task::spawn_blocking(move || crate::ledger::store::recorded_genesis(&dir))
            .await
            .map_err(|_| NodeError::ShuttingDown)??;
    if let Some(text) = recorded {
        return match Genesis::from_base64_for(&text, id) {
            Ok(g) => Ok(g),
            Err(GenesisError::WrongLedger { actual, .. }) => Err(StoreError::OtherLedger {
                dir: config.data_dir.clone(),
                dir_ledger: actual,
                ours: id,
            }
            .into()),
            Err(e) => Err(e.into()),
        };
    }
    let mut limits = limits;
    limits.max_body = limits.max_body.max(1024 * 1024);
    let mut fetcher = match p2p.bootstrap.is_empty() {
        true => None,
        false => Some(GenesisFetcher::new(
            &p2p.key,
            p2p.psk,
            p2p.dial_timeout,
            p2p.request_timeout,
        )?),
    };
    // Source -> what was wrong with its last answer (kept for the final error).
    let mut wrong: BTreeMap<String, String> = BTreeMap::new();
    let mut check = |source: String, text: &str| match Genesis::from_base64_for(text, id) {
        Ok(g) => {
            tracing::info!("[LEDGER] fetched the genesis record of {id} from {source}");
            Some(g)
        }
        Err(e) => {
            tracing::warn!("[LEDGER] {source} answered a genesis record that is refused: {e}");
            wrong.insert(source, e.to_string());
            None
        }
    };
    for round in 0..GENESIS_ROUNDS {
        if round > 0 {
            tokio::time::sleep(config.http_poll).await;
        }
        for url in &config.http_neighbors {
            let client = NeighborClient::new(url.clone(), config.api_token.clone(), limits)
                .map_err(|source| NodeError::Neighbor {
                    url: url.to_string(),
                    source,
                })?;
            let answer = client
                .get_json::<crate::http::wire::GenesisAnswer>(
                    crate::http::wire::paths::GENESIS,
                    &[],
                )
                .await;
            match answer {
                Ok(a) => {
                    if let Some(g) = check(format!("neighbour {url}"), &a.genesis) {
                        return Ok(g);
                    }
                }
                Err(e) => tracing::debug!("[LEDGER] asking {url} for the genesis record: {e}"),
            }
        }
        if let Some(fetcher) = fetcher.as_mut() {
            for addr in &p2p.bootstrap {
                match fetcher.ask(addr, id).await {
                    Ok(text) => {
                        if let Some(g) = check(format!("peer {addr}"), &text) {
                            return Ok(g);
                        }
                    }
                    Err(e) => {
                        tracing::debug!("[LEDGER] asking {addr} for the genesis record: {e}")
                    }
                }
            }
        }
    }
    let sources = config.http_neighbors.len() + p2p.bootstrap.len();
    let mut tried = match sources {
        0 => "none is set".to_string(),
        n => format!("{n} asked {GENESIS_ROUNDS} times, none had it"),
    };
    for (source, why) in &wrong {
        tried.push_str(&format!("; {source}: {why}"));
    }
    Err(NodeError::NoGenesis { ledger: id, tried })
}

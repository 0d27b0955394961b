//! The genesis record over P2P: every node answers `/lattice/genesis/1.0.0` with its own
//! record, and a node that has only `LATTICE_LEDGER` asks its bootstrap peers for it
//! before its own swarm (whose topic and protocols need the record) exists.
//!
//! The protocol carries no ledger id in its name, unlike sync: a peer of another ledger
//! answers too, so the asker can say which ledger it met instead of "unsupported
//! protocol". The answer is never trusted for its id: the asker hashes it and compares
//! (see `node::genesis`). The record is public (members' keys and a name, as
//! `GET /api/lattice/genesis` serves it), so it is answered to anyone who connects.

use std::time::Duration;

use futures_util::StreamExt;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm};
use serde::{Deserialize, Serialize};

use super::P2pError;
use super::swarm::transport;
use crate::identity::NodeKey;
use crate::ledger::LedgerId;

pub const GENESIS_PROTOCOL: &str = "/lattice/genesis/1.0.0";
/// A record of at most `MAX_MEMBERS` keys is far below this.
const MAX_GENESIS_MESSAGE: u64 = 1024 * 1024;

/// The ledger the asker wants (for the answerer's log; the answer is its own record).
#[derive(Debug, Serialize, Deserialize)]
pub struct GenesisRequest {
    pub ledger: LedgerId,
}

/// The answerer's genesis record (base64, as `LATTICE_GENESIS` holds it).
#[derive(Debug, Serialize, Deserialize)]
pub struct GenesisAnswer {
    pub genesis: String,
}

pub(super) type GenesisBehaviour = request_response::json::Behaviour<GenesisRequest, GenesisAnswer>;

pub(super) fn behaviour(
    support: ProtocolSupport,
    timeout: Duration,
) -> Result<GenesisBehaviour, P2pError> {
    let codec = request_response::json::codec::Codec::default()
        .set_request_size_maximum(4 * 1024)
        .set_response_size_maximum(MAX_GENESIS_MESSAGE);
    Ok(request_response::Behaviour::with_codec(
        codec,
        [(StreamProtocol::new(GENESIS_PROTOCOL), support)],
        request_response::Config::default().with_request_timeout(timeout),
    ))
}

/// A short-lived swarm that only asks for genesis records (it answers nothing and
/// listens nowhere), under the node's own key and pre-shared key.
pub struct GenesisFetcher {
    swarm: Swarm<GenesisBehaviour>,
    /// Bounds one question, dial included.
    within: Duration,
}

impl GenesisFetcher {
    pub fn new(
        key: &NodeKey,
        psk: Option<[u8; 32]>,
        dial_timeout: Duration,
        request_timeout: Duration,
    ) -> Result<Self, P2pError> {
        let options = transport::TransportOptions {
            key: &key.to_libp2p(),
            psk,
            dial_timeout,
        };
        let swarm = transport::build(&options, |_, _relay| {
            behaviour(ProtocolSupport::Outbound, request_timeout)
                .map_err(|e| Box::new(e) as transport::BoxError)
        })?;
        Ok(Self {
            swarm,
            within: dial_timeout + request_timeout,
        })
    }

    /// The record the peer at `addr` (ending in `/p2p/<id>`) holds, unchecked; or why
    /// there is none.
    pub async fn ask(&mut self, addr: &Multiaddr, ledger: LedgerId) -> Result<String, String> {
        let Some(libp2p::multiaddr::Protocol::P2p(peer)) = addr.iter().last() else {
            return Err(format!("{addr} does not end in /p2p/<peer id>"));
        };
        let peer: PeerId = peer;
        let id = self.swarm.behaviour_mut().send_request_with_addresses(
            &peer,
            GenesisRequest { ledger },
            vec![addr.clone()],
        );
        let deadline = tokio::time::sleep(self.within);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => {
                    return Err(format!("no answer within {:?}", self.within));
                }
                event = self.swarm.select_next_some() => match event {
                    SwarmEvent::Behaviour(request_response::Event::Message {
                        message: request_response::Message::Response { request_id, response },
                        ..
                    }) if request_id == id => return Ok(response.genesis),
                    SwarmEvent::Behaviour(request_response::Event::OutboundFailure {
                        request_id,
                        error,
                        ..
                    }) if request_id == id => return Err(error.to_string()),
                    _ => {}
                },
            }
        }
    }
}

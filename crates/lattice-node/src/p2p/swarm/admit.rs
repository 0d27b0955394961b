//! Admission in the swarm: a pending peer stays connected (so it can be shown and
//! accepted without a redial) but gets nothing. Gossipsub is told to shut it out with an
//! application score far below the graylist threshold: its messages are ignored, none
//! are published or forwarded to it, it never enters the mesh. Its sync requests are
//! answered `not_admitted`, and it never counts as a sync peer.

use std::collections::HashSet;

use libp2p::PeerId;
use libp2p::request_response::{OutboundRequestId, ResponseChannel};
use serde::Serialize;
use tracing::{info, warn};

use super::{EventLoop, Reply};
use crate::p2p::P2pEvent;
use crate::p2p::admission::{Admission, NOT_ADMITTED, Standing};
use crate::p2p::protocol::SyncResponse;

/// Gossipsub application score of a peer not admitted: times the default weight (10)
/// it is far below the default graylist threshold (-80).
const SHUT_OUT: f64 = -1000.0;

/// The rules and decisions, and which connected peers are held out now.
pub(crate) struct Gatekeeper {
    pub rules: Admission,
    held: HashSet<PeerId>,
}

impl Gatekeeper {
    pub fn new(rules: Admission) -> Self {
        Self {
            rules,
            held: HashSet::new(),
        }
    }
}

/// Admission commands from the handle.
pub(crate) enum Request {
    Decide {
        peer: PeerId,
        accept: bool,
        reply: Reply<Result<(), String>>,
    },
    View(Reply<AdmissionView>),
}

/// Decisions as faces show them; pending peers are in the peer list (`admitted: false`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AdmissionView {
    /// False on the open development ledger: every peer is admitted there.
    pub enforced: bool,
    pub accepted: Vec<String>,
    pub ignored: Vec<String>,
}

impl EventLoop {
    pub(super) fn admits(&self, peer: &PeerId) -> bool {
        self.admission.rules.admits(self.store.ledger(), peer)
    }

    /// Applies `peer`'s standing to a connected peer: holds it out, lets it in, or
    /// closes it (ignored).
    pub(super) fn apply_standing(&mut self, peer: PeerId) {
        if !self.peers.contains_key(&peer) {
            self.admission.held.remove(&peer);
            return;
        }
        match self.admission.rules.standing(self.store.ledger(), &peer) {
            Standing::Ignored => {
                self.admission.held.remove(&peer);
                info!(%peer, "[P2P] peer is ignored: closing its connection");
                let _ = self.swarm.disconnect_peer_id(peer);
            }
            Standing::Pending => {
                if !self.admission.held.insert(peer) {
                    return;
                }
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .set_application_score(&peer, SHUT_OUT);
                let address = self.peers.get_mut(&peer).map(|p| {
                    p.answers_sync = false;
                    p.address
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default()
                });
                warn!(
                    "[P2P] peer {peer} at {} is not admitted to ledger {}: pending, neither synced with nor counted (accept it with `lattice peers accept {peer}`)",
                    address.unwrap_or_default(),
                    self.ledger
                );
                self.refresh_sync(peer);
                self.emit(P2pEvent::PeersChanged);
            }
            Standing::Admitted => {
                if !self.admission.held.remove(&peer) {
                    return;
                }
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .set_application_score(&peer, 0.0);
                info!(%peer, "[P2P] peer admitted");
                self.probe_if_due(peer);
                self.refresh_sync(peer);
                self.emit(P2pEvent::PeersChanged);
            }
        }
    }

    /// Re-applies every connected peer's standing: membership records change who is
    /// admitted while peers stay connected.
    pub(super) fn review_admission(&mut self) {
        if self.store.ledger().is_open() {
            return;
        }
        let peers: Vec<PeerId> = self.peers.keys().copied().collect();
        for peer in peers {
            self.apply_standing(peer);
        }
    }

    /// Answers a pending peer's sync request without looking at it.
    pub(super) fn refuse_request(&mut self, peer: PeerId, channel: ResponseChannel<SyncResponse>) {
        let response = SyncResponse::Error {
            kind: NOT_ADMITTED.into(),
            message: format!(
                "peer {peer} is not admitted by {} (ledger {}); it must be accepted there first",
                self.node_id, self.ledger
            ),
        };
        let _ = self
            .swarm
            .behaviour_mut()
            .sync
            .send_response(channel, response);
    }

    /// `peer` answered us `not_admitted`: it does not sync with us, so it does not count.
    pub(super) fn refused_by(&mut self, peer: PeerId, request: OutboundRequestId) {
        self.probes.remove(&request);
        self.heard(&peer);
        if let Some(p) = self.peers.get_mut(&peer) {
            p.probing = false;
            p.answers_sync = false;
        }
        self.refresh_sync(peer);
    }

    pub(super) fn handle_admission(&mut self, request: Request) {
        match request {
            Request::Decide {
                peer,
                accept,
                reply,
            } => {
                let rules = &mut self.admission.rules;
                let result = if accept {
                    rules.accept(peer)
                } else {
                    rules.ignore(peer)
                };
                if result.is_ok() {
                    info!(%peer, accept, "[P2P] admission decided");
                    self.apply_standing(peer);
                    self.emit(P2pEvent::PeersChanged);
                }
                let _ = reply.send(result.map_err(|e| e.to_string()));
            }
            Request::View(reply) => {
                let rules = &self.admission.rules;
                let _ = reply.send(AdmissionView {
                    enforced: !self.store.ledger().is_open(),
                    accepted: rules.accepted().iter().map(ToString::to_string).collect(),
                    ignored: rules.ignored().iter().map(ToString::to_string).collect(),
                });
            }
        }
    }
}

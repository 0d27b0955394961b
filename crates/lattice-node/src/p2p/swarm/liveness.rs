//! Whether a peer counts: it must answer. Silence past the peer timeout disconnects it
//! (the decision is `sync::liveness`'s, pure; this task tells it what it hears and
//! carries out its verdicts), and only a peer that answered a sync request counts as a
//! sync peer (a gossip subscription alone proves nothing about syncing).

use std::collections::HashMap;
use std::time::Duration;

use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId};
use tokio::time::Instant;
use tracing::warn;

use super::EventLoop;
use crate::p2p::P2pEvent;
use crate::p2p::protocol::SyncRequest;
use crate::sync::liveness::Verdict;
use crate::time::now_ms;

/// What we know of one connected peer.
pub(super) struct PeerState {
    pub address: Option<Multiaddr>,
    /// We dialed it, so `address` is one it listens on (an inbound connection's remote
    /// port is not dialable).
    pub dialed: bool,
    pub connected_since_ms: u64,
    pub rtt: Option<Duration>,
    /// Identify listed the sync protocol: worth asking whether it answers.
    pub speaks_sync: bool,
    /// It answered a sync request on this connection.
    pub answers_sync: bool,
    /// A `State` probe is on its way to it.
    pub probing: bool,
    /// Where it listens, as identify told us.
    pub listen_addrs: Vec<Multiaddr>,
    /// Identify named another ledger's sync protocol: it counts for nothing.
    pub other_ledger: Option<crate::ledger::LedgerId>,
    /// The last proof of life (a ping answered, any traffic), as unix ms for status; the
    /// steady time liveness judges by is the loop's `alive`.
    pub last_heard_ms: u64,
    /// Every open connection to it: a relayed one alongside a direct one while hole
    /// punching, or two from a simultaneous dial.
    pub links: HashMap<ConnectionId, Link>,
}

/// One connection to a peer.
pub(super) struct Link {
    pub address: Multiaddr,
    pub dialed: bool,
    /// Through a relay's circuit: for finding a direct path, never for carrying sync.
    pub relayed: bool,
}

impl PeerState {
    /// Counts as a sync peer: it speaks the sync protocol and answers it. Liveness is
    /// the map's own invariant: a peer silent past the timeout is taken out of it.
    /// A peer reached only through a relay never counts (relays cap circuits in time
    /// and bytes; where hole punching fails, the HTTP lung is what carries sync).
    pub(super) fn sync_capable(&self) -> bool {
        self.answers_sync && self.direct()
    }

    /// At least one connection is not through a relay.
    pub(super) fn direct(&self) -> bool {
        self.links.values().any(|l| !l.relayed)
    }

    /// `quic` or `tcp`, of the connection that status shows.
    pub(super) fn transport(&self) -> &'static str {
        match &self.address {
            Some(a) if super::transport::is_quic(a) => "quic",
            _ => "tcp",
        }
    }

    /// A new connection; a direct one becomes the address status shows (and redials).
    pub(super) fn add_link(
        &mut self,
        id: ConnectionId,
        address: Multiaddr,
        dialed: bool,
        relayed: bool,
    ) {
        if !relayed && !self.direct() {
            self.address = Some(address.clone());
            self.dialed = dialed;
        }
        self.links.insert(
            id,
            Link {
                address,
                dialed,
                relayed,
            },
        );
    }

    pub(super) fn remove_link(&mut self, id: ConnectionId) {
        self.links.remove(&id);
        if !self
            .links
            .values()
            .any(|l| Some(&l.address) == self.address.as_ref())
            && let Some(l) = self
                .links
                .values()
                .find(|l| !l.relayed)
                .or_else(|| self.links.values().next())
        {
            self.address = Some(l.address.clone());
            self.dialed = l.dialed;
        }
    }

    /// The relayed connections, to close once a direct one exists.
    pub(super) fn relayed_links(&self) -> Vec<ConnectionId> {
        self.links
            .iter()
            .filter(|(_, l)| l.relayed)
            .map(|(id, _)| *id)
            .collect()
    }

    /// The addresses to redial it at, should the connection be lost.
    pub(super) fn dialable(&self) -> Vec<Multiaddr> {
        let mut addrs = self.listen_addrs.clone();
        if self.dialed
            && let Some(a) = &self.address
        {
            addrs.insert(0, a.clone());
        }
        addrs
    }

    pub(super) fn new(address: Multiaddr, dialed: bool) -> Self {
        PeerState {
            address: Some(address),
            dialed,
            connected_since_ms: now_ms(),
            rtt: None,
            speaks_sync: false,
            answers_sync: false,
            probing: false,
            listen_addrs: Vec::new(),
            other_ledger: None,
            last_heard_ms: now_ms(),
            links: HashMap::new(),
        }
    }
}

impl EventLoop {
    /// Proof of life from `peer` (a ping answered, any traffic).
    pub(super) fn heard(&mut self, peer: &PeerId) {
        if let Some(p) = self.peers.get_mut(peer) {
            p.last_heard_ms = now_ms();
            self.alive
                .heard(peer, self.started.elapsed().as_millis() as u64);
        }
    }

    /// Steady milliseconds since the loop started: the clock liveness judges by.
    pub(super) fn steady_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Asks `peer` for its state if identify says it speaks the sync protocol and it has
    /// not answered it yet: only an answer makes it count.
    pub(super) fn probe_if_due(&mut self, peer: PeerId) {
        if self.blocked {
            return;
        }
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        // Not over a relay's circuit: the answer would make it count, and a probe
        // once the direct connection exists goes that way.
        if !p.speaks_sync || p.answers_sync || p.probing || !p.direct() {
            return;
        }
        p.probing = true;
        let id = self
            .swarm
            .behaviour_mut()
            .sync
            .send_request(&peer, SyncRequest::State);
        self.probes.insert(id, peer);
    }

    /// `peer` answered one of our sync requests: it is alive and it syncs.
    pub(super) fn answered(&mut self, peer: PeerId, request: OutboundRequestId) {
        let probe = self.probes.remove(&request).is_some();
        self.heard(&peer);
        if let Some(p) = self.peers.get_mut(&peer) {
            p.answers_sync = true;
            if probe {
                p.probing = false;
            }
        }
        self.refresh_sync(peer);
    }

    /// A sync request to `peer` failed. A peer that does not speak the protocol, or does
    /// not answer it in time, stops counting (and is asked again later).
    pub(super) fn unanswered(
        &mut self,
        peer: PeerId,
        request: OutboundRequestId,
        error: &request_response::OutboundFailure,
    ) {
        use request_response::OutboundFailure as F;
        let probe = self.probes.remove(&request).is_some();
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        if probe {
            p.probing = false;
        }
        match error {
            F::UnsupportedProtocols => {
                p.speaks_sync = false;
                p.answers_sync = false;
            }
            F::Timeout => p.answers_sync = false,
            // The connection's own troubles: liveness judges those.
            F::Io(_) | F::DialFailure | F::ConnectionClosed => {}
        }
        self.refresh_sync(peer);
    }

    /// When the first connected peer's silence will have outlasted the peer timeout.
    pub(super) fn next_silence(&self) -> Option<Instant> {
        self.alive
            .next_deadline()
            .map(|ms| self.started + Duration::from_millis(ms))
    }

    /// Disconnects every peer silent for longer than the peer timeout; it stops counting
    /// now, not when TCP finally gives up (minutes, on a silent drop). Also asks again
    /// the peers that claim the sync protocol but have not answered it.
    pub(super) fn check_liveness(&mut self) {
        for verdict in self.alive.check(self.steady_ms()) {
            match verdict {
                Verdict::Resumed { paused_ms } => warn!(
                    paused_ms,
                    "this node was not running for longer than the peer timeout; giving its peers a fresh timeout"
                ),
                Verdict::Dead { peer, silent_ms } => {
                    warn!(%peer, silent_ms, "peer silent past the peer timeout: disconnecting");
                    self.peers.remove(&peer);
                    let _ = self.swarm.disconnect_peer_id(peer);
                    self.refresh_sync(peer);
                    self.emit(P2pEvent::PeersChanged);
                }
            }
        }
        let unproven: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.speaks_sync && !p.answers_sync && !p.probing && p.direct())
            .map(|(id, _)| *id)
            .collect();
        for peer in unproven {
            self.probe_if_due(peer);
        }
    }
}

//! Whether a peer counts: it must answer. Silence past the peer timeout disconnects it
//! (TCP alone keeps a blackholed connection "up" for minutes and libp2p's ping does not
//! close anything), and only a peer that answered a sync request counts as a sync peer
//! (a gossip subscription alone proves nothing about syncing).

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
    /// The last proof of life (a ping answered, any traffic), monotonic and as unix ms.
    pub last_heard: Instant,
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

    pub(super) fn heard(&mut self) {
        self.last_heard = Instant::now();
        self.last_heard_ms = now_ms();
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
            last_heard: Instant::now(),
            last_heard_ms: now_ms(),
            links: HashMap::new(),
        }
    }
}

impl EventLoop {
    pub(super) fn heard(&mut self, peer: &PeerId) {
        if let Some(p) = self.peers.get_mut(peer) {
            p.heard();
        }
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
        if let Some(p) = self.peers.get_mut(&peer) {
            p.heard();
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
        self.peers
            .values()
            .map(|p| p.last_heard + self.peer_timeout + Duration::from_millis(1))
            .min()
    }

    /// Disconnects every peer silent for longer than the peer timeout; it stops counting
    /// now, not when TCP finally gives up (minutes, on a silent drop). Also asks again
    /// the peers that claim the sync protocol but have not answered it.
    pub(super) fn check_liveness(&mut self) {
        let now = Instant::now();
        let gap = now.saturating_duration_since(self.liveness_checked);
        self.liveness_checked = now;
        if gap > self.peer_timeout {
            // We were frozen, so what we did not hear meanwhile says nothing about the
            // peers: each gets a fresh peer timeout to be heard from.
            warn!(
                paused_ms = gap.as_millis() as u64,
                "this node was not running for longer than the peer timeout; giving its peers a fresh timeout"
            );
            for p in self.peers.values_mut() {
                p.last_heard = now;
            }
            return;
        }
        let silent: Vec<(PeerId, Duration)> = self
            .peers
            .iter()
            .map(|(id, p)| (*id, now.saturating_duration_since(p.last_heard)))
            .filter(|(_, quiet)| *quiet > self.peer_timeout)
            .collect();
        for (peer, quiet) in silent {
            warn!(%peer, silent_ms = quiet.as_millis() as u64, "peer silent past the peer timeout: disconnecting");
            self.peers.remove(&peer);
            let _ = self.swarm.disconnect_peer_id(peer);
            self.refresh_sync(peer);
            self.emit(P2pEvent::PeersChanged);
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

//! The event loop's side of NAT traversal: reserving (and renewing) slots on the relays,
//! noticing hole punches and AutoNAT's verdicts, and closing a relayed connection once
//! a direct one replaces it.

use std::collections::HashMap;

use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, Swarm, autonat, dcutr, relay, upnp};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::EventLoop;
use crate::p2p::behaviour::Behaviour;
use crate::p2p::nat::{NatEvent, Reachability, relay_peer_id};
use crate::p2p::{P2pError, P2pEvent};

/// Our listeners on relays' circuits (one per `LATTICE_RELAYS` address): listening on
/// `<relay>/p2p-circuit` is what makes the relay client dial the relay and reserve.
pub(super) struct RelayListeners {
    active: HashMap<ListenerId, Multiaddr>,
    /// Reservations lost (the relay went away, or refused us), to try again from then.
    retry: Vec<(Instant, Multiaddr)>,
}

impl RelayListeners {
    pub(super) fn start(
        swarm: &mut Swarm<Behaviour>,
        relays: &[Multiaddr],
    ) -> Result<Self, P2pError> {
        let mut listeners = RelayListeners {
            active: HashMap::new(),
            retry: Vec::new(),
        };
        for relay in relays {
            if relay_peer_id(relay).is_none() {
                return Err(P2pError::RelayWithoutPeerId(relay.clone()));
            }
            listeners.listen(swarm, relay.clone());
        }
        Ok(listeners)
    }

    fn listen(&mut self, swarm: &mut Swarm<Behaviour>, relay: Multiaddr) {
        match swarm.listen_on(relay.clone().with(Protocol::P2pCircuit)) {
            Ok(id) => {
                debug!(%relay, "reserving a slot on the relay");
                self.active.insert(id, relay);
            }
            Err(e) => warn!(%relay, error = %e, "cannot listen through the relay"),
        }
    }
}

impl EventLoop {
    pub(super) fn handle_nat(&mut self, event: NatEvent) {
        match event {
            NatEvent::RelayClient(relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                renewal,
                ..
            }) => {
                if !renewal {
                    info!(relay = %relay_peer_id, "[P2P] reserved a slot on relay {relay_peer_id}: peers behind other NATs can reach this node through it");
                }
            }
            NatEvent::RelayClient(event) => debug!(?event, "relay client"),
            NatEvent::Dcutr(dcutr::Event {
                remote_peer_id,
                result: Ok(_),
            }) => {
                info!(peer = %remote_peer_id, "[P2P] direct connection to {remote_peer_id} established by hole punching");
                self.emit(P2pEvent::HolePunched {
                    peer: remote_peer_id,
                });
                // The circuit was only for finding this path; the relay caps it anyway.
                if let Some(p) = self.peers.get(&remote_peer_id) {
                    for link in p.relayed_links() {
                        self.swarm.close_connection(link);
                    }
                }
            }
            NatEvent::Dcutr(dcutr::Event {
                remote_peer_id,
                result: Err(e),
            }) => {
                info!(peer = %remote_peer_id, error = %e, "[P2P] hole punching to {remote_peer_id} failed; it stays relayed (never a sync peer)");
            }
            NatEvent::Autonat(autonat::Event::StatusChanged { old, new }) => {
                let reachability = Reachability::from(&new);
                info!(
                    ?old,
                    ?new,
                    "[P2P] AutoNAT: this node is {}",
                    reachability.as_str()
                );
                if reachability != self.reachability {
                    self.reachability = reachability;
                    self.emit(P2pEvent::Reachability(reachability));
                }
            }
            NatEvent::Autonat(event) => debug!(?event, "AutoNAT"),
            NatEvent::Upnp(upnp::Event::NewExternalAddr { external_addr, .. }) => {
                info!(%external_addr, "[P2P] the router mapped a port by UPnP");
            }
            NatEvent::Upnp(upnp::Event::ExpiredExternalAddr { external_addr, .. }) => {
                info!(%external_addr, "[P2P] a UPnP port mapping expired");
            }
            NatEvent::Upnp(upnp::Event::GatewayNotFound) => {
                debug!("no UPnP gateway answered");
            }
            NatEvent::Upnp(upnp::Event::NonRoutableGateway) => {
                debug!("the UPnP gateway is itself behind a NAT");
            }
        }
    }

    /// A relay listener closed (the connection to the relay was lost, or the
    /// reservation refused): try again after the redial delay.
    pub(super) fn relay_listener_closed(
        &mut self,
        listener: ListenerId,
        error: Option<std::io::Error>,
    ) {
        if let Some(relay) = self.relays.active.remove(&listener) {
            warn!(%relay, error = ?error.map(|e| e.to_string()), "[P2P] lost the reservation on the relay; trying again soon");
            self.relays
                .retry
                .push((Instant::now() + self.relay_retry, relay));
        }
    }

    pub(super) fn relisten_relays(&mut self) {
        if self.blocked || self.relays.retry.is_empty() {
            return;
        }
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) =
            self.relays.retry.drain(..).partition(|(at, _)| *at <= now);
        self.relays.retry = later;
        for (_, relay) in due {
            self.relays.listen(&mut self.swarm, relay);
        }
    }
}

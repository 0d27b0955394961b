//! Getting through NATs: the relay client (a reserved slot on a public relay, so peers
//! behind other NATs can reach us through a circuit), DCUtR (which turns a relayed
//! connection into a direct one by hole punching), AutoNAT (are we publicly reachable?)
//! and UPnP (ask the home router for a port mapping, where it offers one).
//!
//! Kept in one behaviour of its own so the node's [`Behaviour`](super::behaviour) gains a
//! single field, and the event loop one match arm (see `swarm/nat.rs`).

use std::time::Duration;

use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{Multiaddr, PeerId, autonat, dcutr, relay, upnp};

/// Whether this node can be dialed from the internet, as AutoNAT last judged it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reachability {
    /// A server dialed one of our addresses back.
    Public,
    /// Servers tried and could not: we are behind a NAT or firewall.
    Private,
    /// Not probed yet, or no server to ask.
    #[default]
    Unknown,
}

impl Reachability {
    pub fn as_str(self) -> &'static str {
        match self {
            Reachability::Public => "public",
            Reachability::Private => "private",
            Reachability::Unknown => "unknown",
        }
    }
}

impl From<&autonat::NatStatus> for Reachability {
    fn from(status: &autonat::NatStatus) -> Self {
        match status {
            autonat::NatStatus::Public(_) => Reachability::Public,
            autonat::NatStatus::Private => Reachability::Private,
            autonat::NatStatus::Unknown => Reachability::Unknown,
        }
    }
}

/// What the NAT behaviours need from the node's configuration.
#[derive(Clone, Debug)]
pub(crate) struct NatOptions {
    /// The relays to reserve a slot on (each ends in `/p2p/<relay id>`); also asked first
    /// by AutoNAT.
    pub relays: Vec<Multiaddr>,
    pub upnp: bool,
    /// AutoNAT refuses (as server) and ignores (as client) peers seen at non-global
    /// addresses. Only a test network of documentation addresses turns this off.
    pub autonat_global_only: bool,
    /// The first AutoNAT probe waits this long (for identify to have told us our
    /// observed addresses); later ones follow at `autonat_retry` until confident.
    pub autonat_boot: Duration,
    pub autonat_retry: Duration,
    pub request_timeout: Duration,
}

/// AutoNAT's own defaults are tuned for big networks (first probe after 15 s, retries
/// every 90 s); ours follow the node's timers, capped at those defaults.
pub(crate) fn autonat_config(options: &NatOptions) -> autonat::Config {
    autonat::Config {
        timeout: options.request_timeout.min(Duration::from_secs(30)),
        boot_delay: options.autonat_boot.min(Duration::from_secs(15)),
        retry_interval: options.autonat_retry.min(Duration::from_secs(90)),
        refresh_interval: Duration::from_secs(15 * 60),
        // One relay is a common setup: it must be usable again for a retry.
        throttle_server_period: options.autonat_retry.min(Duration::from_secs(90)),
        only_global_ips: options.autonat_global_only,
        ..Default::default()
    }
}

#[derive(NetworkBehaviour)]
pub(crate) struct Nat {
    pub relay_client: relay::client::Behaviour,
    pub dcutr: dcutr::Behaviour,
    pub autonat: autonat::Behaviour,
    pub upnp: Toggle<upnp::tokio::Behaviour>,
}

impl Nat {
    pub(crate) fn new(
        peer_id: PeerId,
        relay_client: relay::client::Behaviour,
        options: &NatOptions,
    ) -> Self {
        let mut autonat = autonat::Behaviour::new(peer_id, autonat_config(options));
        for relay in &options.relays {
            if let Some(id) = relay_peer_id(relay) {
                autonat.add_server(id, Some(relay.clone()));
            }
        }
        Nat {
            relay_client,
            dcutr: dcutr::Behaviour::new(peer_id),
            autonat,
            upnp: options.upnp.then(upnp::tokio::Behaviour::default).into(),
        }
    }
}

/// The relay's PeerId: the `/p2p/<id>` an address in `LATTICE_RELAYS` ends in.
pub(crate) fn relay_peer_id(addr: &Multiaddr) -> Option<PeerId> {
    match addr.iter().last() {
        Some(libp2p::multiaddr::Protocol::P2p(id)) => Some(id),
        _ => None,
    }
}

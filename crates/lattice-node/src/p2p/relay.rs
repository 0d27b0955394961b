//! `lattice relay`: a public meeting point for nodes behind NATs. It relays circuits
//! (so two nodes that cannot dial each other can meet and then hole punch) and answers
//! AutoNAT dial-back requests (so a node learns whether it is publicly reachable). It
//! holds no ledger and does not speak the sync protocol, so it is never a sync peer.
//!
//! Whom it serves (see [`RelayRule`]): with a closed ledger named in its configuration
//! (`LATTICE_LEDGER` and its genesis record) or `LATTICE_P2P_ALLOW`, reservations and
//! circuits only for the ledger's members and administrators and the allow-list; with
//! neither, anyone (said with a warning at start).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, Swarm, allow_block_list, autonat, connection_limits, identify, ping, relay,
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::P2pError;
use super::nat::{NatOptions, autonat_config};
use super::protocol::IDENTIFY_PROTOCOL;
use super::swarm::transport::{self, TransportOptions};
use crate::identity::{NodeKey, public_key_of};
use crate::ledger::Genesis;

/// Nodes a relay serves at once; each holds one connection and maybe a reservation.
const MAX_ESTABLISHED: u32 = 512;

#[derive(Clone, Debug)]
pub struct RelayConfig {
    pub key: NodeKey,
    pub listen: Vec<Multiaddr>,
    /// Told to clients instead of the listen addresses, when set (a public name or a
    /// port forward in front of this host).
    pub announce: Vec<Multiaddr>,
    /// Only these peers may connect, reserve or open circuits (`LATTICE_P2P_ALLOW`).
    pub allow: Option<Vec<PeerId>>,
    pub psk: Option<[u8; 32]>,
    pub dial_timeout: Duration,
    pub ping_interval: Duration,
    pub peer_timeout: Duration,
    /// As AutoNAT server, answer clients seen at non-global addresses too (tests on
    /// documentation addresses; a relay on the internet leaves this off).
    pub autonat_global_only: bool,
    /// The genesis record of the ledger this relay serves (`LATTICE_LEDGER` with
    /// `LATTICE_GENESIS`): its members and administrators may reserve and open
    /// circuits. It holds no entries, so membership records added since are not seen:
    /// a later author is let in with `LATTICE_P2P_ALLOW`.
    pub ledger: Option<Genesis>,
}

/// Who may reserve a slot and open circuits through the relay.
#[derive(Clone, Debug)]
pub struct RelayRule {
    allow: Option<HashSet<PeerId>>,
    /// A closed ledger's record (an open one admits anyone, so it is not kept).
    ledger: Option<Genesis>,
}

impl RelayRule {
    pub fn new(allow: Option<&[PeerId]>, ledger: Option<&Genesis>) -> Self {
        Self {
            allow: allow.map(|a| a.iter().copied().collect()),
            ledger: ledger.filter(|g| !g.is_open()).cloned(),
        }
    }

    pub fn is_open(&self) -> bool {
        self.allow.is_none() && self.ledger.is_none()
    }

    pub fn admits(&self, peer: &PeerId) -> bool {
        if self.is_open() || self.allow.as_ref().is_some_and(|a| a.contains(peer)) {
            return true;
        }
        self.ledger
            .as_ref()
            .is_some_and(|g| public_key_of(peer).is_some_and(|k| g.is_author(&k) || g.is_admin(&k)))
    }

    /// The rule in one sentence, for the log at start.
    pub fn describe(&self) -> String {
        let allow = self.allow.as_ref().map(|a| a.len());
        match (&self.ledger, allow) {
            (None, None) => "open: any peer may reserve a slot and open circuits through this relay; set LATTICE_LEDGER and LATTICE_GENESIS (or LATTICE_P2P_ALLOW) to serve only a ledger's members".into(),
            (None, Some(n)) => format!("only the {n} peers of LATTICE_P2P_ALLOW may connect, reserve a slot and open circuits"),
            (Some(g), allow) => format!(
                "only the {} authors and administrators of ledger {:?} ({}){} may reserve a slot and open circuits; others are refused",
                g.authors().count() + g.admins().filter(|k| !g.is_author(k)).count(),
                g.name(),
                g.id(),
                allow.map_or(String::new(), |n| format!(" and the {n} peers of LATTICE_P2P_ALLOW")),
            ),
        }
    }
}

/// Reservations and circuits granted and refused so far (by the rule or a limit).
#[derive(Debug, Default)]
struct Counts {
    reservations_granted: AtomicU64,
    reservations_denied: AtomicU64,
    circuits_denied: AtomicU64,
}

#[derive(NetworkBehaviour)]
struct RelayBehaviour {
    allow: Toggle<allow_block_list::Behaviour<allow_block_list::AllowedPeers>>,
    limits: connection_limits::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    relay: relay::Behaviour,
    autonat: autonat::Behaviour,
}

/// A running relay: where it listens, and its PeerId (the `/p2p/<id>` clients name).
pub struct RelayHandle {
    pub peer_id: PeerId,
    addrs: mpsc::Sender<oneshot::Sender<Vec<Multiaddr>>>,
    counts: Arc<Counts>,
}

/// What a relay has granted and refused (reservations renewed count once).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelayCounts {
    pub reservations_granted: u64,
    pub reservations_denied: u64,
    pub circuits_denied: u64,
}

impl RelayHandle {
    /// The addresses bound, each ending in `/p2p/<relay id>`: what `LATTICE_RELAYS` names.
    pub async fn listen_addrs(&self) -> Vec<Multiaddr> {
        let (tx, rx) = oneshot::channel();
        if self.addrs.send(tx).await.is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    pub fn counts(&self) -> RelayCounts {
        RelayCounts {
            reservations_granted: self.counts.reservations_granted.load(Ordering::Relaxed),
            reservations_denied: self.counts.reservations_denied.load(Ordering::Relaxed),
            circuits_denied: self.counts.circuits_denied.load(Ordering::Relaxed),
        }
    }
}

/// A relay "rate limiter" that lets through exactly the peers `rule` admits (libp2p's
/// hook for refusing a reservation or a circuit's source before it is granted).
fn admitting(rule: &RelayRule) -> Box<dyn relay::RateLimiter> {
    let rule = rule.clone();
    Box::new(move |peer: PeerId, _addr: &Multiaddr, _now: std::time::Instant| rule.admits(&peer))
}

/// Starts the relay in its own task; it stops when `cancel` fires.
pub fn spawn_relay(
    config: RelayConfig,
    cancel: CancellationToken,
) -> Result<RelayHandle, P2pError> {
    let peer_id = config.key.peer_id();
    let options = TransportOptions {
        key: &config.key.to_libp2p(),
        psk: config.psk,
        dial_timeout: config.dial_timeout,
    };
    let nat = NatOptions {
        relays: Vec::new(),
        upnp: false,
        autonat_global_only: config.autonat_global_only,
        autonat_boot: config.ping_interval * 2,
        autonat_retry: config.peer_timeout * 2,
        request_timeout: config.dial_timeout * 2,
    };
    let rule = RelayRule::new(config.allow.as_deref(), config.ledger.as_ref());
    let mut relay_config = relay::Config::default();
    relay_config
        .reservation_rate_limiters
        .push(admitting(&rule));
    relay_config
        .circuit_src_rate_limiters
        .push(admitting(&rule));
    let mut swarm = transport::build(&options, |key, _client| {
        let allow = config.allow.as_ref().map(|peers| {
            // With a ledger too, its members must be able to connect (the rule then
            // refuses strangers' reservations and circuits).
            let members = config.ledger.iter().filter(|g| !g.is_open()).flat_map(|g| {
                g.authors()
                    .chain(g.admins())
                    .filter_map(crate::identity::peer_id_of)
                    .collect::<Vec<_>>()
            });
            let mut list = allow_block_list::Behaviour::<allow_block_list::AllowedPeers>::default();
            for p in peers.iter().copied().chain(members) {
                list.allow_peer(p);
            }
            list
        });
        Ok(RelayBehaviour {
            allow: allow.into(),
            limits: connection_limits::Behaviour::new(
                connection_limits::ConnectionLimits::default()
                    .with_max_established(Some(MAX_ESTABLISHED))
                    .with_max_established_per_peer(Some(4)),
            ),
            identify: identify::Behaviour::new(
                identify::Config::new(IDENTIFY_PROTOCOL.into(), key.public())
                    .with_hide_listen_addrs(!config.announce.is_empty()),
            ),
            ping: ping::Behaviour::new(
                ping::Config::new()
                    .with_interval(config.ping_interval)
                    .with_timeout(config.peer_timeout),
            ),
            relay: relay::Behaviour::new(peer_id, relay_config),
            // Answers dial-back requests from anyone connected.
            autonat: autonat::Behaviour::new(peer_id, autonat_config(&nat)),
        })
    })?;
    for addr in &config.announce {
        swarm.add_external_address(addr.clone());
    }
    for addr in &config.listen {
        if config.psk.is_some() && transport::is_quic(addr) {
            warn!(%addr, "LATTICE_P2P_PSK is set: QUIC cannot carry a pre-shared key, so the relay stays on TCP");
            continue;
        }
        swarm
            .listen_on(addr.clone())
            .map_err(|e| P2pError::Listen {
                addr: addr.clone(),
                message: super::error_text(&e),
            })?;
    }
    if rule.is_open() {
        warn!("[RELAY] {}", rule.describe());
    } else {
        info!("[RELAY] {}", rule.describe());
    }
    let (addrs_tx, addrs_rx) = mpsc::channel(8);
    let announced = !config.announce.is_empty();
    let counts = Arc::new(Counts::default());
    tokio::spawn(run(swarm, addrs_rx, cancel, announced, counts.clone()));
    Ok(RelayHandle {
        peer_id,
        addrs: addrs_tx,
        counts,
    })
}

async fn run(
    mut swarm: Swarm<RelayBehaviour>,
    mut addrs: mpsc::Receiver<oneshot::Sender<Vec<Multiaddr>>>,
    cancel: CancellationToken,
    announced: bool,
    counts: Arc<Counts>,
) {
    let me = *swarm.local_peer_id();
    let mut bound: Vec<Multiaddr> = Vec::new();
    let mut waiting: Vec<oneshot::Sender<Vec<Multiaddr>>> = Vec::new();
    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            Some(reply) = addrs.recv() => {
                if bound.is_empty() {
                    waiting.push(reply);
                } else {
                    let _ = reply.send(bound.clone());
                }
            }
            event = swarm.select_next_some() => match event {
                SwarmEvent::NewListenAddr { address, .. } => {
                    let full = address.clone().with(Protocol::P2p(me));
                    info!(address = %full, "[RELAY] listening");
                    // A relay is a public host: what it binds is where clients reach it
                    // (and what reservations tell them), unless it announces otherwise.
                    if !announced && !is_unspecified(&address) {
                        swarm.add_external_address(address);
                    }
                    bound.push(full);
                    for w in waiting.drain(..) {
                        let _ = w.send(bound.clone());
                    }
                }
                SwarmEvent::Behaviour(RelayBehaviourEvent::Relay(e)) => log_relay(e, &counts),
                SwarmEvent::ConnectionEstablished { peer_id, endpoint, .. } => {
                    debug!(peer = %peer_id, address = %endpoint.get_remote_address(), "[RELAY] peer connected");
                }
                _ => {}
            }
        }
    }
    debug!("relay task stopped");
}

fn is_unspecified(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_unspecified(),
        Protocol::Ip6(ip) => ip.is_unspecified(),
        _ => false,
    })
}

#[allow(deprecated)]
fn log_relay(event: relay::Event, counts: &Counts) {
    match event {
        relay::Event::ReservationReqAccepted {
            src_peer_id,
            renewed: false,
        } => {
            counts.reservations_granted.fetch_add(1, Ordering::Relaxed);
            info!(peer = %src_peer_id, "[RELAY] reservation granted")
        }
        relay::Event::ReservationReqDenied {
            src_peer_id,
            status,
        } => {
            counts.reservations_denied.fetch_add(1, Ordering::Relaxed);
            info!(peer = %src_peer_id, ?status, "[RELAY] reservation refused")
        }
        relay::Event::CircuitReqAccepted {
            src_peer_id,
            dst_peer_id,
        } => info!(from = %src_peer_id, to = %dst_peer_id, "[RELAY] circuit opened"),
        relay::Event::CircuitReqDenied {
            src_peer_id,
            dst_peer_id,
            status,
        } => {
            counts.circuits_denied.fetch_add(1, Ordering::Relaxed);
            info!(from = %src_peer_id, to = %dst_peer_id, ?status, "[RELAY] circuit refused")
        }
        other => debug!(event = ?other, "[RELAY]"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_admits_members_admins_and_the_allow_list_and_is_open_only_without_both() {
        let key = |n: u8| NodeKey::from_seed([n; 32]);
        let g = Genesis::sign(&key(1), "r", false, &[key(2).public_bytes()], &[], 1).unwrap();
        let founder = key(1).peer_id();
        let (author, allowed, stranger) = (key(2).peer_id(), key(3).peer_id(), key(4).peer_id());

        let open = RelayRule::new(None, None);
        assert!(open.is_open() && open.admits(&stranger));
        assert!(open.describe().starts_with("open"));
        let dev = RelayRule::new(None, Some(&Genesis::development()));
        assert!(dev.is_open(), "an open ledger admits anyone");

        let closed = RelayRule::new(Some(&[allowed]), Some(&g));
        assert!(!closed.is_open());
        assert!(closed.admits(&author) && closed.admits(&allowed));
        assert_eq!(closed.admits(&founder), g.is_admin(&key(1).public_bytes()));
        assert!(!closed.admits(&stranger));
        let text = closed.describe();
        assert!(
            text.contains(&g.id().to_hex()) && text.contains("LATTICE_P2P_ALLOW"),
            "{text}"
        );
    }
}

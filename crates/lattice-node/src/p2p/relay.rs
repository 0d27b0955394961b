//! `lattice relay`: a public meeting point for nodes behind NATs. It relays circuits
//! (so two nodes that cannot dial each other can meet and then hole punch) and answers
//! AutoNAT dial-back requests (so a node learns whether it is publicly reachable). It
//! holds no ledger and does not speak the sync protocol, so it is never a sync peer.

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
use crate::identity::NodeKey;

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
    let mut swarm = transport::build(&options, |key, _client| {
        let allow = config.allow.as_ref().map(|peers| {
            let mut list = allow_block_list::Behaviour::<allow_block_list::AllowedPeers>::default();
            for p in peers {
                list.allow_peer(*p);
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
            relay: relay::Behaviour::new(peer_id, relay::Config::default()),
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
                message: e.to_string(),
            })?;
    }
    let (addrs_tx, addrs_rx) = mpsc::channel(8);
    let announced = !config.announce.is_empty();
    tokio::spawn(run(swarm, addrs_rx, cancel, announced));
    Ok(RelayHandle {
        peer_id,
        addrs: addrs_tx,
    })
}

async fn run(
    mut swarm: Swarm<RelayBehaviour>,
    mut addrs: mpsc::Receiver<oneshot::Sender<Vec<Multiaddr>>>,
    cancel: CancellationToken,
    announced: bool,
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
                SwarmEvent::Behaviour(RelayBehaviourEvent::Relay(e)) => log_relay(e),
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
fn log_relay(event: relay::Event) {
    match event {
        relay::Event::ReservationReqAccepted {
            src_peer_id,
            renewed: false,
        } => info!(peer = %src_peer_id, "[RELAY] reservation granted"),
        relay::Event::ReservationReqDenied {
            src_peer_id,
            status,
        } => {
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
        } => info!(from = %src_peer_id, to = %dst_peer_id, ?status, "[RELAY] circuit refused"),
        other => debug!(event = ?other, "[RELAY]"),
    }
}

//! The swarm's behaviours, and the gate that cuts P2P for real while blocked.

use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Duration;

use libp2p::core::Endpoint;
use libp2p::core::transport::PortUse;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, ValidationMode};
use libp2p::identity::Keypair;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, allow_block_list, connection_limits, identify, mdns, ping,
};
use sha2::{Digest, Sha256};

use super::P2pConfig;
use super::nat::Nat;
use super::protocol::{
    GOSSIP_ENVELOPE, IDENTIFY_PROTOCOL, gossip_topic, sync_protocol, sync_protocol_v2,
};
use super::sync_codec::SyncCodec;
use crate::ledger::{Entry, LedgerId};

/// Most established connections in total, and per peer (a simultaneous dial from both
/// sides may briefly make two, beside a relayed one while hole punching).
const MAX_ESTABLISHED: u32 = 64;
const MAX_ESTABLISHED_PER_PEER: u32 = 3;

#[derive(NetworkBehaviour)]
pub(super) struct Behaviour {
    /// First, so a blocked node refuses before any other behaviour sees the connection.
    pub gate: Gate,
    pub allow: Toggle<allow_block_list::Behaviour<allow_block_list::AllowedPeers>>,
    pub limits: connection_limits::Behaviour,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub gossipsub: gossipsub::Behaviour,
    pub sync: request_response::Behaviour<SyncCodec>,
    /// Answers our genesis record to whoever asks (see `p2p::genesis`).
    pub genesis: super::genesis::GenesisBehaviour,
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    /// Relay client, hole punching, AutoNAT and UPnP (see `p2p::nat`).
    pub nat: Nat,
}

/// The gossip message id is the hash of the entry's id and signature, so the same entry
/// arriving along two paths is one message, dropped as a duplicate before anything checks
/// it again. It is computed for every copy, so it checks no signature (validation does,
/// once); the signature is part of it so that a forged copy of an entry (same content,
/// bad signature) is a message of its own, and rejecting it cannot suppress the genuine
/// one. Anything that does not parse as an entry falls back to the hash of its bytes (it
/// will be rejected by validation anyway).
fn message_id(max_payload: usize) -> impl Fn(&gossipsub::Message) -> gossipsub::MessageId {
    move |m| match std::str::from_utf8(&m.data)
        .ok()
        .and_then(|text| Entry::claimed_id_of_json(text, max_payload))
    {
        Some((id, signature)) => {
            let mut h = Sha256::new();
            h.update(b"lattice/gossip-id/v1");
            h.update(id.as_bytes());
            h.update(signature);
            gossipsub::MessageId::new(&h.finalize())
        }
        None => gossipsub::MessageId::new(&Sha256::digest(&m.data)),
    }
}

pub(super) fn topic(ledger: &LedgerId) -> IdentTopic {
    IdentTopic::new(gossip_topic(ledger))
}

/// Peer scoring whose one job is to make forgers pay: each rejected message costs its
/// sender (squared, decaying over about half a minute), so a few forgeries graylist it.
/// The defaults are tuned for busy networks and would hurt this one: the mesh-delivery
/// deficit (P3) punishes honest peers in a quiet ledger, time in mesh (P1) earns up to
/// +1800 that hides forgeries, and IP colocation penalises loopback demos and LANs.
fn score_params(ledger: &LedgerId) -> gossipsub::PeerScoreParams {
    let topic_params = gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.1,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 10.0,
        first_message_deliveries_weight: 1.0,
        first_message_deliveries_cap: 10.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -10.0,
        invalid_message_deliveries_decay: 0.9,
        ..Default::default()
    };
    let mut params = gossipsub::PeerScoreParams {
        ip_colocation_factor_weight: 0.0,
        ..Default::default()
    };
    params.topics.insert(topic(ledger).hash(), topic_params);
    params
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Behaviour {
    pub(super) fn new(
        key: &Keypair,
        relay_client: libp2p::relay::client::Behaviour,
        config: &P2pConfig,
        ledger: &LedgerId,
    ) -> Result<Self, BoxError> {
        let peer_id = key.public().to_peer_id();

        let gossip_config = gossipsub::ConfigBuilder::default()
            .heartbeat_interval(config.gossip_heartbeat)
            .validation_mode(ValidationMode::Strict)
            .validate_messages()
            .max_transmit_size(config.max_payload + GOSSIP_ENVELOPE)
            .message_id_fn(message_id(config.max_payload))
            .build()?;
        let mut gossipsub =
            gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), gossip_config)?;
        gossipsub.with_peer_score(
            score_params(ledger),
            gossipsub::PeerScoreThresholds::default(),
        )?;
        gossipsub.subscribe(&topic(ledger))?;

        // The binary protocol first: the dialer proposes in this order.
        let mut names = vec![sync_protocol_v2(ledger), sync_protocol(ledger)];
        if config.sync_json_only {
            names.remove(0);
        }
        let protocols = names
            .into_iter()
            .map(|p| Ok((StreamProtocol::try_from_owned(p)?, ProtocolSupport::Full)))
            .collect::<Result<Vec<_>, BoxError>>()?;
        let sync = request_response::Behaviour::with_codec(
            SyncCodec,
            protocols,
            request_response::Config::default().with_request_timeout(config.request_timeout),
        );

        let allow = config.allow.as_ref().map(|peers| {
            let mut list = allow_block_list::Behaviour::<allow_block_list::AllowedPeers>::default();
            for p in peers {
                list.allow_peer(*p);
            }
            list
        });

        let mdns = if config.mdns {
            Some(mdns::tokio::Behaviour::new(
                mdns::Config::default(),
                peer_id,
            )?)
        } else {
            None
        };

        Ok(Behaviour {
            gate: Gate::default(),
            allow: allow.into(),
            limits: connection_limits::Behaviour::new(
                connection_limits::ConnectionLimits::default()
                    .with_max_established(Some(MAX_ESTABLISHED))
                    .with_max_established_per_peer(Some(MAX_ESTABLISHED_PER_PEER)),
            ),
            // Pushing listen-address changes matters when a node dials out before its
            // listener is bound: the peer learns where to redial it a moment later.
            identify: identify::Behaviour::new(
                identify::Config::new(IDENTIFY_PROTOCOL.into(), key.public())
                    .with_push_listen_addr_updates(true)
                    .with_hide_listen_addrs(!config.announce.is_empty()),
            ),
            // A ping slower than the peer timeout is as good as none.
            ping: ping::Behaviour::new(
                ping::Config::new()
                    .with_interval(config.ping_interval)
                    .with_timeout(config.peer_timeout),
            ),
            gossipsub,
            sync,
            genesis: super::genesis::behaviour(ProtocolSupport::Inbound, config.request_timeout)?,
            mdns: mdns.into(),
            nat: Nat::new(peer_id, relay_client, &config.nat_options()),
        })
    }
}

/// Refuses every connection, inbound and outbound, while `blocked` is set. The allow-
/// and block-list behaviour can only refuse peers it knows; this refuses everyone,
/// which is what "cut P2P" means.
#[derive(Default)]
pub(super) struct Gate {
    pub blocked: bool,
    /// Connections refused so far (tests watch it to see a redial being turned away).
    pub denied: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("P2P is blocked on this node")]
pub struct Blocked;

impl Gate {
    fn check(&mut self) -> Result<(), ConnectionDenied> {
        if self.blocked {
            self.denied += 1;
            Err(ConnectionDenied::new(Blocked))
        } else {
            Ok(())
        }
    }
}

impl NetworkBehaviour for Gate {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.check()
    }

    fn handle_pending_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: Option<PeerId>,
        _: &[Multiaddr],
        _: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        self.check().map(|()| Vec::new())
    }

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.check().map(|()| dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.check().map(|()| dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

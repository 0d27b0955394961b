//! The swarm task: one loop owns the swarm and everything it knows about peers.
//!
//! Modelled on rust-libp2p's file-sharing example: commands come in from [`P2pHandle`]
//! (with oneshot replies), swarm events are handled apart from commands, and the select
//! is biased with cancellation first. Work that touches the disk (answering a sync
//! request, storing a gossiped entry) runs in spawned tasks; a sync answer comes back
//! here because only the swarm can send it.
//!
//! [`P2pHandle`]: super::P2pHandle

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use futures_util::StreamExt;
use libp2p::core::ConnectedPoint;
use libp2p::gossipsub::IdentTopic;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, identify, mdns, ping};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use self::liveness::PeerState;
use super::behaviour::{Behaviour, BehaviourEvent, topic};
use super::protocol::{SyncRequest, SyncResponse, ledger_of_protocol, sync_protocol};
use super::redial::{Redial, bootstrap_targets, dialable};
use super::{P2pConfig, P2pError, P2pEvent, PeerInfo};
use crate::ledger::{LedgerId, Store};
use crate::sync::liveness::Liveness;
use crate::sync::reconcile::TransportError;

mod admit;
mod gossip;
mod limit;
mod liveness;
mod nat;
mod sync_answers;
pub(crate) mod transport;

pub use self::admit::AdmissionView;
pub(crate) use self::admit::Request as AdmitRequest;

pub(crate) type Reply<T> = oneshot::Sender<T>;

pub(crate) enum Command {
    ListenAddrs(Reply<Vec<Multiaddr>>),
    Publish(Vec<u8>),
    SetGossip(bool, Reply<()>),
    SetBlocked(bool, Reply<()>),
    Peers(Reply<Vec<PeerInfo>>),
    #[cfg(test)]
    Denied(Reply<u64>),
    #[cfg(test)]
    Score(PeerId, Reply<Option<f64>>),
    Request {
        peer: PeerId,
        request: SyncRequest,
        reply: Reply<Result<SyncResponse, TransportError>>,
    },
    Admission(admit::Request),
}

pub(super) struct EventLoop {
    swarm: Swarm<Behaviour>,
    store: Store,
    cancel: CancellationToken,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<P2pEvent>,
    /// Answers computed by spawned tasks, on their way back to the swarm.
    answers_tx: mpsc::UnboundedSender<(ResponseChannel<SyncResponse>, SyncResponse)>,
    answers: mpsc::UnboundedReceiver<(ResponseChannel<SyncResponse>, SyncResponse)>,
    topic: IdentTopic,
    /// The ledger we hold: peers of another are refused, entries of non-members too.
    ledger: LedgerId,
    node_id: String,
    max_payload: usize,
    mesh_check: Duration,
    gossip: bool,
    blocked: bool,
    peers: HashMap<PeerId, PeerState>,
    sync_peers: HashSet<PeerId>,
    mesh: HashSet<PeerId>,
    redial: Redial,
    pending: HashMap<OutboundRequestId, Reply<Result<SyncResponse, TransportError>>>,
    /// Our own `State` requests asking a peer whether it answers the sync protocol.
    probes: HashMap<OutboundRequestId, PeerId>,
    /// Who is connected and when each was last heard from; it says who is dead.
    alive: Liveness<PeerId>,
    /// What `alive`'s steady milliseconds count from.
    started: Instant,
    /// How often silence is looked for (the ping interval).
    liveness_check: Duration,
    listen_addrs: Vec<Multiaddr>,
    /// Listeners that have not reported an address yet; `listen_addrs` waits for them.
    unbound: HashSet<libp2p::core::transport::ListenerId>,
    addr_waiters: Vec<Reply<Vec<Multiaddr>>>,
    /// libp2p's own metrics, when the node exports them.
    metrics: Option<libp2p::metrics::Metrics>,
    /// Our reservations on `LATTICE_RELAYS`, renewed when lost (see `nat`).
    relays: nat::RelayListeners,
    reachability: super::Reachability,
    /// How soon a lost relay reservation is tried again.
    relay_retry: Duration,
    /// Who is admitted (see `p2p::admission`), and who is held out now.
    admission: admit::Gatekeeper,
    /// Per-peer limit on gossiped entries, and its rate-limited warning.
    rate: super::rate::RateLimiter,
    rate_warning: crate::throttle::LogThrottle,
    /// Gossiped entries whose signature was checked (copies of held entries are not).
    gossip_checks: Arc<AtomicU64>,
}

impl EventLoop {
    pub(super) fn new(
        config: P2pConfig,
        store: Store,
        cancel: CancellationToken,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<P2pEvent>,
        metrics: Option<libp2p::metrics::Metrics>,
    ) -> Result<Self, P2pError> {
        let mut seed = [0u8; 8];
        // Without randomness the jitter is still spread by the peer id below.
        let _ = getrandom::fill(&mut seed);
        let id_bytes = config.key.peer_id().to_bytes();
        let id_hash = id_bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
        });
        // Its clock is the loop's steady milliseconds, which start now.
        let redial = Redial::new(
            bootstrap_targets(&config.bootstrap)?,
            config.redial_min,
            config.redial_max,
            0,
            u64::from_le_bytes(seed) ^ id_hash,
        );

        let ledger = store.ledger().id();
        let configured =
            config
                .allow
                .iter()
                .flatten()
                .copied()
                .chain(
                    config
                        .bootstrap
                        .iter()
                        .filter_map(|a| match a.iter().last() {
                            Some(libp2p::multiaddr::Protocol::P2p(peer)) => Some(peer),
                            _ => None,
                        }),
                );
        let admission = super::admission::Admission::load(store.path().parent(), configured)
            .map_err(|e| P2pError::Admission(e.to_string()))?;
        let options = transport::TransportOptions {
            key: &config.key.to_libp2p(),
            psk: config.psk,
            dial_timeout: config.dial_timeout,
        };
        let mut swarm = transport::build(&options, |key, relay| {
            Behaviour::new(key, relay, &config, &ledger)
        })?;
        for addr in &config.announce {
            swarm.add_external_address(addr.clone());
        }

        let mut unbound = HashSet::new();
        for addr in &config.listen {
            if config.psk.is_some() && transport::is_quic(addr) {
                warn!(
                    %addr,
                    "LATTICE_P2P_PSK is set: QUIC cannot carry a pre-shared key, so this node stays on TCP and does not listen on QUIC"
                );
                continue;
            }
            let id = swarm
                .listen_on(addr.clone())
                .map_err(|e| P2pError::Listen {
                    addr: addr.clone(),
                    message: super::error_text(&e),
                })?;
            unbound.insert(id);
        }

        let relays = nat::RelayListeners::start(&mut swarm, &config.relays)?;
        let (answers_tx, answers) = mpsc::unbounded_channel();
        Ok(EventLoop {
            swarm,
            store,
            cancel,
            commands,
            events,
            answers_tx,
            answers,
            topic: topic(&ledger),
            ledger,
            node_id: config.key.peer_id().to_string(),
            max_payload: config.max_payload,
            mesh_check: config.gossip_heartbeat.max(Duration::from_millis(50)),
            gossip: true,
            blocked: false,
            peers: HashMap::new(),
            sync_peers: HashSet::new(),
            mesh: HashSet::new(),
            redial,
            pending: HashMap::new(),
            probes: HashMap::new(),
            alive: Liveness::new(config.peer_timeout, 0),
            started: Instant::now(),
            liveness_check: config.ping_interval.max(Duration::from_millis(10)),
            listen_addrs: Vec::new(),
            unbound,
            addr_waiters: Vec::new(),
            metrics,
            relays,
            reachability: super::Reachability::Unknown,
            relay_retry: config.redial_min.max(Duration::from_millis(100)),
            admission: admit::Gatekeeper::new(admission),
            rate: super::rate::RateLimiter::new(config.peer_rate),
            rate_warning: crate::throttle::LogThrottle::default(),
            gossip_checks: Arc::default(),
        })
    }

    /// Counts the gossiped entries whose signature this loop checks.
    pub(super) fn gossip_checks(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.gossip_checks)
    }

    pub(super) async fn run(mut self) {
        let mut mesh_tick = tokio::time::interval(self.mesh_check);
        mesh_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut liveness_tick = tokio::time::interval(self.liveness_check);
        liveness_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let redial_at = self
                .redial
                .next_at()
                .map(|ms| self.started + Duration::from_millis(ms));
            let silent_at = self.next_silence();
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => break,
                Some((channel, response)) = self.answers.recv() => {
                    if self.swarm.behaviour_mut().sync.send_response(channel, response).is_err() {
                        debug!("a sync answer was ready after its requester left");
                    }
                }
                command = self.commands.recv() => match command {
                    Some(command) => self.handle_command(command),
                    None => break,
                },
                event = self.swarm.select_next_some() => self.handle_event(event),
                _ = tokio::time::sleep_until(redial_at.unwrap_or_else(Instant::now)),
                    if redial_at.is_some() => self.redial_due(),
                _ = mesh_tick.tick() => self.check_mesh(),
                // At the moment a peer's silence passes the timeout, so it stops counting
                // then, not up to a check interval later.
                _ = tokio::time::sleep_until(silent_at.unwrap_or_else(Instant::now)),
                    if silent_at.is_some() => self.check_liveness(),
                // Also periodically: asks unproven peers again, and notices our own pauses.
                _ = liveness_tick.tick() => {
                    self.check_liveness();
                    self.relisten_relays();
                    self.review_admission();
                }
            }
        }
        debug!("P2P swarm task stopped");
    }

    fn emit(&self, event: P2pEvent) {
        match self.events.try_send(event) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(e)) => {
                warn!(event = ?e, "the node is not reading P2P events; one was dropped");
            }
        }
    }

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::ListenAddrs(reply) => {
                if self.unbound.is_empty() {
                    let _ = reply.send(self.listen_addrs.clone());
                } else {
                    self.addr_waiters.push(reply);
                }
            }
            Command::Publish(data) => self.publish(data),
            Command::SetGossip(enabled, done) => {
                if self.gossip != enabled {
                    info!(enabled, "P2P gossip switched");
                }
                self.gossip = enabled;
                let _ = done.send(());
            }
            Command::SetBlocked(blocked, done) => {
                self.set_blocked(blocked);
                let _ = done.send(());
            }
            Command::Peers(reply) => {
                let _ = reply.send(self.peer_infos());
            }
            #[cfg(test)]
            Command::Denied(reply) => {
                let _ = reply.send(self.swarm.behaviour().gate.denied);
            }
            #[cfg(test)]
            Command::Score(peer, reply) => {
                let _ = reply.send(self.swarm.behaviour().gossipsub.peer_score(&peer));
            }
            Command::Request {
                peer,
                request,
                reply,
            } => {
                if self.blocked {
                    let _ = reply.send(Err(TransportError {
                        kind: "p2p_blocked".into(),
                        message: "P2P is blocked on this node".into(),
                    }));
                    return;
                }
                let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
                self.pending.insert(id, reply);
            }
            Command::Admission(request) => self.handle_admission(request),
        }
    }

    fn set_blocked(&mut self, blocked: bool) {
        if self.blocked == blocked {
            return;
        }
        self.blocked = blocked;
        self.swarm.behaviour_mut().gate.blocked = blocked;
        if blocked {
            info!("P2P blocked: closing every connection and refusing new ones");
            let connected: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
            for peer in connected {
                let _ = self.swarm.disconnect_peer_id(peer);
            }
            self.redial.pause();
        } else {
            info!("P2P unblocked: redialing bootstrap peers");
            self.redial.resume(self.steady_ms());
        }
    }

    /// Dials every known peer (bootstrap or former sync peer) whose time has come and
    /// that is not connected.
    fn redial_due(&mut self) {
        for (peer, addrs) in self.redial.take_due(self.steady_ms()) {
            if self.swarm.is_connected(&peer) {
                continue;
            }
            let opts = DialOpts::peer_id(peer)
                .addresses(addrs.clone())
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            match self.swarm.dial(opts) {
                Ok(()) => debug!(%peer, ?addrs, "dialing peer"),
                Err(libp2p::swarm::DialError::DialPeerConditionFalse(_)) => {}
                Err(e) => {
                    debug!(%peer, error = %e, "cannot dial peer");
                    self.schedule_redial(&peer);
                }
            }
        }
    }

    /// After a lost connection or a failed dial: try again later, backing off.
    fn schedule_redial(&mut self, peer: &PeerId) {
        if self.swarm.is_connected(peer) {
            return;
        }
        if let Some(after) = self.redial.failed(peer, self.steady_ms()) {
            debug!(%peer, ?after, "peer will be redialed");
        }
    }

    fn handle_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        if let Some(m) = &self.metrics {
            use libp2p::metrics::Recorder as _;
            m.record(&event);
            if let SwarmEvent::Behaviour(b) = &event {
                match b {
                    BehaviourEvent::Gossipsub(e) => m.record(e),
                    BehaviourEvent::Identify(e) => m.record(e),
                    BehaviourEvent::Ping(e) => m.record(e),
                    BehaviourEvent::Nat(super::nat::NatEvent::Dcutr(e)) => m.record(e),
                    _ => {}
                }
            }
        }
        match event {
            SwarmEvent::Behaviour(event) => self.handle_behaviour(event),
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } => {
                info!(%address, peer = %self.node_id, "P2P listening");
                self.listen_addrs.push(address);
                self.listener_bound(listener_id);
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen_addrs.retain(|a| *a != address);
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } => {
                self.relay_listener_closed(listener_id, reason.err());
                self.listener_bound(listener_id);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => self.connected(peer_id, connection_id, &endpoint),
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established: 1..,
                ..
            } => self.link_closed(peer_id, connection_id),
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                cause,
                ..
            } => {
                self.peers.remove(&peer_id);
                self.alive.gone(&peer_id);
                self.rate.forget(&peer_id);
                info!(peer = %peer_id, cause = ?cause.map(|c| c.to_string()), "peer disconnected");
                self.refresh_sync(peer_id);
                self.emit(P2pEvent::PeersChanged);
                self.schedule_redial(&peer_id);
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                debug!(peer = ?peer_id, error = %error, "dial failed");
                if let Some(peer) = peer_id {
                    self.schedule_redial(&peer);
                }
            }
            SwarmEvent::IncomingConnectionError { error, .. } => {
                debug!(error = %error, "inbound connection failed or was refused");
            }
            _ => {}
        }
    }

    /// A listener reported its address (or closed): answer `listen_addrs` once every
    /// listener has.
    fn listener_bound(&mut self, listener: libp2p::core::transport::ListenerId) {
        self.unbound.remove(&listener);
        if self.unbound.is_empty() {
            for waiter in self.addr_waiters.drain(..) {
                let _ = waiter.send(self.listen_addrs.clone());
            }
        }
    }

    fn connected(&mut self, peer: PeerId, connection: ConnectionId, endpoint: &ConnectedPoint) {
        if self.blocked {
            // The gate refuses new connections; this closes one that raced it.
            let _ = self.swarm.disconnect_peer_id(peer);
            return;
        }
        self.redial.connected(&peer);
        let address = endpoint.get_remote_address().clone();
        let dialed = endpoint.is_dialer();
        // An inbound circuit's remote address is only `/p2p/<id>`: the local side (our
        // listener on the relay) is what says it is relayed.
        let relayed = endpoint.is_relayed();
        self.heard(&peer);
        if let Some(p) = self.peers.get_mut(&peer) {
            let was_direct = p.direct();
            p.add_link(connection, address, dialed, relayed);
            if !was_direct && p.direct() {
                info!(%peer, "peer connected directly (it was relayed)");
                self.probe_if_due(peer);
                self.emit(P2pEvent::PeersChanged);
            }
            return;
        }
        info!(%peer, %address, "peer connected");
        let mut state = PeerState::new(address.clone(), dialed);
        state.add_link(connection, address, dialed, relayed);
        self.peers.insert(peer, state);
        self.alive.connected(peer, self.steady_ms());
        self.emit(P2pEvent::PeersChanged);
        self.apply_standing(peer);
    }

    /// One of several connections to `peer` closed: it may have been the direct one.
    fn link_closed(&mut self, peer: PeerId, connection: ConnectionId) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let was_direct = p.direct();
        p.remove_link(connection);
        if was_direct != p.direct() {
            info!(%peer, "the direct connection closed; the peer is only relayed now");
            self.refresh_sync(peer);
            self.emit(P2pEvent::PeersChanged);
        }
    }

    /// Re-derives whether `peer` is sync-capable and reports any change.
    fn refresh_sync(&mut self, peer: PeerId) {
        let capable =
            self.peers.get(&peer).is_some_and(PeerState::sync_capable) && self.admits(&peer);
        let changed = if capable {
            self.sync_peers.insert(peer)
        } else {
            self.sync_peers.remove(&peer)
        };
        if changed {
            self.emit(P2pEvent::SyncPeers {
                count: self.sync_peers.len(),
            });
            if capable {
                info!(%peer, "peer is sync-capable");
                if let Some(p) = self.peers.get(&peer) {
                    self.redial.learn(peer, dialable(p.dialable()));
                }
                self.emit(P2pEvent::NewSyncPeer { peer });
            }
        }
    }

    fn handle_behaviour(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Gossipsub(event) => self.handle_gossip(event),
            BehaviourEvent::Sync(event) => self.handle_sync(event),
            BehaviourEvent::Genesis(request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            }) => {
                if request.ledger != self.ledger {
                    debug!(%peer, wanted = %request.ledger, "a peer asked for another ledger's genesis record; it gets ours");
                }
                let genesis = self.store.ledger().genesis().to_base64();
                let answer = super::genesis::GenesisAnswer { genesis };
                if self
                    .swarm
                    .behaviour_mut()
                    .genesis
                    .send_response(channel, answer)
                    .is_err()
                {
                    debug!(%peer, "the genesis asker left before the answer");
                }
            }
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                let ours = sync_protocol(&self.ledger);
                let speaks = info.protocols.iter().any(|p| p.as_ref() == ours);
                let other = info
                    .protocols
                    .iter()
                    .filter_map(|p| ledger_of_protocol(p.as_ref()))
                    .find(|l| *l != self.ledger)
                    .filter(|_| !speaks);
                self.heard(&peer_id);
                let Some(p) = self.peers.get_mut(&peer_id) else {
                    return;
                };
                let newly_other = other.filter(|_| p.other_ledger != other);
                p.other_ledger = other;
                p.speaks_sync = speaks;
                p.listen_addrs = info.listen_addrs;
                if !speaks {
                    p.answers_sync = false;
                }
                let capable = p.sync_capable();
                if capable {
                    let addrs = dialable(p.dialable());
                    self.redial.learn(peer_id, addrs);
                }
                if let Some(theirs) = newly_other {
                    // Once per peer and ledger: the refusal stands while it is connected.
                    warn!(
                        "[P2P] peer {peer_id} holds ledger {theirs}, this node ledger {}: refused (other_ledger); it is never a sync peer",
                        self.ledger
                    );
                    self.emit(P2pEvent::PeersChanged);
                }
                self.probe_if_due(peer_id);
                self.refresh_sync(peer_id);
            }
            BehaviourEvent::Ping(ping::Event {
                peer,
                result: Ok(rtt),
                ..
            }) => {
                self.heard(&peer);
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.rtt = Some(rtt);
                    self.emit(P2pEvent::PeersChanged);
                }
            }
            BehaviourEvent::Ping(ping::Event {
                peer,
                result: Err(e),
                ..
            }) => {
                // Not a verdict by itself: silence past the peer timeout is.
                debug!(%peer, error = %e, "ping failed");
            }
            BehaviourEvent::Nat(event) => self.handle_nat(event),
            BehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                if self.blocked {
                    return;
                }
                for (peer, addr) in found {
                    if !self.swarm.is_connected(&peer) {
                        debug!(%peer, %addr, "mDNS found a peer");
                        let opts = DialOpts::peer_id(peer)
                            .addresses(vec![addr])
                            .condition(PeerCondition::DisconnectedAndNotDialing)
                            .build();
                        let _ = self.swarm.dial(opts);
                    }
                }
            }
            _ => {}
        }
    }

    fn peer_infos(&self) -> Vec<PeerInfo> {
        let mesh: HashSet<&PeerId> = self
            .swarm
            .behaviour()
            .gossipsub
            .mesh_peers(&self.topic.hash())
            .collect();
        let mut infos: Vec<PeerInfo> = self
            .peers
            .iter()
            .map(|(id, p)| PeerInfo {
                peer_id: id.to_string(),
                address: p.address.as_ref().map(ToString::to_string),
                transport: p.transport().into(),
                path: if p.direct() { "direct" } else { "relayed" }.into(),
                rtt_ms: p.rtt.map(|d| d.as_secs_f64() * 1000.0),
                connected_since_ms: p.connected_since_ms,
                in_mesh: mesh.contains(id),
                sync_capable: self.sync_peers.contains(id),
                last_heard_ms: p.last_heard_ms,
                other_ledger: p.other_ledger.map(|l| l.to_hex()),
                admitted: self.admits(id),
                rate_dropped: self.rate.dropped(id),
            })
            .collect();
        infos.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
        infos
    }
}

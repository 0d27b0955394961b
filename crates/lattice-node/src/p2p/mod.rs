//! The P2P lung: a libp2p swarm (TCP + Noise + Yamux, and QUIC; relay client, hole punching,
//! AutoNAT and UPnP in `nat`) with identify, ping, gossipsub for
//! new entries and a request-response protocol for reconciliation.
//!
//! The swarm lives in one task (see [`swarm`]); [`P2pHandle`] is the cloneable way in,
//! and [`P2pEvent`]s are the way out. What to publish and when to reconcile is the
//! node's decision: this module only carries, verifies and answers.
//!
//! It also decides which peers count as sync peers: only those that answered a sync
//! request and have been heard (ping or any traffic) within the peer timeout. A silent
//! peer is disconnected, then redialed with a capped, jittered backoff (see `redial`).

pub mod admission;
mod behaviour;
pub mod genesis;
#[cfg(test)]
mod ledger_tests;
#[cfg(test)]
mod liveness_tests;
pub mod nat;
#[cfg(test)]
mod nat_tests;
pub mod protocol;
pub mod rate;
#[cfg(test)]
mod rate_tests;
mod redial;
pub mod relay;
mod remote;
mod swarm;
pub mod sync_codec;
#[cfg(test)]
mod sync_v2_tests;
#[cfg(test)]
pub(crate) mod test_relay;
#[cfg(test)]
mod tests;

use std::time::Duration;

pub use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

pub use self::nat::Reachability;
pub use self::protocol::{SyncRequest, SyncResponse};
pub use self::remote::P2pRemote;
pub use self::swarm::AdmissionView;
use self::swarm::Command;
use crate::identity::NodeKey;
use crate::ledger::{Entry, Store};
use crate::status::EntryFlow;

/// Commands queued to the swarm task before a sender waits.
const COMMAND_CAPACITY: usize = 256;
/// Events queued for the node. Events are never awaited by the swarm task (the node
/// calls the handle from its own loop, so waiting on it could deadlock); a node that
/// falls this far behind loses events and is told so in the log.
const EVENT_CAPACITY: usize = 1024;

#[derive(Clone, Debug)]
pub struct P2pConfig {
    pub key: NodeKey,
    pub listen: Vec<Multiaddr>,
    /// Each ends in `/p2p/<id>`; dialed at start and redialed with backoff when lost.
    pub bootstrap: Vec<Multiaddr>,
    /// If set, anyone else is refused.
    pub allow: Option<Vec<PeerId>>,
    pub mdns: bool,
    pub max_payload: usize,
    pub redial_min: Duration,
    pub redial_max: Duration,
    pub request_timeout: Duration,
    /// A peer silent (no ping answered, no traffic) for this long is disconnected and
    /// stops counting at once; see [`crate::config::Config::peer_timeout`].
    pub peer_timeout: Duration,
    /// How often each connection is pinged: at least once per heartbeat, and several
    /// times per peer timeout.
    pub ping_interval: Duration,
    /// A dial (TCP connect plus handshakes) not done by then has failed; libp2p's
    /// builder default is 10 s, which alone would delay recovery after a partition.
    pub dial_timeout: Duration,
    pub gossip_heartbeat: Duration,
    /// Private-network pre-shared key: wraps TCP before Noise.
    pub psk: Option<[u8; 32]>,
    /// Told to peers (by identify) instead of the listen addresses, when set: where the
    /// node is reachable from outside (a port forward, a relay).
    pub announce: Vec<Multiaddr>,
    /// Gossiped entries one peer may send (`LATTICE_PEER_RATE`); `None`: unlimited.
    pub peer_rate: Option<rate::PeerRate>,
    /// Public relays (`LATTICE_RELAYS`, each ending in `/p2p/<id>`): a slot is reserved on
    /// each and the `/p2p-circuit` address through it advertised, so peers behind other
    /// NATs reach us there and then upgrade to a direct connection by hole punching.
    pub relays: Vec<Multiaddr>,
    /// Ask the router for port mappings by UPnP (`LATTICE_UPNP`).
    pub upnp: bool,
    /// See [`nat::NatOptions::autonat_global_only`] (`LATTICE_AUTONAT_GLOBAL_ONLY`).
    pub autonat_global_only: bool,
    /// Offer only the JSON sync protocol, as nodes older than the binary one do (tests
    /// of the negotiation with such nodes; no variable sets it).
    pub sync_json_only: bool,
}

impl P2pConfig {
    pub(crate) fn nat_options(&self) -> nat::NatOptions {
        nat::NatOptions {
            relays: self.relays.clone(),
            upnp: self.upnp,
            autonat_global_only: self.autonat_global_only,
            autonat_boot: self.ping_interval * 2,
            autonat_retry: self.peer_timeout * 2,
            request_timeout: self.request_timeout,
        }
    }
}

/// An error and its causes in one line ("a: b: c"), empty parts left out: some libp2p
/// errors say nothing themselves and keep the reason in their source.
pub(crate) fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    if parts.is_empty() {
        format!("{e:?}")
    } else {
        parts.join(": ")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum P2pError {
    #[error("bootstrap address {0} does not end in /p2p/<peer id>")]
    BootstrapWithoutPeerId(Multiaddr),
    #[error("cannot listen on {addr}: {message}")]
    Listen { addr: Multiaddr, message: String },
    #[error("cannot build the P2P swarm: {0}")]
    Build(String),
    #[error("relay address {0} does not end in /p2p/<relay peer id>")]
    RelayWithoutPeerId(Multiaddr),
    #[error("{0}")]
    Admission(String),
}

impl P2pError {
    pub fn kind(&self) -> &'static str {
        match self {
            P2pError::BootstrapWithoutPeerId(_) => "bad_bootstrap",
            P2pError::Listen { .. } => "p2p_listen",
            P2pError::Build(_) => "p2p_build",
            P2pError::RelayWithoutPeerId(_) => "bad_relay",
            P2pError::Admission(_) => "admission",
        }
    }
}

/// One connected peer, as status shows it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PeerInfo {
    pub peer_id: String,
    pub address: Option<String>,
    /// `tcp` or `quic`: of the direct connection when there is one, else of the
    /// connection to the relay the circuit runs through.
    pub transport: String,
    /// `direct`, or `relayed` while the only connection runs through a relay's circuit
    /// (which never counts as a sync peer: it is for finding a direct path).
    pub path: String,
    pub rtt_ms: Option<f64>,
    /// Unix time in milliseconds.
    pub connected_since_ms: u64,
    pub in_mesh: bool,
    /// Counts as a sync peer now: it answered a sync request on this connection (a
    /// gossip subscription is not enough) and has been heard within the peer timeout
    /// (a silent peer is disconnected and leaves this list at once).
    pub sync_capable: bool,
    /// Unix milliseconds of the last proof of life: a ping answered, or any traffic.
    pub last_heard_ms: u64,
    /// The ledger this peer holds, when it is not ours: it is refused (never a sync
    /// peer, no gossip) and shown so a person sees two deployments met.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_ledger: Option<String>,
    /// False while it waits for a person's decision (see `admission`): it is neither
    /// synced with nor counted, and gets no gossip.
    pub admitted: bool,
    /// Its gossiped entries dropped over `LATTICE_PEER_RATE` on this connection.
    pub rate_dropped: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum P2pEvent {
    /// The number of sync-capable peers changed.
    SyncPeers { count: usize },
    /// A peer just became sync-capable: the node should reconcile with it.
    NewSyncPeer { peer: PeerId },
    /// Something worth re-rendering changed (connect, disconnect, rtt, mesh).
    PeersChanged,
    /// A forged or invalid entry arrived by gossip; its sender was penalised.
    GossipRejected {
        peer: PeerId,
        /// The refusal's kind: an entry error's (`bad_signature`, ...) or
        /// `unauthorized_author`.
        kind: &'static str,
        reason: String,
    },
    /// Entries the P2P lung carried outside our own reconciliations, for its counts:
    /// received, new ones that arrived by gossip or a peer's push; sent, one per entry
    /// handed to gossip and each entry a peer's reconciliation fetched from us.
    Carried(EntryFlow),
    /// A relayed peer is now connected directly, by hole punching (DCUtR).
    HolePunched { peer: PeerId },
    /// AutoNAT changed its mind about whether this node is publicly reachable.
    Reachability(Reachability),
}

/// The way into the swarm task. Cheap to clone; every method is one command.
#[derive(Clone)]
pub struct P2pHandle {
    commands: mpsc::Sender<Command>,
    peer_id: PeerId,
    gossip_checks: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// Starts the swarm in its own task, listening and dialing the bootstrap peers. It
/// stops when `cancel` fires or every handle (and remote) is dropped. The node starts
/// its swarm with [`spawn_with_metrics`]; this is the tests' way, without a registry.
#[cfg(test)]
pub(crate) fn spawn(
    config: P2pConfig,
    store: Store,
    cancel: CancellationToken,
) -> Result<(P2pHandle, mpsc::Receiver<P2pEvent>), P2pError> {
    start(config, store, cancel, None)
}

/// Starts the swarm (see `spawn`), registering libp2p's own metrics (connections, gossipsub,
/// identify, ping) in `registry`. libp2p-metrics adds its own `libp2p` prefix, so
/// `registry` is passed as is: the names read `libp2p_swarm_...`, not `libp2p_libp2p_...`.
pub fn spawn_with_metrics(
    config: P2pConfig,
    store: Store,
    cancel: CancellationToken,
    registry: &mut prometheus_client::registry::Registry,
) -> Result<(P2pHandle, mpsc::Receiver<P2pEvent>), P2pError> {
    let metrics = libp2p::metrics::Metrics::new(registry);
    start(config, store, cancel, Some(metrics))
}

fn start(
    config: P2pConfig,
    store: Store,
    cancel: CancellationToken,
    metrics: Option<libp2p::metrics::Metrics>,
) -> Result<(P2pHandle, mpsc::Receiver<P2pEvent>), P2pError> {
    let (commands_tx, commands_rx) = mpsc::channel(COMMAND_CAPACITY);
    let (events_tx, events_rx) = mpsc::channel(EVENT_CAPACITY);
    let peer_id = config.key.peer_id();
    let event_loop = swarm::EventLoop::new(config, store, cancel, commands_rx, events_tx, metrics)?;
    let gossip_checks = event_loop.gossip_checks();
    tokio::spawn(event_loop.run());
    Ok((
        P2pHandle {
            commands: commands_tx,
            peer_id,
            gossip_checks,
        },
        events_rx,
    ))
}

impl P2pHandle {
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Gossiped entries whose signature was checked so far: once per new entry, never
    /// for a copy of one already held.
    pub fn gossip_signature_checks(&self) -> u64 {
        self.gossip_checks
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).await.ok()?;
        rx.await.ok()
    }

    /// The addresses actually bound (after listening on port 0), once known.
    pub async fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.ask(Command::ListenAddrs).await.unwrap_or_default()
    }

    /// Gossips `entry`. With no peer to send to this is not an error and loses nothing:
    /// reconciliation covers it.
    pub async fn publish(&self, entry: &Entry) {
        let _ = self
            .commands
            .send(Command::Publish(entry.to_json().into_bytes()))
            .await;
    }

    /// Publishes arbitrary bytes on the entry topic, to prove forgeries are refused.
    #[cfg(test)]
    pub(crate) async fn publish_raw(&self, data: Vec<u8>) {
        let _ = self.commands.send(Command::Publish(data)).await;
    }

    /// `false` is forced HTTP mode: neither publish nor accept gossip. Sync requests are
    /// still answered; initiating reconciliation is the node's choice.
    pub async fn set_gossip(&self, enabled: bool) {
        self.ask(|done| Command::SetGossip(enabled, done)).await;
    }

    /// `true` closes every connection now and refuses new ones, inbound and outbound,
    /// until `false`, which redials the bootstrap peers and former sync peers at once.
    pub async fn set_blocked(&self, blocked: bool) {
        self.ask(|done| Command::SetBlocked(blocked, done)).await;
    }

    /// Resolves once the swarm task has ended (its sockets closed with it).
    pub async fn closed(&self) {
        self.commands.closed().await
    }

    pub async fn peers(&self) -> Vec<PeerInfo> {
        self.ask(Command::Peers).await.unwrap_or_default()
    }

    /// Connections the gate refused while blocked.
    #[cfg(test)]
    pub(crate) async fn denied_connections(&self) -> u64 {
        self.ask(Command::Denied).await.unwrap_or_default()
    }

    /// Our gossipsub score of `peer`.
    #[cfg(test)]
    pub(crate) async fn gossip_score(&self, peer: PeerId) -> Option<f64> {
        self.ask(|reply| Command::Score(peer, reply))
            .await
            .flatten()
    }

    /// Accepts (`true`) or ignores `peer`; the decision is kept in the data directory.
    pub async fn decide_admission(&self, peer: PeerId, accept: bool) -> Result<(), P2pError> {
        self.ask(|reply| {
            Command::Admission(swarm::AdmitRequest::Decide {
                peer,
                accept,
                reply,
            })
        })
        .await
        .unwrap_or_else(|| Err("the P2P task has stopped".into()))
        .map_err(P2pError::Admission)
    }

    /// The admission decisions kept (pending peers are in [`Self::peers`]).
    pub async fn admission(&self) -> AdmissionView {
        self.ask(|reply| Command::Admission(swarm::AdmitRequest::View(reply)))
            .await
            .unwrap_or_default()
    }

    /// Reconciliation with `peer` over the sync protocol.
    pub fn remote(&self, peer: PeerId) -> P2pRemote {
        P2pRemote::new(self.commands.clone(), peer)
    }
}

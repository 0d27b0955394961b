//! The node: one actor task owns the lungs state machine, the HTTP poller and the
//! neighbours' state; a cloneable [`NodeHandle`] is how every face talks to it.
//!
//! Data flows one way: a face calls the handle, the actor changes state, a new
//! [`Status`] goes out on a watch channel and discrete happenings on a broadcast
//! channel. The store is shared (it is thread-safe and owns the Merkle tree): whoever
//! appends, the store announces the commit and the actor republishes.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Mode};
use crate::http::client::{ClientError, ClientLimits, NeighborClient};
use crate::identity::NodeKey;
use crate::ledger::{
    Appended, Entry, EntryError, GenesisError, Ledger, LedgerId, Store, StoreError, StoreOptions,
};
use crate::metrics::{Metrics, TransitionLabels};
use crate::p2p::{P2pError, P2pEvent, P2pHandle};
use crate::status::{
    EntriesByLung, EventKind, LedgerInfo, Lung, NeighborHealth, NodeEvent, NodeInfo, OPERATOR,
    OperatorAction, Status, SyncSummary,
};
use crate::sync::lungs::{LungEvent, Lungs};
use crate::sync::states::{self, Situation};

mod genesis;
mod http_lung;
mod p2p_lung;
mod transitions;
use genesis::{announce_ledger, resolve_genesis};
use http_lung::{Neighbor, SyncDone, sleep_until_due};
use p2p_lung::P2pSyncDone;

/// Commands waiting for the actor.
const COMMAND_QUEUE: usize = 256;
/// Node events buffered for slow subscribers (they then skip ahead).
const EVENT_BUFFER: usize = 1024;
/// At most this many entry events per commit; the rest show in the count.
const ENTRY_EVENTS_PER_COMMIT: usize = 32;

/// Knobs that are not user configuration: tests shorten them.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    pub client_limits: ClientLimits,
    /// A neighbour's event stream silent for this long is reconnected.
    pub events_idle: Duration,
    /// Backoff bounds for redialing lost peers. The cap actually used is at most two
    /// peer timeouts, so a node is back on P2P soon after a partition heals.
    pub p2p_redial_min: Duration,
    pub p2p_redial_max: Duration,
    /// Longest a P2P dial (connect and handshakes) may take; the one used is at most the
    /// peer timeout (a peer that cannot finish a handshake in that time does not answer)
    /// but never under a second.
    pub p2p_dial_timeout: Duration,
    pub p2p_request_timeout: Duration,
    pub gossip_heartbeat: Duration,
    /// How often the node reconciles with every sync peer even when gossip seems fine.
    pub p2p_reconcile_every: Duration,
    /// P2P addresses to tell peers instead of the listen addresses (behind a port
    /// forward or a relay); tests route every P2P path through a faulting relay with it.
    pub p2p_announce: Vec<crate::p2p::Multiaddr>,
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self {
            client_limits: ClientLimits::default(),
            events_idle: Duration::from_secs(45),
            p2p_redial_min: Duration::from_secs(1),
            p2p_redial_max: Duration::from_secs(30),
            p2p_dial_timeout: Duration::from_secs(10),
            p2p_request_timeout: Duration::from_secs(30),
            gossip_heartbeat: Duration::from_secs(1),
            p2p_reconcile_every: Duration::from_secs(30),
            p2p_announce: Vec::new(),
        }
    }
}

impl NodeOptions {
    /// Millisecond-scale P2P timers for tests and demonstrations.
    pub fn fast() -> Self {
        Self {
            p2p_redial_min: Duration::from_millis(100),
            p2p_redial_max: Duration::from_millis(1000),
            p2p_dial_timeout: Duration::from_secs(2),
            p2p_request_timeout: Duration::from_secs(5),
            gossip_heartbeat: Duration::from_millis(100),
            p2p_reconcile_every: Duration::from_secs(3),
            ..Self::default()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Entry(#[from] EntryError),
    #[error("neighbour {url}: {source}")]
    Neighbor { url: String, source: ClientError },
    #[error("{0}")]
    P2p(#[from] P2pError),
    #[error("the node is shutting down")]
    ShuttingDown,
    #[error("{0}")]
    Genesis(#[from] GenesisError),
    #[error(
        "LATTICE_LEDGER is {ledger} but this node has no genesis record for it: set LATTICE_GENESIS (as `lattice init` wrote it), or name in LATTICE_HTTP_NEIGHBORS a node of that ledger ({tried})"
    )]
    NoGenesis { ledger: LedgerId, tried: String },
    #[error(
        "this node's key {peer} is not an author of ledger {name:?} ({ledger}), so it cannot write; its genesis record names who may"
    )]
    NotAnAuthor {
        peer: String,
        name: String,
        ledger: LedgerId,
    },
}

impl NodeError {
    pub fn kind(&self) -> &'static str {
        match self {
            NodeError::Store(e) => e.kind(),
            NodeError::Entry(e) => e.kind(),
            NodeError::Neighbor { .. } => "neighbor",
            NodeError::P2p(e) => e.kind(),
            NodeError::ShuttingDown => "shutting_down",
            NodeError::Genesis(e) => e.kind(),
            NodeError::NoGenesis { .. } => "no_genesis",
            NodeError::NotAnAuthor { .. } => crate::ledger::UnauthorizedAuthor::KIND,
        }
    }
}

pub use crate::time::now_ms;

/// Unix milliseconds that never jump: the wall clock at start plus monotonic time since.
/// The heartbeat runs on it, so a clock step cannot fire or delay the fallback.
#[derive(Clone, Copy, Debug)]
struct SteadyClock {
    wall_at_start: u64,
    start: std::time::Instant,
}

impl SteadyClock {
    fn new() -> Self {
        Self {
            wall_at_start: now_ms(),
            start: std::time::Instant::now(),
        }
    }
    fn now_ms(&self) -> u64 {
        self.wall_at_start + self.start.elapsed().as_millis() as u64
    }
}

enum Command {
    SwitchMode {
        mode: Mode,
        reply: oneshot::Sender<Status>,
    },
    /// A neighbour's event-stream follower reporting (see `http_lung::FollowerReport`).
    Follower {
        index: usize,
        report: http_lung::FollowerReport,
    },
    SetP2pBlocked {
        blocked: bool,
        reply: oneshot::Sender<Status>,
    },
    /// A neighbour pushed entries to our API (its reconciliation): new to us, carried by
    /// the HTTP lung.
    PushedIn { new: u64 },
}

struct Shared {
    config: Config,
    key: NodeKey,
    peer_id: String,
    store: Store,
    p2p: P2pHandle,
    commands: mpsc::Sender<Command>,
    status: watch::Receiver<Status>,
    events: broadcast::Sender<NodeEvent>,
    registry: Registry,
    cancel: CancellationToken,
    actor: Mutex<Option<JoinHandle<()>>>,
}

/// How every face talks to the node. Cheap to clone.
#[derive(Clone)]
pub struct NodeHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for NodeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeHandle")
            .field("peer_id", &self.shared.peer_id)
            .finish_non_exhaustive()
    }
}

impl NodeHandle {
    /// Opens the store and starts the actor. The HTTP API is served separately
    /// (`http::server::serve`), so embedders choose whether and where.
    pub async fn start(config: Config, options: NodeOptions) -> Result<NodeHandle, NodeError> {
        let key = match &config.key {
            Some(k) => k.clone(),
            None => {
                let k = NodeKey::generate()
                    .map_err(|e| NodeError::Store(StoreError::WriterFailed(e.to_string())))?;
                tracing::warn!(
                    "LATTICE_P2P_KEY is not set: using a temporary identity {} for this run; run `lattice keygen` to keep one",
                    k.peer_id()
                );
                k
            }
        };
        let genesis = resolve_genesis(&config, options.client_limits).await?;
        let ledger = Arc::new(Ledger::new(genesis));
        let can_write = ledger.genesis().is_author(&key.public_bytes());
        announce_ledger(&ledger, &key, can_write);
        let store_options = StoreOptions {
            max_payload: config.max_payload,
            ledger,
            ..StoreOptions::default()
        };
        let dir = config.data_dir.clone();
        let store = tokio::task::spawn_blocking(move || Store::open(&dir, store_options))
            .await
            .map_err(|_| NodeError::ShuttingDown)??;

        let cancel = CancellationToken::new();
        let p2p_config = p2p_lung::p2p_config(&config, &options, key.clone());
        let metrics = Metrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let (p2p, p2p_events) = crate::p2p::spawn_with_metrics(
            p2p_config,
            store.clone(),
            cancel.child_token(),
            &mut registry,
        )?;

        metrics.entries.set(store.len() as i64);

        let peer_id = key.peer_id().to_string();
        let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE);
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let now = now_ms();
        let info = NodeInfo {
            peer_id: peer_id.clone(),
            name: config.node_name.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            http_listen: config.http_listen.to_string(),
            started_at_ms: now,
        };
        // Answers are size-bounded by the sender, but one entry may be as large as the
        // payload cap: make room for it.
        let mut limits = options.client_limits;
        limits.max_body = limits.max_body.max(2 * config.max_payload + 64 * 1024);
        limits.max_event = limits.max_event.max(2 * config.max_payload + 64 * 1024);
        let neighbors = config
            .http_neighbors
            .iter()
            .map(|url| {
                let make = || {
                    NeighborClient::new(url.clone(), config.api_token.clone(), limits).map_err(
                        |source| NodeError::Neighbor {
                            url: url.to_string(),
                            source,
                        },
                    )
                };
                // The event stream gets its own client so its bytes do not count as sync.
                Ok(Neighbor::new(make()?, make()?))
            })
            .collect::<Result<Vec<_>, NodeError>>()?;

        let mut actor = Actor {
            lungs: Lungs::new(config.mode, config.fallback_after),
            config: config.clone(),
            options,
            store: store.clone(),
            events: events.clone(),
            metrics,
            neighbors,
            info,
            http_lung: None,
            last_sync: None,
            commands: commands.downgrade(),
            status_tx: None,
            clock: SteadyClock::new(),
            reported_store_failure: false,
            p2p: p2p_lung::P2pLung::new(p2p.clone()),
            seq: 1,
            entries_by_lung: EntriesByLung::default(),
            own_key: key.public_bytes(),
            transitions: transitions::Transitions::default(),
        };
        actor.register_neighbor_metrics();
        for e in actor.lungs.start(actor.clock.now_ms()) {
            actor.lung_event(e);
        }
        let (status_tx, status) = watch::channel(actor.snapshot());
        actor.status_tx = Some(status_tx);

        let shared = Arc::new(Shared {
            config,
            key,
            peer_id,
            store,
            p2p,
            commands,
            status,
            events,
            registry,
            cancel: cancel.clone(),
            actor: Mutex::new(None),
        });
        let task = tokio::spawn(actor.run(command_rx, p2p_events, cancel));
        *shared.actor.lock().expect("not poisoned") = Some(task);
        Ok(NodeHandle { shared })
    }

    pub fn peer_id(&self) -> &str {
        &self.shared.peer_id
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// The latest status snapshot.
    pub fn status(&self) -> Status {
        self.shared.status.borrow().clone()
    }

    pub fn subscribe_status(&self) -> watch::Receiver<Status> {
        self.shared.status.clone()
    }

    pub fn subscribe_events(&self) -> broadcast::Receiver<NodeEvent> {
        self.shared.events.subscribe()
    }

    pub fn registry(&self) -> &Registry {
        &self.shared.registry
    }

    /// Signs `payload` with the node key and appends it; returns once committed.
    pub async fn put(&self, payload: &serde_json::Value) -> Result<Appended, NodeError> {
        let ledger = self.shared.store.ledger();
        if !ledger.is_member(&self.shared.key.public_bytes()) {
            return Err(NodeError::NotAnAuthor {
                peer: self.shared.peer_id.clone(),
                name: ledger.genesis().name().to_string(),
                ledger: ledger.id(),
            });
        }
        let entry = Entry::sign(
            &self.shared.key,
            now_ms(),
            payload,
            self.shared.config.max_payload,
        )?;
        let appended = self.shared.store.append(entry.clone()).await?;
        if appended.inserted {
            // Gossip is the fast path; reconciliation catches whatever it misses.
            self.shared.p2p.publish(&entry).await;
        }
        Ok(appended)
    }

    /// Accepts (`true`) or ignores a P2P peer (see `p2p::admission`); kept in the data
    /// directory. Returns the status right after, so faces render the new standing.
    pub async fn decide_peer(
        &self,
        peer: crate::p2p::PeerId,
        accept: bool,
    ) -> Result<crate::p2p::AdmissionView, NodeError> {
        self.shared.p2p.decide_admission(peer, accept).await?;
        Ok(self.shared.p2p.admission().await)
    }

    /// The admission decisions kept (pending peers are in the status's peer list).
    pub async fn admission(&self) -> crate::p2p::AdmissionView {
        self.shared.p2p.admission().await
    }

    /// Cuts P2P for real (every connection closed, new ones refused) or restores it.
    pub async fn set_p2p_blocked(&self, blocked: bool) -> Result<Status, NodeError> {
        let (reply, rx) = oneshot::channel();
        self.shared
            .commands
            .send(Command::SetP2pBlocked { blocked, reply })
            .await
            .map_err(|_| NodeError::ShuttingDown)?;
        rx.await.map_err(|_| NodeError::ShuttingDown)
    }

    /// The P2P addresses this node listens on (with its PeerId), once bound.
    pub async fn p2p_addrs(&self) -> Vec<String> {
        let peer = self.shared.p2p.peer_id();
        self.shared
            .p2p
            .listen_addrs()
            .await
            .into_iter()
            .map(|a| format!("{a}/p2p/{peer}"))
            .collect()
    }

    /// Appends entries that were already verified (e.g. pushed by a neighbour).
    pub async fn ingest(&self, entries: Vec<Entry>) -> Result<Vec<Appended>, NodeError> {
        Ok(self.shared.store.append_batch(entries).await?)
    }

    /// Appends entries a neighbour pushed to our API, and counts the new ones as received
    /// over HTTP (the pusher counts them as sent), so the receiving face sees the flow too.
    pub async fn ingest_pushed(&self, entries: Vec<Entry>) -> Result<Vec<Appended>, NodeError> {
        let appended = self.ingest(entries).await?;
        let new = appended.iter().filter(|a| a.inserted).count() as u64;
        if new > 0 {
            let _ = self.shared.commands.send(Command::PushedIn { new }).await;
        }
        Ok(appended)
    }

    /// Switches the sync mode; returns the status right after.
    pub async fn switch_mode(&self, mode: Mode) -> Result<Status, NodeError> {
        let (reply, rx) = oneshot::channel();
        self.shared
            .commands
            .send(Command::SwitchMode { mode, reply })
            .await
            .map_err(|_| NodeError::ShuttingDown)?;
        rx.await.map_err(|_| NodeError::ShuttingDown)
    }

    /// Stops the actor and the lungs, lets in-flight commits finish and closes the store.
    pub async fn shutdown(&self) {
        self.shared.cancel.cancel();
        let task = self.shared.actor.lock().expect("not poisoned").take();
        if let Some(task) = task {
            let _ = task.await;
        }
        let store = self.shared.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.close()).await;
    }

    /// Whether shutdown has begun (servers use it to stop).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shared.cancel.clone()
    }
}

struct Actor {
    config: Config,
    options: NodeOptions,
    store: Store,
    lungs: Lungs,
    events: broadcast::Sender<NodeEvent>,
    metrics: Metrics,
    neighbors: Vec<Neighbor>,
    info: NodeInfo,
    /// Present while the HTTP lung breathes; cancels its event-stream followers.
    http_lung: Option<CancellationToken>,
    last_sync: Option<SyncSummary>,
    commands: mpsc::WeakSender<Command>,
    status_tx: Option<watch::Sender<Status>>,
    clock: SteadyClock,
    reported_store_failure: bool,
    /// The P2P lung's state as the node sees it.
    p2p: p2p_lung::P2pLung,
    /// The `seq` of the snapshot last published.
    seq: u64,
    entries_by_lung: EntriesByLung,
    /// Our own key: whether it may write follows the ledger's membership records.
    own_key: [u8; 32],
    transitions: transitions::Transitions,
}

impl Actor {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut p2p_events: mpsc::Receiver<P2pEvent>,
        cancel: CancellationToken,
    ) {
        let mut heartbeat = tokio::time::interval(self.config.heartbeat);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut committed = self.store.subscribe();
        let (done_tx, mut done_rx) = mpsc::channel::<SyncDone>(64);
        let (p2p_done_tx, mut p2p_done_rx) = mpsc::channel::<P2pSyncDone>(64);

        loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                Some(cmd) = commands.recv() => self.command(cmd).await,
                Some(event) = p2p_events.recv() => self.p2p_event(event, &p2p_done_tx).await,
                Some(done) = p2p_done_rx.recv() => self.p2p_sync_done(done),
                _ = heartbeat.tick() => {
                    let events = self.lungs.tick(self.clock.now_ms(), self.p2p.sync_peer_count());
                    for e in events {
                        self.lung_event(e);
                    }
                    self.p2p_heartbeat(&p2p_done_tx).await;
                }
                _ = sleep_until_due(self.next_poll()) => {}
                Some(done) = done_rx.recv() => self.sync_done(done),
                got = committed.recv() => match got {
                    Ok(entries) => self.committed(&entries),
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => break,
                },
            }
            self.steer_http_lung(&done_tx);
            self.steer_p2p_lung(&p2p_done_tx).await;
            self.publish();
        }
        if let Some(token) = self.http_lung.take() {
            token.cancel();
        }
        tracing::info!("node actor stopped");
    }

    async fn command(&mut self, cmd: Command) {
        match cmd {
            Command::SwitchMode { mode, reply } => {
                if mode != self.lungs.mode() {
                    self.operator(OperatorAction::ModeSet, Some(mode));
                }
                let events = self.lungs.set_mode(self.clock.now_ms(), mode);
                for e in events {
                    self.lung_event(e);
                }
                // Published before the reply, so the caller's next `status()` agrees.
                self.publish();
                let _ = reply.send(self.published());
            }
            Command::SetP2pBlocked { blocked, reply } => {
                if blocked != self.p2p.blocked {
                    let action = if blocked {
                        OperatorAction::P2pCut
                    } else {
                        OperatorAction::P2pRestored
                    };
                    self.operator(action, None);
                }
                self.set_p2p_blocked(blocked).await;
                self.publish();
                let _ = reply.send(self.published());
            }
            Command::Follower { index, report } => self.follower_report(index, report),
            Command::PushedIn { new } => self.entries_by_lung.http.received += new,
        }
    }

    fn emit(&self, what: EventKind) {
        let _ = self.events.send(NodeEvent {
            at_ms: now_ms(),
            what,
        });
    }

    /// Recorded before the change is applied, so the story reads cause, then effects.
    fn operator(&mut self, action: OperatorAction, mode: Option<Mode>) {
        // The heartbeat's clock, as the lung transitions it sits between.
        let at_ms = self.clock.now_ms();
        self.transitions.operator(at_ms, action, mode, OPERATOR);
        self.emit(EventKind::Operator {
            action,
            mode,
            by: OPERATOR.to_string(),
        });
    }

    fn lung_event(&mut self, event: LungEvent) {
        self.transitions.lung_event(self.clock.now_ms(), &event);
        for line in event.log_lines(self.config.fallback_after) {
            tracing::info!("{line}");
        }
        if let LungEvent::Transition(t) = &event {
            if t.to == Lung::P2p {
                // P2P restored: catch up at once on whatever was written meanwhile.
                self.p2p.round_due = true;
            }
            self.metrics
                .mode_transitions
                .get_or_create(&TransitionLabels {
                    to: t.to.to_string(),
                })
                .inc();
        }
        self.emit(EventKind::Lung { event });
    }

    fn committed(&mut self, entries: &[Entry]) {
        self.p2p.refresh_roots_soon();
        self.metrics.entries.set(self.store.len() as i64);
        self.metrics.root_changes.inc();
        for e in entries.iter().take(ENTRY_EVENTS_PER_COMMIT) {
            self.emit(EventKind::EntryAdded {
                id: e.id().to_hex(),
                author: e.author(),
            });
        }
    }

    fn snapshot(&self) -> Status {
        let lungs = self.lungs.snapshot();
        let root = hex::encode(self.store.root());
        let peers = self.p2p.peer_statuses(&root);
        // From the same list as `peers`, so the two never disagree; the lungs sample it
        // at each heartbeat.
        let peer_count = self.p2p.sync_peer_count();
        let neighbors = self
            .neighbors
            .iter()
            .map(|n| {
                let mut s = n.status.clone();
                s.root_matches = s.root.as_ref().map(|r| *r == root);
                s
            })
            .collect::<Vec<_>>();
        let derived = states::derive(&Situation {
            mode: lungs.mode,
            heartbeat_active: lungs.heartbeat_active,
            sync_lung: lungs.sync_lung,
            http_sync_enabled: lungs.http_sync_enabled,
            p2p_blocked: self.p2p.blocked,
            live_sync_peers: peer_count,
            countdown_running: lungs.fallback_deadline_ms.is_some(),
            fallback_active: lungs.fallback_active_since_ms.is_some(),
            neighbors: neighbors.len(),
            healthy_neighbors: neighbors
                .iter()
                .filter(|n| n.health == NeighborHealth::Healthy)
                .count(),
        });
        Status {
            peer_count,
            has_peers: peer_count > 0,
            http_sync_enabled: lungs.http_sync_enabled,
            sync_mode: lungs.sync_lung,
            heartbeat_active: lungs.heartbeat_active,
            mode: lungs.mode,
            peerless_since_ms: lungs.peerless_since_ms,
            fallback_deadline_ms: lungs.fallback_deadline_ms,
            fallback_active_since_ms: lungs.fallback_active_since_ms,
            fallback_after_ms: lungs.fallback_after_ms,
            heartbeat_ms: self.config.heartbeat.as_millis() as u64,
            http_poll_ms: self.config.http_poll.as_millis() as u64,
            last_transition: lungs.last_transition,
            merkle_root: root,
            entry_count: self.store.len(),
            node: self.info.clone(),
            ledger: self.ledger_info(),
            neighbors,
            last_sync: self.last_sync.clone(),
            peers,
            p2p_blocked: self.p2p.blocked,
            p2p_listen: self.p2p.listen.clone(),
            reachability: self.p2p.reachability,
            store_failure: self.store.write_failure(),
            now_ms: now_ms(),
            states: derived,
            entries_by_lung: self.entries_by_lung,
            seq: self.seq,
            transitions: self.transitions.to_vec(),
        }
    }

    fn ledger_info(&self) -> LedgerInfo {
        let ledger = self.store.ledger();
        let genesis = ledger.genesis();
        LedgerInfo {
            id: ledger.id().to_hex(),
            name: genesis.name().to_string(),
            open: genesis.is_open(),
            authors: ledger.member_count(),
            can_write: ledger.is_member(&self.own_key),
            refused: ledger.refused_count(),
        }
    }

    /// The snapshot last published (what `status()` returns now).
    fn published(&self) -> Status {
        match &self.status_tx {
            Some(tx) => tx.borrow().clone(),
            None => self.snapshot(),
        }
    }

    /// Sends a new snapshot, with the next `seq`, when anything but the clock changed.
    fn publish(&mut self) {
        if !self.reported_store_failure
            && let Some(reason) = self.store.write_failure()
        {
            self.reported_store_failure = true;
            self.emit(EventKind::StoreFailed { reason });
        }
        let Some(tx) = &self.status_tx else { return };
        let mut next = self.snapshot();
        let seq = &mut self.seq;
        tx.send_if_modified(|current| {
            next.now_ms = current.now_ms;
            next.seq = current.seq;
            if *current == next {
                return false;
            }
            *seq += 1;
            next.seq = *seq;
            next.now_ms = now_ms();
            *current = next;
            true
        });
    }
}

fn short(h: &[u8; 32]) -> String {
    hex::encode(&h[..6])
}

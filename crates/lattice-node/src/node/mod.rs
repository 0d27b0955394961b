//! The node: one actor task carries out what the sync schedule (`sync::schedule`, every
//! decision of when and with whom) asks, owns the neighbours' and peers' state, and
//! publishes status; a cloneable [`NodeHandle`] is how every face talks to it. The node
//! lives while a handle held outside it does: the last one dropped stops it, as
//! [`NodeHandle::shutdown`] does.
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
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Mode};
use crate::http::client::{ClientError, ClientLimits, NeighborClient};
use crate::identity::NodeKey;
use crate::ledger::{
    Appended, Entry, EntryError, GenesisError, Ledger, LedgerId, Store, StoreError, StoreOptions,
};
use crate::metrics::Metrics;
use crate::p2p::{P2pError, P2pEvent, P2pHandle};
use crate::status::{EntriesByLung, EntryFlow, NodeEvent, NodeInfo, Status, SyncSummary};
use crate::sync::schedule::{Schedule, Timers};
use crate::sync::states;

mod actor;
mod genesis;
mod http_lung;
mod ops;
mod p2p_lung;
mod snapshot;
mod synced;
#[cfg(test)]
mod tests;
mod transitions;
pub(crate) mod unsolicited;
use genesis::{announce_ledger, resolve_genesis};
use http_lung::{Neighbor, SyncDone};
use p2p_lung::P2pSyncDone;

/// Commands waiting for the actor.
const COMMAND_QUEUE: usize = 256;
/// Node events buffered for slow subscribers (they then skip ahead).
const EVENT_BUFFER: usize = 1024;
/// At most this many entry events per commit; the rest show in the count.
const ENTRY_EVENTS_PER_COMMIT: usize = 32;
/// Finished syncs waiting for the actor, per lung.
const DONE_QUEUE: usize = 64;
/// Inputs one happening may lead to (an action's report is fed back): a bound, far above
/// the few a step needs.
const INPUTS_PER_STEP: usize = 256;
/// Longest the actor waits for the swarm to close at shutdown.
const SWARM_CLOSE: Duration = Duration::from_secs(10);

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
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Entry(#[from] EntryError),
    #[error("neighbour {url}: {source}")]
    Neighbor { url: String, source: ClientError },
    #[error(transparent)]
    P2p(#[from] P2pError),
    #[error("the node is shutting down")]
    ShuttingDown,
    #[error(transparent)]
    Genesis(#[from] GenesisError),
    #[error(
        "LATTICE_LEDGER is {ledger} but this node has no genesis record for it: set LATTICE_GENESIS (as `lattice init` wrote it), or name in LATTICE_HTTP_NEIGHBORS or LATTICE_BOOTSTRAP a node of that ledger ({tried})"
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
    #[error(
        "{dropped} of {pushed} entries pushed by {from} were dropped over LATTICE_PEER_RATE ({rate}); the first {taken} were taken; push again in {}s or let reconciliation fetch them",
        retry_after.as_secs_f64().ceil() as u64
    )]
    RateLimited {
        from: String,
        pushed: usize,
        taken: usize,
        dropped: usize,
        rate: String,
        retry_after: Duration,
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
            NodeError::RateLimited { .. } => "rate_limited",
        }
    }
}

pub use crate::time::now_ms;
pub use ops::{
    Created, ENTRIES_DEFAULT, ENTRIES_MAX, EntriesPage, EntryWithProof, ErrorClass, OpError,
};

/// Unix milliseconds that never jump: the wall clock at start plus monotonic time since.
/// The schedule runs on it, so a clock step cannot fire or delay the fallback, and every
/// time in a status snapshot is on it, so a countdown and `now_ms` never disagree.
#[derive(Clone, Copy, Debug)]
struct SteadyClock {
    wall_at_start: u64,
    start: tokio::time::Instant,
}

impl SteadyClock {
    fn new(wall_now_ms: u64) -> Self {
        Self {
            wall_at_start: wall_now_ms,
            start: tokio::time::Instant::now(),
        }
    }
    fn now_ms(&self) -> u64 {
        self.wall_at_start + self.start.elapsed().as_millis() as u64
    }
    /// The instant this clock reads `at_ms` (now, if that has passed).
    fn instant(&self, at_ms: u64) -> tokio::time::Instant {
        self.start + Duration::from_millis(at_ms.saturating_sub(self.wall_at_start))
    }
}

#[cfg(test)]
thread_local! {
    /// How far the wall clock is to seem to step forward after a node starts (tests).
    static WALL_STEP_MS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The wall clock as the steady clock starts from it.
fn wall_at_start() -> u64 {
    #[cfg(test)]
    return now_ms().saturating_sub(WALL_STEP_MS.get());
    #[cfg(not(test))]
    now_ms()
}

enum Command {
    SwitchMode {
        mode: Mode,
        reply: oneshot::Sender<Status>,
    },
    /// A neighbour's event-stream follower reporting (see `http_lung::FollowerReport`).
    Follower {
        index: usize,
        epoch: u64,
        report: http_lung::FollowerReport,
    },
    SetP2pBlocked {
        blocked: bool,
        reply: oneshot::Sender<Status>,
    },
    /// A neighbour's reconciliation pushed entries to our API (received: the new ones) or
    /// fetched them from it (sent): carried by the HTTP lung.
    Carried(EntryFlow),
    /// Stop everything; the reply comes once the swarm and the store are closed.
    Shutdown { reply: oneshot::Sender<()> },
}

/// Held by every handle outside the node; when the last one drops, the actor hears it
/// and stops the node.
struct Life {
    _alive: oneshot::Sender<()>,
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
    /// Limits on entries pushed to our API (and followed event streams, in the actor).
    unsolicited: Arc<unsolicited::Unsolicited>,
    cancel: CancellationToken,
    actor: Mutex<Option<JoinHandle<()>>>,
}

/// How every face talks to the node. Cheap to clone. The node stops when the last
/// handle held outside it is dropped (the HTTP server's own does not count: see
/// [`NodeHandle::detached`]).
#[derive(Clone)]
pub struct NodeHandle {
    shared: Arc<Shared>,
    /// None in a [`NodeHandle::detached`] handle.
    _life: Option<Arc<Life>>,
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
    /// (`api::serve`), so embedders choose whether and where.
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
        let p2p_config = p2p_lung::p2p_config(&config, &options, key.clone());
        let genesis = resolve_genesis(&config, options.client_limits, &p2p_config).await?;
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
        let (life, life_rx) = oneshot::channel();
        let metrics = Metrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let unsolicited = Arc::new(unsolicited::Unsolicited::new(
            config.peer_rate,
            metrics.clone(),
        ));
        let (p2p, p2p_events) = crate::p2p::spawn_with_metrics(
            p2p_config,
            store.clone(),
            cancel.child_token(),
            &mut registry,
        )?;

        metrics.entries.set(store.len() as i64);
        registry.register_collector(Box::new(crate::metrics::StoreCollector(store.clone())));

        let peer_id = key.peer_id().to_string();
        let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE);
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let clock = SteadyClock::new(wall_at_start());
        let now = clock.now_ms();
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

        let timers = Timers {
            heartbeat: config.heartbeat,
            fallback_after: config.fallback_after,
            http_poll: config.http_poll,
            reconcile_every: options.p2p_reconcile_every,
        };
        let seed = getrandom::u64().unwrap_or(now);
        let schedule = Schedule::new(config.mode, timers, neighbors.len(), seed, now);
        let (done_tx, done_rx) = mpsc::channel(DONE_QUEUE);
        let (p2p_done_tx, p2p_done_rx) = mpsc::channel(DONE_QUEUE);
        let mut actor = Actor {
            schedule,
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
            clock,
            reported_store_failure: false,
            p2p: p2p_lung::P2pLung::new(p2p.clone()),
            seq: 1,
            entries_by_lung: EntriesByLung::default(),
            own_key: key.public_bytes(),
            transitions: transitions::Transitions::default(),
            done_tx,
            p2p_done_tx,
            unsolicited: unsolicited.clone(),
        };
        actor.register_neighbor_metrics();
        let start = actor.schedule.start(actor.clock.now_ms());
        actor.perform_all(start).await;
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
            unsolicited,
            cancel: cancel.clone(),
            actor: Mutex::new(None),
        });
        let channels = Channels {
            commands: command_rx,
            p2p_events,
            done: done_rx,
            p2p_done: p2p_done_rx,
            life: life_rx,
        };
        let task = tokio::spawn(actor.run(channels, cancel));
        *shared.actor.lock().expect("not poisoned") = Some(task);
        Ok(NodeHandle {
            shared,
            _life: Some(Arc::new(Life { _alive: life })),
        })
    }

    /// A handle that does not keep the node alive, for what belongs to the node itself
    /// (the HTTP server it serves): otherwise the server would keep the node running,
    /// and the node the server, after every outside handle is gone.
    pub fn detached(&self) -> NodeHandle {
        NodeHandle {
            shared: self.shared.clone(),
            _life: None,
        }
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

    /// A neighbour's reconciliation fetched `entries` entries from our API: the HTTP
    /// lung's "sent" (its side counts them received).
    pub async fn served(&self, entries: usize) {
        self.carried_by_http(EntryFlow {
            received: 0,
            sent: entries as u64,
        })
        .await;
    }

    async fn carried_by_http(&self, flow: EntryFlow) {
        if flow != EntryFlow::default() {
            let _ = self.shared.commands.send(Command::Carried(flow)).await;
        }
    }

    /// Appends entries a neighbour pushed to our API, and counts the new ones as received
    /// over HTTP (the pusher counts them as sent), so the receiving face sees the flow too.
    ///
    /// Nobody asked for them, so `from` (the caller's address) is held to
    /// `LATTICE_PEER_RATE`: over it, the first entries the bucket allows are stored and
    /// the rest dropped, and the answer is [`NodeError::RateLimited`].
    pub async fn ingest_pushed(
        &self,
        from: std::net::IpAddr,
        mut entries: Vec<Entry>,
    ) -> Result<Vec<Appended>, NodeError> {
        let pushed = entries.len();
        let allowance = self.shared.unsolicited.admit_push(from, pushed);
        entries.truncate(allowance.taken);
        let appended = match entries.is_empty() {
            true => Vec::new(),
            false => self.ingest(entries).await?,
        };
        let new = appended.iter().filter(|a| a.inserted).count() as u64;
        self.carried_by_http(EntryFlow {
            received: new,
            sent: 0,
        })
        .await;
        if allowance.dropped > 0 {
            return Err(NodeError::RateLimited {
                from: from.to_string(),
                pushed,
                taken: allowance.taken,
                dropped: allowance.dropped,
                rate: self.shared.unsolicited.describe(),
                retry_after: allowance.retry_after,
            });
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

    /// Stops the actor and the lungs, lets in-flight commits finish, and returns once the
    /// swarm and the store are closed (as dropping the last handle does, but waited for).
    pub async fn shutdown(&self) {
        let (reply, done) = oneshot::channel();
        if self
            .shared
            .commands
            .send(Command::Shutdown { reply })
            .await
            .is_ok()
        {
            let _ = done.await;
        }
        // Already stopping (the token cancelled) or stopped: wait for the actor's end,
        // which closes the same things.
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

/// What the actor listens to.
struct Channels {
    commands: mpsc::Receiver<Command>,
    p2p_events: mpsc::Receiver<P2pEvent>,
    done: mpsc::Receiver<SyncDone>,
    p2p_done: mpsc::Receiver<P2pSyncDone>,
    /// Resolves when the last outside handle is dropped.
    life: oneshot::Receiver<()>,
}

struct Actor {
    config: Config,
    options: NodeOptions,
    store: Store,
    /// Every decision of when and with whom: the actor carries out its actions.
    schedule: Schedule,
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
    done_tx: mpsc::Sender<SyncDone>,
    p2p_done_tx: mpsc::Sender<P2pSyncDone>,
    /// `LATTICE_PEER_RATE` for followed event streams (shared with the HTTP push).
    unsolicited: Arc<unsolicited::Unsolicited>,
}

fn short(h: &[u8; 32]) -> String {
    hex::encode(&h[..6])
}

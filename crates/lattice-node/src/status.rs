//! The one truth every face shows: a [`Status`] snapshot of the node, and the
//! [`NodeEvent`]s that explain how it got there.

use serde::{Deserialize, Serialize};

use crate::config::Mode;
use crate::sync::lungs::{LungEvent, Transition};
use crate::sync::reconcile::ReconcileReport;

pub use crate::sync::lungs::Lung;
pub use crate::sync::states::{FallbackPhase, HttpState, LungStates, P2pState, SyncState};

/// A snapshot of the node. The first five fields keep the names and types the earlier
/// version's clients read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub peer_count: usize,
    pub has_peers: bool,
    pub http_sync_enabled: bool,
    /// Which lung carries sync now: "P2P" or "HTTP".
    pub sync_mode: Lung,
    /// Whether the heartbeat is steering (mode `auto`).
    pub heartbeat_active: bool,

    pub mode: Mode,
    /// When the current run of samples without sync peers began (unix ms).
    pub peerless_since_ms: Option<u64>,
    /// When the HTTP fallback will activate if no peer returns (unix ms); only while the
    /// timer runs. A UI counts down to it without ticks of its own.
    pub fallback_deadline_ms: Option<u64>,
    pub fallback_active_since_ms: Option<u64>,
    pub fallback_after_ms: u64,
    pub heartbeat_ms: u64,
    pub http_poll_ms: u64,
    pub last_transition: Option<Transition>,

    pub merkle_root: String,
    pub entry_count: usize,

    pub node: NodeInfo,
    /// Which ledger this node holds, and whether it is open to anyone.
    pub ledger: LedgerInfo,
    pub neighbors: Vec<NeighborStatus>,
    pub last_sync: Option<SyncSummary>,
    /// Connected P2P peers.
    pub peers: Vec<PeerStatus>,
    /// Whether P2P is cut on purpose (every connection closed and refused).
    pub p2p_blocked: bool,
    /// Where this node accepts P2P connections (multiaddrs ending in its PeerId).
    pub p2p_listen: Vec<String>,
    /// Whether this node can be dialed from the internet, as AutoNAT judged it:
    /// `public`, `private` (behind a NAT: reached through relays and hole punching) or
    /// `unknown` (not probed yet, or no one to ask).
    pub reachability: crate::p2p::Reachability,
    /// Set when the store stopped accepting writes, with the reason.
    pub store_failure: Option<String>,
    /// The node's clock when this snapshot was made (unix ms), so a UI can correct
    /// for its own clock when counting down.
    pub now_ms: u64,

    /// Each lung's state and why, which lung carries sync (or `isolated`) and the
    /// fallback phase, decided in the core (`sync::states`): faces show these and derive
    /// nothing. Flattened, so the JSON has `p2p_state`, `p2p_reason`, ... at the top.
    #[serde(flatten)]
    pub states: LungStates,
    /// Entries each lung carried since the node started, so a face can chart which
    /// lung carried what.
    pub entries_by_lung: EntriesByLung,
    /// Grows by one with every published snapshot of this node (from 1 at start), so a
    /// face orders snapshots per node; `now_ms` does not (an idle node's clock field
    /// only moves when something else changes).
    pub seq: u64,
    /// The node's recent story, oldest first (at most [`TRANSITIONS_KEPT`]): lung changes,
    /// fallback countdowns and what the operator did. In the snapshot, not only in the
    /// event stream, so a face that starts watching mid-failover can still draw it.
    pub transitions: Vec<TransitionRecord>,
}

/// How many [`TransitionRecord`]s a snapshot keeps: enough for several cut-and-restore
/// rounds of a presentation, small enough to resend with every snapshot.
pub const TRANSITIONS_KEPT: usize = 32;

/// Who acted, when a person (through any face: window, HTTP API, CLI) changed the node.
pub const OPERATOR: &str = "operator";

/// One step of the node's recent story.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitionRecord {
    pub at_ms: u64,
    #[serde(flatten)]
    pub what: TransitionKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TransitionKind {
    /// The sync lung changed.
    Lung {
        from: Lung,
        to: Lung,
        reason: String,
    },
    /// The last live sync peer went: HTTP takes over at `deadline_ms` unless one returns.
    CountdownStarted { deadline_ms: u64 },
    /// A sync peer returned before the deadline.
    CountdownReset { peers: usize },
    /// Someone changed the node on purpose.
    Operator {
        action: OperatorAction,
        /// The mode set, for `mode_set`.
        mode: Option<Mode>,
        by: String,
    },
}

/// What an operator did to the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperatorAction {
    /// P2P cut: every connection closed, new ones refused.
    P2pCut,
    P2pRestored,
    ModeSet,
}

/// Entries received and sent by each lung. P2P: gossip and P2P reconciliation, ours and
/// our peers'; HTTP: HTTP reconciliation, ours and our neighbours' (what they push to or
/// fetch from our API), and the neighbours' event streams. What one side counts sent, the
/// other counts received, but for the event stream: every dashboard reads it too, so an
/// entry a neighbour took from ours counts as received there and not as sent here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntriesByLung {
    pub p2p: EntryFlow,
    pub http: EntryFlow,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryFlow {
    /// New to us (already held entries are not counted): pulled by our reconciliation,
    /// pushed to us by theirs, or arrived by gossip.
    pub received: u64,
    /// Given to peers or neighbours: pushed by our reconciliation, fetched from us by
    /// theirs, or published by gossip (once per entry, whatever the fan-out).
    pub sent: u64,
}

impl EntryFlow {
    pub fn add(&mut self, more: EntryFlow) {
        self.received += more.received;
        self.sent += more.sent;
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub peer_id: String,
    /// `LATTICE_NODE_NAME`, when set.
    pub name: Option<String>,
    pub version: String,
    pub http_listen: String,
    pub started_at_ms: u64,
}

/// The ledger a node holds, as faces show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerInfo {
    /// The ledger id (hex): `LATTICE_LEDGER`, or the development ledger's.
    pub id: String,
    pub name: String,
    /// True on the development ledger: any key may write and any peer may sync.
    pub open: bool,
    /// How many keys may author (0 on an open ledger: anyone).
    pub authors: usize,
    /// Whether this node's own key may write here.
    pub can_write: bool,
    /// Entries refused so far because their authors are not members (remembered, bounded).
    pub refused: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NeighborHealth {
    /// Not contacted yet.
    Unknown,
    Healthy,
    Unhealthy,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighborStatus {
    pub url: String,
    /// The PeerId and name its last state answer gave (none until one was had), so a
    /// face draws one circle per machine whichever lung links it.
    pub peer_id: Option<String>,
    pub name: Option<String>,
    pub health: NeighborHealth,
    pub last_sync_ms: Option<u64>,
    pub last_error: Option<String>,
    pub last_error_kind: Option<String>,
    pub consecutive_failures: u32,
    /// When the next attempt is due while backing off (unix ms).
    pub next_attempt_ms: Option<u64>,
    /// The neighbour's root as last seen, and whether it equals ours now.
    pub root: Option<String>,
    pub root_matches: Option<bool>,
    /// When it was last asked for its state (unix ms), by a sync or by the standby
    /// check, whatever the answer: `health` and `root` are as of then.
    pub checked_at_ms: Option<u64>,
    /// Whether we follow its event stream (HTTP lung active).
    pub events_connected: bool,
    /// When the event-stream follower tries again after losing or failing to open the
    /// stream (unix ms); none while connected or on standby.
    pub events_next_attempt_ms: Option<u64>,
    pub last_report: Option<ReconcileReport>,
    /// The ledger its last state answer named (hex). When it is not ours the neighbour
    /// is refused: unhealthy with `last_error_kind` `other_ledger`, never synced with.
    pub ledger: Option<String>,
    /// Entries it announced on its event stream that were dropped over
    /// `LATTICE_PEER_RATE` (the poll reconciles them).
    pub rate_dropped: u64,
}

/// A connected P2P peer (as the swarm sees it) and how our ledgers compare.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeerStatus {
    #[serde(flatten)]
    pub info: crate::p2p::PeerInfo,
    pub root: Option<String>,
    pub root_matches: Option<bool>,
    pub last_sync_ms: Option<u64>,
}

/// The last completed sync, whichever lung and peer it was with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncSummary {
    pub lung: Lung,
    pub with: String,
    pub at_ms: u64,
    pub pulled: usize,
    pub pushed: usize,
    pub bytes: u64,
}

/// Something that happened, with when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeEvent {
    pub at_ms: u64,
    #[serde(flatten)]
    pub what: EventKind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// The heartbeat state machine's events (timer, fallback, transitions).
    Lung { event: LungEvent },
    /// An entry was added to our ledger, however it arrived.
    EntryAdded { id: String, author: String },
    /// A neighbour's root differs from ours.
    Diverged {
        neighbor: String,
        ours: String,
        theirs: String,
    },
    SyncCompleted {
        lung: Lung,
        with: String,
        report: ReconcileReport,
    },
    /// The store stopped accepting writes.
    StoreFailed { reason: String },
    SyncFailed {
        lung: Lung,
        with: String,
        kind: String,
        message: String,
    },
    /// A peer reached through a relay is now connected directly: "direct connection
    /// to X established by hole punching".
    HolePunched { peer: String },
    /// Someone changed the node on purpose (cut, restore, mode), so every face's log
    /// shows who did what, not only the consequences.
    Operator {
        action: OperatorAction,
        mode: Option<Mode>,
        by: String,
    },
}

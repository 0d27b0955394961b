//! How the actor drives the HTTP lung. While the lung carries sync it reconciles with
//! each neighbour on schedule (at once when it activates), backs off from failing ones
//! and follows their event streams. On standby it still checks each neighbour's state
//! every poll (a conditional GET, no reconciliation), so the reserve lung is known to
//! work before it is needed: health, root and root match stay live.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Actor, now_ms, short};
use crate::http::client::{ClientError, NeighborClient};
use crate::ledger::Store;
use crate::metrics::NeighborLabels;
use crate::status::{EventKind, Lung, NeighborHealth, NeighborStatus, SyncSummary};
use crate::sync::reconcile::{
    self, LedgerState, ReconcileError, ReconcileReport, Remote, TransportError,
};
use crate::throttle::{LogThrottle, suppressed_note};

mod backoff;
mod follow;
pub(super) use follow::FollowerReport;

/// Longest wait between attempts to a failing neighbour, in poll intervals: while HTTP
/// carries sync it may be the only way in, so one that comes back (a reboot during a long
/// fallback) must be found within a minute at the default poll, not five.
const MAX_BACKOFF_POLLS: u32 = 6;
/// The event-stream follower's first retry, at most (never more than one poll).
const FOLLOW_RETRY_BASE: Duration = Duration::from_millis(250);
/// The follower's longest wait between tries.
const FOLLOW_RETRY_CAP: Duration = Duration::from_secs(30);
/// A neighbour that keeps failing gets at most this many warnings per window; the next
/// one let through says how many were held back.
const WARN_BURST: u32 = 3;
const WARN_WINDOW: Duration = Duration::from_secs(60);
/// Error kinds a neighbour's exchanges can fail with, shown at 0 in `/metrics` from the
/// start so a dashboard can tell "no errors" from "not measured".
const ERROR_KINDS: &[&str] = &["protocol", "forged_entry"];

pub(super) struct Neighbor {
    client: NeighborClient,
    events_client: NeighborClient,
    pub(super) status: NeighborStatus,
    in_flight: bool,
    due: Option<Instant>,
    /// Failing polls and checks repeat every interval, forgeries as fast as they come.
    warnings: LogThrottle,
    /// Syncs failed and forgeries caught in a row since the lung activated: what the
    /// backoff grows with. Standby checks do not count, or a neighbour that was down
    /// for an hour of standby would be waited for minutes once it is needed.
    strikes: u32,
}

impl Neighbor {
    pub(super) fn new(client: NeighborClient, events_client: NeighborClient) -> Self {
        let status = NeighborStatus {
            url: client.base().to_string(),
            peer_id: None,
            name: None,
            health: NeighborHealth::Unknown,
            last_sync_ms: None,
            last_error: None,
            last_error_kind: None,
            consecutive_failures: 0,
            next_attempt_ms: None,
            root: None,
            root_matches: None,
            checked_at_ms: None,
            events_connected: false,
            events_next_attempt_ms: None,
            last_report: None,
            ledger: None,
        };
        Self {
            client,
            events_client,
            status,
            in_flight: false,
            due: None,
            warnings: LogThrottle::new(WARN_BURST, WARN_WINDOW),
            strikes: 0,
        }
    }

    /// Records a failed exchange: unhealthy, with why, one more failure in a row.
    fn failed(&mut self, kind: &str, message: String) {
        self.status.health = NeighborHealth::Unhealthy;
        self.status.consecutive_failures = self.status.consecutive_failures.saturating_add(1);
        self.status.last_error = Some(message);
        self.status.last_error_kind = Some(kind.to_string());
    }

    /// The next sync or check waits at least `wait` (never brought forward by it).
    fn retry_in(&mut self, wait: Duration, now: u64) {
        let at = Instant::now();
        let due = self.due.map_or(at + wait, |d| d.max(at + wait));
        self.due = Some(due);
        self.status.next_attempt_ms =
            Some(now + due.saturating_duration_since(at).as_millis() as u64);
    }

    /// Records who answers at this URL, from its state answer. A PeerId that does not
    /// parse, or a name `LATTICE_NODE_NAME` would refuse, is not shown (a face prints it).
    fn identified(&mut self, state: &LedgerState) {
        self.status.peer_id = state
            .node
            .parse::<crate::p2p::PeerId>()
            .ok()
            .map(|p| p.to_string());
        self.status.name = state
            .name
            .as_deref()
            .filter(|n| crate::config::node_name_problem(n).is_none())
            .map(str::to_string);
        self.status.ledger = Some(state.ledger_id().to_hex());
    }

    fn answered(&mut self, root: [u8; 32]) {
        self.status.health = NeighborHealth::Healthy;
        self.status.consecutive_failures = 0;
        self.status.last_error = None;
        self.status.last_error_kind = None;
        self.status.next_attempt_ms = None;
        self.status.root = Some(hex::encode(root));
        self.strikes = 0;
    }

    /// How long until the next attempt (for the log line).
    fn wait_left(&self, now: u64) -> Duration {
        let at = self.status.next_attempt_ms.unwrap_or(now);
        Duration::from_millis(at.saturating_sub(now))
    }

    /// One more strike, and the exponential backoff from one poll interval it earns:
    /// for a neighbour failing while it is needed, or caught lying.
    fn strike(&mut self, poll: Duration) -> Duration {
        self.strikes = self.strikes.saturating_add(1);
        // Jittered, so neighbours that failed together are not all retried together.
        backoff::jittered(
            self.strikes,
            poll,
            poll.saturating_mul(MAX_BACKOFF_POLLS),
            backoff::random_jitter(),
        )
    }
}

/// What one piece of work with a neighbour came to.
pub(super) struct SyncDone {
    index: usize,
    outcome: Outcome,
}

enum Outcome {
    Synced {
        result: Result<ReconcileReport, ReconcileError>,
        /// The neighbour's state answer when one was asked for (its identity unknown).
        identity: Option<LedgerState>,
        /// Our root when the sync began: what the neighbour's root differed from.
        ours_before: [u8; 32],
        /// The neighbour's root asked after reconciling (it may have taken our entries).
        root_after: Option<[u8; 32]>,
    },
    /// The standby check: the neighbour's state, or why it could not be had.
    Checked(Result<LedgerState, TransportError>),
    /// Stopped by the standby (or shutdown) itself: not the neighbour's doing.
    Cancelled,
}

impl Actor {
    /// Every configured neighbour's error counters, at 0 until something fails.
    pub(super) fn register_neighbor_metrics(&self) {
        for n in &self.neighbors {
            for kind in ClientError::KINDS.iter().chain(ERROR_KINDS) {
                let labels = NeighborLabels {
                    neighbor: n.status.url.clone(),
                    kind: kind.to_string(),
                };
                drop(self.metrics.neighbor_errors.get_or_create(&labels));
            }
        }
    }

    /// Starts or stops the HTTP lung to match the state machine, and starts due work:
    /// syncs while the lung is active, checks on standby.
    pub(super) fn steer_http_lung(&mut self, done: &mpsc::Sender<SyncDone>) {
        let enabled = self.lungs.http_sync_enabled();
        match (&self.http_lung, enabled) {
            (None, true) => {
                let token = CancellationToken::new();
                for (index, n) in self.neighbors.iter_mut().enumerate() {
                    n.due = None; // poll at once rather than a full interval later
                    n.strikes = 0;
                    n.status.events_next_attempt_ms = None;
                    let follower = follow::Follower {
                        index,
                        client: n.events_client.clone(),
                        store: self.store.clone(),
                        commands: self.commands.clone(),
                        max_payload: self.config.max_payload,
                        idle: self.options.events_idle,
                        retry_base: FOLLOW_RETRY_BASE.min(self.config.http_poll),
                        retry_cap: FOLLOW_RETRY_CAP,
                        cancel: token.clone(),
                    };
                    tokio::spawn(follower.run());
                }
                tracing::info!(
                    "HTTP lung active: polling {} neighbour(s) every {}",
                    self.neighbors.len(),
                    humantime::format_duration(self.config.http_poll)
                );
                self.http_lung = Some(token);
            }
            (Some(_), false) => {
                if let Some(token) = self.http_lung.take() {
                    token.cancel();
                }
                for n in &mut self.neighbors {
                    n.status.events_connected = false;
                    n.status.events_next_attempt_ms = None;
                    n.status.next_attempt_ms = None;
                    n.due = None; // the first standby check at once
                }
                tracing::info!(
                    "HTTP lung on standby: checking {} neighbour(s) every {}",
                    self.neighbors.len(),
                    humantime::format_duration(self.config.http_poll)
                );
            }
            _ => {}
        }
        if !done.is_closed() {
            self.start_due_work(done);
        }
    }

    /// When the next neighbour sync or check is due (None: no neighbours, or all busy).
    pub(super) fn next_poll(&self) -> Option<Instant> {
        self.neighbors
            .iter()
            .filter(|n| !n.in_flight)
            .map(|n| n.due.unwrap_or_else(Instant::now))
            .min()
    }

    fn start_due_work(&mut self, done: &mpsc::Sender<SyncDone>) {
        let now = Instant::now();
        let lung = self.http_lung.clone();
        for (index, n) in self.neighbors.iter_mut().enumerate() {
            if n.in_flight || n.due.is_some_and(|d| d > now) {
                continue;
            }
            n.in_flight = true;
            n.due = Some(now + self.config.http_poll);
            let (client, done) = (n.client.clone(), done.clone());
            match &lung {
                Some(lung) => {
                    let identify = n.status.peer_id.is_none();
                    let work = sync(
                        client,
                        self.store.clone(),
                        self.config.max_payload,
                        identify,
                    );
                    tokio::spawn(finish(index, work, lung.clone(), done));
                }
                None => {
                    let work = async move { Outcome::Checked(client.state().await) };
                    // Checks are not cancelled by the lung; only by shutdown (below).
                    tokio::spawn(finish(index, work, CancellationToken::new(), done));
                }
            }
        }
    }

    pub(super) fn sync_done(&mut self, done: SyncDone) {
        let now = now_ms();
        let poll = self.config.http_poll;
        let Some(n) = self.neighbors.get_mut(done.index) else {
            return;
        };
        n.in_flight = false;
        let url = n.status.url.clone();
        let failure = match done.outcome {
            Outcome::Cancelled => return,
            Outcome::Checked(result) => {
                n.status.checked_at_ms = Some(now);
                match result {
                    Ok(state) => {
                        n.identified(&state);
                        match reconcile::check_ledger(&self.store, &state) {
                            Ok(()) => {
                                n.answered(state.root);
                                return;
                            }
                            // Another ledger's node counts for nothing: unhealthy, with why.
                            Err(e) => {
                                n.failed(&e.kind(), e.to_string());
                                n.retry_in(poll, now);
                                (e.kind(), e.to_string(), false)
                            }
                        }
                    }
                    // A check failing on standby is tried again every poll: it is cheap,
                    // and the reserve must be seen to come back.
                    Err(e) => {
                        n.failed(&e.kind, e.message.clone());
                        n.retry_in(poll, now);
                        (e.kind, e.message, false)
                    }
                }
            }
            Outcome::Synced {
                result: Ok(report),
                identity,
                ours_before,
                root_after,
            } => {
                n.status.checked_at_ms = Some(now);
                if let Some(state) = &identity {
                    n.identified(state);
                }
                n.answered(root_after.unwrap_or(report.their_root));
                n.status.last_sync_ms = Some(now);
                n.status.last_report = Some(report.clone());
                self.synced(url, ours_before, report, now);
                return;
            }
            Outcome::Synced {
                result: Err(e),
                identity,
                ..
            } => {
                n.status.checked_at_ms = Some(now);
                if let Some(state) = &identity {
                    n.identified(state);
                }
                if let reconcile::ReconcileError::OtherLedger { theirs, .. } = &e {
                    n.status.ledger = Some(theirs.to_hex());
                }
                n.failed(&e.kind(), e.to_string());
                let wait = n.strike(poll);
                n.retry_in(wait, now);
                (e.kind(), e.to_string(), true)
            }
        };
        let (kind, message, was_sync) = failure;
        let wait = n.wait_left(now);
        if let Some(held) = n.warnings.allow(std::time::Instant::now()) {
            tracing::warn!(
                "[HTTP_{}] {url}: {message} (attempt {} failed; next in {}){}",
                if was_sync { "SYNC" } else { "CHECK" },
                n.status.consecutive_failures,
                humantime::format_duration(wait),
                suppressed_note(held)
            );
        }
        self.count_error(&url, &kind);
        if was_sync {
            self.metrics.sync_failed("HTTP");
            self.emit(EventKind::SyncFailed {
                lung: Lung::Http,
                with: url,
                kind,
                message,
            });
        }
    }

    fn synced(&mut self, url: String, ours: [u8; 32], report: ReconcileReport, now: u64) {
        let bytes = report.bytes_sent + report.bytes_received;
        let flow = &mut self.entries_by_lung.http;
        flow.received += report.pulled as u64;
        flow.sent += report.pushed as u64;
        self.metrics.sync_ok("HTTP", &report);
        if !report.in_sync_before {
            tracing::info!(
                "[HTTP_SYNC] {url}: root {} differs from ours {}; reconciled: pulled {}, pushed {}, {bytes} bytes",
                short(&report.their_root),
                short(&ours),
                report.pulled,
                report.pushed
            );
            self.emit(EventKind::Diverged {
                neighbor: url.clone(),
                ours: hex::encode(ours),
                theirs: hex::encode(report.their_root),
            });
            self.emit(EventKind::SyncCompleted {
                lung: Lung::Http,
                with: url.clone(),
                report: report.clone(),
            });
        }
        self.last_sync = Some(SyncSummary {
            lung: Lung::Http,
            with: url,
            at_ms: now,
            pulled: report.pulled,
            pushed: report.pushed,
            bytes,
        });
    }

    fn count_error(&self, url: &str, kind: &str) {
        self.metrics
            .neighbor_errors
            .get_or_create(&NeighborLabels {
                neighbor: url.to_string(),
                kind: kind.to_string(),
            })
            .inc();
    }

    /// What a neighbour's event-stream follower reports. A neighbour caught announcing a
    /// forged entry is misbehaving: unhealthy, and its next poll backed off.
    pub(super) fn follower_report(&mut self, index: usize, report: FollowerReport) {
        let active = self.http_lung.is_some();
        let poll = self.config.http_poll;
        let now = now_ms();
        let Some(n) = self.neighbors.get_mut(index) else {
            return;
        };
        let retry_in = match report {
            FollowerReport::Connected => {
                n.status.events_connected = active;
                n.status.events_next_attempt_ms = None;
                return;
            }
            FollowerReport::Stored => {
                self.entries_by_lung.http.received += 1;
                return;
            }
            FollowerReport::Lost { retry_in } => retry_in,
            FollowerReport::Forged {
                ref error,
                retry_in,
            } => {
                let message = format!("announced a forged entry on its event stream: {error}");
                n.failed("forged_entry", message.clone());
                let wait = n.strike(poll);
                n.retry_in(wait, now);
                let wait = n.wait_left(now);
                let url = n.status.url.clone();
                if let Some(held) = n.warnings.allow(std::time::Instant::now()) {
                    tracing::warn!(
                        "[HTTP_EVENTS] {url}: {message}; stream dropped, polls backed off {}{}",
                        humantime::format_duration(wait),
                        suppressed_note(held)
                    );
                }
                self.count_error(&url, "forged_entry");
                self.emit(EventKind::SyncFailed {
                    lung: Lung::Http,
                    with: url,
                    kind: "forged_entry".into(),
                    message,
                });
                retry_in
            }
        };
        let Some(n) = self.neighbors.get_mut(index) else {
            return;
        };
        n.status.events_connected = false;
        n.status.events_next_attempt_ms = active.then(|| now + retry_in.as_millis() as u64);
    }
}

/// One reconciliation with a neighbour, and its root afterwards; first its state answer
/// when `identify` (who it is is not known yet: a node started in forced `http` never
/// ran a standby check).
async fn sync(client: NeighborClient, store: Store, max_payload: usize, identify: bool) -> Outcome {
    let identity = match identify {
        true => client.state().await.ok(),
        false => None,
    };
    let ours_before = store.root();
    let result = reconcile::reconcile(&store, &client, max_payload).await;
    let root_after = match &result {
        Ok(r) if !r.in_sync_before => client.state().await.ok().map(|s| s.root),
        Ok(r) => Some(r.their_root),
        Err(_) => None,
    };
    Outcome::Synced {
        result,
        identity,
        ours_before,
        root_after,
    }
}

/// Runs `work` unless `cancel` (the lung going to standby) or the actor's end (the
/// channel closing) stops it first; what a sync committed stays.
async fn finish(
    index: usize,
    work: impl Future<Output = Outcome>,
    cancel: CancellationToken,
    done: mpsc::Sender<SyncDone>,
) {
    let outcome = tokio::select! {
        _ = cancel.cancelled() => Outcome::Cancelled,
        _ = done.closed() => return,
        o = work => o,
    };
    let _ = done.send(SyncDone { index, outcome }).await;
}

pub(super) async fn sleep_until_due(due: Option<Instant>) {
    match due {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

//! How the actor carries out the HTTP lung's work. When to sync, check or follow a
//! neighbour, and how long to back off, is the schedule's (`sync::schedule`); here the
//! work is done and its outcome recorded for the neighbour's status. While the lung
//! carries sync it reconciles with each neighbour and follows their event streams; on
//! standby it still checks each neighbour's state (a conditional GET, no
//! reconciliation), so the reserve lung is known to work before it is needed.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Actor;
use crate::http::client::{ClientError, NeighborClient};
use crate::ledger::Store;
use crate::metrics::NeighborLabels;
use crate::status::{EventKind, Lung, NeighborHealth, NeighborStatus};
use crate::sync::reconcile::{self, LedgerState, ReconcileError, Remote, TransportError};
use crate::sync::schedule::{Input, NeighborOutcome};
use crate::throttle::{LogThrottle, suppressed_note};

mod follow;
pub(super) use follow::FollowerReport;

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
    /// What status shows, but for the schedule's part (next attempts, follower state),
    /// which the snapshot takes from the schedule.
    pub(super) status: NeighborStatus,
    /// Failing polls and checks repeat every interval, forgeries as fast as they come.
    warnings: LogThrottle,
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
            rate_dropped: 0,
        };
        Self {
            client,
            events_client,
            status,
            warnings: LogThrottle::new(WARN_BURST, WARN_WINDOW),
        }
    }

    /// Records a failed exchange: unhealthy, with why, one more failure in a row.
    fn failed(&mut self, kind: &str, message: String) {
        self.status.health = NeighborHealth::Unhealthy;
        self.status.consecutive_failures = self.status.consecutive_failures.saturating_add(1);
        self.status.last_error = Some(message);
        self.status.last_error_kind = Some(kind.to_string());
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
        self.status.root = Some(hex::encode(root));
    }
}

/// What one piece of work with a neighbour came to.
pub(super) struct SyncDone {
    index: usize,
    outcome: Outcome,
}

enum Outcome {
    Synced {
        run: super::synced::Run,
        /// The neighbour's state answer when one was asked for (its identity unknown).
        identity: Option<LedgerState>,
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

    /// The HTTP lung now carries sync: work started from now on belongs to it (and is
    /// cancelled with it).
    pub(super) fn http_lung_active(&mut self) {
        if let Some(old) = self.http_lung.replace(CancellationToken::new()) {
            old.cancel();
        }
        tracing::info!(
            "HTTP lung active: polling {} neighbour(s) every {}",
            self.neighbors.len(),
            humantime::format_duration(self.config.http_poll)
        );
    }

    pub(super) fn http_lung_standby(&mut self) {
        if let Some(token) = self.http_lung.take() {
            token.cancel();
        }
        tracing::info!(
            "HTTP lung on standby: checking {} neighbour(s) every {}",
            self.neighbors.len(),
            humantime::format_duration(self.config.http_poll)
        );
    }

    /// Reconciles with neighbour `index` (its identity asked first when unknown: a node
    /// started in forced `http` never ran a standby check).
    pub(super) fn sync_neighbor(&mut self, index: usize, done: &mpsc::Sender<SyncDone>) {
        let Some(n) = self.neighbors.get(index) else {
            return;
        };
        let lung = self
            .http_lung
            .get_or_insert_with(CancellationToken::new)
            .clone();
        let identify = n.status.peer_id.is_none();
        let work = sync(
            n.client.clone(),
            self.store.clone(),
            self.config.max_payload,
            identify,
        );
        tokio::spawn(finish(index, work, lung, done.clone()));
    }

    /// The standby check: not cancelled by the lung, only by the actor's end.
    pub(super) fn check_neighbor(&mut self, index: usize, done: &mpsc::Sender<SyncDone>) {
        let Some(n) = self.neighbors.get(index) else {
            return;
        };
        let client = n.client.clone();
        let work = async move { Outcome::Checked(client.state().await) };
        tokio::spawn(finish(index, work, CancellationToken::new(), done.clone()));
    }

    /// One session of neighbour `index`'s event-stream follower.
    pub(super) fn follow_neighbor(&mut self, index: usize, epoch: u64) {
        let Some(n) = self.neighbors.get(index) else {
            return;
        };
        let lung = self
            .http_lung
            .get_or_insert_with(CancellationToken::new)
            .clone();
        let follower = follow::Follower {
            index,
            epoch,
            client: n.events_client.clone(),
            store: self.store.clone(),
            commands: self.commands.clone(),
            max_payload: self.config.max_payload,
            unsolicited: self.unsolicited.clone(),
            idle: self.options.events_idle,
            cancel: lung,
        };
        tokio::spawn(follower.run());
    }

    /// Records what a sync or check came to, tells the schedule, and says why it failed.
    pub(super) async fn sync_done(&mut self, done: SyncDone) {
        let now = self.clock.now_ms();
        let index = done.index;
        let Some(n) = self.neighbors.get_mut(index) else {
            return;
        };
        let url = n.status.url.clone();
        let (outcome, failure) = match done.outcome {
            Outcome::Cancelled => (NeighborOutcome::Cancelled, None),
            Outcome::Checked(result) => {
                n.status.checked_at_ms = Some(now);
                match result {
                    Ok(state) => {
                        n.identified(&state);
                        match reconcile::check_ledger(&self.store, &state) {
                            Ok(()) => {
                                n.answered(state.root);
                                (NeighborOutcome::CheckAnswered, None)
                            }
                            // Another ledger's node counts for nothing: unhealthy, with why.
                            Err(e) => {
                                n.failed(&e.kind(), e.to_string());
                                let why = (e.kind(), e.to_string(), false);
                                (NeighborOutcome::CheckFailed, Some(why))
                            }
                        }
                    }
                    Err(e) => {
                        n.failed(&e.kind, e.message.clone());
                        let why = (e.kind, e.message, false);
                        (NeighborOutcome::CheckFailed, Some(why))
                    }
                }
            }
            Outcome::Synced { run, identity } => {
                n.status.checked_at_ms = Some(now);
                if let Some(state) = &identity {
                    n.identified(state);
                }
                match run.result {
                    Ok(report) => {
                        n.answered(run.root_after.unwrap_or(report.their_root));
                        n.status.last_sync_ms = Some(now);
                        n.status.last_report = Some(report.clone());
                        self.record_synced(Lung::Http, &url, run.ours_before, &report, now);
                        (NeighborOutcome::Synced, None)
                    }
                    Err(e) => {
                        if let ReconcileError::OtherLedger { theirs, .. } = &e {
                            n.status.ledger = Some(theirs.to_hex());
                        }
                        n.failed(&e.kind(), e.to_string());
                        let why = (e.kind(), e.to_string(), true);
                        (NeighborOutcome::SyncFailed, Some(why))
                    }
                }
            }
        };
        self.feed(Input::NeighborDone { index, outcome }).await;
        let Some((kind, message, was_sync)) = failure else {
            return;
        };
        let wait = self.wait_left(index, now);
        let Some(n) = self.neighbors.get_mut(index) else {
            return;
        };
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
            self.record_sync_failed(Lung::Http, url, kind, message);
        }
    }

    /// How long until the schedule tries neighbour `index` again (for the log line).
    fn wait_left(&self, index: usize, now: u64) -> Duration {
        let at = self.schedule.neighbor(index).next_attempt_ms.unwrap_or(now);
        Duration::from_millis(at.saturating_sub(now))
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
    /// forged entry is misbehaving: unhealthy, and (the schedule's part) its next poll
    /// backed off.
    pub(super) async fn follower_report(
        &mut self,
        index: usize,
        epoch: u64,
        report: FollowerReport,
    ) {
        let forged = match report {
            FollowerReport::Connected => {
                return self.feed(Input::FollowerConnected { index, epoch }).await;
            }
            FollowerReport::Stored => {
                self.entries_by_lung.http.received += 1;
                return;
            }
            FollowerReport::Ended { forged } => forged,
        };
        let now = self.clock.now_ms();
        let input = Input::FollowerEnded {
            index,
            epoch,
            forged: forged.is_some(),
        };
        let Some(error) = forged else {
            return self.feed(input).await;
        };
        let message = format!("announced a forged entry on its event stream: {error}");
        if let Some(n) = self.neighbors.get_mut(index) {
            n.failed("forged_entry", message.clone());
        }
        self.feed(input).await;
        let wait = self.wait_left(index, now);
        let Some(n) = self.neighbors.get_mut(index) else {
            return;
        };
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
    let run = super::synced::run(&store, &client, max_payload).await;
    Outcome::Synced { run, identity }
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

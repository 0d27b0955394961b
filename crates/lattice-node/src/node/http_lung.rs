//! How the actor drives the HTTP lung: polling each neighbour on schedule (at once when
//! the lung activates), reconciling, backing off from failing neighbours, and following
//! their event streams while HTTP carries sync.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Actor, Command, now_ms, short};
use crate::http::client::NeighborClient;
use crate::http::remote::paths;
use crate::ledger::{Entry, Store};
use crate::metrics::NeighborLabels;
use crate::status::{EventKind, Lung, NeighborHealth, NeighborStatus, SyncSummary};
use crate::sync::reconcile::{self, ReconcileError, ReconcileReport, Remote};

/// Longest wait between attempts to a failing neighbour.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

pub(super) struct Neighbor {
    client: NeighborClient,
    events_client: NeighborClient,
    pub(super) status: NeighborStatus,
    in_flight: bool,
    due: Option<Instant>,
}

impl Neighbor {
    pub(super) fn new(client: NeighborClient, events_client: NeighborClient) -> Self {
        let status = NeighborStatus {
            url: client.base().to_string(),
            health: NeighborHealth::Unknown,
            last_sync_ms: None,
            last_error: None,
            last_error_kind: None,
            consecutive_failures: 0,
            next_attempt_ms: None,
            root: None,
            root_matches: None,
            events_connected: false,
            last_report: None,
        };
        Self {
            client,
            events_client,
            status,
            in_flight: false,
            due: None,
        }
    }
}

/// What one HTTP sync with a neighbour came to.
pub(super) struct SyncDone {
    index: usize,
    result: Result<ReconcileReport, ReconcileError>,
    /// The neighbour's root asked after reconciling (it may have taken our entries).
    root_after: Option<[u8; 32]>,
}

impl Actor {
    /// Starts or stops the HTTP lung to match the state machine, and starts due polls.
    pub(super) fn steer_http_lung(&mut self, done: &mpsc::Sender<SyncDone>) {
        let enabled = self.lungs.http_sync_enabled();
        match (&self.http_lung, enabled) {
            (None, true) => {
                let token = CancellationToken::new();
                for (index, n) in self.neighbors.iter_mut().enumerate() {
                    n.due = None; // poll at once rather than a full interval later
                    tokio::spawn(follow_events(
                        index,
                        n.events_client.clone(),
                        self.store.clone(),
                        self.commands.clone(),
                        self.config.max_payload,
                        self.options.events_idle,
                        self.config.http_poll,
                        token.clone(),
                    ));
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
                    n.status.next_attempt_ms = None;
                    n.due = None;
                }
                tracing::info!("HTTP lung on standby");
            }
            _ => {}
        }
        if self.http_lung.is_some() && !done.is_closed() {
            self.start_due_polls(done);
        }
    }

    /// When the next neighbour poll is due (None: nothing to poll).
    pub(super) fn next_poll(&self) -> Option<Instant> {
        self.http_lung.as_ref()?;
        self.neighbors
            .iter()
            .filter(|n| !n.in_flight)
            .map(|n| n.due.unwrap_or_else(Instant::now))
            .min()
    }

    fn start_due_polls(&mut self, done: &mpsc::Sender<SyncDone>) {
        let Some(lung) = self.http_lung.clone() else {
            return;
        };
        let now = Instant::now();
        for (index, n) in self.neighbors.iter_mut().enumerate() {
            if n.in_flight || n.due.is_some_and(|d| d > now) {
                continue;
            }
            n.in_flight = true;
            n.due = Some(now + self.config.http_poll);
            let (client, store, done) = (n.client.clone(), self.store.clone(), done.clone());
            let max_payload = self.config.max_payload;
            let lung = lung.clone();
            tokio::spawn(async move {
                // Standby (or shutdown) stops a sync in the middle; what it committed stays.
                let work = async {
                    let result = reconcile::reconcile(&store, &client, max_payload).await;
                    let root_after = match &result {
                        Ok(r) if !r.in_sync_before => client.state().await.ok().map(|s| s.root),
                        Ok(r) => Some(r.their_root),
                        Err(_) => None,
                    };
                    (result, root_after)
                };
                let (result, root_after) = tokio::select! {
                    _ = lung.cancelled() => (Err(ReconcileError::Protocol("stopped: the HTTP lung went to standby".into())), None),
                    r = work => r,
                };
                let _ = done
                    .send(SyncDone {
                        index,
                        result,
                        root_after,
                    })
                    .await;
            });
        }
    }

    pub(super) fn sync_done(&mut self, done: SyncDone) {
        let now = now_ms();
        let ours = self.store.root();
        let poll = self.config.http_poll;
        let standby = self.http_lung.is_none();
        let Some(n) = self.neighbors.get_mut(done.index) else {
            return;
        };
        n.in_flight = false;
        if standby && done.result.is_err() {
            return; // stopped by the standby itself, not the neighbour's fault
        }
        let url = n.status.url.clone();
        match done.result {
            Ok(report) => {
                n.status.health = NeighborHealth::Healthy;
                n.status.consecutive_failures = 0;
                n.status.last_error = None;
                n.status.last_error_kind = None;
                n.status.next_attempt_ms = None;
                n.status.last_sync_ms = Some(now);
                n.status.root = done.root_after.map(hex::encode);
                n.status.last_report = Some(report.clone());
                let bytes = report.bytes_sent + report.bytes_received;
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
            Err(e) => {
                n.status.health = NeighborHealth::Unhealthy;
                n.status.consecutive_failures += 1;
                let backoff = poll
                    .saturating_mul(1 << (n.status.consecutive_failures - 1).min(6))
                    .min(MAX_BACKOFF.max(poll));
                n.due = Some(Instant::now() + backoff);
                n.status.next_attempt_ms = Some(now + backoff.as_millis() as u64);
                n.status.last_error = Some(e.to_string());
                n.status.last_error_kind = Some(e.kind());
                tracing::warn!(
                    "[HTTP_SYNC] {url}: {e} (attempt {} failed; next in {})",
                    n.status.consecutive_failures,
                    humantime::format_duration(backoff)
                );
                self.metrics
                    .neighbor_errors
                    .get_or_create(&NeighborLabels {
                        neighbor: url.clone(),
                        kind: e.kind(),
                    })
                    .inc();
                self.metrics.sync_failed("HTTP");
                self.emit(EventKind::SyncFailed {
                    lung: Lung::Http,
                    with: url,
                    kind: e.kind(),
                    message: e.to_string(),
                });
            }
        }
    }
}

pub(super) async fn sleep_until_due(due: Option<Instant>) {
    match due {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Follows a neighbour's event stream while the HTTP lung breathes, ingesting each new
/// entry (verified) as it is announced: a new entry arrives in about a second instead of
/// up to one poll interval. The poll remains the safety net.
#[allow(clippy::too_many_arguments)]
async fn follow_events(
    index: usize,
    client: NeighborClient,
    store: Store,
    commands: mpsc::WeakSender<Command>,
    max_payload: usize,
    idle: Duration,
    retry: Duration,
    cancel: CancellationToken,
) {
    let report = |connected: bool| {
        let commands = commands.clone();
        async move {
            if let Some(tx) = commands.upgrade() {
                let _ = tx
                    .send(Command::FollowerConnected { index, connected })
                    .await;
            }
        }
    };
    let mut failures = 0u32;
    let path = format!("{}?only=entries", paths::EVENTS);
    while !cancel.is_cancelled() {
        let stream = tokio::select! {
            _ = cancel.cancelled() => return,
            s = client.events(&path, idle) => s,
        };
        if let Ok(mut stream) = stream {
            failures = 0;
            report(true).await;
            loop {
                let next = tokio::select! {
                    _ = cancel.cancelled() => return,
                    n = stream.next() => n,
                };
                match next {
                    Some(Ok(ev)) if ev.event == "entry" => {
                        match Entry::from_json(&ev.data, max_payload) {
                            Ok(entry) => {
                                if let Err(e) = store.append(entry).await {
                                    tracing::warn!("storing an entry from {}: {e}", client.base());
                                }
                            }
                            Err(e) => tracing::warn!(
                                "{} announced an entry that fails verification: {e}",
                                client.base()
                            ),
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break,
                }
            }
            report(false).await;
        }
        failures = failures.saturating_add(1);
        let wait = retry.saturating_mul(1 << failures.min(5)).min(MAX_BACKOFF);
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

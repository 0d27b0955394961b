//! What either lung records of one reconciliation: the run itself (reconcile, then the
//! other side's root afterwards), and its outcome (the entries each way, the metrics,
//! the log line, the events, the last sync status shows). The lungs differ in whom they
//! sync with and what a failure does to that neighbour or peer, not in this.

use crate::ledger::Store;
use crate::status::{EventKind, Lung, SyncSummary};
use crate::sync::reconcile::{self, ReconcileError, ReconcileReport, Remote};

use super::{Actor, short};

/// One reconciliation and its result.
pub(super) struct Run {
    pub result: Result<ReconcileReport, ReconcileError>,
    /// Our root when it began: what the other side's root differed from.
    pub ours_before: [u8; 32],
    /// The other side's root after reconciling (it may have taken our entries); `None`
    /// when the sync failed or the question went unanswered.
    pub root_after: Option<[u8; 32]>,
}

/// Reconciles with `remote`, then asks its root if anything moved.
pub(super) async fn run(store: &Store, remote: &impl Remote, max_payload: usize) -> Run {
    let ours_before = store.root();
    let result = reconcile::reconcile(store, remote, max_payload).await;
    let root_after = match &result {
        Ok(r) if !r.in_sync_before => remote.state().await.ok().map(|s| s.root),
        Ok(r) => Some(r.their_root),
        Err(_) => None,
    };
    Run {
        result,
        ours_before,
        root_after,
    }
}

impl Actor {
    /// A reconciliation with `with` over `lung` succeeded.
    pub(super) fn record_synced(
        &mut self,
        lung: Lung,
        with: &str,
        ours_before: [u8; 32],
        report: &ReconcileReport,
        now: u64,
    ) {
        let bytes = report.bytes_sent + report.bytes_received;
        let flow = match lung {
            Lung::P2p => &mut self.entries_by_lung.p2p,
            Lung::Http => &mut self.entries_by_lung.http,
        };
        flow.received += report.pulled as u64;
        flow.sent += report.pushed as u64;
        self.metrics.sync_ok(&lung.to_string(), report);
        if !report.in_sync_before {
            tracing::info!(
                "[{lung}_SYNC] {with}: root {} differs from ours {}; reconciled: pulled {}, pushed {}, {bytes} bytes",
                short(&report.their_root),
                short(&ours_before),
                report.pulled,
                report.pushed
            );
            if lung == Lung::Http {
                self.emit(EventKind::Diverged {
                    neighbor: with.to_string(),
                    ours: hex::encode(ours_before),
                    theirs: hex::encode(report.their_root),
                });
            }
            self.emit(EventKind::SyncCompleted {
                lung,
                with: with.to_string(),
                report: report.clone(),
            });
        }
        self.last_sync = Some(SyncSummary {
            lung,
            with: with.to_string(),
            at_ms: now,
            pulled: report.pulled,
            pushed: report.pushed,
            bytes,
        });
    }

    /// A reconciliation with `with` over `lung` failed (the lung has logged why, in its
    /// own words and at its own rate).
    pub(super) fn record_sync_failed(
        &mut self,
        lung: Lung,
        with: String,
        kind: String,
        message: String,
    ) {
        self.metrics.sync_failed(&lung.to_string());
        self.emit(EventKind::SyncFailed {
            lung,
            with,
            kind,
            message,
        });
    }
}

//! Prometheus metrics (`GET /metrics`), names prefixed `lattice_`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SyncLabels {
    pub lung: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LungLabel {
    pub lung: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    pub source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransitionLabels {
    pub to: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NeighborLabels {
    pub neighbor: String,
    pub kind: String,
}

/// The node's own metrics. Cheap to clone (the metrics are shared handles).
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    pub entries: Gauge,
    pub root_changes: Counter,
    pub syncs: Family<SyncLabels, Counter>,
    pub bytes_reconciled: Family<LungLabel, Counter>,
    pub entries_reconciled: Family<LungLabel, Counter>,
    pub mode_transitions: Family<TransitionLabels, Counter>,
    pub neighbor_errors: Family<NeighborLabels, Counter>,
    /// Unsolicited entries dropped over `LATTICE_PEER_RATE` on the HTTP lung, by source
    /// (`http_push`, `event_stream`); gossip's are counted per peer in status.
    pub unsolicited_dropped: Family<SourceLabel, Counter>,
}

impl Metrics {
    /// Counts a completed sync over `lung` ("P2P" or "HTTP") and what it moved.
    pub fn sync_ok(&self, lung: &str, report: &crate::sync::reconcile::ReconcileReport) {
        let label = LungLabel { lung: lung.into() };
        self.bytes_reconciled
            .get_or_create(&label)
            .inc_by(report.bytes_sent + report.bytes_received);
        self.entries_reconciled
            .get_or_create(&label)
            .inc_by((report.pulled + report.pushed) as u64);
        self.sync_result(lung, "ok");
    }

    pub fn sync_failed(&self, lung: &str) {
        self.sync_result(lung, "error");
    }

    fn sync_result(&self, lung: &str, result: &str) {
        self.syncs
            .get_or_create(&SyncLabels {
                lung: lung.into(),
                result: result.into(),
            })
            .inc();
    }

    /// Registers every metric under the `lattice` prefix.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("lattice");
        r.register("entries", "Entries in the ledger", self.entries.clone());
        r.register(
            "root_changes",
            "Times the Merkle root changed",
            self.root_changes.clone(),
        );
        r.register("syncs", "Syncs by lung and result", self.syncs.clone());
        r.register(
            "reconciled_bytes",
            "Message bytes exchanged by reconciliation, by lung",
            self.bytes_reconciled.clone(),
        );
        r.register(
            "reconciled_entries",
            "Entries pulled or pushed by reconciliation, by lung",
            self.entries_reconciled.clone(),
        );
        r.register(
            "mode_transitions",
            "Changes of the lung carrying sync",
            self.mode_transitions.clone(),
        );
        r.register(
            "neighbor_errors",
            "Failed exchanges with HTTP neighbours, by kind",
            self.neighbor_errors.clone(),
        );
        r.register(
            "unsolicited_dropped_entries",
            "Unsolicited entries dropped over LATTICE_PEER_RATE, by source",
            self.unsolicited_dropped.clone(),
        );
    }
}

/// The store's group-commit counters, read from the store at each scrape (they live in
/// the store's writer; copying them into counters would lag behind it).
#[derive(Debug)]
pub struct StoreCollector(pub crate::ledger::Store);

impl prometheus_client::collector::Collector for StoreCollector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::counter::ConstCounter;
        let stats = self.0.stats();
        for (name, help, value) in [
            (
                "lattice_store_commits",
                "Group commits the store made (each one fsync)",
                stats.commits,
            ),
            (
                "lattice_store_entries_written",
                "Entries the store's group commits wrote",
                stats.entries_written,
            ),
        ] {
            let counter = ConstCounter::new(value);
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}

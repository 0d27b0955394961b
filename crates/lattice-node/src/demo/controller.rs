//! The presenter's controls over a demo cluster: automatic traffic, so entries visibly
//! flow through a failover, and the cut counter that tells the audience what was
//! written during a cut and on how many nodes it arrived.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::ledger::{Entry, EntryId, Store};
use crate::node::{NodeError, NodeHandle};

/// A few entries a second: enough to see flow on a chart, few enough to read the log.
pub const TRAFFIC_PER_SECOND: u32 = 3;
/// Traffic stops by itself after this many entries (20 minutes at the default rate), so
/// a forgotten switch cannot grow the demo ledgers without end.
pub const TRAFFIC_MAX_ENTRIES: u64 = 3_600;
/// The fastest traffic accepted: the point is to be watched, not to load-test.
pub const TRAFFIC_MAX_PER_SECOND: u32 = 50;
/// When a commit watcher falls behind, this many of the node's newest entries are
/// scanned instead, so a burst cannot hide entries from the counter.
const LAG_SCAN: usize = 4_096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrafficOptions {
    pub per_second: u32,
    pub max_entries: u64,
}

impl Default for TrafficOptions {
    fn default() -> Self {
        Self {
            per_second: TRAFFIC_PER_SECOND,
            max_entries: TRAFFIC_MAX_ENTRIES,
        }
    }
}

/// What the traffic switch is doing, for the presenter bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct TrafficStatus {
    pub on: bool,
    pub per_second: u32,
    /// Entries this traffic run wrote (it stops by itself at `max_entries`).
    pub written: u64,
    pub max_entries: u64,
}

pub(super) struct Traffic {
    cancel: CancellationToken,
    /// Taken by [`Traffic::stop`]; the rest stays so the bar still says what the run did.
    task: Option<JoinHandle<()>>,
    written: Arc<AtomicU64>,
    options: TrafficOptions,
}

impl Traffic {
    /// Writes round-robin from every node, one entry per tick, until cancelled, until
    /// `max_entries`, or until a node shuts down.
    pub(super) fn spawn(nodes: Vec<(String, NodeHandle)>, options: TrafficOptions) -> Traffic {
        let cancel = CancellationToken::new();
        let written = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(write_traffic(
            nodes,
            options,
            cancel.clone(),
            written.clone(),
        ));
        Traffic {
            cancel,
            task: Some(task),
            written,
            options,
        }
    }

    pub(super) fn status(&self) -> TrafficStatus {
        TrafficStatus {
            on: self.is_on(),
            per_second: self.options.per_second,
            written: self.written.load(Ordering::Relaxed),
            max_entries: self.options.max_entries,
        }
    }

    pub(super) fn is_on(&self) -> bool {
        self.task.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops it; the caller awaits the task (outside any lock), after which no entry is
    /// written.
    pub(super) fn stop(&mut self) -> Option<JoinHandle<()>> {
        self.cancel.cancel();
        self.task.take()
    }
}

async fn write_traffic(
    nodes: Vec<(String, NodeHandle)>,
    options: TrafficOptions,
    cancel: CancellationToken,
    written: Arc<AtomicU64>,
) {
    if nodes.is_empty() {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1) / options.per_second.max(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut warned = false;
    for n in 0..options.max_entries {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let (name, node) = &nodes[n as usize % nodes.len()];
        let payload = serde_json::json!({ "demo": "traffic", "from": name, "n": n + 1 });
        match node.put(&payload).await {
            Ok(_) => {
                written.fetch_add(1, Ordering::Relaxed);
            }
            Err(NodeError::ShuttingDown) => return,
            Err(e) => {
                if !warned {
                    warned = true;
                    tracing::warn!("demo traffic: {name} refused an entry: {e}");
                }
            }
        }
    }
    tracing::info!("demo traffic stopped after {} entries", options.max_entries);
}

/// "Written during the cut: N, delivered to X of Y nodes".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CutCounter {
    /// When the cluster's P2P was cut (unix ms).
    pub since_ms: u64,
    /// When it was restored; none while the cut lasts. Entries written after it are
    /// not counted, so the counter keeps telling how the cut went.
    pub restored_ms: Option<u64>,
    /// Entries written anywhere in the cluster during the cut.
    pub written: usize,
    /// Of those, how many every node holds now.
    pub on_every_node: usize,
    /// The fewest nodes any of them is on: "delivered to X of Y" (Y when every entry
    /// reached every node, or when none was written).
    pub least_delivered: usize,
    pub nodes: usize,
}

#[derive(Debug)]
struct Window {
    since_ms: u64,
    restored_ms: Option<u64>,
    ids: BTreeSet<EntryId>,
}

impl Window {
    fn admit(&mut self, entries: impl IntoIterator<Item = Entry>) {
        for e in entries {
            let at = e.created_at();
            if at >= self.since_ms && self.restored_ms.is_none_or(|r| at < r) {
                self.ids.insert(e.id());
            }
        }
    }
}

/// Watches every node's commits from the cut on: an entry is first committed by the node
/// it was written on, whichever face wrote it, so nothing written in the cluster escapes.
pub(super) struct CutTracker {
    window: Arc<Mutex<Window>>,
    cancel: CancellationToken,
}

impl CutTracker {
    /// Subscribes before taking the start time, so no commit falls in between.
    pub(super) fn start(stores: &[Store]) -> CutTracker {
        let receivers: Vec<_> = stores.iter().map(|s| (s.clone(), s.subscribe())).collect();
        let window = Arc::new(Mutex::new(Window {
            since_ms: crate::time::now_ms(),
            restored_ms: None,
            ids: BTreeSet::new(),
        }));
        let cancel = CancellationToken::new();
        for (store, rx) in receivers {
            tokio::spawn(watch_commits(store, rx, window.clone(), cancel.clone()));
        }
        CutTracker { window, cancel }
    }

    pub(super) fn is_restored(&self) -> bool {
        self.lock().restored_ms.is_some()
    }

    pub(super) fn restored(&self) {
        let mut w = self.lock();
        if w.restored_ms.is_none() {
            w.restored_ms = Some(crate::time::now_ms());
        }
    }

    pub(super) fn counter(&self, stores: &[Store]) -> CutCounter {
        let w = self.lock();
        let mut on_every_node = 0;
        let mut least = stores.len();
        for id in &w.ids {
            let on = stores.iter().filter(|s| s.contains(id)).count();
            least = least.min(on);
            if on == stores.len() {
                on_every_node += 1;
            }
        }
        CutCounter {
            since_ms: w.since_ms,
            restored_ms: w.restored_ms,
            written: w.ids.len(),
            on_every_node,
            least_delivered: least,
            nodes: stores.len(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        self.window.lock().expect("not poisoned")
    }
}

impl Drop for CutTracker {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn watch_commits(
    store: Store,
    mut rx: broadcast::Receiver<Arc<[Entry]>>,
    window: Arc<Mutex<Window>>,
    cancel: CancellationToken,
) {
    loop {
        let got = tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            got = rx.recv() => got,
        };
        let entries: Vec<Entry> = match got {
            Ok(entries) => entries.to_vec(),
            Err(broadcast::error::RecvError::Lagged(_)) => match store.latest(LAG_SCAN) {
                Ok(entries) => entries,
                Err(e) => {
                    tracing::warn!("demo cut counter: {e}");
                    continue;
                }
            },
            Err(broadcast::error::RecvError::Closed) => return,
        };
        window.lock().expect("not poisoned").admit(entries);
    }
}

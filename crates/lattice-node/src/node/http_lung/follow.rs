//! Following a neighbour's event stream while the HTTP lung breathes: each entry it
//! announces is verified and stored at once, so a new entry arrives in about a second
//! instead of up to one poll interval. The poll remains the safety net.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::http::client::{EventStream, NeighborClient};
use crate::http::wire::paths;
use crate::ledger::{Entry, Store};
use crate::node::Command;
use crate::sync::reconcile::{self, Remote};
use crate::throttle::{LogThrottle, suppressed_note};

/// What a follower tells the actor, for the neighbour's status and the schedule.
#[derive(Debug)]
pub(in crate::node) enum FollowerReport {
    Connected,
    /// An entry it announced was new to us and is stored (for the HTTP lung's count).
    Stored,
    /// The session is over: the stream could not be opened, or ended, or (`forged`)
    /// the neighbour announced an entry that fails verification and the stream was
    /// dropped. When to try again is the schedule's decision.
    Ended {
        forged: Option<String>,
    },
}

pub(super) struct Follower {
    pub index: usize,
    /// The schedule's epoch of the HTTP lung this session belongs to.
    pub epoch: u64,
    pub client: NeighborClient,
    pub store: Store,
    pub commands: mpsc::WeakSender<Command>,
    pub max_payload: usize,
    /// `LATTICE_PEER_RATE` per neighbour: what it announces nobody asked for.
    pub unsolicited: std::sync::Arc<crate::node::unsolicited::Unsolicited>,
    /// A stream silent this long is reconnected.
    pub idle: Duration,
    pub cancel: CancellationToken,
}

/// How one session on the stream ended.
enum Ended {
    /// Closed, broke or went idle.
    Lost,
    Forged(String),
    Cancelled,
}

impl Follower {
    /// One session: the neighbour's ledger checked, the stream opened and followed
    /// until it ends. Cancelled with the lung: then nothing is reported.
    pub(super) async fn run(self) {
        let path = format!("{}?only=entries", paths::EVENTS);
        // Storing errors repeat for every entry while the store is down: a few lines each.
        let mut store_warnings = LogThrottle::default();
        // A neighbour of another ledger is never followed: its entries are not ours,
        // whoever signed them (on an open ledger anyone's would verify).
        let same_ledger = tokio::select! {
            _ = self.cancel.cancelled() => return,
            s = Remote::state(&self.client) => s
                .is_ok_and(|s| reconcile::check_ledger(&self.store, &s).is_ok()),
        };
        let opened = match same_ledger {
            false => None,
            true => tokio::select! {
                _ = self.cancel.cancelled() => return,
                s = self.client.events(&path, self.idle) => s.ok(),
            },
        };
        // Why it could not be opened is for the poll to tell (it is throttled there).
        let forged = match opened {
            Some(stream) => {
                self.report(FollowerReport::Connected).await;
                match self.session(stream, &mut store_warnings).await {
                    Ended::Cancelled => return,
                    Ended::Lost => None,
                    Ended::Forged(error) => Some(error),
                }
            }
            None => None,
        };
        self.report(FollowerReport::Ended { forged }).await;
    }

    async fn session(&self, mut stream: EventStream, store_warnings: &mut LogThrottle) -> Ended {
        loop {
            let next = tokio::select! {
                _ = self.cancel.cancelled() => return Ended::Cancelled,
                n = stream.next() => n,
            };
            match next {
                Some(Ok(ev)) if ev.event == "entry" => {
                    // Over the limit: dropped before it costs a verification; the poll
                    // (a reconciliation: asked for, so not limited) brings it later.
                    if !self.unsolicited.admit_event(self.client.base().as_str()) {
                        continue;
                    }
                    match Entry::from_json(&ev.data, self.max_payload) {
                        Ok(entry) => match self.store.append(entry).await {
                            Ok(a) if a.inserted => self.report(FollowerReport::Stored).await,
                            Ok(_) => {}
                            Err(e) => {
                                if let Some(held) = store_warnings.allow(std::time::Instant::now())
                                {
                                    tracing::warn!(
                                        "storing an entry from {}: {e}{}",
                                        self.client.base(),
                                        suppressed_note(held)
                                    );
                                }
                            }
                        },
                        // Dropping the stream closes the connection: nothing more is read.
                        Err(e) => return Ended::Forged(e.to_string()),
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Ended::Lost,
            }
        }
    }

    async fn report(&self, report: FollowerReport) {
        if let Some(tx) = self.commands.upgrade() {
            let _ = tx
                .send(Command::Follower {
                    index: self.index,
                    epoch: self.epoch,
                    report,
                })
                .await;
        }
    }
}

//! Following a neighbour's event stream while the HTTP lung breathes: each entry it
//! announces is verified and stored at once, so a new entry arrives in about a second
//! instead of up to one poll interval. The poll remains the safety net.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::backoff;
use crate::http::client::{EventStream, NeighborClient};
use crate::http::remote::paths;
use crate::ledger::{Entry, Store};
use crate::node::Command;
use crate::sync::reconcile::{self, Remote};
use crate::throttle::{LogThrottle, suppressed_note};

/// A stream that stayed up at least this long ended normally: the next try comes soon.
/// One that drops sooner counts as another failure, so a flapping neighbour is backed off.
const STABLE_STREAM: Duration = Duration::from_secs(5);

/// What a follower tells the actor, for the neighbour's status.
#[derive(Debug)]
pub(in crate::node) enum FollowerReport {
    Connected,
    /// An entry it announced was new to us and is stored (for the HTTP lung's count).
    Stored,
    /// The stream could not be opened, or ended; the next try is in `retry_in`.
    Lost {
        retry_in: Duration,
    },
    /// The neighbour announced an entry that fails verification: the stream was dropped
    /// and the next try is in `retry_in` (failures caught forging are never forgiven by
    /// a mere reconnect).
    Forged {
        error: String,
        retry_in: Duration,
    },
}

pub(super) struct Follower {
    pub index: usize,
    pub client: NeighborClient,
    pub store: Store,
    pub commands: mpsc::WeakSender<Command>,
    pub max_payload: usize,
    /// A stream silent this long is reconnected.
    pub idle: Duration,
    /// The first retry's wait, and the longest.
    pub retry_base: Duration,
    pub retry_cap: Duration,
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
    pub(super) async fn run(self) {
        let path = format!("{}?only=entries", paths::EVENTS);
        let mut failures = 0u32;
        // Storing errors repeat for every entry while the store is down: a few lines each.
        let mut store_warnings = LogThrottle::default();
        while !self.cancel.is_cancelled() {
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
            let report = match opened {
                Some(stream) => {
                    self.report(FollowerReport::Connected).await;
                    let since = tokio::time::Instant::now();
                    match self.session(stream, &mut store_warnings).await {
                        Ended::Cancelled => return,
                        Ended::Lost => {
                            failures = if since.elapsed() >= STABLE_STREAM {
                                1
                            } else {
                                failures.saturating_add(1)
                            };
                            None
                        }
                        Ended::Forged(error) => {
                            failures = failures.saturating_add(1);
                            Some(error)
                        }
                    }
                }
                None => {
                    // Why is for the poll to tell (it is throttled there); a follower only
                    // retries.
                    failures = failures.saturating_add(1);
                    None
                }
            };
            let retry_in = backoff::jittered(
                failures,
                self.retry_base,
                self.retry_cap,
                backoff::random_jitter(),
            );
            self.report(match report {
                Some(error) => FollowerReport::Forged { error, retry_in },
                None => FollowerReport::Lost { retry_in },
            })
            .await;
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = tokio::time::sleep(retry_in) => {}
            }
        }
    }

    async fn session(&self, mut stream: EventStream, store_warnings: &mut LogThrottle) -> Ended {
        loop {
            let next = tokio::select! {
                _ = self.cancel.cancelled() => return Ended::Cancelled,
                n = stream.next() => n,
            };
            match next {
                Some(Ok(ev)) if ev.event == "entry" => {
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
                    report,
                })
                .await;
        }
    }
}

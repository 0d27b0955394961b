//! `LATTICE_PEER_RATE` on the HTTP lung: entries pushed to our API (keyed by the
//! caller's IP address: the API token is shared, so the address is the one identity a
//! caller cannot multiply cheaply) and entries a followed neighbour announces on its
//! event stream (keyed by the neighbour's URL). The P2P lung's gossip has its own buckets
//! in the swarm task. What this node fetched in a reconciliation never passes here.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::PeerRate;
use crate::metrics::{Metrics, SourceLabel};
use crate::p2p::rate::RateLimiter;
use crate::throttle::{LogThrottle, suppressed_note};

struct Limited<K> {
    limiter: RateLimiter<K>,
    warnings: LogThrottle,
}

impl<K: std::hash::Hash + Eq + Clone> Limited<K> {
    fn new(rate: Option<PeerRate>) -> Self {
        Self {
            limiter: RateLimiter::new(rate),
            warnings: LogThrottle::default(),
        }
    }
}

/// What a push may store: its first `taken` entries; the rest were dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PushAllowance {
    pub taken: usize,
    pub dropped: usize,
    /// When the caller may push one entry again.
    pub retry_after: Duration,
}

/// Shared by the node's handle (HTTP push) and its actor (event-stream followers).
pub(crate) struct Unsolicited {
    rate: Option<PeerRate>,
    push: Mutex<Limited<IpAddr>>,
    events: Mutex<Limited<String>>,
    metrics: Metrics,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Unsolicited {
    pub(crate) fn new(rate: Option<PeerRate>, metrics: Metrics) -> Self {
        Self {
            rate,
            push: Mutex::new(Limited::new(rate)),
            events: Mutex::new(Limited::new(rate)),
            metrics,
        }
    }

    /// The configured limit, as messages say it.
    pub(crate) fn describe(&self) -> String {
        match self.rate {
            Some(r) => format!("{}/s, burst {}", r.per_second, r.burst),
            None => "unlimited".into(),
        }
    }

    /// Takes tokens for a push of `n` entries from `from`: the first ones while the
    /// bucket holds tokens (all at one instant, so they are a prefix), the rest dropped,
    /// counted and warned about (rate-limited).
    pub(crate) fn admit_push(&self, from: IpAddr, n: usize) -> PushAllowance {
        let now = Instant::now();
        let mut g = lock(&self.push);
        let taken = (0..n).filter(|_| g.limiter.allow(from, now)).count();
        let dropped = n - taken;
        let retry_after = g.limiter.retry_after(&from, now);
        if dropped > 0 {
            self.metrics
                .unsolicited_dropped
                .get_or_create(&SourceLabel {
                    source: "http_push".into(),
                })
                .inc_by(dropped as u64);
            if let Some(held) = g.warnings.allow(now) {
                tracing::warn!(
                    "[RATE] dropped {dropped} of {n} entries pushed by {from} over LATTICE_PEER_RATE ({}); {} dropped from it so far{}",
                    self.describe(),
                    g.limiter.dropped(&from),
                    suppressed_note(held)
                );
            }
        }
        PushAllowance {
            taken,
            dropped,
            retry_after,
        }
    }

    /// Whether one more entry announced on `neighbor`'s event stream may be stored; a
    /// dropped one is counted and warned about (rate-limited). The poll still brings it.
    pub(crate) fn admit_event(&self, neighbor: &str) -> bool {
        let now = Instant::now();
        let mut g = lock(&self.events);
        if g.limiter.allow(neighbor.to_string(), now) {
            return true;
        }
        self.metrics
            .unsolicited_dropped
            .get_or_create(&SourceLabel {
                source: "event_stream".into(),
            })
            .inc();
        if let Some(held) = g.warnings.allow(now) {
            tracing::warn!(
                "[RATE] dropped an entry announced on the event stream of {neighbor} over LATTICE_PEER_RATE ({}); {} dropped from it so far; the poll reconciles it{}",
                self.describe(),
                g.limiter.dropped(&neighbor.to_string()),
                suppressed_note(held)
            );
        }
        false
    }

    /// Entries of `neighbor`'s event stream dropped over the limit.
    pub(crate) fn event_dropped(&self, neighbor: &str) -> u64 {
        lock(&self.events).limiter.dropped(&neighbor.to_string())
    }
}

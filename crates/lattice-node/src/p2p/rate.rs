//! Per-peer limits on what nobody asked for: a token bucket per source for unsolicited
//! entries (a P2P peer's gossip, an HTTP caller's pushes, a followed neighbour's event
//! stream). Entries this node fetched in a reconciliation do not pass here, so a new
//! node catches up at full speed.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use libp2p::PeerId;

pub use crate::config::PeerRate;

/// Most sources remembered when nothing else bounds them (HTTP callers, unlike peers,
/// are not dropped on disconnect): full buckets are forgotten first, as they would be
/// created again full.
pub const MAX_SOURCES: usize = 4096;

struct Bucket {
    tokens: f64,
    at: Instant,
    dropped: u64,
}

/// One bucket per source. For peers the map is bounded by the connection limit (a
/// bucket is dropped on disconnect); otherwise by [`MAX_SOURCES`].
pub struct RateLimiter<K = PeerId> {
    rate: Option<PeerRate>,
    buckets: HashMap<K, Bucket>,
}

impl<K> Default for RateLimiter<K> {
    fn default() -> Self {
        Self {
            rate: None,
            buckets: HashMap::new(),
        }
    }
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub fn new(rate: Option<PeerRate>) -> Self {
        Self {
            rate,
            buckets: HashMap::new(),
        }
    }

    pub fn rate(&self) -> Option<PeerRate> {
        self.rate
    }

    /// Takes one token from `source`'s bucket; `false` (counted) when it is empty.
    pub fn allow(&mut self, source: K, now: Instant) -> bool {
        let Some(rate) = self.rate else {
            return true;
        };
        if self.buckets.len() >= MAX_SOURCES && !self.buckets.contains_key(&source) {
            self.prune(now);
        }
        let b = self.buckets.entry(source).or_insert(Bucket {
            tokens: f64::from(rate.burst),
            at: now,
            dropped: 0,
        });
        let refill = now.saturating_duration_since(b.at).as_secs_f64() * f64::from(rate.per_second);
        b.tokens = (b.tokens + refill).min(f64::from(rate.burst));
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            b.dropped += 1;
            false
        }
    }

    /// How long until `source` may send one more entry (zero when it may now).
    pub fn retry_after(&self, source: &K, now: Instant) -> Duration {
        let (Some(rate), Some(b)) = (self.rate, self.buckets.get(source)) else {
            return Duration::ZERO;
        };
        let refill = now.saturating_duration_since(b.at).as_secs_f64() * f64::from(rate.per_second);
        let missing = 1.0 - (b.tokens + refill);
        if missing <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(missing / f64::from(rate.per_second))
        }
    }

    /// Entries of `source` dropped over the limit while it has been remembered.
    pub fn dropped(&self, source: &K) -> u64 {
        self.buckets.get(source).map_or(0, |b| b.dropped)
    }

    pub fn forget(&mut self, source: &K) {
        self.buckets.remove(source);
    }

    /// Forgets buckets that have refilled (nothing is lost: they would start full);
    /// if every one is still draining, the fullest goes.
    fn prune(&mut self, now: Instant) {
        let Some(rate) = self.rate else {
            return;
        };
        let level = |b: &Bucket| {
            b.tokens
                + now.saturating_duration_since(b.at).as_secs_f64() * f64::from(rate.per_second)
        };
        self.buckets.retain(|_, b| level(b) < f64::from(rate.burst));
        if self.buckets.len() >= MAX_SOURCES {
            let fullest = self
                .buckets
                .iter()
                .max_by(|x, y| level(x.1).total_cmp(&level(y.1)))
                .map(|(k, _)| k.clone());
            if let Some(k) = fullest {
                self.buckets.remove(&k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_refills_and_the_excess_is_counted() {
        let mut l = RateLimiter::new(Some(PeerRate {
            per_second: 10,
            burst: 3,
        }));
        let (p, q) = (PeerId::random(), PeerId::random());
        let t = Instant::now();
        assert!((0..3).all(|_| l.allow(p, t)));
        assert!(!l.allow(p, t));
        assert!(!l.allow(p, t));
        assert_eq!(l.dropped(&p), 2);
        assert!(l.allow(q, t), "each peer has its own bucket");
        assert!(
            l.allow(p, t + Duration::from_millis(100)),
            "one token per 100 ms"
        );
        assert!(!l.allow(p, t + Duration::from_millis(100)));
        assert!(
            (0..3).all(|_| l.allow(p, t + Duration::from_secs(10))),
            "capped at the burst"
        );
        assert!(!l.allow(p, t + Duration::from_secs(10)));
        l.forget(&p);
        assert_eq!(l.dropped(&p), 0);
        let mut off = RateLimiter::new(None);
        assert!((0..10_000).all(|_| off.allow(p, t)));
    }

    #[test]
    fn retry_after_says_when_the_next_token_comes_and_sources_beyond_the_cap_evict_full_buckets() {
        let mut l: RateLimiter<u32> = RateLimiter::new(Some(PeerRate {
            per_second: 4,
            burst: 4,
        }));
        let t = Instant::now();
        assert_eq!(l.retry_after(&1, t), Duration::ZERO, "unknown: may send");
        assert!((0..4).all(|_| l.allow(1, t)));
        assert!(!l.allow(1, t));
        assert_eq!(l.retry_after(&1, t), Duration::from_millis(250));
        assert_eq!(
            l.retry_after(&1, t + Duration::from_millis(250)),
            Duration::ZERO
        );

        // Beyond the cap the fullest buckets go first: source 1 (nearly empty) stays.
        let later = t + Duration::from_millis(100);
        for k in 2..MAX_SOURCES as u32 + 10 {
            assert!(l.allow(k, later));
        }
        assert!(l.buckets.len() <= MAX_SOURCES);
        assert_eq!(l.dropped(&1), 1, "the draining bucket is kept");
    }
}

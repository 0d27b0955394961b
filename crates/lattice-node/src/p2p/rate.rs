//! Per-peer limits on what nobody asked for: a token bucket per peer for gossiped
//! entries. Entries this node fetched in a reconciliation do not pass here, so a new
//! node catches up at full speed.

use std::collections::HashMap;
use std::time::Instant;

use libp2p::PeerId;

pub use crate::config::PeerRate;

struct Bucket {
    tokens: f64,
    at: Instant,
    dropped: u64,
}

/// One bucket per connected peer (dropped on disconnect, so the map is bounded by the
/// connection limit).
#[derive(Default)]
pub struct RateLimiter {
    rate: Option<PeerRate>,
    buckets: HashMap<PeerId, Bucket>,
}

impl RateLimiter {
    pub fn new(rate: Option<PeerRate>) -> Self {
        Self {
            rate,
            buckets: HashMap::new(),
        }
    }

    /// Takes one token from `peer`'s bucket; `false` (counted) when it is empty.
    pub fn allow(&mut self, peer: PeerId, now: Instant) -> bool {
        let Some(rate) = self.rate else {
            return true;
        };
        let b = self.buckets.entry(peer).or_insert(Bucket {
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

    /// Entries of `peer` dropped over the limit while it has been connected.
    pub fn dropped(&self, peer: &PeerId) -> u64 {
        self.buckets.get(peer).map_or(0, |b| b.dropped)
    }

    pub fn forget(&mut self, peer: &PeerId) {
        self.buckets.remove(peer);
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
}

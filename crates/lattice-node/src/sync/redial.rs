//! When to dial peers again: the bootstrap peers at start, and every peer that was a
//! sync peer (bootstrap or learned) again after each lost connection or failed dial,
//! with a capped, jittered exponential backoff. Capped so a long partition does not
//! leave a node waiting minutes after the heal; jittered so a peer that comes back is
//! not hit by every node at the same instant.
//!
//! Pure, like the schedule and liveness: generic over what names a peer (`P`) and an
//! address (`A`), on steady milliseconds, with the random seed passed in. The swarm
//! task dials what it says (libp2p PeerIds and Multiaddrs); the simulator runs it over
//! node indices.

use std::time::Duration;

/// Learned (non-bootstrap) peers remembered at most; the earliest learned goes first.
const MAX_LEARNED: usize = 64;
/// Addresses kept per learned peer (identify may report many).
const MAX_ADDRS: usize = 8;
/// A learned peer that failed this many dials in a row is forgotten (at a 30 s cap,
/// about an hour): it may have left the network for good. Bootstrap peers never are.
const FORGET_AFTER_FAILURES: u32 = 120;

#[derive(Clone, Debug)]
struct Target<P, A> {
    peer: P,
    addrs: Vec<A>,
    /// Configured by the operator: its address is authoritative and it is never forgotten.
    bootstrap: bool,
    /// The backoff's base, in ms; each actual delay is jittered within its upper half.
    backoff: u64,
    next_dial: Option<u64>,
    failures: u32,
    /// Order of learning, to evict the earliest when full.
    learned_seq: u64,
}

/// The redial schedule. See the module documentation.
#[derive(Clone, Debug)]
pub struct Redial<P, A> {
    targets: Vec<Target<P, A>>,
    min: u64,
    max: u64,
    paused: bool,
    rng: u64,
    learned_seq: u64,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl<P: Clone + PartialEq, A: Clone + PartialEq> Redial<P, A> {
    /// The bootstrap peers (a peer may come with several addresses) are all due at
    /// `now_ms`. `seed` drives the jitter: pass fresh randomness, or a fixed seed in tests.
    pub fn new(
        bootstrap: Vec<(P, A)>,
        min: Duration,
        max: Duration,
        now_ms: u64,
        seed: u64,
    ) -> Self {
        let (min, max) = (ms(min).max(1), ms(max));
        let mut targets: Vec<Target<P, A>> = Vec::new();
        for (peer, addr) in bootstrap {
            match targets.iter_mut().find(|t| t.peer == peer) {
                Some(t) => t.addrs.push(addr),
                None => targets.push(Target {
                    peer,
                    addrs: vec![addr],
                    bootstrap: true,
                    backoff: min,
                    next_dial: Some(now_ms),
                    failures: 0,
                    learned_seq: 0,
                }),
            }
        }
        Redial {
            targets,
            min,
            max: max.max(min),
            paused: false,
            rng: seed,
            learned_seq: 0,
        }
    }

    /// `peer` became a sync peer and told us where it listens (only dialable addresses:
    /// the caller leaves out unspecified ones): it will be redialed there when lost. A
    /// bootstrap peer keeps its configured address (what it reports may be a private
    /// address behind the one the operator gave).
    pub fn learn(&mut self, peer: P, addrs: Vec<A>) {
        let mut addrs: Vec<A> = addrs.into_iter().take(MAX_ADDRS).collect();
        addrs.dedup();
        if let Some(t) = self.targets.iter_mut().find(|t| t.peer == peer) {
            if !t.bootstrap && !addrs.is_empty() {
                t.addrs = addrs;
            }
            return;
        }
        if addrs.is_empty() {
            return;
        }
        if self.targets.iter().filter(|t| !t.bootstrap).count() >= MAX_LEARNED
            && let Some(oldest) = self
                .targets
                .iter()
                .enumerate()
                .filter(|(_, t)| !t.bootstrap)
                .min_by_key(|(_, t)| t.learned_seq)
                .map(|(i, _)| i)
        {
            self.targets.swap_remove(oldest);
        }
        self.learned_seq += 1;
        self.targets.push(Target {
            peer,
            addrs,
            bootstrap: false,
            backoff: self.min,
            next_dial: None,
            failures: 0,
            learned_seq: self.learned_seq,
        });
    }

    /// Whether `peer` is one we redial.
    #[cfg(test)]
    pub fn knows(&self, peer: &P) -> bool {
        self.targets.iter().any(|t| t.peer == *peer)
    }

    /// The earliest pending dial, if any (none while paused).
    pub fn next_at(&self) -> Option<u64> {
        if self.paused {
            return None;
        }
        self.targets.iter().filter_map(|t| t.next_dial).min()
    }

    /// The dials whose time has come, with the addresses to try; each is taken off the
    /// schedule.
    pub fn take_due(&mut self, now_ms: u64) -> Vec<(P, Vec<A>)> {
        if self.paused {
            return Vec::new();
        }
        self.targets
            .iter_mut()
            .filter(|t| t.next_dial.is_some_and(|at| at <= now_ms))
            .map(|t| {
                t.next_dial = None;
                (t.peer.clone(), t.addrs.clone())
            })
            .collect()
    }

    /// A connection to `peer` was lost or a dial failed: try again after the current
    /// backoff, jittered within its upper half; the backoff then doubles up to the
    /// maximum. Returns the delay, if scheduled.
    pub fn failed(&mut self, peer: &P, now_ms: u64) -> Option<Duration> {
        if self.paused {
            return None;
        }
        let max = self.max;
        let i = self.targets.iter().position(|t| t.peer == *peer)?;
        if self.targets[i].next_dial.is_some() {
            return None;
        }
        self.targets[i].failures += 1;
        let t = &self.targets[i];
        if !t.bootstrap && t.failures > FORGET_AFTER_FAILURES {
            self.targets.swap_remove(i);
            return None;
        }
        let base = t.backoff;
        let delay = self.jitter(base);
        let t = &mut self.targets[i];
        t.next_dial = Some(now_ms.saturating_add(delay));
        t.backoff = base.saturating_mul(2).min(max);
        Some(Duration::from_millis(delay))
    }

    /// Connected to `peer`: the backoff starts over.
    pub fn connected(&mut self, peer: &P) {
        let min = self.min;
        if let Some(t) = self.targets.iter_mut().find(|t| t.peer == *peer) {
            t.backoff = min;
            t.next_dial = None;
            t.failures = 0;
        }
    }

    /// Blocked: no dials at all until [`Redial::resume`].
    pub fn pause(&mut self) {
        self.paused = true;
        for t in &mut self.targets {
            t.next_dial = None;
        }
    }

    /// Unblocked (by this node's operator): every known peer is due now, with a fresh
    /// backoff.
    pub fn resume(&mut self, now_ms: u64) {
        self.paused = false;
        for t in &mut self.targets {
            t.backoff = self.min;
            t.next_dial = Some(now_ms);
        }
    }

    /// A delay in `[base / 2, base]` ms, uniformly (splitmix64 over the seed).
    fn jitter(&mut self, base: u64) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let half = base / 2;
        let span = base - half;
        half + z % (span + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn ms_of(d: Duration) -> u64 {
        d.as_millis() as u64
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum_jittered_in_its_upper_half_and_resets_on_connect() {
        let now = 1_000;
        let mut r = Redial::new(vec![("p", "addr")], 10 * MS, 35 * MS, now, 7);
        assert_eq!(r.take_due(now).len(), 1, "dialed at start");
        assert_eq!(r.next_at(), None);
        let bases = [10 * MS, 20 * MS, 35 * MS, 35 * MS, 35 * MS];
        for base in bases {
            let d = r.failed(&"p", now).unwrap();
            assert!(
                d >= base / 2 && d <= base,
                "{d:?} within [{:?}, {base:?}]",
                base / 2
            );
            assert_eq!(r.take_due(now + ms_of(d)).len(), 1);
        }
        r.connected(&"p");
        let d = r.failed(&"p", now).unwrap();
        assert!(d <= 10 * MS, "the backoff started over: {d:?}");
        assert_eq!(r.failed(&"p", now), None, "one pending dial at a time");
    }

    #[test]
    fn nodes_with_different_seeds_do_not_redial_a_peer_at_the_same_instant() {
        let delays: Vec<Duration> = (0..8u64)
            .map(|seed| {
                let s8 = Duration::from_secs(8);
                let mut r = Redial::new(vec![("p", "addr")], s8, s8, 0, seed);
                r.take_due(0);
                r.failed(&"p", 0).unwrap()
            })
            .collect();
        let mut distinct = delays.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), delays.len(), "{delays:?}");
        assert!(delays.iter().all(|d| *d >= Duration::from_secs(4)));
    }

    #[test]
    fn paused_means_no_dials_and_resume_dials_at_once() {
        let mut r = Redial::new(vec![("p", "addr")], 10 * MS, 40 * MS, 0, 1);
        r.pause();
        assert_eq!(r.next_at(), None);
        assert_eq!(r.failed(&"p", 0), None);
        assert!(r.take_due(1_000).is_empty());
        r.resume(5);
        assert_eq!(r.next_at(), Some(5));
    }

    #[test]
    fn unknown_peers_are_not_redialed() {
        let mut r = Redial::new(vec![("p", "addr")], MS, MS, 0, 1);
        assert_eq!(r.failed(&"q", 0), None);
    }

    #[test]
    fn a_learned_sync_peer_is_redialed_at_the_addresses_it_listens_on() {
        let mut r: Redial<&str, &str> = Redial::new(vec![], 10 * MS, 40 * MS, 0, 1);
        r.learn("p", vec!["listen", "listen"]);
        assert_eq!(r.next_at(), None, "learning is not a reason to dial");
        let d = r.failed(&"p", 0).unwrap();
        assert_eq!(r.take_due(ms_of(d)), vec![("p", vec!["listen"])]);
    }

    #[test]
    fn a_bootstrap_peer_keeps_its_configured_address() {
        let mut r = Redial::new(vec![("p", "configured")], MS, MS, 0, 1);
        r.take_due(0);
        r.learn("p", vec!["private"]);
        let d = r.failed(&"p", 0).unwrap();
        assert_eq!(r.take_due(ms_of(d)), vec![("p", vec!["configured"])]);
    }

    #[test]
    fn learned_peers_are_bounded_and_forgotten_after_failing_for_long() {
        let mut r: Redial<u32, &str> = Redial::new(vec![], MS, MS, 0, 1);
        r.learn(0, vec!["a"]);
        for i in 1..=MAX_LEARNED as u32 {
            r.learn(i, vec!["a"]);
        }
        assert!(!r.knows(&0), "the earliest learned peer made room");
        let gone = 1_000;
        r.learn(gone, vec!["a"]);
        let mut now = 0;
        for _ in 0..FORGET_AFTER_FAILURES {
            let d = r.failed(&gone, now).unwrap();
            now += ms_of(d);
            r.take_due(now);
        }
        assert_eq!(r.failed(&gone, now), None);
        assert!(!r.knows(&gone));
    }
}

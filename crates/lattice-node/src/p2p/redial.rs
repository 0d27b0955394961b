//! When to dial peers again: the bootstrap peers at start, and every peer that was a
//! sync peer (bootstrap or learned) again after each lost connection or failed dial,
//! with a capped, jittered exponential backoff. Capped so a long partition does not
//! leave a node waiting minutes after the heal; jittered so a peer that comes back is
//! not hit by every node at the same instant. Pure: time and the random seed are passed
//! in, the swarm task does the dialing.

use std::time::Duration;

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use tokio::time::Instant;

use super::P2pError;

/// Learned (non-bootstrap) peers remembered at most; the earliest learned goes first.
const MAX_LEARNED: usize = 64;
/// Addresses kept per learned peer (identify may report many).
const MAX_ADDRS: usize = 8;
/// A learned peer that failed this many dials in a row is forgotten (at a 30 s cap,
/// about an hour): it may have left the network for good. Bootstrap peers never are.
const FORGET_AFTER_FAILURES: u32 = 120;

struct Target {
    peer: PeerId,
    addrs: Vec<Multiaddr>,
    /// Configured by the operator: its address is authoritative and it is never forgotten.
    bootstrap: bool,
    /// The backoff's base; each actual delay is jittered within its upper half.
    backoff: Duration,
    next_dial: Option<Instant>,
    failures: u32,
    /// Order of learning, to evict the earliest when full.
    learned_seq: u64,
}

pub(super) struct Redial {
    targets: Vec<Target>,
    min: Duration,
    max: Duration,
    paused: bool,
    rng: u64,
    learned_seq: u64,
}

impl Redial {
    /// Every bootstrap address must end in `/p2p/<peer id>`; all are due at `now`.
    /// `seed` drives the jitter: pass fresh randomness, or a fixed seed in tests.
    pub fn new(
        bootstrap: &[Multiaddr],
        min: Duration,
        max: Duration,
        now: Instant,
        seed: u64,
    ) -> Result<Self, P2pError> {
        let mut targets: Vec<Target> = Vec::new();
        for addr in bootstrap {
            let Some(Protocol::P2p(peer)) = addr.iter().last() else {
                return Err(P2pError::BootstrapWithoutPeerId(addr.clone()));
            };
            match targets.iter_mut().find(|t| t.peer == peer) {
                Some(t) => t.addrs.push(addr.clone()),
                None => targets.push(Target {
                    peer,
                    addrs: vec![addr.clone()],
                    bootstrap: true,
                    backoff: min,
                    next_dial: Some(now),
                    failures: 0,
                    learned_seq: 0,
                }),
            }
        }
        Ok(Redial {
            targets,
            min,
            max: max.max(min),
            paused: false,
            rng: seed,
            learned_seq: 0,
        })
    }

    /// `peer` became a sync peer and told us (by identify) where it listens: it will be
    /// redialed there when lost. A bootstrap peer keeps its configured address (what it
    /// reports may be a private address behind the one the operator gave).
    pub fn learn(&mut self, peer: PeerId, addrs: Vec<Multiaddr>) {
        let mut addrs: Vec<Multiaddr> = addrs
            .into_iter()
            .filter(|a| !is_unspecified(a))
            .take(MAX_ADDRS)
            .collect();
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
    pub fn knows(&self, peer: &PeerId) -> bool {
        self.targets.iter().any(|t| t.peer == *peer)
    }

    /// The earliest pending dial, if any (none while paused).
    pub fn next_at(&self) -> Option<Instant> {
        if self.paused {
            return None;
        }
        self.targets.iter().filter_map(|t| t.next_dial).min()
    }

    /// The dials whose time has come, with the addresses to try; each is taken off the
    /// schedule.
    pub fn take_due(&mut self, now: Instant) -> Vec<(PeerId, Vec<Multiaddr>)> {
        if self.paused {
            return Vec::new();
        }
        self.targets
            .iter_mut()
            .filter(|t| t.next_dial.is_some_and(|at| at <= now))
            .map(|t| {
                t.next_dial = None;
                (t.peer, t.addrs.clone())
            })
            .collect()
    }

    /// A connection to `peer` was lost or a dial failed: try again after the current
    /// backoff, jittered within its upper half; the backoff then doubles up to the
    /// maximum. Returns the delay, if scheduled.
    pub fn failed(&mut self, peer: &PeerId, now: Instant) -> Option<Duration> {
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
        t.next_dial = Some(now + delay);
        t.backoff = (base * 2).min(max);
        Some(delay)
    }

    /// Connected to `peer`: the backoff starts over.
    pub fn connected(&mut self, peer: &PeerId) {
        if let Some(t) = self.targets.iter_mut().find(|t| t.peer == *peer) {
            t.backoff = self.min;
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
    pub fn resume(&mut self, now: Instant) {
        self.paused = false;
        for t in &mut self.targets {
            t.backoff = self.min;
            t.next_dial = Some(now);
        }
    }

    /// A delay in `[base / 2, base]`, uniformly (splitmix64 over the seed).
    fn jitter(&mut self, base: Duration) -> Duration {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let half = base / 2;
        let span = (base - half).as_nanos() as u64;
        half + Duration::from_nanos(if span == 0 { 0 } else { z % (span + 1) })
    }
}

fn is_unspecified(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_unspecified(),
        Protocol::Ip6(ip) => ip.is_unspecified(),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer_addr() -> (PeerId, Multiaddr) {
        let peer = PeerId::random();
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        (peer, addr.with(Protocol::P2p(peer)))
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn an_address_without_a_peer_id_is_refused() {
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        assert!(Redial::new(&[addr], MS, MS, Instant::now(), 1).is_err());
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum_jittered_in_its_upper_half_and_resets_on_connect() {
        let now = Instant::now();
        let (peer, addr) = peer_addr();
        let mut r = Redial::new(&[addr], 10 * MS, 35 * MS, now, 7).unwrap();
        assert_eq!(r.take_due(now).len(), 1, "dialed at start");
        assert_eq!(r.next_at(), None);
        let bases = [10 * MS, 20 * MS, 35 * MS, 35 * MS, 35 * MS];
        for base in bases {
            let d = r.failed(&peer, now).unwrap();
            assert!(
                d >= base / 2 && d <= base,
                "{d:?} within [{:?}, {base:?}]",
                base / 2
            );
            assert_eq!(r.take_due(now + d).len(), 1);
        }
        r.connected(&peer);
        let d = r.failed(&peer, now).unwrap();
        assert!(d <= 10 * MS, "the backoff started over: {d:?}");
        assert_eq!(r.failed(&peer, now), None, "one pending dial at a time");
    }

    #[test]
    fn nodes_with_different_seeds_do_not_redial_a_peer_at_the_same_instant() {
        let now = Instant::now();
        let (peer, addr) = peer_addr();
        let delays: Vec<Duration> = (0..8u64)
            .map(|seed| {
                let mut r = Redial::new(
                    std::slice::from_ref(&addr),
                    Duration::from_secs(8),
                    Duration::from_secs(8),
                    now,
                    seed,
                )
                .unwrap();
                r.take_due(now);
                r.failed(&peer, now).unwrap()
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
        let now = Instant::now();
        let (peer, addr) = peer_addr();
        let mut r = Redial::new(&[addr], 10 * MS, 40 * MS, now, 1).unwrap();
        r.pause();
        assert_eq!(r.next_at(), None);
        assert_eq!(r.failed(&peer, now), None);
        assert!(r.take_due(now + Duration::from_secs(1)).is_empty());
        r.resume(now);
        assert_eq!(r.next_at(), Some(now));
    }

    #[test]
    fn unknown_peers_are_not_redialed() {
        let now = Instant::now();
        let (_, addr) = peer_addr();
        let mut r = Redial::new(&[addr], MS, MS, now, 1).unwrap();
        assert_eq!(r.failed(&PeerId::random(), now), None);
    }

    #[test]
    fn a_learned_sync_peer_is_redialed_at_the_addresses_it_listens_on() {
        let now = Instant::now();
        let mut r = Redial::new(&[], 10 * MS, 40 * MS, now, 1).unwrap();
        let peer = PeerId::random();
        let listen: Multiaddr = "/ip4/127.0.0.1/tcp/4100".parse().unwrap();
        let any: Multiaddr = "/ip4/0.0.0.0/tcp/4100".parse().unwrap();
        r.learn(peer, vec![any, listen.clone()]);
        assert_eq!(r.next_at(), None, "learning is not a reason to dial");
        let d = r.failed(&peer, now).unwrap();
        assert_eq!(r.take_due(now + d), vec![(peer, vec![listen])]);
    }

    #[test]
    fn a_bootstrap_peer_keeps_its_configured_address() {
        let now = Instant::now();
        let (peer, addr) = peer_addr();
        let mut r = Redial::new(std::slice::from_ref(&addr), MS, MS, now, 1).unwrap();
        r.take_due(now);
        r.learn(peer, vec!["/ip4/10.0.0.9/tcp/4001".parse().unwrap()]);
        let d = r.failed(&peer, now).unwrap();
        assert_eq!(r.take_due(now + d), vec![(peer, vec![addr])]);
    }

    #[test]
    fn learned_peers_are_bounded_and_forgotten_after_failing_for_long() {
        let now = Instant::now();
        let mut r = Redial::new(&[], MS, MS, now, 1).unwrap();
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/4100".parse().unwrap();
        let first = PeerId::random();
        r.learn(first, vec![addr.clone()]);
        for _ in 0..MAX_LEARNED {
            r.learn(PeerId::random(), vec![addr.clone()]);
        }
        assert!(!r.knows(&first), "the earliest learned peer made room");
        let gone = PeerId::random();
        r.learn(gone, vec![addr]);
        for _ in 0..FORGET_AFTER_FAILURES {
            let d = r.failed(&gone, now).unwrap();
            r.take_due(now + d);
        }
        assert_eq!(r.failed(&gone, now), None);
        assert!(!r.knows(&gone));
    }
}

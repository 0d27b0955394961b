//! When to dial the bootstrap peers: at start, and again with exponential backoff after
//! each lost connection or failed dial, so a peer that comes back is found without a
//! restart. Pure: time is passed in, the swarm task does the dialing.

use std::time::Duration;

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use tokio::time::Instant;

use super::P2pError;

struct Target {
    peer: PeerId,
    addr: Multiaddr,
    backoff: Duration,
    next_dial: Option<Instant>,
}

pub(super) struct Redial {
    targets: Vec<Target>,
    min: Duration,
    max: Duration,
    paused: bool,
}

impl Redial {
    /// Every address must end in `/p2p/<peer id>`; all are due at `now`.
    pub fn new(
        bootstrap: &[Multiaddr],
        min: Duration,
        max: Duration,
        now: Instant,
    ) -> Result<Self, P2pError> {
        let targets = bootstrap
            .iter()
            .map(|addr| match addr.iter().last() {
                Some(Protocol::P2p(peer)) => Ok(Target {
                    peer,
                    addr: addr.clone(),
                    backoff: min,
                    next_dial: Some(now),
                }),
                _ => Err(P2pError::BootstrapWithoutPeerId(addr.clone())),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Redial {
            targets,
            min,
            max: max.max(min),
            paused: false,
        })
    }

    /// The earliest pending dial, if any (none while paused).
    pub fn next_at(&self) -> Option<Instant> {
        if self.paused {
            return None;
        }
        self.targets.iter().filter_map(|t| t.next_dial).min()
    }

    /// The dials whose time has come; each is taken off the schedule.
    pub fn take_due(&mut self, now: Instant) -> Vec<(PeerId, Multiaddr)> {
        if self.paused {
            return Vec::new();
        }
        self.targets
            .iter_mut()
            .filter(|t| t.next_dial.is_some_and(|at| at <= now))
            .map(|t| {
                t.next_dial = None;
                (t.peer, t.addr.clone())
            })
            .collect()
    }

    /// A connection to `peer` was lost or a dial failed: try again after the current
    /// backoff, which then doubles up to the maximum. Returns the delay, if scheduled.
    pub fn failed(&mut self, peer: &PeerId, now: Instant) -> Option<Duration> {
        if self.paused {
            return None;
        }
        let max = self.max;
        let t = self.targets.iter_mut().find(|t| t.peer == *peer)?;
        if t.next_dial.is_some() {
            return None;
        }
        let delay = t.backoff;
        t.next_dial = Some(now + delay);
        t.backoff = (delay * 2).min(max);
        Some(delay)
    }

    /// Connected to `peer`: the backoff starts over.
    pub fn connected(&mut self, peer: &PeerId) {
        if let Some(t) = self.targets.iter_mut().find(|t| t.peer == *peer) {
            t.backoff = self.min;
            t.next_dial = None;
        }
    }

    /// Blocked: no dials at all until [`Redial::resume`].
    pub fn pause(&mut self) {
        self.paused = true;
        for t in &mut self.targets {
            t.next_dial = None;
        }
    }

    /// Unblocked: every bootstrap peer is due now, with a fresh backoff.
    pub fn resume(&mut self, now: Instant) {
        self.paused = false;
        for t in &mut self.targets {
            t.backoff = self.min;
            t.next_dial = Some(now);
        }
    }
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
        assert!(Redial::new(&[addr], MS, MS, Instant::now()).is_err());
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum_and_resets_on_connect() {
        let now = Instant::now();
        let (peer, addr) = peer_addr();
        let mut r = Redial::new(&[addr], 10 * MS, 35 * MS, now).unwrap();
        assert_eq!(r.take_due(now).len(), 1, "dialed at start");
        assert_eq!(r.next_at(), None);
        let delays: Vec<_> = (0..4)
            .map(|_| {
                let d = r.failed(&peer, now).unwrap();
                assert_eq!(r.take_due(now + d).len(), 1);
                d
            })
            .collect();
        assert_eq!(delays, [10 * MS, 20 * MS, 35 * MS, 35 * MS]);
        r.connected(&peer);
        assert_eq!(r.failed(&peer, now), Some(10 * MS));
        assert_eq!(r.failed(&peer, now), None, "one pending dial at a time");
    }

    #[test]
    fn paused_means_no_dials_and_resume_dials_at_once() {
        let now = Instant::now();
        let (peer, addr) = peer_addr();
        let mut r = Redial::new(&[addr], 10 * MS, 40 * MS, now).unwrap();
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
        let mut r = Redial::new(&[addr], MS, MS, now).unwrap();
        assert_eq!(r.failed(&PeerId::random(), now), None);
    }
}

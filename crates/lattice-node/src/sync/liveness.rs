//! When a connected peer is dead: it has been silent (no ping answered, no traffic) for
//! longer than the peer timeout. TCP alone keeps a blackholed connection "up" for
//! minutes and libp2p's ping closes nothing, so this is what makes a silent peer stop
//! counting. One rule on top: when this node itself was not running for longer than
//! the timeout (a suspended laptop, a stopped process), what it did not hear meanwhile
//! says nothing about its peers, and each gets a fresh timeout.
//!
//! Pure, like the schedule: the swarm task tells it who connected, who was heard from
//! and who went, and carries out its verdicts (disconnect); the simulator runs it over
//! simulated pings. Times are steady milliseconds.

use std::collections::BTreeMap;
use std::time::Duration;

/// What the caller must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict<P> {
    /// `peer` was silent for `silent_ms` (past the timeout): disconnect it; it no longer
    /// counts from now on.
    Dead { peer: P, silent_ms: u64 },
    /// This node was not running for `paused_ms`: every peer was given a fresh timeout
    /// (worth a log line).
    Resumed { paused_ms: u64 },
}

/// Deliberately wrong variants, compiled only into tests, to prove the simulator
/// catches a wrong liveness rule.
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Defect {
    /// Never declares a silent peer dead.
    KeepsSilentPeers,
}

/// The connected peers and when each was last heard from. See the module documentation.
#[derive(Clone, Debug)]
pub struct Liveness<P> {
    timeout_ms: u64,
    heard: BTreeMap<P, u64>,
    /// When [`Liveness::check`] last ran: a longer gap than the timeout is our own pause.
    checked_ms: u64,
    #[cfg(test)]
    pub(crate) defect: Option<Defect>,
}

impl<P: Ord + Clone> Liveness<P> {
    pub fn new(timeout: Duration, now_ms: u64) -> Self {
        Self {
            timeout_ms: u64::try_from(timeout.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
            heard: BTreeMap::new(),
            checked_ms: now_ms,
            #[cfg(test)]
            defect: None,
        }
    }

    /// A connection to `peer` opened: it counts as heard from now (a second connection
    /// to a known peer is heard from too).
    pub fn connected(&mut self, peer: P, now_ms: u64) {
        let at = self.heard.entry(peer).or_insert(now_ms);
        *at = (*at).max(now_ms);
    }

    /// Proof of life from `peer` (a ping answered, any message). Ignored for a peer not
    /// connected: a late answer does not bring a dead peer back, a new connection does.
    pub fn heard(&mut self, peer: &P, now_ms: u64) {
        if let Some(at) = self.heard.get_mut(peer) {
            *at = (*at).max(now_ms);
        }
    }

    /// Its last connection closed (or we closed it).
    pub fn gone(&mut self, peer: &P) {
        self.heard.remove(peer);
    }

    pub fn contains(&self, peer: &P) -> bool {
        self.heard.contains_key(peer)
    }

    /// The connected peers that are not (yet) judged dead, in order.
    pub fn peers(&self) -> impl Iterator<Item = &P> {
        self.heard.keys()
    }

    /// When the first peer's silence will have passed the timeout: check then.
    pub fn next_deadline(&self) -> Option<u64> {
        self.heard
            .values()
            .min()
            .map(|at| at.saturating_add(self.timeout_ms).saturating_add(1))
    }

    /// Judges every peer at `now_ms`: the dead are removed and returned, to disconnect.
    pub fn check(&mut self, now_ms: u64) -> Vec<Verdict<P>> {
        let gap = now_ms.saturating_sub(self.checked_ms);
        self.checked_ms = self.checked_ms.max(now_ms);
        if gap > self.timeout_ms {
            for at in self.heard.values_mut() {
                *at = (*at).max(now_ms);
            }
            return vec![Verdict::Resumed { paused_ms: gap }];
        }
        #[cfg(test)]
        if self.defect == Some(Defect::KeepsSilentPeers) {
            return Vec::new();
        }
        let timeout = self.timeout_ms;
        let dead: Vec<(P, u64)> = self
            .heard
            .iter()
            .map(|(p, at)| (p.clone(), now_ms.saturating_sub(*at)))
            .filter(|(_, silent)| *silent > timeout)
            .collect();
        dead.into_iter()
            .map(|(peer, silent_ms)| {
                self.heard.remove(&peer);
                Verdict::Dead { peer, silent_ms }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_000;

    fn live(now: u64) -> Liveness<&'static str> {
        Liveness::new(Duration::from_millis(T), now)
    }

    #[test]
    fn a_peer_heard_within_the_timeout_lives_and_one_silent_past_it_dies() {
        let mut l = live(0);
        l.connected("a", 0);
        l.connected("b", 0);
        l.check(500);
        l.heard(&"a", 900);
        assert_eq!(l.check(1_000), vec![], "exactly the timeout is not past it");
        assert_eq!(
            l.check(1_001),
            vec![Verdict::Dead {
                peer: "b",
                silent_ms: 1_001
            }]
        );
        assert_eq!(l.peers().collect::<Vec<_>>(), vec![&"a"]);
        assert_eq!(
            l.check(1_901),
            vec![Verdict::Dead {
                peer: "a",
                silent_ms: 1_001
            }]
        );
        assert_eq!(l.peers().count(), 0);
    }

    #[test]
    fn the_deadline_is_the_first_silence_past_the_timeout() {
        let mut l = live(0);
        assert_eq!(l.next_deadline(), None);
        l.connected("a", 100);
        l.connected("b", 300);
        assert_eq!(l.next_deadline(), Some(1_101));
        l.heard(&"a", 700);
        assert_eq!(l.next_deadline(), Some(1_301));
    }

    #[test]
    fn a_late_answer_does_not_bring_a_dead_peer_back_but_a_new_connection_does() {
        let mut l = live(0);
        l.connected("a", 0);
        l.check(800);
        assert_eq!(l.check(1_500).len(), 1);
        l.heard(&"a", 1_600);
        assert!(!l.contains(&"a"));
        l.connected("a", 1_700);
        assert!(l.contains(&"a"));
        l.gone(&"a");
        assert!(!l.contains(&"a"));
    }

    #[test]
    fn a_heard_time_never_goes_back() {
        let mut l = live(0);
        l.connected("a", 500);
        l.heard(&"a", 200);
        l.connected("a", 100);
        assert_eq!(l.next_deadline(), Some(1_501));
    }

    #[test]
    fn our_own_pause_gives_every_peer_a_fresh_timeout() {
        let mut l = live(0);
        l.connected("a", 0);
        // Frozen from 0 to 5 s: nobody is judged by what we could not hear.
        assert_eq!(l.check(5_000), vec![Verdict::Resumed { paused_ms: 5_000 }]);
        assert!(l.contains(&"a"));
        assert_eq!(l.check(5_900), vec![]);
        assert_eq!(l.check(6_001).len(), 1, "then silence counts again");
    }
}

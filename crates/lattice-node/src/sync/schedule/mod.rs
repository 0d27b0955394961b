//! The sync schedule: every decision the node makes about what sync work to do, and
//! when. Which lung carries sync ([`Lungs`] inside), which HTTP neighbour is due for a
//! sync or a standby check and how long a failing one is backed off, when the P2P lung
//! runs a reconciliation round and with whom, gossip on or off, and when each
//! neighbour's event-stream follower runs.
//!
//! Pure, in the manner of iroh-gossip's `proto::State`: [`Input`]s and the time (steady
//! unix milliseconds, the same clock the snapshot shows) go in, [`Action`]s come out, and
//! the next instant anything is due is data ([`Schedule::next_wakeup`]). No I/O, no
//! clock, no spawning, no logging: the node actor carries the actions out and the
//! simulator (`sync::sim`) runs many schedules on a virtual clock.

use std::collections::HashSet;
use std::time::Duration;

use crate::sync::Mode;
use crate::sync::lungs::{Lung, LungEvent, Lungs, LungsSnapshot};
use crate::sync::states::Situation;

pub mod backoff;
#[cfg(test)]
mod tests;

/// Longest wait between attempts to a failing neighbour, in poll intervals: while HTTP
/// carries sync it may be the only way in, so one that comes back (a reboot during a long
/// fallback) must be found within a minute at the default poll, not five.
pub const MAX_BACKOFF_POLLS: u32 = 6;
/// The event-stream follower's first retry, at most (never more than one poll).
pub const FOLLOW_RETRY_BASE: Duration = Duration::from_millis(250);
/// The follower's longest wait between tries.
pub const FOLLOW_RETRY_CAP: Duration = Duration::from_secs(30);
/// A stream that stayed up at least this long ended normally: the next try comes soon.
/// One that drops sooner counts as another failure, so a flapping neighbour is backed off.
pub const STABLE_STREAM: Duration = Duration::from_secs(5);

/// The timers the schedule runs on (user configuration and the node's options).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    pub heartbeat: Duration,
    pub fallback_after: Duration,
    pub http_poll: Duration,
    /// How often the node reconciles with every sync peer even when gossip seems fine.
    pub reconcile_every: Duration,
}

/// What happened. Times are not inside: the caller passes `now` with each input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Time passed (a timer the schedule asked for fired, or the caller just looks).
    Tick,
    /// The live sync-capable peers now, in the swarm's order. `sample`: the count is
    /// judged at once (the swarm said the sync peers changed), not at the next heartbeat,
    /// so the peerless timer starts when the last peer goes and P2P returns as soon as
    /// a peer does. `listen_known`: whether the P2P listen addresses are known yet.
    Peers {
        sync_peers: Vec<String>,
        sample: bool,
        listen_known: bool,
    },
    /// A peer became sync-capable: reconcile with it at once.
    NewSyncPeer(String),
    /// A sync or standby check with neighbour `index` ended.
    NeighborDone {
        index: usize,
        outcome: NeighborOutcome,
    },
    /// The P2P reconciliation with this peer ended (whatever the result).
    PeerSyncDone(String),
    /// The follower of neighbour `index` opened the stream (`epoch` as in
    /// [`Action::Follow`]).
    FollowerConnected {
        index: usize,
        epoch: u64,
    },
    /// The follower's session ended: the stream could not be opened, broke, went idle,
    /// or the neighbour announced a forged entry on it (`forged`).
    FollowerEnded {
        index: usize,
        epoch: u64,
        forged: bool,
    },
    /// Our root changed: the peers' roots we hold may be stale.
    EntryCommitted,
    SetMode(Mode),
    SetP2pBlocked(bool),
}

/// How a piece of work with a neighbour ended, as the schedule needs to know it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NeighborOutcome {
    /// Stopped by the standby (or shutdown): not the neighbour's doing.
    Cancelled,
    /// The standby check answered, with our ledger.
    CheckAnswered,
    /// The standby check failed (or named another ledger): tried again every poll, it is
    /// cheap, and the reserve must be seen to come back.
    CheckFailed,
    Synced,
    /// A sync failed while HTTP was needed: one more strike, and the backoff it earns.
    SyncFailed,
}

/// What the node must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Tell the world (log, event stream, transitions record).
    Lung(LungEvent),
    /// The HTTP lung now carries sync (log it; work started from now on belongs to it).
    HttpLungActive,
    /// The HTTP lung went to standby: cancel its syncs and followers.
    HttpLungStandby,
    /// Reconcile with neighbour `index` over HTTP.
    SyncNeighbor {
        index: usize,
    },
    /// Ask neighbour `index` for its state only (standby check).
    CheckNeighbor {
        index: usize,
    },
    /// Run one session of neighbour `index`'s event-stream follower; it reports
    /// [`Input::FollowerConnected`] and [`Input::FollowerEnded`] with this `epoch`.
    Follow {
        index: usize,
        epoch: u64,
    },
    /// Reconcile with this peer over P2P.
    SyncPeer(String),
    SetGossip(bool),
    /// Cut P2P for real (every connection closed, new ones refused) or restore it; then
    /// report the peers ([`Input::Peers`]).
    BlockP2p(bool),
    /// Ask the swarm for its peers and listen addresses, and report them.
    RefreshPeers,
}

/// What a neighbour's status shows of the schedule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NeighborView {
    /// When the next attempt is due while backing off.
    pub next_attempt_ms: Option<u64>,
    pub events_connected: bool,
    /// When the follower tries again after losing or failing to open the stream.
    pub events_next_attempt_ms: Option<u64>,
}

#[derive(Clone, Debug, Default)]
struct Neighbor {
    in_flight: bool,
    /// None: due at once.
    due_ms: Option<u64>,
    /// Syncs failed and forgeries caught in a row since the lung activated: what the
    /// backoff grows with. Standby checks do not count, or a neighbour that was down
    /// for an hour of standby would be waited for minutes once it is needed.
    strikes: u32,
    view: NeighborView,
    follow: Follow,
}

#[derive(Clone, Debug, Default)]
struct Follow {
    running: bool,
    /// When the next session starts (None while one runs, or on standby).
    next_ms: Option<u64>,
    failures: u32,
    connected_at_ms: Option<u64>,
}

#[derive(Clone, Debug)]
struct P2p {
    blocked: bool,
    sync_peers: Vec<String>,
    listen_known: bool,
    in_flight: HashSet<String>,
    /// Gossip state last asked of the swarm.
    gossip: Option<bool>,
    /// Reconcile with every sync peer at the next chance (P2P just restored).
    round_due: bool,
    roots_stale: bool,
    last_round_ms: u64,
}

/// The state machine. See the module documentation.
#[derive(Clone, Debug)]
pub struct Schedule {
    timers: Timers,
    lungs: Lungs,
    neighbors: Vec<Neighbor>,
    p2p: P2p,
    /// Whether the HTTP lung's work (syncs, followers) is running.
    http_active: bool,
    /// Followers' sessions carry it, so a late report from a cancelled one is ignored.
    epoch: u64,
    next_heartbeat_ms: u64,
    /// Drives the backoff jitter (splitmix64): the caller seeds it, the simulator with
    /// its schedule's seed.
    rng: u64,
    #[cfg(test)]
    pub(crate) defect: Option<Defect>,
}

/// Deliberately wrong variants, compiled only into tests, to prove the simulator
/// catches a wrong core.
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Defect {
    /// The heartbeat counts one peer more than are live (a dead peer counted as live).
    CountsADeadPeer,
}

impl Schedule {
    /// A schedule for `neighbors` HTTP neighbours, started at `now_ms` (the heartbeat
    /// starts at once, as the actor's first beat does).
    pub fn new(mode: Mode, timers: Timers, neighbors: usize, seed: u64, now_ms: u64) -> Self {
        Self {
            timers,
            lungs: Lungs::new(mode, timers.fallback_after),
            neighbors: vec![Neighbor::default(); neighbors],
            p2p: P2p {
                blocked: false,
                sync_peers: Vec::new(),
                listen_known: false,
                in_flight: HashSet::new(),
                gossip: None,
                round_due: false,
                roots_stale: false,
                last_round_ms: now_ms,
            },
            http_active: false,
            epoch: 0,
            next_heartbeat_ms: now_ms,
            rng: seed,
            #[cfg(test)]
            defect: None,
        }
    }

    /// Starts the heartbeat and beats once; then, as after every input, starts whatever
    /// is due.
    pub fn start(&mut self, now_ms: u64) -> Vec<Action> {
        let mut out = Vec::new();
        let events = self.lungs.start(now_ms);
        self.lung_events(events, &mut out);
        self.heartbeat(now_ms, &mut out);
        self.steer(now_ms, &mut out);
        out
    }

    /// Handles one input at `now_ms` and returns what to do, in order.
    pub fn handle(&mut self, now_ms: u64, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        match input {
            Input::Tick => {}
            Input::Peers {
                sync_peers,
                sample,
                listen_known,
            } => {
                self.p2p.sync_peers = sync_peers;
                self.p2p.listen_known = listen_known;
                if sample {
                    let events = self.lungs.tick(now_ms, self.counted_peers());
                    self.lung_events(events, &mut out);
                }
            }
            Input::NewSyncPeer(peer) => self.sync_peer(peer, &mut out),
            Input::NeighborDone { index, outcome } => self.neighbor_done(now_ms, index, outcome),
            Input::PeerSyncDone(peer) => {
                self.p2p.in_flight.remove(&peer);
            }
            Input::FollowerConnected { index, epoch } => {
                if let Some(n) = self.current_follower(index, epoch) {
                    n.follow.connected_at_ms = Some(now_ms);
                    n.view.events_connected = true;
                    n.view.events_next_attempt_ms = None;
                }
            }
            Input::FollowerEnded {
                index,
                epoch,
                forged,
            } => self.follower_ended(now_ms, index, epoch, forged),
            Input::EntryCommitted => self.p2p.roots_stale = true,
            Input::SetMode(mode) => {
                let events = self.lungs.set_mode(now_ms, mode);
                self.lung_events(events, &mut out);
            }
            Input::SetP2pBlocked(blocked) => {
                if blocked != self.p2p.blocked {
                    self.p2p.blocked = blocked;
                    out.push(Action::BlockP2p(blocked));
                    out.push(Action::RefreshPeers);
                }
            }
        }
        if now_ms >= self.next_heartbeat_ms {
            self.heartbeat(now_ms, &mut out);
        }
        self.steer(now_ms, &mut out);
        out
    }

    /// The next instant something is due (a heartbeat, a neighbour, a follower): call
    /// [`Schedule::handle`] with [`Input::Tick`] then. Never later than one heartbeat.
    pub fn next_wakeup(&self) -> u64 {
        let neighbors = self
            .neighbors
            .iter()
            .filter(|n| !n.in_flight)
            .filter_map(|n| n.due_ms);
        let followers = self
            .neighbors
            .iter()
            .filter(|_| self.http_active)
            .filter(|n| !n.follow.running)
            .filter_map(|n| n.follow.next_ms);
        neighbors
            .chain(followers)
            .fold(self.next_heartbeat_ms, u64::min)
    }

    pub fn mode(&self) -> Mode {
        self.lungs.mode()
    }

    pub fn lungs(&self) -> LungsSnapshot {
        self.lungs.snapshot()
    }

    pub fn http_sync_enabled(&self) -> bool {
        self.lungs.http_sync_enabled()
    }

    pub fn p2p_blocked(&self) -> bool {
        self.p2p.blocked
    }

    /// Live sync peers now: what status shows beside the peer list it comes from.
    pub fn sync_peer_count(&self) -> usize {
        self.p2p.sync_peers.len()
    }

    pub fn neighbor(&self, index: usize) -> NeighborView {
        self.neighbors
            .get(index)
            .map(|n| n.view)
            .unwrap_or_default()
    }

    /// What the lung states are derived from at a snapshot; the neighbours' health is
    /// the caller's (it reads their answers).
    pub fn situation(&self, neighbors: usize, healthy_neighbors: usize) -> Situation {
        let lungs = self.lungs.snapshot();
        Situation {
            mode: lungs.mode,
            heartbeat_active: lungs.heartbeat_active,
            sync_lung: lungs.sync_lung,
            http_sync_enabled: lungs.http_sync_enabled,
            p2p_blocked: self.p2p.blocked,
            live_sync_peers: self.sync_peer_count(),
            countdown_running: lungs.fallback_deadline_ms.is_some(),
            fallback_active: lungs.fallback_active_since_ms.is_some(),
            neighbors,
            healthy_neighbors,
        }
    }

    /// The count the heartbeat judges.
    fn counted_peers(&self) -> usize {
        #[cfg(test)]
        if self.defect == Some(Defect::CountsADeadPeer) {
            return self.p2p.sync_peers.len() + 1;
        }
        self.p2p.sync_peers.len()
    }

    fn heartbeat(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        self.next_heartbeat_ms = now_ms.saturating_add(duration_ms(self.timers.heartbeat).max(1));
        let events = self.lungs.tick(now_ms, self.counted_peers());
        self.lung_events(events, out);
        let every = duration_ms(self.timers.reconcile_every);
        if now_ms.saturating_sub(self.p2p.last_round_ms) >= every
            || std::mem::take(&mut self.p2p.roots_stale)
        {
            self.p2p.round_due = true;
        }
        if !self.p2p.listen_known {
            out.push(Action::RefreshPeers);
        }
    }

    fn lung_events(&mut self, events: Vec<LungEvent>, out: &mut Vec<Action>) {
        for event in events {
            if let LungEvent::Transition(t) = &event
                && t.to == Lung::P2p
            {
                // P2P restored: catch up at once on whatever was written meanwhile.
                self.p2p.round_due = true;
            }
            out.push(Action::Lung(event));
        }
    }

    /// Forced `http` takes P2P out of sync entirely: no gossip, no P2P reconciliation.
    fn p2p_sync_allowed(&self) -> bool {
        self.lungs.mode() != Mode::Http && !self.p2p.blocked
    }

    fn sync_peer(&mut self, peer: String, out: &mut Vec<Action>) {
        if self.p2p_sync_allowed() && self.p2p.in_flight.insert(peer.clone()) {
            out.push(Action::SyncPeer(peer));
        }
    }

    /// After every input: the lungs' state applied to gossip and to the HTTP lung, and
    /// due work started.
    fn steer(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        let gossip = self.lungs.mode() != Mode::Http;
        if self.p2p.gossip != Some(gossip) {
            self.p2p.gossip = Some(gossip);
            out.push(Action::SetGossip(gossip));
        }
        if self.p2p.round_due && self.p2p_sync_allowed() {
            self.p2p.round_due = false;
            self.p2p.last_round_ms = now_ms;
            for peer in self.p2p.sync_peers.clone() {
                self.sync_peer(peer, out);
            }
        }
        self.steer_http(now_ms, out);
    }

    fn steer_http(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        let enabled = self.lungs.http_sync_enabled();
        if enabled && !self.http_active {
            self.http_active = true;
            self.epoch += 1;
            out.push(Action::HttpLungActive);
            for n in &mut self.neighbors {
                n.due_ms = None; // poll at once rather than a full interval later
                n.strikes = 0;
                n.view.events_next_attempt_ms = None;
                n.follow = Follow {
                    next_ms: Some(now_ms),
                    ..Follow::default()
                };
            }
        } else if !enabled && self.http_active {
            self.http_active = false;
            out.push(Action::HttpLungStandby);
            for n in &mut self.neighbors {
                n.view = NeighborView::default();
                n.due_ms = None; // the first standby check at once
                n.follow = Follow::default();
            }
        }
        let poll = duration_ms(self.timers.http_poll);
        for (index, n) in self.neighbors.iter_mut().enumerate() {
            if !n.in_flight && n.due_ms.is_none_or(|d| d <= now_ms) {
                n.in_flight = true;
                n.due_ms = Some(now_ms.saturating_add(poll));
                out.push(match self.http_active {
                    true => Action::SyncNeighbor { index },
                    false => Action::CheckNeighbor { index },
                });
            }
        }
        if self.http_active {
            for (index, n) in self.neighbors.iter_mut().enumerate() {
                if !n.follow.running && n.follow.next_ms.is_some_and(|d| d <= now_ms) {
                    n.follow.running = true;
                    n.follow.next_ms = None;
                    n.follow.connected_at_ms = None;
                    out.push(Action::Follow {
                        index,
                        epoch: self.epoch,
                    });
                }
            }
        }
    }

    fn neighbor_done(&mut self, now_ms: u64, index: usize, outcome: NeighborOutcome) {
        let poll = self.timers.http_poll;
        let jitter = self.jitter();
        let Some(n) = self.neighbors.get_mut(index) else {
            return;
        };
        n.in_flight = false;
        match outcome {
            NeighborOutcome::Cancelled => {}
            NeighborOutcome::CheckAnswered | NeighborOutcome::Synced => {
                n.strikes = 0;
                n.view.next_attempt_ms = None;
            }
            NeighborOutcome::CheckFailed => n.retry_in(poll, now_ms),
            NeighborOutcome::SyncFailed => {
                let wait = n.strike(poll, jitter);
                n.retry_in(wait, now_ms);
            }
        }
    }

    fn current_follower(&mut self, index: usize, epoch: u64) -> Option<&mut Neighbor> {
        if !self.http_active || epoch != self.epoch {
            return None;
        }
        self.neighbors.get_mut(index)
    }

    fn follower_ended(&mut self, now_ms: u64, index: usize, epoch: u64, forged: bool) {
        let poll = self.timers.http_poll;
        let base = FOLLOW_RETRY_BASE.min(poll);
        let (strike_jitter, retry_jitter) = (self.jitter(), self.jitter());
        let Some(n) = self.current_follower(index, epoch) else {
            return;
        };
        let f = &mut n.follow;
        f.running = false;
        let stable = f
            .connected_at_ms
            .take()
            .is_some_and(|at| now_ms.saturating_sub(at) >= duration_ms(STABLE_STREAM));
        f.failures = if stable && !forged {
            1
        } else {
            f.failures.saturating_add(1)
        };
        let retry = backoff::jittered(f.failures, base, FOLLOW_RETRY_CAP, retry_jitter);
        let next = now_ms.saturating_add(duration_ms(retry));
        f.next_ms = Some(next);
        n.view.events_connected = false;
        n.view.events_next_attempt_ms = Some(next);
        if forged {
            // Misbehaving: failures caught forging are never forgiven by a mere
            // reconnect, and its polls are backed off too.
            let wait = n.strike(poll, strike_jitter);
            n.retry_in(wait, now_ms);
        }
    }

    /// A uniform draw in `[0, 1]` (splitmix64).
    fn jitter(&mut self) -> f64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Neighbor {
    /// The next sync or check waits at least `wait` (never brought forward by it).
    fn retry_in(&mut self, wait: Duration, now_ms: u64) {
        let at = now_ms.saturating_add(duration_ms(wait));
        let due = self.due_ms.map_or(at, |d| d.max(at));
        self.due_ms = Some(due);
        self.view.next_attempt_ms = Some(due);
    }

    /// One more strike, and the exponential backoff from one poll interval it earns,
    /// jittered so neighbours that failed together are not all retried together.
    fn strike(&mut self, poll: Duration, jitter: f64) -> Duration {
        self.strikes = self.strikes.saturating_add(1);
        backoff::jittered(
            self.strikes,
            poll,
            poll.saturating_mul(MAX_BACKOFF_POLLS),
            jitter,
        )
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

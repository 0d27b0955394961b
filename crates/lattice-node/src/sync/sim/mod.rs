//! A deterministic simulator: N nodes on a virtual clock, each with the real
//! [`Schedule`], connected by a simulated network that drops, delays, duplicates and
//! reorders messages of either lung, partitions either lung (P2P both ways, HTTP one way
//! at a time), and crashes and restarts nodes (losing writes not yet acknowledged).
//!
//! Ledgers are in-memory ([`MemLedger`]: real signed entries, the real Merkle tree and
//! membership rules), and every sync of either lung runs the real reconciliation over
//! them ([`crate::sync::reconcile::reconcile_with`]: v2's sketch and pull by short id,
//! its fallback to listing ids, and v1's walk), its requests carried by a network that
//! loses or duplicates them, so a reconciliation can fail midway and is retried by the
//! schedule. One seed decides a whole run: the fault schedule and every network draw
//! (salts included), so a seed replays step for step.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use std::sync::Mutex;

use futures_util::FutureExt;

use crate::identity::NodeKey;
use crate::ledger::{DEFAULT_MAX_PAYLOAD, Entry, EntryId};
use crate::sync::Mode;
use crate::sync::liveness::{self, Liveness, Verdict};
use crate::sync::local::Local;
use crate::sync::reconcile::reconcile_with;
use crate::sync::reconcile_v2::{self, Options};
use crate::sync::redial::Redial;
use crate::sync::riblt::Salt;
use crate::sync::schedule::{Action, Defect, Input, NeighborOutcome, Schedule, Timers};

mod faults;
mod ledger;
#[cfg(test)]
mod scenarios;
#[cfg(test)]
mod tests;

pub(crate) use faults::{Op, Rng, Step, generate};
use ledger::{MemLedger, Net, SimRemote};

/// A deliberately wrong part, compiled only into tests: the default run must catch it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wrong {
    Core(Defect),
    Reconciliation(reconcile_v2::Defect),
    Liveness(liveness::Defect),
}

pub(crate) const HEARTBEAT: u64 = 1_000;
pub(crate) const FALLBACK: u64 = 6_000;
pub(crate) const POLL: u64 = 2_000;
pub(crate) const RECONCILE_EVERY: u64 = 10_000;
/// A blackholed connection is noticed within this (the liveness issue's peer timeout).
pub(crate) const PEER_TIMEOUT: u64 = 3_000;
/// Each node pings its connected peers this often (three per peer timeout, as the node's
/// swarm does); a connected, unpartitioned peer's ping always arrives (TCP retransmits).
pub(crate) const PING: u64 = 1_000;
/// A healed or restarted peer is connected again within this (the redial cap).
pub(crate) const REDIAL: u64 = 2_000;
/// The redial backoff's first step.
pub(crate) const REDIAL_MIN: u64 = 250;
/// After the last heal, every root equal within this.
pub(crate) const SETTLE: u64 = PEER_TIMEOUT + REDIAL + RECONCILE_EVERY + 2 * POLL;
/// The invariants are checked at least this often (and after every step).
const CHECK_EVERY: u64 = 250;
/// A client write is acknowledged after its group commit, 5 to 50 ms later.
const COMMIT_MAX: u64 = 50;

fn timers() -> Timers {
    let ms = Duration::from_millis;
    Timers {
        heartbeat: ms(HEARTBEAT),
        fallback_after: ms(FALLBACK),
        http_poll: ms(POLL),
        reconcile_every: ms(RECONCILE_EVERY),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Work {
    Sync,
    Check,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Wake(usize),
    Commit(usize, Box<Entry>),
    /// The node's swarm notices what its connections are now.
    PeersSeen(usize),
    /// The node's pings to its connected peers are answered (or not), and its liveness
    /// judges them.
    Ping(usize),
    /// The node's redial schedule has dials due.
    Dial(usize),
    HttpDone {
        node: usize,
        index: usize,
        token: u64,
        work: Work,
        ok: bool,
    },
    P2pDone {
        node: usize,
        peer: usize,
        ok: bool,
    },
    Gossip(usize, Box<Entry>),
    FollowerOpen {
        node: usize,
        index: usize,
        epoch: u64,
    },
    FollowerEnd {
        node: usize,
        index: usize,
        epoch: u64,
    },
}

struct Node {
    schedule: Option<Schedule>,
    /// Bumped at each crash: events of an earlier life are dropped.
    life: u64,
    durable: MemLedger,
    /// Its own writes, acknowledged (committed).
    acked: BTreeSet<EntryId>,
    mode: Mode,
    blocked: bool,
    gossip: bool,
    /// The peers its swarm reports (sync-capable, live), by index: its connections, less
    /// those its liveness judged dead.
    view: Vec<usize>,
    /// The real liveness rule over its connections.
    alive: Liveness<usize>,
    /// When a ping of each peer last reached it, or the connection opened (the truth the
    /// liveness verdicts are checked against).
    last_answer: Vec<u64>,
    /// The real redial schedule: every other node is a bootstrap peer.
    redial: Redial<usize, ()>,
    dial_at: Option<u64>,
    /// Since when the view has been empty (or the node up, if later).
    empty_since: Option<u64>,
    /// The work in flight with each neighbour, by a token; a cancelled one is forgotten.
    work: Vec<Option<(u64, Work)>>,
    wake_at: Option<u64>,
}

/// What a run found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Figures {
    pub simulated_ms: u64,
    pub faults: u64,
    pub acked: u64,
    pub lost: u64,
    pub events: u64,
    /// Reconciliations run to the end, and those that failed midway (a message lost).
    pub reconciliations: u64,
    pub reconciliations_failed: u64,
    /// Reconciliation requests delivered (duplicates included) and messages lost.
    pub messages: u64,
    pub messages_lost: u64,
}

pub(crate) struct World {
    now: u64,
    nodes: Vec<Node>,
    rng: Rng,
    /// Events by (time, order of scheduling), each with the life of its node.
    queue: BTreeMap<(u64, u64), (u64, Ev)>,
    seq: u64,
    p2p_cut: BTreeSet<(usize, usize)>,
    http_cut: BTreeSet<(usize, usize)>,
    loss: u64,
    latency: u64,
    duplicate: u64,
    next_id: u64,
    token: u64,
    wrong: Option<Wrong>,
    /// Who writes at each node (a client of it).
    keys: Vec<NodeKey>,
    pub(crate) figures: Figures,
}

const T0: u64 = 1_700_000_000_000;

impl World {
    pub(crate) fn new(seed: u64, nodes: usize, wrong: Option<Wrong>) -> Self {
        let mut w = World {
            now: T0,
            nodes: Vec::new(),
            rng: Rng::new(seed),
            queue: BTreeMap::new(),
            seq: 0,
            p2p_cut: BTreeSet::new(),
            http_cut: BTreeSet::new(),
            loss: 0,
            latency: 20,
            duplicate: 0,
            next_id: seed.wrapping_mul(1_000_003),
            token: 0,
            wrong,
            keys: (0..nodes)
                .map(|i| NodeKey::from_seed([i as u8 + 1; 32]))
                .collect(),
            figures: Figures::default(),
        };
        for _ in 0..nodes {
            w.nodes.push(Node {
                schedule: None,
                life: 0,
                durable: MemLedger::default(),
                acked: BTreeSet::new(),
                mode: Mode::Auto,
                blocked: false,
                gossip: false,
                view: Vec::new(),
                alive: Liveness::new(Duration::from_millis(PEER_TIMEOUT), T0),
                last_answer: vec![T0; nodes],
                redial: Redial::new(Vec::new(), Duration::ZERO, Duration::ZERO, T0, 0),
                dial_at: None,
                empty_since: None,
                work: vec![None; nodes - 1],
                wake_at: None,
            });
        }
        for i in 0..nodes {
            w.boot(i);
        }
        w
    }

    fn n(&self) -> usize {
        self.nodes.len()
    }

    /// Neighbour `index` of node `a`: every other node, in order.
    fn neighbor(&self, a: usize, index: usize) -> usize {
        if index < a { index } else { index + 1 }
    }

    fn push(&mut self, at: u64, ev: Ev) {
        let life = self.life_of(&ev);
        self.seq += 1;
        self.queue.insert((at, self.seq), (life, ev));
    }

    fn life_of(&self, ev: &Ev) -> u64 {
        let node = match ev {
            Ev::Wake(a)
            | Ev::Commit(a, _)
            | Ev::PeersSeen(a)
            | Ev::Ping(a)
            | Ev::Dial(a)
            | Ev::Gossip(a, _) => *a,
            Ev::HttpDone { node, .. }
            | Ev::P2pDone { node, .. }
            | Ev::FollowerOpen { node, .. }
            | Ev::FollowerEnd { node, .. } => *node,
        };
        self.nodes[node].life
    }

    fn delay(&mut self) -> u64 {
        1 + self.rng.below(self.latency)
    }

    fn lost(&mut self) -> bool {
        self.rng.chance(self.loss)
    }

    fn connected(&self, a: usize, b: usize) -> bool {
        let (x, y) = (&self.nodes[a], &self.nodes[b]);
        a != b
            && x.schedule.is_some()
            && y.schedule.is_some()
            && !x.blocked
            && !y.blocked
            && !self.p2p_cut.contains(&(a.min(b), a.max(b)))
    }

    fn reachable(&self, a: usize, b: usize) -> bool {
        self.nodes[b].schedule.is_some()
            && !self.http_cut.contains(&(a, b))
            && !self.http_cut.contains(&(b, a))
    }

    fn boot(&mut self, a: usize) {
        let seed = self.rng.next();
        let mode = self.nodes[a].mode;
        let mut s = Schedule::new(mode, timers(), self.n() - 1, seed, self.now);
        s.defect = match self.wrong {
            Some(Wrong::Core(d)) => Some(d),
            _ => None,
        };
        let others = self.n() - 1;
        let mut alive = Liveness::new(Duration::from_millis(PEER_TIMEOUT), self.now);
        alive.defect = match self.wrong {
            Some(Wrong::Liveness(d)) => Some(d),
            _ => None,
        };
        let bootstrap = (0..self.n()).filter(|b| *b != a).map(|b| (b, ())).collect();
        let ms = Duration::from_millis;
        let redial = Redial::new(
            bootstrap,
            ms(REDIAL_MIN),
            ms(REDIAL),
            self.now,
            self.rng.next(),
        );
        let node = &mut self.nodes[a];
        node.schedule = Some(s);
        node.alive = alive;
        node.redial = redial;
        node.dial_at = None;
        node.view.clear();
        node.empty_since = Some(self.now);
        node.gossip = false;
        node.work = vec![None; others];
        node.wake_at = None;
        let actions = self.nodes[a].schedule.as_mut().unwrap().start(self.now);
        self.perform(a, actions);
        self.push(self.now + PING, Ev::Ping(a));
        // Every bootstrap peer is dialed at once.
        self.arm_dial(a);
    }

    fn feed(&mut self, a: usize, input: Input) {
        let now = self.now;
        let Some(s) = self.nodes[a].schedule.as_mut() else {
            return;
        };
        let actions = s.handle(now, input);
        self.perform(a, actions);
    }

    fn perform(&mut self, a: usize, actions: Vec<Action>) {
        let mut inputs = Vec::new();
        for action in actions {
            match action {
                Action::Lung(_) | Action::HttpLungActive => {}
                Action::HttpLungStandby => {
                    for index in 0..self.n() - 1 {
                        if let Some((_, Work::Sync)) = self.nodes[a].work[index] {
                            self.nodes[a].work[index] = None;
                            inputs.push(Input::NeighborDone {
                                index,
                                outcome: NeighborOutcome::Cancelled,
                            });
                        }
                    }
                }
                Action::SyncNeighbor { index } => self.http_work(a, index, Work::Sync),
                Action::CheckNeighbor { index } => self.http_work(a, index, Work::Check),
                Action::Follow { index, epoch } => {
                    let at = self.now + self.delay();
                    self.push(
                        at,
                        Ev::FollowerOpen {
                            node: a,
                            index,
                            epoch,
                        },
                    );
                }
                Action::SyncPeer(peer) => {
                    let b: usize = peer[1..].parse().expect("sim peer ids are n<index>");
                    let ok = self.connected(a, b) && !self.lost() && !self.lost();
                    let at = self.now + 2 * self.delay();
                    self.push(
                        at,
                        Ev::P2pDone {
                            node: a,
                            peer: b,
                            ok,
                        },
                    );
                }
                Action::SetGossip(on) => self.nodes[a].gossip = on,
                Action::BlockP2p(on) => {
                    if on {
                        self.nodes[a].redial.pause();
                    } else {
                        self.nodes[a].redial.resume(self.now);
                    }
                    self.connections_closed();
                    self.arm_dial(a);
                }
                Action::RefreshPeers => inputs.push(self.peers_input(a, false)),
            }
        }
        for input in inputs {
            self.feed(a, input);
        }
        self.arm(a);
    }

    /// A wakeup at the schedule's next due instant (stale ones are skipped).
    fn arm(&mut self, a: usize) {
        let Some(s) = self.nodes[a].schedule.as_ref() else {
            return;
        };
        let at = s.next_wakeup().max(self.now);
        if self.nodes[a].wake_at != Some(at) {
            self.nodes[a].wake_at = Some(at);
            self.push(at, Ev::Wake(a));
        }
    }

    fn http_work(&mut self, a: usize, index: usize, work: Work) {
        let b = self.neighbor(a, index);
        self.token += 1;
        let token = self.token;
        self.nodes[a].work[index] = Some((token, work));
        let ok = self.reachable(a, b) && !self.lost() && !self.lost();
        let at = self.now + 2 * self.delay();
        self.push(
            at,
            Ev::HttpDone {
                node: a,
                index,
                token,
                work,
                ok,
            },
        );
    }

    fn peer_id(b: usize) -> String {
        format!("n{b}")
    }

    fn peers_input(&self, a: usize, sample: bool) -> Input {
        Input::Peers {
            sync_peers: self.nodes[a]
                .view
                .iter()
                .map(|b| Self::peer_id(*b))
                .collect(),
            sample,
            listen_known: true,
        }
    }

    /// A node's connections closed (it crashed or cut P2P): every node looks at its
    /// own within a latency.
    fn connections_closed(&mut self) {
        for b in 0..self.n() {
            let d = self.delay();
            self.push(self.now + d, Ev::PeersSeen(b));
        }
    }

    /// `a`'s swarm looks at its connections: a closed one (the peer crashed, either
    /// side cut P2P) is gone at once and redialed later; a blackholed one stays until
    /// its liveness judges it dead. (Connections open only by dials, [`Ev::Dial`].) The
    /// view is what is left.
    fn peers_seen(&mut self, a: usize) {
        if self.nodes[a].schedule.is_none() {
            return;
        }
        let now = self.now;
        for b in 0..self.n() {
            if self.nodes[a].alive.contains(&b)
                && !self.connected(a, b)
                && !self.p2p_cut.contains(&(a.min(b), a.max(b)))
            {
                self.nodes[a].alive.gone(&b);
                self.nodes[a].redial.failed(&b, now);
            }
        }
        self.arm_dial(a);
        let view: Vec<usize> = self.nodes[a].alive.peers().copied().collect();
        if view == self.nodes[a].view {
            return;
        }
        let new: Vec<usize> = view
            .iter()
            .copied()
            .filter(|b| !self.nodes[a].view.contains(b))
            .collect();
        let node = &mut self.nodes[a];
        match (node.view.is_empty(), view.is_empty()) {
            (false, true) => node.empty_since = Some(self.now),
            (_, false) => node.empty_since = None,
            _ => {}
        }
        node.view = view;
        let input = self.peers_input(a, true);
        self.feed(a, input);
        for b in new {
            self.feed(a, Input::NewSyncPeer(Self::peer_id(b)));
        }
    }

    /// An event at `a`'s next due dial (stale ones are skipped).
    fn arm_dial(&mut self, a: usize) {
        if self.nodes[a].schedule.is_none() {
            return;
        }
        let Some(at) = self.nodes[a].redial.next_at() else {
            return;
        };
        let at = at.max(self.now);
        if self.nodes[a].dial_at != Some(at) {
            self.nodes[a].dial_at = Some(at);
            self.push(at, Ev::Dial(a));
        }
    }

    /// `a` dials every peer due: where the network lets it through, the connection
    /// opens at both ends (each redial starts over); elsewhere it fails and backs off.
    fn dial(&mut self, a: usize) {
        if self.nodes[a].schedule.is_none() || self.nodes[a].dial_at != Some(self.now) {
            return;
        }
        self.nodes[a].dial_at = None;
        let now = self.now;
        for (b, _) in self.nodes[a].redial.take_due(now) {
            if self.nodes[a].alive.contains(&b) {
                continue;
            }
            if self.connected(a, b) {
                for (x, y) in [(a, b), (b, a)] {
                    let node = &mut self.nodes[x];
                    node.alive.connected(y, now);
                    node.last_answer[y] = now;
                    node.redial.connected(&y);
                }
                let d = self.delay();
                self.push(now + d, Ev::PeersSeen(b));
                self.push(now + d, Ev::PeersSeen(a));
            } else {
                self.nodes[a].redial.failed(&b, now);
            }
        }
        self.arm_dial(a);
    }

    /// Entries arrive at `a`: committed, and the schedule told.
    fn store(&mut self, a: usize, entries: Vec<Entry>) {
        if self.nodes[a].durable.insert(entries) > 0 {
            self.feed(a, Input::EntryCommitted);
        }
    }

    /// One sync of `a` with `b` (either lung): the real reconciliation, `a` asking,
    /// over the network's weather. Whether it completed.
    fn reconcile(&mut self, a: usize, b: usize) -> bool {
        let before = (self.nodes[a].durable.len(), self.nodes[b].durable.len());
        let mut salt = [0u8; 16];
        salt[..8].copy_from_slice(&self.rng.next().to_le_bytes());
        salt[8..].copy_from_slice(&self.rng.next().to_le_bytes());
        // Mostly v2; sometimes as a v1-only node would, or with a cap so small that the
        // sketch gives up for the listing of ids.
        let options = Options {
            salt: Some(Salt(salt)),
            v1_only: self.rng.chance(25),
            max_symbols: self.rng.chance(15).then_some(8),
            defect: match self.wrong {
                Some(Wrong::Reconciliation(d)) => Some(d),
                _ => None,
            },
        };
        let remote = SimRemote {
            theirs: &self.nodes[b].durable,
            name: Self::peer_id(b),
            net: Mutex::new(Net {
                rng: &mut self.rng,
                loss: self.loss,
                duplicate: self.duplicate,
                sent: 0,
                received: 0,
                delivered: 0,
                lost: 0,
            }),
        };
        let result = reconcile_with(
            &self.nodes[a].durable,
            &remote,
            DEFAULT_MAX_PAYLOAD,
            &options,
        )
        .now_or_never()
        .expect("the simulator's reconciliation never waits");
        let net = remote.net.into_inner().expect("not poisoned");
        self.figures.messages += net.delivered;
        self.figures.messages_lost += net.lost;
        match &result {
            Ok(_) => self.figures.reconciliations += 1,
            Err(_) => self.figures.reconciliations_failed += 1,
        }
        if self.nodes[a].durable.len() > before.0 {
            self.feed(a, Input::EntryCommitted);
        }
        if self.nodes[b].durable.len() > before.1 {
            self.feed(b, Input::EntryCommitted);
        }
        result.is_ok()
    }

    fn event(&mut self, ev: Ev) {
        match ev {
            Ev::Wake(a) => {
                if self.nodes[a].wake_at == Some(self.now) {
                    self.nodes[a].wake_at = None;
                    self.feed(a, Input::Tick);
                }
            }
            Ev::Commit(a, entry) => {
                let id = entry.id();
                self.nodes[a].durable.insert(vec![(*entry).clone()]);
                self.nodes[a].acked.insert(id);
                self.figures.acked += 1;
                self.feed(a, Input::EntryCommitted);
                if self.nodes[a].gossip {
                    for b in self.nodes[a].view.clone() {
                        if self.connected(a, b) && !self.lost() {
                            let copies = 1 + u64::from(self.rng.chance(self.duplicate));
                            for _ in 0..copies {
                                let at = self.now + self.delay();
                                self.push(at, Ev::Gossip(b, entry.clone()));
                            }
                        }
                    }
                }
            }
            Ev::Gossip(b, entry) => {
                if self.nodes[b].gossip {
                    self.store(b, vec![*entry]);
                }
            }
            Ev::PeersSeen(a) => self.peers_seen(a),
            Ev::Dial(a) => self.dial(a),
            Ev::Ping(a) => {
                if self.nodes[a].schedule.is_none() {
                    return;
                }
                let now = self.now;
                let peers: Vec<usize> = self.nodes[a].alive.peers().copied().collect();
                for b in peers {
                    if self.connected(a, b) {
                        self.nodes[a].alive.heard(&b, now);
                        self.nodes[a].last_answer[b] = now;
                    }
                }
                let verdicts = self.nodes[a].alive.check(now);
                let mut died = false;
                for v in verdicts {
                    if let Verdict::Dead { peer, .. } = v {
                        self.nodes[a].redial.failed(&peer, now);
                        died = true;
                    }
                }
                if died {
                    self.peers_seen(a);
                }
                self.push(now + PING, Ev::Ping(a));
            }
            Ev::HttpDone {
                node: a,
                index,
                token,
                work,
                ok,
            } => {
                if self.nodes[a].work[index].map(|(t, _)| t) != Some(token) {
                    return; // cancelled
                }
                self.nodes[a].work[index] = None;
                let b = self.neighbor(a, index);
                let ok = ok && self.reachable(a, b);
                let outcome = match (work, ok) {
                    (Work::Check, true) => NeighborOutcome::CheckAnswered,
                    (Work::Check, false) => NeighborOutcome::CheckFailed,
                    (Work::Sync, true) if self.reconcile(a, b) => NeighborOutcome::Synced,
                    (Work::Sync, _) => NeighborOutcome::SyncFailed,
                };
                self.feed(a, Input::NeighborDone { index, outcome });
            }
            Ev::P2pDone { node: a, peer, ok } => {
                if ok && self.connected(a, peer) {
                    self.reconcile(a, peer);
                }
                self.feed(a, Input::PeerSyncDone(Self::peer_id(peer)));
            }
            Ev::FollowerOpen { node, index, epoch } => {
                let b = self.neighbor(node, index);
                if self.reachable(node, b) && !self.lost() {
                    self.feed(node, Input::FollowerConnected { index, epoch });
                    let at = self.now + 500 + self.rng.below(10_000);
                    self.push(at, Ev::FollowerEnd { node, index, epoch });
                } else {
                    let at = self.now + self.delay();
                    self.push(at, Ev::FollowerEnd { node, index, epoch });
                }
            }
            Ev::FollowerEnd { node, index, epoch } => {
                let forged = false;
                self.feed(
                    node,
                    Input::FollowerEnded {
                        index,
                        epoch,
                        forged,
                    },
                );
            }
        }
    }

    /// Runs every event up to `until`, checking the invariants at least every
    /// `CHECK_EVERY` of virtual time and at `until`.
    pub(crate) fn run_until(&mut self, until: u64) -> Result<(), String> {
        let mut checked = self.now;
        while let Some(((at, _), _)) = self.queue.first_key_value() {
            if *at > until {
                break;
            }
            let ((at, _), (life, ev)) = self.queue.pop_first().expect("peeked");
            if at > self.now && self.now >= checked + CHECK_EVERY {
                self.check()?;
                checked = self.now;
            }
            self.now = at;
            self.figures.events += 1;
            if life == self.life_of(&ev) {
                self.event(ev);
            }
        }
        self.now = self.now.max(until);
        self.check()
    }

    pub(crate) fn apply(&mut self, op: &Op) {
        if !matches!(op, Op::Write(_) | Op::Idle) {
            self.figures.faults += 1;
        }
        match *op {
            Op::Write(a) => {
                // To the first node up from `a` (a client retries elsewhere).
                let up = (0..self.n())
                    .map(|i| (a + i) % self.n())
                    .find(|b| self.nodes[*b].schedule.is_some());
                if let Some(a) = up {
                    self.next_id += 1;
                    let entry = Entry::sign(
                        &self.keys[a],
                        self.now,
                        &serde_json::json!({ "write": self.next_id }),
                        DEFAULT_MAX_PAYLOAD,
                    )
                    .expect("a small payload signs");
                    let at = self.now + 5 + self.rng.below(COMMIT_MAX - 5);
                    self.push(at, Ev::Commit(a, Box::new(entry)));
                }
            }
            Op::CutP2p(a, b) => {
                // A blackhole: noticed only by the peers' liveness.
                self.p2p_cut.insert((a.min(b), a.max(b)));
            }
            Op::HealP2p(a, b) => {
                // Found again by the redial schedules, within their cap.
                self.p2p_cut.remove(&(a.min(b), a.max(b)));
            }
            Op::CutHttp(a, b) => {
                self.http_cut.insert((a, b));
            }
            Op::HealHttp(a, b) => {
                self.http_cut.remove(&(a, b));
            }
            Op::Weather {
                loss,
                latency,
                duplicate,
            } => {
                self.loss = loss;
                self.latency = latency.max(1);
                self.duplicate = duplicate;
            }
            Op::Crash(a) => {
                let alive = self.nodes.iter().filter(|n| n.schedule.is_some()).count();
                if self.nodes[a].schedule.is_some() && alive > 1 {
                    let node = &mut self.nodes[a];
                    node.schedule = None;
                    node.life += 1;
                    node.view.clear();
                    // Peers see the connections close.
                    self.connections_closed();
                }
            }
            Op::Restart(a) => {
                if self.nodes[a].schedule.is_none() {
                    self.boot(a);
                }
            }
            Op::SetMode(a, mode) => {
                self.nodes[a].mode = mode;
                self.feed(a, Input::SetMode(mode));
            }
            Op::Block(a, blocked) => {
                self.nodes[a].blocked = blocked;
                self.feed(a, Input::SetP2pBlocked(blocked));
            }
            Op::Idle => {}
        }
    }

    /// Every link healed, every node up, in auto and unblocked.
    pub(crate) fn heal(&mut self) {
        self.p2p_cut.clear();
        self.http_cut.clear();
        self.loss = 0;
        self.duplicate = 0;
        for a in 0..self.n() {
            if self.nodes[a].schedule.is_none() {
                self.boot(a);
            }
            if self.nodes[a].blocked {
                self.apply(&Op::Block(a, false));
            }
            if self.nodes[a].mode != Mode::Auto {
                self.apply(&Op::SetMode(a, Mode::Auto));
            }
        }
    }

    pub(crate) fn now(&self) -> u64 {
        self.now
    }

    /// The invariants that hold at every instant.
    fn check(&self) -> Result<(), String> {
        // A node's store only grows and its own acknowledged writes are in it: checked
        // per node, no acknowledged entry can be on no node.
        for (a, node) in self.nodes.iter().enumerate() {
            if let Some(lost) = node.acked.iter().find(|id| !node.durable.contains(id)) {
                return Err(format!("n{a} lost its acknowledged entry {lost:?}"));
            }
            let Some(s) = &node.schedule else { continue };
            let lungs = s.lungs();
            let live = node.view.len();
            if let Some(b) = node
                .view
                .iter()
                .find(|b| self.now - node.last_answer[**b] > PEER_TIMEOUT + PING)
            {
                return Err(format!(
                    "n{a} counts n{b} as live, silent for {} ms",
                    self.now - node.last_answer[*b]
                ));
            }
            if s.sync_peer_count() != live || s.situation(0, 0).live_sync_peers != live {
                return Err(format!(
                    "n{a} counts {} peers of {live}",
                    s.sync_peer_count()
                ));
            }
            if lungs.peer_count != live || lungs.has_peers != (live > 0) {
                return Err(format!(
                    "n{a}'s heartbeat sampled {} peers while {live} are live",
                    lungs.peer_count
                ));
            }
            let http = s.http_sync_enabled();
            match node.mode {
                Mode::Http if !http => return Err(format!("n{a} forced to http without it")),
                Mode::P2p if http => return Err(format!("n{a} forced to p2p syncs over http")),
                Mode::Auto => {
                    let since = node.empty_since;
                    let peerless_for = since.map(|t| self.now - t);
                    if http && peerless_for.is_none_or(|d| d < FALLBACK) {
                        return Err(format!(
                            "n{a} fell back to http with {live} peers, peerless for {peerless_for:?}"
                        ));
                    }
                    if !http && peerless_for.is_some_and(|d| d >= FALLBACK + HEARTBEAT) {
                        return Err(format!(
                            "n{a} peerless for {} ms and still not on http",
                            peerless_for.unwrap_or(0)
                        ));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// After the heal and `SETTLE`: every node up on P2P with every peer, every root the
    /// same real Merkle root, every acknowledged entry everywhere.
    pub(crate) fn check_settled(&self) -> Result<(), String> {
        let roots: Vec<_> = self.nodes.iter().map(|n| n.durable.root()).collect();
        for (a, node) in self.nodes.iter().enumerate() {
            let s = node.schedule.as_ref().ok_or(format!("n{a} is down"))?;
            if node.view.len() != self.n() - 1 || s.http_sync_enabled() {
                return Err(format!(
                    "n{a} not back on P2P: {} peers, http {}",
                    node.view.len(),
                    s.http_sync_enabled()
                ));
            }
            if roots[a] != roots[0] {
                return Err(format!(
                    "n{a}'s root differs from n0's ({} vs {} entries)",
                    node.durable.len(),
                    self.nodes[0].durable.len()
                ));
            }
        }
        let lost = self
            .nodes
            .iter()
            .flat_map(|n| &n.acked)
            .filter(|id| !self.nodes[0].durable.contains(id))
            .count();
        if lost > 0 {
            return Err(format!("{lost} acknowledged entries lost"));
        }
        Ok(())
    }
}

/// The outcome of one schedule: its figures, or the step it failed at and why.
pub(crate) fn run(
    seed: u64,
    steps: &[Step],
    nodes: usize,
    wrong: Option<Wrong>,
    mut trace: Option<&mut Vec<String>>,
) -> Result<Figures, (usize, String)> {
    let mut w = World::new(seed, nodes, wrong);
    for (i, step) in steps.iter().enumerate() {
        w.apply(&step.op);
        let until = w.now() + step.then_ms;
        let result = w.run_until(until);
        if let Some(t) = trace.as_deref_mut() {
            t.push(format!("{:>6} ms  step {i:>3}: {step}", w.now() - T0));
        }
        result.map_err(|e| (i, e))?;
    }
    w.heal();
    let healed = w.now();
    w.run_until(healed + SETTLE).map_err(|e| (steps.len(), e))?;
    w.check_settled().map_err(|e| {
        (
            steps.len(),
            format!("{e} ({SETTLE} ms after the last heal)"),
        )
    })?;
    w.figures.simulated_ms = w.now() - T0;
    Ok(w.figures)
}

/// Removes steps one at a time while the schedule still fails: a shorter trace that
/// shows the same kind of failure.
pub(crate) fn shrink(seed: u64, steps: &[Step], nodes: usize, wrong: Option<Wrong>) -> Vec<Step> {
    let Err((at, _)) = run(seed, steps, nodes, wrong, None) else {
        return steps.to_vec();
    };
    let mut kept: Vec<Step> = steps[..(at + 1).min(steps.len())].to_vec();
    let mut i = 0;
    // Bounded: each pass either removes a step or moves on.
    while i < kept.len() {
        let mut fewer = kept.clone();
        fewer.remove(i);
        if run(seed, &fewer, nodes, wrong, None).is_err() {
            kept = fewer;
        } else {
            i += 1;
        }
    }
    kept
}

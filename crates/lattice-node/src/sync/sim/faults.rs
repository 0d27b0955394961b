//! Seeded fault schedules for the simulator: what happens to the nodes and the network,
//! step by step, all drawn from one seed.

use std::fmt;

use crate::sync::Mode;

/// splitmix64: small, seedable, the same everywhere.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// One step of a fault schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Write(usize),
    CutP2p(usize, usize),
    HealP2p(usize, usize),
    /// Requests from the first to the second fail (one way).
    CutHttp(usize, usize),
    HealHttp(usize, usize),
    /// Percent of messages lost and the most latency, for both lungs.
    Weather {
        loss: u64,
        latency: u64,
        duplicate: u64,
    },
    Crash(usize),
    Restart(usize),
    SetMode(usize, Mode),
    Block(usize, bool),
    Idle,
}

/// A step of the schedule and how long the world runs after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Step {
    pub op: Op,
    pub then_ms: u64,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}, then {} ms", self.op, self.then_ms)
    }
}

/// A seeded fault schedule: `writes` writes among `steps` steps on `nodes` nodes.
pub(crate) fn generate(seed: u64, nodes: usize, steps: usize, writes: usize) -> Vec<Step> {
    let mut rng = Rng::new(seed ^ 0x5EED);
    let n = nodes as u64;
    let mut write_left = writes;
    (0..steps)
        .map(|i| {
            let steps_left = steps - i;
            let pair = |rng: &mut Rng| {
                let a = rng.below(n) as usize;
                let b = (a + 1 + rng.below(n - 1) as usize) % nodes;
                (a, b)
            };
            let op = if write_left > 0 && rng.below(steps_left as u64) < write_left as u64 {
                write_left -= 1;
                Op::Write(rng.below(n) as usize)
            } else {
                match rng.below(13) {
                    0 | 1 => {
                        let (a, b) = pair(&mut rng);
                        Op::CutP2p(a, b)
                    }
                    2 | 3 => {
                        let (a, b) = pair(&mut rng);
                        Op::HealP2p(a, b)
                    }
                    4 => {
                        let (a, b) = pair(&mut rng);
                        Op::CutHttp(a, b)
                    }
                    5 => {
                        let (a, b) = pair(&mut rng);
                        Op::HealHttp(a, b)
                    }
                    6 => Op::Weather {
                        loss: rng.below(30),
                        latency: 1 + rng.below(400),
                        duplicate: rng.below(20),
                    },
                    7 => Op::Crash(rng.below(n) as usize),
                    8 => Op::Restart(rng.below(n) as usize),
                    9 => Op::SetMode(
                        rng.below(n) as usize,
                        [Mode::Auto, Mode::Auto, Mode::P2p, Mode::Http][rng.below(4) as usize],
                    ),
                    10 => Op::Block(rng.below(n) as usize, rng.chance(50)),
                    _ => Op::Idle,
                }
            };
            Step {
                op,
                then_ms: rng.below(1_000),
            }
        })
        .collect()
}

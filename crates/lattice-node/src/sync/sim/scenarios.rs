//! The scenarios of `tests/scenarios.rs`, on the simulator: the same stories with the
//! real schedule, liveness and reconciliation, on a virtual clock (milliseconds of CPU
//! instead of seconds of waiting), checked against the specification's bounds exactly
//! rather than within generous deadlines. `World::run_until` checks every invariant
//! (no acknowledged entry lost, the peer count agrees with the peers, the fallback on
//! exactly when the rule says) at least every 250 virtual ms; each scenario adds what
//! its story promises. A few stay on real sockets in `tests/scenarios.rs`.

use super::*;
use crate::sync::lungs::Lung;

const SEED: u64 = 0x5CE7_A210;
/// A gossiped write arrives within its commit and a few latencies (20 ms at most, the
/// calm weather these scenarios start in).
const GOSSIP: u64 = COMMIT_MAX + 4 * 20;

fn world(nodes: usize) -> World {
    let mut w = World::new(SEED, nodes, None);
    let t = w.now() + SETTLE;
    w.run_until(t).expect("the invariants hold from the start");
    w
}

fn run(w: &mut World, ms: u64) {
    let t = w.now() + ms;
    if let Err(e) = w.run_until(t) {
        panic!("an invariant broke at {} ms: {e}", w.now() - T0);
    }
}

fn lung(w: &World, a: usize) -> Lung {
    w.nodes[a].schedule.as_ref().expect("up").lungs().sync_lung
}

fn all_on(w: &World, l: Lung) -> bool {
    (0..w.n()).all(|a| lung(w, a) == l)
}

fn peers(w: &World, a: usize) -> usize {
    w.nodes[a].view.len()
}

fn counts(w: &World) -> Vec<usize> {
    w.nodes.iter().map(|n| n.durable.len()).collect()
}

fn roots_equal(w: &World) -> bool {
    w.nodes
        .iter()
        .all(|n| n.durable.root() == w.nodes[0].durable.root())
}

/// Writes one entry at each node and runs until its commit is acknowledged.
fn write_everywhere(w: &mut World) {
    for a in 0..w.n() {
        w.apply(&Op::Write(a));
    }
    run(w, COMMIT_MAX);
}

/// Runs in steps of `step` ms until `done` holds; how long it took. Panics past `bound`.
fn until(w: &mut World, bound: u64, what: &str, done: impl Fn(&World) -> bool) -> u64 {
    let start = w.now();
    while !done(w) {
        assert!(
            w.now() - start <= bound,
            "{what}: not within {bound} ms (at {} ms)",
            w.now() - T0
        );
        run(w, 10);
    }
    w.now() - start
}

#[test]
fn p2p_carries_sync_then_http_takes_over_when_it_is_cut_then_p2p_returns() {
    let mut w = world(3);
    // 1. The normal world.
    assert!(all_on(&w, Lung::P2p) && (0..3).all(|a| peers(&w, a) == 2));
    write_everywhere(&mut w);
    until(&mut w, GOSSIP, "gossip delivers", |w| {
        counts(w) == [3, 3, 3] && roots_equal(w)
    });
    assert!(all_on(&w, Lung::P2p));
    assert!(
        w.nodes
            .iter()
            .all(|n| !n.schedule.as_ref().unwrap().http_sync_enabled())
    );

    // 2. Every node cuts P2P: connections close, so nobody counts a peer at once, and
    // after the fallback time (not before) HTTP carries sync.
    for a in 0..3 {
        w.apply(&Op::Block(a, true));
    }
    run(&mut w, FALLBACK - HEARTBEAT);
    assert!(
        all_on(&w, Lung::P2p),
        "no fallback before the fallback time"
    );
    assert!((0..3).all(|a| peers(&w, a) == 0));
    until(&mut w, 2 * HEARTBEAT, "HTTP takes over", |w| {
        all_on(w, Lung::Http)
    });

    // 3. Writes while P2P is down reach everyone over HTTP, within a few polls.
    write_everywhere(&mut w);
    until(&mut w, 3 * POLL, "HTTP delivers", |w| {
        counts(w) == [6, 6, 6] && roots_equal(w)
    });

    // 4. P2P restored: peers return within the redial time, sync goes back to P2P, and
    // nothing was lost (the invariants say so at every step).
    for a in 0..3 {
        w.apply(&Op::Block(a, false));
    }
    until(&mut w, REDIAL + HEARTBEAT + 100, "P2P returns", |w| {
        all_on(w, Lung::P2p) && (0..3).all(|a| peers(w, a) == 2)
    });
    write_everywhere(&mut w);
    until(&mut w, GOSSIP, "gossip again", |w| {
        counts(w) == [9, 9, 9] && roots_equal(w)
    });
}

#[test]
fn a_restarted_node_catches_up_over_p2p() {
    let mut w = world(3);
    w.apply(&Op::Crash(2));
    run(&mut w, 100);
    for _ in 0..5 {
        w.apply(&Op::Write(0));
    }
    run(&mut w, GOSSIP);
    assert_eq!(&counts(&w)[..2], [5, 5]);
    assert_eq!(counts(&w)[2], 0, "the crashed node missed them");
    w.apply(&Op::Restart(2));
    let took = until(
        &mut w,
        REDIAL + 2 * HEARTBEAT,
        "the restarted node catches up",
        |w| counts(w) == [5, 5, 5] && roots_equal(w) && peers(w, 2) == 2,
    );
    assert_eq!(lung(&w, 2), Lung::P2p, "over P2P, caught up in {took} ms");
}

#[test]
fn peer_count_and_has_peers_follow_the_peer_list_through_cuts_crashes_and_heals() {
    // The invariants compare the schedule's count, the heartbeat's sample and the peer
    // list at every check; this walks through every way the list changes.
    let mut w = world(4);
    let ops = [
        Op::CutP2p(0, 1),
        Op::Crash(2),
        Op::Block(3, true),
        Op::HealP2p(0, 1),
        Op::Restart(2),
        Op::Block(3, false),
        Op::CutP2p(1, 2),
        Op::CutP2p(1, 3),
        Op::CutP2p(0, 1),
    ];
    for op in ops {
        w.apply(&op);
        run(&mut w, PEER_TIMEOUT + PING);
    }
    assert_eq!(peers(&w, 1), 0, "every link of n1 is cut: it counts nobody");
    w.heal();
    until(
        &mut w,
        REDIAL + HEARTBEAT + 100,
        "all connected again",
        |w| (0..4).all(|a| peers(w, a) == 3),
    );
}

#[test]
fn a_silent_drop_of_p2p_falls_back_to_http_within_the_bound_and_p2p_returns_after_the_heal() {
    let mut w = world(2);
    write_everywhere(&mut w);
    // A blackhole: no connection closes, only silence tells.
    w.apply(&Op::CutP2p(0, 1));
    let cut = w.now();
    run(&mut w, PEER_TIMEOUT - 1);
    assert_eq!(
        peers(&w, 0),
        1,
        "silence shorter than the peer timeout proves nothing"
    );
    until(&mut w, PING + 10, "the silent peer is judged dead", |w| {
        peers(w, 0) == 0 && peers(w, 1) == 0
    });
    // The fallback counts from when the peer stopped counting, not from the cut.
    until(&mut w, FALLBACK + HEARTBEAT, "HTTP takes over", |w| {
        all_on(w, Lung::Http)
    });
    let after = w.now() - cut;
    assert!(
        (PEER_TIMEOUT + FALLBACK..=PEER_TIMEOUT + PING + FALLBACK + HEARTBEAT).contains(&after),
        "fell back {after} ms after the cut"
    );
    write_everywhere(&mut w);
    until(&mut w, 3 * POLL, "HTTP delivers during the cut", |w| {
        counts(w) == [4, 4] && roots_equal(w)
    });
    w.apply(&Op::HealP2p(0, 1));
    until(
        &mut w,
        REDIAL + HEARTBEAT + 100,
        "P2P returns after the heal",
        |w| all_on(w, Lung::P2p) && peers(w, 0) == 1,
    );
}

#[test]
fn a_slow_p2p_link_that_still_answers_causes_no_fallback() {
    let mut w = world(3);
    // Slow (up to 800 ms each way) and lossy, but the pings are answered.
    w.apply(&Op::Weather {
        loss: 10,
        latency: 800,
        duplicate: 5,
    });
    for _ in 0..10 {
        write_everywhere(&mut w);
        run(&mut w, 2 * FALLBACK);
        assert!(all_on(&w, Lung::P2p), "a slow link is not a dead one");
        assert!(
            w.nodes
                .iter()
                .all(|n| !n.schedule.as_ref().unwrap().http_sync_enabled()),
            "no false fallback"
        );
    }
    w.apply(&Op::Weather {
        loss: 0,
        latency: 20,
        duplicate: 0,
    });
    until(
        &mut w,
        RECONCILE_EVERY + HEARTBEAT + 1_000,
        "everything arrives",
        |w| counts(w) == [30, 30, 30] && roots_equal(w),
    );
}

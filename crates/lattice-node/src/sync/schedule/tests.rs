//! One test per decision the schedule makes.

use super::*;

const T0: u64 = 1_700_000_000_000;
const HB: u64 = 1_000;
const FB: u64 = 6_000;
const POLL: u64 = 2_000;
const EVERY: u64 = 30_000;

fn timers() -> Timers {
    Timers {
        heartbeat: Duration::from_millis(HB),
        fallback_after: Duration::from_millis(FB),
        http_poll: Duration::from_millis(POLL),
        reconcile_every: Duration::from_millis(EVERY),
    }
}

fn started(mode: Mode, neighbors: usize) -> (Schedule, Vec<Action>) {
    let mut s = Schedule::new(mode, timers(), neighbors, 7, T0);
    let out = s.start(T0);
    (s, out)
}

fn peers(ids: &[&str], sample: bool) -> Input {
    Input::Peers {
        sync_peers: ids.iter().map(|s| s.to_string()).collect(),
        sample,
        listen_known: true,
    }
}

fn has(out: &[Action], wanted: &Action) -> bool {
    out.contains(wanted)
}

fn transitions_to(out: &[Action], lung: Lung) -> usize {
    out.iter()
        .filter(|a| matches!(a, Action::Lung(LungEvent::Transition(t)) if t.to == lung))
        .count()
}

/// Drives the schedule through every wakeup up to `until`, answering nothing.
fn run_until(s: &mut Schedule, from: u64, until: u64) -> Vec<Action> {
    let mut out = Vec::new();
    let mut now = from;
    for _ in 0..10_000 {
        let next = s.next_wakeup().max(now);
        if next > until {
            break;
        }
        now = next;
        out.extend(s.handle(now, Input::Tick));
    }
    out
}

#[test]
fn starting_checks_every_neighbour_at_once_on_standby_and_turns_gossip_on() {
    let (_, out) = started(Mode::Auto, 2);
    assert!(has(&out, &Action::Lung(LungEvent::Started)), "{out:?}");
    assert!(has(&out, &Action::SetGossip(true)));
    assert!(has(&out, &Action::CheckNeighbor { index: 0 }));
    assert!(has(&out, &Action::CheckNeighbor { index: 1 }));
    assert!(!out.iter().any(|a| matches!(a, Action::SyncNeighbor { .. })));
}

#[test]
fn the_heartbeat_asks_for_the_peers_until_the_listen_addresses_are_known() {
    let (mut s, out) = started(Mode::Auto, 0);
    assert!(has(&out, &Action::RefreshPeers));
    let out = s.handle(T0 + HB, Input::Tick);
    assert!(has(&out, &Action::RefreshPeers));
    s.handle(T0 + HB, peers(&[], false));
    let out = s.handle(T0 + 2 * HB, Input::Tick);
    assert!(!has(&out, &Action::RefreshPeers), "{out:?}");
}

#[test]
fn the_fallback_fires_after_fallback_after_without_peers_and_starts_the_http_lung() {
    let (mut s, _) = started(Mode::Auto, 1);
    s.handle(
        T0,
        Input::NeighborDone {
            index: 0,
            outcome: NeighborOutcome::CheckAnswered,
        },
    );
    let before = run_until(&mut s, T0, T0 + FB - 1);
    assert_eq!(transitions_to(&before, Lung::Http), 0, "{before:?}");
    assert!(!s.http_sync_enabled());
    let after = run_until(&mut s, T0 + FB - 1, T0 + FB + HB);
    assert_eq!(transitions_to(&after, Lung::Http), 1, "{after:?}");
    assert!(has(&after, &Action::HttpLungActive));
    assert!(has(&after, &Action::Follow { index: 0, epoch: 1 }));
}

#[test]
fn a_peer_sample_resets_the_countdown_and_a_returning_peer_restores_p2p_with_a_round() {
    let (mut s, _) = started(Mode::Auto, 1);
    run_until(&mut s, T0, T0 + FB + HB);
    assert!(s.http_sync_enabled());
    let out = s.handle(T0 + FB + HB + 10, peers(&["a"], true));
    assert_eq!(transitions_to(&out, Lung::P2p), 1, "{out:?}");
    assert!(has(&out, &Action::HttpLungStandby));
    assert!(has(&out, &Action::SyncPeer("a".into())), "catch-up round");
    assert!(!s.http_sync_enabled());
}

#[test]
fn peers_reported_without_a_sample_are_judged_at_the_next_heartbeat() {
    let (mut s, _) = started(Mode::Auto, 0);
    s.handle(T0 + 10, peers(&["a"], false));
    assert_eq!(s.lungs().peerless_since_ms, Some(T0), "not sampled yet");
    s.handle(T0 + HB, Input::Tick);
    assert_eq!(s.lungs().peerless_since_ms, None);
}

#[test]
fn a_sync_peer_is_reconciled_with_once_at_a_time() {
    let (mut s, _) = started(Mode::Auto, 0);
    s.handle(T0, peers(&["a"], true));
    let first = s.handle(T0 + 1, Input::NewSyncPeer("a".into()));
    assert!(has(&first, &Action::SyncPeer("a".into())));
    let again = s.handle(T0 + 2, Input::NewSyncPeer("a".into()));
    assert!(!has(&again, &Action::SyncPeer("a".into())), "{again:?}");
    s.handle(T0 + 3, Input::PeerSyncDone("a".into()));
    let third = s.handle(T0 + 4, Input::NewSyncPeer("a".into()));
    assert!(has(&third, &Action::SyncPeer("a".into())));
}

#[test]
fn a_reconciliation_round_runs_every_reconcile_every_with_each_sync_peer() {
    let (mut s, _) = started(Mode::Auto, 0);
    s.handle(T0, peers(&["a", "b"], true));
    let quiet = run_until(&mut s, T0 + 1, T0 + EVERY - 1);
    assert!(
        !quiet.iter().any(|a| matches!(a, Action::SyncPeer(_))),
        "{quiet:?}"
    );
    let round = run_until(&mut s, T0 + EVERY - 1, T0 + EVERY + HB);
    assert!(has(&round, &Action::SyncPeer("a".into())));
    assert!(has(&round, &Action::SyncPeer("b".into())));
}

#[test]
fn a_commit_makes_the_roots_stale_and_the_next_heartbeat_runs_a_round() {
    let (mut s, _) = started(Mode::Auto, 0);
    s.handle(T0, peers(&["a"], true));
    let out = s.handle(T0 + 10, Input::EntryCommitted);
    assert!(
        !has(&out, &Action::SyncPeer("a".into())),
        "waits for the beat"
    );
    let out = s.handle(T0 + HB, Input::Tick);
    assert!(has(&out, &Action::SyncPeer("a".into())), "{out:?}");
}

#[test]
fn forced_http_turns_gossip_off_and_stops_p2p_reconciliation() {
    let (mut s, _) = started(Mode::Auto, 1);
    s.handle(T0, peers(&["a"], true));
    let out = s.handle(T0 + 5, Input::SetMode(Mode::Http));
    assert!(has(&out, &Action::SetGossip(false)));
    assert!(has(&out, &Action::HttpLungActive));
    let out = s.handle(T0 + 6, Input::NewSyncPeer("a".into()));
    assert!(out.is_empty(), "{out:?}");
    s.handle(T0 + 7, Input::EntryCommitted);
    let out = run_until(&mut s, T0 + 8, T0 + 2 * EVERY);
    assert!(
        !out.iter().any(|a| matches!(a, Action::SyncPeer(_))),
        "{out:?}"
    );
    let out = s.handle(T0 + 2 * EVERY + 1, Input::SetMode(Mode::Auto));
    assert!(has(&out, &Action::SetGossip(true)));
}

#[test]
fn a_blocked_p2p_lung_cuts_once_refreshes_peers_and_reconciles_with_no_one() {
    let (mut s, _) = started(Mode::Auto, 0);
    s.handle(T0, peers(&["a"], true));
    let out = s.handle(T0 + 1, Input::SetP2pBlocked(true));
    assert_eq!(out, vec![Action::BlockP2p(true), Action::RefreshPeers]);
    assert!(s.handle(T0 + 2, Input::SetP2pBlocked(true)).is_empty());
    assert!(s.handle(T0 + 3, Input::NewSyncPeer("a".into())).is_empty());
    let out = s.handle(T0 + 4, Input::SetP2pBlocked(false));
    assert_eq!(out, vec![Action::BlockP2p(false), Action::RefreshPeers]);
}

#[test]
fn a_neighbour_answering_on_standby_is_checked_again_one_poll_later() {
    let (mut s, _) = started(Mode::Auto, 1);
    s.handle(
        T0 + 5,
        Input::NeighborDone {
            index: 0,
            outcome: NeighborOutcome::CheckAnswered,
        },
    );
    let out = s.handle(T0 + POLL - 1, Input::Tick);
    assert!(!has(&out, &Action::CheckNeighbor { index: 0 }));
    let out = s.handle(T0 + POLL, Input::Tick);
    assert!(has(&out, &Action::CheckNeighbor { index: 0 }), "{out:?}");
}

#[test]
fn a_neighbour_is_never_asked_twice_at_once() {
    let (mut s, _) = started(Mode::Auto, 1);
    let out = run_until(&mut s, T0 + 1, T0 + 5 * POLL);
    assert!(!has(&out, &Action::CheckNeighbor { index: 0 }), "{out:?}");
}

#[test]
fn failing_standby_checks_are_retried_every_poll_without_growing() {
    let (mut s, _) = started(Mode::P2p, 1);
    let mut at = T0;
    for _ in 0..5 {
        s.handle(
            at,
            Input::NeighborDone {
                index: 0,
                outcome: NeighborOutcome::CheckFailed,
            },
        );
        assert_eq!(s.neighbor(0).next_attempt_ms, Some(at + POLL));
        at += POLL;
        assert!(has(
            &s.handle(at, Input::Tick),
            &Action::CheckNeighbor { index: 0 }
        ));
    }
}

fn active(neighbors: usize) -> Schedule {
    let (mut s, _) = started(Mode::Http, neighbors);
    for index in 0..neighbors {
        s.handle(
            T0,
            Input::NeighborDone {
                index,
                outcome: NeighborOutcome::SyncFailed,
            },
        );
    }
    s
}

#[test]
fn failing_syncs_back_off_exponentially_up_to_max_backoff_polls() {
    let mut s = active(1);
    let mut now = T0;
    let mut waits = Vec::new();
    for _ in 0..8 {
        let due = s.neighbor(0).next_attempt_ms.expect("backing off");
        waits.push(due - now);
        assert!(!has(
            &s.handle(due - 1, Input::Tick),
            &Action::SyncNeighbor { index: 0 }
        ));
        assert!(has(
            &s.handle(due, Input::Tick),
            &Action::SyncNeighbor { index: 0 }
        ));
        now = due;
        s.handle(
            now,
            Input::NeighborDone {
                index: 0,
                outcome: NeighborOutcome::SyncFailed,
            },
        );
    }
    // Jittered over the upper half of each doubling, capped at six polls.
    let cap = POLL * u64::from(MAX_BACKOFF_POLLS);
    for (i, w) in waits.iter().enumerate() {
        let full = (POLL << i).min(cap);
        assert!(*w >= full / 2 && *w <= full, "wait {i} = {w} of {full}");
    }
    assert!(waits.iter().rev().take(3).all(|w| *w >= cap / 2));
}

#[test]
fn a_sync_that_succeeds_clears_the_backoff() {
    let mut s = active(1);
    let due = s.neighbor(0).next_attempt_ms.unwrap();
    s.handle(due, Input::Tick);
    s.handle(
        due + 1,
        Input::NeighborDone {
            index: 0,
            outcome: NeighborOutcome::Synced,
        },
    );
    assert_eq!(s.neighbor(0).next_attempt_ms, None);
    // Next sync one poll after the last start.
    assert!(has(
        &s.handle(due + POLL, Input::Tick),
        &Action::SyncNeighbor { index: 0 }
    ));
}

#[test]
fn strikes_earned_while_needed_are_forgotten_when_the_lung_activates_again() {
    let mut s = active(1);
    for _ in 0..4 {
        let due = s.neighbor(0).next_attempt_ms.unwrap();
        s.handle(due, Input::Tick);
        s.handle(
            due,
            Input::NeighborDone {
                index: 0,
                outcome: NeighborOutcome::SyncFailed,
            },
        );
    }
    let now = s.neighbor(0).next_attempt_ms.unwrap();
    s.handle(now, Input::SetMode(Mode::P2p));
    assert_eq!(
        s.neighbor(0),
        NeighborView::default(),
        "standby clears the view"
    );
    let out = s.handle(now + 1, Input::SetMode(Mode::Http));
    // Still in flight from before: a fresh sync waits for its end, then runs at once.
    assert!(!has(&out, &Action::SyncNeighbor { index: 0 }), "{out:?}");
    let out = s.handle(
        now + 2,
        Input::NeighborDone {
            index: 0,
            outcome: NeighborOutcome::Cancelled,
        },
    );
    assert!(has(&out, &Action::SyncNeighbor { index: 0 }), "{out:?}");
    s.handle(
        now + 4,
        Input::NeighborDone {
            index: 0,
            outcome: NeighborOutcome::SyncFailed,
        },
    );
    let wait = s.neighbor(0).next_attempt_ms.unwrap() - (now + 4);
    assert!(wait <= POLL, "first strike again: {wait}");
}

#[test]
fn followers_start_with_the_http_lung_and_are_cancelled_with_it() {
    let (mut s, _) = started(Mode::Auto, 2);
    let out = s.handle(T0 + 1, Input::SetMode(Mode::Http));
    assert!(has(&out, &Action::Follow { index: 0, epoch: 1 }));
    assert!(has(&out, &Action::Follow { index: 1, epoch: 1 }));
    s.handle(T0 + 2, Input::FollowerConnected { index: 0, epoch: 1 });
    assert!(s.neighbor(0).events_connected);
    let out = s.handle(T0 + 3, Input::SetMode(Mode::P2p));
    assert!(has(&out, &Action::HttpLungStandby));
    assert!(!s.neighbor(0).events_connected);
    // A late report of the cancelled session changes nothing.
    s.handle(T0 + 4, Input::FollowerConnected { index: 1, epoch: 1 });
    assert!(!s.neighbor(1).events_connected);
    let out = run_until(&mut s, T0 + 5, T0 + 60_000);
    assert!(
        !out.iter().any(|a| matches!(a, Action::Follow { .. })),
        "{out:?}"
    );
}

#[test]
fn a_follower_that_keeps_failing_backs_off_and_a_stable_stream_is_retried_soon() {
    let (mut s, _) = started(Mode::Http, 1);
    let base = FOLLOW_RETRY_BASE.as_millis() as u64;
    let mut now = T0;
    let mut waits = Vec::new();
    for _ in 0..5 {
        s.handle(
            now,
            Input::FollowerEnded {
                index: 0,
                epoch: 1,
                forged: false,
            },
        );
        let next = s.neighbor(0).events_next_attempt_ms.unwrap();
        waits.push(next - now);
        let out = s.handle(next, Input::Tick);
        assert!(has(&out, &Action::Follow { index: 0, epoch: 1 }), "{out:?}");
        now = next;
    }
    for (i, w) in waits.iter().enumerate() {
        let full = base << i;
        assert!(*w >= full / 2 && *w <= full, "wait {i} = {w} of {full}");
    }
    s.handle(now, Input::FollowerConnected { index: 0, epoch: 1 });
    let later = now + STABLE_STREAM.as_millis() as u64;
    s.handle(
        later,
        Input::FollowerEnded {
            index: 0,
            epoch: 1,
            forged: false,
        },
    );
    let wait = s.neighbor(0).events_next_attempt_ms.unwrap() - later;
    assert!(wait <= base, "a stable stream starts over: {wait}");
}

#[test]
fn a_forged_announcement_strikes_the_neighbour_and_backs_off_its_polls() {
    let (mut s, _) = started(Mode::Http, 1);
    s.handle(
        T0 + 1,
        Input::NeighborDone {
            index: 0,
            outcome: NeighborOutcome::Synced,
        },
    );
    assert_eq!(s.neighbor(0).next_attempt_ms, None);
    s.handle(
        T0 + 2,
        Input::FollowerEnded {
            index: 0,
            epoch: 1,
            forged: true,
        },
    );
    let v = s.neighbor(0);
    assert!(v.next_attempt_ms.is_some_and(|d| d >= T0 + POLL), "{v:?}");
    assert!(!v.events_connected);
}

#[test]
fn the_next_wakeup_is_the_earliest_of_heartbeat_neighbours_and_followers() {
    let (mut s, _) = started(Mode::Http, 1);
    assert_eq!(s.next_wakeup(), T0 + HB, "the neighbour is in flight");
    s.handle(
        T0 + 10,
        Input::FollowerEnded {
            index: 0,
            epoch: 1,
            forged: false,
        },
    );
    let follow = s.neighbor(0).events_next_attempt_ms.unwrap();
    assert!(follow < T0 + HB);
    assert_eq!(s.next_wakeup(), follow);
}

#[test]
fn the_situation_counts_the_same_peers_status_shows() {
    let (mut s, _) = started(Mode::Auto, 2);
    s.handle(T0, peers(&["a", "b"], false));
    let sit = s.situation(2, 1);
    assert_eq!(sit.live_sync_peers, 2);
    assert_eq!(s.sync_peer_count(), 2);
    assert!(!sit.p2p_blocked);
    assert_eq!(sit.healthy_neighbors, 1);
}

#[test]
fn the_same_seed_makes_the_same_decisions() {
    let run = |seed| {
        let mut s = Schedule::new(Mode::Http, timers(), 3, seed, T0);
        let mut all = s.start(T0);
        for i in 0..20u64 {
            all.extend(s.handle(
                T0 + i * 500,
                Input::NeighborDone {
                    index: (i % 3) as usize,
                    outcome: NeighborOutcome::SyncFailed,
                },
            ));
            all.extend(s.handle(T0 + i * 500 + 1, Input::Tick));
        }
        (all, (0..3).map(|i| s.neighbor(i)).collect::<Vec<_>>())
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1).1, run(2).1, "the jitter follows the seed");
}

//! The simulator's runs: the default one in the test command, the long one by
//! `LATTICE_SIM_SCHEDULES`, one seed replayed by `LATTICE_SIM_SEED`, and the proof that
//! a wrong core is caught.

use super::*;

const NODES: usize = 5;
const STEPS: usize = 200;
const WRITES: usize = 50;
const DEFAULT_SCHEDULES: u64 = 1_000;
/// Schedule `i` runs seed `BASE_SEED + i`.
const BASE_SEED: u64 = 0x1A77_1CE0_0000;

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={v:?} is not a number")))
}

/// The first failure among `count` schedules from `BASE_SEED`, split over two threads,
/// and the figures of the passing ones.
fn sweep(count: u64, wrong: Option<Wrong>) -> (Figures, u64, Option<(u64, usize, String)>) {
    let stop = std::sync::atomic::AtomicBool::new(false);
    let halves: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2u64)
            .map(|half| {
                let stop = &stop;
                scope.spawn(move || {
                    let mut sum = Figures::default();
                    let mut ran = 0;
                    let mut i = half;
                    while i < count && !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let seed = BASE_SEED + i;
                        let steps = generate(seed, NODES, STEPS, WRITES);
                        match run(seed, &steps, NODES, wrong, None) {
                            Ok(f) => {
                                sum.simulated_ms += f.simulated_ms;
                                sum.faults += f.faults;
                                sum.acked += f.acked;
                                sum.lost += f.lost;
                                sum.reconciliations += f.reconciliations;
                                sum.reconciliations_failed += f.reconciliations_failed;
                                sum.messages += f.messages;
                                sum.messages_lost += f.messages_lost;
                                ran += 1;
                                // A long run says how far it got (half the schedules
                                // are this thread's).
                                if count > DEFAULT_SCHEDULES && ran % 1_000 == 0 {
                                    eprintln!(
                                        "sim: {} of {count} schedules done, {} lost so far",
                                        2 * ran,
                                        sum.lost
                                    );
                                }
                            }
                            Err((step, why)) => {
                                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                                return (sum, ran, Some((seed, step, why)));
                            }
                        }
                        i += 2;
                    }
                    (sum, ran, None)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut total = Figures::default();
    let mut ran = 0;
    let mut failure = None;
    for (f, r, fail) in halves {
        total.simulated_ms += f.simulated_ms;
        total.faults += f.faults;
        total.acked += f.acked;
        total.lost += f.lost;
        total.reconciliations += f.reconciliations;
        total.reconciliations_failed += f.reconciliations_failed;
        total.messages += f.messages;
        total.messages_lost += f.messages_lost;
        ran += r;
        failure = failure.or(fail);
    }
    (total, ran, failure)
}

/// The seed, the failure and the shrunk schedule replayed with its trace.
fn report(seed: u64, step: usize, why: &str, wrong: Option<Wrong>) -> String {
    let steps = generate(seed, NODES, STEPS, WRITES);
    let minimal = shrink(seed, &steps, NODES, wrong);
    let mut trace = Vec::new();
    let again = run(seed, &minimal, NODES, wrong, Some(&mut trace));
    format!(
        "schedule seed {seed:#x} failed at step {step}: {why}\n\
         replay: LATTICE_SIM_SEED={seed:#x} cargo test -p lattice-node --lib sync::sim\n\
         minimal trace ({} of {} steps; it fails with {:?}):\n{}",
        minimal.len(),
        steps.len(),
        again.err().map(|(_, e)| e),
        trace.join("\n")
    )
}

#[test]
fn every_schedule_keeps_acknowledged_entries_and_converges_after_the_last_heal() {
    if let Some(seed) = env_u64("LATTICE_SIM_SEED") {
        let steps = generate(seed, NODES, STEPS, WRITES);
        let mut trace = Vec::new();
        let result = run(seed, &steps, NODES, None, Some(&mut trace));
        println!("{}", trace.join("\n"));
        println!("{result:?}");
        if let Err((step, why)) = result {
            panic!("{}", report(seed, step, &why, None));
        }
        return;
    }
    let count = env_u64("LATTICE_SIM_SCHEDULES").unwrap_or(DEFAULT_SCHEDULES);
    let (figures, ran, failure) = sweep(count, None);
    if let Some((seed, step, why)) = failure {
        panic!("{}", report(seed, step, &why, None));
    }
    assert_eq!(ran, count);
    assert_eq!(figures.lost, 0);
    println!(
        "simulated {ran} schedules ({NODES} nodes, {STEPS} steps, {WRITES} writes each): \
         {:.1} simulated hours, {} faults, {} acknowledged writes, 0 lost; \
         {} reconciliations completed and {} failed midway, {} reconciliation requests \
         delivered and {} messages lost",
        figures.simulated_ms as f64 / 3_600_000.0,
        figures.faults,
        figures.acked,
        figures.reconciliations,
        figures.reconciliations_failed,
        figures.messages,
        figures.messages_lost
    );
    // The faults reached the reconciliation itself, and it recovered.
    assert!(figures.reconciliations_failed > 0 && figures.messages_lost > 0);
}

#[test]
fn a_core_that_counts_a_dead_peer_as_live_is_caught_by_the_default_run() {
    let (_, _, failure) = sweep(
        DEFAULT_SCHEDULES,
        Some(Wrong::Core(Defect::CountsADeadPeer)),
    );
    let (seed, step, why) = failure.expect("the wrong core passed every schedule");
    // Not shrunk: the proof is that it is caught (a shrink replays it hundreds of times).
    println!("the wrong core is caught by schedule seed {seed:#x} at step {step}: {why}");
}

#[test]
fn a_seed_replays_step_for_step() {
    let seed = BASE_SEED + 17;
    let steps = generate(seed, NODES, STEPS, WRITES);
    assert_eq!(steps, generate(seed, NODES, STEPS, WRITES));
    let (mut one, mut two) = (Vec::new(), Vec::new());
    let a = run(seed, &steps, NODES, None, Some(&mut one));
    let b = run(seed, &steps, NODES, None, Some(&mut two));
    assert_eq!(one, two);
    assert_eq!(a, b);
    assert_ne!(steps, generate(seed + 1, NODES, STEPS, WRITES));
}

#[test]
fn a_schedule_has_the_writes_and_steps_asked_for() {
    let steps = generate(BASE_SEED, NODES, STEPS, WRITES);
    assert_eq!(steps.len(), STEPS);
    let writes = steps
        .iter()
        .filter(|s| matches!(s.op, Op::Write(_)))
        .count();
    assert_eq!(writes, WRITES);
}

#[test]
fn a_reconciliation_that_drops_the_last_entry_it_moves_is_caught_by_the_default_run() {
    let wrong = Some(Wrong::Reconciliation(
        reconcile_v2::Defect::DropsTheLastMoved,
    ));
    let (_, _, failure) = sweep(DEFAULT_SCHEDULES, wrong);
    let (seed, step, why) = failure.expect("the wrong reconciliation passed every schedule");
    println!("the wrong reconciliation is caught by schedule seed {seed:#x} at step {step}: {why}");
}

#[test]
fn a_liveness_that_keeps_a_silent_peer_is_caught_by_the_default_run() {
    let wrong = Some(Wrong::Liveness(
        crate::sync::liveness::Defect::KeepsSilentPeers,
    ));
    let (_, _, failure) = sweep(DEFAULT_SCHEDULES, wrong);
    let (seed, step, why) = failure.expect("the wrong liveness passed every schedule");
    println!("the wrong liveness is caught by schedule seed {seed:#x} at step {step}: {why}");
}

//! `lattice-bench reconcile`: Lattice v2, v1 and negentropy side by side on the same id sets.
//!
//! Each case is two real stores, copies of one cached base store of `n` entries, with
//! `d` real signed entries added: all to the answering side (`scattered`: created at
//! random times among the base's; `newest`: created after all of them) or split between
//! the two sides (`both`: scattered, half missing on each side). The initiating side is
//! the one that lacks entries. Every system must find exactly the differences put in,
//! and both sides must end with equal roots.
//!
//! Lattice v2 and v1 run `reconcile` as the HTTP lung does, over [`HttpLungRemote`]
//! (v1 as an older node's asker against a v2 node). Negentropy
//! 0.5.3 runs over the same (created_at, id) pairs, its messages counted as the raw bytes
//! the protocol defines (NIP-77 carries them hex-encoded, twice that); its entries step
//! is the one the HTTP lung has today (the same fetch and push messages), so the two
//! differ only in the walk. Negentropy runs first and changes no store; then Lattice v2, then v1 on a fresh copy.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{Context, Result, ensure};
use lattice_node::NodeKey;
use lattice_node::ledger::{
    DEFAULT_MAX_PAYLOAD, Entry, EntryId, Merkle, Prefix, Store, StoreOptions,
};
use lattice_node::sync::reconcile::{
    self as v1, FetchRequest, MAX_ENTRIES, Remote, bounded_message,
};
use lattice_node::sync::reconcile_v2;
use negentropy::{Id, Negentropy, NegentropyStorageVector};
use serde::Serialize;

use crate::corpus::{self, Cache, STEP_MS, T0_MS};
use crate::proc;
use crate::wire::{HttpLungRemote, Traffic};

/// Where the differences lie.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Pattern {
    /// The answering side has `d` more entries, created at random times among the others.
    Scattered,
    /// The answering side has the `d` newest entries.
    Newest,
    /// Each side lacks about half of the `d` differences (scattered).
    Both,
}

impl Pattern {
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Scattered => "scattered",
            Pattern::Newest => "newest",
            Pattern::Both => "both",
        }
    }
}

/// A reconciliation protocol under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum System {
    /// Reconciliation v2 (issue 12): the rateless set sketch over salted short ids.
    #[value(name = "lattice-v2")]
    LatticeV2,
    /// Today's Merkle trie walk over JSON, as the HTTP lung sends it.
    #[value(name = "lattice-v1")]
    LatticeV1,
    /// negentropy 0.5.3 without a frame size limit.
    #[value(name = "negentropy-f0")]
    NegentropyF0,
    /// negentropy 0.5.3 with frames of at most 60,000 bytes.
    #[value(name = "negentropy-f60k")]
    NegentropyF60k,
}

impl System {
    pub fn name(self) -> &'static str {
        match self {
            System::LatticeV2 => "lattice-v2",
            System::LatticeV1 => "lattice-v1",
            System::NegentropyF0 => "negentropy-f0",
            System::NegentropyF60k => "negentropy-f60k",
        }
    }

    /// The systems in the order a case runs them (read-only ones first; each Lattice
    /// system changes the stores, so the second one runs on a fresh copy of the case).
    pub const AVAILABLE: [System; 4] = [
        System::NegentropyF0,
        System::NegentropyF60k,
        System::LatticeV2,
        System::LatticeV1,
    ];
}

pub struct Options {
    pub ns: Vec<u64>,
    pub ds: Vec<u64>,
    pub patterns: Vec<Pattern>,
    pub systems: Vec<System>,
    /// Runs of Lattice v2 per case (each on fresh stores, under a fresh salt).
    pub v2_runs: u32,
    pub cache: PathBuf,
}

/// One case of one system: the fields the issue names, and a few more.
#[derive(Clone, Debug, Serialize)]
pub struct CaseResult {
    pub n: u64,
    pub d: u64,
    pub pattern: &'static str,
    pub system: &'static str,
    /// Which run of this system on this case (0 unless `--v2-runs` asked for more).
    pub run: u32,
    /// Round trips before the first entry moves.
    pub walk_round_trips: u64,
    /// All round trips, entries included.
    pub round_trips: u64,
    /// Message bytes of the walk, both ways.
    pub walk_bytes: u64,
    pub walk_bytes_sent: u64,
    pub walk_bytes_received: u64,
    /// Message bytes of the entries step (fetch and push), both ways.
    pub entry_bytes: u64,
    /// The differing entries' own JSON bytes, the floor for `entry_bytes`.
    pub entries_own_bytes: u64,
    /// Walk bytes per difference (absent when d = 0).
    pub bytes_per_diff: Option<f64>,
    /// Walk bytes over 32 bytes per differing id (absent when d = 0).
    pub floor_ratio: Option<f64>,
    /// CPU of both sides, whole reconciliation (entries verified and stored included).
    pub cpu_ms: f64,
    /// CPU of both sides during the walk.
    pub walk_cpu_ms: f64,
    /// CPU of the answering side during the walk.
    pub walk_cpu_ms_answering: f64,
    /// Entries the initiating side pulled and pushed.
    pub pulled: u64,
    pub pushed: u64,
}

/// One case's two stores and the differences put into them.
struct Case {
    /// The answering side.
    a: Store,
    /// The initiating side.
    b: Store,
    /// What `b` lacks.
    need: BTreeSet<EntryId>,
    /// What `a` lacks.
    give: BTreeSet<EntryId>,
    own_bytes: u64,
}

pub async fn run(opts: &Options) -> Result<Vec<CaseResult>> {
    // Each v2 run is a system run of its own: on a fresh copy, under a fresh salt.
    let systems: Vec<(System, u32)> = System::AVAILABLE
        .into_iter()
        .filter(|s| opts.systems.contains(s))
        .flat_map(|s| {
            let runs = if s == System::LatticeV2 {
                opts.v2_runs.max(1)
            } else {
                1
            };
            (0..runs).map(move |run| (s, run))
        })
        .collect();
    let cache = Cache::new(&opts.cache)?;
    let mut out = Vec::new();
    for &n in &opts.ns {
        ensure!(n > 0, "n must be at least 1");
        cache.base(n).await?;
        for &pattern in &opts.patterns {
            for &d in &opts.ds {
                let mut case = setup(&cache, n, d, pattern).await?;
                let mut dirty = false;
                for &(system, run) in &systems {
                    let lattice = matches!(system, System::LatticeV1 | System::LatticeV2);
                    if lattice && dirty {
                        case.a.close();
                        case.b.close();
                        drop(case);
                        cache.clear_scratch()?;
                        case = setup(&cache, n, d, pattern).await?;
                    }
                    dirty |= lattice;
                    let r = match system {
                        System::LatticeV1 => run_lattice(&case, n, d, pattern, system).await,
                        System::LatticeV2 => run_lattice(&case, n, d, pattern, system).await,
                        System::NegentropyF0 => {
                            run_negentropy(&case, n, d, pattern, 0, system).await
                        }
                        System::NegentropyF60k => {
                            run_negentropy(&case, n, d, pattern, 60_000, system).await
                        }
                    }
                    .with_context(|| {
                        format!("{} at n={n} d={d} {}", system.name(), pattern.name())
                    })?;
                    let r = CaseResult { run, ..r };
                    eprintln!("{}", row(&r));
                    out.push(r);
                }
                case.a.close();
                case.b.close();
                drop(case);
                cache.clear_scratch()?;
            }
        }
    }
    Ok(out)
}

fn case_seed(n: u64, d: u64, pattern: Pattern) -> u64 {
    n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ d.wrapping_mul(0xC2B2_AE3D_27D4_EB4F) ^ pattern as u64
}

async fn setup(cache: &Cache, n: u64, d: u64, pattern: Pattern) -> Result<Case> {
    let a = Store::open(&cache.copy_of_base(n, "a").await?, StoreOptions::default())?;
    let b = Store::open(&cache.copy_of_base(n, "b").await?, StoreOptions::default())?;
    let seed = case_seed(n, d, pattern);
    let mut rng = fastrand::Rng::with_seed(seed);
    let authors = corpus::authors();
    let extras: Vec<Entry> = (0..d)
        .map(|k| {
            let created_at = match pattern {
                Pattern::Newest => T0_MS + (n + k) * STEP_MS + STEP_MS / 2,
                Pattern::Scattered | Pattern::Both => {
                    T0_MS + rng.u64(0..n) * STEP_MS + rng.u64(1..STEP_MS)
                }
            };
            corpus::extra_entry(&authors, seed, k, created_at)
        })
        .collect();
    let own_bytes = extras.iter().map(|e| e.to_json().len() as u64).sum();
    let split = match pattern {
        Pattern::Both => extras.len() - extras.len() / 2,
        _ => extras.len(),
    };
    let (to_a, to_b) = extras.split_at(split);
    let need: BTreeSet<EntryId> = to_a.iter().map(Entry::id).collect();
    let give: BTreeSet<EntryId> = to_b.iter().map(Entry::id).collect();
    ensure!(
        need.len() + give.len() == d as usize,
        "the case's extra entries are not distinct"
    );
    a.append_batch(to_a.to_vec()).await?;
    b.append_batch(to_b.to_vec()).await?;
    Ok(Case {
        a,
        b,
        need,
        give,
        own_bytes,
    })
}

/// The answering side's node key seed: its PeerId is what its state names.
pub const ANSWERING_SEED: [u8; 32] = [0xA0; 32];

/// The answering node's PeerId, as its state names it.
pub fn answering_peer() -> String {
    NodeKey::from_seed(ANSWERING_SEED).peer_id().to_string()
}

fn result(
    case: &Case,
    (n, d, pattern, system): (u64, u64, Pattern, System),
    t: &Traffic,
    walk: (u64, u64, u64),
    cpu: (u64, u64, u64),
    pulled: u64,
    pushed: u64,
) -> CaseResult {
    let (walk_round_trips, walk_sent, walk_received) = walk;
    let walk_bytes = walk_sent + walk_received;
    CaseResult {
        n,
        d,
        pattern: pattern.name(),
        system: system.name(),
        run: 0,
        walk_round_trips,
        round_trips: walk_round_trips + t.entry_requests,
        walk_bytes,
        walk_bytes_sent: walk_sent,
        walk_bytes_received: walk_received,
        entry_bytes: t.entry_bytes(),
        entries_own_bytes: case.own_bytes,
        bytes_per_diff: (d > 0).then(|| walk_bytes as f64 / d as f64),
        floor_ratio: (d > 0).then(|| walk_bytes as f64 / (32.0 * d as f64)),
        cpu_ms: proc::ms(cpu.0),
        walk_cpu_ms: proc::ms(cpu.1),
        walk_cpu_ms_answering: proc::ms(cpu.2),
        pulled,
        pushed,
    }
}

async fn run_lattice(
    case: &Case,
    n: u64,
    d: u64,
    pattern: Pattern,
    system: System,
) -> Result<CaseResult> {
    let remote = HttpLungRemote::new(case.a.clone(), answering_peer(), DEFAULT_MAX_PAYLOAD);
    // Both run against a node that speaks v2; v1 is the asker of an older node.
    let options = reconcile_v2::Options {
        v1_only: system == System::LatticeV1,
        ..Default::default()
    };
    let cpu0 = proc::cpu_ns();
    let report = v1::reconcile_with(&case.b, &remote, DEFAULT_MAX_PAYLOAD, &options).await?;
    let cpu_all = proc::cpu_ns() - cpu0;
    let t = remote.traffic();
    let walk_cpu = t.walk_end_cpu_ns.map_or(cpu_all, |at| at - cpu0);

    // The report counts what the node's sync report would: it must agree with the wire.
    ensure!(
        report.requests as u64 == t.requests()
            && (report.bytes_sent, report.bytes_received) == remote.bytes(),
        "the sync report ({} requests, {} B sent, {} B received) disagrees with the wire ({:?})",
        report.requests,
        report.bytes_sent,
        report.bytes_received,
        t
    );
    ensure!(
        case.a.root() == case.b.root() && report.our_root == case.a.root(),
        "the roots differ after reconciling"
    );
    ensure!(
        report.pulled == case.need.len() && report.pushed == case.give.len(),
        "pulled {} and pushed {}; the differences were {} and {}",
        report.pulled,
        report.pushed,
        case.need.len(),
        case.give.len()
    );
    ensure!(
        case.need.iter().all(|id| case.b.contains(id))
            && case.give.iter().all(|id| case.a.contains(id)),
        "an expected difference did not cross"
    );
    ensure!(
        case.a.len() as u64 == n + d,
        "the answering side holds {} entries",
        case.a.len()
    );
    let expected = if system == System::LatticeV1 {
        reconcile_v2::Method::Walk
    } else {
        reconcile_v2::Method::Sketch
    };
    ensure!(
        d == 0 || report.method == expected,
        "{} found the difference by {:?}",
        system.name(),
        report.method
    );
    Ok(result(
        case,
        (n, d, pattern, system),
        &t,
        (t.walk_requests, t.walk_sent, t.walk_received),
        (cpu_all, walk_cpu, t.walk_answering_cpu_ns),
        report.pulled as u64,
        report.pushed as u64,
    ))
}

fn negentropy_storage(store: &Store) -> Result<NegentropyStorageVector> {
    let mut storage = NegentropyStorageVector::with_capacity(store.len());
    store.for_each(|e: Entry| -> Result<()> {
        storage.insert(e.created_at(), Id::from_byte_array(*e.id().as_bytes()))?;
        Ok(())
    })?;
    storage.seal()?;
    Ok(storage)
}

/// Most negentropy round trips before the run counts as stuck.
const MAX_NEGENTROPY_ROUNDS: u64 = 10_000;

async fn run_negentropy(
    case: &Case,
    n: u64,
    d: u64,
    pattern: Pattern,
    frame_limit: u64,
    system: System,
) -> Result<CaseResult> {
    // Both sides keep their storage built, as a relay does (and as Lattice keeps its tree).
    let ours = negentropy_storage(&case.b)?;
    let theirs = negentropy_storage(&case.a)?;
    let remote = HttpLungRemote::new(case.a.clone(), answering_peer(), DEFAULT_MAX_PAYLOAD).dry();

    let cpu0 = proc::cpu_ns();
    let mut client = Negentropy::borrowed(&ours, frame_limit)?;
    let mut server = Negentropy::borrowed(&theirs, frame_limit)?;
    let (mut have, mut need) = (Vec::new(), Vec::new());
    let (mut rounds, mut sent, mut received, mut answering) = (0u64, 0u64, 0u64, 0u64);
    let mut msg = client.initiate()?;
    loop {
        rounds += 1;
        ensure!(
            rounds <= MAX_NEGENTROPY_ROUNDS,
            "negentropy did not finish in {MAX_NEGENTROPY_ROUNDS} round trips"
        );
        sent += msg.len() as u64;
        let at = proc::cpu_ns();
        let answer = server.reconcile(&msg)?;
        answering += proc::cpu_ns() - at;
        received += answer.len() as u64;
        match client.reconcile_with_ids(&answer, &mut have, &mut need)? {
            Some(next) => msg = next,
            None => break,
        }
    }
    let walk_cpu = proc::cpu_ns() - cpu0;

    // Checked outside the measured time.
    let need: BTreeSet<EntryId> = need.iter().map(|id| EntryId(**id)).collect();
    let have: BTreeSet<EntryId> = have.iter().map(|id| EntryId(**id)).collect();
    ensure!(
        need == case.need,
        "negentropy found {} ids to pull; {} were put in",
        need.len(),
        case.need.len()
    );
    ensure!(
        have == case.give,
        "negentropy found {} ids to push; {} were put in",
        have.len(),
        case.give.len()
    );
    let all = |store: &Store, more: &BTreeSet<EntryId>| {
        let mut ids = store.ids_under(&Prefix::ROOT);
        ids.extend(more.iter().copied());
        Merkle::from_ids(ids).root()
    };
    ensure!(
        all(&case.b, &need) == all(&case.a, &have),
        "the roots would differ after moving the differences"
    );

    // The entries step as the HTTP lung has it, priced without changing either store.
    let cpu1 = proc::cpu_ns();
    let (pulled, pushed) = entries_step(&case.b, &remote, &need, &have).await?;
    let cpu_all = walk_cpu + (proc::cpu_ns() - cpu1);
    ensure!(
        pulled == need.len() as u64 && pushed == have.len() as u64,
        "the entries step moved {pulled} and {pushed}"
    );
    let t = remote.traffic();
    Ok(result(
        case,
        (n, d, pattern, system),
        &t,
        (rounds, sent, received),
        (cpu_all, walk_cpu, answering),
        pulled,
        pushed,
    ))
}

/// Lattice v1's entries step (`sync::reconcile`), but the pulled entries are verified and
/// not stored.
async fn entries_step(
    local: &Store,
    remote: &HttpLungRemote,
    need: &BTreeSet<EntryId>,
    give: &BTreeSet<EntryId>,
) -> Result<(u64, u64)> {
    let mut pulled = 0;
    let mut pending: Vec<EntryId> = need.iter().copied().collect();
    while !pending.is_empty() {
        let chunk: Vec<EntryId> = pending.iter().take(MAX_ENTRIES).copied().collect();
        let msg = remote.fetch(&FetchRequest { ids: chunk.clone() }).await?;
        let asked: BTreeSet<&EntryId> = chunk.iter().collect();
        let mut got = BTreeSet::new();
        for raw in &msg.entries {
            let e = Entry::from_json(raw.get(), DEFAULT_MAX_PAYLOAD)?;
            ensure!(
                asked.contains(&e.id()),
                "the answering side sent an entry not asked for"
            );
            got.insert(e.id());
        }
        ensure!(!got.is_empty(), "a fetch made no progress");
        pulled += got.len() as u64;
        pending.retain(|id| !got.contains(id));
    }
    let mut pushed = 0;
    let give: Vec<EntryId> = give.iter().copied().collect();
    for chunk in give.chunks(MAX_ENTRIES) {
        let entries = local.get_many(chunk)?;
        let mut rest: &[Entry] = &entries;
        while !rest.is_empty() {
            let (msg, taken) = bounded_message(rest);
            rest = &rest[taken..];
            pushed += remote.push(&msg).await?.accepted as u64;
        }
    }
    Ok((pulled, pushed))
}

/// The Markdown table's header, matching [`row`].
pub fn header() -> String {
    "| n | pattern | d | system | walk RT | all RT | walk bytes | B/diff | × 32 B/id | entry bytes | entries' own bytes | walk CPU ms (answering) | all CPU ms |\n\
     |---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        .to_string()
}

pub fn row(r: &CaseResult) -> String {
    let opt =
        |v: Option<f64>, digits: usize| v.map_or("–".to_string(), |v| format!("{v:.digits$}"));
    format!(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} ({:.1}) | {:.1} |",
        r.n,
        r.pattern,
        r.d,
        r.system,
        r.walk_round_trips,
        r.round_trips,
        r.walk_bytes,
        opt(r.bytes_per_diff, 0),
        opt(r.floor_ratio, 2),
        r.entry_bytes,
        r.entries_own_bytes,
        r.walk_cpu_ms,
        r.walk_cpu_ms_answering,
        r.cpu_ms,
    )
}

/// The header of [`spreads`]' table.
pub fn spread_header() -> String {
    "| n | pattern | d | system | runs | walk RT (max) | walk bytes: min / median / max | B/diff: median / max | walk CPU ms per side, max: asker / answering |\n\
     |---:|---|---:|---|---:|---:|---|---|---|"
        .to_string()
}

/// One line per case and system that ran more than once: the range over its runs.
pub fn spreads(results: &[CaseResult]) -> Vec<String> {
    let mut groups: Vec<Vec<&CaseResult>> = Vec::new();
    for r in results {
        let same = |g: &Vec<&CaseResult>| {
            let f = g[0];
            (f.n, f.d, f.pattern, f.system) == (r.n, r.d, r.pattern, r.system)
        };
        match groups.iter_mut().find(|g| same(g)) {
            Some(g) => g.push(r),
            None => groups.push(vec![r]),
        }
    }
    groups
        .into_iter()
        .filter(|g| g.len() > 1)
        .map(|g| {
            let mut bytes: Vec<u64> = g.iter().map(|r| r.walk_bytes).collect();
            bytes.sort_unstable();
            let median = bytes[bytes.len() / 2];
            let max = *bytes.last().expect("more than one run");
            let per = |b: u64| {
                let f = g[0];
                if f.d == 0 {
                    "–".to_string()
                } else {
                    format!("{:.0}", b as f64 / f.d as f64)
                }
            };
            let rt = g.iter().map(|r| r.walk_round_trips).max().unwrap_or(0);
            let asker = g
                .iter()
                .map(|r| r.walk_cpu_ms - r.walk_cpu_ms_answering)
                .fold(0.0, f64::max);
            let answering = g
                .iter()
                .map(|r| r.walk_cpu_ms_answering)
                .fold(0.0, f64::max);
            let f = g[0];
            format!(
                "| {} | {} | {} | {} | {} | {} | {} / {} / {} | {} / {} | {:.1} / {:.1} |",
                f.n,
                f.pattern,
                f.d,
                f.system,
                g.len(),
                rt,
                bytes[0],
                median,
                max,
                per(median),
                per(max),
                asker,
                answering
            )
        })
        .collect()
}

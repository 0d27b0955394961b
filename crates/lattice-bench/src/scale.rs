//! `lattice-bench scale`: what a big store costs to open and to verify. Each size is
//! measured in a child process of its own (`lattice-bench scale-one`), so resident
//! memory is that store's and not what earlier sizes left behind.
//!
//! Two opens are measured: of a store closed cleanly (the base copy), and of a store left
//! by a writer that died mid-run (`scale-dirty` appends [`DIRTY_ENTRIES`] and exits without
//! closing, as a killed node would: its log is not folded in and no clean close is
//! recorded, so the open recovers the log and runs the full check).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use lattice_node::ledger::{DEFAULT_MAX_PAYLOAD, Entry, Store, StoreOptions};
use serde::{Deserialize, Serialize};

use crate::corpus::{self, Cache, STEP_MS, T0_MS};
use crate::proc;

/// Entries the dying writer commits before it exits.
pub const DIRTY_ENTRIES: u64 = 2_000;

pub struct Options {
    pub ns: Vec<u64>,
    pub cache: PathBuf,
    /// The `lattice-bench` binary to run each measurement in.
    pub exe: PathBuf,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScaleResult {
    pub n: u64,
    /// Wall time of `Store::open` after a clean close.
    pub open_ms: f64,
    /// Whether that open ran the full integrity check.
    pub open_checked: bool,
    /// CPU time of that open (all threads): what it costs whatever the machine's load.
    #[serde(default)]
    pub open_cpu_ms: f64,
    /// Of which the integrity check and the Merkle rebuild (the store's own report).
    pub open_integrity_ms: f64,
    pub open_rebuild_ms: f64,
    /// Bytes written to storage while opening.
    pub open_write_bytes: u64,
    /// Resident memory right after opening, and before it (the process alone).
    pub rss_after_open_mb: f64,
    pub rss_before_open_mb: f64,
    /// Wall and CPU time of `verify_all`.
    pub verify_ms: f64,
    pub verify_cpu_ms: f64,
    /// The anchor, in the same process right after: every entry checked on one thread
    /// through the wire's text (`Entry::reverify`), as `lattice verify` did in 0.1.
    pub verify_anchor_ms: f64,
    /// `verify_ms` over `verify_anchor_ms` (issue 12's target: at most 0.25).
    pub verify_ratio: f64,
    pub peak_rss_mb: f64,
    /// Bytes of `ledger.db`.
    pub db_bytes: u64,
    /// The open of a store a writer left without closing: wall time, of which the
    /// integrity check, and bytes written.
    #[serde(default)]
    pub crashed_open_ms: f64,
    #[serde(default)]
    pub crashed_open_integrity_ms: f64,
    #[serde(default)]
    pub crashed_open_write_bytes: u64,
}

/// What `scale-one --after-crash` reports.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CrashedOpen {
    pub open_ms: f64,
    pub integrity_ms: f64,
    pub checked: bool,
    pub write_bytes: u64,
}

pub async fn run(opts: &Options) -> Result<Vec<ScaleResult>> {
    let cache = Cache::new(&opts.cache)?;
    let mut out = Vec::new();
    for &n in &opts.ns {
        // Opening writes: measure on a copy, keep the base as built.
        let dir = cache.copy_of_base(n, "scale").await?;
        let output = Command::new(&opts.exe)
            .arg("scale-one")
            .arg("--dir")
            .arg(&dir)
            .arg("--n")
            .arg(n.to_string())
            .output()
            .with_context(|| format!("cannot run {}", opts.exe.display()))?;
        ensure!(
            output.status.success(),
            "scale-one for n={n} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut r: ScaleResult =
            serde_json::from_slice(&output.stdout).context("scale-one printed no result")?;
        // The same copy (closed by `scale-one`), written to by a writer that dies.
        child(&opts.exe, &["scale-dirty", "--dir"], &dir, n)?;
        let crash_out = child(&opts.exe, &["scale-one", "--after-crash", "--dir"], &dir, n)?;
        let crashed: CrashedOpen =
            serde_json::from_slice(&crash_out).context("scale-one printed no result")?;
        ensure!(crashed.checked, "the open after a crash skipped the check");
        r.crashed_open_ms = crashed.open_ms;
        r.crashed_open_integrity_ms = crashed.integrity_ms;
        r.crashed_open_write_bytes = crashed.write_bytes;
        eprintln!("{}", row(&r));
        out.push(r);
        cache.clear_scratch()?;
    }
    Ok(out)
}

/// Runs `lattice-bench ARGS DIR --n N`; returns its standard output.
fn child(exe: &Path, args: &[&str], dir: &Path, n: u64) -> Result<Vec<u8>> {
    let output = Command::new(exe)
        .args(args)
        .arg(dir)
        .arg("--n")
        .arg(n.to_string())
        .output()
        .with_context(|| format!("cannot run {}", exe.display()))?;
    ensure!(
        output.status.success(),
        "{args:?} for n={n} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(output.stdout)
}

/// Appends [`DIRTY_ENTRIES`] and exits at once, closing nothing (see the module doc).
pub async fn dirty(dir: &Path, n: u64) -> Result<()> {
    let store = Store::open(dir, StoreOptions::default())?;
    let authors = corpus::authors();
    let entries: Vec<_> = (0..DIRTY_ENTRIES)
        .map(|k| corpus::extra_entry(&authors, u64::MAX, k, T0_MS + (n + k) * STEP_MS + 7))
        .collect();
    for batch in entries.chunks(100) {
        store.append_batch(batch.to_vec()).await?;
    }
    ensure!(
        dir.join("ledger.db-wal").exists(),
        "the dying writer left no log"
    );
    std::process::exit(0);
}

/// Measures the open of a store a writer left without closing.
pub fn after_crash(dir: &Path, n: u64) -> Result<CrashedOpen> {
    let written0 = proc::write_bytes();
    let started = Instant::now();
    let store = Store::open(dir, StoreOptions::default())?;
    let open = started.elapsed();
    let write_bytes = proc::write_bytes() - written0;
    ensure!(
        store.len() as u64 == n + DIRTY_ENTRIES,
        "the store holds {} entries, not {}",
        store.len(),
        n + DIRTY_ENTRIES
    );
    let report = store.open_report();
    Ok(CrashedOpen {
        open_ms: open.as_secs_f64() * 1e3,
        integrity_ms: report.integrity.as_secs_f64() * 1e3,
        checked: report.integrity_checked,
        write_bytes,
    })
}

/// Measures one store in this (fresh) process; prints the result as JSON.
pub fn one(dir: &Path, n: u64) -> Result<ScaleResult> {
    let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
    let db_bytes = std::fs::metadata(dir.join(lattice_node::ledger::store::DB_FILE))?.len();
    let rss_before = proc::rss_bytes();
    let written0 = proc::write_bytes();
    let cpu_open0 = proc::cpu_ns();
    let started = Instant::now();
    let store = Store::open(dir, StoreOptions::default())?;
    let open = started.elapsed();
    let open_cpu = proc::cpu_ns() - cpu_open0;
    let open_write_bytes = proc::write_bytes() - written0;
    let rss_after = proc::rss_bytes();
    ensure!(
        store.len() as u64 == n,
        "the store holds {} entries, not {n}",
        store.len()
    );
    let report = store.open_report().clone();

    let cpu0 = proc::cpu_ns();
    let started = Instant::now();
    let verified = store.verify_all()?;
    let verify = started.elapsed();
    let verify_cpu = proc::cpu_ns() - cpu0;
    ensure!(
        verified.problems.is_empty() && verified.entries as u64 == n,
        "verify found problems: {:?}",
        verified.problems.first()
    );
    let started = Instant::now();
    let mut anchored = 0u64;
    store.for_each(|e: Entry| -> Result<()> {
        e.reverify(DEFAULT_MAX_PAYLOAD)
            .map_err(|err| anyhow::anyhow!("the anchor refused {}: {err}", e.id()))?;
        anchored += 1;
        Ok(())
    })?;
    let anchor = started.elapsed();
    ensure!(anchored == n, "the anchor checked {anchored} entries");
    store.close();
    Ok(ScaleResult {
        n,
        open_ms: open.as_secs_f64() * 1e3,
        open_checked: report.integrity_checked,
        open_cpu_ms: proc::ms(open_cpu),
        open_integrity_ms: report.integrity.as_secs_f64() * 1e3,
        open_rebuild_ms: report.rebuild.as_secs_f64() * 1e3,
        open_write_bytes,
        rss_after_open_mb: mb(rss_after),
        rss_before_open_mb: mb(rss_before),
        verify_ms: verify.as_secs_f64() * 1e3,
        verify_cpu_ms: proc::ms(verify_cpu),
        verify_anchor_ms: anchor.as_secs_f64() * 1e3,
        verify_ratio: verify.as_secs_f64() / anchor.as_secs_f64(),
        peak_rss_mb: mb(proc::peak_rss_bytes()),
        db_bytes,
        crashed_open_ms: 0.0,
        crashed_open_integrity_ms: 0.0,
        crashed_open_write_bytes: 0,
    })
}

pub fn header() -> String {
    "| n | ledger.db MB | open ms (integrity, rebuild; CPU ms) | written on open KB | RSS after open MB (before) | verify ms (CPU ms) | 0.1's one-core verify ms (ratio) | peak RSS MB | open after a crash ms (integrity) | written KB |\n\
     |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        .to_string()
}

pub fn row(r: &ScaleResult) -> String {
    format!(
        "| {} | {:.1} | {:.0} ({}, {:.0}; {:.0}) | {:.0} | {:.1} ({:.1}) | {:.0} ({:.0}) | {:.0} ({:.2}) | {:.1} | {:.0} ({:.0}) | {:.0} |",
        r.n,
        r.db_bytes as f64 / (1024.0 * 1024.0),
        r.open_ms,
        if r.open_checked {
            format!("{:.0}", r.open_integrity_ms)
        } else {
            "skipped".to_string()
        },
        r.open_rebuild_ms,
        r.open_cpu_ms,
        r.open_write_bytes as f64 / 1024.0,
        r.rss_after_open_mb,
        r.rss_before_open_mb,
        r.verify_ms,
        r.verify_cpu_ms,
        r.verify_anchor_ms,
        r.verify_ratio,
        r.peak_rss_mb,
        r.crashed_open_ms,
        r.crashed_open_integrity_ms,
        r.crashed_open_write_bytes as f64 / 1024.0
    )
}

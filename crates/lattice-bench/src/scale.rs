//! `lattice-bench scale`: what a big store costs to open and to verify. Each size is
//! measured in a child process of its own (`lattice-bench scale-one`), so resident
//! memory is that store's and not what earlier sizes left behind.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use lattice_node::ledger::{Store, StoreOptions};
use serde::{Deserialize, Serialize};

use crate::corpus::Cache;
use crate::proc;

pub struct Options {
    pub ns: Vec<u64>,
    pub cache: PathBuf,
    /// The `lattice-bench` binary to run each measurement in.
    pub exe: PathBuf,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScaleResult {
    pub n: u64,
    /// Wall time of `Store::open`.
    pub open_ms: f64,
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
    pub peak_rss_mb: f64,
    /// Bytes of `ledger.db`.
    pub db_bytes: u64,
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
        let r: ScaleResult =
            serde_json::from_slice(&output.stdout).context("scale-one printed no result")?;
        eprintln!("{}", row(&r));
        out.push(r);
        cache.clear_scratch()?;
    }
    Ok(out)
}

/// Measures one store in this (fresh) process; prints the result as JSON.
pub fn one(dir: &Path, n: u64) -> Result<ScaleResult> {
    let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
    let db_bytes = std::fs::metadata(dir.join(lattice_node::ledger::store::DB_FILE))?.len();
    let rss_before = proc::rss_bytes();
    let written0 = proc::write_bytes();
    let started = Instant::now();
    let store = Store::open(dir, StoreOptions::default())?;
    let open = started.elapsed();
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
    store.close();
    Ok(ScaleResult {
        n,
        open_ms: open.as_secs_f64() * 1e3,
        open_integrity_ms: report.integrity.as_secs_f64() * 1e3,
        open_rebuild_ms: report.rebuild.as_secs_f64() * 1e3,
        open_write_bytes,
        rss_after_open_mb: mb(rss_after),
        rss_before_open_mb: mb(rss_before),
        verify_ms: verify.as_secs_f64() * 1e3,
        verify_cpu_ms: proc::ms(verify_cpu),
        peak_rss_mb: mb(proc::peak_rss_bytes()),
        db_bytes,
    })
}

pub fn header() -> String {
    "| n | ledger.db MB | open ms (integrity, rebuild) | written on open KB | RSS after open MB (before) | verify ms (CPU ms) | peak RSS MB |\n\
     |---:|---:|---:|---:|---:|---:|---:|"
        .to_string()
}

pub fn row(r: &ScaleResult) -> String {
    format!(
        "| {} | {:.1} | {:.0} ({:.0}, {:.0}) | {:.0} | {:.1} ({:.1}) | {:.0} ({:.0}) | {:.1} |",
        r.n,
        r.db_bytes as f64 / (1024.0 * 1024.0),
        r.open_ms,
        r.open_integrity_ms,
        r.open_rebuild_ms,
        r.open_write_bytes as f64 / 1024.0,
        r.rss_after_open_mb,
        r.rss_before_open_mb,
        r.verify_ms,
        r.verify_cpu_ms,
        r.peak_rss_mb
    )
}

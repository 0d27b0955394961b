//! `lattice-bench ingest`: how fast a store acknowledges entries, each one committed
//! before its writer hears back, from one writer at a time and from many at once, on an
//! empty store and on a big one.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, ensure};
use lattice_node::ledger::{Entry, Store, StoreOptions};
use serde::Serialize;

use crate::corpus::{self, Cache, STEP_MS, T0_MS};
use crate::proc;

pub struct Options {
    /// Base store sizes to write onto (0: an empty store).
    pub bases: Vec<u64>,
    /// Entries written in each run.
    pub entries: u64,
    /// Concurrent writers of the concurrent run.
    pub writers: usize,
    pub cache: PathBuf,
}

#[derive(Clone, Debug, Serialize)]
pub struct IngestResult {
    pub base: u64,
    pub writers: usize,
    pub entries: u64,
    pub seconds: f64,
    pub entries_per_s: f64,
    /// Bytes the process wrote to storage per entry (`/proc/self/io`).
    pub write_bytes_per_entry: f64,
    pub commits: u64,
}

pub async fn run(opts: &Options) -> Result<Vec<IngestResult>> {
    ensure!(
        opts.entries > 0 && opts.writers > 0,
        "entries and writers must be at least 1"
    );
    let cache = Cache::new(&opts.cache)?;
    let authors = corpus::authors();
    let mut out = Vec::new();
    for &base in &opts.bases {
        for writers in [1, opts.writers] {
            let dir = if base == 0 {
                cache.scratch("ingest")?
            } else {
                cache.copy_of_base(base, "ingest").await?
            };
            let store = Store::open(&dir, StoreOptions::default())?;
            // Signed beforehand: the run measures the store, not signing.
            let case = (base << 8) ^ writers as u64;
            let entries: Vec<Entry> = (0..opts.entries)
                .map(|k| corpus::extra_entry(&authors, case, k, T0_MS + (base + k) * STEP_MS + 1))
                .collect();
            let r = write(&store, entries, writers).await?;
            ensure!(
                store.len() as u64 == base + opts.entries,
                "the store holds {} entries after the run",
                store.len()
            );
            let result = IngestResult {
                base,
                writers,
                entries: opts.entries,
                seconds: r.0,
                entries_per_s: opts.entries as f64 / r.0,
                write_bytes_per_entry: r.1 as f64 / opts.entries as f64,
                commits: store.stats().commits,
            };
            eprintln!("{}", row(&result));
            out.push(result);
            store.close();
            drop(store);
            cache.clear_scratch()?;
        }
    }
    Ok(out)
}

/// Writes `entries` from `writers` tasks, each awaiting one append before the next.
/// Returns the seconds taken and the bytes written meanwhile.
async fn write(store: &Store, entries: Vec<Entry>, writers: usize) -> Result<(f64, u64)> {
    let writers = writers.min(entries.len());
    let mut shares: Vec<Vec<Entry>> = (0..writers).map(|_| Vec::new()).collect();
    for (i, e) in entries.into_iter().enumerate() {
        shares[i % writers].push(e);
    }
    let store = Arc::new(store.clone());
    let written0 = proc::write_bytes();
    let started = Instant::now();
    let tasks: Vec<_> = shares
        .into_iter()
        .map(|share| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for e in share {
                    let a = store.append(e).await?;
                    ensure!(a.inserted, "an entry of the run was already stored");
                }
                Ok::<_, anyhow::Error>(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    Ok((
        started.elapsed().as_secs_f64(),
        proc::write_bytes() - written0,
    ))
}

pub fn header() -> String {
    "| base entries | writers | entries | seconds | entries/s | bytes written per entry | commits |\n\
     |---:|---:|---:|---:|---:|---:|---:|"
        .to_string()
}

pub fn row(r: &IngestResult) -> String {
    format!(
        "| {} | {} | {} | {:.2} | {:.0} | {:.0} | {} |",
        r.base,
        r.writers,
        r.entries,
        r.seconds,
        r.entries_per_s,
        r.write_bytes_per_entry,
        r.commits
    )
}

//! The entries benchmarks run on: real signed entries from a fixed set of authors, the
//! same for the same `n` on every run, and a cache of base stores so each `n` is signed
//! and written once and then copied for every case.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use lattice_node::NodeKey;
use lattice_node::ledger::store::DB_FILE;
use lattice_node::ledger::{DEFAULT_MAX_PAYLOAD, Entry, Store, StoreOptions};
use serde_json::json;

/// `created_at` of base entry 0, in milliseconds since the epoch.
pub const T0_MS: u64 = 1_780_000_000_000;
/// Base entry `i` was created `i` steps after [`T0_MS`]; extras fall between steps.
pub const STEP_MS: u64 = 1_000;
/// Distinct authors of the corpus: a ledger is written by many people.
const AUTHORS: usize = 16;
/// Written last into a finished base store; a changed corpus gets a new version.
const COMPLETE_FILE: &str = "COMPLETE";
/// (Layout 2 of the store: a cache built before it would be migrated on every copy.)
const CORPUS_VERSION: &str = "lattice-bench corpus v1, store layout 2";
/// Entries signed and committed per batch while building a base store.
const BUILD_BATCH: usize = 2_000;

/// The corpus' authors, from fixed seeds.
pub fn authors() -> Vec<NodeKey> {
    (0..AUTHORS)
        .map(|i| NodeKey::from_seed([0xB0 ^ i as u8; 32]))
        .collect()
}

/// Base entry `i`: the same bytes on every run.
pub fn base_entry(authors: &[NodeKey], i: u64) -> Entry {
    let payload = json!({"kind": "note", "seq": i, "text": "benchmark corpus entry"});
    Entry::sign(
        &authors[i as usize % authors.len()],
        T0_MS + i * STEP_MS,
        &payload,
        DEFAULT_MAX_PAYLOAD,
    )
    .expect("corpus entries are valid")
}

/// An entry beyond the base, unique to (`case`, `k`), created at `created_at`.
pub fn extra_entry(authors: &[NodeKey], case: u64, k: u64, created_at: u64) -> Entry {
    let payload = json!({"kind": "note", "case": case, "seq": k, "text": "benchmark extra entry"});
    Entry::sign(
        &authors[k as usize % authors.len()],
        created_at,
        &payload,
        DEFAULT_MAX_PAYLOAD,
    )
    .expect("corpus entries are valid")
}

/// Signs entries `range` on every core (signing dominates building a base store).
pub fn sign_range(authors: &[NodeKey], range: std::ops::Range<u64>) -> Vec<Entry> {
    let len = (range.end - range.start) as usize;
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(len.max(1));
    let per = len.div_ceil(threads.max(1)).max(1) as u64;
    std::thread::scope(|s| {
        let parts: Vec<_> = (0..threads as u64)
            .map(|t| {
                let lo = range.start + t * per;
                let hi = (lo + per).min(range.end);
                s.spawn(move || (lo..hi).map(|i| base_entry(authors, i)).collect::<Vec<_>>())
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|p| p.join().expect("signing does not panic"))
            .collect()
    })
}

/// Where base stores and per-case copies live.
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn new(dir: &Path) -> Result<Cache> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the cache directory {}", dir.display()))?;
        Ok(Cache {
            dir: dir.to_owned(),
        })
    }

    /// The directory of the base store of `n` entries, built on first use.
    pub async fn base(&self, n: u64) -> Result<PathBuf> {
        let dir = self.dir.join(format!("base-{n}"));
        let marker = dir.join(COMPLETE_FILE);
        let expected = format!("{CORPUS_VERSION} n={n}\n");
        if std::fs::read_to_string(&marker).is_ok_and(|s| s == expected) {
            return Ok(dir);
        }
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        eprintln!(
            "building the base store of {n} entries in {}",
            dir.display()
        );
        let started = std::time::Instant::now();
        let store = Store::open(&dir, StoreOptions::default())?;
        let authors = authors();
        let mut next = 0;
        while next < n {
            let hi = (next + BUILD_BATCH as u64).min(n);
            let entries = sign_range(&authors, next..hi);
            store.append_batch(entries).await?;
            next = hi;
        }
        if store.len() as u64 != n {
            bail!("the base store holds {} entries, not {n}", store.len());
        }
        // The writer is a thread of its own: closing blocks only until it has finished.
        store.close();
        drop(store);
        checkpoint(&dir.join(DB_FILE))?;
        std::fs::write(&marker, expected)?;
        eprintln!(
            "built the base store of {n} entries in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok(dir)
    }

    /// A fresh copy of the base store of `n` entries, named `name`.
    pub async fn copy_of_base(&self, n: u64, name: &str) -> Result<PathBuf> {
        let base = self.base(n).await?;
        let to = self.scratch(name)?;
        std::fs::copy(base.join(DB_FILE), to.join(DB_FILE))
            .with_context(|| format!("cannot copy the base store of {n} to {}", to.display()))?;
        // On the disk before the case starts: otherwise the copy's writeback (hundreds
        // of MB at 1M) competes with the case's own writes and fsyncs.
        std::fs::File::open(to.join(DB_FILE))?.sync_all()?;
        Ok(to)
    }

    /// An empty scratch directory named `name` (emptied if it existed).
    pub fn scratch(&self, name: &str) -> Result<PathBuf> {
        let to = self.dir.join("scratch").join(name);
        if to.exists() {
            std::fs::remove_dir_all(&to)?;
        }
        std::fs::create_dir_all(&to)?;
        Ok(to)
    }

    /// Removes every scratch copy.
    pub fn clear_scratch(&self) -> Result<()> {
        let dir = self.dir.join("scratch");
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        Ok(())
    }
}

/// Folds the write-ahead log into the database file, so the base store is one file that
/// copies alone.
fn checkpoint(db: &Path) -> Result<()> {
    let conn = rusqlite::Connection::open(db)?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        r.get::<_, i64>(0)
    })?;
    Ok(())
}

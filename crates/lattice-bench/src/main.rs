//! `lattice-bench`: Lattice's benchmark suite. See the repository's BENCHMARKS.md.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use lattice_bench::reconcile::{Pattern, System};
use lattice_bench::{ingest, reconcile, scale};
use serde::Serialize;

#[derive(Parser)]
#[command(name = "lattice-bench", about = "Lattice's benchmark suite (issue 12)")]
struct Cli {
    /// Where base stores are built once and reused, and per-case copies are made.
    #[arg(long, global = true, default_value = "target/lattice-bench-cache")]
    cache: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Lattice v1 and negentropy on the same id sets: round trips, bytes, CPU.
    Reconcile {
        /// Ledger sizes.
        #[arg(long, value_delimiter = ',', default_values_t = [10_000u64, 100_000])]
        n: Vec<u64>,
        /// Differences per case.
        #[arg(long, value_delimiter = ',', default_values_t = [0u64, 1, 10, 1000])]
        d: Vec<u64>,
        /// Where the differences lie (`both`: each side lacks half of them).
        #[arg(long, value_delimiter = ',', value_enum, default_values_t = [Pattern::Scattered, Pattern::Newest, Pattern::Both])]
        pattern: Vec<Pattern>,
        /// Systems to run.
        #[arg(long, value_delimiter = ',', value_enum, default_values_t = System::AVAILABLE)]
        system: Vec<System>,
        /// Runs of Lattice v2 per case, each on a fresh copy of the case's stores and
        /// under its own fresh salt: the sketch is probabilistic, so one run is one draw.
        #[arg(long, default_value_t = 1)]
        v2_runs: u32,
        /// Also write every case as a JSON array to this file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Acknowledged appends per second, one writer at a time and many at once.
    Ingest {
        /// Sizes of the store written onto (0: empty).
        #[arg(long, value_delimiter = ',', default_values_t = [0u64, 100_000])]
        base: Vec<u64>,
        /// Entries written per run.
        #[arg(long, default_value_t = 5_000)]
        entries: u64,
        /// Concurrent writers of the concurrent run.
        #[arg(long, default_value_t = 64)]
        writers: usize,
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Open time, resident memory after open and verify time of big stores.
    Scale {
        #[arg(long, value_delimiter = ',', default_values_t = [100_000u64])]
        n: Vec<u64>,
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// One `scale` measurement in a fresh process (run by `scale`).
    #[command(hide = true)]
    ScaleOne {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        n: u64,
        /// Measure the open of a store a writer left without closing.
        #[arg(long)]
        after_crash: bool,
    },
    /// Writes to a store and exits without closing it (run by `scale`).
    #[command(hide = true)]
    ScaleDirty {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        n: u64,
    },
}

fn write_json<T: Serialize>(path: Option<&Path>, value: &T) -> Result<()> {
    if let Some(path) = path {
        let text = serde_json::to_string_pretty(value)?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Reconcile {
            n,
            d,
            pattern,
            system,
            v2_runs,
            json,
        } => {
            // One thread: both sides run on it, so CPU readings are theirs alone.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let opts = reconcile::Options {
                ns: n,
                ds: d,
                patterns: pattern,
                systems: system,
                v2_runs: v2_runs.max(1),
                cache: cli.cache,
            };
            let results = rt.block_on(reconcile::run(&opts))?;
            println!("{}", reconcile::header());
            for r in &results {
                println!("{}", reconcile::row(r));
            }
            if v2_runs > 1 {
                println!("\n{}", reconcile::spread_header());
                for line in reconcile::spreads(&results) {
                    println!("{line}");
                }
            }
            write_json(json.as_deref(), &results)
        }
        Command::Ingest {
            base,
            entries,
            writers,
            json,
        } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let opts = ingest::Options {
                bases: base,
                entries,
                writers,
                cache: cli.cache,
            };
            let results = rt.block_on(ingest::run(&opts))?;
            println!("{}", ingest::header());
            for r in &results {
                println!("{}", ingest::row(r));
            }
            write_json(json.as_deref(), &results)
        }
        Command::Scale { n, json } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let opts = scale::Options {
                ns: n,
                cache: cli.cache,
                exe: std::env::current_exe()?,
            };
            let results = rt.block_on(scale::run(&opts))?;
            println!("{}", scale::header());
            for r in &results {
                println!("{}", scale::row(r));
            }
            write_json(json.as_deref(), &results)
        }
        Command::ScaleOne {
            dir,
            n,
            after_crash: false,
        } => {
            let r = scale::one(&dir, n)?;
            println!("{}", serde_json::to_string(&r)?);
            Ok(())
        }
        Command::ScaleOne {
            dir,
            n,
            after_crash: true,
        } => {
            let r = scale::after_crash(&dir, n)?;
            println!("{}", serde_json::to_string(&r)?);
            Ok(())
        }
        Command::ScaleDirty { dir, n } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(scale::dirty(&dir, n))
        }
    }
}

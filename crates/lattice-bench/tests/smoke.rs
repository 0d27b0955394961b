//! One tiny case of each subcommand, through the real binary, so the suite cannot rot.
//! These prove the suite runs and checks itself; they assert no speed.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn bench(cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lattice-bench"))
        .arg("--cache")
        .arg(cache)
        .args(args)
        .output()
        .expect("lattice-bench runs")
}

fn succeeded(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "lattice-bench failed: {stderr}");
    stderr
}

fn read_json(path: &Path) -> Vec<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn reconcile_runs_every_system_on_every_pattern_and_reuses_the_base_store() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let json = dir.path().join("reconcile.json");
    let args = [
        "reconcile",
        "--n",
        "200",
        "--d",
        "0,6",
        "--json",
        json.to_str().unwrap(),
    ];
    let first = succeeded(&bench(&cache, &args));
    assert!(first.contains("building the base store of 200"), "{first}");

    let cases = read_json(&json);
    assert_eq!(cases.len(), 2 * 3 * 4, "d x patterns x systems");
    for system in [
        "lattice-v2",
        "lattice-v1",
        "negentropy-f0",
        "negentropy-f60k",
    ] {
        for pattern in ["scattered", "newest", "both"] {
            let of = |d: u64| {
                cases
                    .iter()
                    .find(|c| c["system"] == system && c["pattern"] == pattern && c["d"] == d)
                    .unwrap_or_else(|| panic!("no {system} {pattern} d={d}"))
            };
            let equal = of(0);
            assert_eq!(equal["walk_round_trips"], 1, "{equal}");
            assert_eq!(equal["entry_bytes"], 0, "{equal}");
            assert!(equal["bytes_per_diff"].is_null(), "{equal}");

            let six = of(6);
            let (pulled, pushed) = (
                six["pulled"].as_u64().unwrap(),
                six["pushed"].as_u64().unwrap(),
            );
            assert_eq!(pulled + pushed, 6, "{six}");
            assert_eq!(pushed, if pattern == "both" { 3 } else { 0 }, "{six}");
            let walk = six["walk_bytes"].as_u64().unwrap();
            // serde_json's default parser may lose the last bit of a float.
            let per_diff = six["bytes_per_diff"].as_f64().unwrap();
            assert!((per_diff - walk as f64 / 6.0).abs() < 1e-9, "{six}");
            assert!(
                six["round_trips"].as_u64() > six["walk_round_trips"].as_u64(),
                "{six}"
            );
            assert!(
                six["entry_bytes"].as_u64() >= six["entries_own_bytes"].as_u64(),
                "{six}"
            );
        }
    }

    // The base store is built once per n and reused by later runs; v2 may run several
    // times per case (fresh stores and salt each), with a line of ranges per case.
    let out = bench(
        &cache,
        &[
            "reconcile",
            "--n",
            "200",
            "--d",
            "4",
            "--pattern",
            "both",
            "--system",
            "lattice-v2",
            "--v2-runs",
            "3",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    let again = succeeded(&out);
    assert!(!again.contains("building the base store"), "{again}");
    let table = String::from_utf8_lossy(&out.stdout);
    let runs: Vec<u64> = read_json(&json)
        .iter()
        .map(|c| c["run"].as_u64().unwrap())
        .collect();
    assert_eq!(runs, [0, 1, 2]);
    assert!(
        table.contains("| 200 | both | 4 | lattice-v2 | 3 |"),
        "a line of ranges: {table}"
    );
}

#[test]
fn ingest_writes_from_one_and_from_many_writers_onto_an_empty_and_a_filled_store() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("ingest.json");
    let args = [
        "ingest",
        "--base",
        "0,100",
        "--entries",
        "24",
        "--writers",
        "8",
        "--json",
        json.to_str().unwrap(),
    ];
    succeeded(&bench(&dir.path().join("cache"), &args));
    let runs = read_json(&json);
    let shape: Vec<(u64, u64)> = runs
        .iter()
        .map(|r| (r["base"].as_u64().unwrap(), r["writers"].as_u64().unwrap()))
        .collect();
    assert_eq!(shape, [(0, 1), (0, 8), (100, 1), (100, 8)]);
    for r in &runs {
        assert_eq!(r["entries"], 24, "{r}");
        assert!(r["entries_per_s"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["commits"].as_u64().unwrap() >= 1, "{r}");
    }
}

#[test]
fn scale_opens_and_verifies_a_store_in_a_process_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("scale.json");
    let args = ["scale", "--n", "150", "--json", json.to_str().unwrap()];
    succeeded(&bench(&dir.path().join("cache"), &args));
    let runs = read_json(&json);
    assert_eq!(runs.len(), 1);
    let r = &runs[0];
    assert_eq!(r["n"], 150, "{r}");
    assert!(r["rss_after_open_mb"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["db_bytes"].as_u64().unwrap() > 150 * 200, "{r}");
    assert!(r["verify_ms"].as_f64().unwrap() > 0.0, "{r}");
    // The base copy was closed cleanly; the store the dying writer left was checked.
    assert_eq!(r["open_checked"], false, "{r}");
    assert!(
        r["crashed_open_integrity_ms"].as_f64().unwrap() > 0.0,
        "{r}"
    );
}

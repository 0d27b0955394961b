//! Acknowledged means durable: a writer process killed with SIGKILL at random moments
//! never loses an entry it had acknowledged.
#![cfg(unix)]

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lattice_node::NodeKey;
use lattice_node::ledger::{Entry, EntryId, Store, StoreOptions};

const DIR_VAR: &str = "LATTICE_SIGKILL_TEST_DIR";
const ROUNDS: usize = 20;

/// Not a test on its own: the child process that `acknowledged_entries_survive_sigkill`
/// starts and kills. It appends from several tasks and prints `ACK <id>` after each commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper process for acknowledged_entries_survive_sigkill"]
async fn sigkill_child_writer() {
    let dir = std::env::var(DIR_VAR).expect("run by the parent test");
    let store = Store::open(dir.as_ref(), StoreOptions::default()).expect("opens");
    let key = NodeKey::generate().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let tasks: Vec<_> = (0..8u64)
        .map(|t| {
            let (store, key) = (store.clone(), key.clone());
            tokio::spawn(async move {
                for n in 0..5_000u64 {
                    if Instant::now() > deadline {
                        return;
                    }
                    let payload = serde_json::json!({ "task": t, "n": n });
                    let entry = Entry::sign(&key, n, &payload, 65_536).unwrap();
                    let appended = store.append(entry).await.expect("append");
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {}", appended.id).unwrap();
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

#[test]
fn acknowledged_entries_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = fastrand::Rng::with_seed(0x01a7_71ce);
    let mut acknowledged: HashSet<EntryId> = HashSet::new();
    for round in 0..ROUNDS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "sigkill_child_writer",
                "--nocapture",
            ])
            .args(["--test-threads", "1"])
            .env(DIR_VAR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let acks = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let reader = {
            let acks = acks.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Some(id) = line.strip_prefix("ACK ") {
                        acks.lock().unwrap().push(id.parse::<EntryId>().unwrap());
                    }
                }
            })
        };
        // Kill at a random moment: sometimes while starting, mostly mid-write.
        let started = Instant::now();
        let wait_for_acks = rng.u32(0..4) != 0;
        while wait_for_acks
            && acks.lock().unwrap().is_empty()
            && started.elapsed() < Duration::from_secs(20)
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(rng.u64(0..40)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        acknowledged.extend(acks.lock().unwrap().iter().copied());

        let store = Store::open(dir.path(), StoreOptions::default())
            .unwrap_or_else(|e| panic!("round {round}: reopening failed: {e}"));
        for id in &acknowledged {
            assert!(store.contains(id), "round {round}: acknowledged {id} lost");
        }
        if round + 1 == ROUNDS {
            let report = store.verify_all().unwrap();
            assert!(report.problems.is_empty(), "{:?}", report.problems);
        }
        store.close();
    }
    eprintln!(
        "{} entries acknowledged over {ROUNDS} kills",
        acknowledged.len()
    );
    assert!(
        acknowledged.len() > ROUNDS,
        "only {} entries were acknowledged in {ROUNDS} rounds",
        acknowledged.len()
    );
}

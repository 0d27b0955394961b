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
        // A killed writer that committed never closed cleanly: the full check runs.
        if !acks.lock().unwrap().is_empty() {
            assert!(
                store.open_report().integrity_checked,
                "round {round}: the integrity check was skipped after a kill"
            );
        }
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

const LATTICE: &str = env!("CARGO_BIN_EXE_lattice");

fn lattice(cwd: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(LATTICE)
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("HOME", cwd)
        .output()
        .expect("lattice runs")
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `lattice node` on `dir`'s `n.env` and waits until it answers; puts one entry.
fn start_node_and_put(dir: &std::path::Path, port: u16, text: &str) -> std::process::Child {
    let child = Command::new(LATTICE)
        .args(["--env-file", "n.env", "node"])
        .current_dir(dir)
        .env_clear()
        .env("HOME", dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    wait_for("the node to answer", || {
        lattice(dir, &["status", "--json", "--url", &url])
            .status
            .success()
    });
    let put = lattice(
        dir,
        &[
            "--env-file",
            "n.env",
            "put",
            "--url",
            &url,
            &format!(r#"{{"text":"{text}"}}"#),
        ],
    );
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );
    child
}

#[test]
fn a_node_stopped_by_sigterm_leaves_ledger_db_alone_and_one_killed_is_checked_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        dir.path().join("n.env"),
        format!(
            "LATTICE_DATA_DIR=./data\nLATTICE_P2P_LISTEN=/ip4/127.0.0.1/tcp/0\nLATTICE_HTTP_LISTEN=127.0.0.1:{port}\n"
        ),
    )
    .unwrap();
    let keygen = lattice(dir.path(), &["keygen", "--env-file", "n.env"]);
    assert!(
        keygen.status.success(),
        "{}",
        String::from_utf8_lossy(&keygen.stderr)
    );
    let data = dir.path().join("data");

    let mut node = start_node_and_put(dir.path(), port, "first");
    assert!(
        data.join("ledger.db-wal").exists(),
        "a running node logs ahead"
    );
    let pid = node.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(node.wait().unwrap().success());
    for f in ["ledger.db-wal", "ledger.db-shm"] {
        assert!(!data.join(f).exists(), "{f} left behind after SIGTERM");
    }
    // ledger.db alone is the whole ledger: a copy of it opens with the same root.
    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(data.join("ledger.db"), copy.path().join("ledger.db")).unwrap();
    let original = Store::open_read_only(&data, StoreOptions::default()).unwrap();
    let copied = Store::open(copy.path(), StoreOptions::default()).unwrap();
    assert_eq!(copied.len(), 1);
    assert_eq!(
        (copied.root(), copied.len()),
        (original.root(), original.len())
    );
    assert!(
        !copied.open_report().integrity_checked,
        "a clean stop is recorded"
    );
    drop((original, copied));

    // SIGKILL after a write: the next open runs the full check.
    let mut node = start_node_and_put(dir.path(), port, "second");
    node.kill().unwrap();
    node.wait().unwrap();
    let store = Store::open(&data, StoreOptions::default()).unwrap();
    assert!(store.open_report().integrity_checked);
    assert_eq!(store.len(), 2);
}

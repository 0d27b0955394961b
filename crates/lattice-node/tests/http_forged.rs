//! A neighbour that streams forged entries on its event stream: the stream is dropped,
//! the neighbour backed off and shown as misbehaving, and the log does not flood. This
//! file holds one test because it installs the process' log subscriber to count lines.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lattice_node::NodeKey;
use lattice_node::ledger::Entry;
use serde_json::{Value, json};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Every log line written, for counting.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn warnings_about(&self, needle: &str) -> usize {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        text.lines()
            .filter(|l| l.contains("WARN") && l.contains(needle))
            .count()
    }
}

/// A signed entry with its payload changed afterwards: it fails verification.
fn forged_entry_json() -> String {
    let key = NodeKey::from_seed([90; 32]);
    let entry = Entry::sign(&key, 1, &json!({ "amount": 1 }), 65536).unwrap();
    let mut v: Value = serde_json::from_str(&entry.to_json()).unwrap();
    v["payload"]["amount"] = json!(1_000_000);
    v.to_string()
}

/// A neighbour whose state is well formed and whose event stream announces the same
/// forged entry over and over (up to 20,000 times a connection). Records when each
/// event stream was opened.
async fn forging_neighbor(opened: Arc<Mutex<Vec<Instant>>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let event = format!("event: entry\ndata: {}\n\n", forged_entry_json());
    let state = json!({
        "root": "00".repeat(32), "count": 0, "node": "liar", "fanout_bits": 2, "ids_inline": 4
    })
    .to_string();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (event, state, opened) = (event.clone(), state.clone(), opened.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).into_owned();
                if request.starts_with("GET /api/lattice/events") {
                    opened.lock().unwrap().push(Instant::now());
                    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n";
                    if sock.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    for _ in 0..20_000 {
                        if sock.write_all(event.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                } else {
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{state}",
                        state.len()
                    );
                    let _ = sock.write_all(reply.as_bytes()).await;
                }
                let _ = sock.shutdown().await;
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_neighbour_streaming_forged_entries_is_dropped_backed_off_and_logged_sparingly() {
    let log = Captured::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .init();

    let opened = Arc::new(Mutex::new(Vec::new()));
    let liar = forging_neighbor(opened.clone()).await;
    // A minute between polls: what happens is the follower's doing.
    let vars = [("LATTICE_MODE", "http"), ("LATTICE_HTTP_POLL", "60s")];
    let l = listeners(1).await.pop().unwrap();
    let node = start_node(l, std::slice::from_ref(&liar), &vars, 91).await;

    eventually(
        "the liar is shown misbehaving and its stream dropped",
        WAIT,
        || {
            let nb = serde_json::to_value(node.status()).unwrap()["neighbors"][0].clone();
            nb["health"] == "unhealthy"
                && nb["last_error_kind"] == "forged_entry"
                && nb["events_connected"] == false
        },
    )
    .await;
    eventually("the follower tried the liar four times", WAIT, || {
        opened.lock().unwrap().len() >= 4
    })
    .await;
    let times = opened.lock().unwrap().clone();
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    // Each wait is drawn from the upper half of a doubling one: never shorter than the
    // one before (a little slack for scheduling).
    for pair in gaps[..3].windows(2) {
        assert!(
            pair[1] + Duration::from_millis(30) >= pair[0],
            "the liar was not backed off: gaps {gaps:?}"
        );
    }
    assert_eq!(node.status().entry_count, 0, "a forged entry was stored");
    let warnings = log.warnings_about(&liar);
    assert!(
        (1..=10).contains(&warnings),
        "{warnings} warnings about the liar (streams opened: {})",
        times.len()
    );
    node.stop().await;
}

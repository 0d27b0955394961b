//! Neighbours that lie, stall or answer nonsense, and clients that crawl: none of them
//! stops honest nodes from converging or the server from answering others.

mod support;

use std::time::{Duration, Instant};

use lattice_node::status::NeighborHealth;
use serde_json::json;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A fake neighbour on a real socket that answers every request with `reply`
/// (or, with `None`, accepts and never answers).
async fn fake_neighbor(reply: Option<Vec<u8>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let reply = reply.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                match reply {
                    Some(bytes) if bytes == b"chunked-forever" => {
                        let head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
                        let _ = sock.write_all(head).await;
                        let chunk = format!("{:x}\r\n{}\r\n", 65536, " ".repeat(65536));
                        // At most 1 GiB, until the reader gives up (it should after 8 MiB).
                        for _ in 0..16_384 {
                            if sock.write_all(chunk.as_bytes()).await.is_err() {
                                break;
                            }
                        }
                    }
                    Some(bytes) => {
                        let _ = sock.write_all(&bytes).await;
                        let _ = sock.shutdown().await;
                    }
                    None => {
                        // Hold the connection open, silent, for longer than any test.
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    }
                }
            });
        }
    });
    url
}

/// Sends one raw request on a new connection and reads the whole answer.
async fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut sock = TcpStream::connect(addr).await.unwrap();
    sock.write_all(request).await.unwrap();
    let mut answer = String::new();
    sock.read_to_string(&mut answer).await.unwrap();
    answer
}

fn http_reply(status: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_neighbours_do_not_stop_the_honest_ones_converging() {
    let html = fake_neighbor(Some(http_reply(
        "200 OK",
        "text/html",
        "<html><body>Welcome to nginx</body></html>",
    )))
    .await;
    let error = fake_neighbor(Some(http_reply(
        "500 Internal Server Error",
        "text/plain",
        "boom",
    )))
    .await;
    let huge = fake_neighbor(Some(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 104857600\r\n\r\n{\"root\":\""
            .to_vec(),
    ))
    .await;
    let silent = fake_neighbor(None).await;
    let liar = fake_neighbor(Some(http_reply(
        "200 OK",
        "application/json",
        r#"{"root":"not a hash","count":-1}"#,
    )))
    .await;
    let endless = fake_neighbor(Some(b"chunked-forever".to_vec())).await;
    let bad = [html, error, huge, silent, liar, endless];

    let ls = listeners(3).await;
    let urls = urls_of(&ls);
    let mut nodes = Vec::new();
    for (i, l) in ls.into_iter().enumerate() {
        // Bad neighbours first, so a node that stopped at the first failure would never
        // reach the honest ones.
        let mut neighbors: Vec<String> = bad.to_vec();
        neighbors.extend(others(&urls, i));
        nodes.push(start_node(l, &neighbors, &[], 40 + i as u8).await);
    }
    for (i, n) in nodes.iter().enumerate() {
        n.node.put(&json!({ "node": i })).await.unwrap();
    }
    eventually(
        "honest nodes converge despite five bad neighbours",
        WAIT,
        || nodes.iter().all(|n| n.status().entry_count == 3) && roots_equal(&nodes),
    )
    .await;
    eventually(
        "every bad neighbour is marked unhealthy with its error",
        WAIT,
        || {
            nodes[0].status().neighbors[..6]
                .iter()
                .all(|nb| nb.health == NeighborHealth::Unhealthy && nb.last_error.is_some())
        },
    )
    .await;
    let kinds: Vec<String> = nodes[0].status().neighbors[..6]
        .iter()
        .map(|nb| nb.last_error_kind.clone().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "not_json",
            "status",
            "too_large",
            "timeout",
            "decode",
            "too_large"
        ],
        "{kinds:?}"
    );
    let s = nodes[0].status();
    assert!(
        s.neighbors[0]
            .last_error
            .as_ref()
            .unwrap()
            .contains("text/html")
    );
    assert!(
        s.neighbors[..6]
            .iter()
            .all(|nb| nb.consecutive_failures >= 1)
    );
    // A node checks its neighbours from its first instant, before the others serve: on a
    // loaded machine an honest one may time out once, and is healthy at the next try.
    eventually("the honest neighbours are healthy", WAIT, || {
        nodes[0].status().neighbors[6..]
            .iter()
            .all(|nb| nb.health == NeighborHealth::Healthy)
    })
    .await;
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_headers_is_cut_off_and_others_are_served() {
    let nodes = cluster(1, &[]).await;
    let addr = nodes[0].addr;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /api/lattice/p2p/status HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();

    // Meanwhile the server answers a well-behaved client.
    let answer = exchange(
        addr,
        b"GET /api/lattice/state HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // The slow one is closed once the header deadline (300ms in tests) passes.
    let started = Instant::now();
    let mut rest = Vec::new();
    // Generous against a loaded machine, yet far below "held forever".
    let read = tokio::time::timeout(Duration::from_secs(3), slow.read_to_end(&mut rest)).await;
    assert!(
        read.is_ok(),
        "the server kept a half-sent request open for 3s"
    );
    let _ = started;
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_have_their_own_cap_and_the_api_stays_reachable() {
    let nodes = cluster(1, &[]).await;
    let addr = nodes[0].addr;
    let mut streams = Vec::new();
    // The server caps event streams at 64 by default.
    for _ in 0..64 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /api/lattice/events HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
        streams.push(s);
    }
    let answer = exchange(
        addr,
        b"GET /api/lattice/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("too_many_streams"), "{answer}");

    let answer = exchange(
        addr,
        b"GET /api/lattice/state HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(streams);
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_push_is_refused_whole_and_changes_nothing() {
    let nodes = cluster(1, &[]).await;
    let key = lattice_node::NodeKey::from_seed([77; 32]);
    let good = lattice_node::ledger::Entry::sign(&key, 1, &json!({"ok": 1}), 65536).unwrap();
    let mut forged: serde_json::Value = serde_json::from_str(
        &lattice_node::ledger::Entry::sign(&key, 2, &json!({"ok": 2}), 65536)
            .unwrap()
            .to_json(),
    )
    .unwrap();
    forged["payload"]["ok"] = json!(3);
    let body = json!({ "entries": [serde_json::from_str::<serde_json::Value>(&good.to_json()).unwrap(), forged] });

    let mut sock = TcpStream::connect(nodes[0].addr).await.unwrap();
    let text = body.to_string();
    sock.write_all(
        format!(
            "POST /api/lattice/reconcile/push HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
            text.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut answer = String::new();
    sock.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 422"), "{answer}");
    assert!(answer.contains("entry 2 of the push"), "{answer}");
    assert_eq!(
        nodes[0].status().entry_count,
        0,
        "a refused push stored something"
    );
    for n in nodes {
        n.stop().await;
    }
}

//! The API server under hostile and sloppy clients, on real sockets: silent and slow
//! connections cannot lock it out, connections are capped per address and in total
//! (the oldest idle ones make room), oversized bodies and malformed requests get clear
//! JSON errors at once, reads that reveal payloads need the token, and the state answer
//! is cheap to re-check with an `ETag`.
// Linux only: source addresses across 127.0.0.0/8 and /proc/self/limits.
#![cfg(target_os = "linux")]

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lattice_node::api::{self as server, ServerOptions};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

/// Serves `node`'s API a second time, on a fresh loopback port with `options`.
async fn serve_with(n: &TestNode, options: ServerOptions) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = server::router(n.node.clone(), &options);
    tokio::spawn(server::serve(
        listener,
        app,
        options,
        n.node.shutdown_token(),
    ));
    addr
}

/// A connection to `addr` from the loopback address `from` (127.0.0.2 and up are
/// distinct client addresses on Linux).
async fn connect_from(from: Ipv4Addr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(from), 0))?;
    socket.connect(addr).await
}

const READ_LIMIT: Duration = Duration::from_secs(5);

/// Reads until the server closes the connection (or `READ_LIMIT` passes: then `None`).
async fn read_until_closed(sock: &mut TcpStream) -> Option<String> {
    let mut out = Vec::new();
    match tokio::time::timeout(READ_LIMIT, async {
        let mut buf = [0u8; 4096];
        loop {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    {
        Ok(()) => Some(String::from_utf8_lossy(&out).into_owned()),
        Err(_) => None,
    }
}

/// Reads one whole response (head and a `content-length` body) off a kept-alive
/// connection.
async fn read_response(sock: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let deadline = Instant::now() + READ_LIMIT;
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&out).into_owned();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let len = text[..head_end]
                .lines()
                .find_map(|l| {
                    let l = l.to_ascii_lowercase();
                    l.strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if out.len() >= head_end + 4 + len {
                return text;
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, sock.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return text,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => panic!("no whole response within {READ_LIMIT:?}; got {text:?}"),
        }
    }
}

/// Sends one request on a new connection from 127.0.0.1 and reads the whole answer.
async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut sock = TcpStream::connect(addr).await.unwrap();
    sock.write_all(request).await.unwrap();
    read_until_closed(&mut sock)
        .await
        .expect("the server answered and closed within the limit")
}

fn get(path: &str, extra_headers: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n{extra_headers}Connection: close\r\n\r\n")
        .into_bytes()
}

fn body_of(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

fn header_of<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
    let head = answer.split_once("\r\n\r\n").map_or(answer, |(h, _)| h);
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn json_of(answer: &str) -> serde_json::Value {
    serde_json::from_str(body_of(answer))
        .unwrap_or_else(|e| panic!("not a JSON body ({e}): {answer:?}"))
}

fn quick_options() -> ServerOptions {
    ServerOptions {
        header_read_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_secs(2),
        ..ServerOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_and_bare_http2_prefaces_are_closed_after_the_timeout() {
    let nodes = cluster(1, &[]).await;
    let addr = serve_with(&nodes[0], quick_options()).await;
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut preface = TcpStream::connect(addr).await.unwrap();
    preface
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    assert!(
        read_until_closed(&mut silent).await.is_some(),
        "a connection that sent nothing was kept open past {READ_LIMIT:?}"
    );
    assert!(
        read_until_closed(&mut preface).await.is_some(),
        "a bare HTTP/2 preface was kept open past {READ_LIMIT:?}"
    );
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_lives_for_the_idle_timeout_not_the_header_timeout() {
    let nodes = cluster(1, &[]).await;
    let options = ServerOptions {
        header_read_timeout: Duration::from_millis(200),
        idle_timeout: Duration::from_millis(2000),
        ..ServerOptions::default()
    };
    let addr = serve_with(&nodes[0], options).await;
    let mut sock = TcpStream::connect(addr).await.unwrap();
    let request = b"GET /api/lattice/state HTTP/1.1\r\nHost: x\r\n\r\n";
    sock.write_all(request).await.unwrap();
    assert!(read_response(&mut sock).await.starts_with("HTTP/1.1 200"));
    // Three header timeouts later, well inside the idle timeout, the pooled connection
    // is still good for the next request.
    tokio::time::sleep(Duration::from_millis(600)).await;
    sock.write_all(request).await.unwrap();
    let second = read_response(&mut sock).await;
    assert!(second.starts_with("HTTP/1.1 200"), "{second:?}");
    // And it is closed once idle for the idle timeout.
    assert!(read_until_closed(&mut sock).await.is_some());
    for n in nodes {
        n.stop().await;
    }
}

#[test]
fn the_default_idle_timeout_outlasts_the_neighbour_clients_pool() {
    assert!(ServerOptions::default().idle_timeout >= Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_is_capped_and_at_the_total_cap_the_oldest_idle_connection_makes_room() {
    let nodes = cluster(1, &[]).await;
    let options = ServerOptions {
        max_connections: 6,
        max_connections_per_ip: 3,
        header_read_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(30),
        ..ServerOptions::default()
    };
    let addr = serve_with(&nodes[0], options).await;
    let a = Ipv4Addr::new(127, 0, 0, 2);
    let b = Ipv4Addr::new(127, 0, 0, 3);
    let mut a1 = connect_from(a, addr).await.unwrap();
    let mut a2 = connect_from(a, addr).await.unwrap();
    let _a3 = connect_from(a, addr).await.unwrap();
    // A fourth from the same address: its own oldest idle connection gives way.
    let _a4 = connect_from(a, addr).await.unwrap();
    assert!(
        read_until_closed(&mut a1).await.is_some(),
        "the address's oldest idle connection stayed open past its cap"
    );
    let mut b_conns = Vec::new();
    for _ in 0..3 {
        b_conns.push(connect_from(b, addr).await.unwrap());
    }
    // Six open: the total cap. A normal request still gets in, and the oldest idle
    // connection (a2) is the one closed for it.
    let answer = exchange(addr, &get("/api/lattice/p2p/status", "")).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert!(
        read_until_closed(&mut a2).await.is_some(),
        "the oldest idle connection stayed open at the total cap"
    );
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_being_served_are_never_evicted_a_newcomer_is_refused_instead() {
    let nodes = cluster(1, &[]).await;
    let options = ServerOptions {
        max_connections: 3,
        header_read_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(30),
        ..ServerOptions::default()
    };
    let addr = serve_with(&nodes[0], options).await;
    let mut streams = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /api/lattice/events HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
        streams.push(s);
    }
    let mut late = TcpStream::connect(addr).await.unwrap();
    let _ = late.write_all(&get("/api/lattice/state", "")).await;
    let answer = read_until_closed(&mut late).await;
    assert_eq!(
        answer.as_deref(),
        Some(""),
        "a connection over the cap was served although every slot was busy"
    );
    // The streams are still live: each can still be read (keep-alive comments come
    // every 15s by default, status snapshots sooner).
    for s in &mut streams {
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(READ_LIMIT, s.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(1))),
            "an event stream was cut: {read:?}"
        );
    }
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_body_over_the_cap_is_refused_at_once_with_413_and_no_100_continue() {
    let nodes = cluster(1, &[]).await;
    let options = ServerOptions {
        max_body: 1024,
        request_timeout: Duration::from_secs(30),
        ..ServerOptions::default()
    };
    let addr = serve_with(&nodes[0], options).await;
    let mut sock = TcpStream::connect(addr).await.unwrap();
    sock.write_all(
        b"POST /api/lattice/reconcile/push HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 999999999\r\nExpect: 100-continue\r\n\r\n",
    )
    .await
    .unwrap();
    let answer = read_response(&mut sock).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");
    assert_eq!(json_of(&answer)["error"], "body_too_large", "{answer}");
    assert!(
        json_of(&answer)["message"]
            .as_str()
            .unwrap()
            .contains("1024"),
        "{answer}"
    );
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parser_level_errors_get_the_same_json_error_body_as_the_rest() {
    let nodes = cluster(1, &[]).await;
    let addr = nodes[0].addr;
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let long = format!("X-Long: {}\r\n", "a".repeat(1024 * 1024));
    let cases: [(&str, Vec<u8>, &str); 3] = [
        (
            "bad URL bytes",
            b"GET /api/\x01\x7f HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            "HTTP/1.1 400",
        ),
        (
            "too many headers",
            get("/api/lattice/state", &many),
            "HTTP/1.1 431",
        ),
        (
            "a header too long",
            get("/api/lattice/state", &long),
            "HTTP/1.1 431",
        ),
    ];
    for (what, request, status) in cases {
        let answer = exchange(addr, &request).await;
        assert!(answer.starts_with(status), "{what}: {answer:?}");
        assert_eq!(
            header_of(&answer, "content-type"),
            Some("application/json"),
            "{what}: {answer:?}"
        );
        let body = json_of(&answer);
        assert!(body["error"].is_string(), "{what}: {body}");
        assert!(body["message"].is_string(), "{what}: {body}");
    }
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_carries_an_etag_and_a_matching_if_none_match_gets_304_without_a_body() {
    let nodes = cluster(1, &[]).await;
    let addr = nodes[0].addr;
    let first = exchange(addr, &get("/api/lattice/state", "")).await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first:?}");
    let etag = header_of(&first, "etag")
        .expect("the state answer has an ETag")
        .to_string();
    let root = json_of(&first)["root"].as_str().unwrap().to_string();
    assert!(etag.starts_with('"') && etag.contains(&root), "{etag}");

    let again = exchange(
        addr,
        &get("/api/lattice/state", &format!("If-None-Match: {etag}\r\n")),
    )
    .await;
    assert!(again.starts_with("HTTP/1.1 304"), "{again:?}");
    assert_eq!(body_of(&again), "", "a 304 carries no body");
    assert!(
        again
            .to_ascii_lowercase()
            .contains("cache-control: no-cache"),
        "a 304 repeats the caching headers: {again:?}"
    );
    assert_eq!(header_of(&again, "etag"), Some(etag.as_str()));
    let listed = exchange(
        addr,
        &get(
            "/api/lattice/state",
            &format!("If-None-Match: \"other\", W/{etag}\r\n"),
        ),
    )
    .await;
    assert!(listed.starts_with("HTTP/1.1 304"), "{listed:?}");

    nodes[0]
        .node
        .put(&serde_json::json!({"n": 1}))
        .await
        .unwrap();
    let changed = exchange(
        addr,
        &get("/api/lattice/state", &format!("If-None-Match: {etag}\r\n")),
    )
    .await;
    assert!(changed.starts_with("HTTP/1.1 200"), "{changed:?}");
    assert_ne!(header_of(&changed, "etag"), Some(etag.as_str()));
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_answers_201_with_the_canonical_payload_as_stored() {
    let nodes = cluster(1, &[]).await;
    let addr = nodes[0].addr;
    let body = r#"{"payload": {"b": [1, 2.50], "a": "x"}}"#;
    let request = format!(
        "POST /api/lattice/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let answer = exchange(addr, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer:?}");
    let answer = json_of(&answer);
    let id = answer["id"].as_str().unwrap();
    let stored = json_of(&exchange(addr, &get(&format!("/api/lattice/entries/{id}"), "")).await);
    assert_eq!(answer["payload"], stored["entry"]["payload"], "{answer}");
    assert_eq!(
        answer["payload"],
        serde_json::json!({"a": "x", "b": [1, 2.5]})
    );
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_reads_that_reveal_payloads_need_it_and_monitoring_stays_open() {
    let nodes = cluster(1, &[("LATTICE_API_TOKEN", TOKEN)]).await;
    let addr = nodes[0].addr;
    let put = nodes[0]
        .node
        .put(&serde_json::json!({"secret": 1}))
        .await
        .unwrap();
    let guarded = [
        "/api/lattice/entries".to_string(),
        format!("/api/lattice/entries/{}", put.id),
        "/api/lattice/events?only=entries".to_string(),
    ];
    for path in &guarded {
        for auth in ["", "Authorization: Bearer wrong-token\r\n"] {
            let answer = exchange(addr, &get(path, auth)).await;
            assert!(
                answer.starts_with("HTTP/1.1 401"),
                "{path} {auth:?}: {answer:?}"
            );
            assert_eq!(json_of(&answer)["error"], "unauthorized");
        }
    }
    let fetch = r#"{"ids": []}"#;
    let answer = exchange(
        addr,
        format!(
            "POST /api/lattice/reconcile/fetch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{fetch}",
            fetch.len()
        )
        .as_bytes(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 401"), "fetch: {answer:?}");
    // The scheme is case-insensitive (RFC 7235).
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let answer = exchange(
            addr,
            &get(
                "/api/lattice/entries",
                &format!("Authorization: {scheme} {TOKEN}\r\n"),
            ),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{scheme}: {answer:?}");
        assert!(answer.contains("secret"), "{scheme}: {answer:?}");
    }
    for path in ["/api/lattice/p2p/status", "/api/lattice/state", "/metrics"] {
        let answer = exchange(addr, &get(path, "")).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{path}: {answer:?}");
    }
    for n in nodes {
        n.stop().await;
    }
}

/// Reads an event stream until `done` holds for what was read, within `READ_LIMIT`.
async fn read_stream_until(sock: &mut TcpStream, done: impl Fn(&str) -> bool) -> String {
    let mut out = Vec::new();
    let deadline = Instant::now() + READ_LIMIT;
    let mut buf = [0u8; 8192];
    loop {
        let text = String::from_utf8_lossy(&out).into_owned();
        if done(&text) {
            return text;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, sock.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
            other => panic!("the stream ended or stalled ({other:?}) before: {text:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_the_plain_event_stream_sends_status_but_no_entries_without_it() {
    let nodes = cluster(1, &[("LATTICE_API_TOKEN", TOKEN)]).await;
    let addr = nodes[0].addr;
    let mut open = TcpStream::connect(addr).await.unwrap();
    open.write_all(b"GET /api/lattice/events HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut authed = TcpStream::connect(addr).await.unwrap();
    authed
        .write_all(
            format!(
                "GET /api/lattice/events HTTP/1.1\r\nHost: x\r\nAuthorization: bearer {TOKEN}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    // Both streams are live before the write.
    read_stream_until(&mut open, |t| t.contains("event: status")).await;
    read_stream_until(&mut authed, |t| t.contains("event: status")).await;
    nodes[0]
        .node
        .put(&serde_json::json!({"secret": 2}))
        .await
        .unwrap();
    let with = read_stream_until(&mut authed, |t| t.contains("event: entry")).await;
    assert!(with.contains("secret"));
    let without = read_stream_until(&mut open, |t| t.contains("\"entry_count\":1")).await;
    assert!(
        !without.contains("event: entry") && !without.contains("secret"),
        "{without}"
    );
    for n in nodes {
        n.stop().await;
    }
}

/// How a hostile connection behaves once connected.
#[derive(Clone, Copy, Debug)]
enum Attack {
    Silent,
    SlowHeaders,
    SlowBody,
    Http2Preface,
}

/// One attacker: connects from `from`, misbehaves until the server closes it, and
/// reconnects (at most 200 times), until `stop`.
async fn attacker(
    from: Ipv4Addr,
    addr: SocketAddr,
    attack: Attack,
    stop: CancellationToken,
    connected: Arc<AtomicUsize>,
) {
    let mut first = true;
    for _ in 0..200 {
        let sock = tokio::select! {
            _ = stop.cancelled() => return,
            s = tokio::time::timeout(Duration::from_secs(2), connect_from(from, addr)) => s,
        };
        let Ok(Ok(mut sock)) = sock else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        if first {
            connected.fetch_add(1, Ordering::Relaxed);
            first = false;
        }
        let opening: &[u8] = match attack {
            Attack::Silent => b"",
            Attack::SlowHeaders => b"GET /api/lattice/p2p/status HTTP/1.1\r\n",
            Attack::SlowBody => b"POST /api/lattice/reconcile/push HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
            Attack::Http2Preface => b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        };
        if sock.write_all(opening).await.is_err() {
            continue;
        }
        let drip: &[u8] = match attack {
            Attack::SlowHeaders => b"X",
            Attack::SlowBody => b" ",
            _ => b"",
        };
        // Drip one byte every 100ms (at most 10 minutes' worth), or just wait, until
        // the server closes the connection.
        let (mut rx, mut tx) = sock.split();
        let mut buf = [0u8; 512];
        let closed = async {
            loop {
                match rx.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        };
        let dripping = async {
            if drip.is_empty() {
                return std::future::pending().await;
            }
            for _ in 0..6000 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if tx.write_all(drip).await.is_err() {
                    return;
                }
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = closed => {}
            _ = dripping => {}
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// This process's (soft, hard) limit on open files, from `/proc/self/limits`.
fn open_files_limit() -> (u64, u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("/proc/self/limits names the open-files limit");
    let mut numbers = line.split_whitespace().filter_map(|w| {
        w.parse::<u64>()
            .ok()
            .or((w == "unlimited").then_some(u64::MAX))
    });
    (numbers.next().unwrap(), numbers.next().unwrap())
}

/// The flood holds about 1,000 client and 500 server sockets in this one process: raise
/// the soft open-files limit to the hard one if it is lower than that (`prlimit` from
/// util-linux; the workspace forbids the unsafe code a direct `setrlimit` would need).
fn ensure_open_files(needed: u64) {
    let (soft, hard) = open_files_limit();
    if soft >= needed {
        return;
    }
    assert!(
        hard >= needed,
        "this test needs {needed} open files and the hard limit is {hard}"
    );
    let status = std::process::Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={hard}:{hard}"))
        .status()
        .expect("prlimit (util-linux) runs");
    assert!(
        status.success(),
        "prlimit could not raise the open-files limit"
    );
    assert!(open_files_limit().0 >= needed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_slow_or_silent_connections_leave_99_percent_of_status_requests_answered() {
    ensure_open_files(4096);
    let nodes = cluster(1, &[]).await;
    let options = ServerOptions {
        header_read_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(3),
        ..ServerOptions::default()
    };
    let addr = serve_with(&nodes[0], options).await;
    let stop = CancellationToken::new();
    let connected = Arc::new(AtomicUsize::new(0));
    const ATTACKERS: usize = 1000;
    // The attackers run on their own thread and runtime, as another process would, so
    // their timers do not compete with the server's tasks for this runtime's workers.
    let flood = {
        let (stop, connected) = (stop.clone(), connected.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let kinds = [
                    Attack::Silent,
                    Attack::SlowHeaders,
                    Attack::SlowBody,
                    Attack::Http2Preface,
                ];
                let mut tasks = Vec::new();
                for i in 0..ATTACKERS {
                    // Four connections per address, from 127.0.1.0 up.
                    let from =
                        Ipv4Addr::new(127, 0, 1 + (i / 4 / 250) as u8, ((i / 4) % 250) as u8);
                    tasks.push(tokio::spawn(attacker(
                        from,
                        addr,
                        kinds[i % kinds.len()],
                        stop.clone(),
                        connected.clone(),
                    )));
                }
                for t in tasks {
                    let _ = t.await;
                }
            })
        })
    };
    let started = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(30);
    while connected.load(Ordering::Relaxed) < ATTACKERS {
        assert!(
            Instant::now() < deadline,
            "only {} attackers connected",
            connected.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let flooded = started.elapsed();
    let mut answered = 0;
    let mut failures = Vec::new();
    let mut connecting = Duration::ZERO;
    for _ in 0..200 {
        let attempt = tokio::time::timeout(Duration::from_secs(5), async {
            let t = Instant::now();
            let mut sock = TcpStream::connect(addr).await?;
            connecting += t.elapsed();
            sock.write_all(&get("/api/lattice/p2p/status", "")).await?;
            let mut answer = String::new();
            sock.read_to_string(&mut answer).await?;
            Ok::<_, std::io::Error>(answer)
        })
        .await;
        match attempt {
            Ok(Ok(a)) if a.starts_with("HTTP/1.1 200") => answered += 1,
            other => failures.push(format!("{other:?}").chars().take(120).collect::<String>()),
        }
    }
    let requests_took = started.elapsed() - flooded;
    stop.cancel();
    flood.join().unwrap();
    eprintln!(
        "{ATTACKERS} hostile connections open after {flooded:?}; {answered}/200 status requests answered in {requests_took:?} ({connecting:?} of it connecting)"
    );
    assert!(
        answered >= 198,
        "{answered} of 200 status requests answered under {ATTACKERS} hostile connections; failures: {:?}",
        &failures[..failures.len().min(5)]
    );
    for n in nodes {
        n.stop().await;
    }
}

/// Log lines written by every test of this binary, for the one test that counts them.
fn captured_logs() -> Arc<std::sync::Mutex<Vec<u8>>> {
    static LOGS: std::sync::OnceLock<Arc<std::sync::Mutex<Vec<u8>>>> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other subscriber");
        logs
    })
    .clone()
}

struct Sink(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_refused_connections_logs_a_bounded_number_of_warnings() {
    let logs = captured_logs();
    let nodes = cluster(1, &[]).await;
    let options = ServerOptions {
        max_connections: 2,
        ..ServerOptions::default()
    };
    let addr = serve_with(&nodes[0], options).await;
    // Both slots busy serving event streams: every newcomer is refused.
    let mut streams = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /api/lattice/events HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).await.unwrap();
        streams.push(s);
    }
    let from = Ipv4Addr::new(127, 0, 0, 9);
    for _ in 0..200 {
        let mut sock = connect_from(from, addr).await.unwrap();
        assert_eq!(read_until_closed(&mut sock).await.as_deref(), Some(""));
    }
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    let lines = text
        .lines()
        .filter(|l| l.contains("refusing 127.0.0.9:"))
        .count();
    assert!(
        (1..=5).contains(&lines),
        "{lines} warnings for 200 refused connections"
    );
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_its_answer_loses_its_slot() {
    let nodes = cluster(1, &[]).await;
    // Small socket buffers (accepted sockets inherit the listener's), so a reader that
    // stops fills them after a few entries instead of megabytes.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(4096).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(64).unwrap();
    let addr = listener.local_addr().unwrap();
    let options = ServerOptions {
        max_connections: 1,
        send_stall_timeout: Duration::from_millis(300),
        ..ServerOptions::default()
    };
    let app = server::router(nodes[0].node.clone(), &options);
    tokio::spawn(server::serve(
        listener,
        app,
        options,
        nodes[0].node.shutdown_token(),
    ));

    let client = TcpSocket::new_v4().unwrap();
    client.set_recv_buffer_size(4096).unwrap();
    let mut stalled = client.connect(addr).await.unwrap();
    stalled
        .write_all(b"GET /api/lattice/events?only=entries HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    stalled.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    // It never reads again, while entries (about 40 KB each) stream to it.
    let big = "x".repeat(40_000);
    for i in 0..30 {
        nodes[0]
            .node
            .put(&serde_json::json!({ "i": i, "pad": big }))
            .await
            .unwrap();
    }
    // The only slot was taken by that stream; once it stalls, others get served.
    let deadline = Instant::now() + READ_LIMIT;
    loop {
        let answer = exchange(addr, &get("/api/lattice/state", "")).await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a client that stopped reading kept the only slot"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(stalled);
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_waiting_for_a_request_do_not_hold_up_shutdown() {
    let nodes = cluster(1, &[]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let options = ServerOptions {
        header_read_timeout: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(60),
        ..ServerOptions::default()
    };
    let stop = CancellationToken::new();
    let app = server::router(nodes[0].node.clone(), &options);
    let server = tokio::spawn(server::serve(listener, app, options, stop.clone()));
    let _silent = TcpStream::connect(addr).await.unwrap();
    let mut half_sent = TcpStream::connect(addr).await.unwrap();
    half_sent
        .write_all(b"GET /api/lattice/state HTTP/1.1\r\n")
        .await
        .unwrap();
    let mut kept_alive = TcpStream::connect(addr).await.unwrap();
    kept_alive
        .write_all(b"GET /api/lattice/state HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(
        read_response(&mut kept_alive)
            .await
            .starts_with("HTTP/1.1 200")
    );
    stop.cancel();
    // Well below the grace period the server gives requests still being served.
    let ended = tokio::time::timeout(Duration::from_secs(3), server).await;
    assert!(ended.is_ok(), "idle connections held the shutdown up");
    for n in nodes {
        n.stop().await;
    }
}

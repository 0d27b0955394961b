//! The neighbour client against real sockets: raw HTTP/1.1 servers on 127.0.0.1 that
//! misbehave in every way a neighbour can.

use super::*;
use std::future::Future;
use std::sync::atomic::AtomicBool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// No test may run longer than this, whatever the client does.
const TEST_BOUND: Duration = Duration::from_millis(1500);

async fn bounded<F: Future>(fut: F) -> F::Output {
    timeout(TEST_BOUND, fut)
        .await
        .expect("test exceeded its time bound")
}

fn limits() -> ClientLimits {
    ClientLimits {
        connect_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_millis(300),
        max_body: 64 * 1024,
        max_event: 1024,
        pool_idle_timeout: Duration::from_secs(4),
    }
}

fn short_limits() -> ClientLimits {
    ClientLimits {
        request_timeout: Duration::from_millis(200),
        ..limits()
    }
}

/// What the raw server does once its scripted bytes are written.
#[derive(Clone, Copy)]
enum Then {
    Close,
    /// Keep the connection open and silent until the test ends.
    Hold,
    /// Write 64 KiB chunks (chunked encoding) until 100 MiB or the peer goes away.
    StreamChunks,
}

struct RawServer {
    base: Url,
    /// Each request's head and body, as received.
    requests: mpsc::UnboundedReceiver<String>,
    /// Body bytes written in `Then::StreamChunks` mode.
    streamed: Arc<AtomicU64>,
    stream_stopped: Arc<AtomicBool>,
}

/// A real HTTP/1.1 server on 127.0.0.1 answering every connection with `reply`.
async fn raw_server(reply: impl Into<Vec<u8>>, then: Then) -> RawServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, requests) = mpsc::unbounded_channel();
    let reply: Arc<[u8]> = reply.into().into();
    let streamed = Arc::new(AtomicU64::new(0));
    let stream_stopped = Arc::new(AtomicBool::new(false));
    let (counter, stopped) = (Arc::clone(&streamed), Arc::clone(&stream_stopped));
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (tx, reply) = (tx.clone(), Arc::clone(&reply));
            let (counter, stopped) = (Arc::clone(&counter), Arc::clone(&stopped));
            tokio::spawn(async move {
                let _ = tx.send(read_request(&mut sock).await);
                if sock.write_all(&reply).await.is_err() {
                    return;
                }
                match then {
                    Then::Close => {
                        let _ = sock.shutdown().await;
                    }
                    Then::Hold => std::future::pending::<()>().await,
                    Then::StreamChunks => {
                        stream_chunks(&mut sock, &counter).await;
                        stopped.store(true, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    RawServer {
        base: format!("http://{addr}/").parse().unwrap(),
        requests,
        streamed,
        stream_stopped,
    }
}

async fn stream_chunks(sock: &mut TcpStream, counter: &AtomicU64) {
    const CHUNK: usize = 64 * 1024;
    let mut frame = format!("{CHUNK:x}\r\n").into_bytes();
    frame.extend(std::iter::repeat_n(b'7', CHUNK));
    frame.extend_from_slice(b"\r\n");
    for _ in 0..(100 * 1024 * 1024 / CHUNK) {
        if sock.write_all(&frame).await.is_err() {
            return;
        }
        counter.fetch_add(CHUNK as u64, Ordering::SeqCst);
    }
}

/// Reads one request: the head, then a body of its Content-Length.
async fn read_request(sock: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match sock.read(&mut tmp).await {
            Ok(0) | Err(_) => return String::from_utf8_lossy(&buf).into(),
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let body_len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    while buf.len() < head_end + body_len {
        match sock.read(&mut tmp).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
    }
    String::from_utf8_lossy(&buf).into()
}

fn response(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A `Secret` the only way outside `config` can make one: through configuration.
fn secret(token: &str) -> Secret {
    let overrides = crate::config::Overrides {
        data_dir: Some("unused".into()),
        ..Default::default()
    };
    let lookup = |k: &str| (k == "LATTICE_API_TOKEN").then(|| token.to_string());
    crate::config::Config::from_lookup(lookup, &overrides)
        .unwrap()
        .api_token
        .unwrap()
}

fn client(server: &RawServer, limits: ClientLimits) -> NeighborClient {
    NeighborClient::new(server.base.clone(), None, limits).unwrap()
}

#[derive(Debug, serde::Deserialize, PartialEq)]
struct State {
    root: String,
    len: u64,
}

#[tokio::test]
async fn json_answer_is_decoded_with_bearer_sent_and_body_bytes_counted() {
    let body = r#"{"root":"ab12","len":3}"#;
    let mut server = raw_server(
        response("200 OK", "Application/JSON; charset=utf-8", body),
        Then::Close,
    )
    .await;
    let token = secret("s3cret-token-0123456789");
    let client = NeighborClient::new(server.base.clone(), Some(token), limits()).unwrap();
    let clone = client.clone();
    let query = [("since", "5".to_string()), ("who", "a b".to_string())];

    let state: State = bounded(clone.get_json("/api/lattice/state", &query))
        .await
        .unwrap();

    assert_eq!(
        state,
        State {
            root: "ab12".into(),
            len: 3
        }
    );
    assert_eq!(
        client.bytes_received(),
        body.len() as u64,
        "counted across clones"
    );
    assert_eq!(client.bytes_sent(), 0);
    let request = server.requests.recv().await.unwrap();
    assert!(
        request.starts_with("GET /api/lattice/state?since=5&who=a+b HTTP/1.1\r\n"),
        "{request}"
    );
    let lower = request.to_ascii_lowercase();
    assert!(
        lower.contains("\r\nauthorization: bearer s3cret-token-0123456789\r\n"),
        "{request}"
    );
    assert!(
        lower.contains("\r\naccept: application/json\r\n"),
        "{request}"
    );
    assert!(
        lower.contains(&format!("\r\nuser-agent: {USER_AGENT}\r\n")),
        "{request}"
    );
}

#[tokio::test]
async fn no_token_means_no_authorization_header() {
    let mut server = raw_server(response("200 OK", "application/json", "[]"), Then::Close).await;
    let _: Vec<u8> = bounded(client(&server, limits()).get_json("x", &[]))
        .await
        .unwrap();
    let request = server.requests.recv().await.unwrap();
    assert!(
        !request.to_ascii_lowercase().contains("authorization"),
        "{request}"
    );
}

#[tokio::test]
async fn post_json_sends_the_body_as_json_and_counts_it() {
    let mut server = raw_server(
        response("200 OK", "application/json", r#"{"accepted":2}"#),
        Then::Close,
    )
    .await;
    let client = client(&server, limits());
    let sent = serde_json::json!({ "ids": ["a", "b"] });

    let reply: serde_json::Value = bounded(client.post_json("api/lattice/entries", &sent))
        .await
        .unwrap();

    assert_eq!(reply["accepted"], 2);
    let encoded = serde_json::to_vec(&sent).unwrap();
    assert_eq!(client.bytes_sent(), encoded.len() as u64);
    assert_eq!(client.bytes_received(), 14);
    let request = server.requests.recv().await.unwrap();
    assert!(
        request.starts_with("POST /api/lattice/entries HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(
        request
            .to_ascii_lowercase()
            .contains("\r\ncontent-type: application/json\r\n"),
        "{request}"
    );
    assert!(
        request.ends_with(std::str::from_utf8(&encoded).unwrap()),
        "{request}"
    );
}

#[tokio::test]
async fn html_page_is_not_json() {
    let server = raw_server(
        response("200 OK", "text/html; charset=utf-8", "<html>hi</html>"),
        Then::Close,
    )
    .await;
    let err = bounded(client(&server, limits()).get_json::<State>("x", &[]))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ClientError::NotJson {
            content_type: "text/html; charset=utf-8".into()
        }
    );
    assert_eq!(err.kind(), "not_json");
    assert!(err.to_string().contains("text/html"), "{err}");
    assert!(err.to_string().contains("not JSON"), "{err}");
}

#[tokio::test]
async fn our_json_error_becomes_status_with_its_kind() {
    let body = r#"{"error":"unauthorized","message":"a valid token is required"}"#;
    let server = raw_server(
        response("500 Internal Server Error", "application/json", body),
        Then::Close,
    )
    .await;
    let err = bounded(client(&server, limits()).get_json::<State>("x", &[]))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ClientError::Status {
            status: 500,
            kind: Some("unauthorized".into()),
            message: "a valid token is required".into()
        }
    );
    assert_eq!(err.kind(), "status");
    assert_eq!(
        err.to_string(),
        "neighbour answered HTTP 500 (unauthorized): a valid token is required"
    );
}

#[tokio::test]
async fn html_error_page_becomes_status_with_a_short_snippet() {
    let body = format!(
        "<html>\n  <h1>Bad   gateway</h1>{}</html>",
        "x".repeat(10_000)
    );
    let server = raw_server(
        response("500 Internal Server Error", "text/html", &body),
        Then::Close,
    )
    .await;
    let client = client(&server, limits());
    let err = bounded(client.get_json::<State>("x", &[]))
        .await
        .unwrap_err();
    let ClientError::Status {
        status,
        kind,
        message,
    } = &err
    else {
        panic!("expected Status, got {err:?}");
    };
    assert_eq!((*status, kind), (500, &None));
    assert!(
        message.starts_with("<html> <h1>Bad gateway</h1>xxx"),
        "{message}"
    );
    assert!(message.chars().count() <= SNIPPET_CHARS + 1, "{message}");
    assert_eq!(client.bytes_received(), ERROR_BODY_CAP as u64);
}

#[tokio::test]
async fn declared_huge_body_is_too_large_before_reading_any_of_it() {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                Content-Length: 104857600\r\n\r\n[1,2,3,";
    let server = raw_server(head, Then::Hold).await;
    let client = client(&server, limits());
    let err = bounded(client.get_json::<Vec<u32>>("x", &[]))
        .await
        .unwrap_err();
    assert_eq!(err, ClientError::TooLarge { limit: 64 * 1024 });
    assert_eq!(err.kind(), "too_large");
    assert_eq!(client.bytes_received(), 0);
}

#[tokio::test]
async fn endless_chunked_body_stops_at_the_cap() {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                Transfer-Encoding: chunked\r\n\r\n";
    let server = raw_server(head, Then::StreamChunks).await;
    let client = client(&server, limits());
    let err = bounded(client.get_json::<Vec<u32>>("x", &[]))
        .await
        .unwrap_err();
    assert_eq!(err, ClientError::TooLarge { limit: 64 * 1024 });
    assert_eq!(client.bytes_received(), 64 * 1024);
    // The client hung up: the server's writes fail long before its 100 MiB.
    bounded(async {
        while !server.stream_stopped.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(server.streamed.load(Ordering::SeqCst) < 100 * 1024 * 1024);
}

#[tokio::test]
async fn redirect_is_reported_and_not_followed() {
    let reply = "HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n";
    let mut server = raw_server(reply, Then::Close).await;
    let err = bounded(client(&server, limits()).get_json::<State>("x", &[]))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ClientError::Redirect {
            location: "/elsewhere".into()
        }
    );
    assert_eq!(err.kind(), "redirect");
    assert!(server.requests.recv().await.unwrap().starts_with("GET /x "));
    assert!(
        server.requests.try_recv().is_err(),
        "the target was fetched"
    );
}

#[tokio::test]
async fn silent_server_times_out() {
    let server = raw_server("", Then::Hold).await;
    let err = bounded(client(&server, short_limits()).get_json::<State>("x", &[]))
        .await
        .unwrap_err();
    assert_eq!(err, ClientError::Timeout);
    assert_eq!(err.kind(), "timeout");
}

#[tokio::test]
async fn body_stalled_after_headers_times_out() {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                Content-Length: 100\r\n\r\n{\"root\":";
    let server = raw_server(head, Then::Hold).await;
    let err = bounded(client(&server, short_limits()).get_json::<State>("x", &[]))
        .await
        .unwrap_err();
    assert_eq!(err, ClientError::Timeout);
}

#[tokio::test]
async fn refused_connection_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let base: Url = format!("http://{addr}/").parse().unwrap();
    let client = NeighborClient::new(base, None, limits()).unwrap();
    let err = bounded(client.get_json::<State>("x", &[]))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Connect(_)), "{err:?}");
    assert_eq!(err.kind(), "connect");
    assert!(err.to_string().to_lowercase().contains("refused"), "{err}");
}

#[tokio::test]
async fn wrong_json_shape_is_a_decode_error() {
    let server = raw_server(
        response("200 OK", "application/json", r#"{"root":7}"#),
        Then::Close,
    )
    .await;
    let err = bounded(client(&server, limits()).get_json::<State>("x", &[]))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Decode(_)), "{err:?}");
    assert_eq!(err.kind(), "decode");
    assert!(err.to_string().contains("expected shape"), "{err}");
}

#[tokio::test]
async fn connection_closed_mid_body_is_an_io_error() {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                Content-Length: 100\r\n\r\n{\"root\":";
    let server = raw_server(head, Then::Close).await;
    let err = bounded(client(&server, limits()).get_json::<State>("x", &[]))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Io(_)), "{err:?}");
    assert_eq!(err.kind(), "io");
}

/// A server whose every connection answers its first request with keep-alive, then
/// reads the next request on that same connection and closes it unanswered: what a
/// server's idle timeout does to a pooled connection at the instant it is reused.
async fn closes_on_second_request(reply: String) -> RawServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, requests) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (tx, reply) = (tx.clone(), reply.clone());
            tokio::spawn(async move {
                let _ = tx.send(read_request(&mut sock).await);
                if sock.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
                let second = read_request(&mut sock).await;
                if !second.is_empty() {
                    let _ = tx.send(second);
                }
                drop(sock);
            });
        }
    });
    RawServer {
        base: format!("http://{addr}/").parse().unwrap(),
        requests,
        streamed: Arc::default(),
        stream_stopped: Arc::default(),
    }
}

fn keep_alive_reply(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn drain(requests: &mut mpsc::UnboundedReceiver<String>) -> Vec<String> {
    std::iter::from_fn(|| requests.try_recv().ok()).collect()
}

#[tokio::test]
async fn a_get_on_a_reused_connection_the_server_closed_succeeds_on_a_fresh_one() {
    let body = r#"{"root":"ab","len":1}"#;
    let mut server = closes_on_second_request(keep_alive_reply(body)).await;
    let client = client(&server, limits());
    let first: State = bounded(client.get_json("x", &[])).await.unwrap();
    let second: State = bounded(client.get_json("x", &[]))
        .await
        .expect("the broken reused connection is retried on a fresh one");
    assert_eq!(first, second);
    // First answered; second read on the reused connection and dropped; the retry.
    let seen = drain(&mut server.requests);
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen.iter().all(|r| r.starts_with("GET /x ")), "{seen:?}");
}

#[tokio::test]
async fn a_post_that_is_not_idempotent_is_not_sent_again_when_its_connection_breaks() {
    let mut server = closes_on_second_request(keep_alive_reply("{}")).await;
    let client = client(&server, limits());
    let _: serde_json::Value = bounded(client.get_json("x", &[])).await.unwrap();
    let err = bounded(client.post_json::<_, serde_json::Value>("api/lattice/entries", &1))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "io", "{err}");
    let seen = drain(&mut server.requests);
    assert_eq!(seen.len(), 2, "the POST was sent again: {seen:?}");
    assert!(
        seen[1].starts_with("POST /api/lattice/entries "),
        "{seen:?}"
    );
}

#[tokio::test]
async fn an_idempotent_post_is_sent_once_more_and_only_once() {
    // Every connection breaks at its second request; a fresh one answers the retry.
    let mut server = closes_on_second_request(keep_alive_reply("[1]")).await;
    let client = client(&server, limits());
    let _: Vec<u8> = bounded(client.get_json("x", &[])).await.unwrap();
    let got: Vec<u8> = bounded(client.post_json_idempotent("ids", &2))
        .await
        .unwrap();
    assert_eq!(got, [1]);
    let posts = drain(&mut server.requests)
        .into_iter()
        .filter(|r| r.starts_with("POST /ids "))
        .count();
    assert_eq!(posts, 2);
}

#[test]
fn the_pool_lets_idle_connections_go_well_before_a_10s_server_timeout() {
    assert!(ClientLimits::default().pool_idle_timeout <= Duration::from_secs(5));
}

/// A server that answers `200` with `etag` unless the request carries
/// `If-None-Match: <etag>`, then `304` with no body. One request per connection.
async fn etag_server(etag: &'static str, body: &'static str) -> RawServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, requests) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let request = read_request(&mut sock).await;
                let matches = request
                    .to_ascii_lowercase()
                    .contains(&format!("\r\nif-none-match: {etag}\r\n"));
                let reply = if matches {
                    format!(
                        "HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\nConnection: close\r\n\r\n"
                    )
                } else {
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nETag: {etag}\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                };
                let _ = tx.send(request);
                let _ = sock.write_all(reply.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    RawServer {
        base: format!("http://{addr}/").parse().unwrap(),
        requests,
        streamed: Arc::default(),
        stream_stopped: Arc::default(),
    }
}

#[tokio::test]
async fn a_revalidated_get_sends_the_last_etag_and_reuses_the_answer_on_304() {
    let body = r#"{"root":"cd","len":2}"#;
    let mut server = etag_server("\"v1-cd\"", body).await;
    let client = client(&server, limits());
    let first: Revalidated<State> = bounded(client.get_json_revalidated("s")).await.unwrap();
    assert!(!first.not_modified);
    let second: Revalidated<State> = bounded(client.get_json_revalidated("s")).await.unwrap();
    assert!(second.not_modified, "the second answer was not a 304");
    assert_eq!(first.value, second.value);
    assert_eq!(
        client.bytes_received(),
        body.len() as u64,
        "the 304 had no body"
    );
    let seen = drain(&mut server.requests);
    assert!(
        !seen[0].to_ascii_lowercase().contains("if-none-match"),
        "{seen:?}"
    );
    assert!(
        seen[1]
            .to_ascii_lowercase()
            .contains("\r\nif-none-match: \"v1-cd\"\r\n"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_304_to_a_request_that_was_not_conditional_is_an_error() {
    let reply = "HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n";
    let server = raw_server(reply, Then::Close).await;
    let client = client(&server, limits());
    for err in [
        bounded(client.get_json::<State>("x", &[]))
            .await
            .unwrap_err(),
        bounded(client.get_json_revalidated::<State>("x"))
            .await
            .unwrap_err(),
    ] {
        assert_eq!(err.kind(), "decode", "{err}");
        assert!(err.to_string().contains("not conditional"), "{err}");
    }
}

#[test]
fn base_gets_a_trailing_slash_and_paths_cannot_leave_it() {
    let base: Url = "http://127.0.0.1:9/lattice".parse().unwrap();
    let client = NeighborClient::new(base, None, limits()).unwrap();
    assert_eq!(client.base().as_str(), "http://127.0.0.1:9/lattice/");
    assert_eq!(
        client.url("/api/lattice/state", &[]).unwrap().as_str(),
        "http://127.0.0.1:9/lattice/api/lattice/state"
    );
    assert!(client.url("http://evil.example/x", &[]).is_err());
    assert!(client.url("../x", &[]).is_err());
    let ftp: Url = "ftp://127.0.0.1/".parse().unwrap();
    assert!(NeighborClient::new(ftp, None, limits()).is_err());
}

#[test]
fn kinds_are_stable_names() {
    let kinds: Vec<&str> = [
        ClientError::Connect(String::new()),
        ClientError::Timeout,
        ClientError::Status {
            status: 500,
            kind: None,
            message: String::new(),
        },
        ClientError::NotJson {
            content_type: String::new(),
        },
        ClientError::TooLarge { limit: 1 },
        ClientError::Redirect {
            location: String::new(),
        },
        ClientError::Decode(String::new()),
        ClientError::Io(String::new()),
    ]
    .iter()
    .map(ClientError::kind)
    .collect();
    assert_eq!(kinds, ClientError::KINDS);
    assert_eq!(
        kinds,
        [
            "connect",
            "timeout",
            "status",
            "not_json",
            "too_large",
            "redirect",
            "decode",
            "io"
        ]
    );
}

const SSE_HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
                        Cache-Control: no-cache\r\n\r\n";

fn event(event: &str, data: &str, id: Option<&str>) -> SseEvent {
    SseEvent {
        event: event.into(),
        data: data.into(),
        id: id.map(Into::into),
    }
}

#[tokio::test]
async fn event_stream_parses_events_comments_and_multiline_data() {
    let body = ": keep-alive\n\nevent: tick\ndata: line one\ndata:line two\nid: 7\n\n\
                data: plain\r\n\r\ndata: unterminated";
    let mut server = raw_server(format!("{SSE_HEAD}{body}"), Then::Close).await;
    let token = secret("tok-0123456789abcdef");
    let client = NeighborClient::new(server.base.clone(), Some(token), limits()).unwrap();

    let events = bounded(async {
        let mut stream = client
            .events("api/lattice/events", Duration::from_millis(500))
            .await
            .unwrap();
        let mut got = Vec::new();
        while let Some(ev) = stream.next().await {
            got.push(ev.unwrap());
        }
        got
    })
    .await;

    assert_eq!(
        events,
        [
            event("tick", "line one\nline two", Some("7")),
            event("message", "plain", Some("7")),
        ]
    );
    assert_eq!(client.bytes_received(), body.len() as u64);
    let request = server.requests.recv().await.unwrap().to_ascii_lowercase();
    assert!(
        request.contains("\r\naccept: text/event-stream\r\n"),
        "{request}"
    );
    assert!(
        request.contains("\r\nauthorization: bearer tok-0123456789abcdef\r\n"),
        "{request}"
    );
}

#[tokio::test]
async fn oversize_event_is_too_large() {
    let body = format!(
        "data: ok\n\ndata: {}\ndata: {}\n\n",
        "a".repeat(600),
        "b".repeat(600)
    );
    let server = raw_server(format!("{SSE_HEAD}{body}"), Then::Hold).await;
    let client = client(&server, limits());
    let (first, second, third) = bounded(async {
        let mut stream = client
            .events("e", Duration::from_millis(500))
            .await
            .unwrap();
        (
            stream.next().await,
            stream.next().await,
            stream.next().await,
        )
    })
    .await;
    assert_eq!(first.unwrap().unwrap(), event("message", "ok", None));
    assert_eq!(
        second.unwrap().unwrap_err(),
        ClientError::TooLarge { limit: 1024 }
    );
    assert!(third.is_none(), "the stream ends after an error");
}

#[tokio::test]
async fn idle_event_stream_times_out() {
    let server = raw_server(format!("{SSE_HEAD}: hello\n\n"), Then::Hold).await;
    let client = client(&server, limits());
    let next = bounded(async {
        let mut stream = client
            .events("e", Duration::from_millis(150))
            .await
            .unwrap();
        stream.next().await
    })
    .await;
    assert_eq!(next.unwrap().unwrap_err(), ClientError::Timeout);
}

#[tokio::test]
async fn event_stream_requires_the_event_stream_content_type() {
    let server = raw_server(response("200 OK", "text/html", "<p>no</p>"), Then::Close).await;
    let err = bounded(client(&server, limits()).events("e", Duration::from_millis(500)))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ClientError::Decode("neighbour answered text/html, not an event stream".into())
    );
}

#[tokio::test]
async fn event_stream_that_never_answers_times_out_opening() {
    let server = raw_server("", Then::Hold).await;
    let err = bounded(client(&server, short_limits()).events("e", Duration::from_secs(60)))
        .await
        .unwrap_err();
    assert_eq!(err, ClientError::Timeout);
}

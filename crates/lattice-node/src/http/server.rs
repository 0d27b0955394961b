//! The HTTP API (axum) on real sockets: status, mode switch, entries, reconciliation,
//! Server-Sent Events and `/metrics`.
//!
//! Served with hyper directly rather than `axum::serve` so that slow clients cannot hold
//! the server: request headers must arrive within a deadline, connections are capped by
//! a semaphore, handlers time out, bodies are capped. Errors are JSON
//! `{ "error": kind, "message": ... }`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::{Stream, StreamExt, stream};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_stream::wrappers::BroadcastStream;
use tokio_util::sync::CancellationToken;
use tower_http::timeout::TimeoutLayer;

use crate::config::{Config, Mode};
use crate::http::remote::paths;
use crate::ledger::{EntryId, verify_inclusion};
use crate::node::{NodeError, NodeHandle};
use crate::sync::reconcile::{
    ChildrenRequest, EntriesMessage, FetchRequest, IdsRequest, PushResponse, answer,
};

/// Limits that keep the server responsive under bad clients. Tests shorten them.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Connections served at once; more are closed on accept.
    pub max_connections: usize,
    /// A client must send its request headers within this time.
    pub header_read_timeout: Duration,
    /// A handler (not an event stream) must answer within this time.
    pub request_timeout: Duration,
    /// Largest request body.
    pub max_body: usize,
    /// Comment lines keep idle event streams (and proxies) alive.
    pub sse_keepalive: Duration,
    /// Status snapshots on an event stream are coalesced to at most one per this period.
    pub sse_status_interval: Duration,
    /// Event streams open at once: they are long-lived, so they get their own cap below
    /// `max_connections`, and the rest of the API stays reachable.
    pub max_event_streams: usize,
    /// The built dashboard (`ui/dist`), served at `/` so a browser can watch this node.
    pub ui_dir: Option<std::path::PathBuf>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            max_connections: 512,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_body: 32 * 1024 * 1024,
            sse_keepalive: Duration::from_secs(15),
            sse_status_interval: Duration::from_millis(100),
            max_event_streams: 64,
            ui_dir: None,
        }
    }
}

/// Refuses to expose the API beyond this machine without a token.
pub fn check_listen_security(config: &Config) -> Result<(), String> {
    if !config.http_listen.ip().is_loopback() && config.api_token.is_none() {
        return Err(format!(
            "LATTICE_HTTP_LISTEN: \"{}\" is not a loopback address, so LATTICE_API_TOKEN must be set to protect writes",
            config.http_listen
        ));
    }
    Ok(())
}

/// An API error: its status, a stable kind and a message naming the problem.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: String,
    message: String,
    /// For a refused choice: the values that would have been accepted.
    allowed: Option<Vec<&'static str>>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind: kind.into(),
            message: message.into(),
            allowed: None,
        }
    }
    fn bad_request(kind: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, kind, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.kind, "message": self.message });
        if let Some(allowed) = self.allowed {
            body["allowed"] = json!(allowed);
        }
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        let status = match &e {
            NodeError::Entry(_) => StatusCode::UNPROCESSABLE_ENTITY,
            NodeError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            NodeError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            NodeError::Neighbor { .. } | NodeError::P2p(_) => StatusCode::BAD_GATEWAY,
        };
        ApiError::new(status, e.kind(), e.to_string())
    }
}

fn body_error(e: BytesRejection) -> ApiError {
    let status = e.status();
    let kind = if status == StatusCode::PAYLOAD_TOO_LARGE {
        "body_too_large"
    } else {
        "bad_body"
    };
    ApiError::new(status, kind, e.body_text())
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "bad_json",
            format!("the request body is not the expected JSON: {e}"),
        )
    })
}

type Json = axum::Json<serde_json::Value>;

fn to_json<T: serde::Serialize>(v: &T) -> Json {
    axum::Json(serde_json::to_value(v).expect("API types serialize"))
}

/// The whole API for `node`.
pub fn router(node: NodeHandle, options: &ServerOptions) -> Router {
    let guarded = Router::new()
        .route("/api/lattice/sync/switch", post(switch))
        .route("/api/lattice/entries", post(put_entry))
        .route("/api/lattice/p2p/block", post(block_p2p))
        .route("/api/lattice/p2p/unblock", post(unblock_p2p))
        .route(&format!("/{}", paths::CHILDREN), post(children))
        .route(&format!("/{}", paths::IDS), post(ids))
        .route(&format!("/{}", paths::FETCH), post(fetch))
        .route(&format!("/{}", paths::PUSH), post(push))
        .route_layer(middleware::from_fn_with_state(node.clone(), require_token));
    let quick = Router::new()
        .route("/api/lattice/p2p/status", get(status))
        .route(&format!("/{}", paths::STATE), get(state))
        .route("/api/lattice/entries", get(list_entries))
        .route("/api/lattice/entries/{id}", get(get_entry))
        .route("/metrics", get(metrics))
        .merge(guarded)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            options.request_timeout,
        ));
    let not_found =
        || async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint") };
    let router = Router::new()
        .route(&format!("/{}", paths::EVENTS), get(events))
        .merge(quick)
        .route("/api/{*rest}", axum::routing::any(not_found));
    let router = match &options.ui_dir {
        Some(dir) => router.fallback_service(
            tower_http::services::ServeDir::new(dir).append_index_html_on_directories(true),
        ),
        None => router.fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint (this node serves no dashboard: build ui/ or set LATTICE_UI_DIR)",
            )
        }),
    };
    router
        .layer(DefaultBodyLimit::max(options.max_body))
        .layer(middleware::map_response(json_errors))
        .layer(middleware::map_response(security_headers))
        .with_state(AppState {
            node,
            options: Arc::new(options.clone()),
            streams: Arc::new(Semaphore::new(options.max_event_streams)),
        })
}

#[derive(Clone)]
struct AppState {
    node: NodeHandle,
    options: Arc<ServerOptions>,
    /// Permits for open event streams.
    streams: Arc<Semaphore>,
}

/// The dashboard loads nothing from elsewhere and runs no inline code or styles.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    response
}

/// Where a built dashboard is, if anywhere: `LATTICE_UI_DIR`, else next to the binary
/// (`../share/lattice/ui` as packaged, or the repository's `ui/dist` for a local build),
/// else `./ui/dist`.
pub fn find_ui_dir() -> Option<std::path::PathBuf> {
    use std::path::PathBuf;
    let has_index = |p: &PathBuf| p.join("index.html").is_file();
    if let Some(dir) = std::env::var_os("LATTICE_UI_DIR").map(PathBuf::from) {
        return has_index(&dir).then_some(dir);
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe()
        && let Some(bin) = exe.parent()
    {
        candidates.push(bin.join("../share/lattice/ui"));
        candidates.push(bin.join("../../ui/dist"));
    }
    candidates.push(PathBuf::from("ui/dist"));
    candidates.into_iter().find(has_index)
}

/// Errors produced outside our handlers (timeouts, wrong methods, bad query strings)
/// come as plain text or empty; give them the same JSON shape as ours.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let text = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let kind = match status {
        StatusCode::REQUEST_TIMEOUT => "timeout",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    ApiError::new(status, kind, message).into_response()
}

impl axum::extract::FromRef<AppState> for NodeHandle {
    fn from_ref(s: &AppState) -> NodeHandle {
        s.node.clone()
    }
}

/// Compares in constant time for equal lengths (the length is not secret).
fn same_token(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

async fn require_token(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    if let Some(token) = &node.config().api_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !same_token(given.as_bytes(), token.expose().as_bytes()) {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this endpoint needs Authorization: Bearer <LATTICE_API_TOKEN>",
            )
            .into_response();
        }
    }
    next.run(request).await
}

async fn status(State(node): State<NodeHandle>) -> Json {
    to_json(&node.status())
}

async fn switch(
    State(node): State<NodeHandle>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json, ApiError> {
    let invalid = |message: String| ApiError {
        allowed: Some(Mode::ALL.iter().map(Mode::as_str).collect()),
        ..ApiError::bad_request("invalid_mode", message)
    };
    let mode = match q.get("mode") {
        None => {
            return Err(invalid(
                "the mode query parameter is missing; use ?mode=auto, ?mode=p2p or ?mode=http"
                    .into(),
            ));
        }
        Some(m) => m.parse::<Mode>().map_err(|_| {
            invalid(format!(
                "{:?} is not a mode; use auto, p2p or http",
                m.chars().take(40).collect::<String>()
            ))
        })?,
    };
    Ok(to_json(&node.switch_mode(mode).await?))
}

/// Cuts P2P for real: closes every connection and refuses new ones until unblocked.
async fn block_p2p(State(node): State<NodeHandle>) -> Result<Json, ApiError> {
    Ok(to_json(&node.set_p2p_blocked(true).await?))
}

async fn unblock_p2p(State(node): State<NodeHandle>) -> Result<Json, ApiError> {
    Ok(to_json(&node.set_p2p_blocked(false).await?))
}

async fn state(State(node): State<NodeHandle>) -> Json {
    to_json(&answer::state(node.store(), node.peer_id()))
}

#[derive(Deserialize)]
struct PutBody {
    payload: serde_json::Value,
}

async fn put_entry(
    State(node): State<NodeHandle>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json), ApiError> {
    let body: PutBody = parse_json(&body.map_err(body_error)?)?;
    let appended = node.put(&body.payload).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({
            "id": appended.id,
            "inserted": appended.inserted,
            "merkle_root": hex::encode(appended.root),
            "entry_count": appended.count,
        })),
    ))
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<usize>,
}

async fn list_entries(
    State(node): State<NodeHandle>,
    Query(q): Query<ListQuery>,
) -> Result<Json, ApiError> {
    let limit = q.limit.unwrap_or(50).min(1000);
    let entries = node.store().latest(limit).map_err(NodeError::from)?;
    // Bounded by size as well as count: 1000 entries at the payload cap would be tens of
    // megabytes. The newest come first, so a cut keeps the newest.
    let (page, _) = crate::sync::reconcile::bounded_message(&entries);
    Ok(axum::Json(
        json!({ "entries": page.entries, "entry_count": node.store().len() }),
    ))
}

async fn get_entry(
    State(node): State<NodeHandle>,
    Path(id): Path<String>,
) -> Result<Json, ApiError> {
    let id: EntryId = id
        .parse()
        .map_err(|e: crate::ledger::EntryError| ApiError::bad_request(e.kind(), e.to_string()))?;
    let entry = node
        .store()
        .get(&id)
        .map_err(NodeError::from)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no_such_entry",
                format!("entry {id} is not in this ledger"),
            )
        })?;
    let proof = node.store().prove(&id);
    let verified = proof
        .as_ref()
        .is_some_and(|p| verify_inclusion(&p.root, &p.id, &p.steps));
    Ok(axum::Json(
        json!({ "entry": entry, "proof": proof, "proof_verified": verified }),
    ))
}

async fn children(
    State(node): State<NodeHandle>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json, ApiError> {
    let req: ChildrenRequest = parse_json(&body.map_err(body_error)?)?;
    let resp = answer::children(node.store(), &req)
        .map_err(|m| ApiError::bad_request("bad_reconcile_request", m))?;
    Ok(to_json(&resp))
}

async fn ids(
    State(node): State<NodeHandle>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json, ApiError> {
    let req: IdsRequest = parse_json(&body.map_err(body_error)?)?;
    let resp = answer::ids(node.store(), &req)
        .map_err(|m| ApiError::bad_request("bad_reconcile_request", m))?;
    Ok(to_json(&resp))
}

async fn fetch(
    State(node): State<NodeHandle>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: FetchRequest = parse_json(&body.map_err(body_error)?)?;
    let msg = answer::fetch(node.store(), &req)
        .map_err(|m| ApiError::bad_request("bad_reconcile_request", m))?;
    // Raw entries are already JSON; serialize the message as is.
    let text = serde_json::to_string(&msg).expect("entries serialize");
    Ok(([(header::CONTENT_TYPE, "application/json")], text).into_response())
}

async fn push(
    State(node): State<NodeHandle>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json, ApiError> {
    let msg: EntriesMessage = parse_json(&body.map_err(body_error)?)?;
    let entries = answer::verify_push(&msg, node.config().max_payload)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.kind(), e.to_string()))?;
    let appended = node.ingest(entries).await?;
    let accepted = appended.iter().filter(|a| a.inserted).count();
    Ok(to_json(&PushResponse {
        accepted,
        already_present: appended.len() - accepted,
    }))
}

async fn metrics(State(node): State<NodeHandle>) -> Result<Response, ApiError> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, node.registry()).map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "metrics",
            "encoding metrics failed",
        )
    })?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

#[derive(Deserialize)]
struct EventsQuery {
    only: Option<String>,
}

/// `status` events (coalesced snapshots), `event` events (node events) and `entry`
/// events (each new entry, as JSON). `?only=entries` sends just the entries: what
/// neighbours follow.
async fn events(
    State(app): State<AppState>,
    Query(q): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let permit = app.streams.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            format!(
                "{} event streams are open already; try again later",
                app.options.max_event_streams
            ),
        )
    })?;
    let node = app.node.clone();
    let entries = BroadcastStream::new(node.store().subscribe())
        .filter_map(|batch| async move { batch.ok() })
        .flat_map(|batch| {
            stream::iter(
                batch
                    .iter()
                    .map(|e| Ok(Event::default().event("entry").data(e.to_json())))
                    .collect::<Vec<_>>(),
            )
        });
    let only_entries = q.only.as_deref() == Some("entries");
    let rest = if only_entries {
        stream::empty().boxed()
    } else {
        let node_events =
            BroadcastStream::new(node.subscribe_events()).filter_map(|e| async move {
                e.ok().map(|e| {
                    Ok(Event::default()
                        .event("event")
                        .data(serde_json::to_string(&e).expect("events serialize")))
                })
            });
        stream::select(
            status_stream(node.clone(), app.options.sse_status_interval),
            node_events,
        )
        .boxed()
    };
    let shutdown = node.shutdown_token();
    // The permit lives as long as the stream.
    let all = stream::select(entries, rest)
        .take_until(shutdown.cancelled_owned())
        .map(move |e| {
            let _held = &permit;
            e
        });
    Ok(Sse::new(all).keep_alive(KeepAlive::new().interval(app.options.sse_keepalive)))
}

/// The current status at once, then at most one snapshot per `interval`.
fn status_stream(
    node: NodeHandle,
    interval: Duration,
) -> impl Stream<Item = Result<Event, Infallible>> + Send {
    let rx = node.subscribe_status();
    stream::unfold((rx, true), move |(mut rx, first)| async move {
        if !first {
            tokio::time::sleep(interval).await;
            rx.changed().await.ok()?;
        }
        let status = rx.borrow_and_update().clone();
        let event = Event::default()
            .event("status")
            .data(serde_json::to_string(&status).expect("status serializes"));
        Some((Ok(event), (rx, false)))
    })
}

/// Serves `app` on `listener` until `shutdown`, then lets open requests finish (up to
/// a few seconds). Returns the address served.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    options: ServerOptions,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(options.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: say so, breathe, go on.
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(
                "refusing {peer}: {} connections already open",
                options.max_connections
            );
            drop(stream);
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("connection from {peer} ended: {e}");
            }
            drop(permit);
        });
    }
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(5)) => {
            tracing::warn!("some HTTP connections did not close within 5s of shutdown");
        }
    }
}

/// Binds `config.http_listen` and serves the node's API in the background. Returns the
/// bound address (useful with port 0) and the server task.
pub async fn spawn(
    node: NodeHandle,
    options: ServerOptions,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    check_listen_security(node.config()).map_err(std::io::Error::other)?;
    let addr = node.config().http_listen;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    let local = listener.local_addr()?;
    let app = router(node.clone(), &options);
    let task = tokio::spawn(serve(listener, app, options, node.shutdown_token()));
    Ok((local, task))
}

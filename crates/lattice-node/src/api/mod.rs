//! The HTTP API (axum) on real sockets: status, mode switch, entries, reconciliation,
//! Server-Sent Events and `/metrics`.
//!
//! Served with hyper directly rather than `axum::serve` so that slow clients cannot hold
//! the server (see `conn.rs`): HTTP/1.1 only, deadlines for silent, idle and dawdling
//! connections, caps per client address and in total with the oldest idle connection
//! making room, handler timeouts, body caps (a declared oversized body is refused before
//! it is sent). Errors are JSON `{ "error": kind, "message": ... }`, also those hyper
//! produces itself for requests it cannot parse (see `io.rs`).
//!
//! With `LATTICE_API_TOKEN` set, writes, reconciliation and every read that reveals entry
//! payloads (entries, the `entry` events of the event stream) need
//! `Authorization: Bearer <token>`; status, state and metrics stay open for monitoring.

mod conn;
pub mod dashboard;
mod io;
mod routes;
mod table;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_http::timeout::TimeoutLayer;

pub use conn::serve;

use crate::config::Config;
use crate::http::wire::paths;
use crate::node::{ErrorClass, NodeError, NodeHandle, OpError};
use routes::*;

/// Limits that keep the server responsive under bad clients. Tests shorten them.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Connections open at once. At the cap, the oldest connection not being served
    /// (silent, idle, sending its head or dripping its body) is closed for a new one;
    /// only when all are busy is the new one closed unanswered.
    pub max_connections: usize,
    /// Connections open at once from one client address, so that one client cannot take
    /// every slot; at this cap the address's own oldest idle connection makes room.
    /// Behind a reverse proxy every client shares the proxy's address: raise it there.
    pub max_connections_per_ip: usize,
    /// A request's head must arrive within this time of its first byte, and a new
    /// connection must send its first request within this time of being accepted.
    pub header_read_timeout: Duration,
    /// A kept-alive connection idle for this long is closed. It must stay longer than
    /// the idle time after which clients drop pooled connections (the neighbour client
    /// closes them sooner), or a client reusing one races the close and its request
    /// fails: hence at least 10 s by default.
    pub idle_timeout: Duration,
    /// A client that takes none of an answer (or event stream) for this long, its
    /// receive window full, is cut off: otherwise not reading holds a slot forever.
    pub send_stall_timeout: Duration,
    /// Largest request head (request line and headers), in bytes (at least 8 KiB):
    /// hyper's read buffer, so a head is refused (431) once this much is buffered without
    /// its end; one that arrives in a single burst may pass at up to about twice this.
    pub max_header_bytes: usize,
    /// Most request headers.
    pub max_headers: usize,
    /// A handler (not an event stream) must answer within this time. It covers reading
    /// the request body too, so a body dripped slowly holds its slot no longer than this
    /// (and may be evicted sooner when slots run out).
    pub request_timeout: Duration,
    /// Largest request body. A larger declared `Content-Length` is refused with 413
    /// before any of the body is read.
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
            max_connections_per_ip: 128,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(15),
            send_stall_timeout: Duration::from_secs(30),
            max_header_bytes: 64 * 1024,
            max_headers: 100,
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

/// An HTTP answer that failed: the one error shape of every face ([`OpError`]: `{"error",
/// "message", "allowed"}`) under the status code its class calls for.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    error: OpError,
}

impl ApiError {
    fn new(status: StatusCode, kind: &str, message: impl Into<String>) -> Self {
        let class = match status {
            StatusCode::BAD_REQUEST => ErrorClass::BadRequest,
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => ErrorClass::NotFound,
            StatusCode::UNPROCESSABLE_ENTITY | StatusCode::PAYLOAD_TOO_LARGE => {
                ErrorClass::Unprocessable
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ErrorClass::Forbidden,
            StatusCode::TOO_MANY_REQUESTS => ErrorClass::RateLimited,
            StatusCode::SERVICE_UNAVAILABLE => ErrorClass::Unavailable,
            StatusCode::BAD_GATEWAY => ErrorClass::BadGateway,
            _ => ErrorClass::Internal,
        };
        Self {
            status,
            error: OpError::new(class, kind, message),
        }
    }
    fn bad_request(kind: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, kind, message)
    }
}

impl From<OpError> for ApiError {
    fn from(error: OpError) -> Self {
        let status = match error.class {
            ErrorClass::BadRequest => StatusCode::BAD_REQUEST,
            ErrorClass::NotFound => StatusCode::NOT_FOUND,
            ErrorClass::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorClass::Forbidden => StatusCode::FORBIDDEN,
            ErrorClass::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorClass::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorClass::BadGateway => StatusCode::BAD_GATEWAY,
            ErrorClass::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self { status, error }
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        OpError::from(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = self.error.retry_after_s;
        let mut response = (self.status, axum::Json(self.error)).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        response
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

/// The whole API for `node`. The router holds a detached handle: a server does not keep
/// the node alive after its owner dropped every handle (the node then stops the server).
pub fn router(node: NodeHandle, options: &ServerOptions) -> Router {
    let node = node.detached();
    let guarded = Router::new()
        .route("/api/lattice/sync/switch", post(switch))
        .route("/api/lattice/entries", post(put_entry))
        .route("/api/lattice/p2p/block", post(block_p2p))
        .route("/api/lattice/p2p/unblock", post(unblock_p2p))
        .route(&format!("/{}", paths::CHILDREN), post(children))
        .route(&format!("/{}", paths::IDS), post(ids))
        .route(&format!("/{}", paths::FETCH), post(fetch))
        .route(&format!("/{}", paths::PUSH), post(push))
        .route(&format!("/{}", paths::HELLO), post(hello))
        .route(&format!("/{}", paths::SKETCH), post(sketch))
        .route(&format!("/{}", paths::FETCH_SHORT), post(fetch_short))
        // Reads that reveal entry payloads need the token as writes do.
        .route("/api/lattice/entries", get(list_entries))
        .route("/api/lattice/entries/{id}", get(get_entry))
        .route("/api/lattice/members", get(members))
        .route("/api/lattice/peers", get(peers))
        .route("/api/lattice/peers/{peer}/{decision}", post(decide_peer))
        .route_layer(middleware::from_fn_with_state(node.clone(), require_token));
    let quick = Router::new()
        .route("/api/lattice/p2p/status", get(status))
        .route(&format!("/{}", paths::STATE), get(state))
        .route(&format!("/{}", paths::GENESIS), get(genesis))
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
        None if dashboard::embedded() => router.fallback(dashboard::serve),
        None => router.fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint (this binary was built without the dashboard and no LATTICE_UI_DIR is set)",
            )
        }),
    };
    router
        .layer(DefaultBodyLimit::max(options.max_body))
        .layer(middleware::from_fn_with_state(
            options.max_body,
            refuse_declared_oversize,
        ))
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

/// A dashboard folder to serve instead of the one built into the binary: `LATTICE_UI_DIR`
/// (for development: the folder is read on every request). Without it, a binary built
/// with the dashboard serves its own copy; one built without looks beside itself
/// (`../share/lattice/ui` as packaged, or the repository's `ui/dist`), then `./ui/dist`.
pub fn find_ui_dir() -> Option<std::path::PathBuf> {
    use std::path::PathBuf;
    let has_index = |p: &PathBuf| p.join("index.html").is_file();
    if let Some(dir) = std::env::var_os("LATTICE_UI_DIR").map(PathBuf::from) {
        if has_index(&dir) {
            return Some(dir);
        }
        tracing::warn!(
            "LATTICE_UI_DIR={} holds no index.html; ignoring it",
            dir.display()
        );
    }
    if dashboard::embedded() {
        return None;
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

/// Whether `headers` carry the node's token, or the node needs none. The scheme is
/// case-insensitive (RFC 7235); the token is not.
fn authorized(node: &NodeHandle, headers: &HeaderMap) -> bool {
    let Some(token) = &node.config().api_token else {
        return true;
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map_or("", |(_, t)| t.trim_start_matches(' '));
    same_token(given.as_bytes(), token.expose().as_bytes())
}

fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "this endpoint needs Authorization: Bearer <LATTICE_API_TOKEN>",
    )
}

async fn require_token(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    if !authorized(&node, &headers) {
        return unauthorized().into_response();
    }
    next.run(request).await
}

/// A body declared larger than the cap is refused before any of it is read, so hyper
/// sends no `100 Continue` and the client learns at once.
async fn refuse_declared_oversize(
    State(max_body): State<usize>,
    request: Request,
    next: Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(len) = declared
        && len > max_body as u64
    {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body declares {len} bytes; at most {max_body} are accepted"),
        )
        .into_response();
    }
    next.run(request).await
}

/// Binds `config.http_listen` (refusing a non-loopback address without a token). Bind
/// before starting the node, so a neighbour started at the same moment finds the port
/// open (its connection waits in the backlog) instead of refused.
pub async fn bind(config: &Config) -> std::io::Result<TcpListener> {
    check_listen_security(config).map_err(std::io::Error::other)?;
    let addr = config.http_listen;
    TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

/// Serves the node's API on `listener` in the background. Returns the bound address
/// (useful with port 0) and the server task.
pub fn spawn_on(
    listener: TcpListener,
    node: NodeHandle,
    options: ServerOptions,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let local = listener.local_addr()?;
    let app = router(node.clone(), &options);
    let task = tokio::spawn(serve(listener, app, options, node.shutdown_token()));
    Ok((local, task))
}

/// Binds `config.http_listen` and serves the node's API in the background (for a node
/// already started; see [`bind`] for the better order).
pub async fn spawn(
    node: NodeHandle,
    options: ServerOptions,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = bind(node.config()).await?;
    spawn_on(listener, node, options)
}

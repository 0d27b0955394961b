//! The hardened neighbour client.
//!
//! Neighbours are other Lattice nodes' HTTP APIs, and any of them may be broken or hostile:
//! it may answer HTML, an error page, a redirect or a body of any size, stall forever or drop
//! the connection. Every one of those cases ends here as a typed [`ClientError`], within the
//! configured time, and without reading more than the configured number of bytes.
//!
//! Paths are joined to the neighbour's base URL; a leading `/` is ignored, so
//! `"api/lattice/state"` and `"/api/lattice/state"` both mean `<base>api/lattice/state`.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use reqwest::header::{
    ACCEPT, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, ETAG, HeaderMap, HeaderValue,
    IF_NONE_MATCH,
};
use reqwest::{Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::{Instant, timeout, timeout_at};
use url::Url;

use crate::config::Secret;

const USER_AGENT: &str = concat!("lattice/", env!("CARGO_PKG_VERSION"));

/// How much of a non-2xx body we read to explain it: room for our own JSON error, no more.
const ERROR_BODY_CAP: usize = 2048;

/// How many characters of a foreign error body go into [`ClientError::Status`]'s message.
const SNIPPET_CHARS: usize = 200;

/// Room on one SSE line beyond `max_event` for the field name, colon and space.
const SSE_LINE_SLACK: usize = 64;

/// Largest buffer reserved up front from a declared `Content-Length`: a hostile neighbour
/// may declare a length it never sends, so memory grows with bytes actually received.
const MAX_PREALLOC: usize = 64 * 1024;

/// Bounds on every exchange with one neighbour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientLimits {
    /// Time allowed to open the TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Time allowed for a whole request: connect, send, headers and the full body.
    pub request_timeout: Duration,
    /// Largest response body accepted, in bytes.
    pub max_body: usize,
    /// Largest data of one Server-Sent Event accepted, in bytes.
    pub max_event: usize,
    /// How long an idle keep-alive connection stays in the pool. It must be shorter than
    /// the server's own idle and header-read timeouts (ours: at least 10 s), or the
    /// client reuses a connection at the instant the server closes it.
    pub pool_idle_timeout: Duration,
}

impl Default for ClientLimits {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            max_body: 8 * 1024 * 1024,
            max_event: 1024 * 1024,
            pool_idle_timeout: Duration::from_secs(4),
        }
    }
}

/// Why an exchange with a neighbour failed. [`ClientError::kind`] names the case stably.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The connection could not be made (refused, DNS, TLS) or the request could not be built.
    #[error("could not connect to neighbour: {0}")]
    Connect(String),
    /// The connect timeout or the total request timeout passed, or a stream went idle.
    #[error("neighbour did not answer in time")]
    Timeout,
    /// A non-2xx, non-3xx status. `kind` and `message` come from our own JSON error body
    /// (`{"error": kind, "message": ...}`) when the neighbour sent one, else `message` is a
    /// short snippet of whatever it sent.
    #[error("neighbour answered HTTP {status}{}: {message}", kind_suffix(.kind))]
    Status {
        status: u16,
        kind: Option<String>,
        message: String,
    },
    /// A 2xx answer whose content type is not `application/json`.
    #[error("neighbour answered {content_type}, not JSON")]
    NotJson { content_type: String },
    /// The body (or one event) is larger than the configured cap.
    #[error("neighbour sent more than the {limit}-byte limit")]
    TooLarge { limit: usize },
    /// Any 3xx: redirects are never followed, a neighbour's address is configured.
    #[error("neighbour redirected to {location:?}; redirects are not followed")]
    Redirect { location: String },
    /// The answer could not be turned into the expected value; the text says why.
    #[error("{0}")]
    Decode(String),
    /// The connection failed after the exchange started (reset, closed mid-body).
    #[error("connection to neighbour broke: {0}")]
    Io(String),
}

fn kind_suffix(kind: &Option<String>) -> String {
    kind.as_deref()
        .map(|k| format!(" ({k})"))
        .unwrap_or_default()
}

impl ClientError {
    /// Every name [`kind`](Self::kind) can return.
    pub const KINDS: &[&str] = &[
        "connect",
        "timeout",
        "status",
        "not_json",
        "too_large",
        "redirect",
        "decode",
        "io",
    ];

    /// A stable snake_case name for the case, for logs, metrics and the UI.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Connect(_) => "connect",
            Self::Timeout => "timeout",
            Self::Status { .. } => "status",
            Self::NotJson { .. } => "not_json",
            Self::TooLarge { .. } => "too_large",
            Self::Redirect { .. } => "redirect",
            Self::Decode(_) => "decode",
            Self::Io(_) => "io",
        }
    }

    fn from_reqwest(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            return Self::Timeout;
        }
        let cause = root_cause(&e);
        if e.is_connect() {
            match e.url() {
                Some(url) => Self::Connect(format!("{url}: {cause}")),
                None => Self::Connect(cause),
            }
        } else if e.is_builder() {
            Self::Connect(format!("invalid request: {cause}"))
        } else {
            Self::Io(cause)
        }
    }
}

/// The innermost error's text: reqwest's outer layers only say "error sending request".
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Whether `e` is a connection that broke after the request went out and before any
/// answer: closed ("connection closed before message completed"), reset or aborted.
/// Never a refused connect or a timeout, which a second try would only repeat.
fn connection_broke(e: &reqwest::Error) -> bool {
    if e.is_timeout() || e.is_connect() || e.is_builder() || !e.is_request() {
        return false;
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err
            .downcast_ref::<hyper::Error>()
            .is_some_and(|h| h.is_incomplete_message() || h.is_canceled())
        {
            return true;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            return matches!(
                io.kind(),
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
            );
        }
        cur = err.source();
    }
    false
}

/// A JSON answer's bytes, read within the caps.
struct Answer {
    bytes: Vec<u8>,
    etag: Option<HeaderValue>,
    not_modified: bool,
}

impl Answer {
    /// The body of an answer to a request that was not conditional, where `304` is wrong.
    fn unconditional(self) -> Result<Vec<u8>, ClientError> {
        if self.not_modified {
            return Err(not_conditional());
        }
        Ok(self.bytes)
    }
}

fn not_conditional() -> ClientError {
    ClientError::Decode(
        "neighbour answered 304 Not Modified to a request that was not conditional".into(),
    )
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ClientError> {
    serde_json::from_slice(body).map_err(|e| {
        ClientError::Decode(format!(
            "neighbour's JSON does not have the expected shape: {e}"
        ))
    })
}

/// Installs ring as rustls' process-wide provider. reqwest is built with
/// `rustls-no-provider` (no aws-lc-sys) and panics at `build()` without one; if another
/// part of the process installed a provider first, that one is kept.
fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// One neighbour. Cheap to clone: clones share the connection pool and the byte counters.
#[derive(Clone)]
pub struct NeighborClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    /// `Bearer <token>`, marked sensitive so it never shows in debug output.
    auth: Option<HeaderValue>,
    limits: ClientLimits,
    sent: AtomicU64,
    received: AtomicU64,
    /// The last answer to [`NeighborClient::get_json_revalidated`] that carried an `ETag`.
    cached: Mutex<Option<Cached>>,
}

/// A body kept for revalidation: sent again as `If-None-Match`, reused on `304`.
struct Cached {
    url: Url,
    etag: HeaderValue,
    body: Vec<u8>,
}

/// An answer to a conditional GET.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revalidated<T> {
    pub value: T,
    /// The neighbour answered `304 Not Modified`: `value` is the last answer, decoded again.
    pub not_modified: bool,
}

impl fmt::Debug for NeighborClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NeighborClient")
            .field("base", &self.inner.base.as_str())
            .field("token", &self.inner.auth.as_ref().map(|_| "<redacted>"))
            .field("limits", &self.inner.limits)
            .finish()
    }
}

impl NeighborClient {
    /// A client for the neighbour at `base` (http or https). A base without a trailing `/`
    /// gets one, so joined paths land under it rather than replacing its last segment.
    pub fn new(
        mut base: Url,
        token: Option<Secret>,
        limits: ClientLimits,
    ) -> Result<Self, ClientError> {
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(ClientError::Connect(format!(
                "{base} is not an http(s) base URL"
            )));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        base.set_query(None);
        base.set_fragment(None);

        let auth = token
            .map(|t| {
                let mut value =
                    HeaderValue::try_from(format!("Bearer {}", t.expose())).map_err(|_| {
                        ClientError::Connect(
                            "the API token has characters not allowed in an HTTP header".into(),
                        )
                    })?;
                value.set_sensitive(true);
                Ok(value)
            })
            .transpose()?;

        install_crypto_provider();
        let http = reqwest::Client::builder()
            .tls_backend_rustls()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(limits.connect_timeout)
            .pool_idle_timeout(limits.pool_idle_timeout)
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| {
                ClientError::Connect(format!(
                    "could not set up the HTTP client: {}",
                    root_cause(&e)
                ))
            })?;

        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base,
                auth,
                limits,
                sent: AtomicU64::new(0),
                received: AtomicU64::new(0),
                cached: Mutex::new(None),
            }),
        })
    }

    /// The neighbour's base URL, always ending with `/`.
    pub fn base(&self) -> &Url {
        &self.inner.base
    }

    /// GET `base.join(path)` with `query` pairs appended; the JSON answer decoded into `T`.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ClientError> {
        let url = self.url(path, query)?;
        let answer = self.exchange(self.inner.http.get(url), 0, true).await?;
        decode(&answer.unconditional()?)
    }

    /// GET `base.join(path)` conditionally: the `ETag` of the last answer (kept as an opaque
    /// string) goes out as `If-None-Match`, and `304 Not Modified` reuses that answer. A
    /// neighbour on standby is checked often; unchanged, it costs a few header bytes.
    pub async fn get_json_revalidated<T: DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Revalidated<T>, ClientError> {
        let url = self.url(path, &[])?;
        let etag = self
            .cache()
            .as_ref()
            .filter(|c| c.url == url)
            .map(|c| c.etag.clone());
        let mut req = self.inner.http.get(url.clone());
        if let Some(etag) = &etag {
            req = req.header(IF_NONE_MATCH, etag.clone());
        }
        let answer = self.exchange(req, 0, true).await?;
        if answer.not_modified {
            let cache = self.cache();
            let Some(cached) = cache.as_ref().filter(|c| etag.is_some() && c.url == url) else {
                return Err(not_conditional());
            };
            return Ok(Revalidated {
                value: decode(&cached.body)?,
                not_modified: true,
            });
        }
        let value = decode(&answer.bytes)?;
        *self.cache() = answer.etag.map(|etag| Cached {
            url,
            etag,
            body: answer.bytes,
        });
        Ok(Revalidated {
            value,
            not_modified: false,
        })
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Option<Cached>> {
        // The slot holds plain data: a panic elsewhere cannot leave it half-written.
        self.inner
            .cached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// POST `body` as JSON to `base.join(path)`; the JSON answer decoded into `T`. Not
    /// retried: the request may have taken effect before the connection broke.
    pub async fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.post(path, body, false).await
    }

    /// Like [`post_json`](Self::post_json), for a request the neighbour may safely see
    /// twice (a read, or a push of content-addressed entries): retried once if a reused
    /// connection broke under it.
    pub async fn post_json_idempotent<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.post(path, body, true).await
    }

    async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        idempotent: bool,
    ) -> Result<T, ClientError> {
        let url = self.url(path, &[])?;
        let body = serde_json::to_vec(body).map_err(|e| {
            ClientError::Decode(format!("could not encode the request body as JSON: {e}"))
        })?;
        let len = body.len() as u64;
        let req = self
            .inner
            .http
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        let answer = self.exchange(req, len, idempotent).await?;
        decode(&answer.unconditional()?)
    }

    /// Request body bytes of requests the neighbour answered, across all clones.
    pub fn bytes_sent(&self) -> u64 {
        self.inner.sent.load(Ordering::Relaxed)
    }

    /// Response body bytes accepted, across all clones. Bytes past a cap are not counted,
    /// so the figure is the same for the same exchanges however the network splits them.
    pub fn bytes_received(&self) -> u64 {
        self.inner.received.load(Ordering::Relaxed)
    }

    /// Opens a Server-Sent Events stream at `base.join(path)`.
    ///
    /// Opening (connect, request, response headers) is bounded by `request_timeout`; after
    /// that the stream may live forever, but ends with [`ClientError::Timeout`] once no byte
    /// at all (not even a keep-alive comment) has arrived for `idle`.
    pub async fn events(&self, path: &str, idle: Duration) -> Result<EventStream, ClientError> {
        let url = self.url(path, &[])?;
        let req = self
            .authorize(self.inner.http.get(url))
            .header(ACCEPT, "text/event-stream")
            .header(CACHE_CONTROL, "no-cache");
        let deadline = Instant::now() + self.inner.limits.request_timeout;
        let mut resp = timeout_at(deadline, req.send())
            .await
            .map_err(|_| ClientError::Timeout)?
            .map_err(ClientError::from_reqwest)?;
        self.reject_unsuccessful(&mut resp, deadline).await?;
        let content_type = content_type(resp.headers());
        if !media_type_is(&content_type, "text/event-stream") {
            return Err(ClientError::Decode(format!(
                "neighbour answered {content_type}, not an event stream"
            )));
        }
        Ok(EventStream {
            resp: Some(resp),
            parser: SseParser::new(self.inner.limits.max_event),
            ready: VecDeque::new(),
            failed: None,
            idle,
            client: Arc::clone(&self.inner),
        })
    }

    fn url(&self, path: &str, query: &[(&str, String)]) -> Result<Url, ClientError> {
        let base = &self.inner.base;
        let mut url = base
            .join(path.trim_start_matches('/'))
            .map_err(|e| ClientError::Connect(format!("cannot join {path:?} to {base}: {e}")))?;
        if url.origin() != base.origin() || !url.path().starts_with(base.path()) {
            return Err(ClientError::Connect(format!(
                "path {path:?} leads outside the neighbour's base URL {base}"
            )));
        }
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        Ok(url)
    }

    fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.inner.auth {
            Some(auth) => req.header(reqwest::header::AUTHORIZATION, auth.clone()),
            None => req,
        }
    }

    /// Sends a request and reads the JSON answer, all before one deadline, so a neighbour
    /// that sends headers and then stalls the body times out too. `304 Not Modified`
    /// comes back as such (no body); any other non-2xx is an error.
    async fn exchange(
        &self,
        req: reqwest::RequestBuilder,
        body_len: u64,
        idempotent: bool,
    ) -> Result<Answer, ClientError> {
        let limits = &self.inner.limits;
        let deadline = Instant::now() + limits.request_timeout;
        let req = self.authorize(req).header(ACCEPT, "application/json");
        let mut resp = self.send(req, deadline, idempotent).await?;
        self.inner.sent.fetch_add(body_len, Ordering::Relaxed);
        if resp.status() == StatusCode::NOT_MODIFIED {
            return Ok(Answer {
                bytes: Vec::new(),
                etag: None,
                not_modified: true,
            });
        }
        self.reject_unsuccessful(&mut resp, deadline).await?;

        let content_type = content_type(resp.headers());
        if !media_type_is(&content_type, "application/json") {
            return Err(ClientError::NotJson { content_type });
        }
        let too_large = ClientError::TooLarge {
            limit: limits.max_body,
        };
        let declared = declared_length(resp.headers());
        if declared.is_some_and(|n| n > limits.max_body as u64) {
            return Err(too_large);
        }
        let etag = resp.headers().get(ETAG).cloned();
        let read = read_capped(&mut resp, limits.max_body, declared, &self.inner.received);
        let (bytes, overflowed) = timeout_at(deadline, read)
            .await
            .map_err(|_| ClientError::Timeout)??;
        if overflowed {
            return Err(too_large);
        }
        Ok(Answer {
            bytes,
            etag,
            not_modified: false,
        })
    }

    /// Sends `req` before `deadline`. An idempotent request whose connection broke before
    /// any answer (a pooled keep-alive connection the server closed as we reused it) is
    /// sent once more, on another connection; nothing is retried twice.
    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        deadline: Instant,
        idempotent: bool,
    ) -> Result<Response, ClientError> {
        let again = if idempotent { req.try_clone() } else { None };
        let first = timeout_at(deadline, req.send())
            .await
            .map_err(|_| ClientError::Timeout)?;
        let err = match (first, again) {
            (Ok(resp), _) => return Ok(resp),
            (Err(e), Some(again)) if connection_broke(&e) => {
                tracing::debug!(
                    "{}: connection broke before an answer ({}); sending once more",
                    self.inner.base,
                    root_cause(&e)
                );
                match timeout_at(deadline, again.send()).await {
                    Err(_) => return Err(ClientError::Timeout),
                    Ok(Ok(resp)) => return Ok(resp),
                    Ok(Err(e)) => e,
                }
            }
            (Err(e), _) => e,
        };
        Err(ClientError::from_reqwest(err))
    }

    /// Turns a 3xx into [`ClientError::Redirect`] and any other non-2xx into
    /// [`ClientError::Status`], reading at most [`ERROR_BODY_CAP`] bytes to explain it.
    async fn reject_unsuccessful(
        &self,
        resp: &mut Response,
        deadline: Instant,
    ) -> Result<(), ClientError> {
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        if status.is_redirection() {
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_else(|| "(no location)".into());
            return Err(ClientError::Redirect { location });
        }
        // The status alone is the answer; a stalled or broken error body only loses detail.
        let read = read_capped(resp, ERROR_BODY_CAP, None, &self.inner.received);
        let body = match timeout_at(deadline, read).await {
            Ok(Ok((body, _))) => body,
            _ => Vec::new(),
        };
        let (kind, message) = explain(status, &body);
        Err(ClientError::Status {
            status: status.as_u16(),
            kind,
            message,
        })
    }
}

/// Reads the body until its end or until `cap` bytes, whichever comes first. Returns the
/// bytes and whether more were on offer; never keeps or counts a byte past the cap.
async fn read_capped(
    resp: &mut Response,
    cap: usize,
    declared: Option<u64>,
    counter: &AtomicU64,
) -> Result<(Vec<u8>, bool), ClientError> {
    let reserve = declared.map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX));
    let mut buf = Vec::with_capacity(reserve.min(cap).min(MAX_PREALLOC));
    while let Some(chunk) = resp.chunk().await.map_err(ClientError::from_reqwest)? {
        let room = cap - buf.len();
        if chunk.len() > room {
            buf.extend_from_slice(&chunk[..room]);
            counter.fetch_add(room as u64, Ordering::Relaxed);
            return Ok((buf, true));
        }
        buf.extend_from_slice(&chunk);
        counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
    }
    Ok((buf, false))
}

/// `kind` and `message` for a failed status: ours if the body is our JSON error, else a
/// one-line snippet of the body, else the status' reason phrase.
fn explain(status: StatusCode, body: &[u8]) -> (Option<String>, String) {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(ours) = serde_json::from_slice::<ErrorBody>(body) {
        return (Some(ours.error), ours.message);
    }
    let text = String::from_utf8_lossy(body);
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut snippet: String = words.join(" ").chars().take(SNIPPET_CHARS).collect();
    if snippet.is_empty() {
        snippet = status
            .canonical_reason()
            .unwrap_or("no reason given")
            .into();
    } else if body.len() > snippet.len() && snippet.chars().count() == SNIPPET_CHARS {
        snippet.push('…');
    }
    (None, snippet)
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "no content type".into())
}

/// Whether `content_type` is `expected`, ignoring parameters (`; charset=utf-8`) and case.
fn media_type_is(content_type: &str, expected: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|media| media.trim().eq_ignore_ascii_case(expected))
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// One Server-Sent Event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, or `"message"` when the event had none.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The stream's last event id (`id:` persists across events, as in the SSE spec);
    /// `None` until one is set, or after an empty `id:` resets it.
    pub id: Option<String>,
}

/// A live Server-Sent Events stream from a neighbour.
pub struct EventStream {
    /// `None` once the stream has ended, which also releases the connection.
    resp: Option<Response>,
    parser: SseParser,
    ready: VecDeque<SseEvent>,
    /// An error found after some complete events in the same chunk: given after them.
    failed: Option<ClientError>,
    idle: Duration,
    client: Arc<Inner>,
}

impl fmt::Debug for EventStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream")
            .field("open", &self.resp.is_some())
            .field("ready", &self.ready.len())
            .field("idle", &self.idle)
            .finish()
    }
}

impl EventStream {
    /// The next event; an error ends the stream; `None` once it ended cleanly (an
    /// unterminated last event is dropped, as the SSE spec says).
    pub async fn next(&mut self) -> Option<Result<SseEvent, ClientError>> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(Ok(event));
            }
            if let Some(err) = self.failed.take() {
                return Some(Err(err));
            }
            let resp = self.resp.as_mut()?;
            let chunk = match timeout(self.idle, resp.chunk()).await {
                Err(_) => Err(ClientError::Timeout),
                Ok(Err(e)) => Err(ClientError::from_reqwest(e)),
                Ok(Ok(chunk)) => Ok(chunk),
            };
            match chunk {
                Err(err) => {
                    self.resp = None;
                    return Some(Err(err));
                }
                Ok(None) => self.resp = None,
                Ok(Some(chunk)) => {
                    let consumed = match self.parser.feed(&chunk, &mut self.ready) {
                        Ok(()) => chunk.len(),
                        Err(consumed) => {
                            self.resp = None;
                            self.failed = Some(ClientError::TooLarge {
                                limit: self.parser.max_data,
                            });
                            consumed
                        }
                    };
                    self.client
                        .received
                        .fetch_add(consumed as u64, Ordering::Relaxed);
                }
            }
        }
    }
}

/// The SSE wire format, incrementally: bytes in, complete events out. No I/O.
struct SseParser {
    max_data: usize,
    max_line: usize,
    /// The current, unterminated line.
    line: Vec<u8>,
    /// The previous chunk ended in CR, so a leading LF finishes that same line ending.
    after_cr: bool,
    first_line: bool,
    event: String,
    data: String,
    last_id: Option<String>,
}

impl SseParser {
    fn new(max_data: usize) -> Self {
        Self {
            max_data,
            max_line: max_data.saturating_add(SSE_LINE_SLACK),
            line: Vec::new(),
            after_cr: false,
            first_line: true,
            event: String::new(),
            data: String::new(),
            last_id: None,
        }
    }

    /// Parses `input`, appending completed events to `out`. On a line or event over the
    /// cap, returns how many bytes of `input` were consumed up to and including the
    /// offending one; the parser is then unusable.
    fn feed(&mut self, input: &[u8], out: &mut VecDeque<SseEvent>) -> Result<(), usize> {
        let mut rest = input;
        while let Some(&first) = rest.first() {
            if std::mem::take(&mut self.after_cr) && first == b'\n' {
                rest = &rest[1..];
                continue;
            }
            let end = rest.iter().position(|&b| b == b'\n' || b == b'\r');
            let take = end.unwrap_or(rest.len());
            if self.line.len() + take > self.max_line {
                let consumed = input.len() - rest.len() + (self.max_line - self.line.len()) + 1;
                return Err(consumed);
            }
            self.line.extend_from_slice(&rest[..take]);
            let Some(end) = end else { break };
            self.after_cr = rest[end] == b'\r';
            rest = &rest[end + 1..];
            let line = std::mem::take(&mut self.line);
            let ok = self.line_done(&line, out);
            self.line = line;
            self.line.clear();
            if !ok {
                return Err(input.len() - rest.len());
            }
        }
        Ok(())
    }

    /// Applies one complete line; false if it makes the event's data exceed the cap.
    fn line_done(&mut self, mut line: &[u8], out: &mut VecDeque<SseEvent>) -> bool {
        if std::mem::take(&mut self.first_line) {
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        if line.is_empty() {
            self.dispatch(out);
            return true;
        }
        if line[0] == b':' {
            return true;
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"event" => self.event = String::from_utf8_lossy(value).into_owned(),
            b"data" => {
                let value = String::from_utf8_lossy(value);
                if self.data.len() + value.len() > self.max_data {
                    return false;
                }
                self.data.push_str(&value);
                self.data.push('\n');
            }
            b"id" if !value.contains(&0) => {
                self.last_id = (!value.is_empty()).then(|| String::from_utf8_lossy(value).into());
            }
            _ => {} // `retry` and unknown fields: nothing we act on
        }
        true
    }

    fn dispatch(&mut self, out: &mut VecDeque<SseEvent>) {
        let event = std::mem::take(&mut self.event);
        if self.data.is_empty() {
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop();
        out.push_back(SseEvent {
            event: if event.is_empty() {
                "message".into()
            } else {
                event
            },
            data,
            id: self.last_id.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
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
        let mut server =
            raw_server(response("200 OK", "application/json", "[]"), Then::Close).await;
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

    fn parse_in_pieces(input: &[u8], cuts: &[usize]) -> Result<Vec<SseEvent>, usize> {
        let mut parser = SseParser::new(1024);
        let mut out = VecDeque::new();
        let mut start = 0;
        let mut consumed = 0;
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        cuts.sort_unstable();
        cuts.push(input.len());
        for cut in cuts {
            let piece = &input[start..cut];
            parser.feed(piece, &mut out).map_err(|at| consumed + at)?;
            consumed += piece.len();
            start = cut;
        }
        Ok(out.into())
    }

    #[test]
    fn sse_line_endings_bom_id_reset_and_empty_data_follow_the_spec() {
        let input =
            b"\xEF\xBB\xBFdata: a\r\rdata\rid\r\n\r\nevent: x\n\nid: 9\nretry: 5\ndata:  b\n\n";
        let events = parse_in_pieces(input, &[]).unwrap();
        assert_eq!(
            events,
            [
                event("message", "a", None),
                event("message", "", None),
                event("message", " b", Some("9")),
            ]
        );
    }

    #[test]
    fn sse_overlong_line_is_rejected_at_a_fixed_byte() {
        let mut input = b": ".to_vec();
        input.extend(std::iter::repeat_n(b'c', 5000));
        let limit = 1024 + SSE_LINE_SLACK;
        assert_eq!(parse_in_pieces(&input, &[]), Err(limit + 1));
        assert_eq!(parse_in_pieces(&input, &[7, 900, 1100]), Err(limit + 1));
    }

    proptest::proptest! {
        // Failures are reported, not saved: this module writes no files beside itself.
        #![proptest_config(proptest::test_runner::Config {
            failure_persistence: None,
            ..Default::default()
        })]

        #[test]
        fn sse_parsing_does_not_depend_on_chunk_boundaries(
            cuts in proptest::collection::vec(0usize..200, 0..12)
        ) {
            let input = b": c\r\nevent: a\r\ndata: 1\r\ndata: 2\r\n\r\nid: z\ndata: \xC3\xA9\n\n\
                          data: x\r\rdata: y\n\n";
            let whole = parse_in_pieces(input, &[]).unwrap();
            proptest::prop_assert_eq!(whole.len(), 4);
            proptest::prop_assert_eq!(&whole[1].data, "é");
            proptest::prop_assert_eq!((&whole[2].data[..], &whole[3].data[..]), ("x", "y"));
            proptest::prop_assert_eq!(parse_in_pieces(input, &cuts).unwrap(), whole);
        }
    }
}

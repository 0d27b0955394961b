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
pub use crate::http::sse::SseEvent;
use crate::http::sse::SseParser;

const USER_AGENT: &str = concat!("lattice/", env!("CARGO_PKG_VERSION"));

/// How much of a non-2xx body we read to explain it: room for our own JSON error, no more.
const ERROR_BODY_CAP: usize = 2048;

/// How many characters of a foreign error body go into [`ClientError::Status`]'s message.
const SNIPPET_CHARS: usize = 200;

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
        let answer = self
            .exchange(self.inner.http.get(url), 0, true, JSON)
            .await?;
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
        let answer = self.exchange(req, 0, true, JSON).await?;
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
        let answer = self.exchange(req, len, idempotent, JSON).await?;
        decode(&answer.unconditional()?)
    }

    /// POST a binary body (`application/octet-stream`, reconciliation v2) that the
    /// neighbour may safely see twice; the answer's body, which must be of type `accept`
    /// (binary, or JSON for entries).
    pub async fn post_bytes_idempotent(
        &self,
        path: &str,
        body: Vec<u8>,
        accept: &'static str,
    ) -> Result<Vec<u8>, ClientError> {
        let url = self.url(path, &[])?;
        let len = body.len() as u64;
        let req = self
            .inner
            .http
            .post(url)
            .header(CONTENT_TYPE, OCTET_STREAM)
            .body(body);
        self.exchange(req, len, true, accept).await?.unconditional()
    }

    /// [`post_bytes_idempotent`](Self::post_bytes_idempotent) with a JSON answer.
    pub async fn post_bytes_for_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Vec<u8>,
    ) -> Result<T, ClientError> {
        decode(&self.post_bytes_idempotent(path, body, JSON).await?)
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
        accept: &'static str,
    ) -> Result<Answer, ClientError> {
        let limits = &self.inner.limits;
        let deadline = Instant::now() + limits.request_timeout;
        let req = self.authorize(req).header(ACCEPT, accept);
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
        if !media_type_is(&content_type, accept) {
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
const JSON: &str = "application/json";
/// Reconciliation v2's binary messages.
pub const OCTET_STREAM: &str = "application/octet-stream";

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

#[cfg(test)]
mod tests;

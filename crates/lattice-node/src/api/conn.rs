//! Accepting and keeping connections, so that slow or silent clients cannot lock the
//! API out.
//!
//! Only HTTP/1.1 is served (the API needs nothing else, and an HTTP/2 preface is then
//! refused at once instead of held open). Every connection is in one phase:
//! - *idle*: just accepted, or between requests on a kept-alive connection. A new one
//!   must start its request within `header_read_timeout`; a kept-alive one is closed
//!   after `idle_timeout`.
//! - *head*: the first bytes of a request arrived; the rest of its head must follow
//!   within `header_read_timeout` of them.
//! - *body*: a handler is reading the request body; the handler's `request_timeout`
//!   bounds it.
//! - *active*: a handler is working or its answer is going out (event streams too).
//!   A client that takes none of the answer for `send_stall_timeout` (its receive
//!   window full) is cut off, and counts as not active meanwhile.
//!
//! Connections are capped per client address and in total. When a cap is reached, the
//! oldest connection that is not *active* (it waits, dawdles over its head or drips a
//! body: all things an attacker does cheaply) is closed to make room; only when every
//! connection is busy being served is the newcomer refused (closed unanswered, with a
//! rate-limited warning). A connection hyper ends lingers briefly (see `linger`) so
//! that an early answer such as a 413 reaches the client. hyper's own timers are not
//! used: its header timeout runs from the end of the previous answer, so it cannot tell
//! an idle kept-alive connection from a dawdling one.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::http::{Request, Response};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::ServerOptions;
use super::io::WatchedIo;
use super::table::{ConnShared, SharedTable, lock};
use crate::throttle::{LogThrottle, suppressed_note};

/// How long open requests may take to finish after shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The API for one connection: marks when requests start and answers finish.
#[derive(Clone)]
struct Tracked {
    app: Router,
    conn: Arc<ConnShared>,
    peer: SocketAddr,
}

/// The caller's address, in every request's extensions (what per-caller limits key on).
#[derive(Clone, Copy, Debug)]
pub struct RemoteAddr(pub SocketAddr);

impl hyper::service::Service<Request<Incoming>> for Tracked {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let has_body = !req.body().is_end_stream();
        self.conn.request_started(has_body);
        let answer = AnswerGuard(self.conn.clone());
        let body_conn = has_body.then(|| self.conn.clone());
        let mut req = req.map(|body| {
            Body::new(TrackedIncoming {
                inner: body,
                conn: body_conn,
            })
        });
        req.extensions_mut().insert(RemoteAddr(self.peer));
        let app = self.app.clone();
        Box::pin(async move {
            let response = app.oneshot(req).await?;
            Ok(response.map(|inner| TrackedBody {
                inner,
                _answer: answer,
            }))
        })
    }
}

/// Marks the answer finished when hyper drops its body (sent, or the connection died).
struct AnswerGuard(Arc<ConnShared>);

impl Drop for AnswerGuard {
    fn drop(&mut self) {
        self.0.answer_finished();
    }
}

/// An answer's body, carrying its guard.
struct TrackedBody {
    inner: Body,
    _answer: AnswerGuard,
}

impl HttpBody for TrackedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body that tells the connection when it has been read (or dropped).
struct TrackedIncoming {
    inner: Incoming,
    /// `Some` until the body is finished.
    conn: Option<Arc<ConnShared>>,
}

impl TrackedIncoming {
    fn finish(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.body_finished();
        }
    }
}

impl Drop for TrackedIncoming {
    fn drop(&mut self) {
        self.finish();
    }
}

impl HttpBody for TrackedIncoming {
    type Data = axum::body::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) || this.inner.is_end_stream() {
            this.finish();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `app` on `listener` until `shutdown`, then lets open requests finish (up to
/// a few seconds).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    options: ServerOptions,
    shutdown: CancellationToken,
) {
    let options = Arc::new(options);
    let table: SharedTable = Arc::default();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // Our own deadlines (see the module doc) replace hyper's header timer.
        .header_read_timeout(None)
        .max_headers(options.max_headers)
        .max_buf_size(options.max_header_bytes.max(MIN_HEADER_BYTES))
        .keep_alive(true);
    let mut tasks = JoinSet::new();
    let mut refused = LogThrottle::default();
    loop {
        while tasks.try_join_next().is_some() {}
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
        let admitted = lock(&table).admit(peer.ip(), Instant::now(), &options);
        let (id, conn) = match admitted {
            Ok(a) => a,
            Err(refusal) => {
                if let Some(held_back) = refused.allow(Instant::now()) {
                    tracing::warn!("refusing {peer}: {refusal}{}", suppressed_note(held_back));
                }
                drop(stream);
                continue;
            }
        };
        let connection = Connection {
            stream,
            peer,
            conn,
            app: app.clone(),
            options: options.clone(),
            builder: builder.clone(),
            shutdown: shutdown.clone(),
        };
        let table = table.clone();
        tasks.spawn(async move {
            connection.run().await;
            lock(&table).forget(id);
        });
    }
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "{} HTTP connections did not close within {SHUTDOWN_GRACE:?} of shutdown",
            tasks.len()
        );
        tasks.abort_all();
    }
}

/// hyper's smallest read buffer (`proto::h1::MINIMUM_MAX_BUFFER_SIZE`).
const MIN_HEADER_BYTES: usize = 8192;

/// One accepted connection and what it needs to be served.
struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    conn: Arc<ConnShared>,
    app: Router,
    options: Arc<ServerOptions>,
    builder: http1::Builder,
    shutdown: CancellationToken,
}

impl Connection {
    /// Serves the connection until it ends, is evicted or misses a deadline.
    async fn run(self) {
        let Connection {
            stream,
            peer,
            conn,
            app,
            options,
            builder,
            shutdown,
        } = self;
        let io = WatchedIo::new(
            stream,
            conn.clone(),
            options.max_headers,
            options.max_header_bytes.max(MIN_HEADER_BYTES),
        );
        let service = Tracked {
            app,
            conn: conn.clone(),
            peer,
        };
        let mut served = builder.serve_connection(TokioIo::new(io), service);
        let mut closing = false;
        // Each turn waits for one change; a connection's life is bounded by its
        // deadlines, so this ends.
        let ended = loop {
            let deadline = conn.deadline(&options);
            let turn = tokio::select! {
                ended = std::future::poll_fn(|cx| served.poll_without_shutdown(cx)) => {
                    Turn::Ended(ended)
                }
                _ = conn.evict.cancelled() => {
                    tracing::debug!("closing the connection from {peer} to make room");
                    return;
                }
                _ = conn.changed.notified() => Turn::Again,
                _ = sleep_until(deadline) => {
                    if conn.deadline(&options).is_some_and(|d| d <= Instant::now()) {
                        tracing::debug!("closing the connection from {peer}: idle or too slow");
                        return;
                    }
                    Turn::Again
                }
                _ = shutdown.cancelled(), if !closing => Turn::Shutdown,
            };
            match turn {
                Turn::Ended(ended) => break ended,
                Turn::Again => {}
                Turn::Shutdown if !conn.serving() => {
                    // Nothing to finish: waiting for a head that may never come would
                    // only hold the shutdown up.
                    return;
                }
                Turn::Shutdown => {
                    closing = true;
                    Pin::new(&mut served).graceful_shutdown();
                }
            }
        };
        if let Err(e) = ended {
            tracing::debug!("connection from {peer} ended: {e}");
        }
        let mut io = served.into_parts().io.into_inner();
        tokio::select! {
            _ = linger(&mut io) => {}
            _ = conn.evict.cancelled() => {}
            _ = shutdown.cancelled() => {}
        }
    }
}

enum Turn {
    Ended(hyper::Result<()>),
    Again,
    Shutdown,
}

/// Longest a closing connection keeps reading what the client still sends.
const LINGER: Duration = Duration::from_secs(2);
/// Most bytes a closing connection reads and discards.
const LINGER_BYTES: usize = 64 * 1024 * 1024;

/// Closes our side, then reads and discards what the client is still sending for a
/// moment before closing for good. An answer sent before the request body was read (a
/// 413, a refused token, a parse error) would otherwise be lost: closing a socket with
/// unread data makes the kernel reset it, and the client sees "broken pipe" or
/// "connection reset" instead of the answer. Bounded in time and bytes, and the slot
/// may be taken by eviction meanwhile.
async fn linger(io: &mut WatchedIo) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = tokio::time::timeout(LINGER, async {
        if io.shutdown().await.is_err() {
            return;
        }
        let mut buf = vec![0u8; 64 * 1024];
        let mut discarded = 0;
        while discarded < LINGER_BYTES {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => discarded += n,
            }
        }
    })
    .await;
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

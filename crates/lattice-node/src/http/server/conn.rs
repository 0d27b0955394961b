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
//!
//! Connections are capped per client address and in total. When a cap is reached, the
//! oldest connection that is not *active* (it waits, dawdles over its head or drips a
//! body: all things an attacker does cheaply) is closed to make room; only when every
//! connection is busy being served is the newcomer refused. hyper's own timers are not
//! used: its header timeout runs from the end of the previous answer, so it cannot tell
//! an idle kept-alive connection from a dawdling one.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::http::{Request, Response};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::ServerOptions;
use super::io::WatchedIo;
use crate::throttle::{LogThrottle, suppressed_note};

/// How long open requests may take to finish after shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What a connection is doing, as far as limits care.
#[derive(Debug)]
struct Phase {
    /// Requests handed to the API whose answers are not finished.
    in_flight: u32,
    /// Of those, requests whose bodies are still being read.
    bodies_open: u32,
    /// Requests served on this connection so far.
    served: u64,
    /// When the connection last became idle (accepted, or an answer finished).
    idle_since: Instant,
    /// When the first bytes of the next request arrived, while idle.
    head_since: Option<Instant>,
}

/// One connection's state, shared by its task, its socket, its requests and the table.
#[derive(Debug)]
pub(super) struct ConnShared {
    phase: Mutex<Phase>,
    /// Wakes the connection's task when its deadline may have moved.
    changed: Notify,
    /// Cancelled to evict the connection.
    evict: CancellationToken,
}

impl ConnShared {
    fn new(now: Instant) -> Self {
        Self {
            phase: Mutex::new(Phase {
                in_flight: 0,
                bodies_open: 0,
                served: 0,
                idle_since: now,
                head_since: None,
            }),
            changed: Notify::new(),
            evict: CancellationToken::new(),
        }
    }

    fn phase(&self) -> MutexGuard<'_, Phase> {
        // A panic elsewhere while holding the lock leaves plain counters: still usable.
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The socket delivered bytes: while idle, a request has started.
    pub(super) fn bytes_arrived(&self) {
        let mut p = self.phase();
        if p.in_flight == 0 && p.head_since.is_none() {
            p.head_since = Some(Instant::now());
            drop(p);
            self.changed.notify_one();
        }
    }

    fn request_started(&self, has_body: bool) {
        let mut p = self.phase();
        p.in_flight += 1;
        p.bodies_open += u32::from(has_body);
        p.served += 1;
        p.head_since = None;
        drop(p);
        self.changed.notify_one();
    }

    fn body_finished(&self) {
        let mut p = self.phase();
        p.bodies_open = p.bodies_open.saturating_sub(1);
    }

    fn answer_finished(&self) {
        let mut p = self.phase();
        p.in_flight = p.in_flight.saturating_sub(1);
        if p.in_flight == 0 {
            p.idle_since = Instant::now();
            p.head_since = None;
        }
        drop(p);
        self.changed.notify_one();
    }

    /// Not busy being served: it may be closed to make room.
    fn evictable(&self) -> bool {
        let p = self.phase();
        p.in_flight == 0 || p.bodies_open > 0
    }

    /// When the connection is to be closed if nothing changes (`None`: not while a
    /// request is being served; the handler's own timeout rules then).
    fn deadline(&self, options: &ServerOptions) -> Option<Instant> {
        let p = self.phase();
        if p.in_flight > 0 {
            return None;
        }
        Some(match p.head_since {
            Some(t) => t + options.header_read_timeout,
            None if p.served == 0 => p.idle_since + options.header_read_timeout,
            None => p.idle_since + options.idle_timeout,
        })
    }
}

struct Slot {
    ip: IpAddr,
    conn: Arc<ConnShared>,
}

/// Open connections, oldest first, with a count per client address.
#[derive(Default)]
struct Table {
    slots: BTreeMap<u64, Slot>,
    per_ip: HashMap<IpAddr, usize>,
    next_id: u64,
}

/// Why a connection was not admitted.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    PerAddress(usize),
    Total(usize),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::PerAddress(n) => {
                write!(f, "{n} connections from this address are open and busy")
            }
            Refusal::Total(n) => write!(f, "{n} connections are open and busy"),
        }
    }
}

impl Table {
    /// Admits a connection from `ip`, closing the oldest evictable one first when a
    /// cap is reached.
    fn admit(
        &mut self,
        ip: IpAddr,
        now: Instant,
        options: &ServerOptions,
    ) -> Result<(u64, Arc<ConnShared>), Refusal> {
        let max_ip = options.max_connections_per_ip.max(1);
        let max_total = options.max_connections.max(1);
        if self.per_ip.get(&ip).copied().unwrap_or(0) >= max_ip
            && !self.evict_oldest(|s| s.ip == ip)
        {
            return Err(Refusal::PerAddress(max_ip));
        }
        if self.slots.len() >= max_total && !self.evict_oldest(|_| true) {
            return Err(Refusal::Total(max_total));
        }
        let id = self.next_id;
        self.next_id += 1;
        let conn = Arc::new(ConnShared::new(now));
        self.slots.insert(
            id,
            Slot {
                ip,
                conn: conn.clone(),
            },
        );
        *self.per_ip.entry(ip).or_default() += 1;
        Ok((id, conn))
    }

    /// Closes the oldest evictable connection that `which` selects.
    fn evict_oldest(&mut self, which: impl Fn(&Slot) -> bool) -> bool {
        let victim = self
            .slots
            .iter()
            .find(|(_, s)| which(s) && s.conn.evictable())
            .map(|(id, _)| *id);
        match victim {
            Some(id) => {
                if let Some(slot) = self.remove(id) {
                    slot.conn.evict.cancel();
                }
                true
            }
            None => false,
        }
    }

    fn remove(&mut self, id: u64) -> Option<Slot> {
        let slot = self.slots.remove(&id)?;
        if let Some(n) = self.per_ip.get_mut(&slot.ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&slot.ip);
            }
        }
        Some(slot)
    }
}

type SharedTable = Arc<Mutex<Table>>;

fn lock(table: &SharedTable) -> MutexGuard<'_, Table> {
    table.lock().unwrap_or_else(|e| e.into_inner())
}

/// The API for one connection: marks when requests start and answers finish.
#[derive(Clone)]
struct Tracked {
    app: Router,
    conn: Arc<ConnShared>,
}

impl hyper::service::Service<Request<Incoming>> for Tracked {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let has_body = !req.body().is_end_stream();
        self.conn.request_started(has_body);
        let answer = AnswerGuard(self.conn.clone());
        let body_conn = has_body.then(|| self.conn.clone());
        let req = req.map(|body| {
            Body::new(TrackedIncoming {
                inner: body,
                conn: body_conn,
            })
        });
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
            lock(&table).remove(id);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn options(total: usize, per_ip: usize) -> ServerOptions {
        ServerOptions {
            max_connections: total,
            max_connections_per_ip: per_ip,
            ..ServerOptions::default()
        }
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn at_the_total_cap_the_oldest_idle_connection_is_evicted_and_busy_ones_are_kept() {
        let now = Instant::now();
        let o = options(3, 3);
        let mut t = Table::default();
        let (_, busy) = t.admit(ip(2), now, &o).unwrap();
        busy.request_started(false);
        let (_, idle) = t.admit(ip(3), now, &o).unwrap();
        let (_, _newer) = t.admit(ip(4), now, &o).unwrap();
        let (_, _) = t.admit(ip(5), now, &o).unwrap();
        assert!(
            !busy.evict.is_cancelled(),
            "a connection being served was evicted"
        );
        assert!(idle.evict.is_cancelled(), "the oldest idle one stays");
        assert_eq!(t.slots.len(), 3);
    }

    #[test]
    fn a_connection_dripping_its_body_is_evictable_one_whose_handler_works_is_not() {
        let c = ConnShared::new(Instant::now());
        c.request_started(true);
        assert!(c.evictable());
        c.body_finished();
        assert!(!c.evictable());
        c.answer_finished();
        assert!(c.evictable());
    }

    #[test]
    fn when_every_connection_is_busy_the_newcomer_is_refused() {
        let now = Instant::now();
        let o = options(2, 2);
        let mut t = Table::default();
        for last in 2..4 {
            let (_, c) = t.admit(ip(last), now, &o).unwrap();
            c.request_started(false);
        }
        assert_eq!(t.admit(ip(9), now, &o).unwrap_err(), Refusal::Total(2));
    }

    #[test]
    fn one_address_at_its_cap_gives_up_its_own_oldest_idle_connection_not_anothers() {
        let now = Instant::now();
        let o = options(10, 2);
        let mut t = Table::default();
        let (_, other) = t.admit(ip(3), now, &o).unwrap();
        let (_, first) = t.admit(ip(2), now, &o).unwrap();
        let (_, _) = t.admit(ip(2), now, &o).unwrap();
        let (_, _) = t.admit(ip(2), now, &o).unwrap();
        assert!(first.evict.is_cancelled());
        assert!(!other.evict.is_cancelled());
        assert_eq!(t.per_ip[&ip(2)], 2);
        // And an address whose connections are all busy is refused.
        for s in t.slots.values().filter(|s| s.ip == ip(2)) {
            s.conn.request_started(false);
        }
        assert_eq!(t.admit(ip(2), now, &o).unwrap_err(), Refusal::PerAddress(2));
    }

    #[test]
    fn deadlines_follow_the_phase() {
        let t0 = Instant::now();
        let o = ServerOptions {
            header_read_timeout: Duration::from_millis(100),
            idle_timeout: Duration::from_millis(1000),
            ..ServerOptions::default()
        };
        let c = ConnShared::new(t0);
        assert_eq!(c.deadline(&o), Some(t0 + o.header_read_timeout), "new");
        c.request_started(false);
        assert_eq!(c.deadline(&o), None, "being served");
        c.answer_finished();
        let idle = c.deadline(&o).unwrap();
        assert!(idle >= t0 + o.idle_timeout, "kept alive");
        c.bytes_arrived();
        assert!(c.deadline(&o).unwrap() < idle, "a request started");
    }
}

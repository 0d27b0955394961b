//! A TCP relay for tests, put between two peers on loopback to fault the link for real:
//! `Blackhole` keeps both sockets open and forwards nothing (a silent drop, as a
//! firewall rule or a cut cable makes it: no FIN, no RST), `Delay` forwards every
//! chunk after a fixed delay (latency without loss of order or throughput), `Down`
//! closes every relayed connection and refuses new ones.
//!
//! Shared by the unit tests of `p2p` and the integration tests (included by path).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Pass,
    Delay(Duration),
    Blackhole,
    Down,
}

pub struct Relay {
    addr: SocketAddr,
    target: Arc<std::sync::Mutex<Option<SocketAddr>>>,
    mode: watch::Sender<Mode>,
    stats: Arc<Stats>,
    stop: CancellationToken,
}

#[derive(Default)]
struct Stats {
    accepted: AtomicUsize,
    open: AtomicUsize,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Relay {
    /// Listens on 127.0.0.1 (any port) and relays every connection to `target`.
    pub async fn start(target: SocketAddr) -> Relay {
        let relay = Relay::bind().await;
        relay.forward_to(target);
        relay
    }

    /// Where connections go; until set, they are refused.
    pub fn forward_to(&self, target: SocketAddr) {
        *self.target.lock().unwrap() = Some(target);
    }

    /// Listens before knowing where to relay (so a node can be told the relay's address
    /// before it starts); see [`Relay::forward_to`].
    pub async fn bind() -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = Arc::new(std::sync::Mutex::new(None::<SocketAddr>));
        let target2 = target.clone();
        let addr = listener.local_addr().unwrap();
        let (mode, _) = watch::channel(Mode::Pass);
        let stats = Arc::new(Stats::default());
        let stop = CancellationToken::new();
        let (mode_rx, stats2, stop2) = (mode.subscribe(), stats.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = stop2.cancelled() => return,
                    a = listener.accept() => a,
                };
                let Ok((inbound, _)) = accepted else { continue };
                stats2.accepted.fetch_add(1, Ordering::SeqCst);
                let to = *target2.lock().unwrap();
                let Some(to) = to.filter(|_| *mode_rx.borrow() != Mode::Down) else {
                    drop(inbound);
                    continue;
                };
                let Ok(outbound) = TcpStream::connect(to).await else {
                    continue;
                };
                tokio::spawn(pipe(
                    inbound,
                    outbound,
                    mode_rx.clone(),
                    stats2.clone(),
                    stop2.child_token(),
                ));
            }
        });
        Relay {
            addr,
            target,
            mode,
            stats,
            stop,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    /// Connections accepted so far (including refused ones while `Down`).
    pub fn accepted(&self) -> usize {
        self.stats.accepted.load(Ordering::SeqCst)
    }

    /// Relayed connections whose both sockets are still open.
    pub fn open(&self) -> usize {
        self.stats.open.load(Ordering::SeqCst)
    }
}

async fn pipe(
    a: TcpStream,
    b: TcpStream,
    mode: watch::Receiver<Mode>,
    stats: Arc<Stats>,
    done: CancellationToken,
) {
    stats.open.fetch_add(1, Ordering::SeqCst);
    let _ = a.set_nodelay(true);
    let _ = b.set_nodelay(true);
    let (ar, aw) = a.into_split();
    let (br, bw) = b.into_split();
    let one = tokio::spawn(direction(ar, bw, mode.clone(), done.clone()));
    let other = tokio::spawn(direction(br, aw, mode, done.clone()));
    let _ = one.await;
    let _ = other.await;
    stats.open.fetch_sub(1, Ordering::SeqCst);
}

/// One direction: reads keep going in every mode but `Down` (so the sender never
/// blocks on a full buffer and sees no sign of the fault); what is read is forwarded,
/// delayed, or dropped. Either direction ending closes the whole connection.
async fn direction(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
    done: CancellationToken,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer_mode = mode.clone();
    let writer_done = done.clone();
    let writer = tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                _ = writer_done.cancelled() => break,
                n = rx.recv() => n,
            };
            let Some((at, data)) = next else { break };
            tokio::select! {
                _ = writer_done.cancelled() => break,
                _ = tokio::time::sleep_until(at) => {}
            }
            match *writer_mode.borrow() {
                Mode::Blackhole => continue,
                Mode::Down => break,
                Mode::Pass | Mode::Delay(_) => {}
            }
            if to.write_all(&data).await.is_err() {
                break;
            }
        }
        writer_done.cancel();
    });
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            _ = done.cancelled() => break,
            changed = mode.changed() => {
                if changed.is_err() || *mode.borrow() == Mode::Down {
                    break;
                }
                continue;
            }
            n = from.read(&mut buf) => n,
        };
        let Ok(n) = n else { break };
        if n == 0 {
            break;
        }
        let at = match *mode.borrow() {
            Mode::Blackhole => continue,
            Mode::Down => break,
            Mode::Pass => Instant::now(),
            Mode::Delay(d) => Instant::now() + d,
        };
        if tx.send((at, buf[..n].to_vec())).is_err() {
            break;
        }
    }
    done.cancel();
    let _ = writer.await;
}

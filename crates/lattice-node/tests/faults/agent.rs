//! The suite's hands inside a node's namespace: this test binary, started again under
//! `ip netns exec` (the crate forbids `unsafe`, so no `setns` from a thread). It does two
//! things, both on real sockets:
//! - it relays the node's P2P port: it listens on `P2P_PORT` at the node's namespace
//!   address and forwards every connection to the node's own listener on loopback, adding
//!   a delay the test sets at run time (latency faults; `tc netem` is missing here);
//! - it forwards connections from a Unix socket (paths cross namespaces) to an address
//!   inside the namespace, so the test talks HTTP to the node without leaving the
//!   namespaces it created.
//!
//! It exits when its stdin closes, so it never outlives the test.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The env variable that turns the ignored `fault_agent` test into the agent.
pub const AGENT_VAR: &str = "LATTICE_FAULT_AGENT";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The agent process as the test holds it.
pub struct Agent {
    child: Child,
    /// Closing it ends the agent.
    stdin: Option<ChildStdin>,
    socket: PathBuf,
}

impl Agent {
    /// Starts the agent in `ns`: relay `listen` -> `target`, control socket `socket`.
    pub fn start(ns: &str, socket: &Path, listen: SocketAddr, target: SocketAddr) -> Agent {
        let exe = std::env::current_exe().expect("the test binary's path");
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(&exe)
            .args([
                "--exact",
                "fault_agent",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
                "-q",
            ])
            .env(AGENT_VAR, format!("{}|{listen}|{target}", socket.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the agent starts");
        let stdin = child.stdin.take();
        let agent = Agent {
            child,
            stdin,
            socket: socket.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&agent.socket).is_err() {
            assert!(
                Instant::now() < deadline,
                "the agent in {ns} did not open {} within 10 s",
                socket.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        agent
    }

    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    /// Sets the relay's one-way delay for every connection, open or new.
    pub fn set_delay(&self, delay: Duration) {
        let mut s = UnixStream::connect(&self.socket).expect("the agent answers");
        s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        s.write_all(format!("DELAY {}\n", delay.as_millis()).as_bytes())
            .expect("the agent takes a command");
        let line = read_line(&mut s).expect("the agent answers");
        assert!(line.starts_with("OK"), "agent: {line}");
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stdin.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// A TCP connection to `addr` inside the namespace of the agent at `socket`.
pub fn connect(socket: &Path, addr: &str, timeout: Duration) -> Result<UnixStream, String> {
    let mut s = UnixStream::connect(socket).map_err(|e| format!("agent: {e}"))?;
    s.set_read_timeout(Some(timeout)).ok();
    s.set_write_timeout(Some(timeout)).ok();
    s.write_all(format!("CONNECT {addr}\n").as_bytes())
        .map_err(|e| format!("agent: {e}"))?;
    let line = read_line(&mut s).map_err(|e| format!("agent: {e}"))?;
    match line.strip_prefix("OK") {
        Some(_) => Ok(s),
        None => Err(line),
    }
}

/// Reads one line byte by byte, so nothing after it is consumed.
fn read_line(s: &mut impl Read) -> std::io::Result<String> {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    while out.len() < 512 {
        if s.read(&mut b)? == 0 {
            break;
        }
        if b[0] == b'\n' {
            break;
        }
        out.push(b[0]);
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The agent's body, run in the child process.
pub fn agent_main(spec: &str) {
    let mut parts = spec.split('|');
    let socket = PathBuf::from(parts.next().expect("socket path"));
    let listen: SocketAddr = parts.next().and_then(|s| s.parse().ok()).expect("listen");
    let target: SocketAddr = parts.next().and_then(|s| s.parse().ok()).expect("target");
    let delay = Arc::new(AtomicU64::new(0));

    std::thread::spawn(|| {
        // The test closes our stdin when it is done (or dies): then we go too.
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        std::process::exit(0);
    });

    let relay = TcpListener::bind(listen).expect("the relay binds its port");
    let d = delay.clone();
    std::thread::spawn(move || {
        for conn in relay.incoming().flatten() {
            let d = d.clone();
            std::thread::spawn(move || relay_one(conn, target, d));
        }
    });

    let _ = std::fs::remove_file(&socket);
    let control = UnixListener::bind(&socket).expect("the agent binds its socket");
    for conn in control.incoming().flatten() {
        let delay = delay.clone();
        std::thread::spawn(move || control_one(conn, &delay));
    }
}

fn control_one(mut conn: UnixStream, delay: &AtomicU64) {
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let Ok(line) = read_line(&mut conn) else {
        return;
    };
    if let Some(ms) = line.strip_prefix("DELAY ") {
        match ms.trim().parse() {
            Ok(ms) => {
                delay.store(ms, Ordering::SeqCst);
                let _ = conn.write_all(b"OK\n");
            }
            Err(_) => {
                let _ = conn.write_all(b"ERR bad delay\n");
            }
        }
    } else if let Some(addr) = line.strip_prefix("CONNECT ") {
        let tcp = addr
            .trim()
            .parse::<SocketAddr>()
            .map_err(|e| e.to_string())
            .and_then(|a| {
                TcpStream::connect_timeout(&a, CONNECT_TIMEOUT).map_err(|e| e.to_string())
            });
        match tcp {
            Ok(tcp) => {
                if conn.write_all(b"OK\n").is_err() {
                    return;
                }
                conn.set_read_timeout(None).ok();
                splice_unix(conn, tcp);
            }
            Err(e) => {
                let _ = conn.write_all(format!("ERR connect {addr}: {e}\n").as_bytes());
            }
        }
    } else {
        let _ = conn.write_all(b"ERR unknown command\n");
    }
}

fn splice_unix(unix: UnixStream, tcp: TcpStream) {
    let (Ok(mut u2), Ok(mut t2)) = (unix.try_clone(), tcp.try_clone()) else {
        return;
    };
    let up = std::thread::spawn(move || {
        let mut u = unix;
        let mut t = tcp;
        let _ = std::io::copy(&mut u, &mut t);
        let _ = t.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut t2, &mut u2);
    let _ = u2.shutdown(Shutdown::Both);
    let _ = up.join();
}

/// Relays one P2P connection to the node with the current delay in each direction.
fn relay_one(down: TcpStream, target: SocketAddr, delay: Arc<AtomicU64>) {
    let Ok(up) = TcpStream::connect_timeout(&target, CONNECT_TIMEOUT) else {
        // The node is not listening (killed): the dialer sees the connection close.
        let _ = down.shutdown(Shutdown::Both);
        return;
    };
    let _ = down.set_nodelay(true);
    let _ = up.set_nodelay(true);
    let (Ok(down2), Ok(up2)) = (down.try_clone(), up.try_clone()) else {
        return;
    };
    let d2 = delay.clone();
    let a = std::thread::spawn(move || pump(down, up, &delay));
    pump(up2, down2, &d2);
    let _ = a.join();
}

/// Copies `from` to `to`, each chunk held back until `delay` after it was read. A reader
/// and a writer thread, so a delay does not also cut the throughput.
fn pump(mut from: TcpStream, to: TcpStream, delay: &AtomicU64) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let mut to2 = match to.try_clone() {
        Ok(t) => t,
        Err(_) => return,
    };
    let writer = std::thread::spawn(move || {
        for (due, chunk) in rx {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if to2.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = to2.shutdown(Shutdown::Write);
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let due = Instant::now() + Duration::from_millis(delay.load(Ordering::SeqCst));
                if tx.send((due, buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.join();
    // The writer stopped (peer gone): make sure the reader side of the other pump ends.
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Read);
}

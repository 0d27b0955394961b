//! Which connections are open and what each is doing: the phases, their deadlines,
//! and admission under the caps (see `conn.rs` for the policy). No I/O: the
//! serving code reports what happens and asks what to do.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::ServerOptions;

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
    /// Since when the client has taken none of what we are sending (its receive
    /// window is full), while an answer is going out.
    send_stalled_since: Option<Instant>,
}

/// One connection's state, shared by its task, its socket, its requests and the table.
#[derive(Debug)]
pub(super) struct ConnShared {
    phase: Mutex<Phase>,
    /// Wakes the connection's task when its deadline may have moved.
    pub(super) changed: Notify,
    /// Cancelled to evict the connection.
    pub(super) evict: CancellationToken,
}

impl ConnShared {
    pub(super) fn new(now: Instant) -> Self {
        Self {
            phase: Mutex::new(Phase {
                in_flight: 0,
                bodies_open: 0,
                served: 0,
                idle_since: now,
                head_since: None,
                send_stalled_since: None,
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

    pub(super) fn request_started(&self, has_body: bool) {
        let mut p = self.phase();
        p.in_flight += 1;
        p.bodies_open += u32::from(has_body);
        p.served += 1;
        p.head_since = None;
        drop(p);
        self.changed.notify_one();
    }

    pub(super) fn body_finished(&self) {
        let mut p = self.phase();
        p.bodies_open = p.bodies_open.saturating_sub(1);
    }

    pub(super) fn answer_finished(&self) {
        let mut p = self.phase();
        p.in_flight = p.in_flight.saturating_sub(1);
        if p.in_flight == 0 {
            p.idle_since = Instant::now();
            p.head_since = None;
        }
        drop(p);
        self.changed.notify_one();
    }

    /// A request is being served (its answer may still be going out).
    pub(super) fn serving(&self) -> bool {
        self.phase().in_flight > 0
    }

    /// Not busy being served: it may be closed to make room.
    pub(super) fn evictable(&self) -> bool {
        let p = self.phase();
        p.in_flight == 0 || p.bodies_open > 0 || p.send_stalled_since.is_some()
    }

    /// A write could not proceed: the client is not reading.
    pub(super) fn send_stalled(&self) {
        let mut p = self.phase();
        if p.send_stalled_since.is_none() {
            p.send_stalled_since = Some(Instant::now());
            drop(p);
            self.changed.notify_one();
        }
    }

    /// A write went through.
    pub(super) fn send_progressed(&self) {
        let mut p = self.phase();
        if p.send_stalled_since.is_some() {
            p.send_stalled_since = None;
            drop(p);
            self.changed.notify_one();
        }
    }

    /// When the connection is to be closed if nothing changes (`None`: not while a
    /// request is being served and its answer flows; the handler's own timeout rules
    /// then).
    pub(super) fn deadline(&self, options: &ServerOptions) -> Option<Instant> {
        let p = self.phase();
        if let Some(t) = p.send_stalled_since {
            return Some(t + options.send_stall_timeout);
        }
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
pub(super) struct Table {
    slots: BTreeMap<u64, Slot>,
    per_ip: HashMap<IpAddr, usize>,
    next_id: u64,
}

/// Why a connection was not admitted.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refusal {
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
    pub(super) fn admit(
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

    /// Forgets a connection that ended (a no-op for an evicted one: already gone).
    pub(super) fn forget(&mut self, id: u64) {
        self.remove(id);
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

pub(super) type SharedTable = Arc<Mutex<Table>>;

pub(super) fn lock(table: &SharedTable) -> MutexGuard<'_, Table> {
    table.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
        c.request_started(false);
        c.send_stalled();
        assert!(
            c.deadline(&o).is_some(),
            "an answer the client does not take"
        );
        assert!(c.evictable());
        c.send_progressed();
        assert_eq!(c.deadline(&o), None, "the answer flows again");
    }
}

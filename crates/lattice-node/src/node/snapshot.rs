//! What the actor publishes: one [`Status`] snapshot, every time in it on one clock.

use super::{Actor, states};
use crate::status::{EventKind, LedgerInfo, NeighborHealth, Status};

impl Actor {
    /// Every time in it is on the steady clock, read once.
    pub(super) fn snapshot(&self) -> Status {
        let now = self.clock.now_ms();
        let lungs = self.schedule.lungs();
        let root = hex::encode(self.store.root());
        let peers = self.p2p.peer_statuses(&root);
        // The schedule's count of the same list as `peers`, taken with it, so the two
        // never disagree; the heartbeat samples it.
        let peer_count = self.schedule.sync_peer_count();
        let neighbors = self
            .neighbors
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let mut s = n.status.clone();
                s.root_matches = s.root.as_ref().map(|r| *r == root);
                let view = self.schedule.neighbor(i);
                s.next_attempt_ms = view.next_attempt_ms;
                s.events_connected = view.events_connected;
                s.events_next_attempt_ms = view.events_next_attempt_ms;
                s.rate_dropped = self.unsolicited.event_dropped(&s.url);
                s
            })
            .collect::<Vec<_>>();
        let healthy = neighbors
            .iter()
            .filter(|n| n.health == NeighborHealth::Healthy)
            .count();
        let derived = states::derive(&self.schedule.situation(neighbors.len(), healthy));
        Status {
            peer_count,
            has_peers: peer_count > 0,
            http_sync_enabled: lungs.http_sync_enabled,
            sync_mode: lungs.sync_lung,
            heartbeat_active: lungs.heartbeat_active,
            mode: lungs.mode,
            peerless_since_ms: lungs.peerless_since_ms,
            fallback_deadline_ms: lungs.fallback_deadline_ms,
            fallback_active_since_ms: lungs.fallback_active_since_ms,
            fallback_after_ms: lungs.fallback_after_ms,
            heartbeat_ms: self.config.heartbeat.as_millis() as u64,
            http_poll_ms: self.config.http_poll.as_millis() as u64,
            last_transition: lungs.last_transition,
            merkle_root: root,
            entry_count: self.store.len(),
            node: self.info.clone(),
            ledger: self.ledger_info(),
            neighbors,
            last_sync: self.last_sync.clone(),
            peers,
            p2p_blocked: self.schedule.p2p_blocked(),
            p2p_listen: self.p2p.listen.clone(),
            reachability: self.p2p.reachability,
            store_failure: self.store.write_failure(),
            now_ms: now,
            states: derived,
            entries_by_lung: self.entries_by_lung,
            seq: self.seq,
            transitions: self.transitions.to_vec(),
        }
    }

    fn ledger_info(&self) -> LedgerInfo {
        let ledger = self.store.ledger();
        let genesis = ledger.genesis();
        LedgerInfo {
            id: ledger.id().to_hex(),
            name: genesis.name().to_string(),
            open: genesis.is_open(),
            authors: ledger.member_count(),
            can_write: ledger.is_member(&self.own_key),
            refused: ledger.refused_count(),
        }
    }

    /// The snapshot last published (what `status()` returns now).
    pub(super) fn published(&self) -> Status {
        match &self.status_tx {
            Some(tx) => tx.borrow().clone(),
            None => self.snapshot(),
        }
    }

    /// Sends a new snapshot, with the next `seq`, when anything but the clock changed.
    pub(super) fn publish(&mut self) {
        if !self.reported_store_failure
            && let Some(reason) = self.store.write_failure()
        {
            self.reported_store_failure = true;
            self.emit(EventKind::StoreFailed { reason });
        }
        let Some(tx) = &self.status_tx else { return };
        let mut next = self.snapshot();
        let now = next.now_ms;
        let seq = &mut self.seq;
        tx.send_if_modified(|current| {
            next.now_ms = current.now_ms;
            next.seq = current.seq;
            if *current == next {
                return false;
            }
            *seq += 1;
            next.seq = *seq;
            next.now_ms = now;
            *current = next;
            true
        });
    }
}

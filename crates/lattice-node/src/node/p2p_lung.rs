//! How the actor carries out the P2P lung's work: reconciliations with the peers the
//! schedule names, gossip on or off, cutting and restoring P2P, and what status shows of
//! peers. When any of it happens is the schedule's decision (`sync::schedule`).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::sync::mpsc;

use super::{Actor, NodeOptions};
use crate::config::Config;
use crate::identity::NodeKey;
use crate::p2p::{P2pConfig, P2pEvent, P2pHandle, PeerId, PeerInfo};
use crate::status::{EventKind, Lung, PeerStatus};
use crate::sync::schedule::Input;

/// What one P2P reconciliation came to.
pub(super) struct P2pSyncDone {
    peer: PeerId,
    run: super::synced::Run,
}

pub(super) struct P2pLung {
    pub(super) handle: P2pHandle,
    /// A peer gossiping forgeries can send thousands a second: a few lines say so.
    gossip_warnings: crate::throttle::LogThrottle,
    pub(super) listen: Vec<String>,
    /// AutoNAT's last verdict on this node.
    pub(super) reachability: crate::p2p::Reachability,
    peers: Vec<PeerInfo>,
    /// Each peer's root as last seen, and when.
    roots: HashMap<String, ([u8; 32], u64)>,
}

impl P2pLung {
    pub(super) fn new(handle: P2pHandle) -> Self {
        Self {
            handle,
            gossip_warnings: crate::throttle::LogThrottle::default(),
            listen: Vec::new(),
            reachability: crate::p2p::Reachability::Unknown,
            peers: Vec::new(),
            roots: HashMap::new(),
        }
    }

    /// Peers in the list that count now (sync-capable and live): what the schedule's
    /// heartbeat judges, and status shows beside the list.
    fn sync_peers(&self) -> Vec<String> {
        self.peers
            .iter()
            .filter(|p| p.sync_capable)
            .map(|p| p.peer_id.clone())
            .collect()
    }

    pub(super) fn peer_statuses(&self, our_root: &str) -> Vec<PeerStatus> {
        self.peers
            .iter()
            .map(|p| {
                let seen = self.roots.get(&p.peer_id);
                let root = seen.map(|(r, _)| hex::encode(r));
                PeerStatus {
                    info: p.clone(),
                    root_matches: root.as_ref().map(|r| r == our_root),
                    root,
                    last_sync_ms: seen.map(|(_, at)| *at),
                }
            })
            .collect()
    }
}

impl Actor {
    pub(super) async fn p2p_event(&mut self, event: P2pEvent) {
        match event {
            P2pEvent::SyncPeers { .. } => {
                let input = self.refresh_peers(true).await;
                self.feed(input).await;
            }
            P2pEvent::NewSyncPeer { peer } => {
                let input = self.refresh_peers(false).await;
                self.feed(input).await;
                self.feed(Input::NewSyncPeer(peer.to_string())).await;
            }
            P2pEvent::PeersChanged => {
                let input = self.refresh_peers(false).await;
                self.feed(input).await;
            }
            P2pEvent::Carried(flow) => self.entries_by_lung.p2p.add(flow),
            P2pEvent::HolePunched { peer } => {
                // The peer is now reached directly: it may count as a sync peer now.
                let input = self.refresh_peers(false).await;
                self.feed(input).await;
                self.emit(EventKind::HolePunched {
                    peer: peer.to_string(),
                });
            }
            P2pEvent::Reachability(r) => {
                self.p2p.reachability = r;
            }
            P2pEvent::GossipRejected { peer, kind, reason } => {
                if let Some(held) = self.p2p.gossip_warnings.allow(std::time::Instant::now()) {
                    tracing::warn!(
                        "[P2P_GOSSIP] rejected an entry from {peer}: {reason}{}",
                        crate::throttle::suppressed_note(held)
                    );
                }
                self.emit(EventKind::SyncFailed {
                    lung: Lung::P2p,
                    with: peer.to_string(),
                    kind: if kind == crate::ledger::UnauthorizedAuthor::KIND {
                        kind.into()
                    } else {
                        "forged_entry".into()
                    },
                    message: reason,
                });
            }
        }
    }

    /// Reads the swarm's peers (and its listen addresses, until known) and says what the
    /// schedule is to hear of them.
    pub(super) async fn refresh_peers(&mut self, sample: bool) -> Input {
        self.p2p.peers = self.p2p.handle.peers().await;
        let live: HashSet<&String> = self.p2p.peers.iter().map(|p| &p.peer_id).collect();
        self.p2p.roots.retain(|peer, _| live.contains(peer));
        if self.p2p.listen.is_empty() {
            let me = self.p2p.handle.peer_id();
            self.p2p.listen = self
                .p2p
                .handle
                .listen_addrs()
                .await
                .into_iter()
                .map(|a| format!("{a}/p2p/{me}"))
                .collect();
        }
        Input::Peers {
            sync_peers: self.p2p.sync_peers(),
            sample,
            listen_known: !self.p2p.listen.is_empty(),
        }
    }

    pub(super) async fn block_p2p(&mut self, blocked: bool) {
        self.p2p.handle.set_blocked(blocked).await;
        tracing::info!(
            "[P2P] {}",
            if blocked {
                "cut: every connection closed, new ones refused"
            } else {
                "restored: accepting connections and redialing peers"
            }
        );
    }

    /// Starts a reconciliation with `peer`; an id that does not parse ends at once.
    pub(super) fn sync_peer(&mut self, peer: &str, done: &mpsc::Sender<P2pSyncDone>) -> bool {
        let Ok(peer) = peer.parse::<PeerId>() else {
            return false;
        };
        let remote = self.p2p.handle.remote(peer);
        let (store, done) = (self.store.clone(), done.clone());
        let max_payload = self.config.max_payload;
        tokio::spawn(async move {
            let run = super::synced::run(&store, &remote, max_payload).await;
            let _ = done.send(P2pSyncDone { peer, run }).await;
        });
        true
    }

    pub(super) async fn p2p_sync_done(&mut self, done: P2pSyncDone) {
        let now = self.clock.now_ms();
        let with = done.peer.to_string();
        let run = done.run;
        match run.result {
            Ok(report) => {
                if let Some(root) = run.root_after {
                    self.p2p.roots.insert(with.clone(), (root, now));
                }
                self.record_synced(Lung::P2p, &with, run.ours_before, &report, now);
            }
            Err(e) => {
                tracing::warn!("[P2P_SYNC] {with}: {e}");
                self.record_sync_failed(Lung::P2p, with.clone(), e.kind(), e.to_string());
            }
        }
        self.feed(Input::PeerSyncDone(with)).await;
    }
}

/// The swarm's configuration. Its timers follow the user's: a ping at least once per
/// heartbeat (and three per peer timeout); a dial that cannot finish within the peer
/// timeout has failed (at least 1 s, at most the option); a lost peer is retried at
/// least every two peer timeouts, so P2P returns soon after a partition heals.
pub(super) fn p2p_config(config: &Config, options: &NodeOptions, key: NodeKey) -> P2pConfig {
    P2pConfig {
        key,
        listen: config.p2p_listen.clone(),
        bootstrap: config.bootstrap.clone(),
        allow: config.p2p_allow.clone(),
        mdns: config.mdns,
        max_payload: config.max_payload,
        redial_min: options.p2p_redial_min,
        redial_max: options
            .p2p_redial_max
            .min(config.peer_timeout * 2)
            .max(options.p2p_redial_min),
        request_timeout: options.p2p_request_timeout,
        peer_timeout: config.peer_timeout,
        ping_interval: config.heartbeat.min(config.peer_timeout / 3),
        dial_timeout: options
            .p2p_dial_timeout
            .min(config.peer_timeout.max(Duration::from_secs(1))),
        gossip_heartbeat: options.gossip_heartbeat,
        psk: config.p2p_psk,
        announce: options.p2p_announce.clone(),
        relays: config.relays.clone(),
        upnp: config.upnp,
        autonat_global_only: config.autonat_global_only,
        peer_rate: config.peer_rate,
        sync_json_only: false,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{Config, Overrides};
    use crate::identity::NodeKey;
    use crate::node::NodeOptions;

    fn timers(vars: &[(&str, &str)]) -> P2pConfig {
        let config = Config::from_pairs(vars, &Overrides::default()).unwrap();
        p2p_config(
            &config,
            &NodeOptions::default(),
            NodeKey::from_seed([1; 32]),
        )
    }

    #[test]
    fn p2p_timers_follow_the_heartbeat_and_the_peer_timeout() {
        let s = Duration::from_secs;
        let defaults = timers(&[]);
        assert_eq!(defaults.peer_timeout, s(15));
        assert_eq!(defaults.ping_interval, s(5), "once per heartbeat");
        assert_eq!(defaults.dial_timeout, s(10));
        assert_eq!(defaults.redial_max, s(30));

        // The test timers: a partition heals into P2P within seconds.
        let fast = timers(&[
            ("LATTICE_HEARTBEAT", "250ms"),
            ("LATTICE_PEER_TIMEOUT", "1s"),
            ("LATTICE_FALLBACK_AFTER", "2s"),
        ]);
        assert_eq!(fast.ping_interval, Duration::from_millis(250));
        assert_eq!(fast.dial_timeout, s(1));
        assert_eq!(fast.redial_max, s(2));

        // A peer timeout of one heartbeat still gets three pings in it.
        let tight = timers(&[("LATTICE_HEARTBEAT", "3s"), ("LATTICE_PEER_TIMEOUT", "3s")]);
        assert_eq!(tight.ping_interval, s(1));
        assert_eq!(tight.dial_timeout, s(3));
    }
}

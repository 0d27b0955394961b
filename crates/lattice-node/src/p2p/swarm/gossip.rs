//! Gossip: publishing our new entries, taking in others' (each checked once, however
//! many mesh peers deliver it), and noticing mesh changes.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use libp2p::PeerId;
use libp2p::gossipsub::{self, MessageAcceptance};
use tracing::{debug, warn};

use crate::ledger::{Entry, UnauthorizedAuthor};
use crate::p2p::P2pEvent;
use crate::status::EntryFlow;

use super::EventLoop;

impl EventLoop {
    pub(super) fn publish(&mut self, data: Vec<u8>) {
        if !self.gossip {
            debug!("gossip is off (forced HTTP mode): not publishing");
            return;
        }
        match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(self.topic.clone(), data)
        {
            Ok(id) => {
                debug!(%id, "entry gossiped");
                self.emit(P2pEvent::Carried(EntryFlow {
                    received: 0,
                    sent: 1,
                }));
            }
            Err(
                gossipsub::PublishError::NoPeersSubscribedToTopic
                | gossipsub::PublishError::Duplicate
                | gossipsub::PublishError::AllQueuesFull(_),
            ) => debug!("no gossip peer took the entry; reconciliation will carry it"),
            Err(e) => warn!(error = %e, "could not gossip an entry"),
        }
    }

    pub(super) fn handle_gossip(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                self.heard(&propagation_source);
                // A relayed connection is for finding a direct path, not for carrying the
                // ledger: what comes over it is ignored (not penalised); reconciliation
                // over a direct path, or the HTTP lung, carries it.
                let relayed_only = self
                    .peers
                    .get(&propagation_source)
                    .is_some_and(|p| !p.direct());
                let verdict = if !self.gossip || relayed_only {
                    if relayed_only {
                        debug!(peer = %propagation_source, "gossip over a relayed connection ignored");
                    }
                    MessageAcceptance::Ignore
                } else if !self
                    .rate
                    .allow(propagation_source, std::time::Instant::now())
                {
                    self.over_rate(propagation_source)
                } else if let Some(id) = std::str::from_utf8(&message.data)
                    .ok()
                    .and_then(|text| Entry::claimed_id_of_json(text, self.max_payload))
                    .map(|(id, _)| id)
                    .filter(|id| self.store.contains(id))
                {
                    // A copy of an entry already held (from another mesh peer, or by
                    // reconciliation): nothing to store, so nothing to verify. Not
                    // forwarded either: whoever sent it has it, and it may be a forgery
                    // of held content (the id leaves the signature out).
                    debug!(%id, peer = %propagation_source, "gossiped copy of a held entry ignored");
                    MessageAcceptance::Ignore
                } else {
                    self.gossip_checks.fetch_add(1, Ordering::Relaxed);
                    let parsed = std::str::from_utf8(&message.data)
                        .map_err(|e| ("malformed_entry", format!("not UTF-8: {e}")))
                        .and_then(|text| {
                            Entry::from_json(text, self.max_payload)
                                .map_err(|e| (e.kind(), e.to_string()))
                        });
                    // A non-member's entry is rejected like a forgery: not forwarded, and
                    // its sender's score falls.
                    let parsed = parsed.and_then(|entry| {
                        self.store
                            .ledger()
                            .check(&entry)
                            .map(|()| entry)
                            .map_err(|e| (UnauthorizedAuthor::KIND, e.to_string()))
                    });
                    match parsed {
                        Ok(entry) => {
                            let store = self.store.clone();
                            let events = self.events.clone();
                            tokio::spawn(async move {
                                let id = entry.id();
                                match store.append(entry).await {
                                    Ok(a) if a.inserted => {
                                        debug!(%id, "gossiped entry stored");
                                        // Only counted: a full queue drops the count.
                                        let _ = events.try_send(P2pEvent::Carried(EntryFlow {
                                            received: 1,
                                            sent: 0,
                                        }));
                                    }
                                    Ok(_) => {}
                                    Err(e) => {
                                        warn!(%id, error = %e, "cannot store a gossiped entry")
                                    }
                                }
                            });
                            MessageAcceptance::Accept
                        }
                        Err((kind, reason)) => {
                            // The node logs it, rate-limited; here it would repeat per forgery.
                            debug!(peer = %propagation_source, %reason, "rejected a gossiped entry");
                            self.emit(P2pEvent::GossipRejected {
                                peer: propagation_source,
                                kind,
                                reason,
                            });
                            MessageAcceptance::Reject
                        }
                    }
                };
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&message_id, &propagation_source, verdict);
            }
            // A subscription proves the peer is alive, not that it can sync.
            gossipsub::Event::Subscribed { peer_id, .. }
            | gossipsub::Event::Unsubscribed { peer_id, .. } => self.heard(&peer_id),
            _ => {}
        }
    }

    /// Mesh membership changes at gossipsub heartbeats without an event: look for it.
    pub(super) fn check_mesh(&mut self) {
        let mesh: HashSet<PeerId> = self
            .swarm
            .behaviour()
            .gossipsub
            .mesh_peers(&self.topic.hash())
            .copied()
            .collect();
        if mesh != self.mesh {
            self.mesh = mesh;
            self.emit(P2pEvent::PeersChanged);
        }
    }
}

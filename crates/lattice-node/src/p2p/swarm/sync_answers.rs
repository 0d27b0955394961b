//! The sync protocol's events: answering a peer's request (the store's work runs in a
//! spawned task; the answer comes back to the swarm), and handing a reply or a failure
//! to the reconciliation that asked.

use libp2p::request_response;
use tracing::debug;

use crate::p2p::P2pEvent;
use crate::p2p::protocol::{SyncRequest, SyncResponse, answer};
use crate::status::EntryFlow;
use crate::sync::reconcile::TransportError;

use super::EventLoop;

impl EventLoop {
    pub(super) fn handle_sync(
        &mut self,
        event: request_response::Event<SyncRequest, SyncResponse>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    mut request,
                    channel,
                    ..
                } => {
                    debug!(%peer, request = request.name(), "sync request");
                    self.heard(&peer);
                    if !self.admits(&peer) {
                        self.refuse_request(peer, channel);
                        return;
                    }
                    let limited = self.limit_push(peer, &mut request);
                    let store = self.store.clone();
                    let node = self.node_id.clone();
                    let max_payload = self.max_payload;
                    let answers = self.answers_tx.clone();
                    let events = self.events.clone();
                    tokio::spawn(async move {
                        let response = answer(&store, &node, max_payload, request).await;
                        // What this answer carries, for the P2P lung's counts.
                        let carried = match &response {
                            SyncResponse::Entries(m) => EntryFlow {
                                received: 0,
                                sent: m.entries.len() as u64,
                            },
                            SyncResponse::Pushed(p) => EntryFlow {
                                received: p.accepted as u64,
                                sent: 0,
                            },
                            _ => EntryFlow::default(),
                        };
                        if carried != EntryFlow::default() {
                            // A count, never worth blocking an answer for.
                            let _ = events.try_send(P2pEvent::Carried(carried));
                        }
                        // A refusal of what was taken (a non-member's entry) says more.
                        let response = match (limited, response) {
                            (Some(refusal), SyncResponse::Pushed(_)) => refusal,
                            (_, response) => response,
                        };
                        let _ = answers.send((channel, response));
                    });
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if matches!(&response, SyncResponse::Error { kind, .. } if kind == crate::p2p::admission::NOT_ADMITTED)
                    {
                        self.refused_by(peer, request_id);
                    } else {
                        self.answered(peer, request_id);
                    }
                    if let Some(reply) = self.pending.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                debug!(%peer, error = %error, "sync request failed");
                self.unanswered(peer, request_id, &error);
                if let Some(reply) = self.pending.remove(&request_id) {
                    let _ = reply.send(Err(outbound_error(&error)));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, error = %error, "answering a sync request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }
}

/// How a failed round trip reads to reconciliation.
fn outbound_error(error: &request_response::OutboundFailure) -> TransportError {
    use request_response::OutboundFailure as F;
    if let F::Io(e) = error
        && e.kind() == std::io::ErrorKind::Unsupported
        && e.to_string() == crate::p2p::sync_codec::NOT_IN_JSON
    {
        // The peer speaks only the JSON protocol: v2's hello is asked of it no further.
        return TransportError::v2_unsupported();
    }
    let kind = match error {
        F::DialFailure => "unreachable",
        F::Timeout => "timeout",
        F::ConnectionClosed => "connection_closed",
        F::UnsupportedProtocols => "unsupported_protocol",
        F::Io(_) => "io",
    };
    TransportError {
        kind: kind.into(),
        message: error.to_string(),
    }
}

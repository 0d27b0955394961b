//! What happens to a gossiped entry over its sender's `LATTICE_PEER_RATE`: dropped (not
//! stored, not forwarded), counted per peer, and rejected to gossipsub so the sender's
//! score falls like a forger's (a flood graylists it). Reconciliation still carries any
//! honest entry dropped here, since entries asked for are not limited.
//!
//! A sync `Push` is unsolicited too and draws on the same bucket: its first entries are
//! stored while tokens last, and the answer is `rate_limited` (the pusher's
//! reconciliation leaves the rest for later).

use libp2p::PeerId;
use libp2p::gossipsub::MessageAcceptance;
use tracing::warn;

use super::EventLoop;
use crate::p2p::protocol::{SyncRequest, SyncResponse};
use crate::sync::reconcile::RATE_LIMITED;
use crate::throttle::suppressed_note;

impl EventLoop {
    pub(super) fn over_rate(&mut self, peer: PeerId) -> MessageAcceptance {
        if let Some(held_back) = self.rate_warning.allow(std::time::Instant::now()) {
            warn!(
                "[P2P] peer {peer} sends gossiped entries faster than LATTICE_PEER_RATE: dropped ({} so far from it){}",
                self.rate.dropped(&peer),
                suppressed_note(held_back)
            );
        }
        MessageAcceptance::Reject
    }

    /// Cuts a `Push` from `peer` down to what its bucket allows; when anything was cut,
    /// the refusal to answer once the rest is stored.
    pub(super) fn limit_push(
        &mut self,
        peer: PeerId,
        request: &mut SyncRequest,
    ) -> Option<SyncResponse> {
        let SyncRequest::Push(msg) = request else {
            return None;
        };
        let now = std::time::Instant::now();
        let pushed = msg.entries.len();
        let taken = (0..pushed).filter(|_| self.rate.allow(peer, now)).count();
        if taken == pushed {
            return None;
        }
        msg.entries.truncate(taken);
        let dropped = pushed - taken;
        if let Some(held_back) = self.rate_warning.allow(now) {
            warn!(
                "[P2P] peer {peer} pushes entries faster than LATTICE_PEER_RATE: {dropped} of {pushed} dropped ({} so far from it){}",
                self.rate.dropped(&peer),
                suppressed_note(held_back)
            );
        }
        Some(SyncResponse::Error {
            kind: RATE_LIMITED.into(),
            message: format!(
                "{dropped} of {pushed} entries pushed were dropped over LATTICE_PEER_RATE; the first {taken} were taken"
            ),
        })
    }
}

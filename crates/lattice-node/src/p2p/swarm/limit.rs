//! What happens to a gossiped entry over its sender's `LATTICE_PEER_RATE`: dropped (not
//! stored, not forwarded), counted per peer, and rejected to gossipsub so the sender's
//! score falls like a forger's (a flood graylists it). Reconciliation still carries any
//! honest entry dropped here, since entries asked for are not limited.

use libp2p::PeerId;
use libp2p::gossipsub::MessageAcceptance;
use tracing::warn;

use super::EventLoop;
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
}

//! The swarm's side of redialing. When to dial whom is `sync::redial`'s (pure, over
//! any peer and address type); here the configured bootstrap addresses become its
//! (PeerId, Multiaddr) pairs, and the addresses a peer reports lose the unspecified
//! ones nobody can dial.

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

use super::P2pError;

pub(super) type Redial = crate::sync::redial::Redial<PeerId, Multiaddr>;

/// Every bootstrap address must end in `/p2p/<peer id>`.
pub(super) fn bootstrap_targets(
    bootstrap: &[Multiaddr],
) -> Result<Vec<(PeerId, Multiaddr)>, P2pError> {
    bootstrap
        .iter()
        .map(|addr| match addr.iter().last() {
            Some(Protocol::P2p(peer)) => Ok((peer, addr.clone())),
            _ => Err(P2pError::BootstrapWithoutPeerId(addr.clone())),
        })
        .collect()
}

/// The addresses worth redialing a peer at: not `0.0.0.0` or `::`.
pub(super) fn dialable(addrs: Vec<Multiaddr>) -> Vec<Multiaddr> {
    addrs
        .into_iter()
        .filter(|a| {
            !a.iter().any(|p| match p {
                Protocol::Ip4(ip) => ip.is_unspecified(),
                Protocol::Ip6(ip) => ip.is_unspecified(),
                _ => false,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_without_a_peer_id_is_refused() {
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        assert!(matches!(
            bootstrap_targets(&[addr]),
            Err(P2pError::BootstrapWithoutPeerId(_))
        ));
        let peer = PeerId::random();
        let with: Multiaddr = format!("/ip4/127.0.0.1/tcp/4001/p2p/{peer}")
            .parse()
            .unwrap();
        assert_eq!(
            bootstrap_targets(std::slice::from_ref(&with)).unwrap(),
            vec![(peer, with)]
        );
    }

    #[test]
    fn unspecified_addresses_are_not_redialed() {
        let listen: Multiaddr = "/ip4/127.0.0.1/tcp/4100".parse().unwrap();
        let any4: Multiaddr = "/ip4/0.0.0.0/tcp/4100".parse().unwrap();
        let any6: Multiaddr = "/ip6/::/tcp/4100".parse().unwrap();
        assert_eq!(dialable(vec![any4, listen.clone(), any6]), vec![listen]);
    }
}

//! QUIC, the pre-shared key's TCP-only rule, and a relay's circuit, on real swarms on
//! 127.0.0.1. Behind real NATs: `tests/nat.rs`.

use std::time::Duration;

use libp2p::multiaddr::Protocol;
use tokio_util::sync::CancellationToken;

use super::relay::{RelayConfig, spawn_relay};
use super::tests::{dial_addr, eventually, next_event, start_custom};
use super::*;
use crate::ledger::StoreOptions;

fn quic() -> Multiaddr {
    "/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_on_quic_sync_directly_and_status_says_quic() {
    let mut a = start_custom(41, |c| c.listen = vec![quic()]).await;
    let addr = dial_addr(&a).await;
    assert!(addr.iter().any(|p| p == Protocol::QuicV1), "{addr}");
    let mut b = start_custom(42, |c| {
        c.listen = vec![quic()];
        c.bootstrap = vec![addr];
    })
    .await;
    next_event(&mut a, |e| *e == P2pEvent::SyncPeers { count: 1 }).await;
    next_event(&mut b, |e| *e == P2pEvent::SyncPeers { count: 1 }).await;
    for (peer, other) in [(&a, &b), (&b, &a)] {
        let peers = peer.handle.peers().await;
        assert_eq!(peers.len(), 1);
        assert_eq!(peers[0].peer_id, other.handle.peer_id().to_string());
        assert_eq!(peers[0].transport, "quic");
        assert_eq!(peers[0].path, "direct");
        assert!(peers[0].sync_capable);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_pre_shared_key_the_node_stays_on_tcp_and_does_not_listen_on_quic() {
    let a = start_custom(43, |c| {
        c.psk = Some([7; 32]);
        c.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap(), quic()];
    })
    .await;
    let addrs = a.handle.listen_addrs().await;
    assert_eq!(addrs.len(), 1, "{addrs:?}");
    assert!(addrs[0].iter().any(|p| matches!(p, Protocol::Tcp(_))));
}

#[tokio::test]
async fn a_relay_address_without_a_peer_id_is_refused_with_its_kind() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let key = NodeKey::from_seed([44; 32]);
    let mut config = super::tests::config(&key, Vec::new());
    config.relays = vec!["/ip4/127.0.0.1/tcp/4001".parse().unwrap()];
    let err = spawn(config, store, CancellationToken::new())
        .err()
        .expect("refused");
    assert_eq!(err.kind(), "bad_relay");
    assert!(err.to_string().contains("/ip4/127.0.0.1/tcp/4001"), "{err}");
}

/// B reserves a slot on the relay; A knows B only by its circuit address. They meet
/// through the relay, and only a direct connection (hole punched: both are reachable on
/// loopback) makes B a sync peer of A. The relay itself never is one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_met_through_a_relay_counts_only_once_connected_directly() {
    let cancel = CancellationToken::new();
    let relay = spawn_relay(
        RelayConfig {
            key: NodeKey::from_seed([45; 32]),
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
            announce: Vec::new(),
            allow: None,
            psk: None,
            dial_timeout: Duration::from_secs(2),
            ping_interval: Duration::from_millis(200),
            peer_timeout: Duration::from_secs(2),
            autonat_global_only: true,
            ledger: None,
        },
        cancel.clone(),
    )
    .unwrap();
    let relay_addr = relay.listen_addrs().await.remove(0);
    let b = start_custom(46, |c| c.relays = vec![relay_addr.clone()]).await;
    let b_id = b.handle.peer_id();
    let circuit = relay_addr
        .clone()
        .with(Protocol::P2pCircuit)
        .with(Protocol::P2p(b_id));
    eventually("B listens through the relay", || async {
        b.handle
            .listen_addrs()
            .await
            .iter()
            .any(|a| a.iter().any(|p| p == Protocol::P2pCircuit))
    })
    .await;
    let mut a = start_custom(47, |c| c.bootstrap = vec![circuit]).await;
    let punched = next_event(&mut a, |e| matches!(e, P2pEvent::SyncPeers { count: 1 })).await;
    assert_eq!(punched, P2pEvent::SyncPeers { count: 1 });
    let peers = a.handle.peers().await;
    let to_b = peers
        .iter()
        .find(|p| p.peer_id == b_id.to_string())
        .expect("B is a peer of A");
    assert_eq!(to_b.path, "direct");
    assert!(to_b.sync_capable);
    let to_relay = peers
        .iter()
        .find(|p| p.peer_id == relay.peer_id.to_string())
        .expect("A is connected to the relay");
    assert!(!to_relay.sync_capable, "the relay is never a sync peer");
    cancel.cancel();
}

/// A relay that names a ledger serves its members only: a member reserves a slot; a
/// stranger's reservation is refused, and so is its circuit to the member, so it never
/// reaches the member through the relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_naming_a_ledger_grants_members_slots_and_refuses_strangers_reservations_and_circuits()
 {
    let member = NodeKey::from_seed([51; 32]);
    let genesis = crate::ledger::Genesis::sign(
        &NodeKey::from_seed([53; 32]),
        "relayed",
        false,
        &[member.public_bytes()],
        &[],
        1,
    )
    .unwrap();
    let cancel = CancellationToken::new();
    let relay = spawn_relay(
        RelayConfig {
            key: NodeKey::from_seed([50; 32]),
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
            announce: Vec::new(),
            allow: None,
            psk: None,
            dial_timeout: Duration::from_secs(2),
            ping_interval: Duration::from_millis(200),
            peer_timeout: Duration::from_secs(2),
            autonat_global_only: true,
            ledger: Some(genesis),
        },
        cancel.clone(),
    )
    .unwrap();
    let relay_addr = relay.listen_addrs().await.remove(0);
    let has_circuit = |addrs: &[Multiaddr]| {
        addrs
            .iter()
            .any(|a| a.iter().any(|p| p == Protocol::P2pCircuit))
    };
    let b = start_custom(51, |c| c.relays = vec![relay_addr.clone()]).await;
    eventually("the member reserves a slot", || async {
        has_circuit(&b.handle.listen_addrs().await)
    })
    .await;
    let circuit = relay_addr
        .clone()
        .with(Protocol::P2pCircuit)
        .with(Protocol::P2p(b.handle.peer_id()));
    let stranger = start_custom(52, |c| {
        c.relays = vec![relay_addr.clone()];
        c.bootstrap = vec![circuit];
    })
    .await;
    eventually(
        "the stranger's reservation and circuit are refused",
        || async {
            let c = relay.counts();
            c.reservations_denied >= 1 && c.circuits_denied >= 1
        },
    )
    .await;
    assert!(!has_circuit(&stranger.handle.listen_addrs().await));
    let b_id = b.handle.peer_id().to_string();
    assert!(
        !stranger
            .handle
            .peers()
            .await
            .iter()
            .any(|p| p.peer_id == b_id),
        "the stranger never reached the member"
    );
    assert_eq!(relay.counts().reservations_granted, 1, "only the member's");
    cancel.cancel();
}

//! A peer counts only while it answers: real swarms with a faulting TCP relay between
//! them (silent drop, latency, a link that goes down), foreign swarms that join the
//! gossip topic without syncing, and dials that hang. Every wait has a deadline.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{StreamProtocol, gossipsub, identify, noise, tcp, yamux};
use tokio::time::Instant;

use super::protocol::{gossip_topic, sync_protocol};
use super::test_relay::{Mode, Relay};
use super::tests::{
    DEADLINE, TestPeer, dial_addr, entry, eventually, in_mesh, next_event, start_custom,
};
use super::*;
use crate::ledger::DEFAULT_MAX_PAYLOAD;
use crate::ledger::Genesis;
use crate::sync::reconcile::reconcile;

const PING: Duration = Duration::from_millis(100);

fn socket_of(addr: &Multiaddr) -> SocketAddr {
    let mut ip = None;
    let mut port = None;
    for p in addr.iter() {
        match p {
            Protocol::Ip4(i) => ip = Some(i),
            Protocol::Tcp(t) => port = Some(t),
            _ => {}
        }
    }
    SocketAddr::from((ip.expect("an ip4 address"), port.expect("a tcp port")))
}

fn via(relay: &Relay, peer: PeerId) -> Multiaddr {
    let a = relay.addr();
    format!("/ip4/{}/tcp/{}/p2p/{peer}", a.ip(), a.port())
        .parse()
        .unwrap()
}

/// A listening, and B (which does not listen, so A can reach it only through the
/// connection B made) bootstrapped to A through a relay; both count one sync peer.
async fn relayed_pair(peer_timeout: Duration) -> (TestPeer, TestPeer, Relay) {
    let mut a = start_custom(1, |c| {
        c.peer_timeout = peer_timeout;
        c.ping_interval = PING;
    })
    .await;
    let relay = Relay::start(socket_of(&dial_addr(&a).await)).await;
    let boot = via(&relay, a.handle.peer_id());
    let mut b = start_custom(2, |c| {
        c.listen = Vec::new();
        c.bootstrap = vec![boot];
        c.peer_timeout = peer_timeout;
        c.ping_interval = PING;
    })
    .await;
    next_event(&mut a, |e| *e == P2pEvent::SyncPeers { count: 1 }).await;
    next_event(&mut b, |e| *e == P2pEvent::SyncPeers { count: 1 }).await;
    (a, b, relay)
}

async fn counts(peer: &TestPeer) -> usize {
    peer.handle
        .peers()
        .await
        .iter()
        .filter(|p| p.sync_capable)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_stops_counting_within_the_peer_timeout_is_disconnected_and_returns_after_the_heal()
 {
    let timeout = Duration::from_millis(800);
    let (mut a, mut b, relay) = relayed_pair(timeout).await;

    relay.set(Mode::Blackhole);
    let cut = Instant::now();
    // Each side decides by itself: nothing tells it the link is gone.
    let bound = timeout + PING + Duration::from_secs(2);
    for peer in [&mut a, &mut b] {
        let wait = next_event(peer, |e| *e == P2pEvent::SyncPeers { count: 0 });
        tokio::time::timeout(bound, wait)
            .await
            .expect("the silent peer stopped counting within the peer timeout");
    }
    assert!(
        cut.elapsed() >= timeout - PING,
        "no peer is dropped before it has been silent for the peer timeout"
    );
    assert!(a.handle.peers().await.is_empty());
    assert!(b.handle.peers().await.is_empty());
    eventually("the silent connection is closed", || async {
        relay.open() == 0
    })
    .await;

    relay.set(Mode::Pass);
    next_event(&mut a, |e| *e == P2pEvent::SyncPeers { count: 1 }).await;
    next_event(&mut b, |e| *e == P2pEvent::SyncPeers { count: 1 }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_peer_that_answers_keeps_counting_and_syncs() {
    let timeout = Duration::from_secs(3);
    let (mut a, b, relay) = relayed_pair(timeout).await;

    // 200 ms each way: a 400 ms round trip, twice the 200 ms.
    relay.set(Mode::Delay(Duration::from_millis(200)));
    let b_id = b.handle.peer_id().to_string();
    eventually("a ping round trip shows the delay", || async {
        a.handle
            .peers()
            .await
            .iter()
            .any(|p| p.peer_id == b_id && p.rtt_ms.is_some_and(|r| r >= 400.0))
    })
    .await;

    let e = entry(&b.key, 1);
    b.store.append(e.clone()).await.unwrap();
    let report = reconcile(
        &a.store,
        &a.handle.remote(b.handle.peer_id()),
        DEFAULT_MAX_PAYLOAD,
    )
    .await
    .expect("reconciliation works over the slow link");
    assert_eq!(report.pulled, 1);

    // Longer than the peer timeout: a peer that answers slowly is never dropped.
    let watch_until = Instant::now() + timeout + Duration::from_secs(1);
    while Instant::now() < watch_until {
        while let Ok(event) = a.events.try_recv() {
            assert_ne!(event, P2pEvent::SyncPeers { count: 0 }, "a false fallback");
        }
        assert_eq!(counts(&a).await, 1);
        assert_eq!(counts(&b).await, 1);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_sync_peer_is_redialed_where_it_listens_not_only_bootstrap_peers() {
    // A has no bootstrap peers; B reaches A only through the relay, which then goes
    // down for good. Only A's redial (to where B said it listens) can reconnect them.
    let mut a = start_custom(1, |c| c.ping_interval = PING).await;
    let relay = Relay::start(socket_of(&dial_addr(&a).await)).await;
    let boot = via(&relay, a.handle.peer_id());
    let mut b = start_custom(2, |c| {
        c.bootstrap = vec![boot];
        c.ping_interval = PING;
    })
    .await;
    let b_listen = b.handle.listen_addrs().await[0].to_string();
    next_event(&mut a, |e| *e == P2pEvent::SyncPeers { count: 1 }).await;
    next_event(&mut b, |e| *e == P2pEvent::SyncPeers { count: 1 }).await;

    relay.set(Mode::Down);
    next_event(&mut a, |e| *e == P2pEvent::SyncPeers { count: 0 }).await;
    next_event(&mut a, |e| *e == P2pEvent::SyncPeers { count: 1 }).await;
    next_event(&mut b, |e| *e == P2pEvent::SyncPeers { count: 1 }).await;
    let peers = a.handle.peers().await;
    assert_eq!(peers.len(), 1);
    let address = peers[0].address.clone().unwrap();
    assert!(address.starts_with(&b_listen), "A dialed B: {address}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dial_that_hangs_in_the_handshake_gives_up_at_the_dial_timeout_and_is_retried() {
    let target = start_custom(1, |_| {}).await;
    let relay = Relay::start(socket_of(&dial_addr(&target).await)).await;
    relay.set(Mode::Blackhole);
    // TCP connects to the relay, but no handshake byte ever crosses it.
    let _dialer = start_custom(2, |c| {
        c.bootstrap = vec![via(&relay, target.handle.peer_id())];
        c.dial_timeout = Duration::from_millis(300);
        c.redial_min = Duration::from_millis(50);
        c.redial_max = Duration::from_millis(100);
    })
    .await;
    // With libp2p's 10 s default, the first dial would still hang by then.
    eventually(
        "the hung dial timed out and was tried again, twice",
        || async { relay.accepted() >= 3 },
    )
    .await;
}

#[derive(NetworkBehaviour)]
struct GossipOnly {
    identify: identify::Behaviour,
    gossipsub: gossipsub::Behaviour,
}

#[derive(NetworkBehaviour)]
struct MuteSync {
    identify: identify::Behaviour,
    gossipsub: gossipsub::Behaviour,
    sync: request_response::json::Behaviour<serde_json::Value, serde_json::Value>,
}

fn foreign_gossip(key: &libp2p::identity::Keypair) -> gossipsub::Behaviour {
    let config = gossipsub::ConfigBuilder::default()
        .heartbeat_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    let mut g =
        gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Signed(key.clone()), config)
            .unwrap();
    g.subscribe(&gossipsub::IdentTopic::new(gossip_topic(
        &Genesis::development().id(),
    )))
    .unwrap();
    g
}

fn foreign_identify(key: &libp2p::identity::Keypair) -> identify::Behaviour {
    identify::Behaviour::new(identify::Config::new("/ipfs/0.1.0".into(), key.public()))
}

fn foreign_swarm<B: NetworkBehaviour>(
    make: impl FnOnce(&libp2p::identity::Keypair) -> B,
) -> libp2p::Swarm<B> {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|key| make(key))
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_peer_subscribed_to_the_topic_without_the_sync_protocol_does_not_count() {
    let mut a = start_custom(1, |_| {}).await;
    let mut foreign = foreign_swarm(|key| GossipOnly {
        identify: foreign_identify(key),
        gossipsub: foreign_gossip(key),
    });
    let foreign_id = *foreign.local_peer_id();
    foreign.dial(dial_addr(&a).await).unwrap();
    let task = tokio::spawn(async move {
        loop {
            foreign.select_next_some().await;
        }
    });

    // It is connected, subscribed and grafted into A's mesh: all gossip can offer.
    eventually("the foreign peer is in A's gossip mesh", || {
        in_mesh(&a, foreign_id)
    })
    .await;
    let peers = a.handle.peers().await;
    assert_eq!(peers.len(), 1);
    assert!(!peers[0].sync_capable, "{peers:?}");
    while let Ok(event) = a.events.try_recv() {
        assert!(
            !matches!(event, P2pEvent::SyncPeers { count: 1.. }),
            "{event:?}"
        );
    }
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_claims_the_sync_protocol_but_never_answers_does_not_count() {
    let mut a = start_custom(1, |c| {
        c.request_timeout = Duration::from_millis(300);
        c.ping_interval = PING;
    })
    .await;
    let mut foreign = foreign_swarm(|key| MuteSync {
        identify: foreign_identify(key),
        gossipsub: foreign_gossip(key),
        sync: request_response::json::Behaviour::new(
            [(
                StreamProtocol::try_from_owned(sync_protocol(&Genesis::development().id()))
                    .unwrap(),
                ProtocolSupport::Full,
            )],
            request_response::Config::default(),
        ),
    });
    foreign.dial(dial_addr(&a).await).unwrap();
    let (asked_tx, mut asked) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        // Holding the channels keeps every request open, unanswered.
        let mut held = Vec::new();
        loop {
            if let SwarmEvent::Behaviour(MuteSyncEvent::Sync(request_response::Event::Message {
                message: request_response::Message::Request { channel, .. },
                ..
            })) = foreign.select_next_some().await
            {
                held.push(channel);
                let _ = asked_tx.send(held.len());
            }
        }
    });

    // Asked, left unanswered past the request timeout, and asked again.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let n = tokio::time::timeout_at(deadline, asked.recv())
            .await
            .expect("A asks the peer whether it answers")
            .unwrap();
        if n >= 2 {
            break;
        }
    }
    let peers = a.handle.peers().await;
    assert_eq!(peers.len(), 1);
    assert!(!peers[0].sync_capable, "{peers:?}");
    while let Ok(event) = a.events.try_recv() {
        assert!(
            !matches!(event, P2pEvent::SyncPeers { count: 1.. }),
            "{event:?}"
        );
    }
    task.abort();
}

//! The swarm's transports: TCP and QUIC, DNS names in multiaddrs, and the relay client's
//! circuits, all under Noise + Yamux (QUIC brings its own TLS and multiplexing). With a
//! pre-shared key the node stays on TCP, wrapped in the key before Noise: QUIC cannot
//! carry one.

use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{Swarm, noise, relay, tcp, yamux};

use crate::p2p::P2pError;

/// Long enough to mean "never": idle sync peers must not be dropped. Dead ones are
/// found by silence (see `liveness`), not by idleness.
const IDLE_TIMEOUT: Duration = Duration::from_secs(u64::MAX / 4);

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn build_error(e: impl std::fmt::Display) -> P2pError {
    P2pError::Build(e.to_string())
}

/// What every swarm of ours (node and relay) is built from.
pub(crate) struct TransportOptions<'a> {
    pub key: &'a Keypair,
    pub psk: Option<[u8; 32]>,
    /// `with_connection_timeout` bounds a whole dial (connect plus upgrades) and inbound
    /// upgrades; libp2p's builder defaults it to 10 s.
    pub dial_timeout: Duration,
}

/// Builds a swarm whose behaviour `make` creates from the key and the relay client
/// (which the transport and the behaviour share; a relay server simply drops it).
pub(crate) fn build<B>(
    options: &TransportOptions<'_>,
    make: impl FnOnce(&Keypair, relay::client::Behaviour) -> Result<B, BoxError>,
) -> Result<Swarm<B>, P2pError>
where
    B: NetworkBehaviour,
{
    let builder = libp2p::SwarmBuilder::with_existing_identity(options.key.clone()).with_tokio();
    let tcp_config = || tcp::Config::default().nodelay(true);
    let swarm = match options.psk {
        None => builder
            .with_tcp(tcp_config(), noise::Config::new, yamux::Config::default)
            .map_err(build_error)?
            .with_quic_config(|mut c| {
                c.handshake_timeout = options.dial_timeout;
                c
            })
            .with_dns()
            .map_err(build_error)?
            .with_relay_client(noise::Config::new, yamux::Config::default)
            .map_err(build_error)?
            .with_behaviour(make)
            .map_err(build_error)?
            .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_TIMEOUT))
            .with_connection_timeout(options.dial_timeout)
            .build(),
        // A private network: the pre-shared key wraps TCP before Noise even starts,
        // so a node without it cannot complete (or learn anything from) a handshake.
        // Circuits run inside connections to the relay, which are wrapped the same way.
        Some(psk) => builder
            .with_other_transport(|key| {
                use libp2p::Transport as _;
                let noise = noise::Config::new(key)?;
                let pnet = libp2p::pnet::PnetConfig::new(libp2p::pnet::PreSharedKey::new(psk));
                Ok::<_, BoxError>(
                    tcp::tokio::Transport::new(tcp_config())
                        .and_then(move |socket, _| pnet.handshake(socket))
                        .upgrade(libp2p::core::upgrade::Version::V1Lazy)
                        .authenticate(noise)
                        .multiplex(yamux::Config::default()),
                )
            })
            .map_err(build_error)?
            .with_dns()
            .map_err(build_error)?
            .with_relay_client(noise::Config::new, yamux::Config::default)
            .map_err(build_error)?
            .with_behaviour(make)
            .map_err(build_error)?
            .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_TIMEOUT))
            .with_connection_timeout(options.dial_timeout)
            .build(),
    };
    Ok(swarm)
}

/// Whether `addr` is a QUIC address (which a node with a pre-shared key cannot serve).
pub(crate) fn is_quic(addr: &libp2p::Multiaddr) -> bool {
    addr.iter()
        .any(|p| matches!(p, libp2p::multiaddr::Protocol::QuicV1))
}

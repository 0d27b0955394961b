//! The swarm's transports: TCP and QUIC, DNS names in multiaddrs, and the relay client's
//! circuits, all under Noise + Yamux (QUIC brings its own TLS and multiplexing). With a
//! pre-shared key the node stays on TCP, wrapped in the key before Noise: QUIC cannot
//! carry one.

use std::time::Duration;

use libp2p::dns::{ResolverConfig, ResolverOpts};
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

/// The system's resolver configuration; where none can be read (a container or a minimal
/// server without `/etc/resolv.conf`), one without name servers and the reason, so the node
/// still starts: names in multiaddrs (`/dns4/...`) then fail to resolve, IP addresses work.
fn dns_config() -> (ResolverConfig, ResolverOpts) {
    #[cfg(unix)]
    let read = std::fs::read("/etc/resolv.conf")
        .map_err(|e| format!("/etc/resolv.conf: {e}"))
        .and_then(|text| {
            hickory_resolver::system_conf::parse_resolv_conf(text)
                .map_err(|e| format!("/etc/resolv.conf: {e}"))
        });
    #[cfg(not(unix))]
    let read = hickory_resolver::system_conf::read_system_conf().map_err(|e| e.to_string());
    resolver_or_none(read)
}

fn resolver_or_none(
    read: Result<(ResolverConfig, ResolverOpts), String>,
) -> (ResolverConfig, ResolverOpts) {
    read.unwrap_or_else(|why| {
        tracing::warn!(
            "[P2P] no DNS resolver configuration ({why}): addresses with names (/dns4/, /dns6/, /dnsaddr/) cannot be dialled; IP addresses work"
        );
        (ResolverConfig::default(), ResolverOpts::default())
    })
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
    build_with_dns(options, dns_config(), make)
}

fn build_with_dns<B>(
    options: &TransportOptions<'_>,
    dns: (ResolverConfig, ResolverOpts),
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
            .with_dns_config(dns.0, dns.1)
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
            .with_dns_config(dns.0, dns.1)
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

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use libp2p::swarm::{SwarmEvent, dummy};

    #[test]
    fn an_unreadable_resolver_configuration_gives_a_resolver_without_name_servers() {
        let (cfg, _) = resolver_or_none(Err("/etc/resolv.conf: No such file or directory".into()));
        assert!(cfg.name_servers.is_empty());
    }

    #[tokio::test]
    async fn a_node_without_a_resolver_configuration_starts_and_says_why_a_name_cannot_be_dialled()
    {
        let key = Keypair::generate_ed25519();
        let options = TransportOptions {
            key: &key,
            psk: None,
            dial_timeout: Duration::from_secs(5),
        };
        let none = resolver_or_none(Err("/etc/resolv.conf: No such file or directory".into()));
        let mut swarm = build_with_dns(&options, none, |_, _| Ok(dummy::Behaviour))
            .expect("a swarm without name servers builds");
        swarm
            .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
            .expect("it listens on IP addresses");
        swarm
            .dial(
                "/dns4/lattice.invalid/tcp/7600"
                    .parse::<libp2p::Multiaddr>()
                    .unwrap(),
            )
            .expect("the dial starts");
        let failed = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                if let SwarmEvent::OutgoingConnectionError { error, .. } =
                    swarm.select_next_some().await
                {
                    return error.to_string();
                }
            }
        })
        .await
        .expect("the dial of a name fails (no name server), it does not hang");
        assert!(!failed.is_empty());
    }
}

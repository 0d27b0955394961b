//! The swarm's transport: TCP, Noise, Yamux (wrapped in a pre-shared key when the
//! network is private), with a dial timeout of our choosing.

use std::time::Duration;

use libp2p::{Swarm, noise, tcp, yamux};

use crate::ledger::LedgerId;
use crate::p2p::behaviour::Behaviour;
use crate::p2p::{P2pConfig, P2pError};

/// Long enough to mean "never": idle sync peers must not be dropped. Dead ones are
/// found by silence (see `liveness`), not by idleness.
const IDLE_TIMEOUT: Duration = Duration::from_secs(u64::MAX / 4);

fn build_error(e: impl std::fmt::Display) -> P2pError {
    P2pError::Build(e.to_string())
}

/// `with_connection_timeout` bounds a whole dial (connect plus upgrades) and inbound
/// upgrades; libp2p's builder defaults it to 10 s.
pub(super) fn build(config: &P2pConfig, ledger: &LedgerId) -> Result<Swarm<Behaviour>, P2pError> {
    let builder = libp2p::SwarmBuilder::with_existing_identity(config.key.to_libp2p()).with_tokio();
    let swarm = match config.psk {
        None => builder
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(build_error)?
            .with_behaviour(|key| Behaviour::new(key, config, ledger))
            .map_err(build_error)?
            .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_TIMEOUT))
            .with_connection_timeout(config.dial_timeout)
            .build(),
        // A private network: the pre-shared key wraps TCP before Noise even starts,
        // so a node without it cannot complete (or learn anything from) a handshake.
        Some(psk) => builder
            .with_other_transport(|key| {
                use libp2p::Transport as _;
                let noise = noise::Config::new(key)?;
                let pnet = libp2p::pnet::PnetConfig::new(libp2p::pnet::PreSharedKey::new(psk));
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                    tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
                        .and_then(move |socket, _| pnet.handshake(socket))
                        .upgrade(libp2p::core::upgrade::Version::V1Lazy)
                        .authenticate(noise)
                        .multiplex(yamux::Config::default()),
                )
            })
            .map_err(build_error)?
            .with_behaviour(|key| Behaviour::new(key, config, ledger))
            .map_err(build_error)?
            .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_TIMEOUT))
            .with_connection_timeout(config.dial_timeout)
            .build(),
    };
    Ok(swarm)
}

//! Lattice: a signed, Merkle-rooted ledger kept identical on many machines.
//!
//! This crate is the node's core and knows nothing of windows: configuration, identity,
//! the ledger (entries, Merkle tree, durable store) and, in later modules, the two sync
//! lungs. The `lattice` binary and the desktop shell are faces over it.

pub mod api;
pub mod config;
pub mod demo;
pub mod envfile;
pub mod http;
pub mod identity;
pub mod ledger;
pub mod metrics;
pub mod node;
pub mod p2p;

pub mod status;
pub mod sync;
pub mod throttle;
pub mod time;

pub use config::{Config, ConfigError, Mode, Overrides};
pub use identity::NodeKey;

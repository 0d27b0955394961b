//! Sync: the heartbeat that decides which lung breathes, and the reconciliation both
//! lungs share.

pub mod liveness;
pub mod local;
pub mod lungs;
mod mode;
pub mod reconcile;
pub mod reconcile_v2;
pub mod redial;
pub mod riblt;
pub mod schedule;
#[cfg(test)]
pub(crate) mod sim;
pub mod sketch_cache;
pub mod states;
pub mod varint;

pub use mode::Mode;

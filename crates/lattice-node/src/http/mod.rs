//! The HTTP lung's transport: the neighbour client ([`client`], its SSE reader [`sse`]),
//! the reconciliation [`remote`] over it, and the [`wire`] contract (paths, answers)
//! that the API face (`crate::api`) serves. The face and the lung share only the
//! contract.

pub mod client;
pub mod remote;
pub mod sse;
pub mod wire;

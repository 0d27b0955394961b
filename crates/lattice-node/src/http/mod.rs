//! The HTTP lung and API: the neighbour client and the axum server.

pub mod client;
pub mod remote;
pub mod server;
pub mod sse;

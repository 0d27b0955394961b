//! The HTTP wire contract both ends share: the paths the API face serves and the HTTP
//! lung asks, and the answers that are not the ledger's own types.

/// Paths of the API, relative to a node's base URL.
pub mod paths {
    pub const STATE: &str = "api/lattice/state";
    pub const CHILDREN: &str = "api/lattice/reconcile/children";
    pub const IDS: &str = "api/lattice/reconcile/ids";
    pub const FETCH: &str = "api/lattice/reconcile/fetch";
    pub const PUSH: &str = "api/lattice/reconcile/push";
    /// v2 (binary): the first round trip (root compare, first symbols).
    pub const HELLO: &str = "api/lattice/reconcile/v2/hello";
    /// v2 (binary): a page of coded symbols.
    pub const SKETCH: &str = "api/lattice/reconcile/v2/sketch";
    /// v2 (binary request, JSON entries): entries by short id.
    pub const FETCH_SHORT: &str = "api/lattice/reconcile/v2/fetch";
    pub const EVENTS: &str = "api/lattice/events";
    pub const GENESIS: &str = "api/lattice/genesis";
}

/// `GET /api/lattice/genesis`: the record a node without it fetches and checks against
/// its `LATTICE_LEDGER` (the id here is informational; the record's own hash decides).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct GenesisAnswer {
    pub ledger: crate::ledger::LedgerId,
    pub genesis: String,
}

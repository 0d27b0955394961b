//! The HTTP lung's side of reconciliation: a neighbour's API as a [`Remote`].

use crate::http::client::{ClientError, NeighborClient};
use crate::sync::reconcile::{
    ChildrenRequest, ChildrenResponse, EntriesMessage, FetchRequest, IdsRequest, IdsResponse,
    LedgerState, PushResponse, Remote, TransportError,
};

/// Paths of the reconciliation API, relative to a node's base URL.
pub mod paths {
    pub const STATE: &str = "api/lattice/state";
    pub const CHILDREN: &str = "api/lattice/reconcile/children";
    pub const IDS: &str = "api/lattice/reconcile/ids";
    pub const FETCH: &str = "api/lattice/reconcile/fetch";
    pub const PUSH: &str = "api/lattice/reconcile/push";
    pub const EVENTS: &str = "api/lattice/events";
}

impl From<ClientError> for TransportError {
    fn from(e: ClientError) -> Self {
        TransportError {
            kind: e.kind().to_string(),
            message: e.to_string(),
        }
    }
}

impl Remote for NeighborClient {
    async fn state(&self) -> Result<LedgerState, TransportError> {
        Ok(self.get_json(paths::STATE, &[]).await?)
    }

    async fn children(&self, req: &ChildrenRequest) -> Result<ChildrenResponse, TransportError> {
        Ok(self.post_json(paths::CHILDREN, req).await?)
    }

    async fn ids(&self, req: &IdsRequest) -> Result<IdsResponse, TransportError> {
        Ok(self.post_json(paths::IDS, req).await?)
    }

    async fn fetch(&self, req: &FetchRequest) -> Result<EntriesMessage, TransportError> {
        Ok(self.post_json(paths::FETCH, req).await?)
    }

    async fn push(&self, req: &EntriesMessage) -> Result<PushResponse, TransportError> {
        Ok(self.post_json(paths::PUSH, req).await?)
    }

    fn bytes(&self) -> (u64, u64) {
        (self.bytes_sent(), self.bytes_received())
    }
}

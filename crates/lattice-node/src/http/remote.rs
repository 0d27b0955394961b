//! The HTTP lung's side of reconciliation: a neighbour's API as a [`Remote`].

use crate::http::client::{ClientError, NeighborClient};
use crate::http::wire::paths;
use crate::sync::reconcile::{
    ChildrenRequest, ChildrenResponse, EntriesMessage, FetchRequest, IdsRequest, IdsResponse,
    LedgerState, PushResponse, RATE_LIMITED, Remote, TransportError,
};
use crate::sync::reconcile_v2::{HelloRequest, ShortFetchRequest, SketchRequest};

impl From<ClientError> for TransportError {
    fn from(e: ClientError) -> Self {
        TransportError {
            kind: e.kind().to_string(),
            message: e.to_string(),
        }
    }
}

/// Every reconciliation request may be sent twice: they are reads, and a push of
/// content-addressed entries stores nothing twice.
impl Remote for NeighborClient {
    async fn state(&self) -> Result<LedgerState, TransportError> {
        // Conditional: an unchanged neighbour answers 304 and costs no body.
        Ok(self.get_json_revalidated(paths::STATE).await?.value)
    }

    async fn children(&self, req: &ChildrenRequest) -> Result<ChildrenResponse, TransportError> {
        Ok(self.post_json_idempotent(paths::CHILDREN, req).await?)
    }

    async fn ids(&self, req: &IdsRequest) -> Result<IdsResponse, TransportError> {
        Ok(self.post_json_idempotent(paths::IDS, req).await?)
    }

    async fn fetch(&self, req: &FetchRequest) -> Result<EntriesMessage, TransportError> {
        Ok(self.post_json_idempotent(paths::FETCH, req).await?)
    }

    async fn push(&self, req: &EntriesMessage) -> Result<PushResponse, TransportError> {
        match self.post_json_idempotent(paths::PUSH, req).await {
            // Told apart, so the reconciliation stops pushing instead of failing.
            Err(ClientError::Status {
                status: 429,
                kind: Some(kind),
                message,
            }) if kind == RATE_LIMITED => Err(TransportError {
                kind,
                message: format!("the neighbour limits our pushes: {message}"),
            }),
            answer => Ok(answer?),
        }
    }

    async fn hello(&self, req: &HelloRequest) -> Result<Vec<u8>, TransportError> {
        match self
            .post_bytes_idempotent(
                paths::HELLO,
                req.encode(),
                crate::http::client::OCTET_STREAM,
            )
            .await
        {
            // A node older than the hello has no such route: its state answer is asked
            // for instead, and says which versions it speaks.
            Err(ClientError::Status {
                status: 404 | 405, ..
            }) => Err(TransportError::v2_unsupported()),
            // Whatever answers a binary hello with another type (HTML, JSON) does not
            // speak it either: its state answer is asked for, and says what is wrong.
            Err(ClientError::NotJson { .. }) => Err(TransportError::v2_unsupported()),
            answer => Ok(answer?),
        }
    }

    async fn sketch(&self, req: &SketchRequest) -> Result<Vec<u8>, TransportError> {
        Ok(self
            .post_bytes_idempotent(
                paths::SKETCH,
                req.encode(),
                crate::http::client::OCTET_STREAM,
            )
            .await?)
    }

    async fn fetch_short(&self, req: &ShortFetchRequest) -> Result<EntriesMessage, TransportError> {
        Ok(self
            .post_bytes_for_json(paths::FETCH_SHORT, req.encode())
            .await?)
    }

    fn bytes(&self) -> (u64, u64) {
        (self.bytes_sent(), self.bytes_received())
    }
}

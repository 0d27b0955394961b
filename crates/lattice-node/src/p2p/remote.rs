//! The P2P lung's side of reconciliation: one peer's sync protocol as a [`Remote`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use libp2p::PeerId;
use tokio::sync::{mpsc, oneshot};

use super::protocol::{Binary, SyncRequest, SyncResponse};
use super::swarm::Command;
use super::sync_codec::{request_len, response_len};
use crate::sync::reconcile::{
    ChildrenRequest, ChildrenResponse, EntriesMessage, FetchRequest, IdsRequest, IdsResponse,
    LedgerState, PushResponse, Remote, TransportError,
};
use crate::sync::reconcile_v2::{HelloRequest, ShortFetchRequest, SketchRequest};

/// A [`Remote`] over the request-response protocol to one peer. Each method is one round
/// trip through the swarm task. Byte counts are each request and response as encoded
/// under the sync protocol the peer speaks (binary once its hello answered, JSON
/// otherwise), whatever the transport framing.
#[derive(Clone)]
pub struct P2pRemote {
    commands: mpsc::Sender<Command>,
    peer: PeerId,
    sent: Arc<AtomicU64>,
    received: Arc<AtomicU64>,
    /// Whether the peer answered a hello, so speaks the binary protocol.
    binary: Arc<AtomicBool>,
}

fn stopped() -> TransportError {
    TransportError {
        kind: "p2p_stopped".into(),
        message: "the P2P swarm is not running".into(),
    }
}

fn unexpected(asked: &str, got: &SyncResponse) -> TransportError {
    TransportError {
        kind: "protocol".into(),
        message: format!("asked for {asked}, the peer answered {}", got.name()),
    }
}

impl P2pRemote {
    pub(super) fn new(commands: mpsc::Sender<Command>, peer: PeerId) -> Self {
        Self {
            commands,
            peer,
            sent: Arc::default(),
            received: Arc::default(),
            binary: Arc::default(),
        }
    }

    async fn call(&self, request: SyncRequest) -> Result<SyncResponse, TransportError> {
        // A hello travels only under the binary protocol.
        let binary =
            self.binary.load(Ordering::Relaxed) || matches!(request, SyncRequest::Hello(_));
        let request_bytes = request_len(&request, binary);
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Request {
                peer: self.peer,
                request,
                reply,
            })
            .await
            .map_err(|_| stopped())?;
        let response = answer.await.map_err(|_| stopped())??;
        // Counted once answered: a hello an older peer cannot take sent nothing.
        self.sent.fetch_add(request_bytes, Ordering::Relaxed);
        self.received
            .fetch_add(response_len(&response, binary), Ordering::Relaxed);
        match response {
            SyncResponse::Error { kind, message } => Err(TransportError { kind, message }),
            other => Ok(other),
        }
    }
}

impl Remote for P2pRemote {
    async fn state(&self) -> Result<LedgerState, TransportError> {
        match self.call(SyncRequest::State).await? {
            SyncResponse::State(s) => Ok(s),
            other => Err(unexpected("state", &other)),
        }
    }

    async fn children(&self, req: &ChildrenRequest) -> Result<ChildrenResponse, TransportError> {
        match self.call(SyncRequest::Children(req.clone())).await? {
            SyncResponse::Children(c) => Ok(c),
            other => Err(unexpected("children", &other)),
        }
    }

    async fn ids(&self, req: &IdsRequest) -> Result<IdsResponse, TransportError> {
        match self.call(SyncRequest::Ids(req.clone())).await? {
            SyncResponse::Ids(i) => Ok(i),
            other => Err(unexpected("ids", &other)),
        }
    }

    async fn fetch(&self, req: &FetchRequest) -> Result<EntriesMessage, TransportError> {
        match self.call(SyncRequest::Fetch(req.clone())).await? {
            SyncResponse::Entries(e) => Ok(e),
            other => Err(unexpected("entries", &other)),
        }
    }

    async fn push(&self, req: &EntriesMessage) -> Result<PushResponse, TransportError> {
        let msg = EntriesMessage {
            entries: req.entries.clone(),
        };
        match self.call(SyncRequest::Push(msg)).await? {
            SyncResponse::Pushed(p) => Ok(p),
            other => Err(unexpected("pushed", &other)),
        }
    }

    async fn hello(&self, req: &HelloRequest) -> Result<Vec<u8>, TransportError> {
        match self.call(SyncRequest::Hello(Binary(req.encode()))).await? {
            SyncResponse::Hello(Binary(answer)) => {
                self.binary.store(true, Ordering::Relaxed);
                Ok(answer)
            }
            other => Err(unexpected("hello", &other)),
        }
    }

    async fn sketch(&self, req: &SketchRequest) -> Result<Vec<u8>, TransportError> {
        match self.call(SyncRequest::Sketch(Binary(req.encode()))).await? {
            SyncResponse::Sketch(Binary(page)) => Ok(page),
            other => Err(unexpected("sketch", &other)),
        }
    }

    async fn fetch_short(&self, req: &ShortFetchRequest) -> Result<EntriesMessage, TransportError> {
        match self
            .call(SyncRequest::FetchShort(Binary(req.encode())))
            .await?
        {
            SyncResponse::Entries(e) => Ok(e),
            other => Err(unexpected("entries", &other)),
        }
    }

    fn bytes(&self) -> (u64, u64) {
        (
            self.sent.load(Ordering::Relaxed),
            self.received.load(Ordering::Relaxed),
        )
    }
}

//! The other side of a Lattice v1 or v2 reconciliation, answered in process but encoded byte
//! for byte as the HTTP lung carries it: the client's JSON request bodies
//! (`serde_json::to_vec`), the server's answers (`axum::Json` over a `serde_json::Value`
//! for children, ids and push; the raw entries text for fetch; the state as the `state`
//! route writes it; v2's binary bodies as they are), each decoded again on the other side. Bytes are message bodies and
//! one request is one round trip, as the node's own sync report counts them; a test
//! (`tests/http_parity.rs`) checks the counts against a real node over a real socket.

use std::sync::Mutex;

use lattice_node::ledger::Store;
use lattice_node::sync::reconcile::{
    ChildrenRequest, ChildrenResponse, EntriesMessage, FetchRequest, IdsRequest, IdsResponse,
    LedgerState, PushResponse, Remote, TransportError, answer,
};
use lattice_node::sync::reconcile_v2::{self, HelloRequest, ShortFetchRequest, SketchRequest};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::proc;

/// What crossed the wire, split at the first entry moved: the walk before it, the
/// entries after.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    pub walk_requests: u64,
    pub walk_sent: u64,
    pub walk_received: u64,
    pub entry_requests: u64,
    pub entry_sent: u64,
    pub entry_received: u64,
    /// CPU the answering side spent during the walk (decoding, answering, encoding).
    pub walk_answering_cpu_ns: u64,
    /// Process CPU reading when the first fetch or push began (the walk's end).
    pub walk_end_cpu_ns: Option<u64>,
}

impl Traffic {
    pub fn walk_bytes(&self) -> u64 {
        self.walk_sent + self.walk_received
    }
    pub fn entry_bytes(&self) -> u64 {
        self.entry_sent + self.entry_received
    }
    pub fn requests(&self) -> u64 {
        self.walk_requests + self.entry_requests
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Walk,
    Entries,
}

/// A store answering as a node's HTTP API would.
pub struct HttpLungRemote {
    store: Store,
    /// The answering node's PeerId, as its state names it.
    node: String,
    max_payload: usize,
    /// A dry remote verifies pushed entries but stores none (to price the entries step
    /// of another protocol without changing the stores).
    dry: bool,
    traffic: Mutex<Traffic>,
}

fn refused(message: String) -> TransportError {
    TransportError {
        kind: "bad_reconcile_request".into(),
        message,
    }
}

impl HttpLungRemote {
    pub fn new(store: Store, node: String, max_payload: usize) -> Self {
        Self {
            store,
            node,
            max_payload,
            dry: false,
            traffic: Mutex::new(Traffic::default()),
        }
    }

    pub fn dry(mut self) -> Self {
        self.dry = true;
        self
    }

    pub fn traffic(&self) -> Traffic {
        *self.traffic.lock().expect("not poisoned")
    }

    /// One round trip: `body` goes out as the client encodes it, `serve` answers the
    /// decoded request with the exact response body, which is decoded for the caller.
    async fn exchange<Q, A, F>(
        &self,
        phase: Phase,
        body: Option<&Q>,
        serve: F,
    ) -> Result<A, TransportError>
    where
        Q: Serialize + DeserializeOwned,
        A: DeserializeOwned,
        F: AsyncFnOnce(Option<Q>) -> Result<Vec<u8>, TransportError>,
    {
        let now = proc::cpu_ns();
        {
            let mut t = self.traffic.lock().expect("not poisoned");
            if phase == Phase::Entries && t.walk_end_cpu_ns.is_none() {
                t.walk_end_cpu_ns = Some(now);
            }
        }
        let sent = body.map(|b| serde_json::to_vec(b).expect("requests serialize"));
        let started = proc::cpu_ns();
        let request =
            match &sent {
                Some(bytes) => Some(serde_json::from_slice::<Q>(bytes).map_err(|e| {
                    refused(format!("the request body is not the expected JSON: {e}"))
                })?),
                None => None,
            };
        let answer = serve(request).await?;
        let answering = proc::cpu_ns() - started;
        let decoded = serde_json::from_slice(&answer).map_err(|e| TransportError {
            kind: "decode".into(),
            message: format!("neighbour's JSON does not have the expected shape: {e}"),
        })?;
        let mut t = self.traffic.lock().expect("not poisoned");
        let sent = sent.map_or(0, |b| b.len() as u64);
        match phase {
            Phase::Walk => {
                t.walk_requests += 1;
                t.walk_answering_cpu_ns += answering;
                t.walk_sent += sent;
                t.walk_received += answer.len() as u64;
            }
            Phase::Entries => {
                t.entry_requests += 1;
                t.entry_sent += sent;
                t.entry_received += answer.len() as u64;
            }
        }
        Ok(decoded)
    }
}

impl HttpLungRemote {
    /// One v2 round trip: binary request body out, `serve` answers with the exact body.
    fn exchange_bytes(
        &self,
        phase: Phase,
        body: Vec<u8>,
        serve: impl FnOnce(&[u8]) -> Result<Vec<u8>, TransportError>,
    ) -> Result<Vec<u8>, TransportError> {
        let now = proc::cpu_ns();
        {
            let mut t = self.traffic.lock().expect("not poisoned");
            if phase == Phase::Entries && t.walk_end_cpu_ns.is_none() {
                t.walk_end_cpu_ns = Some(now);
            }
        }
        let answer = serve(&body)?;
        let answering = proc::cpu_ns() - now;
        let mut t = self.traffic.lock().expect("not poisoned");
        match phase {
            Phase::Walk => {
                t.walk_requests += 1;
                t.walk_answering_cpu_ns += answering;
                t.walk_sent += body.len() as u64;
                t.walk_received += answer.len() as u64;
            }
            Phase::Entries => {
                t.entry_requests += 1;
                t.entry_sent += body.len() as u64;
                t.entry_received += answer.len() as u64;
            }
        }
        Ok(answer)
    }
}

/// As `axum::Json(serde_json::to_value(v))` writes it.
fn as_axum_json<T: Serialize>(v: &T) -> Vec<u8> {
    let value = serde_json::to_value(v).expect("API types serialize");
    serde_json::to_vec(&value).expect("values serialize")
}

impl Remote for HttpLungRemote {
    async fn state(&self) -> Result<LedgerState, TransportError> {
        self.exchange::<(), _, _>(Phase::Walk, None, async |_| {
            let state = answer::state(&self.store, &self.node);
            Ok(serde_json::to_string(&state)
                .expect("the state serializes")
                .into_bytes())
        })
        .await
    }

    async fn children(&self, req: &ChildrenRequest) -> Result<ChildrenResponse, TransportError> {
        self.exchange(
            Phase::Walk,
            Some(req),
            async |r: Option<ChildrenRequest>| {
                let r = r.expect("a request body");
                Ok(as_axum_json(
                    &answer::children(&self.store, &r).map_err(refused)?,
                ))
            },
        )
        .await
    }

    async fn ids(&self, req: &IdsRequest) -> Result<IdsResponse, TransportError> {
        self.exchange(Phase::Walk, Some(req), async |r: Option<IdsRequest>| {
            let r = r.expect("a request body");
            Ok(as_axum_json(
                &answer::ids(&self.store, &r).map_err(refused)?,
            ))
        })
        .await
    }

    async fn fetch(&self, req: &FetchRequest) -> Result<EntriesMessage, TransportError> {
        self.exchange(
            Phase::Entries,
            Some(req),
            async |r: Option<FetchRequest>| {
                let r = r.expect("a request body");
                let msg = answer::fetch(&self.store, &r).map_err(refused)?;
                Ok(serde_json::to_string(&msg)
                    .expect("entries serialize")
                    .into_bytes())
            },
        )
        .await
    }

    async fn push(&self, req: &EntriesMessage) -> Result<PushResponse, TransportError> {
        // EntriesMessage holds raw JSON and is not Clone; it round-trips through its text.
        self.exchange(
            Phase::Entries,
            Some(req),
            async |r: Option<EntriesMessage>| {
                let r = r.expect("a request body");
                let entries =
                    answer::verify_push(&r, self.max_payload).map_err(|e| TransportError {
                        kind: e.kind().into(),
                        message: e.to_string(),
                    })?;
                let total = entries.len();
                let accepted = if self.dry {
                    entries
                        .iter()
                        .filter(|e| !self.store.contains(&e.id()))
                        .count()
                } else {
                    self.store
                        .append_batch(entries)
                        .await
                        .map_err(|e| TransportError {
                            kind: e.kind().into(),
                            message: e.to_string(),
                        })?
                        .iter()
                        .filter(|a| a.inserted)
                        .count()
                };
                Ok(as_axum_json(&PushResponse {
                    accepted,
                    already_present: total - accepted,
                }))
            },
        )
        .await
    }

    async fn hello(&self, req: &HelloRequest) -> Result<Vec<u8>, TransportError> {
        self.exchange_bytes(Phase::Walk, req.encode(), |body| {
            reconcile_v2::answer::hello(&self.store, body).map_err(|e| refused(e.to_string()))
        })
    }

    async fn sketch(&self, req: &SketchRequest) -> Result<Vec<u8>, TransportError> {
        self.exchange_bytes(Phase::Walk, req.encode(), |body| {
            reconcile_v2::answer::sketch(&self.store, body).map_err(|e| refused(e.to_string()))
        })
    }

    async fn fetch_short(&self, req: &ShortFetchRequest) -> Result<EntriesMessage, TransportError> {
        let answer = self.exchange_bytes(Phase::Entries, req.encode(), |body| {
            let msg = reconcile_v2::answer::fetch(&self.store, body).map_err(refused)?;
            Ok(serde_json::to_string(&msg)
                .expect("entries serialize")
                .into_bytes())
        })?;
        serde_json::from_slice(&answer).map_err(|e| TransportError {
            kind: "decode".into(),
            message: format!("neighbour's JSON does not have the expected shape: {e}"),
        })
    }

    fn bytes(&self) -> (u64, u64) {
        let t = self.traffic();
        (
            t.walk_sent + t.entry_sent,
            t.walk_received + t.entry_received,
        )
    }
}

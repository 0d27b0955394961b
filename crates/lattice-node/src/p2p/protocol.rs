//! What travels over the P2P lung: protocol names, the sync request-response messages,
//! and the answering side over a store.
//!
//! The messages wrap the transport-agnostic ones of [`crate::sync::reconcile`]: the P2P
//! lung speaks the same reconciliation as the HTTP lung, only the envelope differs:
//! binary under [`SYNC_PROTOCOL_V2`], JSON under [`SYNC_PROTOCOL`] (see
//! [`super::sync_codec`]). The
//! enums are externally tagged (`{"children": {...}}`, `"state"`) because serde's
//! internally tagged enums buffer their content and cannot carry `RawValue` entries.

use serde::{Deserialize, Serialize};

use crate::ledger::{LedgerId, Store};
use crate::sync::reconcile::{
    ChildrenRequest, ChildrenResponse, EntriesMessage, FetchRequest, IdsRequest, IdsResponse,
    LedgerState, PushResponse, answer,
};
use crate::sync::reconcile_v2;

/// The request-response protocol that carries reconciliation, before the ledger id: a
/// node speaks `/lattice/sync/1.0.0/<ledger id>` only, so nodes of two ledgers never
/// reconcile, and identify tells each which ledger the other holds.
pub const SYNC_PROTOCOL: &str = "/lattice/sync/1.0.0";
/// The same protocol with binary messages ([`super::sync_codec`]) and v2's hello. A
/// node offers both, this one first: older nodes speak only [`SYNC_PROTOCOL`].
pub const SYNC_PROTOCOL_V2: &str = "/lattice/sync/2.0.0";
/// Identify's protocol version string: peers of another network are told apart by it.
pub const IDENTIFY_PROTOCOL: &str = "/lattice/id/1.0.0";
/// The gossipsub topic new entries are published on, before the ledger id.
pub const GOSSIP_TOPIC: &str = "lattice/entries/1";

/// The sync protocol of `ledger`.
pub fn sync_protocol(ledger: &LedgerId) -> String {
    format!("{SYNC_PROTOCOL}/{ledger}")
}

/// The binary sync protocol of `ledger`.
pub fn sync_protocol_v2(ledger: &LedgerId) -> String {
    format!("{SYNC_PROTOCOL_V2}/{ledger}")
}

/// The gossip topic of `ledger`.
pub fn gossip_topic(ledger: &LedgerId) -> String {
    format!("{GOSSIP_TOPIC}/{ledger}")
}

/// The ledger a peer's advertised sync protocol names, if it is a Lattice sync protocol.
pub fn ledger_of_protocol(protocol: &str) -> Option<LedgerId> {
    protocol
        .strip_prefix(SYNC_PROTOCOL)?
        .strip_prefix('/')?
        .parse()
        .ok()
}
/// Largest sync request or response read from a stream. A fetch answer is bounded by
/// `reconcile::MAX_MESSAGE_BYTES`; this leaves room for the envelope.
pub const MAX_SYNC_MESSAGE: u64 = 32 * 1024 * 1024;
/// Gossip messages may exceed the payload cap by the entry's envelope (author,
/// signature, id, field names); 16 KiB is far more than that envelope.
pub const GOSSIP_ENVELOPE: usize = 16 * 1024;

/// One reconciliation request; each maps to one [`crate::sync::reconcile::Remote`] method.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncRequest {
    State,
    Children(ChildrenRequest),
    Ids(IdsRequest),
    Fetch(FetchRequest),
    Push(EntriesMessage),
    /// v2: a [`crate::sync::reconcile_v2::SketchRequest`], as its binary encoding.
    Sketch(Binary),
    /// v2: a [`crate::sync::reconcile_v2::ShortFetchRequest`], as its binary encoding.
    FetchShort(Binary),
    /// v2: a [`crate::sync::reconcile_v2::HelloRequest`] (binary protocol only).
    Hello(Binary),
}

/// A binary v2 message: as it is under the binary protocol, base64 inside the JSON
/// envelope of the older one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binary(pub Vec<u8>);

impl Serialize for Binary {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use base64::Engine as _;
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Binary {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use base64::Engine as _;
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map(Binary)
            .map_err(serde::de::Error::custom)
    }
}

/// The answer to a [`SyncRequest`], or a refusal with the same `{ kind, message }` shape
/// the HTTP lung uses.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncResponse {
    State(LedgerState),
    Children(ChildrenResponse),
    Ids(IdsResponse),
    Entries(EntriesMessage),
    Pushed(PushResponse),
    /// v2: a page of coded symbols.
    Sketch(Binary),
    /// v2: a [`crate::sync::reconcile_v2::HelloAnswer`].
    Hello(Binary),
    Error {
        kind: String,
        message: String,
    },
}

impl SyncRequest {
    pub fn name(&self) -> &'static str {
        match self {
            SyncRequest::State => "state",
            SyncRequest::Children(_) => "children",
            SyncRequest::Ids(_) => "ids",
            SyncRequest::Fetch(_) => "fetch",
            SyncRequest::Push(_) => "push",
            SyncRequest::Sketch(_) => "sketch",
            SyncRequest::FetchShort(_) => "fetch_short",
            SyncRequest::Hello(_) => "hello",
        }
    }
}

impl SyncResponse {
    pub fn name(&self) -> &'static str {
        match self {
            SyncResponse::State(_) => "state",
            SyncResponse::Children(_) => "children",
            SyncResponse::Ids(_) => "ids",
            SyncResponse::Entries(_) => "entries",
            SyncResponse::Pushed(_) => "pushed",
            SyncResponse::Sketch(_) => "sketch",
            SyncResponse::Hello(_) => "hello",
            SyncResponse::Error { .. } => "error",
        }
    }
}

fn bad_request(message: String) -> SyncResponse {
    SyncResponse::Error {
        kind: "bad_request".into(),
        message,
    }
}

/// Answers one inbound request over `store`, as `node` (our PeerId). A push is verified
/// in full before anything is stored, then acknowledged only after its commit.
pub async fn answer(
    store: &Store,
    node: &str,
    max_payload: usize,
    req: SyncRequest,
) -> SyncResponse {
    match req {
        SyncRequest::State => SyncResponse::State(answer::state(store, node)),
        SyncRequest::Children(r) => {
            answer::children(store, &r).map_or_else(bad_request, SyncResponse::Children)
        }
        SyncRequest::Ids(r) => answer::ids(store, &r).map_or_else(bad_request, SyncResponse::Ids),
        SyncRequest::Fetch(r) => {
            answer::fetch(store, &r).map_or_else(bad_request, SyncResponse::Entries)
        }
        SyncRequest::Hello(Binary(req)) => {
            let store = store.clone();
            match tokio::task::spawn_blocking(move || reconcile_v2::answer::hello(&store, &req))
                .await
            {
                Ok(Ok(answer)) => SyncResponse::Hello(Binary(answer)),
                Ok(Err(e)) => bad_request(e.to_string()),
                Err(_) => bad_request("computing the sketch failed".into()),
            }
        }
        SyncRequest::Sketch(Binary(req)) => {
            let store = store.clone();
            match tokio::task::spawn_blocking(move || reconcile_v2::answer::sketch(&store, &req))
                .await
            {
                Ok(Ok(page)) => SyncResponse::Sketch(Binary(page)),
                Ok(Err(e)) => bad_request(e.to_string()),
                Err(_) => bad_request("computing the sketch failed".into()),
            }
        }
        SyncRequest::FetchShort(Binary(req)) => {
            let store = store.clone();
            match tokio::task::spawn_blocking(move || reconcile_v2::answer::fetch(&store, &req))
                .await
            {
                Ok(Ok(msg)) => SyncResponse::Entries(msg),
                Ok(Err(e)) => bad_request(e),
                Err(_) => bad_request("reading the entries failed".into()),
            }
        }
        SyncRequest::Push(msg) => match answer::verify_push(&msg, max_payload) {
            Err(refused) => SyncResponse::Error {
                kind: refused.kind().into(),
                message: refused.to_string(),
            },
            Ok(entries) => match store.append_batch(entries).await {
                Ok(appended) => {
                    let accepted = appended.iter().filter(|a| a.inserted).count();
                    SyncResponse::Pushed(PushResponse {
                        accepted,
                        already_present: appended.len() - accepted,
                    })
                }
                Err(e) => SyncResponse::Error {
                    kind: e.kind().into(),
                    message: e.to_string(),
                },
            },
        },
    }
}

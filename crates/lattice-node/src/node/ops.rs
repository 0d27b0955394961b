//! The operations every face offers, and the one error they all answer with.
//!
//! The HTTP routes, the desktop app's commands and the CLI (through the HTTP API) are
//! one-liners over these: what a face may still do is turn its own input (a query
//! string, a path, IPC arguments) into the text these take, and render what comes back.
//! So the limits (how many entries a listing holds, how large it may grow), the parsing
//! of ids and PeerIds and the shape of an entry with its proof are decided once.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{NodeError, NodeHandle};
use crate::ledger::{Entry, EntryError, EntryId, InclusionProof, StoreError, verify_inclusion};
use crate::p2p::AdmissionView;
use crate::status::Status;
use crate::sync::Mode;

/// Entries a listing holds when the caller does not say.
pub const ENTRIES_DEFAULT: usize = 50;
/// Entries a listing holds at most (and at most `MAX_MESSAGE_BYTES` of them).
pub const ENTRIES_MAX: usize = 1000;

/// What kind of failure an [`OpError`] is, for a face that has its own codes for them
/// (HTTP statuses). Not serialized: the `error` kind names the failure exactly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ErrorClass {
    /// The request itself is wrong (a malformed id, an unknown mode).
    BadRequest,
    /// What was asked for does not exist.
    NotFound,
    /// Well formed, but refused (an entry that does not verify).
    Unprocessable,
    /// The caller may not do this (not an author of the ledger).
    Forbidden,
    /// Over a rate limit: try again after `retry_after`.
    RateLimited,
    /// The node cannot now (shutting down, its store refused the write).
    Unavailable,
    /// Another node failed us (a neighbour, a peer).
    BadGateway,
    /// This node failed.
    #[default]
    Internal,
}

/// The one error shape every face sends: `{"error": kind, "message": ..., "allowed": [...]}`
/// over HTTP and over the app's IPC alike (`allowed` only for a refused choice). Scripts
/// read the `error` kind; people read the message, which names the problem.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct OpError {
    #[serde(rename = "error")]
    pub kind: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<String>>,
    #[serde(skip)]
    pub class: ErrorClass,
    /// Whole seconds to wait, for [`ErrorClass::RateLimited`] (HTTP sends `Retry-After`).
    #[serde(skip)]
    pub retry_after_s: Option<u64>,
}

impl OpError {
    pub fn new(class: ErrorClass, kind: &str, message: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            message: message.into(),
            allowed: None,
            class,
            retry_after_s: None,
        }
    }

    fn invalid_mode(message: String) -> Self {
        Self {
            allowed: Some(Mode::ALL.iter().map(|m| m.as_str().to_string()).collect()),
            ..Self::new(ErrorClass::BadRequest, "invalid_mode", message)
        }
    }
}

impl From<NodeError> for OpError {
    fn from(e: NodeError) -> Self {
        let class = match &e {
            NodeError::Entry(_) => ErrorClass::Unprocessable,
            NodeError::ShuttingDown => ErrorClass::Unavailable,
            NodeError::Store(StoreError::Unauthorized(_)) | NodeError::NotAnAuthor { .. } => {
                ErrorClass::Forbidden
            }
            NodeError::Store(_) => ErrorClass::Unavailable,
            NodeError::Neighbor { .. } | NodeError::P2p(_) => ErrorClass::BadGateway,
            NodeError::Genesis(_) | NodeError::NoGenesis { .. } => ErrorClass::Internal,
            NodeError::RateLimited { .. } => ErrorClass::RateLimited,
        };
        let retry_after_s = match &e {
            // At least a second: the header counts whole seconds.
            NodeError::RateLimited { retry_after, .. } => {
                Some((retry_after.as_secs_f64().ceil() as u64).max(1))
            }
            _ => None,
        };
        Self {
            retry_after_s,
            ..Self::new(class, e.kind(), e.to_string())
        }
    }
}

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> Self {
        NodeError::Store(e).into()
    }
}

/// A put's answer: the entry as the ledger now holds it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Created {
    pub id: EntryId,
    /// False when the very same entry was there already.
    pub inserted: bool,
    pub merkle_root: String,
    pub entry_count: usize,
    /// The payload as stored (canonical, exactly what was signed), read back rather than
    /// echoed, so the writer sees what the ledger holds.
    pub payload: Box<RawValue>,
}

/// The newest entries, newest first.
#[derive(Debug, Serialize, Deserialize)]
pub struct EntriesPage {
    pub entries: Vec<Box<RawValue>>,
    /// All entries in the ledger (the page may hold fewer).
    pub entry_count: usize,
}

/// One entry and the proof that it is under the current root.
#[derive(Debug, Serialize)]
pub struct EntryWithProof {
    pub entry: Entry,
    pub proof: Option<InclusionProof>,
    /// Whether the proof checks out against its root, checked here.
    pub proof_verified: bool,
}

impl NodeHandle {
    /// Switches to the mode named by `mode` (`auto`, `p2p` or `http`).
    pub async fn switch_to(&self, mode: &str) -> Result<Status, OpError> {
        let parsed: Mode = mode.parse().map_err(|_| {
            OpError::invalid_mode(format!(
                "{:?} is not a mode; use auto, p2p or http",
                mode.chars().take(40).collect::<String>()
            ))
        })?;
        Ok(self.switch_mode(parsed).await?)
    }

    /// The answer when a face was given no mode at all.
    pub fn missing_mode(how: &str) -> OpError {
        OpError::invalid_mode(format!("the mode is missing; {how}"))
    }

    /// Cuts P2P for real (every connection closed and refused) or lets it back.
    pub async fn block_p2p(&self, blocked: bool) -> Result<Status, OpError> {
        Ok(self.set_p2p_blocked(blocked).await?)
    }

    /// Signs and appends the payload given as JSON text. The text is checked as it is:
    /// parsing it first would drop a duplicate key or round a long number before anything
    /// could refuse it.
    pub async fn put_json(&self, payload: &str) -> Result<Created, OpError> {
        let value = crate::ledger::parse_payload(payload)
            .map_err(|e| NodeError::Entry(EntryError::from(e)))?;
        let appended = self.put(&value).await?;
        let stored = self.store().get(&appended.id)?.ok_or_else(|| {
            OpError::new(
                ErrorClass::Internal,
                "internal",
                format!(
                    "entry {} was acknowledged but cannot be read back",
                    appended.id
                ),
            )
        })?;
        let payload = RawValue::from_string(stored.payload_json().to_string()).map_err(|e| {
            OpError::new(
                ErrorClass::Internal,
                "internal",
                format!("the stored payload is not JSON: {e}"),
            )
        })?;
        Ok(Created {
            id: appended.id,
            inserted: appended.inserted,
            merkle_root: hex::encode(appended.root),
            entry_count: appended.count,
            payload,
        })
    }

    /// The newest `limit` entries ([`ENTRIES_DEFAULT`] when not given, at most
    /// [`ENTRIES_MAX`]), bounded by size as well: 1000 entries at the payload cap would be
    /// tens of megabytes. A cut keeps the newest.
    pub fn entries(&self, limit: Option<usize>) -> Result<EntriesPage, OpError> {
        let limit = limit.unwrap_or(ENTRIES_DEFAULT).min(ENTRIES_MAX);
        let entries = self.store().latest(limit)?;
        let (page, _) = crate::sync::reconcile::bounded_message(&entries);
        Ok(EntriesPage {
            entries: page.entries,
            entry_count: self.store().len(),
        })
    }

    /// The entry with id `id` (64 hex digits) and its inclusion proof.
    pub fn entry(&self, id: &str) -> Result<EntryWithProof, OpError> {
        let id: EntryId = id.trim().parse().map_err(|e: EntryError| {
            OpError::new(ErrorClass::BadRequest, e.kind(), e.to_string())
        })?;
        let entry = self.store().get(&id)?.ok_or_else(|| {
            OpError::new(
                ErrorClass::NotFound,
                "no_such_entry",
                format!("entry {id} is not in this ledger"),
            )
        })?;
        let proof = self.store().prove(&id);
        let proof_verified = proof
            .as_ref()
            .is_some_and(|p| verify_inclusion(&p.root, &p.id, &p.steps));
        Ok(EntryWithProof {
            entry,
            proof,
            proof_verified,
        })
    }

    /// Accepts (`accept`) or ignores the P2P peer `peer` (a PeerId) knocking on a closed
    /// ledger; answers the decisions kept.
    pub async fn decide(&self, peer: &str, accept: bool) -> Result<AdmissionView, OpError> {
        let parsed: crate::p2p::PeerId = peer.trim().parse().map_err(|_| {
            OpError::new(
                ErrorClass::BadRequest,
                "bad_peer_id",
                format!(
                    "{:?} is not a PeerId (`lattice peers list` shows them)",
                    peer.chars().take(80).collect::<String>()
                ),
            )
        })?;
        self.decide_peer(parsed, accept).await.map_err(|e| match e {
            // Our own swarm failed to record it: not another node's fault.
            NodeError::P2p(e) => OpError::new(ErrorClass::Internal, e.kind(), e.to_string()),
            e => e.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_shape_is_the_one_scripts_read() {
        let e = OpError::invalid_mode("\"turbo\" is not a mode".into());
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({
                "error": "invalid_mode",
                "message": "\"turbo\" is not a mode",
                "allowed": ["auto", "p2p", "http"],
            })
        );
        let plain = OpError::new(ErrorClass::NotFound, "no_such_entry", "not here");
        assert_eq!(
            serde_json::to_string(&plain).unwrap(),
            r#"{"error":"no_such_entry","message":"not here"}"#
        );
        let back: OpError = serde_json::from_str(r#"{"error":"x","message":"y"}"#).unwrap();
        assert_eq!((back.kind.as_str(), back.message.as_str()), ("x", "y"));
    }
}

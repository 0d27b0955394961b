//! Signed ledger entries.
//!
//! An entry is signed over canonical, domain-separated bytes and addressed by the SHA-256
//! of those bytes. An [`Entry`] value is always verified: the only ways to get one are to
//! sign it ([`Entry::sign`]) or to check one that arrived from outside
//! ([`Entry::from_wire`]), which recomputes the id, checks the payload size and verifies
//! the signature strictly. Nothing a peer claims is trusted.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::Signature;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::authors::{self, AuthorError};
use super::canonical::{PayloadError, parse_payload, to_canonical_json};
use crate::ledger::keys::NodeKey;

/// The tag that starts every entry's signed bytes, so a signature over an entry can never
/// be replayed as a signature over anything else the key signs (libp2p handshakes, gossip).
pub const ENTRY_DOMAIN: &[u8] = b"lattice/entry/v1";

/// Default cap on a payload's canonical JSON size.
pub const DEFAULT_MAX_PAYLOAD: usize = 64 * 1024;

/// An entry's id: SHA-256 of its canonical bytes, shown as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryId(pub [u8; 32]);

impl EntryId {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EntryId({})", &self.to_hex()[..12])
    }
}

impl FromStr for EntryId {
    type Err = EntryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || EntryError::MalformedId(s.chars().take(80).collect());
        if s.len() != 64 || s.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(bad());
        }
        let bytes = hex::decode(s).map_err(|_| bad())?;
        Ok(EntryId(bytes.try_into().map_err(|_| bad())?))
    }
}

impl Serialize for EntryId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for EntryId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Why an entry was refused. Each kind has a stable name ([`EntryError::kind`]) for APIs.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum EntryError {
    #[error("entry is not valid JSON of the expected shape: {0}")]
    MalformedJson(String),
    #[error("entry id {0:?} is not 64 lowercase hex characters")]
    MalformedId(String),
    #[error("author {0:?} is not the PeerId of an ed25519 key")]
    BadAuthor(String),
    #[error("author {0} is a weak (small-order) ed25519 key")]
    WeakAuthorKey(String),
    #[error("signature is not 128 hex characters (64 bytes)")]
    MalformedSignature,
    #[error("signature does not verify for entry {id} by {author}")]
    BadSignature { id: EntryId, author: String },
    #[error("claimed id {claimed} does not match the entry's content, whose id is {computed}")]
    IdMismatch { claimed: EntryId, computed: EntryId },
    #[error("payload is {size} bytes; the limit is {max} bytes")]
    PayloadTooLarge { size: usize, max: usize },
    #[error("payload is not valid JSON: {0}")]
    PayloadNotJson(String),
    #[error("payload refused: {0}")]
    PayloadDuplicateKey(String),
    #[error("payload refused: {0}")]
    PayloadInexactNumber(String),
    #[error("created_at {0} is beyond the largest supported time")]
    TimestampOutOfRange(u64),
}

impl EntryError {
    pub fn kind(&self) -> &'static str {
        match self {
            EntryError::MalformedJson(_) => "malformed_entry",
            EntryError::MalformedId(_) => "malformed_id",
            EntryError::BadAuthor(_) => "bad_author",
            EntryError::WeakAuthorKey(_) => "weak_author_key",
            EntryError::MalformedSignature => "malformed_signature",
            EntryError::BadSignature { .. } => "bad_signature",
            EntryError::IdMismatch { .. } => "id_mismatch",
            EntryError::PayloadTooLarge { .. } => "payload_too_large",
            EntryError::PayloadNotJson(_) => "payload_not_json",
            EntryError::PayloadDuplicateKey(_) => "duplicate_key",
            EntryError::PayloadInexactNumber(_) => "inexact_number",
            EntryError::TimestampOutOfRange(_) => "timestamp_out_of_range",
        }
    }
}

impl From<PayloadError> for EntryError {
    fn from(e: PayloadError) -> Self {
        let message = e.to_string();
        match e {
            PayloadError::NotJson(m) => EntryError::PayloadNotJson(m),
            PayloadError::DuplicateKey(_) => EntryError::PayloadDuplicateKey(message),
            PayloadError::InexactNumber(_) => EntryError::PayloadInexactNumber(message),
        }
    }
}

/// How an entry travels as JSON. `id` is optional on the way in (it is always recomputed;
/// if present it must match) and always present on the way out.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<EntryId>,
    pub author: String,
    pub created_at: u64,
    pub payload: Box<RawValue>,
    pub signature: String,
}

/// A verified, signed entry.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    id: EntryId,
    author: [u8; 32],
    created_at: u64,
    /// Canonical JSON text of the payload; exactly what was signed.
    payload: String,
    signature: [u8; 64],
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("id", &self.id)
            .field("created_at", &self.created_at)
            .field("payload_bytes", &self.payload.len())
            .finish_non_exhaustive()
    }
}

/// The bytes an entry's signature and id cover: the domain tag, then each field,
/// variable-length ones prefixed with their length (u32, big-endian).
pub fn signed_bytes(author: &[u8; 32], created_at: u64, canonical_payload: &str) -> Vec<u8> {
    let payload = canonical_payload.as_bytes();
    let mut out = Vec::with_capacity(4 + ENTRY_DOMAIN.len() + 32 + 8 + 4 + payload.len());
    out.extend_from_slice(&(ENTRY_DOMAIN.len() as u32).to_be_bytes());
    out.extend_from_slice(ENTRY_DOMAIN);
    out.extend_from_slice(author);
    out.extend_from_slice(&created_at.to_be_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn id_of(bytes: &[u8]) -> EntryId {
    EntryId(Sha256::digest(bytes).into())
}

fn canonical_payload(payload: &serde_json::Value, max: usize) -> Result<String, EntryError> {
    let text = to_canonical_json(payload);
    if text.len() > max {
        return Err(EntryError::PayloadTooLarge {
            size: text.len(),
            max,
        });
    }
    Ok(text)
}

fn check_created_at(created_at: u64) -> Result<(), EntryError> {
    // Stored as SQLite INTEGER (i64).
    if created_at > i64::MAX as u64 {
        return Err(EntryError::TimestampOutOfRange(created_at));
    }
    Ok(())
}

impl Entry {
    /// Signs a new entry by `key`. The payload is canonicalised first.
    pub fn sign(
        key: &NodeKey,
        created_at: u64,
        payload: &serde_json::Value,
        max_payload: usize,
    ) -> Result<Self, EntryError> {
        check_created_at(created_at)?;
        let payload = canonical_payload(payload, max_payload)?;
        let author = key.public_bytes();
        let bytes = signed_bytes(&author, created_at, &payload);
        Ok(Entry {
            id: id_of(&bytes),
            author,
            created_at,
            payload,
            signature: key.sign(&bytes),
        })
    }

    /// Parses and fully verifies an entry that arrived as JSON text.
    pub fn from_json(text: &str, max_payload: usize) -> Result<Self, EntryError> {
        let wire: WireEntry =
            serde_json::from_str(text).map_err(|e| EntryError::MalformedJson(e.to_string()))?;
        Self::from_wire(wire, max_payload)
    }

    /// Fully verifies an entry from outside: size, author key, id, strict signature.
    pub fn from_wire(wire: WireEntry, max_payload: usize) -> Result<Self, EntryError> {
        check_created_at(wire.created_at)?;
        // Cheap rejection of oversize input before parsing it.
        if wire.payload.get().len() > max_payload.saturating_mul(8).max(1024) {
            return Err(EntryError::PayloadTooLarge {
                size: wire.payload.get().len(),
                max: max_payload,
            });
        }
        let value = parse_payload(wire.payload.get())?;
        let payload = canonical_payload(&value, max_payload)?;

        let (author, key) = authors::by_text(&wire.author).map_err(|e| match e {
            AuthorError::Bad => EntryError::BadAuthor(wire.author.chars().take(80).collect()),
            AuthorError::Weak => EntryError::WeakAuthorKey(wire.author.clone()),
        })?;

        let sig_bytes: [u8; 64] = hex::decode(&wire.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(EntryError::MalformedSignature)?;

        let bytes = signed_bytes(&author, wire.created_at, &payload);
        let id = id_of(&bytes);
        if let Some(claimed) = wire.id
            && claimed != id
        {
            return Err(EntryError::IdMismatch {
                claimed,
                computed: id,
            });
        }
        key.verify_strict(&bytes, &Signature::from_bytes(&sig_bytes))
            .map_err(|_| EntryError::BadSignature {
                id,
                author: wire.author.clone(),
            })?;
        Ok(Entry {
            id,
            author,
            created_at: wire.created_at,
            payload,
            signature: sig_bytes,
        })
    }

    /// The id an entry arriving as JSON text has by its content, and its signature
    /// bytes, found without checking the key or the signature (`None` where `from_json`
    /// would refuse it before that). For recognising a copy of an entry already held
    /// (gossip delivers each entry once per mesh peer), never for accepting one: the
    /// signature is not part of the id, so a forged copy has the same id.
    pub fn claimed_id_of_json(text: &str, max_payload: usize) -> Option<(EntryId, [u8; 64])> {
        let wire: WireEntry = serde_json::from_str(text).ok()?;
        check_created_at(wire.created_at).ok()?;
        if wire.payload.get().len() > max_payload.saturating_mul(8).max(1024) {
            return None;
        }
        let value = parse_payload(wire.payload.get()).ok()?;
        let payload = canonical_payload(&value, max_payload).ok()?;
        let (author, _) = authors::by_text(&wire.author).ok()?;
        let signature: [u8; 64] = hex::decode(&wire.signature).ok()?.try_into().ok()?;
        let id = id_of(&signed_bytes(&author, wire.created_at, &payload));
        if wire.id.is_some_and(|claimed| claimed != id) {
            return None;
        }
        Some((id, signature))
    }

    /// Rebuilds an entry read back from our own database. The id is recomputed (so a
    /// damaged row cannot pose as another entry) but the signature is not re-checked here;
    /// `lattice verify` does that ([`Entry::reverify`]).
    pub(crate) fn from_stored(
        author: [u8; 32],
        created_at: u64,
        payload: String,
        signature: [u8; 64],
    ) -> Self {
        let id = id_of(&signed_bytes(&author, created_at, &payload));
        Entry {
            id,
            author,
            created_at,
            payload,
            signature,
        }
    }

    /// Checks this entry again from scratch, as if it had just arrived.
    pub fn reverify(&self, max_payload: usize) -> Result<(), EntryError> {
        Entry::from_wire(self.to_wire(), max_payload.max(self.payload.len())).map(|_| ())
    }

    /// A row of our own database, its id recomputed, and whether it passes every check
    /// an arriving entry gets: what [`Entry::from_stored`] then [`Entry::reverify`]
    /// answer, the same errors included, without the trip through the wire's text
    /// (hex and base58 out and back, the payload copied and its id hashed twice), which
    /// cost about a fifth of `lattice verify`'s time per entry.
    pub(crate) fn recheck_stored(
        author: [u8; 32],
        created_at: u64,
        payload: String,
        signature: [u8; 64],
        max_payload: usize,
    ) -> (Entry, Result<(), EntryError>) {
        let bytes = signed_bytes(&author, created_at, &payload);
        let entry = Entry {
            id: id_of(&bytes),
            author,
            created_at,
            payload,
            signature,
        };
        let checked = entry.check_stored(&bytes, max_payload);
        (entry, checked)
    }

    /// [`Entry::from_wire`]'s checks, in its order, of an entry whose `bytes` are known.
    fn check_stored(&self, bytes: &[u8], max_payload: usize) -> Result<(), EntryError> {
        check_created_at(self.created_at)?;
        // A stored payload must be the canonical form of itself; if it is not, the
        // entry that arrives is the canonical one, whose id differs.
        let value = parse_payload(&self.payload)?;
        let canonical = canonical_payload(&value, max_payload.max(self.payload.len()))?;
        let key = authors::by_bytes(&self.author).map_err(|e| {
            let text = authors::text_of(&self.author);
            match e {
                AuthorError::Bad => EntryError::BadAuthor(text.chars().take(80).collect()),
                AuthorError::Weak => EntryError::WeakAuthorKey(text),
            }
        })?;
        if canonical != self.payload {
            return Err(EntryError::IdMismatch {
                claimed: self.id,
                computed: id_of(&signed_bytes(&self.author, self.created_at, &canonical)),
            });
        }
        key.verify_strict(bytes, &Signature::from_bytes(&self.signature))
            .map_err(|_| EntryError::BadSignature {
                id: self.id,
                author: authors::text_of(&self.author),
            })
    }

    pub fn id(&self) -> EntryId {
        self.id
    }
    pub fn author_key(&self) -> &[u8; 32] {
        &self.author
    }
    /// The author as a libp2p PeerId string.
    pub fn author(&self) -> String {
        authors::text_of(&self.author)
    }
    /// Unix milliseconds, as claimed by the author. Informational only.
    pub fn created_at(&self) -> u64 {
        self.created_at
    }
    /// Canonical JSON text of the payload.
    pub fn payload_json(&self) -> &str {
        &self.payload
    }
    pub fn signature(&self) -> &[u8; 64] {
        &self.signature
    }

    pub fn to_wire(&self) -> WireEntry {
        WireEntry {
            id: Some(self.id),
            author: self.author(),
            created_at: self.created_at,
            payload: RawValue::from_string(self.payload.clone())
                .expect("canonical payload is valid JSON"),
            signature: hex::encode(self.signature),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.to_wire()).expect("wire entries always serialize")
    }
}

impl Serialize for Entry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_wire().serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key() -> NodeKey {
        NodeKey::from_seed([42; 32])
    }

    fn signed() -> Entry {
        Entry::sign(
            &key(),
            1_700_000_000_000,
            &json!({"b": 2, "a": 1}),
            DEFAULT_MAX_PAYLOAD,
        )
        .expect("signs")
    }

    /// `lattice verify`'s direct check of a stored row answers exactly what the trip
    /// through the wire's text answers, errors included, on good rows and on damaged
    /// ones: a flipped signature bit, a malleable signature (s + l), a small-order R, a
    /// signature by another key, a weak author key, an author that is not a point, a
    /// payload that is not canonical, a time past i64; and one that is not JSON.
    #[test]
    fn rechecking_a_stored_row_answers_what_reverifying_it_through_the_wire_does() {
        let good = signed();
        let sig = *good.signature();
        let mut flipped = sig;
        flipped[63] ^= 0x01;
        flipped[5] ^= 0x80;
        // s + l, the order of the group, byte by byte with carry (little endian).
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut malleable = sig;
        let mut carry = 0u16;
        for i in 0..32 {
            let v = u16::from(sig[32 + i]) + u16::from(L[i]) + carry;
            malleable[32 + i] = v as u8;
            carry = v >> 8;
        }
        let mut small_r = [0u8; 64];
        small_r[0] = 1;
        let other = Entry::sign(
            &NodeKey::from_seed([9; 32]),
            good.created_at(),
            &json!({"a": 1, "b": 2}),
            DEFAULT_MAX_PAYLOAD,
        )
        .unwrap();
        let mut weak = [0u8; 32];
        weak[0] = 1;
        let not_a_point = (0u8..=255)
            .map(|b| [b; 32])
            .find(|k| ed25519_dalek::VerifyingKey::from_bytes(k).is_err())
            .expect("some byte pattern is not a point");
        let author = *good.author_key();
        let at = good.created_at();
        let canonical = good.payload_json().to_string();
        let rows: Vec<([u8; 32], u64, String, [u8; 64])> = vec![
            (author, at, canonical.clone(), sig),
            (author, at, canonical.clone(), flipped),
            (author, at, canonical.clone(), malleable),
            (author, at, canonical.clone(), small_r),
            (author, at, canonical.clone(), *other.signature()),
            (weak, at, canonical.clone(), sig),
            (not_a_point, at, canonical.clone(), sig),
            (author, at, r#"{"b":2,"a":1}"#.into(), sig),
            (author, at, r#"{ "a": 1, "b": 2 }"#.into(), sig),
            (author, at, r#"{"a":1,"a":2}"#.into(), sig),
            (author, i64::MAX as u64 + 1, canonical.clone(), sig),
        ];
        let mut refused = 0;
        for (i, (author, at, payload, sig)) in rows.into_iter().enumerate() {
            // Twice: the second time the author is remembered.
            for _ in 0..2 {
                let old = Entry::from_stored(author, at, payload.clone(), sig);
                let old_checked = old.reverify(DEFAULT_MAX_PAYLOAD).map_err(|e| e.to_string());
                let (new, checked) =
                    Entry::recheck_stored(author, at, payload.clone(), sig, DEFAULT_MAX_PAYLOAD);
                assert_eq!(new, old, "row {i}");
                assert_eq!(checked.map_err(|e| e.to_string()), old_checked, "row {i}");
                refused += usize::from(old_checked.is_err());
            }
        }
        assert_eq!(refused, 2 * 10, "every damaged row is refused");
        // A stored payload that is not JSON at all: the trip through the wire's text
        // panicked on it (a `RawValue` must be JSON); the direct check names it.
        let (_, checked) = Entry::recheck_stored(author, at, "{".into(), sig, DEFAULT_MAX_PAYLOAD);
        assert_eq!(checked.unwrap_err().kind(), "payload_not_json");
    }

    #[test]
    fn a_signed_entry_survives_the_wire_with_the_same_id() {
        let e = signed();
        let back = Entry::from_json(&e.to_json(), DEFAULT_MAX_PAYLOAD).expect("verifies");
        assert_eq!(back, e);
        assert_eq!(e.payload_json(), r#"{"a":1,"b":2}"#);
        assert_eq!(e.id().to_hex().len(), 64);
    }

    #[test]
    fn key_order_in_the_payload_does_not_change_the_id() {
        let mut wire: serde_json::Value = serde_json::from_str(&signed().to_json()).unwrap();
        wire["payload"] = serde_json::from_str(r#"{ "b" : 2 , "a" : 1 }"#).unwrap();
        let back = Entry::from_json(&wire.to_string(), DEFAULT_MAX_PAYLOAD).expect("verifies");
        assert_eq!(back.id(), signed().id());
    }

    fn tampered(f: impl FnOnce(&mut serde_json::Value)) -> EntryError {
        let mut wire: serde_json::Value = serde_json::from_str(&signed().to_json()).unwrap();
        f(&mut wire);
        Entry::from_json(&wire.to_string(), DEFAULT_MAX_PAYLOAD).unwrap_err()
    }

    #[test]
    fn a_changed_payload_fails_the_signature() {
        let err = tampered(|w| {
            w["payload"]["a"] = json!(9);
            w.as_object_mut().unwrap().remove("id");
        });
        assert_eq!(err.kind(), "bad_signature");
        // With the original id still claimed, the mismatch is reported first.
        assert_eq!(
            tampered(|w| w["payload"]["a"] = json!(9)).kind(),
            "id_mismatch"
        );
    }

    #[test]
    fn a_claimed_id_that_does_not_match_is_refused() {
        let err = tampered(|w| w["id"] = json!("00".repeat(32)));
        assert_eq!(err.kind(), "id_mismatch");
    }

    #[test]
    fn a_missing_id_is_recomputed() {
        let mut wire: serde_json::Value = serde_json::from_str(&signed().to_json()).unwrap();
        wire.as_object_mut().unwrap().remove("id");
        let back = Entry::from_json(&wire.to_string(), DEFAULT_MAX_PAYLOAD).unwrap();
        assert_eq!(back.id(), signed().id());
    }

    #[test]
    fn another_author_cannot_claim_the_entry() {
        let other = NodeKey::from_seed([1; 32]).peer_id().to_string();
        let err = tampered(|w| {
            w["author"] = json!(other);
            w.as_object_mut().unwrap().remove("id");
        });
        assert_eq!(err.kind(), "bad_signature");
    }

    #[test]
    fn malformed_fields_each_have_their_own_kind() {
        assert_eq!(
            tampered(|w| w["author"] = json!("nobody")).kind(),
            "bad_author"
        );
        assert_eq!(
            tampered(|w| w["signature"] = json!("abcd")).kind(),
            "malformed_signature"
        );
        assert_eq!(
            tampered(|w| w["id"] = json!("XYZ")).kind(),
            "malformed_entry"
        );
        assert_eq!(
            tampered(|w| w["extra"] = json!(1)).kind(),
            "malformed_entry"
        );
        assert_eq!(
            tampered(|w| w["created_at"] = json!(u64::MAX)).kind(),
            "timestamp_out_of_range"
        );
        assert_eq!(
            Entry::from_json("<html>", DEFAULT_MAX_PAYLOAD)
                .unwrap_err()
                .kind(),
            "malformed_entry"
        );
    }

    #[test]
    fn oversize_payloads_are_refused_on_signing_and_on_arrival() {
        let big = json!({"blob": "x".repeat(100)});
        let err = Entry::sign(&key(), 1, &big, 64).unwrap_err();
        assert!(matches!(err, EntryError::PayloadTooLarge { max: 64, .. }));
        let e = Entry::sign(&key(), 1, &big, 1024).unwrap();
        let err = Entry::from_json(&e.to_json(), 64).unwrap_err();
        assert_eq!(err.kind(), "payload_too_large");
    }

    #[test]
    fn a_malleable_signature_is_refused() {
        // Adding the group order L to S gives a signature that lax verifiers accept.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let e = signed();
        let mut sig = *e.signature();
        let mut carry = 0u16;
        for i in 0..32 {
            let sum = sig[32 + i] as u16 + L[i] as u16 + carry;
            sig[32 + i] = sum as u8;
            carry = sum >> 8;
        }
        let err = tampered(|w| w["signature"] = json!(hex::encode(sig)));
        assert_eq!(err.kind(), "bad_signature");
    }

    #[test]
    fn a_weak_author_key_is_refused() {
        // The identity point (small order) encoded as a key, inside a PeerId.
        let mut weak = [0u8; 32];
        weak[0] = 1;
        let pk = libp2p_identity::ed25519::PublicKey::try_from_bytes(&weak).expect("decodes");
        let peer = libp2p_identity::PeerId::from_public_key(&pk.into()).to_string();
        let err = tampered(|w| w["author"] = json!(peer));
        assert_eq!(err.kind(), "weak_author_key");
    }
}

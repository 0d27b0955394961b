//! A ledger's identity: its genesis record, and the member set it names.
//!
//! The genesis record names the ledger, the public keys allowed to author entries and
//! the administrators (who sign membership change records, see `membership`), and is signed by
//! a founding key. Its id is the SHA-256 of its canonical, domain-separated bytes, so two
//! deployments can never share a ledger by accident: a different name, member or founder
//! is a different id. Nodes carry the id (`LATTICE_LEDGER`); the record itself travels
//! and is checked against the id, never trusted for it.
//!
//! Without a configured ledger a node is on the development ledger: a fixed, open
//! genesis (any author), so examples and tests work with no set-up. Faces say plainly
//! that it is open to anyone.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ledger::keys::{NodeKey, peer_id_of, public_key_of};

pub use super::membership::{Ledger, MAX_REFUSED, UnauthorizedAuthor};

/// The tag that starts a genesis record's signed bytes, so its signature can never be
/// replayed as an entry's (whose tag differs) or anything else the founder signs.
pub const GENESIS_DOMAIN: &[u8] = b"lattice/genesis/v1";
/// The only record version this node understands.
pub const GENESIS_VERSION: u32 = 1;
/// Longest ledger name, in bytes.
pub const MAX_NAME: usize = 64;
/// Most authors or administrators one record may name.
pub const MAX_MEMBERS: usize = 4096;
/// The development ledger's name.
pub const DEV_NAME: &str = "development";

/// A ledger's id: SHA-256 of its genesis record's canonical bytes, lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LedgerId(pub [u8; 32]);

impl LedgerId {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for LedgerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for LedgerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LedgerId({})", &self.to_hex()[..12])
    }
}

impl FromStr for LedgerId {
    type Err = GenesisError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || GenesisError::MalformedId(s.chars().take(80).collect());
        if s.len() != 64 || s.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(bad());
        }
        let bytes = hex::decode(s).map_err(|_| bad())?;
        Ok(LedgerId(bytes.try_into().map_err(|_| bad())?))
    }
}

impl Serialize for LedgerId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for LedgerId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a genesis record or ledger id was refused. Never carries a secret.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum GenesisError {
    #[error("ledger id {0:?} is not 64 lowercase hex characters")]
    MalformedId(String),
    #[error("genesis record is not base64 of JSON of the expected shape: {0}")]
    Malformed(String),
    #[error("genesis record version {0} is not supported (this node knows version 1)")]
    UnsupportedVersion(u32),
    #[error("ledger name {0:?} must be 1 to 64 bytes of printable characters")]
    BadName(String),
    #[error("{0:?} in the genesis record is not the PeerId of an ed25519 key")]
    BadKey(String),
    #[error("the genesis record names {0} members; at most {MAX_MEMBERS}")]
    TooManyMembers(usize),
    #[error("a closed ledger needs at least one author")]
    NoAuthors,
    #[error("the genesis record's signature does not verify for its founder {0}")]
    BadSignature(String),
    #[error("the genesis record is of ledger {actual}, not of the configured ledger {expected}")]
    WrongLedger {
        expected: LedgerId,
        actual: LedgerId,
    },
}

impl GenesisError {
    pub fn kind(&self) -> &'static str {
        match self {
            GenesisError::WrongLedger { .. } => "other_ledger",
            _ => "bad_genesis",
        }
    }
}

/// What a genesis record says, as JSON (inside base64 in `LATTICE_GENESIS`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireGenesis {
    pub version: u32,
    pub name: String,
    /// When true, any author may write: the development ledger.
    #[serde(default)]
    pub open: bool,
    pub founder: String,
    pub authors: Vec<String>,
    pub admins: Vec<String>,
    pub created_at: u64,
    pub signature: String,
}

/// A verified genesis record: the only ways to get one are to sign it or to check one.
#[derive(Clone, PartialEq, Eq)]
pub struct Genesis {
    id: LedgerId,
    name: String,
    open: bool,
    founder: [u8; 32],
    /// Sorted and without repeats, so the encoding is canonical.
    authors: BTreeSet<[u8; 32]>,
    admins: BTreeSet<[u8; 32]>,
    created_at: u64,
    signature: [u8; 64],
}

impl fmt::Debug for Genesis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Genesis")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("open", &self.open)
            .field("authors", &self.authors.len())
            .finish_non_exhaustive()
    }
}

/// The bytes a genesis record's signature and id cover: the domain tag, then each field,
/// variable-length ones prefixed with their length or count (u32, big-endian).
fn signed_bytes(
    name: &str,
    open: bool,
    founder: &[u8; 32],
    authors: &BTreeSet<[u8; 32]>,
    admins: &BTreeSet<[u8; 32]>,
    created_at: u64,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + 32 * (authors.len() + admins.len()));
    out.extend_from_slice(&(GENESIS_DOMAIN.len() as u32).to_be_bytes());
    out.extend_from_slice(GENESIS_DOMAIN);
    out.extend_from_slice(&GENESIS_VERSION.to_be_bytes());
    out.extend_from_slice(&(name.len() as u32).to_be_bytes());
    out.extend_from_slice(name.as_bytes());
    out.push(u8::from(open));
    out.extend_from_slice(founder);
    for set in [authors, admins] {
        out.extend_from_slice(&(set.len() as u32).to_be_bytes());
        for k in set {
            out.extend_from_slice(k);
        }
    }
    out.extend_from_slice(&created_at.to_be_bytes());
    out
}

fn check_name(name: &str) -> Result<(), GenesisError> {
    if name.is_empty() || name.len() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(GenesisError::BadName(name.chars().take(80).collect()));
    }
    Ok(())
}

pub(super) fn key_of(text: &str) -> Result<[u8; 32], GenesisError> {
    let bad = || GenesisError::BadKey(text.chars().take(80).collect());
    let peer: libp2p_identity::PeerId = text.parse().map_err(|_| bad())?;
    let key = public_key_of(&peer).ok_or_else(bad)?;
    VerifyingKey::from_bytes(&key).map_err(|_| bad())?;
    Ok(key)
}

pub(super) fn peer_text(key: &[u8; 32]) -> String {
    peer_id_of(key).map_or_else(|| hex::encode(key), |p| p.to_string())
}

impl Genesis {
    /// Signs a new genesis record with `founder`. The founder is always an administrator.
    pub fn sign(
        founder: &NodeKey,
        name: &str,
        open: bool,
        authors: &[[u8; 32]],
        admins: &[[u8; 32]],
        created_at: u64,
    ) -> Result<Self, GenesisError> {
        check_name(name)?;
        let authors: BTreeSet<[u8; 32]> = authors.iter().copied().collect();
        let mut admins: BTreeSet<[u8; 32]> = admins.iter().copied().collect();
        admins.insert(founder.public_bytes());
        if authors.len() > MAX_MEMBERS || admins.len() > MAX_MEMBERS {
            return Err(GenesisError::TooManyMembers(
                authors.len().max(admins.len()),
            ));
        }
        if !open && authors.is_empty() {
            return Err(GenesisError::NoAuthors);
        }
        for k in authors.iter().chain(&admins) {
            if VerifyingKey::from_bytes(k).is_err() {
                return Err(GenesisError::BadKey(hex::encode(k)));
            }
        }
        let founder_key = founder.public_bytes();
        let bytes = signed_bytes(name, open, &founder_key, &authors, &admins, created_at);
        Ok(Genesis {
            id: LedgerId(Sha256::digest(&bytes).into()),
            name: name.to_string(),
            open,
            founder: founder_key,
            authors,
            admins,
            created_at,
            signature: founder.sign(&bytes),
        })
    }

    /// The development ledger: open to any author, the same on every machine.
    pub fn development() -> Self {
        static DEV: OnceLock<Genesis> = OnceLock::new();
        DEV.get_or_init(|| {
            // A published seed: anyone can sign as the development founder, which is
            // the point (it proves nothing and guards nothing).
            let seed: [u8; 32] = Sha256::digest(b"lattice development ledger founder").into();
            Genesis::sign(&NodeKey::from_seed(seed), DEV_NAME, true, &[], &[], 0)
                .expect("the development genesis is well formed")
        })
        .clone()
    }

    /// Checks a record from outside: shape, keys, strict signature; recomputes the id.
    pub fn from_wire(wire: WireGenesis) -> Result<Self, GenesisError> {
        if wire.version != GENESIS_VERSION {
            return Err(GenesisError::UnsupportedVersion(wire.version));
        }
        check_name(&wire.name)?;
        if wire.authors.len() > MAX_MEMBERS || wire.admins.len() > MAX_MEMBERS {
            return Err(GenesisError::TooManyMembers(
                wire.authors.len().max(wire.admins.len()),
            ));
        }
        let founder = key_of(&wire.founder)?;
        let authors = wire
            .authors
            .iter()
            .map(|a| key_of(a))
            .collect::<Result<BTreeSet<_>, _>>()?;
        let admins = wire
            .admins
            .iter()
            .map(|a| key_of(a))
            .collect::<Result<BTreeSet<_>, _>>()?;
        if !wire.open && authors.is_empty() {
            return Err(GenesisError::NoAuthors);
        }
        let sig_bytes: [u8; 64] = hex::decode(&wire.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| GenesisError::BadSignature(wire.founder.clone()))?;
        let bytes = signed_bytes(
            &wire.name,
            wire.open,
            &founder,
            &authors,
            &admins,
            wire.created_at,
        );
        let verifying = VerifyingKey::from_bytes(&founder)
            .map_err(|_| GenesisError::BadKey(wire.founder.clone()))?;
        if verifying.is_weak() {
            return Err(GenesisError::BadKey(wire.founder.clone()));
        }
        verifying
            .verify_strict(&bytes, &Signature::from_bytes(&sig_bytes))
            .map_err(|_| GenesisError::BadSignature(wire.founder.clone()))?;
        Ok(Genesis {
            id: LedgerId(Sha256::digest(&bytes).into()),
            name: wire.name,
            open: wire.open,
            founder,
            authors,
            admins,
            created_at: wire.created_at,
            signature: sig_bytes,
        })
    }

    /// Parses the base64 form (`LATTICE_GENESIS`, the data directory, the HTTP route).
    pub fn from_base64(text: &str) -> Result<Self, GenesisError> {
        let bytes = BASE64
            .decode(text.trim())
            .map_err(|e| GenesisError::Malformed(e.to_string()))?;
        let wire: WireGenesis =
            serde_json::from_slice(&bytes).map_err(|e| GenesisError::Malformed(e.to_string()))?;
        Self::from_wire(wire)
    }

    /// Like [`Genesis::from_base64`], and the record must be of ledger `expected`.
    pub fn from_base64_for(text: &str, expected: LedgerId) -> Result<Self, GenesisError> {
        let g = Self::from_base64(text)?;
        if g.id != expected {
            return Err(GenesisError::WrongLedger {
                expected,
                actual: g.id,
            });
        }
        Ok(g)
    }

    pub fn to_wire(&self) -> WireGenesis {
        WireGenesis {
            version: GENESIS_VERSION,
            name: self.name.clone(),
            open: self.open,
            founder: peer_text(&self.founder),
            authors: self.authors.iter().map(peer_text).collect(),
            admins: self.admins.iter().map(peer_text).collect(),
            created_at: self.created_at,
            signature: hex::encode(self.signature),
        }
    }

    pub fn to_base64(&self) -> String {
        BASE64.encode(serde_json::to_vec(&self.to_wire()).expect("genesis serializes"))
    }

    pub fn id(&self) -> LedgerId {
        self.id
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn is_open(&self) -> bool {
        self.open
    }
    pub fn authors(&self) -> impl Iterator<Item = &[u8; 32]> {
        self.authors.iter()
    }
    pub fn is_author(&self, key: &[u8; 32]) -> bool {
        self.open || self.authors.contains(key)
    }
    /// Administrators sign membership records; the founder is always one.
    pub fn admins(&self) -> impl Iterator<Item = &[u8; 32]> {
        self.admins.iter()
    }
    pub fn is_admin(&self, key: &[u8; 32]) -> bool {
        self.admins.contains(key)
    }
}

/// A fresh demo ledger: `nodes` new node keys and a closed genesis naming exactly them,
/// signed by a throwaway founder, so a demo never writes into a real ledger (or into
/// the development one) and each demo run is a ledger of its own.
pub fn demo_ledger(nodes: usize) -> Result<(Genesis, Vec<NodeKey>), crate::ledger::keys::KeyError> {
    let keys = (0..nodes.max(1))
        .map(|_| NodeKey::generate())
        .collect::<Result<Vec<_>, _>>()?;
    let founder = NodeKey::generate()?;
    let authors: Vec<[u8; 32]> = keys.iter().map(NodeKey::public_bytes).collect();
    let genesis = Genesis::sign(
        &founder,
        "demo",
        false,
        &authors,
        &[],
        crate::time::now_ms(),
    )
    .expect("fresh keys and a fixed name make a well-formed genesis");
    Ok((genesis, keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> NodeKey {
        NodeKey::from_seed([n; 32])
    }

    #[test]
    fn a_genesis_round_trips_through_base64_with_the_same_id() {
        let g = Genesis::sign(&key(1), "bank", false, &[key(2).public_bytes()], &[], 5).unwrap();
        let back = Genesis::from_base64_for(&g.to_base64(), g.id()).unwrap();
        assert_eq!(back, g);
        assert!(back.is_author(&key(2).public_bytes()));
        assert!(!back.is_author(&key(1).public_bytes()));
    }

    #[test]
    fn the_id_changes_with_any_field_and_not_with_member_order() {
        let a = [key(2).public_bytes(), key(3).public_bytes()];
        let b = [key(3).public_bytes(), key(2).public_bytes()];
        let g1 = Genesis::sign(&key(1), "bank", false, &a, &[], 5).unwrap();
        let g2 = Genesis::sign(&key(1), "bank", false, &b, &[], 5).unwrap();
        assert_eq!(g1.id(), g2.id());
        let other_name = Genesis::sign(&key(1), "bank2", false, &a, &[], 5).unwrap();
        let other_time = Genesis::sign(&key(1), "bank", false, &a, &[], 6).unwrap();
        let other_founder = Genesis::sign(&key(4), "bank", false, &a, &[], 5).unwrap();
        let fewer = Genesis::sign(&key(1), "bank", false, &a[..1], &[], 5).unwrap();
        for g in [other_name, other_time, other_founder, fewer] {
            assert_ne!(g.id(), g1.id());
        }
    }

    #[test]
    fn a_tampered_record_is_refused_and_a_record_of_another_ledger_is_named() {
        let g = Genesis::sign(&key(1), "bank", false, &[key(2).public_bytes()], &[], 5).unwrap();
        let mut wire = g.to_wire();
        wire.authors.push(key(9).peer_id().to_string());
        assert!(matches!(
            Genesis::from_wire(wire),
            Err(GenesisError::BadSignature(_))
        ));
        let other =
            Genesis::sign(&key(1), "other", false, &[key(2).public_bytes()], &[], 5).unwrap();
        let err = Genesis::from_base64_for(&other.to_base64(), g.id()).unwrap_err();
        assert_eq!(err.kind(), "other_ledger");
        let text = err.to_string();
        assert!(text.contains(&g.id().to_hex()) && text.contains(&other.id().to_hex()));
    }

    #[test]
    fn the_development_ledger_is_fixed_and_open() {
        assert_eq!(Genesis::development().id(), Genesis::development().id());
        assert!(Genesis::development().is_open());
        assert!(Genesis::development().is_author(&key(7).public_bytes()));
    }

    #[test]
    fn a_closed_ledger_without_authors_is_refused() {
        assert_eq!(
            Genesis::sign(&key(1), "x", false, &[], &[], 0).unwrap_err(),
            GenesisError::NoAuthors
        );
        assert!(matches!(
            Genesis::sign(&key(1), "", false, &[key(1).public_bytes()], &[], 0),
            Err(GenesisError::BadName(_))
        ));
    }

    #[test]
    fn each_demo_ledger_is_new_and_admits_exactly_its_nodes() {
        let (g1, keys) = demo_ledger(3).unwrap();
        let (g2, _) = demo_ledger(3).unwrap();
        assert_ne!(g1.id(), g2.id());
        assert!(!g1.is_open());
        assert_eq!(g1.authors().count(), 3);
        assert!(keys.iter().all(|k| g1.is_author(&k.public_bytes())));
        assert!(!g1.is_author(&key(1).public_bytes()));
    }
}

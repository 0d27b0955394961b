//! An author's ed25519 key: it signs the entries the author writes, and (ed25519
//! PeerIds inline their key) its PeerId names the author in every entry. The node's
//! libp2p identity is the same key; reading it from configuration is `crate::identity`'s.

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use libp2p_identity::PeerId;

/// Why a configured key could not be used. Never carries the secret itself.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("is not base64")]
    NotBase64,
    #[error(
        "decodes to {0} bytes; expected a 32-byte ed25519 secret or a libp2p protobuf-encoded ed25519 keypair"
    )]
    WrongLength(usize),
    #[error("is a libp2p key that is not ed25519 or cannot be decoded")]
    NotEd25519,
    #[error("could not read randomness from the operating system: {0}")]
    NoRandomness(String),
}

/// A node's signing key. `Debug` never shows the secret.
#[derive(Clone)]
pub struct NodeKey {
    signing: SigningKey,
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeKey")
            .field("peer_id", &self.peer_id())
            .finish_non_exhaustive()
    }
}

impl NodeKey {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::NoRandomness(e.to_string()))?;
        Ok(Self::from_seed(seed))
    }

    /// The key whose 32-byte ed25519 secret is `seed`.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// The 32-byte secret (for the node's own identity and key file only).
    pub(crate) fn secret(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    pub fn public_bytes(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    pub fn peer_id(&self) -> PeerId {
        peer_id_of(&self.public_bytes()).expect("our own public key is a valid ed25519 key")
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }
}

/// The PeerId of an ed25519 public key, or `None` when the bytes are not a valid key.
pub fn peer_id_of(public: &[u8; 32]) -> Option<PeerId> {
    let key = libp2p_identity::ed25519::PublicKey::try_from_bytes(public).ok()?;
    Some(PeerId::from_public_key(&libp2p_identity::PublicKey::from(
        key,
    )))
}

/// The ed25519 public key inside a PeerId (ed25519 PeerIds inline their key), or `None`
/// when the PeerId is not an inlined ed25519 key.
pub fn public_key_of(peer: &PeerId) -> Option<[u8; 32]> {
    let multihash = peer.as_ref();
    if multihash.code() != 0 {
        return None;
    }
    let public = libp2p_identity::PublicKey::try_decode_protobuf(multihash.digest()).ok()?;
    Some(public.try_into_ed25519().ok()?.to_bytes())
}

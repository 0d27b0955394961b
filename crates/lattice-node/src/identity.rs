//! The node's ed25519 key: the same key names the node on libp2p (its PeerId) and signs
//! the entries it writes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
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

    /// Reads `LATTICE_P2P_KEY`'s value: base64 of the 32-byte secret (what `lattice keygen`
    /// writes), or base64 of a libp2p protobuf-encoded ed25519 keypair (what other libp2p
    /// tools write), so an existing libp2p identity can be kept.
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let bytes = BASE64
            .decode(text.trim())
            .map_err(|_| KeyError::NotBase64)?;
        if let Ok(seed) = <[u8; 32]>::try_from(bytes.as_slice()) {
            return Ok(Self::from_seed(seed));
        }
        if bytes.len() < 32 || bytes.len() > 128 {
            return Err(KeyError::WrongLength(bytes.len()));
        }
        let keypair = libp2p_identity::Keypair::from_protobuf_encoding(&bytes)
            .map_err(|_| KeyError::NotEd25519)?;
        let ed = keypair
            .try_into_ed25519()
            .map_err(|_| KeyError::NotEd25519)?;
        let seed: [u8; 32] = ed
            .secret()
            .as_ref()
            .try_into()
            .map_err(|_| KeyError::NotEd25519)?;
        Ok(Self::from_seed(seed))
    }

    /// Base64 of the 32-byte secret, the form `lattice keygen` writes.
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.signing.to_bytes())
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

    /// The libp2p keypair for the swarm: the same secret, so PeerId and entry author agree.
    pub fn to_libp2p(&self) -> libp2p_identity::Keypair {
        libp2p_identity::Keypair::ed25519_from_bytes(self.signing.to_bytes())
            .expect("a 32-byte ed25519 secret is always accepted")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_secret_round_trips_to_the_same_peer_id() {
        let key = NodeKey::generate().expect("randomness");
        let again = NodeKey::from_base64(&key.to_base64()).expect("own encoding decodes");
        assert_eq!(key.peer_id(), again.peer_id());
        assert_eq!(public_key_of(&key.peer_id()), Some(key.public_bytes()));
    }

    #[test]
    fn libp2p_protobuf_keypairs_are_accepted() {
        let key = NodeKey::from_seed([7; 32]);
        let proto = key
            .to_libp2p()
            .to_protobuf_encoding()
            .expect("ed25519 encodes");
        let decoded = NodeKey::from_base64(&BASE64.encode(proto)).expect("protobuf decodes");
        assert_eq!(decoded.peer_id(), key.peer_id());
    }

    #[test]
    fn malformed_keys_are_named() {
        assert_eq!(
            NodeKey::from_base64("not base64!").unwrap_err(),
            KeyError::NotBase64
        );
        assert_eq!(
            NodeKey::from_base64(&BASE64.encode([1u8; 5])).unwrap_err(),
            KeyError::WrongLength(5)
        );
        let dbg = format!("{:?}", NodeKey::from_seed([9; 32]));
        assert!(!dbg.contains(&NodeKey::from_seed([9; 32]).to_base64()));
    }
}

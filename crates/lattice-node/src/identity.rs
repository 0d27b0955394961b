//! The node's identity as configured: its ed25519 key read from `LATTICE_P2P_KEY` (or
//! written by `lattice keygen`), and the same key as the swarm's libp2p keypair, so the
//! node's PeerId and the author of the entries it writes agree. The key itself, and the
//! PeerId <-> public key mapping entries are checked with, are the ledger's
//! (`crate::ledger::keys`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

pub use crate::ledger::keys::{KeyError, NodeKey, peer_id_of, public_key_of};

impl NodeKey {
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
        BASE64.encode(self.secret())
    }

    /// The libp2p keypair for the swarm: the same secret, so PeerId and entry author agree.
    pub fn to_libp2p(&self) -> libp2p_identity::Keypair {
        libp2p_identity::Keypair::ed25519_from_bytes(self.secret())
            .expect("a 32-byte ed25519 secret is always accepted")
    }
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

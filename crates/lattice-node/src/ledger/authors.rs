//! The few authors behind many entries, decoded once per thread.
//!
//! Checking an entry from outside decodes its author twice (the PeerId text from base58,
//! then the ed25519 point, a field square root), and writing one out encodes the PeerId
//! again (base58 over 38 bytes, and libp2p decompresses the point to build it). A ledger
//! has a handful of authors and a sync moves thousands of their entries, so those costs
//! were a third of verifying one. Only authors that passed every check are remembered,
//! so a refused author takes exactly the path it took before; what is remembered is a
//! pure function of the bytes, so a hit answers exactly what a miss would.

use std::cell::RefCell;

use ed25519_dalek::VerifyingKey;

use crate::ledger::keys::{peer_id_of, public_key_of};

/// Authors remembered per thread; the oldest is forgotten first.
const CAPACITY: usize = 64;

struct Known {
    text: String,
    bytes: [u8; 32],
    key: VerifyingKey,
}

thread_local! {
    static KNOWN: RefCell<Vec<Known>> = const { RefCell::new(Vec::new()) };
}

/// Why an author's PeerId text was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AuthorError {
    /// Not an inlined ed25519 PeerId, or not a point on the curve.
    Bad,
    /// A small-order key: any signature verifies under it.
    Weak,
}

fn remember(known: Known) {
    KNOWN.with_borrow_mut(|all| {
        if all.len() == CAPACITY {
            all.remove(0);
        }
        all.push(known);
    });
}

/// The key behind an author's PeerId text, checked as an entry's author must be.
pub(crate) fn by_text(text: &str) -> Result<([u8; 32], VerifyingKey), AuthorError> {
    let hit = KNOWN.with_borrow(|all| {
        all.iter()
            .find(|k| k.text == text)
            .map(|k| (k.bytes, k.key))
    });
    if let Some(hit) = hit {
        return Ok(hit);
    }
    let peer: libp2p_identity::PeerId = text.parse().map_err(|_| AuthorError::Bad)?;
    let bytes = public_key_of(&peer).ok_or(AuthorError::Bad)?;
    Ok((bytes, by_bytes(&bytes)?))
}

/// The key behind an author's bytes, checked as an entry's author must be (a point,
/// not of small order), remembered with its PeerId text; [`by_text`] is this after
/// decoding the text, so the two refuse exactly the same keys.
pub(crate) fn by_bytes(bytes: &[u8; 32]) -> Result<VerifyingKey, AuthorError> {
    let hit = KNOWN.with_borrow(|all| all.iter().find(|k| &k.bytes == bytes).map(|k| k.key));
    if let Some(key) = hit {
        return Ok(key);
    }
    let peer = peer_id_of(bytes).ok_or(AuthorError::Bad)?;
    let key = VerifyingKey::from_bytes(bytes).map_err(|_| AuthorError::Bad)?;
    if key.is_weak() {
        return Err(AuthorError::Weak);
    }
    remember(Known {
        text: peer.to_string(),
        bytes: *bytes,
        key,
    });
    Ok(key)
}

/// An author's PeerId text (hex when the bytes are not a valid key, which an entry's
/// author never is).
pub(crate) fn text_of(bytes: &[u8; 32]) -> String {
    let hit = KNOWN.with_borrow(|all| {
        all.iter()
            .find(|k| &k.bytes == bytes)
            .map(|k| k.text.clone())
    });
    if let Some(text) = hit {
        return text;
    }
    let Some(peer) = peer_id_of(bytes) else {
        return hex::encode(bytes);
    };
    // A key that passes is remembered for next time; a refused one is not.
    let _ = by_bytes(bytes);
    peer.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::keys::NodeKey;

    fn forget_all() {
        KNOWN.with_borrow_mut(Vec::clear);
    }

    #[test]
    fn a_remembered_author_answers_what_a_fresh_decoding_does() {
        forget_all();
        let key = NodeKey::from_seed([7; 32]);
        let text = key.peer_id().to_string();
        let fresh = by_text(&text).expect("a real key");
        assert_eq!(fresh.0, key.public_bytes());
        let cached = by_text(&text).expect("remembered");
        assert_eq!(cached.0, fresh.0);
        assert_eq!(cached.1, fresh.1);
        assert_eq!(text_of(&fresh.0), text);
        forget_all();
        assert_eq!(text_of(&fresh.0), text, "the same text without the cache");
    }

    #[test]
    fn refused_authors_are_never_remembered_and_stay_refused() {
        forget_all();
        assert_eq!(by_text("not a peer id").unwrap_err(), AuthorError::Bad);
        assert_eq!(by_text("not a peer id").unwrap_err(), AuthorError::Bad);
        // The identity point (small order): a valid PeerId whose key is weak.
        let mut weak = [0u8; 32];
        weak[0] = 1;
        let text = peer_id_of(&weak)
            .expect("libp2p takes the point")
            .to_string();
        assert_eq!(by_text(&text).unwrap_err(), AuthorError::Weak);
        assert_eq!(text_of(&weak), text);
        assert_eq!(
            by_text(&text).unwrap_err(),
            AuthorError::Weak,
            "still refused"
        );
        assert!(KNOWN.with_borrow(Vec::is_empty));
    }

    #[test]
    fn the_oldest_author_is_forgotten_when_the_cache_is_full() {
        forget_all();
        let texts: Vec<String> = (0..=CAPACITY as u8)
            .map(|i| NodeKey::from_seed([i; 32]).peer_id().to_string())
            .collect();
        for t in &texts {
            by_text(t).expect("real keys");
        }
        KNOWN.with_borrow(|all| {
            assert_eq!(all.len(), CAPACITY);
            assert!(all.iter().all(|k| k.text != texts[0]));
            assert_eq!(
                all.last().map(|k| k.text.as_str()),
                texts.last().map(String::as_str)
            );
        });
    }
}

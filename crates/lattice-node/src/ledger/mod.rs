//! The ledger: signed entries, the Merkle tree over their ids, and the durable store.

mod authors;
mod canonical;
pub mod entry;
pub mod genesis;
pub mod keys;
pub mod membership;
pub mod merkle;
pub mod store;

pub use canonical::{PayloadError, parse_payload, to_canonical_json};
pub use entry::{DEFAULT_MAX_PAYLOAD, Entry, EntryError, EntryId, WireEntry};
pub use genesis::{Genesis, GenesisError, Ledger, LedgerId, UnauthorizedAuthor};
pub use membership::{MembersInfo, MembershipError, Op};
pub use merkle::{Hash, InclusionProof, Merkle, Prefix, ProofStep, Subtree, verify_inclusion};
pub use store::{Appended, OpenReport, Store, StoreError, StoreOptions, StoreStats, VerifyReport};

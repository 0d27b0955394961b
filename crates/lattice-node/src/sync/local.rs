//! What reconciliation needs from our side of it: the ledger's rules, the Merkle tree
//! over our ids, our entries by id, and a way to store entries already verified.
//!
//! The node's [`Store`] is one such side; the simulator's in-memory ledgers are another,
//! so the simulator runs the very reconciliation the lungs run (both v1's walk and v2's
//! sketch, the pull, the push and the refusal rules), not a stand-in.

use std::future::Future;

use crate::ledger::merkle::Hash;
use crate::ledger::{Entry, EntryId, Ledger, Prefix, Store, StoreError, Subtree};

/// Our side of a reconciliation (and the answering side's, for [`super::reconcile::answer`]).
pub trait Local: Sync {
    /// The ledger held, with its membership rules and its memory of refused ids.
    fn ledger(&self) -> &Ledger;
    fn root(&self) -> Hash;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn subtree(&self, prefix: &Prefix) -> Subtree;
    fn ids_under(&self, prefix: &Prefix) -> Vec<EntryId>;
    /// Every id held, in any order: for work on the whole set where order does not
    /// matter (v2's sketch), cheaper than listing them in order where the side keeps
    /// them flat.
    fn ids_any_order(&self) -> Vec<EntryId> {
        self.ids_under(&Prefix::ROOT)
    }
    /// A page of the ids below `prefix` after `after`, and whether more follow.
    fn ids_page(
        &self,
        prefix: &Prefix,
        after: Option<&EntryId>,
        limit: usize,
    ) -> (Vec<EntryId>, bool);
    /// The entries among `ids` that are held, in no particular order.
    fn get_many(&self, ids: &[EntryId]) -> Result<Vec<Entry>, StoreError>;
    /// Stores entries that verified and that [`Ledger::check`] admitted, durably before
    /// it returns; answers how many were new.
    fn store_verified(
        &self,
        entries: Vec<Entry>,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;
}

impl Local for Store {
    fn ledger(&self) -> &Ledger {
        Store::ledger(self)
    }
    fn root(&self) -> Hash {
        Store::root(self)
    }
    fn len(&self) -> usize {
        Store::len(self)
    }
    fn subtree(&self, prefix: &Prefix) -> Subtree {
        Store::subtree(self, prefix)
    }
    fn ids_under(&self, prefix: &Prefix) -> Vec<EntryId> {
        Store::ids_under(self, prefix)
    }
    fn ids_any_order(&self) -> Vec<EntryId> {
        Store::ids_any_order(self)
    }
    fn ids_page(
        &self,
        prefix: &Prefix,
        after: Option<&EntryId>,
        limit: usize,
    ) -> (Vec<EntryId>, bool) {
        Store::ids_page(self, prefix, after, limit)
    }
    fn get_many(&self, ids: &[EntryId]) -> Result<Vec<Entry>, StoreError> {
        Store::get_many(self, ids)
    }
    async fn store_verified(&self, entries: Vec<Entry>) -> Result<usize, StoreError> {
        Ok(self
            .append_batch(entries)
            .await?
            .iter()
            .filter(|a| a.inserted)
            .count())
    }
}

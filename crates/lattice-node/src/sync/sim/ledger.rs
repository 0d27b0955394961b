//! The simulator's ledgers and the reconciliation between them: an in-memory [`Local`]
//! (real signed entries under the real Merkle tree and membership rules) and a
//! [`Remote`] that carries the real reconciliation's requests to another node's ledger
//! through the answering code the lungs serve, over a faulty network: a request or its
//! answer can be lost (the reconciliation fails midway, keeping what it stored, and the
//! schedule retries), and a request can arrive twice.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::faults::Rng;
use crate::ledger::merkle::Hash;
use crate::ledger::{
    DEFAULT_MAX_PAYLOAD, Entry, EntryId, Ledger, Merkle, Prefix, StoreError, Subtree,
};
use crate::sync::local::Local;
use crate::sync::reconcile::{
    ChildrenRequest, ChildrenResponse, EntriesMessage, FetchRequest, IdsRequest, IdsResponse,
    LedgerState, PushResponse, Remote, TransportError, answer,
};
use crate::sync::reconcile_v2::{self, ShortFetchRequest, SketchRequest};

/// A node's durable ledger: what survives its crashes.
#[derive(Default)]
pub(crate) struct MemLedger {
    ledger: Ledger,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    tree: Merkle,
    entries: BTreeMap<EntryId, Entry>,
}

impl MemLedger {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("not poisoned")
    }

    pub(crate) fn contains(&self, id: &EntryId) -> bool {
        self.inner().entries.contains_key(id)
    }

    /// Stores entries this node wrote or was gossiped (admitted by the ledger's rules,
    /// as the store does); answers how many were new.
    pub(crate) fn insert(&self, entries: Vec<Entry>) -> usize {
        let admitted: Vec<Entry> = entries
            .into_iter()
            .filter(|e| self.ledger.check(e).is_ok())
            .collect();
        let mut inner = self.inner();
        let mut new = Vec::new();
        for e in admitted {
            if inner.tree.insert(&e.id()) {
                inner.entries.insert(e.id(), e.clone());
                new.push(e);
            }
        }
        drop(inner);
        // The open ledger has no records to learn; a closed one would learn them here.
        let _ = self.ledger.learn(&new);
        new.len()
    }
}

impl Local for MemLedger {
    fn ledger(&self) -> &Ledger {
        &self.ledger
    }
    fn root(&self) -> Hash {
        self.inner().tree.root()
    }
    fn len(&self) -> usize {
        self.inner().tree.len()
    }
    fn subtree(&self, prefix: &Prefix) -> Subtree {
        self.inner().tree.subtree(prefix)
    }
    fn ids_under(&self, prefix: &Prefix) -> Vec<EntryId> {
        self.inner().tree.ids_under(prefix)
    }
    fn ids_page(
        &self,
        prefix: &Prefix,
        after: Option<&EntryId>,
        limit: usize,
    ) -> (Vec<EntryId>, bool) {
        self.inner().tree.ids_page(prefix, after, limit)
    }
    fn get_many(&self, ids: &[EntryId]) -> Result<Vec<Entry>, StoreError> {
        let inner = self.inner();
        Ok(ids
            .iter()
            .filter_map(|id| inner.entries.get(id).cloned())
            .collect())
    }
    async fn store_verified(&self, entries: Vec<Entry>) -> Result<usize, StoreError> {
        Ok(self.insert(entries))
    }
}

/// The network's weather for one reconciliation, and its byte counts.
pub(crate) struct Net<'a> {
    pub rng: &'a mut Rng,
    /// Percent of requests lost, and (separately) of answers lost.
    pub loss: u64,
    /// Percent of requests delivered twice.
    pub duplicate: u64,
    pub sent: u64,
    pub received: u64,
    /// Requests that reached the other side, duplicates included.
    pub delivered: u64,
    pub lost: u64,
}

/// The other node, as the real reconciliation sees it.
pub(crate) struct SimRemote<'a> {
    pub theirs: &'a MemLedger,
    pub name: String,
    pub net: Mutex<Net<'a>>,
}

fn lost(what: &str) -> TransportError {
    TransportError {
        kind: "timeout".into(),
        message: format!("the simulated network lost the {what}"),
    }
}

fn refused(message: String) -> TransportError {
    TransportError {
        kind: "bad_request".into(),
        message,
    }
}

impl SimRemote<'_> {
    /// One request and its answer over the faulty network: `serve` runs once per copy
    /// delivered, and the first copy's answer comes back unless it is lost.
    fn call<T>(
        &self,
        request_bytes: usize,
        serve: impl Fn(&MemLedger) -> Result<T, TransportError>,
        answer_bytes: impl Fn(&T) -> usize,
    ) -> Result<T, TransportError> {
        let mut guard = self.net.lock().expect("not poisoned");
        let net = &mut *guard;
        net.sent += request_bytes as u64;
        if net.rng.chance(net.loss) {
            net.lost += 1;
            return Err(lost("request"));
        }
        let copies = 1 + u64::from(net.rng.chance(net.duplicate));
        net.delivered += copies;
        let answer = serve(self.theirs);
        for _ in 1..copies {
            let _ = serve(self.theirs);
        }
        if net.rng.chance(net.loss) {
            net.lost += 1;
            return Err(lost("answer"));
        }
        if let Ok(a) = &answer {
            net.received += answer_bytes(a) as u64;
        }
        answer
    }
}

fn entries_bytes(m: &EntriesMessage) -> usize {
    m.entries.iter().map(|e| e.get().len()).sum()
}

impl Remote for SimRemote<'_> {
    async fn state(&self) -> Result<LedgerState, TransportError> {
        self.call(0, |l| Ok(answer::state(l, &self.name)), |_| 200)
    }
    async fn children(&self, req: &ChildrenRequest) -> Result<ChildrenResponse, TransportError> {
        self.call(
            req.prefixes.len() * 8,
            |l| answer::children(l, req).map_err(refused),
            |r| r.children.len() * 4 * 40,
        )
    }
    async fn ids(&self, req: &IdsRequest) -> Result<IdsResponse, TransportError> {
        self.call(
            64,
            |l| answer::ids(l, req).map_err(refused),
            |r| r.ids.len() * 32,
        )
    }
    async fn fetch(&self, req: &FetchRequest) -> Result<EntriesMessage, TransportError> {
        self.call(
            req.ids.len() * 32,
            |l| answer::fetch(l, req).map_err(refused),
            entries_bytes,
        )
    }
    async fn push(&self, req: &EntriesMessage) -> Result<PushResponse, TransportError> {
        self.call(
            entries_bytes(req),
            |l| {
                let entries = answer::verify_push(req, DEFAULT_MAX_PAYLOAD)
                    .map_err(|e| refused(e.to_string()))?;
                let n = entries.len();
                let accepted = l.insert(entries);
                Ok(PushResponse {
                    accepted,
                    already_present: n - accepted,
                })
            },
            |_| 32,
        )
    }
    async fn sketch(&self, req: &SketchRequest) -> Result<Vec<u8>, TransportError> {
        let wire = req.encode();
        self.call(
            wire.len(),
            |l| reconcile_v2::answer::sketch(l, &wire).map_err(|e| refused(e.to_string())),
            Vec::len,
        )
    }
    async fn fetch_short(&self, req: &ShortFetchRequest) -> Result<EntriesMessage, TransportError> {
        let wire = req.encode();
        self.call(
            wire.len(),
            |l| reconcile_v2::answer::fetch(l, &wire).map_err(refused),
            entries_bytes,
        )
    }
    fn bytes(&self) -> (u64, u64) {
        let net = self.net.lock().expect("not poisoned");
        (net.sent, net.received)
    }
}

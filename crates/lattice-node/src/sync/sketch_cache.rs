//! The answering side's work for one reconciliation, kept between its requests.
//!
//! A v2 reconciliation asks one node for a few pages of coded symbols and then for
//! entries by short id, all under one salt. Hashing every id of a million-entry ledger
//! to its short id, and mapping each short id to its symbols, is most of the answering
//! side's work; redone for every page and every fetch it dominated the CPU of a sync.
//! So the prepared encoder (short ids, their mapping's position) and the ids behind it
//! are kept per `(salt, root)`: a page continues where the last one ended, and a fetch
//! by short id is a scan of kept short ids. A changed root is a different set, so it is
//! a different key; a salt not seen (or evicted) is simply prepared again.
//!
//! Memory is bounded by count and by ids held (about 64 bytes per id: the id and its
//! mapping), and entries expire after a while: a reconciliation's requests follow one
//! another within a request timeout, not minutes apart.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::riblt::{CodedSymbol, Encoder, Salt};
use crate::ledger::EntryId;
use crate::ledger::merkle::Hash;

/// Most reconciliations kept at once.
pub const MAX_SLOTS: usize = 4;
/// Most ids held across all kept reconciliations (about 64 B each: 160 MB at most).
pub const MAX_IDS: usize = 2_500_000;
/// How long a kept reconciliation outlives its last request.
pub const MAX_AGE: Duration = Duration::from_secs(60);

/// One set's ids under one salt, ready to produce symbols and to resolve short ids.
pub struct Prepared {
    /// The ids, in the order of the encoder's short ids.
    ids: Vec<EntryId>,
    encoder: Encoder,
}

impl Prepared {
    pub fn new(salt: &Salt, ids: Vec<EntryId>) -> Prepared {
        let encoder = Encoder::from_ids(salt, &ids);
        Prepared { ids, encoder }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Symbols `start..start + count`.
    pub fn window(&mut self, start: u64, count: usize) -> Vec<CodedSymbol> {
        self.encoder.seek(start);
        self.encoder.window(count)
    }

    /// The estimator of the difference's size (see `reconcile_v2::buckets`).
    pub fn buckets(&self) -> [u8; super::reconcile_v2::BUCKETS] {
        super::reconcile_v2::buckets(self.encoder.shorts())
    }

    /// The ids whose short ids are among `shorts` (all of them when short ids collide),
    /// at most `limit`.
    pub fn resolve(&self, shorts: &[u64], limit: usize) -> Vec<EntryId> {
        let wanted: HashSet<u64, BuildHasherDefault<ShortHasher>> =
            shorts.iter().copied().collect();
        self.encoder
            .shorts()
            .zip(&self.ids)
            .filter(|(s, _)| wanted.contains(s))
            .map(|(_, id)| *id)
            .take(limit)
            .collect()
    }
}

/// Short ids are keyed hashes already: a set of them needs no hashing again. (The
/// few short ids of one fetch are the asker's to choose; they cost it one lookup each.)
#[derive(Default)]
struct ShortHasher(u64);

impl Hasher for ShortHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

struct Slot {
    salt: Salt,
    root: Hash,
    len: usize,
    used: Instant,
    uses: u64,
    prepared: Arc<Mutex<Prepared>>,
}

/// Kept reconciliations, by `(salt, root)`.
pub struct SketchCache {
    slots: Mutex<Vec<Slot>>,
    max_slots: usize,
    max_ids: usize,
    max_age: Duration,
    prepared: AtomicU64,
    reused: AtomicU64,
}

impl Default for SketchCache {
    fn default() -> Self {
        Self::new(MAX_SLOTS, MAX_IDS, MAX_AGE)
    }
}

impl SketchCache {
    pub fn new(max_slots: usize, max_ids: usize, max_age: Duration) -> SketchCache {
        SketchCache {
            slots: Mutex::new(Vec::new()),
            max_slots,
            max_ids,
            max_age,
            prepared: AtomicU64::new(0),
            reused: AtomicU64::new(0),
        }
    }

    /// The one the node's answering side uses.
    pub fn global() -> &'static SketchCache {
        static CACHE: OnceLock<SketchCache> = OnceLock::new();
        CACHE.get_or_init(SketchCache::default)
    }

    /// The prepared set of `(salt, root)`, from the cache or made from `ids` (called
    /// only on a miss, outside the cache's lock).
    pub fn get(
        &self,
        salt: &Salt,
        root: &Hash,
        ids: impl FnOnce() -> Vec<EntryId>,
    ) -> Arc<Mutex<Prepared>> {
        let now = Instant::now();
        {
            let mut slots = self.slots.lock().expect("not poisoned");
            slots.retain(|s| now.duration_since(s.used) <= self.max_age);
            if let Some(s) = slots
                .iter_mut()
                .find(|s| s.salt == *salt && s.root == *root)
            {
                s.used = now;
                s.uses += 1;
                self.reused.fetch_add(1, Ordering::Relaxed);
                return s.prepared.clone();
            }
        }
        let prepared = Arc::new(Mutex::new(Prepared::new(salt, ids())));
        self.prepared.fetch_add(1, Ordering::Relaxed);
        let len = prepared.lock().expect("not poisoned").len();
        if len > self.max_ids {
            // Larger than the whole budget: used once, not kept.
            return prepared;
        }
        let mut slots = self.slots.lock().expect("not poisoned");
        slots.retain(|s| !(s.salt == *salt && s.root == *root));
        // Least recently used first out, until the new one fits.
        slots.sort_by_key(|s| std::cmp::Reverse(s.used));
        while slots.len() >= self.max_slots
            || slots.iter().map(|s| s.len).sum::<usize>() + len > self.max_ids
        {
            slots.pop();
        }
        slots.push(Slot {
            salt: *salt,
            root: *root,
            len,
            used: now,
            uses: 0,
            prepared: prepared.clone(),
        });
        prepared
    }

    /// Sets prepared (cache misses) and reuses (hits) so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.prepared.load(Ordering::Relaxed),
            self.reused.load(Ordering::Relaxed),
        )
    }

    /// How often the kept set of `(salt, root)` was reused, if it is kept.
    pub fn uses(&self, salt: &Salt, root: &Hash) -> Option<u64> {
        let slots = self.slots.lock().expect("not poisoned");
        slots
            .iter()
            .find(|s| s.salt == *salt && s.root == *root)
            .map(|s| s.uses)
    }

    /// Reconciliations kept now.
    pub fn len(&self) -> usize {
        self.slots.lock().expect("not poisoned").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(range: std::ops::Range<u8>) -> Vec<EntryId> {
        range.map(|i| EntryId([i; 32])).collect()
    }

    #[test]
    fn a_second_request_of_a_reconciliation_reuses_its_prepared_set() {
        let cache = SketchCache::default();
        let salt = Salt([1; 16]);
        let root = [7; 32];
        let mut built = 0;
        let a = cache.get(&salt, &root, || {
            built += 1;
            ids(0..50)
        });
        let first = a.lock().unwrap().window(0, 5);
        let b = cache.get(&salt, &root, || {
            built += 1;
            ids(0..50)
        });
        assert_eq!(built, 1);
        assert_eq!(cache.counts(), (1, 1));
        assert_eq!(cache.uses(&salt, &root), Some(1));
        // The kept encoder continues, and goes back when asked for an earlier page.
        let next = b.lock().unwrap().window(5, 3);
        let again = b.lock().unwrap().window(0, 8);
        let mut fresh = Prepared::new(&salt, ids(0..50));
        assert_eq!(again, fresh.window(0, 8));
        assert_eq!([first, next].concat(), again);
    }

    #[test]
    fn a_changed_root_or_another_salt_prepares_again() {
        let cache = SketchCache::default();
        let salt = Salt([1; 16]);
        cache.get(&salt, &[7; 32], || ids(0..50));
        let mut built = false;
        cache.get(&salt, &[8; 32], || {
            built = true;
            ids(0..51)
        });
        assert!(built, "another root is another set");
        built = false;
        cache.get(&Salt([2; 16]), &[8; 32], || {
            built = true;
            ids(0..51)
        });
        assert!(built, "another salt is another reconciliation");
        assert_eq!(cache.counts(), (3, 0));
    }

    #[test]
    fn the_cache_stays_within_its_slots_and_ids_and_forgets_old_ones() {
        let cache = SketchCache::new(2, 120, Duration::from_millis(0));
        for k in 0..5u8 {
            cache.get(&Salt([k; 16]), &[k; 32], || ids(0..50));
            assert!(cache.len() <= 2);
        }
        let cache = SketchCache::new(4, 120, Duration::from_secs(60));
        for k in 0..5u8 {
            cache.get(&Salt([k; 16]), &[k; 32], || ids(0..50));
        }
        assert_eq!(cache.len(), 2, "three sets of 50 ids exceed 120");
        cache.get(&Salt([9; 16]), &[9; 32], || ids(0..200));
        assert_eq!(cache.len(), 2, "a set over the whole budget is not kept");
        // Expired ones go at the next look-up.
        let cache = SketchCache::new(4, 1000, Duration::from_millis(1));
        cache.get(&Salt([1; 16]), &[1; 32], || ids(0..5));
        std::thread::sleep(Duration::from_millis(5));
        cache.get(&Salt([2; 16]), &[2; 32], || ids(0..5));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn resolving_short_ids_finds_exactly_their_ids() {
        let salt = Salt([3; 16]);
        let all = ids(0..100);
        let p = Prepared::new(&salt, all.clone());
        let asked: Vec<u64> = [all[4], all[60]].iter().map(|i| salt.short_id(i)).collect();
        assert_eq!(p.resolve(&asked, 10), vec![all[4], all[60]]);
        assert_eq!(p.resolve(&[12345], 10), Vec::<EntryId>::new());
        assert_eq!(p.resolve(&asked, 1), vec![all[4]]);
    }
}

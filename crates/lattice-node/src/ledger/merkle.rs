//! A Merkle tree over a *set* of entry ids.
//!
//! The tree is a binary radix (crit-bit) trie keyed by the bits of each id: a branch
//! exists only where the ids below it first differ. Its shape therefore depends only on
//! which ids are present, never on the order they arrived, so neither does the root.
//!
//! Hashing follows RFC 6962's domain separation: a leaf is `H(0x00 || id)` and a branch is
//! `H(0x01 || left || right)`, so no leaf can pose as a branch. The empty set's root is
//! `H()` (SHA-256 of nothing), as in RFC 6962.
//!
//! Inserting an id rehashes only the path from the new leaf to the root: O(log n) hashes
//! for random ids (they are SHA-256 outputs). [`Merkle::hash_count`] counts them so
//! tests and benchmarks can check it.
//!
//! For reconciliation the tree answers, for any bit prefix of the id space, the hash of
//! the ids below it and the ids themselves. Two nodes holding the same ids under a prefix
//! get the same hash for it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::entry::EntryId;

pub type Hash = [u8; 32];

const LEAF_TAG: u8 = 0x00;
const NODE_TAG: u8 = 0x01;

/// The root of the empty ledger: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

pub fn leaf_hash(id: &EntryId) -> Hash {
    let mut h = Sha256::new();
    h.update([LEAF_TAG]);
    h.update(id.as_bytes());
    h.finalize().into()
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([NODE_TAG]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Bit `i` of `id`, most significant bit of byte 0 first.
fn bit(id: &[u8; 32], i: u16) -> usize {
    ((id[(i / 8) as usize] >> (7 - (i % 8))) & 1) as usize
}

/// Index of the first bit where `a` and `b` differ, or `None` when they are equal.
fn first_difference(a: &[u8; 32], b: &[u8; 32]) -> Option<u16> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .map(|i| i as u16 * 8 + (a[i] ^ b[i]).leading_zeros() as u16)
}

/// A bit prefix of the id space: the first `len` bits of `bits`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prefix {
    bits: [u8; 32],
    len: u16,
}

impl Prefix {
    /// The whole id space.
    pub const ROOT: Prefix = Prefix {
        bits: [0; 32],
        len: 0,
    };

    /// The first `len` bits of `bits` (bits beyond `len` are cleared). `len` is at most 256.
    pub fn new(bits: [u8; 32], len: u16) -> Option<Prefix> {
        if len > 256 {
            return None;
        }
        let mut p = Prefix { bits, len };
        for i in len..256 {
            p.bits[(i / 8) as usize] &= !(0x80 >> (i % 8));
        }
        Some(p)
    }

    pub fn len(&self) -> u16 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// This prefix extended by one bit.
    pub fn child(&self, side: usize) -> Option<Prefix> {
        if self.len >= 256 {
            return None;
        }
        let mut bits = self.bits;
        if side == 1 {
            bits[(self.len / 8) as usize] |= 0x80 >> (self.len % 8);
        }
        Prefix::new(bits, self.len + 1)
    }

    /// Whether `id` starts with this prefix.
    pub fn contains(&self, id: &[u8; 32]) -> bool {
        first_difference(&self.bits, id).is_none_or(|d| d >= self.len)
    }

    /// Text form: the bits as '0'/'1' characters ("" is the root).
    pub fn to_bit_string(&self) -> String {
        (0..self.len)
            .map(|i| if bit(&self.bits, i) == 1 { '1' } else { '0' })
            .collect()
    }

    pub fn from_bit_string(s: &str) -> Option<Prefix> {
        if s.len() > 256 {
            return None;
        }
        let mut p = Prefix::ROOT;
        for c in s.chars() {
            p = p.child(match c {
                '0' => 0,
                '1' => 1,
                _ => return None,
            })?;
        }
        Some(p)
    }
}

/// A node of the tree: an index into `leaves` when [`LEAF`] is set, else into `branches`.
type Ref = u32;
const LEAF: Ref = 1 << 31;

/// 40 bytes. A leaf's hash is not kept: it costs one SHA-256 to recompute, and only the
/// bottom step of an insert or a proof needs it.
#[derive(Clone, Copy, Debug)]
struct Leaf {
    id: [u8; 32],
    /// Where the store keeps this entry (its row); 0 for a tree that is no store's.
    seq: u64,
}

/// 52 bytes: with its leaf, about 92 bytes per id.
#[derive(Clone, Copy, Debug)]
struct Branch {
    hash: Hash,
    children: [Ref; 2],
    count: u32,
    /// The leftmost leaf below: its id carries the bits every id below shares.
    first: u32,
    /// The first bit at which ids below differ; all share the bits before it.
    crit: u16,
}

/// A step of an inclusion proof: the branch's critical bit and the sibling's hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofStep {
    pub bit: u16,
    #[serde(with = "hex_hash")]
    pub sibling: Hash,
}

/// Proof that `id` is in the ledger whose root is `root`. Steps run from the root down.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    pub id: EntryId,
    #[serde(with = "hex_hash")]
    pub root: Hash,
    pub steps: Vec<ProofStep>,
}

/// Checks an inclusion proof against a root, with no tree at hand.
pub fn verify_inclusion(root: &Hash, id: &EntryId, steps: &[ProofStep]) -> bool {
    // Critical bits must strictly increase from the root down, as in any real tree.
    if steps.windows(2).any(|w| w[0].bit >= w[1].bit) || steps.iter().any(|s| s.bit >= 256) {
        return false;
    }
    let mut acc = leaf_hash(id);
    for step in steps.iter().rev() {
        acc = if bit(id.as_bytes(), step.bit) == 0 {
            node_hash(&acc, &step.sibling)
        } else {
            node_hash(&step.sibling, &acc)
        };
    }
    &acc == root
}

/// What the tree holds below a prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subtree {
    pub hash: Hash,
    pub count: usize,
}

/// The Merkle tree over a set of entry ids.
///
/// Nodes live in two arenas (leaves, branches) linked by 32-bit indexes rather than one
/// heap allocation per node: at a million ids that is about 92 MB instead of about 190.
/// Ids are never removed (a store that evicts rebuilds its tree), so the arenas only grow.
#[derive(Debug, Default)]
pub struct Merkle {
    leaves: Vec<Leaf>,
    branches: Vec<Branch>,
    root: Option<Ref>,
    hash_count: u64,
}

impl Merkle {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds the tree for `ids` in one pass: exactly 2n-1 hashes after sorting.
    pub fn from_ids(ids: Vec<EntryId>) -> Self {
        Self::from_ids_with_seq(ids.into_iter().map(|id| (id, 0)).collect())
    }

    /// As [`Merkle::from_ids`], remembering for each id where the store keeps it
    /// ([`Merkle::seq_of`]). Of two equal ids, the one with the lower `seq` is kept.
    pub fn from_ids_with_seq(mut ids: Vec<(EntryId, u64)>) -> Self {
        ids.sort_unstable();
        ids.dedup_by(|b, a| a.0 == b.0);
        assert!(
            (ids.len() as u64) < LEAF as u64,
            "a tree holds fewer than 2^31 ids"
        );
        let mut tree = Merkle::new();
        tree.leaves = ids
            .into_iter()
            .map(|(id, seq)| Leaf { id: id.0, seq })
            .collect();
        if !tree.leaves.is_empty() {
            tree.branches.reserve_exact(tree.leaves.len() - 1);
            let mut hashes = 0;
            let root = if tree.leaves.len() >= PARALLEL_BUILD {
                build_two_threads(&tree.leaves, &mut tree.branches, &mut hashes)
            } else {
                build_sorted(&tree.leaves, 0, &mut tree.branches, &mut hashes).0
            };
            tree.hash_count = hashes;
            tree.root = Some(root);
        }
        tree
    }

    pub fn root(&self) -> Hash {
        self.root.map_or_else(empty_root, |r| self.hash_of(r))
    }

    pub fn len(&self) -> usize {
        self.root.map_or(0, |r| self.count(r))
    }

    pub fn is_empty(&self) -> bool {
        self.root.is_none()
    }

    /// SHA-256 compressions done building and inserting so far (for tests and
    /// benchmarks); a leaf hash recomputed to answer a read is not counted.
    pub fn hash_count(&self) -> u64 {
        self.hash_count
    }

    /// Adds `id`; returns false when it was already present (nothing changes).
    pub fn insert(&mut self, id: &EntryId) -> bool {
        self.insert_with_seq(id, 0)
    }

    /// Adds `id`, kept by the store at `seq`; returns false when it was already present
    /// (nothing changes, not even its `seq`).
    pub fn insert_with_seq(&mut self, id: &EntryId, seq: u64) -> bool {
        let Some(mut at) = self.root else {
            self.root = Some(self.push_leaf(id.0, seq));
            self.hash_count += 1;
            return true;
        };
        // Down to the node the new id leaves the shared bits of; the branches passed.
        let mut path: Vec<(u32, usize)> = Vec::new();
        let diff = loop {
            let Some(diff) = first_difference(self.some_id(at), &id.0) else {
                return false; // `some_id` is a real member
            };
            if diff < self.crit(at) {
                break diff;
            }
            let b = &self.branches[at as usize];
            let side = bit(&id.0, b.crit);
            path.push((at, side));
            at = b.children[side];
        };
        assert!(
            (self.leaves.len() as u64) < LEAF as u64 - 1,
            "a tree holds fewer than 2^31 ids"
        );
        let leaf = self.push_leaf(id.0, seq);
        let children = if bit(&id.0, diff) == 0 {
            [leaf, at]
        } else {
            [at, leaf]
        };
        let hash = node_hash(&self.hash_of(children[0]), &self.hash_of(children[1]));
        // The new leaf's hash, the old node's if it is a leaf, and the branch's.
        self.hash_count += 2 + u64::from(at & LEAF != 0);
        let branch = Branch {
            hash,
            children,
            count: self.count(at) as u32 + 1,
            first: self.first_leaf(children[0]),
            crit: diff,
        };
        let new = self.branches.len() as Ref;
        self.branches.push(branch);
        match path.last() {
            None => self.root = Some(new),
            Some(&(parent, side)) => self.branches[parent as usize].children[side] = new,
        }
        for &(b, side) in path.iter().rev() {
            let children = self.branches[b as usize].children;
            // The child on the path is a branch (hash kept); the other may be a leaf.
            self.hash_count += 1 + u64::from(children[1 - side] & LEAF != 0);
            let hash = node_hash(&self.hash_of(children[0]), &self.hash_of(children[1]));
            let first = self.first_leaf(children[0]);
            let node = &mut self.branches[b as usize];
            node.hash = hash;
            node.count += 1;
            node.first = first;
        }
        true
    }

    pub fn contains(&self, id: &EntryId) -> bool {
        self.leaf_of(id).is_some()
    }

    /// Where the store keeps `id` (as given to [`Merkle::insert_with_seq`]), if present.
    pub fn seq_of(&self, id: &EntryId) -> Option<u64> {
        self.leaf_of(id).map(|l| l.seq)
    }

    fn leaf_of(&self, id: &EntryId) -> Option<&Leaf> {
        let mut at = self.root?;
        while at & LEAF == 0 {
            let b = &self.branches[at as usize];
            at = b.children[bit(id.as_bytes(), b.crit)];
        }
        let leaf = &self.leaves[(at & !LEAF) as usize];
        (&leaf.id == id.as_bytes()).then_some(leaf)
    }

    /// An inclusion proof for `id`, or `None` when it is not in the tree.
    pub fn prove(&self, id: &EntryId) -> Option<InclusionProof> {
        let mut at = self.root?;
        let mut steps = Vec::new();
        while at & LEAF == 0 {
            let b = &self.branches[at as usize];
            let side = bit(id.as_bytes(), b.crit);
            steps.push(ProofStep {
                bit: b.crit,
                sibling: self.hash_of(b.children[1 - side]),
            });
            at = b.children[side];
        }
        (self.some_id(at) == id.as_bytes()).then(|| InclusionProof {
            id: *id,
            root: self.root(),
            steps,
        })
    }

    /// The node holding exactly the ids that start with `prefix`, if any.
    fn find(&self, prefix: &Prefix) -> Option<Ref> {
        let mut at = self.root?;
        loop {
            if self.crit(at) >= prefix.len() {
                // Every id below shares its first `crit` bits, so one id decides.
                return prefix.contains(self.some_id(at)).then_some(at);
            }
            let b = &self.branches[at as usize];
            at = b.children[bit(&prefix.bits, b.crit)];
        }
    }

    /// The hash and size of the ids below `prefix` (the empty root when there are none).
    pub fn subtree(&self, prefix: &Prefix) -> Subtree {
        self.find(prefix).map_or(
            Subtree {
                hash: empty_root(),
                count: 0,
            },
            |n| Subtree {
                hash: self.hash_of(n),
                count: self.count(n),
            },
        )
    }

    /// Up to `limit` ids below `prefix` greater than `after`, ascending, and whether more
    /// follow. Visits O(depth + limit) nodes: subtrees wholly at or before `after` are
    /// skipped at their top.
    pub fn ids_page(
        &self,
        prefix: &Prefix,
        after: Option<&EntryId>,
        limit: usize,
    ) -> (Vec<EntryId>, bool) {
        let mut out = Vec::new();
        if let Some(node) = self.find(prefix) {
            self.collect_after(node, after.map(|a| a.as_bytes()), limit + 1, &mut out);
        }
        let more = out.len() > limit;
        out.truncate(limit);
        (out, more)
    }

    /// Every id held, in no particular order (the order they were added, for a tree
    /// grown by inserts): a copy of the leaves, for work on the whole set that does
    /// not care for order, such as a set sketch. Walking the tree in order to list
    /// a million ids cost 80-110 ms; this is one pass over an array.
    pub fn ids_any_order(&self) -> Vec<EntryId> {
        self.leaves.iter().map(|l| EntryId(l.id)).collect()
    }

    /// The ids below `prefix`, in ascending order.
    pub fn ids_under(&self, prefix: &Prefix) -> Vec<EntryId> {
        let mut out = Vec::new();
        if let Some(node) = self.find(prefix) {
            self.collect_after(node, None, usize::MAX, &mut out);
        }
        out
    }

    fn push_leaf(&mut self, id: [u8; 32], seq: u64) -> Ref {
        self.leaves.push(Leaf { id, seq });
        (self.leaves.len() - 1) as Ref | LEAF
    }

    fn hash_of(&self, at: Ref) -> Hash {
        if at & LEAF != 0 {
            leaf_hash(&EntryId(self.leaves[(at & !LEAF) as usize].id))
        } else {
            self.branches[at as usize].hash
        }
    }

    fn first_leaf(&self, at: Ref) -> u32 {
        if at & LEAF != 0 {
            at & !LEAF
        } else {
            self.branches[at as usize].first
        }
    }

    fn some_id(&self, at: Ref) -> &[u8; 32] {
        &self.leaves[self.first_leaf(at) as usize].id
    }

    fn count(&self, at: Ref) -> usize {
        if at & LEAF != 0 {
            1
        } else {
            self.branches[at as usize].count as usize
        }
    }

    /// The bit at which this node's ids split (256 for a single leaf).
    fn crit(&self, at: Ref) -> u16 {
        if at & LEAF != 0 {
            256
        } else {
            self.branches[at as usize].crit
        }
    }

    /// The largest id that could sit below `at`: its shared bits, then all ones.
    fn max_possible(&self, at: Ref) -> [u8; 32] {
        let mut max = *self.some_id(at);
        for i in self.crit(at).min(256)..256 {
            max[(i / 8) as usize] |= 0x80 >> (i % 8);
        }
        max
    }

    fn collect_after(
        &self,
        at: Ref,
        after: Option<&[u8; 32]>,
        want: usize,
        out: &mut Vec<EntryId>,
    ) {
        if out.len() >= want || after.is_some_and(|a| self.max_possible(at) <= *a) {
            return;
        }
        if at & LEAF != 0 {
            out.push(EntryId(*self.some_id(at)));
        } else {
            let children = self.branches[at as usize].children;
            self.collect_after(children[0], after, want, out);
            self.collect_after(children[1], after, want, out);
        }
    }
}

/// From this many ids, a one-pass build hashes the two halves below the root on two
/// threads (opening a million-entry store is mostly this).
const PARALLEL_BUILD: usize = 50_000;

/// As [`build_sorted`] over all of `leaves`, the right half below the root on a thread of
/// its own: its branches are built apart, then appended, their links shifted.
fn build_two_threads(leaves: &[Leaf], branches: &mut Vec<Branch>, hashes: &mut u64) -> Ref {
    let crit =
        first_difference(&leaves[0].id, &leaves[leaves.len() - 1].id).expect("ids are distinct");
    let split = leaves.partition_point(|l| bit(&l.id, crit) == 0);
    let ((left, lh), (right, rh, right_branches, right_hashes)) = std::thread::scope(|s| {
        let right = s.spawn(|| {
            let mut own = Vec::with_capacity(leaves.len() - split);
            let mut hashes = 0;
            let (top, hash) = build_sorted(&leaves[split..], split as u32, &mut own, &mut hashes);
            (top, hash, own, hashes)
        });
        let left = build_sorted(&leaves[..split], 0, branches, hashes);
        (left, right.join().expect("building does not panic"))
    });
    let offset = branches.len() as Ref;
    let shift = |r: Ref| if r & LEAF != 0 { r } else { r + offset };
    branches.extend(right_branches.into_iter().map(|mut b| {
        b.children = b.children.map(shift);
        b
    }));
    *hashes += right_hashes + 1;
    branches.push(Branch {
        hash: node_hash(&lh, &rh),
        children: [left, shift(right)],
        count: leaves.len() as u32,
        first: 0,
        crit,
    });
    (branches.len() - 1) as Ref
}

/// Builds the tree over `leaves` (sorted, distinct; `base` is the index of the first in
/// the whole arena), pushing its branches; returns its top and hash.
fn build_sorted(
    leaves: &[Leaf],
    base: u32,
    branches: &mut Vec<Branch>,
    hashes: &mut u64,
) -> (Ref, Hash) {
    if leaves.len() == 1 {
        *hashes += 1;
        return (base | LEAF, leaf_hash(&EntryId(leaves[0].id)));
    }
    let crit =
        first_difference(&leaves[0].id, &leaves[leaves.len() - 1].id).expect("ids are distinct");
    let split = leaves.partition_point(|l| bit(&l.id, crit) == 0);
    let (left, lh) = build_sorted(&leaves[..split], base, branches, hashes);
    let (right, rh) = build_sorted(&leaves[split..], base + split as u32, branches, hashes);
    *hashes += 1;
    let hash = node_hash(&lh, &rh);
    branches.push(Branch {
        hash,
        children: [left, right],
        count: leaves.len() as u32,
        first: base,
        crit,
    });
    ((branches.len() - 1) as Ref, hash)
}

/// Hashes as lowercase hex in JSON.
pub mod hex_hash {
    use super::Hash;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(h: &Hash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(h))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let bytes = hex::decode(s.as_ref()).map_err(serde::de::Error::custom)?;
        bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom("a hash is 32 bytes (64 hex characters)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(n: u64) -> EntryId {
        EntryId(Sha256::digest(n.to_be_bytes()).into())
    }

    #[test]
    fn ids_in_any_order_are_the_ids_in_order_as_a_set() {
        let built = Merkle::from_ids((0..300).chain(0..50).map(id).collect());
        let mut grown = Merkle::new();
        for n in (0..300).rev().chain(100..200) {
            grown.insert(&id(n));
        }
        for tree in [&built, &grown] {
            let mut any = tree.ids_any_order();
            assert_eq!(any.len(), 300, "each id once");
            any.sort_unstable();
            assert_eq!(any, tree.ids_under(&Prefix::ROOT));
        }
        assert!(Merkle::new().ids_any_order().is_empty());
    }

    #[test]
    fn the_empty_ledger_has_the_sha256_of_nothing_as_root() {
        assert_eq!(
            hex::encode(Merkle::new().root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn one_entry_root_is_its_leaf_hash_and_leaves_cannot_pose_as_nodes() {
        let mut t = Merkle::new();
        t.insert(&id(1));
        assert_eq!(t.root(), leaf_hash(&id(1)));
        // A 64-byte "id" made of two child hashes is hashed with the leaf tag, never the node tag.
        let (a, b) = (leaf_hash(&id(1)), leaf_hash(&id(2)));
        let mut joined = vec![LEAF_TAG];
        joined.extend_from_slice(&a);
        joined.extend_from_slice(&b);
        assert_ne!(<Hash>::from(Sha256::digest(&joined)), node_hash(&a, &b));
    }

    #[test]
    fn inserting_twice_changes_nothing() {
        let mut t = Merkle::new();
        assert!(t.insert(&id(1)));
        let root = t.root();
        assert!(!t.insert(&id(1)));
        assert_eq!(t.root(), root);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn one_insert_into_ten_thousand_costs_logarithmic_hashes() {
        let mut t = Merkle::from_ids((0..10_000).map(id).collect());
        assert_eq!(t.hash_count(), 2 * 10_000 - 1);
        for n in 10_000..10_100 {
            let before = t.hash_count();
            t.insert(&id(n));
            let cost = t.hash_count() - before;
            // Depth of a crit-bit trie over random ids is about log2(n) = 13.3; allow slack.
            assert!(cost <= 40, "insert cost {cost} hashes");
        }
    }

    #[test]
    fn a_node_costs_at_most_92_bytes_per_id() {
        // What keeps a million-entry node's tree near 92 MB (it was about 190).
        assert!(std::mem::size_of::<Leaf>() + std::mem::size_of::<Branch>() <= 92);
        let t = Merkle::from_ids((0..1000).map(id).collect());
        assert_eq!((t.leaves.len(), t.branches.len()), (1000, 999));
        assert_eq!(t.branches.capacity(), 999);
    }

    #[test]
    fn a_build_on_two_threads_equals_one_by_inserts() {
        let ids: Vec<_> = (0..PARALLEL_BUILD as u64 + 10).map(id).collect();
        let built = Merkle::from_ids(ids.clone());
        assert_eq!(built.hash_count(), 2 * ids.len() as u64 - 1);
        assert_eq!(built.branches.len(), ids.len() - 1);
        let inserted = built_by_inserts(&ids);
        assert_eq!(built.root(), inserted.root());
        for i in ids.iter().step_by(997) {
            assert_eq!(built.prove(i), inserted.prove(i));
        }
        let (page, more) = built.ids_page(&Prefix::ROOT, None, 100);
        assert!(more);
        assert_eq!(page, inserted.ids_page(&Prefix::ROOT, None, 100).0);
    }

    #[test]
    fn subtree_of_the_root_prefix_is_the_whole_tree() {
        let t = Merkle::from_ids((0..50).map(id).collect());
        assert_eq!(
            t.subtree(&Prefix::ROOT),
            Subtree {
                hash: t.root(),
                count: 50
            }
        );
        let halves = [0, 1].map(|s| t.subtree(&Prefix::ROOT.child(s).unwrap()).count);
        assert_eq!(halves[0] + halves[1], 50);
    }

    #[test]
    fn prefix_bit_strings_round_trip() {
        let p = Prefix::from_bit_string("1011001").unwrap();
        assert_eq!(p.to_bit_string(), "1011001");
        assert_eq!(p.len(), 7);
        assert!(Prefix::from_bit_string("10x").is_none());
    }

    fn ids_strategy() -> impl Strategy<Value = Vec<EntryId>> {
        prop::collection::vec(0u64..5_000, 0..120).prop_map(|ns| ns.into_iter().map(id).collect())
    }

    fn built_by_inserts(ids: &[EntryId]) -> Merkle {
        let mut t = Merkle::new();
        for i in ids {
            t.insert(i);
        }
        t
    }

    proptest! {
        #[test]
        fn any_permutation_gives_the_same_root(ids in ids_strategy(), seed in any::<u64>()) {
            let mut shuffled = ids.clone();
            fastrand::Rng::with_seed(seed).shuffle(&mut shuffled);
            let a = built_by_inserts(&ids);
            let b = built_by_inserts(&shuffled);
            prop_assert_eq!(a.root(), b.root());
            prop_assert_eq!(a.root(), Merkle::from_ids(ids.clone()).root());
        }

        #[test]
        fn inserts_and_one_pass_builds_agree_on_every_answer(ids in ids_strategy(), probe in 0u64..5_000) {
            let with_seq: Vec<_> = ids.iter().enumerate().map(|(i, id)| (*id, i as u64 + 1)).collect();
            let built = Merkle::from_ids_with_seq(with_seq.clone());
            let mut inserted = Merkle::new();
            for (id, seq) in &with_seq {
                inserted.insert_with_seq(id, *seq);
            }
            prop_assert_eq!(built.root(), inserted.root());
            prop_assert_eq!(built.len(), inserted.len());
            for (id, _) in &with_seq {
                // The first occurrence's row is kept in both.
                let first = with_seq.iter().find(|(i, _)| i == id).unwrap().1;
                prop_assert_eq!(built.seq_of(id), Some(first));
                prop_assert_eq!(inserted.seq_of(id), Some(first));
                prop_assert_eq!(built.prove(id), inserted.prove(id));
            }
            prop_assert_eq!(built.seq_of(&id(probe + 10_000)), None);
            for len in 0..4u16 {
                let p = Prefix::new(id(probe).0, len).unwrap();
                prop_assert_eq!(built.subtree(&p), inserted.subtree(&p));
                prop_assert_eq!(built.ids_under(&p), inserted.ids_under(&p));
            }
        }

        #[test]
        fn union_in_either_order_gives_the_same_root(x in ids_strategy(), y in ids_strategy()) {
            let xy: Vec<_> = x.iter().chain(&y).copied().collect();
            let yx: Vec<_> = y.iter().chain(&x).copied().collect();
            prop_assert_eq!(built_by_inserts(&xy).root(), built_by_inserts(&yx).root());
        }

        #[test]
        fn different_sets_give_different_roots(x in ids_strategy(), extra in 5_000u64..6_000) {
            let mut with: Vec<_> = x.clone();
            with.push(id(extra));
            prop_assert_ne!(Merkle::from_ids(x).root(), Merkle::from_ids(with).root());
        }

        #[test]
        fn proofs_verify_for_members_only(ids in ids_strategy(), outsider in 5_000u64..6_000) {
            let t = Merkle::from_ids(ids.clone());
            for i in &ids {
                let proof = t.prove(i).expect("members have proofs");
                prop_assert!(verify_inclusion(&t.root(), i, &proof.steps));
            }
            prop_assert!(t.prove(&id(outsider)).is_none());
            // A member's proof does not prove an outsider.
            if let Some(first) = ids.first() {
                let proof = t.prove(first).unwrap();
                prop_assert!(!verify_inclusion(&t.root(), &id(outsider), &proof.steps));
            }
        }

        #[test]
        fn tampered_proofs_fail(ids in ids_strategy(), pick in any::<prop::sample::Index>(),
                                flip in any::<prop::sample::Index>(), byte in 0usize..32) {
            prop_assume!(ids.len() >= 2);
            let t = Merkle::from_ids(ids.clone());
            let member = ids[pick.index(ids.len())];
            let mut proof = t.prove(&member).unwrap();
            prop_assume!(!proof.steps.is_empty());
            let step = flip.index(proof.steps.len());
            let mut tampered_hash = proof.clone();
            tampered_hash.steps[step].sibling[byte] ^= 0x01;
            prop_assert!(!verify_inclusion(&t.root(), &member, &tampered_hash.steps));
            proof.steps.remove(step);
            prop_assert!(!verify_inclusion(&t.root(), &member, &proof.steps));
        }

        #[test]
        fn id_pages_walk_the_ids_in_order(ids in ids_strategy(), limit in 1usize..20, start in any::<[u8; 32]>()) {
            let t = Merkle::from_ids(ids.clone());
            let mut expected = ids.clone();
            expected.sort();
            expected.dedup();
            let mut got = Vec::new();
            let mut after = None;
            loop {
                let (page, more) = t.ids_page(&Prefix::ROOT, after.as_ref(), limit);
                prop_assert!(page.len() <= limit);
                got.extend(page.iter().copied());
                match (more, page.last()) {
                    (true, Some(last)) => after = Some(*last),
                    _ => break,
                }
            }
            prop_assert_eq!(&got, &expected);
            let from = EntryId(start);
            let (page, _) = t.ids_page(&Prefix::ROOT, Some(&from), 1000);
            let tail: Vec<_> = expected.iter().filter(|i| **i > from).copied().collect();
            prop_assert_eq!(page, tail);
        }

        #[test]
        fn subtree_hashes_depend_only_on_the_ids_below(x in ids_strategy(), y in ids_strategy(),
                                                      bits in any::<[u8; 32]>(), len in 0u16..6) {
            // Two trees that agree below a prefix give that prefix the same hash and ids.
            let p = Prefix::new(bits, len).unwrap();
            let below: Vec<_> = x.iter().filter(|i| p.contains(i.as_bytes())).copied().collect();
            let others: Vec<_> = y.iter().filter(|i| !p.contains(i.as_bytes())).copied().collect();
            let a = Merkle::from_ids(x.clone());
            let b = Merkle::from_ids(below.iter().chain(&others).copied().collect());
            prop_assert_eq!(a.subtree(&p), b.subtree(&p));
            let mut expected = below.clone();
            expected.sort();
            expected.dedup();
            prop_assert_eq!(a.ids_under(&p), expected);
        }
    }
}

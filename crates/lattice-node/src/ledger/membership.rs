//! Who may write now: the genesis member set, changed by membership records.
//!
//! A membership record is an entry (so it travels, reconciles and is covered by the
//! Merkle root exactly like one) whose payload is the single key `lattice.membership`:
//! `{"v":1,"ledger":<id>,"prev":<hash>,"op":"add"|"remove","author":<PeerId>,"keep":[ids]}`.
//! Only an administrator named in the genesis record may sign one, and only on a closed
//! ledger (the development ledger's founder key is published, so records there would let
//! anyone rewrite membership: they are plain data there).
//!
//! Entry times never decide anything, so records form a hash chain: each names the
//! record before it (`prev`; the ledger id for the first). The effective chain starts at
//! genesis and, wherever two records name the same predecessor, follows the one with the
//! smaller id; the other (and whatever builds on it) stays stored but has no effect, and
//! its issuer re-issues on top of the winner. Keeping the loser stored instead of evicting
//! it means the record set, and so the member set and the root, depend only on which
//! administrator-signed records exist, never on the order they arrived in.
//!
//! A removal freezes instead of dating: it names the entries of that author that stay
//! valid (`keep`); anything else from that author is refused, and a node already holding
//! such an entry evicts it. Entries refused for membership are remembered (bounded) so
//! reconciliation does not fetch them again; the memory is cleared whenever the member
//! set changes, so they are fetched and checked again (an entry that arrived before its
//! author's add record is accepted then).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::entry::{Entry, EntryId};
use super::genesis::{Genesis, LedgerId, key_of, peer_text};
use crate::ledger::keys::NodeKey;

/// The payload key that marks an entry as a membership record.
pub const MEMBERSHIP_KEY: &str = "lattice.membership";
/// The only record version this node understands.
pub const RECORD_VERSION: u32 = 1;
/// Most refused entry ids remembered (oldest forgotten first), so a flood of outsider
/// entries cannot grow memory without bound.
pub const MAX_REFUSED: usize = 16 * 1024;

/// What a record does to its author.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Add,
    Remove,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Add => "add",
            Op::Remove => "remove",
        })
    }
}

/// Why a membership record cannot be made or was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum MembershipError {
    #[error("the membership record is malformed: {0}")]
    Malformed(String),
    #[error("the membership record is of ledger {theirs}, not of this ledger {ours}")]
    OtherLedger { ours: LedgerId, theirs: LedgerId },
    #[error(
        "ledger {0} is an open development ledger: anyone may write, so it has no membership to change"
    )]
    OpenLedger(LedgerId),
    #[error(
        "key {0} is not an administrator of this ledger; only the administrators named in its genesis record sign membership records"
    )]
    NotAdmin(String),
    #[error("{0} is already an author of this ledger")]
    AlreadyMember(String),
    #[error("{0} is not an author of this ledger")]
    NotMember(String),
    #[error(
        "{author} has {count} entries; a removal record can keep at most {max} within the payload cap (LATTICE_MAX_PAYLOAD)"
    )]
    TooManyKept {
        author: String,
        count: usize,
        max: usize,
    },
    #[error("signing the membership record failed: {0}")]
    Entry(String),
}

impl MembershipError {
    pub fn kind(&self) -> &'static str {
        match self {
            MembershipError::OtherLedger { .. } => "other_ledger",
            MembershipError::OpenLedger(_) => "open_ledger",
            MembershipError::NotAdmin(_) => "not_admin",
            MembershipError::AlreadyMember(_) => "already_member",
            MembershipError::NotMember(_) => "not_member",
            MembershipError::TooManyKept { .. } => "too_many_kept",
            MembershipError::Malformed(_) | MembershipError::Entry(_) => "bad_membership_record",
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireRecord {
    v: u32,
    ledger: LedgerId,
    prev: String,
    op: Op,
    author: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    keep: Vec<EntryId>,
}

/// A well-formed record of this ledger (its signer is checked separately).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub id: EntryId,
    pub by: [u8; 32],
    pub prev: [u8; 32],
    pub op: Op,
    pub author: [u8; 32],
    pub keep: BTreeSet<EntryId>,
}

/// Whether `entry` claims to be a membership record: `None` if not, else the record or
/// why it is malformed. Cheap for ordinary entries (a substring test before any parse).
pub fn parse_record(entry: &Entry, ledger: LedgerId) -> Option<Result<Record, MembershipError>> {
    let text = entry.payload_json();
    if !text.contains(MEMBERSHIP_KEY) {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let object = value.as_object()?;
    let inner = object.get(MEMBERSHIP_KEY)?;
    Some(record_from(entry, ledger, object.len(), inner))
}

fn record_from(
    entry: &Entry,
    ours: LedgerId,
    keys: usize,
    inner: &serde_json::Value,
) -> Result<Record, MembershipError> {
    let bad = |m: String| MembershipError::Malformed(m);
    if keys != 1 {
        return Err(bad(format!(
            "a record's payload holds only the key {MEMBERSHIP_KEY:?}"
        )));
    }
    let wire: WireRecord = serde_json::from_value(inner.clone()).map_err(|e| bad(e.to_string()))?;
    if wire.v != RECORD_VERSION {
        return Err(bad(format!(
            "version {} is not supported (this node knows version {RECORD_VERSION})",
            wire.v
        )));
    }
    if wire.ledger != ours {
        return Err(MembershipError::OtherLedger {
            ours,
            theirs: wire.ledger,
        });
    }
    let prev: [u8; 32] = hex::decode(&wire.prev)
        .ok()
        .filter(|_| wire.prev.bytes().all(|b| !b.is_ascii_uppercase()))
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad(format!("prev {:?} is not 64 lowercase hex", wire.prev)))?;
    let author = key_of(&wire.author).map_err(|e| bad(e.to_string()))?;
    if wire.op == Op::Add && !wire.keep.is_empty() {
        return Err(bad("an add record keeps nothing".into()));
    }
    let keep: BTreeSet<EntryId> = wire.keep.iter().copied().collect();
    if keep.len() != wire.keep.len() {
        return Err(bad("keep names an entry twice".into()));
    }
    Ok(Record {
        id: entry.id(),
        by: *entry.author_key(),
        prev,
        op: wire.op,
        author,
        keep,
    })
}

/// The payload of a record; see the module docs for its shape.
pub fn record_payload(
    ledger: LedgerId,
    prev: [u8; 32],
    op: Op,
    author: &[u8; 32],
    keep: &BTreeSet<EntryId>,
) -> serde_json::Value {
    let wire = WireRecord {
        v: RECORD_VERSION,
        ledger,
        prev: hex::encode(prev),
        op,
        author: peer_text(author),
        keep: keep.iter().copied().collect(),
    };
    serde_json::json!({ MEMBERSHIP_KEY: wire })
}

/// Signs a record naming `head` (a running node's `members.head`) as its predecessor:
/// for a face that holds the administrator key but not the node's records. The node
/// still checks it on arrival like any record.
#[allow(clippy::too_many_arguments)]
pub fn sign_record_on(
    admin: &NodeKey,
    ledger: LedgerId,
    head: [u8; 32],
    op: Op,
    author: &[u8; 32],
    keep: &BTreeSet<EntryId>,
    created_at: u64,
    max_payload: usize,
) -> Result<Entry, MembershipError> {
    if keep.len() > max_kept(max_payload) {
        return Err(MembershipError::TooManyKept {
            author: peer_text(author),
            count: keep.len(),
            max: max_kept(max_payload),
        });
    }
    let empty = BTreeSet::new();
    let keep = if op == Op::Add { &empty } else { keep };
    let payload = record_payload(ledger, head, op, author, keep);
    Entry::sign(admin, created_at, &payload, max_payload)
        .map_err(|e| MembershipError::Entry(e.to_string()))
}

/// How many kept ids fit a removal record under `max_payload` (the rest of the record is
/// well under 512 bytes; each id is 64 hex characters, two quotes and a comma).
pub fn max_kept(max_payload: usize) -> usize {
    max_payload.saturating_sub(512) / 67
}

/// The effective membership: what the chain from genesis says now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct View {
    /// The last applied record's id, or the ledger id when none applies.
    head: [u8; 32],
    members: BTreeSet<[u8; 32]>,
    /// Removed authors (not re-added since) and the entries of theirs that stay valid.
    frozen: BTreeMap<[u8; 32], BTreeSet<EntryId>>,
    applied: Vec<EntryId>,
}

impl View {
    fn of(genesis: &Genesis, records: &HashMap<EntryId, Record>) -> View {
        let mut children: HashMap<[u8; 32], BTreeSet<EntryId>> = HashMap::new();
        for r in records.values() {
            children.entry(r.prev).or_default().insert(r.id);
        }
        let mut view = View {
            head: genesis.id().0,
            members: genesis.authors().copied().collect(),
            ..View::default()
        };
        // Each step consumes a distinct record, so this ends; the bound is belt and braces.
        for _ in 0..=records.len() {
            let Some(next) = children.get(&view.head).and_then(|c| c.first()) else {
                break;
            };
            let r = &records[next];
            match r.op {
                Op::Add => {
                    view.members.insert(r.author);
                    view.frozen.remove(&r.author);
                }
                Op::Remove => {
                    view.members.remove(&r.author);
                    view.frozen.insert(r.author, r.keep.clone());
                }
            }
            view.applied.push(r.id);
            view.head = r.id.0;
        }
        view
    }

    fn allows(&self, author: &[u8; 32], id: &EntryId) -> bool {
        self.members.contains(author) || self.frozen.get(author).is_some_and(|k| k.contains(id))
    }
}

/// An entry refused because its author may not write it here.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("author {author} {why} of ledger {name:?} ({ledger}); entry {entry} refused")]
pub struct UnauthorizedAuthor {
    pub author: String,
    pub entry: EntryId,
    /// Shared, not owned: keeps the error small enough to return by value everywhere.
    pub name: std::sync::Arc<str>,
    pub ledger: LedgerId,
    pub why: Why,
}

/// Why an author may not write an entry; completes the sentence of the refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    NotAuthor,
    Removed,
    NotAdmin,
    BadRecord(Box<MembershipError>),
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::NotAuthor => f.write_str("is not an author"),
            Why::Removed => f.write_str(
                "was removed as an author (only entries its removal record keeps stay valid)",
            ),
            Why::NotAdmin => f.write_str("signed a membership record but is not an administrator"),
            Why::BadRecord(e) => write!(f, "signed a refused membership record ({e})"),
        }
    }
}

impl UnauthorizedAuthor {
    pub const KIND: &'static str = "unauthorized_author";
}

/// Authors whose stored entries must be re-checked after a membership change: each with
/// the ids of theirs that stay valid (all others are evicted).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Evictions {
    pub authors: Vec<([u8; 32], BTreeSet<EntryId>)>,
}

/// One record as faces show it.
#[derive(Clone, Debug, Serialize)]
pub struct RecordInfo {
    pub id: EntryId,
    pub op: Op,
    pub author: String,
    pub by: String,
    pub prev: String,
    pub kept: usize,
    /// False for a record on a losing branch: stored, but without effect.
    pub applied: bool,
}

/// The membership as faces show it (`lattice members list`, `GET /api/lattice/members`).
#[derive(Clone, Debug, Serialize)]
pub struct MembersInfo {
    pub ledger: LedgerId,
    pub open: bool,
    /// What a new record must name as `prev`.
    pub head: String,
    pub authors: Vec<String>,
    pub admins: Vec<String>,
    pub removed: Vec<RemovedInfo>,
    pub records: Vec<RecordInfo>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RemovedInfo {
    pub author: String,
    pub kept: usize,
}

#[derive(Default)]
struct Refused {
    ids: HashSet<EntryId>,
    order: VecDeque<EntryId>,
}

#[derive(Default)]
struct Book {
    records: HashMap<EntryId, Record>,
    view: View,
}

/// A ledger as a node holds it: its genesis, the membership records seen and the view
/// they give, and the entries refused for membership (bounded).
pub struct Ledger {
    genesis: Genesis,
    refused: Mutex<Refused>,
    book: Mutex<Book>,
}

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ledger")
            .field("genesis", &self.genesis)
            .finish_non_exhaustive()
    }
}

impl Default for Ledger {
    fn default() -> Self {
        Self::new(Genesis::development())
    }
}

impl Ledger {
    pub fn new(genesis: Genesis) -> Self {
        let view = View::of(&genesis, &HashMap::new());
        Self {
            genesis,
            refused: Mutex::new(Refused::default()),
            book: Mutex::new(Book {
                records: HashMap::new(),
                view,
            }),
        }
    }

    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }
    pub fn id(&self) -> LedgerId {
        self.genesis.id()
    }
    pub fn is_open(&self) -> bool {
        self.genesis.is_open()
    }

    /// Whether `key` may author ordinary entries now.
    pub fn is_member(&self, key: &[u8; 32]) -> bool {
        self.is_open() || self.book().view.members.contains(key)
    }

    /// How many keys may author now (0 on an open ledger: anyone).
    pub fn member_count(&self) -> usize {
        if self.is_open() {
            0
        } else {
            self.book().view.members.len()
        }
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().expect("not poisoned")
    }

    fn refuse(&self, entry: &Entry, why: Why) -> UnauthorizedAuthor {
        self.remember_refused(entry.id());
        UnauthorizedAuthor {
            author: entry.author(),
            entry: entry.id(),
            name: self.genesis.name().into(),
            ledger: self.genesis.id(),
            why,
        }
    }

    /// Whether `entry` may be stored here now; a refusal is remembered.
    pub fn check(&self, entry: &Entry) -> Result<(), UnauthorizedAuthor> {
        if self.is_open() {
            return Ok(());
        }
        if let Some(record) = parse_record(entry, self.id()) {
            if !self.genesis.is_admin(entry.author_key()) {
                return Err(self.refuse(entry, Why::NotAdmin));
            }
            return match record {
                Ok(_) => Ok(()),
                Err(e) => Err(self.refuse(entry, Why::BadRecord(Box::new(e)))),
            };
        }
        let view = &self.book().view;
        if view.allows(entry.author_key(), &entry.id()) {
            return Ok(());
        }
        let why = if view.frozen.contains_key(entry.author_key()) {
            Why::Removed
        } else {
            Why::NotAuthor
        };
        Err(self.refuse(entry, why))
    }

    /// Learns the records among `entries` (already checked and stored). When the
    /// effective membership changes, forgets every refusal (so they are fetched and
    /// checked again) and says whose stored entries to re-check.
    pub fn learn(&self, entries: &[Entry]) -> Option<Evictions> {
        if self.is_open() {
            return None;
        }
        let mut fresh = Vec::new();
        for e in entries {
            if let Some(Ok(r)) = parse_record(e, self.id())
                && self.genesis.is_admin(&r.by)
            {
                fresh.push(r);
            }
        }
        if fresh.is_empty() {
            return None;
        }
        let mut book = self.book();
        for r in fresh {
            book.records.insert(r.id, r);
        }
        let view = View::of(&self.genesis, &book.records);
        if view == book.view {
            return None;
        }
        let old = std::mem::replace(&mut book.view, view);
        let new = &book.view;
        drop(std::mem::take(
            &mut *self.refused.lock().expect("not poisoned"),
        ));
        let touched: BTreeSet<[u8; 32]> = old
            .members
            .iter()
            .chain(old.frozen.keys())
            .chain(new.frozen.keys())
            .filter(|a| !new.members.contains(*a))
            .copied()
            .collect();
        Some(Evictions {
            authors: touched
                .into_iter()
                .map(|a| (a, new.frozen.get(&a).cloned().unwrap_or_default()))
                .collect(),
        })
    }

    /// Whether `entry` is a well-formed record signed by an administrator: such records
    /// are never evicted, whatever their signer's own author status.
    pub fn is_admin_record(&self, entry: &Entry) -> bool {
        !self.is_open()
            && self.genesis.is_admin(entry.author_key())
            && matches!(parse_record(entry, self.id()), Some(Ok(_)))
    }

    /// Every removed author (not re-added since), with the ids of theirs that stay valid.
    pub fn removed_evictions(&self) -> Evictions {
        if self.is_open() {
            return Evictions::default();
        }
        let book = self.book();
        Evictions {
            authors: book
                .view
                .frozen
                .iter()
                .map(|(a, keep)| (*a, keep.clone()))
                .collect(),
        }
    }

    /// Signs a record by `admin` on top of the current head. `keep` is the removed
    /// author's entries that stay valid (ignored for an add).
    pub fn sign_record(
        &self,
        admin: &NodeKey,
        op: Op,
        author: &[u8; 32],
        keep: BTreeSet<EntryId>,
        created_at: u64,
        max_payload: usize,
    ) -> Result<Entry, MembershipError> {
        if self.is_open() {
            return Err(MembershipError::OpenLedger(self.id()));
        }
        if !self.genesis.is_admin(&admin.public_bytes()) {
            return Err(MembershipError::NotAdmin(admin.peer_id().to_string()));
        }
        let head = {
            let book = self.book();
            let member = book.view.members.contains(author);
            match op {
                Op::Add if member => {
                    return Err(MembershipError::AlreadyMember(peer_text(author)));
                }
                Op::Remove if !member => {
                    return Err(MembershipError::NotMember(peer_text(author)));
                }
                _ => {}
            }
            book.view.head
        };
        sign_record_on(
            admin,
            self.id(),
            head,
            op,
            author,
            &keep,
            created_at,
            max_payload,
        )
    }

    pub fn members(&self) -> MembersInfo {
        let book = self.book();
        let applied: HashSet<EntryId> = book.view.applied.iter().copied().collect();
        let mut records: Vec<RecordInfo> = book
            .records
            .values()
            .map(|r| RecordInfo {
                id: r.id,
                op: r.op,
                author: peer_text(&r.author),
                by: peer_text(&r.by),
                prev: hex::encode(r.prev),
                kept: r.keep.len(),
                applied: applied.contains(&r.id),
            })
            .collect();
        // Applied ones in chain order first, then the rest by id.
        let pos: HashMap<EntryId, usize> = book
            .view
            .applied
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, i))
            .collect();
        records.sort_by_key(|r| (pos.get(&r.id).copied().unwrap_or(usize::MAX), r.id));
        MembersInfo {
            ledger: self.id(),
            open: self.is_open(),
            head: hex::encode(book.view.head),
            authors: book.view.members.iter().map(peer_text).collect(),
            admins: self.genesis.admins().map(peer_text).collect(),
            removed: book
                .view
                .frozen
                .iter()
                .map(|(a, k)| RemovedInfo {
                    author: peer_text(a),
                    kept: k.len(),
                })
                .collect(),
            records,
        }
    }

    fn remember_refused(&self, id: EntryId) {
        let mut r = self.refused.lock().expect("not poisoned");
        if r.ids.insert(id) {
            r.order.push_back(id);
            while r.order.len() > MAX_REFUSED {
                if let Some(old) = r.order.pop_front() {
                    r.ids.remove(&old);
                }
            }
        }
    }

    /// Whether `id` was refused for membership (and is still remembered).
    pub fn was_refused(&self, id: &EntryId) -> bool {
        self.refused.lock().expect("not poisoned").ids.contains(id)
    }

    /// The refused ids still remembered (reconciliation v2 matches them by short id).
    pub fn refused_ids(&self) -> Vec<EntryId> {
        let r = self.refused.lock().expect("not poisoned");
        r.order.iter().copied().collect()
    }

    pub fn refused_count(&self) -> usize {
        self.refused.lock().expect("not poisoned").ids.len()
    }
}

#[cfg(test)]
mod tests;

//! Reconciliation: which entries does each side lack? One algorithm for both lungs.
//!
//! Both sides hold a Merkle radix tree over their entry ids (see `ledger::merkle`), so
//! any bit prefix of the id space has a hash that depends only on the ids below it. The
//! initiating side compares roots, then walks down only where hashes differ,
//! [`FANOUT_BITS`] bits per round. Small subtrees come back as their ids, so the walk
//! ends early; a subtree one side lacks entirely is listed page by page. The cost is
//! about `d * log(n)` hashes for `d` differences in `n` entries, plus the entries
//! themselves, never the whole ledger.
//!
//! The messages here are what travels; the [`Remote`] trait is how they travel (the HTTP
//! lung's client, and libp2p request-response on the P2P lung). The answering side is
//! [`answer`], over a store.
//! Nothing the other side claims is adopted: every entry pulled is verified and the
//! root is only ever recomputed locally.
//!
//! The walk is reconciliation v1. A neighbour whose state answer announces v2
//! ([`LedgerState::versions`]) is reconciled through a set sketch instead
//! ([`crate::sync::reconcile_v2`]); both versions keep the root compare first, and the
//! same pull (verified) and push.

use std::collections::BTreeSet;
use std::future::Future;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::ledger::merkle::{Hash, hex_hash};
use crate::ledger::{Entry, EntryError, EntryId, Genesis, LedgerId, Prefix, StoreError};
use crate::sync::local::Local;
use crate::sync::reconcile_v2::{
    self, HelloRequest, Method, Options, ShortFetchRequest, SketchRequest,
};
use crate::sync::riblt::Salt;

/// Bits of the id space descended per round (children per prefix = 2^FANOUT_BITS).
pub const FANOUT_BITS: u16 = 2;
/// A child with at most this many ids sends the ids instead of its hash.
pub const IDS_INLINE: usize = 4;
/// Most prefixes in one `children` request.
pub const MAX_PREFIXES: usize = 512;
/// Most ids in one `ids` page.
pub const MAX_IDS_PAGE: usize = 2048;
/// Most entries in one `fetch` or `push`.
pub const MAX_ENTRIES: usize = 256;
/// Most entries pulled or pushed in one sync; the next sync continues.
pub const MAX_PER_SYNC: usize = 100_000;
/// A `fetch` answer or a `push` stops growing past this many bytes of entries (always
/// holding at least one entry), so a message stays well under any transport's cap.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// What a node tells a neighbour before reconciling (`GET /api/lattice/state`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerState {
    #[serde(with = "hex_hash")]
    pub root: Hash,
    pub count: usize,
    /// The answering node's PeerId.
    pub node: String,
    /// The answering node's `LATTICE_NODE_NAME`, when set (absent from older nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub fanout_bits: u16,
    pub ids_inline: usize,
    /// The ledger the answering node holds (absent from nodes older than ledger ids,
    /// which all hold the development ledger).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger: Option<LedgerId>,
    /// Its name, and whether it is open to any author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger_open: Option<bool>,
    /// The reconciliation versions the answering node speaks (absent from v1-only
    /// nodes, which speak v1 alone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<u16>,
}

impl LedgerState {
    /// The ledger the other side holds, reading an absent id as the development ledger.
    pub fn ledger_id(&self) -> LedgerId {
        self.ledger.unwrap_or_else(|| Genesis::development().id())
    }

    /// Whether the answering node speaks reconciliation v2 (the set sketch).
    pub fn speaks_v2(&self) -> bool {
        self.versions.contains(&2)
    }
}

/// Refuses a state answer from a node of another ledger, naming both ids.
pub fn check_ledger(local: &impl Local, theirs: &LedgerState) -> Result<(), ReconcileError> {
    let ours = local.ledger().id();
    let other = theirs.ledger_id();
    if other != ours {
        return Err(ReconcileError::OtherLedger {
            ours,
            theirs: other,
        });
    }
    Ok(())
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildrenRequest {
    /// Bit prefixes as '0'/'1' strings ("" is the whole id space).
    pub prefixes: Vec<String>,
}

/// One child of a requested prefix: empty, its ids (when few), or its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildSummary {
    pub count: usize,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_hex_hash"
    )]
    pub hash: Option<Hash>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<EntryId>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildrenResponse {
    /// For each requested prefix, in order, its 2^FANOUT_BITS children in bit order.
    pub children: Vec<Vec<ChildSummary>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdsRequest {
    pub prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<EntryId>,
    pub limit: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdsResponse {
    pub ids: Vec<EntryId>,
    pub more: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchRequest {
    pub ids: Vec<EntryId>,
}

/// Entries travel as raw JSON so the receiver verifies exactly what was sent.
#[derive(Debug, Serialize, Deserialize)]
pub struct EntriesMessage {
    pub entries: Vec<Box<RawValue>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushResponse {
    pub accepted: usize,
    pub already_present: usize,
}

/// The refusal kind of a push over the other side's `LATTICE_PEER_RATE`: what it took is
/// stored, and the rest is for a later sync (or its own pull), not a failure.
pub const RATE_LIMITED: &str = "rate_limited";

/// A transport failure or a refusal, as the transport reports it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TransportError {
    pub kind: String,
    pub message: String,
}

/// The kind of [`TransportError::v2_unsupported`].
const V2_UNSUPPORTED: &str = "unsupported";

impl TransportError {
    /// What a transport gives when the other side (or the transport itself) does not
    /// carry reconciliation v2: reconciliation falls back to v1 on it, it is not a failure.
    pub fn v2_unsupported() -> Self {
        TransportError {
            kind: V2_UNSUPPORTED.into(),
            message: "this transport does not carry reconciliation v2".into(),
        }
    }

    /// Whether this is [`TransportError::v2_unsupported`], the one failure that means
    /// "ask in v1" rather than "this sync failed".
    pub fn is_v2_unsupported(&self) -> bool {
        self.kind == V2_UNSUPPORTED
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The other side broke the protocol (wrong shapes, impossible answers).
    #[error("the other side misbehaved: {0}")]
    Protocol(String),
    /// The other side served an entry that fails verification or was not asked for.
    /// Nothing of ours is pushed to it in that reconciliation.
    #[error("the other side sent a forged entry: {0}")]
    Forged(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The other side holds another ledger: nothing is exchanged with it.
    #[error("the other side holds ledger {theirs}, this node ledger {ours}: refused")]
    OtherLedger { ours: LedgerId, theirs: LedgerId },
}

impl ReconcileError {
    pub fn kind(&self) -> String {
        match self {
            ReconcileError::Transport(t) => t.kind.clone(),
            ReconcileError::Protocol(_) => "protocol".into(),
            ReconcileError::Forged(_) => "forged_entry".into(),
            ReconcileError::Store(s) => s.kind().into(),
            ReconcileError::OtherLedger { .. } => "other_ledger".into(),
        }
    }
}

/// How to talk to the other side. Each method is one request and its answer.
pub trait Remote: Sync {
    fn state(&self) -> impl Future<Output = Result<LedgerState, TransportError>> + Send;
    fn children(
        &self,
        req: &ChildrenRequest,
    ) -> impl Future<Output = Result<ChildrenResponse, TransportError>> + Send;
    fn ids(
        &self,
        req: &IdsRequest,
    ) -> impl Future<Output = Result<IdsResponse, TransportError>> + Send;
    fn fetch(
        &self,
        req: &FetchRequest,
    ) -> impl Future<Output = Result<EntriesMessage, TransportError>> + Send;
    fn push(
        &self,
        req: &EntriesMessage,
    ) -> impl Future<Output = Result<PushResponse, TransportError>> + Send;
    /// v2's first round trip (binary, see [`reconcile_v2::HelloAnswer`]): the root
    /// compare and the first symbols at once. A transport or peer without it answers
    /// [`TransportError::v2_unsupported`], and the state answer is asked for instead.
    fn hello(
        &self,
        _req: &HelloRequest,
    ) -> impl Future<Output = Result<Vec<u8>, TransportError>> + Send {
        async { Err(TransportError::v2_unsupported()) }
    }
    /// v2: a page of coded symbols (binary, see [`crate::sync::riblt::encode_page`]).
    /// Transports without v2 keep the default, and their peers never announce it.
    fn sketch(
        &self,
        _req: &SketchRequest,
    ) -> impl Future<Output = Result<Vec<u8>, TransportError>> + Send {
        async { Err(TransportError::v2_unsupported()) }
    }
    /// v2: entries by short id.
    fn fetch_short(
        &self,
        _req: &ShortFetchRequest,
    ) -> impl Future<Output = Result<EntriesMessage, TransportError>> + Send {
        async { Err(TransportError::v2_unsupported()) }
    }
    /// Bytes sent and received so far (message bodies), for the report.
    fn bytes(&self) -> (u64, u64);
}

/// What one reconciliation did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileReport {
    #[serde(with = "hex_hash")]
    pub their_root: Hash,
    /// Our root after reconciling.
    #[serde(with = "hex_hash")]
    pub our_root: Hash,
    pub in_sync_before: bool,
    pub pulled: usize,
    pub pushed: usize,
    pub rounds: usize,
    pub requests: usize,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Entries the other side offered whose authors are not members here: not stored,
    /// and remembered so the next reconciliation does not fetch them again.
    #[serde(default)]
    pub refused: usize,
    /// How the difference was found.
    #[serde(default)]
    pub method: Method,
    /// Coded symbols received (v2's sketch; at most `reconcile_v2::MAX_SYMBOLS`, so a
    /// u32, which keeps the report small where it is passed by value).
    #[serde(default)]
    pub symbols: u32,
}

fn protocol(msg: impl Into<String>) -> ReconcileError {
    ReconcileError::Protocol(msg.into())
}

fn parse_prefix(s: &str) -> Result<Prefix, String> {
    Prefix::from_bit_string(s).ok_or_else(|| {
        format!(
            "prefix {:?} is not a string of at most 256 '0'/'1' characters",
            s.chars().take(40).collect::<String>()
        )
    })
}

/// The children of `p`, FANOUT_BITS bits deeper, in bit order.
fn children_of(p: &Prefix) -> Vec<Prefix> {
    let mut level = vec![*p];
    for _ in 0..FANOUT_BITS {
        level = level
            .iter()
            .flat_map(|q| [q.child(0), q.child(1)])
            .flatten()
            .collect();
    }
    level
}

pub mod answer;

#[derive(Debug, thiserror::Error)]
pub enum PushRefused {
    #[error("{0} entries pushed; at most {MAX_ENTRIES} per request")]
    TooMany(usize),
    #[error("entry {0} of the push: {1}")]
    Entry(usize, EntryError),
}

impl PushRefused {
    pub fn kind(&self) -> &'static str {
        match self {
            PushRefused::TooMany(_) => "too_many_entries",
            PushRefused::Entry(_, e) => e.kind(),
        }
    }
}

/// The longest prefix of `entries` that fits [`MAX_MESSAGE_BYTES`] (at least one), as a
/// message, and how many it took.
pub fn bounded_message(entries: &[Entry]) -> (EntriesMessage, usize) {
    let mut bytes = 0;
    let mut out = Vec::new();
    for e in entries {
        let json = e.to_json();
        if !out.is_empty() && bytes + json.len() > MAX_MESSAGE_BYTES {
            break;
        }
        bytes += json.len();
        out.push(RawValue::from_string(json).expect("entries serialize to JSON"));
    }
    let n = out.len();
    (EntriesMessage { entries: out }, n)
}

/// Reconciles `local` with `remote` both ways: pulls what we lack (verifying each entry)
/// and pushes what they lack. A remote caught serving a forged entry gets nothing pushed:
/// the honest entries it sent are kept, and the reconciliation ends in
/// [`ReconcileError::Forged`].
pub async fn reconcile<L: Local, R: Remote>(
    local: &L,
    remote: &R,
    max_payload: usize,
) -> Result<ReconcileReport, ReconcileError> {
    reconcile_with(local, remote, max_payload, &Options::default()).await
}

/// [`reconcile`] with v2's tuning; v2 is used whenever the other side announces it.
pub async fn reconcile_with<L: Local, R: Remote>(
    local: &L,
    remote: &R,
    max_payload: usize,
    options: &Options,
) -> Result<ReconcileReport, ReconcileError> {
    let (sent0, received0) = remote.bytes();
    let mut report = ReconcileReport::default();
    let salt = options.salt.unwrap_or_else(Salt::random);
    // v2 begins with its hello; a peer (or transport) without it is asked for its state.
    let (their_root, their_count, v2, start) =
        match reconcile_v2::hello(local, remote, &salt, options).await? {
            Some(reconcile_v2::Hello::Equal) => {
                report.requests += 1;
                report.their_root = local.root();
                report.in_sync_before = true;
                report.our_root = local.root();
                finish(&mut report, remote, sent0, received0);
                return Ok(report);
            }
            Some(reconcile_v2::Hello::Differ { root, count, start }) => {
                report.requests += 1;
                (root, count, true, start)
            }
            None => {
                let theirs = remote.state().await?;
                report.requests += 1;
                check_ledger(local, &theirs)?;
                let v2 = theirs.speaks_v2() && !options.v1_only;
                (theirs.root, theirs.count, v2, Default::default())
            }
        };
    report.their_root = their_root;
    if their_root == local.root() {
        report.in_sync_before = true;
        report.our_root = local.root();
        finish(&mut report, remote, sent0, received0);
        return Ok(report);
    }
    let mut need: BTreeSet<EntryId> = BTreeSet::new();
    let mut give: BTreeSet<EntryId> = BTreeSet::new();
    let mut forged = None;
    if their_count == 0 {
        give.extend(local.ids_under(&Prefix::ROOT));
    } else if local.is_empty() {
        report.method = Method::Ids;
        pull_all_ids(remote, &Prefix::ROOT, &mut need, &mut report, MAX_PER_SYNC).await?;
    } else if v2 {
        let plan = match reconcile_v2::plan(
            local,
            remote,
            their_count,
            salt,
            start,
            options,
            &mut report,
        )
        .await
        {
            Ok(plan) => plan,
            // A transport without v2 towards a peer that announces it: v1 still works.
            Err(ReconcileError::Transport(t)) if t.is_v2_unsupported() => {
                report.method = Method::Walk;
                walk(local, remote, &mut need, &mut give, &mut report).await?;
                reconcile_v2::Plan {
                    method: Method::Walk,
                    need: std::mem::take(&mut need),
                    give: std::mem::take(&mut give),
                    ..Default::default()
                }
            }
            Err(e) => return Err(e),
        };
        report.method = plan.method;
        report.symbols = plan.symbols;
        need = plan.need;
        give = plan.give;
        if let Some(salt) = plan.salt {
            forged = reconcile_v2::pull_short(
                local,
                remote,
                &salt,
                &plan.need_short,
                max_payload,
                options,
                &mut report,
            )
            .await?;
        }
    } else {
        report.method = Method::Walk;
        walk(local, remote, &mut need, &mut give, &mut report).await?;
    }

    // Pull, verifying everything: an entry must verify and must be one we asked for.
    // An answer may hold fewer entries than asked (size-bounded): ask again for the rest.
    let ledger = local.ledger();
    let mut pending: Vec<EntryId> = need
        .into_iter()
        .filter(|id| !ledger.was_refused(id))
        .take(MAX_PER_SYNC)
        .collect();
    while !pending.is_empty() {
        let chunk: Vec<EntryId> = pending.iter().take(MAX_ENTRIES).copied().collect();
        let msg = remote.fetch(&FetchRequest { ids: chunk.clone() }).await?;
        report.requests += 1;
        let asked: BTreeSet<EntryId> = chunk.iter().copied().collect();
        let got = settle_pulled(
            local,
            &msg.entries,
            max_payload,
            |id| asked.contains(id).then_some(*id),
            options,
            &mut report,
            &mut forged,
        )
        .await?;
        // What came back is settled; the rest (a size-bounded answer) is asked again,
        // as long as each answer makes progress.
        pending.retain(|id| !got.contains(id));
        let progress = !got.is_empty();
        if !progress {
            break;
        }
    }

    if let Some(what) = forged {
        // A liar is not fed our ledger.
        return Err(ReconcileError::Forged(what));
    }

    // Push what they lack, in size-bounded messages.
    let give: Vec<EntryId> = give.into_iter().take(MAX_PER_SYNC).collect();
    'push: for chunk in give.chunks(MAX_ENTRIES) {
        let mut entries = local.get_many(chunk)?;
        if options.drops_last_moved() {
            entries.pop();
        }
        let mut rest: &[Entry] = &entries;
        while !rest.is_empty() {
            let (msg, taken) = bounded_message(rest);
            rest = &rest[taken..];
            report.requests += 1;
            match remote.push(&msg).await {
                Ok(answer) => report.pushed += answer.accepted,
                // Unsolicited entries are the other side's to limit: the rest waits.
                Err(e) if e.kind == RATE_LIMITED => {
                    tracing::debug!("pushing stopped for this sync: {e}");
                    break 'push;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    report.our_root = local.root();
    finish(&mut report, remote, sent0, received0);
    Ok(report)
}

/// Settles one answer to a pull (by full id or, in v2, by short id): an entry must verify
/// and be one we asked for (`asked` gives its key if so; anything else is a forgery,
/// the first one kept in `forged`), a non-member's entry is refused (and remembered),
/// the rest is stored. Returns the keys of what came back: settled, not to be asked again.
pub(super) async fn settle_pulled<K: Ord>(
    local: &impl Local,
    entries: &[Box<RawValue>],
    max_payload: usize,
    asked: impl Fn(&EntryId) -> Option<K>,
    options: &Options,
    report: &mut ReconcileReport,
    forged: &mut Option<String>,
) -> Result<BTreeSet<K>, ReconcileError> {
    let ledger = local.ledger();
    let mut good = Vec::with_capacity(entries.len());
    let mut got = BTreeSet::new();
    for raw in entries {
        match Entry::from_json(raw.get(), max_payload) {
            Ok(e) => match asked(&e.id()) {
                Some(key) => {
                    got.insert(key);
                    good.push(e);
                }
                None => {
                    forged.get_or_insert_with(|| format!("entry {} was not asked for", e.id()));
                }
            },
            Err(e) => {
                forged.get_or_insert_with(|| format!("an entry fails verification: {e}"));
            }
        }
    }
    if options.drops_last_moved() {
        good.pop();
    }
    let before = good.len();
    good.retain(|e| ledger.check(e).is_ok());
    report.refused += before - good.len();
    report.pulled += local.store_verified(good).await?;
    Ok(got)
}

fn finish<R: Remote>(report: &mut ReconcileReport, remote: &R, sent0: u64, received0: u64) {
    let (sent, received) = remote.bytes();
    report.bytes_sent = sent - sent0;
    report.bytes_received = received - received0;
}

/// Descends where the two trees differ, collecting what each side lacks.
async fn walk<R: Remote>(
    local: &impl Local,
    remote: &R,
    need: &mut BTreeSet<EntryId>,
    give: &mut BTreeSet<EntryId>,
    report: &mut ReconcileReport,
) -> Result<(), ReconcileError> {
    let mut frontier = vec![Prefix::ROOT];
    while !frontier.is_empty() {
        report.rounds += 1;
        if report.rounds > (256 / FANOUT_BITS as usize) + 1 {
            return Err(protocol("the tree walk went deeper than any id"));
        }
        let mut next = Vec::new();
        for batch in frontier.chunks(MAX_PREFIXES) {
            let req = ChildrenRequest {
                prefixes: batch.iter().map(Prefix::to_bit_string).collect(),
            };
            let resp = remote.children(&req).await?;
            report.requests += 1;
            if resp.children.len() != batch.len() {
                return Err(protocol(format!(
                    "answered {} prefixes of {} asked",
                    resp.children.len(),
                    batch.len()
                )));
            }
            for (parent, kids) in batch.iter().zip(&resp.children) {
                let prefixes = children_of(parent);
                if kids.len() != prefixes.len() {
                    return Err(protocol(format!(
                        "answered {} children of a prefix; expected {}",
                        kids.len(),
                        prefixes.len()
                    )));
                }
                for (p, kid) in prefixes.iter().zip(kids) {
                    compare_child(local, remote, p, kid, need, give, &mut next, report).await?;
                }
            }
        }
        frontier = next;
        if need.len() >= MAX_PER_SYNC || give.len() >= MAX_PER_SYNC {
            break;
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn compare_child<R: Remote>(
    local: &impl Local,
    remote: &R,
    p: &Prefix,
    kid: &ChildSummary,
    need: &mut BTreeSet<EntryId>,
    give: &mut BTreeSet<EntryId>,
    next: &mut Vec<Prefix>,
    report: &mut ReconcileReport,
) -> Result<(), ReconcileError> {
    let mine = local.subtree(p);
    match (&kid.ids, &kid.hash) {
        (Some(ids), _) => {
            if ids.len() != kid.count || ids.iter().any(|id| !p.contains(id.as_bytes())) {
                return Err(protocol(format!(
                    "listed ids that do not belong under prefix {:?}",
                    p.to_bit_string()
                )));
            }
            let theirs: BTreeSet<EntryId> = ids.iter().copied().collect();
            let ours: BTreeSet<EntryId> = local.ids_under(p).into_iter().collect();
            need.extend(theirs.difference(&ours));
            give.extend(ours.difference(&theirs));
        }
        (None, Some(hash)) => {
            if *hash == mine.hash {
                return Ok(());
            }
            if mine.count == 0 {
                pull_all_ids(remote, p, need, report, MAX_PER_SYNC).await?;
            } else {
                next.push(*p);
            }
        }
        (None, None) => {
            if kid.count != 0 {
                return Err(protocol("a non-empty child came without hash or ids"));
            }
            give.extend(local.ids_under(p));
        }
    }
    Ok(())
}

/// Lists every id the other side has under `p`, page by page, until `need` holds
/// `cap` ids.
pub(crate) async fn pull_all_ids<R: Remote>(
    remote: &R,
    p: &Prefix,
    need: &mut BTreeSet<EntryId>,
    report: &mut ReconcileReport,
    cap: usize,
) -> Result<(), ReconcileError> {
    let mut after = None;
    loop {
        let page = remote
            .ids(&IdsRequest {
                prefix: p.to_bit_string(),
                after,
                limit: MAX_IDS_PAGE,
            })
            .await?;
        report.requests += 1;
        if page.ids.len() > MAX_IDS_PAGE
            || page.ids.iter().any(|id| !p.contains(id.as_bytes()))
            || page.ids.windows(2).any(|w| w[0] >= w[1])
            || after.is_some_and(|a| page.ids.first().is_some_and(|f| *f <= a))
        {
            return Err(protocol(
                "sent an id page that is unordered, oversized or outside the prefix",
            ));
        }
        need.extend(page.ids.iter().copied());
        match (page.more, page.ids.last()) {
            (true, Some(last)) if need.len() < cap => after = Some(*last),
            _ => return Ok(()),
        }
    }
}

mod opt_hex_hash {
    use super::Hash;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(h: &Option<Hash>, s: S) -> Result<S::Ok, S::Error> {
        match h {
            Some(h) => s.serialize_str(&hex::encode(h)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Hash>, D::Error> {
        let s = <Option<std::borrow::Cow<'de, str>>>::deserialize(d)?;
        s.map(|s| {
            let bytes = hex::decode(s.as_ref()).map_err(serde::de::Error::custom)?;
            bytes
                .try_into()
                .map_err(|_| serde::de::Error::custom("a hash is 64 hex characters"))
        })
        .transpose()
    }
}

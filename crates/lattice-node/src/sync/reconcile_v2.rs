//! Reconciliation v2: when roots differ, a rateless set sketch ([`super::riblt`]) over
//! salted short ids finds the difference in a few pages of coded symbols, whatever the
//! ledgers' size; the entries then move by short id. v1's tree walk stays for peers
//! that do not announce v2 in their state answer.
//!
//! Messages are binary (`application/octet-stream` on the HTTP lung), each starting
//! with [`WIRE_VERSION`], so a later version is told apart rather than misread.

use std::collections::{BTreeSet, HashSet};

use super::reconcile::{EntriesMessage, ReconcileError, ReconcileReport, Remote, bounded_message};
use super::riblt::{CodedSymbol, Decoder, PageError, Salt, decode_page, encode_page};
use super::sketch_cache::{Prepared, SketchCache};
use crate::ledger::merkle::Hash;
use crate::ledger::{EntryId, Prefix};
use crate::sync::local::Local;

mod hello;
mod pages;
pub use hello::{
    BUCKETS, HelloAnswer, HelloRequest, MAX_HELLO_SYMBOLS, buckets, estimate_from_buckets,
    first_page, ledger_prefix,
};
pub use pages::EQUAL_COUNTS_FIRST;
use pages::Pager;

/// The reconciliation versions this node speaks, announced in its state answer.
pub const VERSIONS: [u16; 2] = [1, 2];
/// The first byte of every v2 request and page.
pub const WIRE_VERSION: u8 = 2;
/// Most symbols in one page.
pub const MAX_PAGE_SYMBOLS: usize = 32_768;
/// No page reaches past this index: a sketch that needs more is given up for ids.
pub const MAX_SYMBOLS: u64 = 1 << 20;
/// Ids the listing fallback accepts beyond twice the count the other side announced
/// (entries it gained since), before it stops.
const MAX_IDS_SLACK: usize = 100_000;
/// Most short ids in one fetch.
pub const MAX_SHORT_FETCH: usize = super::reconcile::MAX_ENTRIES;

/// How the difference was found (reported per sync).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Nothing to find: roots equal, or one side empty.
    #[default]
    Trivial,
    /// v1's Merkle walk (the other side does not speak v2).
    Walk,
    /// A set sketch that decoded.
    Sketch,
    /// The sketch did not decode within its cap (or short ids collided): all of the
    /// other side's ids were listed instead.
    Ids,
}

/// Tuning of one v2 reconciliation (tests shrink the cap to force the fallback).
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Most symbols asked for before falling back to listing ids; `None` derives it from
    /// the ledgers' sizes (listing ids costs 32 B per id, a symbol about 19 B).
    pub max_symbols: Option<u64>,
    /// Reconcile as a node that speaks v1 only would (for tests and benchmarks of v1
    /// against a v2 node).
    pub v1_only: bool,
    /// The salt, fixed (benchmarks and parity tests that compare byte counts across
    /// runs); `None` draws a fresh one, as every node does.
    pub salt: Option<Salt>,
    /// A deliberately wrong reconciliation, compiled only into tests: the simulator's
    /// default run must catch it.
    #[cfg(test)]
    pub(crate) defect: Option<Defect>,
}

/// Ways a reconciliation can be wrong on purpose (tests only).
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Defect {
    /// An off-by-one in moving entries: of every answer to a pull the last entry is
    /// taken as settled but never stored, and of every push the last is never sent.
    /// (Either half alone is healed by the other side's reconciliation.)
    DropsTheLastMoved,
}

impl Options {
    /// Whether this reconciliation is the defective one that loses the last entry of
    /// each pull answer and each push.
    pub(super) fn drops_last_moved(&self) -> bool {
        #[cfg(test)]
        if self.defect == Some(Defect::DropsTheLastMoved) {
            return true;
        }
        false
    }
}

/// `sketch`: symbols `start..start + count` of the answering side's set under `salt`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SketchRequest {
    pub salt: Salt,
    pub start: u64,
    pub count: u32,
}

/// `fetch by short id`: the entries whose short ids under `salt` are listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShortFetchRequest {
    pub salt: Salt,
    pub shorts: Vec<u64>,
}

/// A v2 message that cannot be read: named, nothing done.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("a reconciliation v{0} message; this node reads v{WIRE_VERSION}")]
    Version(u8),
    #[error("a {what} message of {len} bytes; expected {expected}")]
    Length {
        what: &'static str,
        len: usize,
        expected: String,
    },
    #[error(transparent)]
    Page(#[from] PageError),
    #[error("{0}")]
    Limit(String),
}

fn check_version(bytes: &[u8]) -> Result<(), WireError> {
    match bytes.first() {
        Some(&WIRE_VERSION) => Ok(()),
        Some(&v) => Err(WireError::Version(v)),
        None => Err(WireError::Version(0)),
    }
}

impl SketchRequest {
    pub const LEN: usize = 1 + 16 + 8 + 4;

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN);
        out.push(WIRE_VERSION);
        out.extend_from_slice(&self.salt.0);
        out.extend_from_slice(&self.start.to_le_bytes());
        out.extend_from_slice(&self.count.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        check_version(bytes)?;
        if bytes.len() != Self::LEN {
            return Err(WireError::Length {
                what: "sketch request",
                len: bytes.len(),
                expected: Self::LEN.to_string(),
            });
        }
        Ok(SketchRequest {
            salt: Salt(bytes[1..17].try_into().expect("16 bytes")),
            start: u64::from_le_bytes(bytes[17..25].try_into().expect("8 bytes")),
            count: u32::from_le_bytes(bytes[25..29].try_into().expect("4 bytes")),
        })
    }
}

impl ShortFetchRequest {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(17 + 8 * self.shorts.len());
        out.push(WIRE_VERSION);
        out.extend_from_slice(&self.salt.0);
        for s in &self.shorts {
            out.extend_from_slice(&s.to_le_bytes());
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        check_version(bytes)?;
        if bytes.len() < 17 || !(bytes.len() - 17).is_multiple_of(8) {
            return Err(WireError::Length {
                what: "short-id fetch",
                len: bytes.len(),
                expected: "17 + 8 per short id".into(),
            });
        }
        Ok(ShortFetchRequest {
            salt: Salt(bytes[1..17].try_into().expect("16 bytes")),
            shorts: bytes[17..]
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
        })
    }
}

/// The answering side. Requests beyond the caps are refused, not trimmed. Each
/// reconciliation's prepared set is kept between its requests ([`SketchCache`]).
pub mod answer {
    use super::*;

    fn prepared(store: &impl Local, salt: &Salt) -> std::sync::Arc<std::sync::Mutex<Prepared>> {
        SketchCache::global().get(salt, &store.root(), || store.ids_any_order())
    }

    /// The first round trip: equal roots, another ledger, or our state with the first
    /// symbols (see [`first_page`]).
    pub fn hello(store: &impl Local, req: &[u8]) -> Result<Vec<u8>, WireError> {
        let req = HelloRequest::decode(req)?;
        let ledger = store.ledger().id();
        if req.ledger != ledger_prefix(&ledger) {
            return Ok(HelloAnswer::OtherLedger(ledger).encode());
        }
        let root = store.root();
        if req.root == root {
            return Ok(HelloAnswer::Equal.encode());
        }
        let ours = store.len() as u64;
        let cap = default_cap(ours as usize, req.count as usize);
        let (k, estimated) = first_page(ours, req.count, cap);
        let (symbols, buckets) = if k == 0 && !estimated {
            (Vec::new(), None)
        } else {
            let p = prepared(store, &req.salt);
            let mut p = p.lock().expect("not poisoned");
            let symbols = p.window(0, k);
            let buckets = estimated.then(|| p.buckets());
            (symbols, buckets)
        };
        Ok(HelloAnswer::Differ {
            root,
            count: ours,
            symbols,
            buckets,
        }
        .encode())
    }

    /// A page of coded symbols of `store`'s ids.
    pub fn sketch(store: &impl Local, req: &[u8]) -> Result<Vec<u8>, WireError> {
        let req = SketchRequest::decode(req)?;
        let count = req.count as usize;
        if count == 0 || count > MAX_PAGE_SYMBOLS {
            return Err(WireError::Limit(format!(
                "{count} symbols asked; between 1 and {MAX_PAGE_SYMBOLS} per page"
            )));
        }
        if req.start + req.count as u64 > MAX_SYMBOLS {
            return Err(WireError::Limit(format!(
                "symbols past index {MAX_SYMBOLS} asked; list ids instead"
            )));
        }
        let p = prepared(store, &req.salt);
        let symbols = p.lock().expect("not poisoned").window(req.start, count);
        Ok(encode_page(req.start, &symbols))
    }

    /// The stored entries whose short ids are asked for (colliding ids all come back;
    /// the asker keeps what it lacks).
    pub fn fetch(store: &impl Local, req: &[u8]) -> Result<EntriesMessage, String> {
        let req = ShortFetchRequest::decode(req).map_err(|e| e.to_string())?;
        if req.shorts.len() > MAX_SHORT_FETCH {
            return Err(format!(
                "{} short ids asked; at most {MAX_SHORT_FETCH} per request",
                req.shorts.len()
            ));
        }
        let ids = prepared(store, &req.salt)
            .lock()
            .expect("not poisoned")
            .resolve(&req.shorts, 2 * MAX_SHORT_FETCH);
        let entries = store.get_many(&ids).map_err(|e| e.to_string())?;
        Ok(bounded_message(&entries).0)
    }
}

/// What each side lacks, as v2 finds it.
#[derive(Debug, Default)]
pub struct Plan {
    pub method: Method,
    /// Full ids the other side has and we lack (the ids fallback).
    pub need: BTreeSet<EntryId>,
    /// Short ids the other side has and we lack (the sketch), under `salt`.
    pub need_short: Vec<u64>,
    pub salt: Option<Salt>,
    /// What they lack.
    pub give: BTreeSet<EntryId>,
    pub symbols: u32,
}

/// The cap of a sketch when [`Options::max_symbols`] is unset: past about half of the
/// other side's ids' worth of bytes, listing them is the cheaper way.
fn default_cap(theirs: usize, ours: usize) -> u64 {
    let by_size = (theirs.max(ours) as u64) * 32 / 19 / 2;
    by_size.clamp(64, MAX_SYMBOLS)
}

/// What the first round trip already brought (a `hello` answer's symbols and
/// estimator); empty when it was v1's state answer.
#[derive(Clone, Debug, Default)]
pub struct Start {
    pub symbols: Vec<CodedSymbol>,
    pub buckets: Option<[u8; BUCKETS]>,
}

/// Finds what each side lacks through the sketch under `salt`, falling back to
/// listing ids.
pub async fn plan<R: Remote>(
    local: &impl Local,
    remote: &R,
    their_count: usize,
    salt: Salt,
    start: Start,
    options: &Options,
    report: &mut ReconcileReport,
) -> Result<Plan, ReconcileError> {
    // In any order: the sketch is of a set, and the ids fallback sorts them anyway.
    let ours = local.ids_any_order();
    let cap = options
        .max_symbols
        .unwrap_or_else(|| default_cap(their_count, ours.len()))
        .min(MAX_SYMBOLS);
    let net = their_count as i64 - ours.len() as i64;
    let mut plan = Plan::default();
    // The net difference is a lower bound on the difference: when its sketch would not
    // fit under the cap (one side empty or nearly), list ids at once.
    let hopeless = net.unsigned_abs().saturating_mul(3) / 2 >= cap;
    if !hopeless {
        // One hash per id; the rest of the work is on their short ids.
        let mut dec = Decoder::from_ids(&salt, &ours);
        let mut page = start.symbols;
        let mut pager = Pager::new(
            start
                .buckets
                .map(|theirs| estimate_from_buckets(&theirs, &buckets(dec.local_shorts()), net)),
        );
        // Asked for only when the first answer brought no symbols; every request is capped.
        let mut want = if page.is_empty() { pager.first(net) } else { 0 };
        loop {
            if !page.is_empty() {
                dec.add(&page);
                plan.symbols = u32::try_from(dec.received()).unwrap_or(u32::MAX);
                if let Some(diff) = dec.difference() {
                    plan.method = Method::Sketch;
                    plan.salt = Some(salt);
                    plan.need_short = diff.remote_only;
                    let (give, all_found) =
                        select_by_short(&ours, dec.local_shorts(), &diff.local_only);
                    plan.give = give;
                    if !all_found {
                        return Err(ReconcileError::Protocol(
                            "the sketch decoded to a short id we lack on our side".into(),
                        ));
                    }
                    return Ok(plan);
                }
                if dec.is_malformed() {
                    break;
                }
                let residual = dec.residual_counts();
                want = pager.next(dec.received() as u64, dec.decoded(), &residual);
            }
            let at = dec.received() as u64;
            if at >= cap {
                break;
            }
            let count = want.min(cap - at).min(MAX_PAGE_SYMBOLS as u64) as u32;
            let req = SketchRequest {
                salt,
                start: at,
                count,
            };
            let bytes = remote.sketch(&req).await?;
            report.requests += 1;
            report.rounds += 1;
            let (first, symbols) = decode_page(&bytes, count as usize)
                .map_err(|e| ReconcileError::Protocol(e.to_string()))?;
            if first != at || symbols.len() != count as usize {
                return Err(ReconcileError::Protocol(format!(
                    "asked for symbols {at}..{}, got {first}..{}",
                    at + count as u64,
                    first + symbols.len() as u64
                )));
            }
            page = symbols;
        }
    }
    // Listing their ids costs 32 B each; we then know both differences exactly.
    plan.method = Method::Ids;
    let mut theirs = BTreeSet::new();
    // All of them (the common ones too), however many: the difference is computed here.
    let all = their_count.saturating_mul(2).saturating_add(MAX_IDS_SLACK);
    super::reconcile::pull_all_ids(remote, &Prefix::ROOT, &mut theirs, report, all).await?;
    let ours: BTreeSet<EntryId> = ours.into_iter().collect();
    plan.give = ours.difference(&theirs).copied().collect();
    plan.need = theirs.difference(&ours).copied().collect();
    Ok(plan)
}

/// Our ids whose short ids are among `wanted`, and whether every one of those was
/// found. Each of our million ids is looked up: a bitmap of the wanted ids' top 16 bits
/// turns almost all of them away at the cost of one bit test (a hash set cost 15-20 ms
/// at a million), and the rest are found by binary search, so even wanted ids crafted
/// by the other side (it knows the salt) cost at most a logarithm each.
fn select_by_short(
    ours: &[EntryId],
    shorts: impl Iterator<Item = u64>,
    wanted: &[u64],
) -> (BTreeSet<EntryId>, bool) {
    let mut sorted = wanted.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut filter = vec![0u64; (1 << 16) / 64];
    for s in &sorted {
        let b = (s >> 48) as usize;
        filter[b / 64] |= 1 << (b % 64);
    }
    let mut hit = vec![false; sorted.len()];
    let mut out = BTreeSet::new();
    for (s, id) in shorts.zip(ours) {
        let b = (s >> 48) as usize;
        if filter[b / 64] & (1 << (b % 64)) != 0
            && let Ok(i) = sorted.binary_search(&s)
        {
            hit[i] = true;
            out.insert(*id);
        }
    }
    (out, hit.iter().all(|h| *h))
}

/// What v2's first round trip found.
pub enum Hello {
    Equal,
    Differ {
        root: Hash,
        count: usize,
        start: Start,
    },
}

/// v2's first round trip, when the other side has it (`None` when it does not, or when
/// this reconciliation is v1's).
pub(super) async fn hello<R: Remote>(
    local: &impl Local,
    remote: &R,
    salt: &Salt,
    options: &Options,
) -> Result<Option<Hello>, ReconcileError> {
    if options.v1_only {
        return Ok(None);
    }
    let ours = local.ledger().id();
    let req = HelloRequest {
        ledger: ledger_prefix(&ours),
        root: local.root(),
        count: local.len() as u64,
        salt: *salt,
    };
    let bytes = match remote.hello(&req).await {
        Ok(bytes) => bytes,
        Err(t) if t.is_v2_unsupported() => return Ok(None),
        Err(t) => return Err(t.into()),
    };
    match HelloAnswer::decode(&bytes).map_err(|e| ReconcileError::Protocol(e.to_string()))? {
        HelloAnswer::Equal => Ok(Some(Hello::Equal)),
        HelloAnswer::OtherLedger(theirs) => Err(ReconcileError::OtherLedger { ours, theirs }),
        HelloAnswer::Differ {
            root,
            count,
            symbols,
            buckets,
        } => Ok(Some(Hello::Differ {
            root,
            count: usize::try_from(count)
                .map_err(|_| ReconcileError::Protocol("a count beyond memory".into()))?,
            start: Start { symbols, buckets },
        })),
    }
}

/// Pulls the entries behind `shorts`, verifying each: it must verify and its short id
/// must be one asked for. Entries we hold already (a collision) are simply not new.
/// Returns the first forgery seen, if any.
pub async fn pull_short<R: Remote>(
    local: &impl Local,
    remote: &R,
    salt: &Salt,
    shorts: &[u64],
    max_payload: usize,
    options: &Options,
    report: &mut ReconcileReport,
) -> Result<Option<String>, ReconcileError> {
    let ledger = local.ledger();
    // Ids refused for membership are remembered, so they are not fetched again.
    let refused: HashSet<u64> = ledger
        .refused_ids()
        .iter()
        .map(|id| salt.short_id(id))
        .collect();
    let mut pending: Vec<u64> = shorts
        .iter()
        .copied()
        .filter(|s| !refused.contains(s))
        .collect();
    pending.truncate(super::reconcile::MAX_PER_SYNC);
    let mut forged = None;
    while !pending.is_empty() {
        let chunk: Vec<u64> = pending.iter().take(MAX_SHORT_FETCH).copied().collect();
        let msg = remote
            .fetch_short(&ShortFetchRequest {
                salt: *salt,
                shorts: chunk.clone(),
            })
            .await?;
        report.requests += 1;
        let asked: HashSet<u64> = chunk.iter().copied().collect();
        let got = super::reconcile::settle_pulled(
            local,
            &msg.entries,
            max_payload,
            |id| Some(salt.short_id(id)).filter(|s| asked.contains(s)),
            options,
            report,
            &mut forged,
        )
        .await?;
        pending.retain(|s| !got.contains(s));
        let progress = !got.is_empty();
        if !progress {
            break;
        }
    }
    Ok(forged)
}

#[cfg(test)]
mod tests;

//! v2's first round trip: the root compare, the first page of symbols and a difference
//! estimate in one exchange.
//!
//! The asker sends its root, its count, its ledger (an 8-byte prefix of the id, enough
//! to tell two ledgers apart; the P2P protocol name carries the whole id) and the salt.
//! Equal roots answer in two bytes, so the common case of a check costs about 62 bytes.
//! Otherwise the answer carries the answering side's root and count and the first
//! symbols, as many as the net difference needs when one side only gained; when the
//! counts are equal (both sides gained, as many each) it carries 20 symbols (enough for
//! a small difference) and a 64-byte estimator: the answering side's short ids counted
//! in 64 buckets, modulo 256, from which the asker estimates the size of the difference
//! and sizes its next page (an asker of before this ignores the estimator once symbols
//! came, and sizes by what did not decode).

use super::WireError;
use crate::ledger::LedgerId;
use crate::ledger::merkle::Hash;
use crate::sync::riblt::{CodedSymbol, Salt};
use crate::sync::varint::{self, VarintError};

/// Buckets of the difference estimator.
pub const BUCKETS: usize = 64;
/// Most symbols in the first answer.
pub const MAX_HELLO_SYMBOLS: usize = super::MAX_PAGE_SYMBOLS;

/// `hello`: the asker's state and the reconciliation's salt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelloRequest {
    pub ledger: [u8; 8],
    pub root: Hash,
    pub count: u64,
    pub salt: Salt,
}

/// What a `hello` answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HelloAnswer {
    /// The roots are equal: nothing to do.
    Equal,
    /// The answering node holds another ledger (its whole id).
    OtherLedger(LedgerId),
    /// The roots differ: the answering side's root and count, symbols `0..k` of its
    /// sketch, and the estimator when it is sent.
    Differ {
        root: Hash,
        count: u64,
        symbols: Vec<CodedSymbol>,
        buckets: Option<[u8; BUCKETS]>,
    },
}

const EQUAL: u8 = 0;
const DIFFER: u8 = 1;
const DIFFER_ESTIMATED: u8 = 2;
const OTHER_LEDGER: u8 = 3;

/// The first 8 bytes of a ledger id.
pub fn ledger_prefix(id: &LedgerId) -> [u8; 8] {
    id.0[..8].try_into().expect("8 bytes")
}

/// The bucket counts of a set of short ids (modulo 256, as they travel).
pub fn buckets(shorts: impl Iterator<Item = u64>) -> [u8; BUCKETS] {
    let mut out = [0u8; BUCKETS];
    for s in shorts {
        let b = (s >> 58) as usize;
        out[b] = out[b].wrapping_add(1);
    }
    out
}

/// Estimates the size of the symmetric difference from both sides' buckets. Bucket
/// `j`'s count difference is the sum of +1 (their extra ids) and -1 (ours) falling in
/// it, so the sum of its squares is `d + (net^2 - d) / B` on average, for `B` buckets
/// and `net` the count difference (each difference below 128 per bucket survives the
/// modulo).
pub fn estimate_from_buckets(theirs: &[u8; BUCKETS], ours: &[u8; BUCKETS], net: i64) -> f64 {
    let squares: f64 = theirs
        .iter()
        .zip(ours)
        .map(|(t, o)| f64::from(t.wrapping_sub(*o) as i8).powi(2))
        .sum();
    let b = BUCKETS as f64;
    let d = (b * squares - (net as f64).powi(2)) / (b - 1.0);
    d.max(net.unsigned_abs() as f64)
}

fn take_varint(rest: &mut &[u8], what: &'static str) -> Result<u64, WireError> {
    varint::take(rest).map_err(|e| match e {
        VarintError::Truncated => truncated(what),
        VarintError::TooLong => WireError::Limit(format!("a {what} holds a varint over 64 bits")),
    })
}

fn take<'a>(rest: &mut &'a [u8], n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
    if rest.len() < n {
        return Err(truncated(what));
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Ok(head)
}

fn truncated(what: &'static str) -> WireError {
    WireError::Length {
        what,
        len: 0,
        expected: "more bytes than it holds".into(),
    }
}

fn put_symbol(out: &mut Vec<u8>, s: &CodedSymbol) {
    out.extend_from_slice(&s.sum.to_le_bytes());
    out.extend_from_slice(&s.check.to_le_bytes());
    varint::put(out, ((s.count << 1) ^ (s.count >> 63)) as u64);
}

fn take_symbol(rest: &mut &[u8]) -> Result<CodedSymbol, WireError> {
    let what = "hello answer";
    let sum = u64::from_le_bytes(take(rest, 8, what)?.try_into().expect("8 bytes"));
    let check = u64::from_le_bytes(take(rest, 8, what)?.try_into().expect("8 bytes"));
    let z = take_varint(rest, what)?;
    let count = ((z >> 1) as i64) ^ -((z & 1) as i64);
    Ok(CodedSymbol { sum, check, count })
}

fn check_version(bytes: &[u8]) -> Result<(), WireError> {
    match bytes.first() {
        Some(&super::WIRE_VERSION) => Ok(()),
        Some(&v) => Err(WireError::Version(v)),
        None => Err(WireError::Version(0)),
    }
}

impl HelloRequest {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.push(super::WIRE_VERSION);
        out.extend_from_slice(&self.ledger);
        out.extend_from_slice(&self.root);
        varint::put(&mut out, self.count);
        out.extend_from_slice(&self.salt.0);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        check_version(bytes)?;
        let what = "hello request";
        let mut rest = &bytes[1..];
        let ledger = take(&mut rest, 8, what)?.try_into().expect("8 bytes");
        let root = take(&mut rest, 32, what)?.try_into().expect("32 bytes");
        let count = take_varint(&mut rest, what)?;
        let salt = Salt(take(&mut rest, 16, what)?.try_into().expect("16 bytes"));
        if !rest.is_empty() {
            return Err(WireError::Length {
                what,
                len: bytes.len(),
                expected: format!("{}", bytes.len() - rest.len()),
            });
        }
        Ok(HelloRequest {
            ledger,
            root,
            count,
            salt,
        })
    }
}

impl HelloAnswer {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![super::WIRE_VERSION];
        match self {
            HelloAnswer::Equal => out.push(EQUAL),
            HelloAnswer::OtherLedger(id) => {
                out.push(OTHER_LEDGER);
                out.extend_from_slice(&id.0);
            }
            HelloAnswer::Differ {
                root,
                count,
                symbols,
                buckets,
            } => {
                out.push(if buckets.is_some() {
                    DIFFER_ESTIMATED
                } else {
                    DIFFER
                });
                out.extend_from_slice(root);
                varint::put(&mut out, *count);
                varint::put(&mut out, symbols.len() as u64);
                for s in symbols {
                    put_symbol(&mut out, s);
                }
                if let Some(b) = buckets {
                    out.extend_from_slice(b);
                }
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        check_version(bytes)?;
        let what = "hello answer";
        let mut rest = &bytes[1..];
        let status = take(&mut rest, 1, what)?[0];
        let answer = match status {
            EQUAL => HelloAnswer::Equal,
            OTHER_LEDGER => HelloAnswer::OtherLedger(LedgerId(
                take(&mut rest, 32, what)?.try_into().expect("32"),
            )),
            DIFFER | DIFFER_ESTIMATED => {
                let root = take(&mut rest, 32, what)?.try_into().expect("32 bytes");
                let count = take_varint(&mut rest, what)?;
                let k = take_varint(&mut rest, what)?;
                if k > MAX_HELLO_SYMBOLS as u64 {
                    return Err(WireError::Limit(format!(
                        "a hello answer of {k} symbols; at most {MAX_HELLO_SYMBOLS}"
                    )));
                }
                let symbols = (0..k)
                    .map(|_| take_symbol(&mut rest))
                    .collect::<Result<Vec<_>, _>>()?;
                let buckets = if status == DIFFER_ESTIMATED {
                    Some(
                        take(&mut rest, BUCKETS, what)?
                            .try_into()
                            .expect("64 bytes"),
                    )
                } else {
                    None
                };
                HelloAnswer::Differ {
                    root,
                    count,
                    symbols,
                    buckets,
                }
            }
            other => {
                return Err(WireError::Limit(format!(
                    "a hello answer of unknown status {other}"
                )));
            }
        };
        if !rest.is_empty() {
            return Err(WireError::Length {
                what,
                len: bytes.len(),
                expected: format!("{}", bytes.len() - rest.len()),
            });
        }
        Ok(answer)
    }
}

/// How many symbols the first answer carries, and whether the estimator rides along,
/// for the answering side's count `ours` and the asker's `theirs`: none when one side
/// is empty (ids are listed, or everything pushed); when one side only gained, enough
/// to decode the net difference most of the time; when the counts are equal, a few
/// symbols ([`super::EQUAL_COUNTS_FIRST`]) and the estimator.
pub fn first_page(ours: u64, theirs: u64, cap: u64) -> (usize, bool) {
    if ours == 0 || theirs == 0 {
        return (0, false);
    }
    let net = ours.abs_diff(theirs);
    if net.saturating_mul(3) / 2 >= cap {
        // The asker lists ids instead (see `plan`).
        return (0, false);
    }
    if net == 0 {
        // The net difference says nothing: a few symbols for a small difference, and
        // the estimator to size the next page for a larger one.
        return (super::EQUAL_COUNTS_FIRST.min(cap as usize), true);
    }
    // 1.5 per difference, and 2 more per difference for the first 20: a small
    // difference needs relatively more (one side only, 99 runs of 100 decode within 10
    // symbols for 2, 36 for 10, 173 for 100, 1,465 for 1,000), and a second page costs
    // a request and a header besides its symbols.
    let k = 2 + net + net.div_ceil(2) + 2 * (net - 1).min(19);
    (k.min(MAX_HELLO_SYMBOLS as u64) as usize, false)
}

//! A rateless set sketch (Rateless IBLT, Yang et al., "Practical Rateless Set
//! Reconciliation", SIGCOMM 2024), over 8-byte salted short ids.
//!
//! Each side maps every id of its set to a short id with a keyed hash under a salt the
//! asking side draws fresh for each reconciliation, so nobody can grind entries whose
//! short ids collide. A short id contributes to an unbounded sequence of coded symbols,
//! symbol `i` with probability about `1 / (1 + i/2)`: symbol 0 sums the whole set, and
//! later symbols thin out. Subtracting the local sketch from the remote one leaves a
//! sketch of the symmetric difference, which a peeling decoder unravels once about
//! `1.35 * d` symbols have arrived, whatever the sets' size. The answering side
//! therefore streams symbols until the asking side decodes; nothing about `d` has to be
//! known in advance.
//!
//! Work per id is one keyed hash plus `O(log m)` XORs for `m` symbols.

use std::collections::HashMap;

use crate::ledger::EntryId;
use crate::sync::varint;

mod window;
use window::{FAST_END, window_fast, window_scalar};

/// The per-reconciliation key of the short-id hash (SipHash-2-4's 128-bit key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Salt(pub [u8; 16]);

impl Salt {
    /// A salt from the operating system's randomness.
    pub fn random() -> Salt {
        let mut b = [0u8; 16];
        // Without randomness a fixed salt still reconciles; only collision resistance
        // against a grinding author is lost, and the next sync draws again.
        let _ = getrandom::fill(&mut b);
        Salt(b)
    }

    fn keys(&self) -> (u64, u64) {
        let k0 = u64::from_le_bytes(self.0[..8].try_into().expect("8 bytes"));
        let k1 = u64::from_le_bytes(self.0[8..].try_into().expect("8 bytes"));
        (k0, k1)
    }

    /// The short id of `id` under this salt.
    pub fn short_id(&self, id: &EntryId) -> u64 {
        let (k0, k1) = self.keys();
        siphash24(k0, k1, id.as_bytes())
    }

    /// The short ids of `ids`, in their order: [`Salt::short_id`] of each, two hashed
    /// side by side (one SipHash's rounds are a chain of dependent steps; two chains
    /// keep the core busier: about 30 ms instead of 35-45 for a million ids).
    pub fn short_ids(&self, ids: &[EntryId]) -> Vec<u64> {
        self.map_short_ids(ids, |s| s)
    }

    /// `f` of each of the short ids of `ids`, in their order, into one vector (no
    /// vector of short ids in between: at a million ids every vector filled costs its
    /// pages' first touch, a few ms per 8 MB on the VMs measured).
    fn map_short_ids<T>(&self, ids: &[EntryId], mut f: impl FnMut(u64) -> T) -> Vec<T> {
        let (k0, k1) = self.keys();
        let mut out = Vec::with_capacity(ids.len());
        let mut pairs = ids.chunks_exact(2);
        for p in &mut pairs {
            let [a, b] = siphash24_id_pair(k0, k1, [p[0].as_bytes(), p[1].as_bytes()]);
            out.push(f(a));
            out.push(f(b));
        }
        for id in pairs.remainder() {
            out.push(f(siphash24(k0, k1, id.as_bytes())));
        }
        out
    }

    /// The checksum that tells a pure coded symbol (one short id alone) from a mixture.
    fn checksum(&self, short: u64) -> u64 {
        let (k0, k1) = self.keys();
        mix64(short ^ k1.rotate_left(29)).wrapping_add(k0) ^ 0x9e37_79b9_7f4a_7c15
    }
}

/// SipHash's initial state for a key.
fn sip_init(k0: u64, k1: u64) -> [u64; 4] {
    [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ]
}

/// One SipRound.
#[inline(always)]
fn round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13) ^ v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16) ^ v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21) ^ v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17) ^ v[2];
    v[2] = v[2].rotate_left(32);
}

/// [`siphash24`] of two 32-byte ids at once, their rounds interleaved.
#[inline]
fn siphash24_id_pair(k0: u64, k1: u64, ids: [&[u8; 32]; 2]) -> [u64; 2] {
    let mut v = [sip_init(k0, k1); 2];
    let word = |id: &[u8; 32], w: usize| {
        u64::from_le_bytes(id[w * 8..w * 8 + 8].try_into().expect("8 bytes"))
    };
    // Four message words, then the length block of a 32-byte message.
    for w in 0..5 {
        let m = if w < 4 {
            [word(ids[0], w), word(ids[1], w)]
        } else {
            [32 << 56; 2]
        };
        for (v, m) in v.iter_mut().zip(m) {
            v[3] ^= m;
        }
        for v in &mut v {
            round(v);
        }
        for v in &mut v {
            round(v);
        }
        for (v, m) in v.iter_mut().zip(m) {
            v[0] ^= m;
        }
    }
    for v in &mut v {
        v[2] ^= 0xff;
    }
    for _ in 0..4 {
        for v in &mut v {
            round(v);
        }
    }
    v.map(|v| v[0] ^ v[1] ^ v[2] ^ v[3])
}

/// SipHash-2-4 of a message, written from the SipHash paper (Aumasson, Bernstein).
fn siphash24(k0: u64, k1: u64, msg: &[u8]) -> u64 {
    let mut v = sip_init(k0, k1);
    let mut chunks = msg.chunks_exact(8);
    for c in &mut chunks {
        let m = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        v[3] ^= m;
        round(&mut v);
        round(&mut v);
        v[0] ^= m;
    }
    let rest = chunks.remainder();
    let mut last = [0u8; 8];
    last[..rest.len()].copy_from_slice(rest);
    last[7] = msg.len() as u8;
    let m = u64::from_le_bytes(last);
    v[3] ^= m;
    round(&mut v);
    round(&mut v);
    v[0] ^= m;
    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// A bijective 64-bit mixer (the splitmix64 finaliser).
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One coded symbol: the XOR of the short ids mapped to it, the XOR of their checksums,
/// and how many there are (remote minus local, once subtracted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CodedSymbol {
    pub sum: u64,
    pub check: u64,
    pub count: i64,
}

impl CodedSymbol {
    fn apply(&mut self, m: &Mapping, sign: i64) {
        self.sum ^= m.short;
        self.check ^= m.check;
        self.count += sign;
    }

    fn is_empty(&self) -> bool {
        self.count == 0 && self.sum == 0 && self.check == 0
    }
}

/// Where one short id goes: the indices of the coded symbols it is part of, drawn one
/// after another from a generator seeded by its checksum, so both sides agree.
#[derive(Clone, Copy, Debug)]
struct Mapping {
    short: u64,
    check: u64,
    state: u64,
    next: u64,
}

impl Mapping {
    fn new(salt: &Salt, short: u64) -> Mapping {
        let check = salt.checksum(short);
        Mapping {
            short,
            check,
            state: check,
            next: 0,
        }
    }

    /// Moves to the next index. The gap after index `i` is drawn so that index `j`
    /// is hit with probability `1 / (1 + j/2)` (the paper's mapping, section 4.2):
    /// with `u` uniform on (0, 1], the gap is `ceil((i + 1.5) * (1/sqrt(u) - 1))`.
    #[inline]
    fn advance(&mut self) {
        self.state = mix64(self.state.wrapping_add(0x9e37_79b9_7f4a_7c15));
        self.next = next_index(self.next, self.state);
    }
}

/// The index after `next` for the generator's `state`, exactly as the formula above
/// computes it in `f64` with `ceil`, written without library calls: it runs about 14
/// times per id for a page of 1,500 symbols, so for a million ids it is most of a
/// sketch's CPU, and x86-64's baseline has no rounding instruction (`f64::ceil` is a
/// call there), nor a u64 conversion (these values all fit an i64). Only called for
/// indices below [`MAX_INDEX`].
#[inline]
fn next_index(next: u64, state: u64) -> u64 {
    debug_assert!(next < MAX_INDEX);
    // u in (0, 1]: 53 random bits, never zero (dividing by 2^53 is this multiplication).
    let u = ((state >> 11) + 1) as i64 as f64 * (1.0 / (1u64 << 53) as f64);
    let x = (next as i64 as f64 + 1.5) * (1.0 / u.sqrt() - 1.0);
    // x >= 0; a far gap saturates: such an index is never reached by any cap.
    let gap = if x < TWO_POW_63 {
        let t = x as i64;
        let t = if (t as f64) < x { t + 1 } else { t };
        (t as u64).clamp(1, u64::MAX / 2)
    } else {
        u64::MAX / 2
    };
    next.saturating_add(gap)
}

const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
/// Indices a mapping is ever advanced from stay below this (pages end at
/// `reconcile_v2::MAX_SYMBOLS`, far below).
const MAX_INDEX: u64 = 1 << 53;

/// The formula as first written (`ceil` and u64 conversions), which [`next_index`]
/// must equal.
#[cfg(test)]
pub(crate) fn next_index_reference(next: u64, state: u64) -> u64 {
    let u = ((state >> 11) + 1) as f64 / (1u64 << 53) as f64;
    let gap = ((next as f64 + 1.5) * (1.0 / u.sqrt() - 1.0)).ceil();
    next.saturating_add(if gap >= 1.0 { gap as u64 } else { 1 }.min(u64::MAX / 2))
}

/// Produces coded symbols of a set, window after window (index `start` onwards).
pub struct Encoder {
    salt: Salt,
    mappings: Vec<Mapping>,
    produced: u64,
}

impl Encoder {
    pub fn new(salt: &Salt, ids: impl IntoIterator<Item = EntryId>) -> Encoder {
        Self::from_shorts(salt, ids.into_iter().map(|id| salt.short_id(&id)))
    }

    /// The encoder of `ids`, hashed straight into their mappings.
    pub fn from_ids(salt: &Salt, ids: &[EntryId]) -> Encoder {
        Encoder {
            salt: *salt,
            mappings: salt.map_short_ids(ids, |s| Mapping::new(salt, s)),
            produced: 0,
        }
    }

    pub fn from_shorts(salt: &Salt, shorts: impl IntoIterator<Item = u64>) -> Encoder {
        Encoder {
            salt: *salt,
            mappings: shorts.into_iter().map(|s| Mapping::new(salt, s)).collect(),
            produced: 0,
        }
    }

    /// Index of the next symbol [`Encoder::window`] produces.
    pub fn position(&self) -> u64 {
        self.produced
    }

    /// How many ids it encodes.
    pub fn len(&self) -> usize {
        self.mappings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.mappings.is_empty()
    }

    /// The short ids encoded, in the order they were given.
    pub fn shorts(&self) -> impl ExactSizeIterator<Item = u64> + '_ {
        self.mappings.iter().map(|m| m.short)
    }

    /// Back to symbol 0, keeping the short ids (no hashing again).
    pub fn restart(&mut self) {
        let salt = self.salt;
        for m in &mut self.mappings {
            *m = Mapping::new(&salt, m.short);
        }
        self.produced = 0;
    }

    /// Positions the encoder at symbol `start`: onwards when it is behind, from symbol 0
    /// again when it is past it (a page asked twice, or after another page).
    pub fn seek(&mut self, start: u64) {
        if start < self.produced {
            self.restart();
        }
        self.skip_to(start);
    }

    /// Skips to symbol `start` without producing the ones before it.
    pub fn skip_to(&mut self, start: u64) {
        for m in &mut self.mappings {
            while m.next < start {
                m.advance();
            }
        }
        self.produced = self.produced.max(start);
    }

    /// The next `count` symbols.
    pub fn window(&mut self, count: usize) -> Vec<CodedSymbol> {
        let start = self.produced;
        let end = start + count as u64;
        let out = if end <= FAST_END {
            window_fast(&mut self.mappings, start, count)
        } else {
            window_scalar(&mut self.mappings, start, count)
        };
        self.produced = end;
        out
    }
}

/// What a decoded sketch says: short ids only the remote side has, and only we have.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Difference {
    pub remote_only: Vec<u64>,
    pub local_only: Vec<u64>,
}

/// The asking side: the remote's symbols minus ours, peeled as they arrive.
pub struct Decoder {
    local: Encoder,
    /// Remote minus local, with every decoded short id taken out again.
    symbols: Vec<CodedSymbol>,
    /// Decoded short ids and their sign (+1 remote only, -1 local only), kept mapping
    /// forward so symbols arriving later have them taken out too.
    decoded: Vec<(Mapping, i64)>,
    seen: HashMap<u64, i64>,
    malformed: bool,
}

impl Decoder {
    pub fn new(salt: &Salt, local: impl IntoIterator<Item = u64>) -> Decoder {
        Self::with_local(Encoder::from_shorts(salt, local))
    }

    /// The decoder against our `ids` ([`Encoder::from_ids`]).
    pub fn from_ids(salt: &Salt, ids: &[EntryId]) -> Decoder {
        Self::with_local(Encoder::from_ids(salt, ids))
    }

    fn with_local(local: Encoder) -> Decoder {
        Decoder {
            local,
            symbols: Vec::new(),
            decoded: Vec::new(),
            seen: HashMap::new(),
            malformed: false,
        }
    }

    /// Our short ids, in the order given.
    pub fn local_shorts(&self) -> impl ExactSizeIterator<Item = u64> + '_ {
        self.local.shorts()
    }

    /// Symbols received so far.
    pub fn received(&self) -> usize {
        self.symbols.len()
    }

    /// Adds the remote's next symbols (in order from index [`Decoder::received`]) and
    /// peels what they make pure.
    pub fn add(&mut self, remote: &[CodedSymbol]) {
        let start = self.symbols.len();
        let end = (start + remote.len()) as u64;
        let ours = self.local.window(remote.len());
        for (r, l) in remote.iter().zip(&ours) {
            self.symbols.push(CodedSymbol {
                sum: r.sum ^ l.sum,
                check: r.check ^ l.check,
                count: r.count.wrapping_sub(l.count),
            });
        }
        for (m, sign) in &mut self.decoded {
            while m.next < end {
                self.symbols[m.next as usize].apply(m, -*sign);
                m.advance();
            }
        }
        let fresh: Vec<usize> = (start..self.symbols.len()).collect();
        self.peel(fresh);
    }

    fn pure(&self, i: usize, salt: &Salt) -> bool {
        let s = &self.symbols[i];
        (s.count == 1 || s.count == -1) && salt.checksum(s.sum) == s.check
    }

    fn peel(&mut self, mut queue: Vec<usize>) {
        let salt = self.salt();
        let len = self.symbols.len() as u64;
        while let Some(i) = queue.pop() {
            if !self.pure(i, &salt) {
                continue;
            }
            let s = self.symbols[i];
            let sign = s.count;
            if self.seen.insert(s.sum, sign).is_some() {
                // The same short id decoded twice: the sketch is inconsistent (a
                // collision or a lying peer); the caller falls back.
                self.malformed = true;
                return;
            }
            let mut m = Mapping::new(&salt, s.sum);
            while m.next < len {
                let j = m.next as usize;
                self.symbols[j].apply(&m, -sign);
                queue.push(j);
                m.advance();
            }
            self.decoded.push((m, sign));
        }
    }

    fn salt(&self) -> Salt {
        self.local.salt
    }

    /// The difference, once every symbol received peels to empty (symbol 0 holds every
    /// short id, so it is empty only when all were found).
    pub fn difference(&self) -> Option<Difference> {
        if self.malformed || self.symbols.is_empty() || !self.symbols.iter().all(|s| s.is_empty()) {
            return None;
        }
        let mut d = Difference::default();
        for (m, sign) in &self.decoded {
            if *sign > 0 {
                d.remote_only.push(m.short);
            } else {
                d.local_only.push(m.short);
            }
        }
        Some(d)
    }

    /// Short ids decoded so far.
    pub fn decoded(&self) -> usize {
        self.decoded.len()
    }

    /// The counts of the symbols received, after peeling (for estimating the
    /// difference when they did not all decode).
    pub fn residual_counts(&self) -> Vec<i64> {
        self.symbols.iter().map(|s| s.count).collect()
    }

    /// Whether the symbols received contradict themselves beyond repair.
    pub fn is_malformed(&self) -> bool {
        self.malformed
    }
}

/// Bytes of a symbol page's header: version, first index (u64), symbol count (u32).
pub const PAGE_HEADER: usize = 1 + 8 + 4;
/// The version byte of [`encode_page`].
pub const PAGE_VERSION: u8 = 2;

/// A page of symbols on the wire: header, then per symbol the sum and checksum (8 bytes
/// each, little endian) and the count as a zigzag LEB128 varint.
pub fn encode_page(start: u64, symbols: &[CodedSymbol]) -> Vec<u8> {
    let mut out = Vec::with_capacity(PAGE_HEADER + symbols.len() * 19);
    out.push(PAGE_VERSION);
    out.extend_from_slice(&start.to_le_bytes());
    out.extend_from_slice(&(symbols.len() as u32).to_le_bytes());
    for s in symbols {
        out.extend_from_slice(&s.sum.to_le_bytes());
        out.extend_from_slice(&s.check.to_le_bytes());
        varint::put(&mut out, ((s.count << 1) ^ (s.count >> 63)) as u64);
    }
    out
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error("a symbol page of version {0}; this node reads version {PAGE_VERSION}")]
    Version(u8),
    #[error("a symbol page is truncated")]
    Truncated,
    #[error("a symbol page holds {0} bytes after its last symbol")]
    Trailing(usize),
    #[error("a symbol page holds more than {0} symbols")]
    TooMany(usize),
}

/// Reads a page written by [`encode_page`]: its first index and symbols.
pub fn decode_page(bytes: &[u8], max: usize) -> Result<(u64, Vec<CodedSymbol>), PageError> {
    if bytes.len() < PAGE_HEADER {
        return Err(PageError::Truncated);
    }
    if bytes[0] != PAGE_VERSION {
        return Err(PageError::Version(bytes[0]));
    }
    let start = u64::from_le_bytes(bytes[1..9].try_into().expect("8 bytes"));
    let n = u32::from_le_bytes(bytes[9..13].try_into().expect("4 bytes")) as usize;
    if n > max {
        return Err(PageError::TooMany(max));
    }
    let mut rest = &bytes[PAGE_HEADER..];
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        if rest.len() < 17 {
            return Err(PageError::Truncated);
        }
        let sum = u64::from_le_bytes(rest[..8].try_into().expect("8 bytes"));
        let check = u64::from_le_bytes(rest[8..16].try_into().expect("8 bytes"));
        rest = &rest[16..];
        // An overlong count reads as a truncated page, as it always has.
        let z = varint::take(&mut rest).map_err(|_| PageError::Truncated)?;
        let count = ((z >> 1) as i64) ^ -((z & 1) as i64);
        out.push(CodedSymbol { sum, check, count });
    }
    if !rest.is_empty() {
        return Err(PageError::Trailing(rest.len()));
    }
    Ok((start, out))
}

#[cfg(test)]
mod tests;

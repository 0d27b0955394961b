//! The encoder's inner loop: symbols of a window from every mapping, about 14 index
//! steps per id for a page of 1,500 symbols, which is most of a sketch's CPU.

use super::{CodedSymbol, Mapping, mix64};

/// Windows ending at or below this index take [`window_fast`]: a mapping is then only
/// ever advanced from below 2^25, so its next gap is below 2^25 * 2^26.5 (`u` is at
/// least 2^-53) and every value the fast step handles is an integer below 2^52.
pub(super) const FAST_END: u64 = 1 << 25;
const TWO_POW_52: f64 = 4_503_599_627_370_496.0;

/// An integer below 2^52 held in an `f64`, as an integer (its mantissa once 2^52 is
/// added), without the checks a saturating `as` conversion costs.
#[inline(always)]
fn f64_index(x: f64) -> u64 {
    (x + TWO_POW_52).to_bits() & ((1 << 52) - 1)
}

/// The generator's state after `state`, and the factor of the gap drawn from it:
/// `1/sqrt(u) - 1`, as [`super::next_index`] computes it.
#[inline(always)]
fn draw(state: u64) -> (u64, f64) {
    let state = mix64(state.wrapping_add(0x9e37_79b9_7f4a_7c15));
    let u = ((state >> 11) + 1) as i64 as f64 * (1.0 / (1u64 << 53) as f64);
    (state, 1.0 / u.sqrt() - 1.0)
}

/// The index after `next` for a gap factor `r` from [`draw`], with the index kept in
/// an `f64` (an integer below 2^52, so exact): the ceiling is taken in floating point,
/// `(x + 2^52) - 2^52` being `x` rounded to an integer, one more when that fell below
/// `x`. The floating-point operations are exactly those of [`super::next_index`], so the
/// indices are the same.
#[inline(always)]
fn next_fast(next: f64, r: f64) -> f64 {
    let x = (next + 1.5) * r;
    let t = (x + TWO_POW_52) - TWO_POW_52;
    let ceil = if t < x { t + 1.0 } else { t };
    next + if ceil < 1.0 { 1.0 } else { ceil }
}

/// Symbols `start..start + count` (`start + count` at most [`FAST_END`]), the
/// mappings moved past them. Four mappings in step: each one's next index waits on its
/// last step's floating-point latency, so one mapping at a time is latency-bound; four
/// chains overlap (two and eight measured slower). Two things shorten each step's
/// chain: the index stays in an `f64` between steps (no conversions, no saturating
/// checks), and the generator runs one draw ahead, so its multiplications, square
/// root and division for the next step overlap this step's index arithmetic instead of
/// preceding it. At a million ids and 1,500 symbols: 134 ms of CPU instead of 191 (one
/// draw more per mapping and window, the one past its last symbol, is the price).
pub(super) fn window_fast(mappings: &mut [Mapping], start: u64, count: usize) -> Vec<CodedSymbol> {
    let end = start + count as u64;
    debug_assert!(end <= FAST_END);
    let endf = end as f64;
    let mut out = vec![CodedSymbol::default(); count];
    let mut lanes = mappings.chunks_exact_mut(4);
    for lane in &mut lanes {
        // Per lane: the next index (at or past `end`, saturated ones too, it only
        // compares), and the draw for the step from it.
        let mut next = [0.0f64; 4];
        let mut state = [0u64; 4];
        let mut r = [0.0f64; 4];
        for l in 0..4 {
            next[l] = lane[l].next.min(FAST_END) as f64;
            (state[l], r[l]) = draw(lane[l].state);
        }
        loop {
            let mut live = false;
            for l in 0..4 {
                if next[l] < endf {
                    let m = &mut lane[l];
                    let s = &mut out[(f64_index(next[l]) - start) as usize];
                    s.sum ^= m.short;
                    s.check ^= m.check;
                    s.count += 1;
                    next[l] = next_fast(next[l], r[l]);
                    m.state = state[l];
                    (state[l], r[l]) = draw(state[l]);
                    live = true;
                }
            }
            if !live {
                break;
            }
        }
        for l in 0..4 {
            if lane[l].next < end {
                lane[l].next = f64_index(next[l]);
            }
        }
    }
    for m in lanes.into_remainder() {
        while m.next < end {
            out[(m.next - start) as usize].apply(m, 1);
            m.advance();
        }
    }
    out
}

/// Symbols `start..start + count` one index step at a time ([`Mapping::advance`]), for
/// windows past [`FAST_END`].
pub(super) fn window_scalar(
    mappings: &mut [Mapping],
    start: u64,
    count: usize,
) -> Vec<CodedSymbol> {
    let end = start + count as u64;
    let mut out = vec![CodedSymbol::default(); count];
    // Four mappings in step, as in `window_fast`.
    let mut lanes = mappings.chunks_exact_mut(4);
    for lane in &mut lanes {
        loop {
            let mut live = false;
            for m in lane.iter_mut() {
                if m.next < end {
                    out[(m.next - start) as usize].apply(m, 1);
                    m.advance();
                    live = true;
                }
            }
            if !live {
                break;
            }
        }
    }
    for m in lanes.into_remainder() {
        while m.next < end {
            out[(m.next - start) as usize].apply(m, 1);
            m.advance();
        }
    }
    out
}

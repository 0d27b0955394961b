//! How long to wait before trying a failing neighbour again. Pure: the randomness for
//! the jitter is passed in.

use std::time::Duration;

/// `failures` in a row (at least 1) give a wait that doubles from `base` up to `cap`:
/// the first retry comes after about `base`, not after a multiple of it.
pub fn exponential(failures: u32, base: Duration, cap: Duration) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    base.saturating_mul(1 << doublings).min(cap.max(base))
}

/// [`exponential`], spread over its upper half by `jitter` in `[0, 1]`, so that nodes
/// started together, or cut off together, do not all try again at the same instant.
pub fn jittered(failures: u32, base: Duration, cap: Duration, jitter: f64) -> Duration {
    let full = exponential(failures, base, cap);
    full / 2 + full.mul_f64(jitter.clamp(0.0, 1.0) / 2.0)
}

/// A uniform draw in `[0, 1]` for [`jittered`]; 0.5 if the OS has no randomness to give.
pub fn random_jitter() -> f64 {
    getrandom::u32().map_or(0.5, |r| f64::from(r) / f64::from(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_first_retry_waits_the_base_and_later_ones_double_up_to_the_cap() {
        let waits: Vec<_> = (1..=7)
            .map(|f| exponential(f, 250 * MS, 4000 * MS))
            .collect();
        assert_eq!(
            waits,
            [250, 500, 1000, 2000, 4000, 4000, 4000].map(|ms| ms * MS)
        );
        assert_eq!(exponential(0, 250 * MS, 4000 * MS), 250 * MS);
        assert_eq!(exponential(u32::MAX, 250 * MS, 4000 * MS), 4000 * MS);
    }

    #[test]
    fn jitter_spreads_each_wait_over_its_upper_half() {
        for failures in 1..10 {
            let full = exponential(failures, 100 * MS, 10_000 * MS);
            assert_eq!(jittered(failures, 100 * MS, 10_000 * MS, 0.0), full / 2);
            assert_eq!(jittered(failures, 100 * MS, 10_000 * MS, 1.0), full);
            let drawn = jittered(failures, 100 * MS, 10_000 * MS, random_jitter());
            assert!(drawn >= full / 2 && drawn <= full, "{drawn:?} of {full:?}");
        }
    }

    #[test]
    fn each_jittered_wait_is_at_least_the_longest_one_before_it() {
        // Upper half of a doubling: below the cap, the lowest draw of failure n+1 is the
        // highest of failure n, so waits never shrink while a neighbour keeps failing.
        for failures in 1..9 {
            let high = jittered(failures, 100 * MS, 60_000 * MS, 1.0);
            let next_low = jittered(failures + 1, 100 * MS, 60_000 * MS, 0.0);
            assert_eq!(next_low, high);
        }
    }
}

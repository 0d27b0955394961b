//! How many symbols the asker asks for next. Pure, so the policy is measured over many
//! salts with the real encoder and decoder (`tests.rs`): the sketch is probabilistic,
//! and a policy that looks right on one salt can pay a third more on the next.
//!
//! What one run costs is fixed by how many symbols it asks for and in how many pages
//! (each page costs a request and a header). A page sized with a wide margin decodes in
//! one more round trip nearly always, but pays the margin every time; a page sized at
//! the typical need decodes most of the time and leaves one more, small page for the
//! rest. Measured with the test's harness (`the_walk_meets_the_byte_and_round_trip_
//! targets_for_nearly_every_salt`, 1,000 salts per case, the symbol sizes of n = 1M),
//! the share of runs within issue 12's targets (d = 10: 80 B per difference and 3
//! round trips; d = 1000: 40 B and 3): one side only, d = 10 99.0 %, d = 1000 100 %;
//! both sides missing half, d = 10 98.1 %, d = 1000 99.8 %. The policy before
//! (the buckets' estimate with a 1.8x margin in one page, and 17 first symbols for
//! d = 10 on one side) did so in about 76 % and 85 % of runs for both sides, and in
//! about half for d = 10 on one side.

/// Symbols the hello answer carries when both counts are equal (both sides gained as
/// many, so the net difference says nothing), beside the bucket estimator: a small
/// difference then decodes in the first round trip (d = 10 in about half the runs,
/// d = 4 nearly always), and a large one has lost nothing, as a sketch is rateless.
pub const EQUAL_COUNTS_FIRST: usize = 20;

/// Symbols to have in all for a difference estimated from the 64 buckets: the typical
/// need (1.37 per difference when it is large) and a margin for the estimate, whose
/// error grows to about a fifth past 64; short by a little, the next page is small.
fn for_bucket_estimate(d: f64) -> u64 {
    (1.37 * d + 1.6 * d.sqrt() + 8.0).ceil() as u64
}

/// Symbols to have in all for a difference estimated from symbols that did not decode
/// (averaged with the buckets' estimate when there is one: their errors are
/// independent): by then a page fell short, so this one should be the last, with a wide
/// margin.
fn for_residual_estimate(d: f64) -> u64 {
    (1.75 * d + 2.5 * d.sqrt() + 6.0).ceil() as u64
}

/// Estimates the difference's size from symbols that did not decode. For symbol `i` of
/// the subtracted sketch, the count is (their extra ids mapped to it) minus (ours), so
/// its square is about `d * p_i * (1 - p_i)` plus the net difference's share squared,
/// with `p_i = 1 / (1 + i/2)` (symbol 0 carries no information on `d`).
pub(super) fn estimate(counts: &[i64], net: i64) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for (i, &c) in counts.iter().enumerate().skip(1) {
        let p = 1.0 / (1.0 + i as f64 / 2.0);
        num += (c as f64).powi(2) - (net as f64 * p).powi(2);
        den += p * (1.0 - p);
    }
    // The net difference is a lower bound, and the better figure when one side only
    // gained (the squares are then dominated by its share).
    let spread = if den == 0.0 {
        0.0
    } else {
        (num / den).max(0.0)
    };
    spread.max(net.unsigned_abs() as f64)
}

/// The bucket estimate's weight when the first page is sized after the hello's few
/// symbols, the rest going to the estimate from those symbols (at d = 1000 with both
/// sides missing half, 99.8 % of runs within the targets against 99.1 % with the
/// buckets alone; d = 10 98.1 % against 98.4 %).
const BUCKET_WEIGHT: f64 = 0.7;

/// The asker's page sizes through one reconciliation.
#[derive(Clone, Debug)]
pub struct Pager {
    /// The difference the buckets estimated.
    bucket_estimate: Option<f64>,
    /// Whether a page was sized by it yet.
    sized_by_buckets: bool,
}

/// Symbols of the first page when the first answer brought none and no estimator
/// (v1's state answer): enough for the net difference, all of it when one side only
/// gained.
const FIRST_PAGE: u64 = 8;

impl Pager {
    pub fn new(bucket_estimate: Option<f64>) -> Pager {
        Pager {
            bucket_estimate,
            sized_by_buckets: false,
        }
    }

    /// The bucket estimate, the first time a page is sized.
    fn fresh_bucket_estimate(&mut self) -> Option<f64> {
        if self.sized_by_buckets {
            return None;
        }
        self.sized_by_buckets = true;
        self.bucket_estimate
    }

    /// Symbols to ask for first, when the first answer brought none.
    pub fn first(&mut self, net: i64) -> u64 {
        match self.fresh_bucket_estimate() {
            Some(d) => for_bucket_estimate(d),
            None => FIRST_PAGE + net.unsigned_abs() * 3 / 2,
        }
    }

    /// Symbols to ask for after `got` did not decode (`decoded` short ids peeled out
    /// of them, `residual` their counts after peeling): sized by the buckets if no page
    /// was yet, else by what did not decode; at least a quarter more than came so far.
    pub fn next(&mut self, got: u64, decoded: usize, residual: &[i64]) -> u64 {
        let net = residual.first().copied().unwrap_or(0);
        let from_residual = decoded as f64 + estimate(residual, net);
        let total = match (self.fresh_bucket_estimate(), self.bucket_estimate) {
            // The hello's symbols did not decode: what they left says something too.
            (Some(b), _) => {
                for_bucket_estimate(BUCKET_WEIGHT * b + (1.0 - BUCKET_WEIGHT) * from_residual)
            }
            // Two estimates with independent errors: their mean errs less.
            (None, Some(b)) => for_residual_estimate((b + from_residual) / 2.0),
            (None, None) => for_residual_estimate(from_residual),
        };
        total.max(got + got / 4 + 4) - got
    }
}

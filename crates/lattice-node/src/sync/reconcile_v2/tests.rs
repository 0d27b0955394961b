use super::pages::estimate;
use super::*;
use crate::ledger::LedgerId;
use crate::sync::riblt::{CodedSymbol, Encoder};

#[test]
fn requests_round_trip_through_their_binary_encoding() {
    let sketch = SketchRequest {
        salt: Salt([3; 16]),
        start: 1 << 40,
        count: 77,
    };
    assert_eq!(sketch.encode().len(), SketchRequest::LEN);
    assert_eq!(SketchRequest::decode(&sketch.encode()), Ok(sketch));
    let fetch = ShortFetchRequest {
        salt: Salt([4; 16]),
        shorts: vec![1, u64::MAX, 42],
    };
    assert_eq!(fetch.encode().len(), 17 + 3 * 8);
    assert_eq!(ShortFetchRequest::decode(&fetch.encode()), Ok(fetch));
    assert_eq!(SketchRequest::decode(&[]), Err(WireError::Version(0)));
    assert_eq!(
        ShortFetchRequest::decode(&[WIRE_VERSION; 20]).map_err(|e| e.to_string()),
        Err("a short-id fetch message of 20 bytes; expected 17 + 8 per short id".into())
    );
}

/// The subtracted sketch of a known difference, through the real encoder.
fn residual(d_remote: usize, d_local: usize, m: usize) -> Vec<i64> {
    let salt = Salt([8; 16]);
    let mut rng = fastrand::Rng::with_seed(d_remote as u64 * 31 + d_local as u64);
    let mut remote = Encoder::from_shorts(&salt, (0..d_remote).map(|_| rng.u64(..)));
    let mut local = Encoder::from_shorts(&salt, (0..d_local).map(|_| rng.u64(..)));
    let r: Vec<CodedSymbol> = remote.window(m);
    let l: Vec<CodedSymbol> = local.window(m);
    r.iter().zip(&l).map(|(a, b)| a.count - b.count).collect()
}

#[test]
fn the_estimate_from_one_page_is_within_a_factor_of_the_difference() {
    for (a, b) in [(500, 500), (1000, 0), (3000, 2000)] {
        let counts = residual(a, b, 64);
        let d = (a + b) as f64;
        let e = estimate(&counts, counts[0]);
        assert!(e > d / 3.0 && e < d * 3.0, "d = {d}: estimated {e}");
    }
    assert_eq!(estimate(&[0; 8], 0), 0.0);
}

#[test]
fn the_default_cap_stops_where_listing_ids_would_be_cheaper() {
    assert_eq!(default_cap(10, 10), 64);
    assert_eq!(default_cap(1_000_000, 10), 1_000_000 * 32 / 19 / 2);
    assert_eq!(default_cap(usize::MAX / 64, 0), MAX_SYMBOLS);
}

#[test]
fn hello_messages_round_trip_and_an_equal_check_costs_at_most_64_bytes() {
    let req = HelloRequest {
        ledger: [5; 8],
        root: [6; 32],
        count: 1_000_000,
        salt: Salt([7; 16]),
    };
    let equal = HelloAnswer::Equal.encode();
    assert!(
        req.encode().len() + equal.len() <= 64,
        "{}",
        req.encode().len()
    );
    assert_eq!(HelloRequest::decode(&req.encode()), Ok(req.clone()));
    for answer in [
        HelloAnswer::Equal,
        HelloAnswer::OtherLedger(LedgerId([9; 32])),
        HelloAnswer::Differ {
            root: [1; 32],
            count: 12,
            symbols: vec![
                CodedSymbol {
                    sum: 3,
                    check: 4,
                    count: -70,
                };
                3
            ],
            buckets: None,
        },
        HelloAnswer::Differ {
            root: [1; 32],
            count: 1 << 40,
            symbols: vec![],
            buckets: Some([200; BUCKETS]),
        },
    ] {
        assert_eq!(HelloAnswer::decode(&answer.encode()), Ok(answer));
    }
    let mut long = req.encode();
    long.push(0);
    assert!(HelloRequest::decode(&long).is_err());
    assert!(HelloRequest::decode(&req.encode()[..40]).is_err());
    assert_eq!(HelloAnswer::decode(&[1, 0]), Err(WireError::Version(1)));
    assert!(HelloAnswer::decode(&[WIRE_VERSION, 9]).is_err());
}

#[test]
fn the_first_page_carries_the_net_difference_or_else_a_few_symbols_and_the_estimator() {
    assert_eq!(first_page(0, 10, 64), (0, false));
    assert_eq!(first_page(10, 0, 64), (0, false));
    assert_eq!(first_page(11, 10, 64), (4, false));
    assert_eq!(first_page(10, 10, 64), (EQUAL_COUNTS_FIRST, true));
    assert_eq!(first_page(1010, 10, 64), (0, false), "past the cap: ids");
    assert_eq!(
        first_page(100_000, 50_000, MAX_SYMBOLS),
        (MAX_HELLO_SYMBOLS, false)
    );
}

#[test]
fn the_bucket_estimate_is_close_for_small_and_large_differences() {
    let mut rng = fastrand::Rng::with_seed(11);
    for (a, b) in [(5usize, 5usize), (500, 500), (50, 50), (1000, 1000)] {
        let common: Vec<u64> = (0..20_000).map(|_| rng.u64(..)).collect();
        let theirs: Vec<u64> = common
            .iter()
            .copied()
            .chain((0..a).map(|_| rng.u64(..)))
            .collect();
        let ours: Vec<u64> = common
            .iter()
            .copied()
            .chain((0..b).map(|_| rng.u64(..)))
            .collect();
        let d = (a + b) as f64;
        let e = estimate_from_buckets(
            &buckets(theirs.iter().copied()),
            &buckets(ours.iter().copied()),
            a as i64 - b as i64,
        );
        assert!(e > d * 0.6 && e < d * 1.4, "d = {d}: estimated {e}");
    }
}

#[test]
fn selecting_by_short_id_finds_exactly_the_wanted_ids_and_names_a_missing_one() {
    let ours: Vec<EntryId> = (0..1000u32)
        .map(|i| {
            let mut b = [0u8; 32];
            b[..4].copy_from_slice(&i.to_le_bytes());
            EntryId(b)
        })
        .collect();
    // Short ids sharing their top 16 bits in pairs, so the bitmap lets some through that
    // only the search turns away.
    let shorts: Vec<u64> = (0..1000u64).map(|i| ((i / 2) << 48) | i).collect();
    let wanted = [shorts[10], shorts[999], shorts[10], shorts[500]];
    let (got, all) = select_by_short(&ours, shorts.iter().copied(), &wanted);
    assert!(all);
    assert_eq!(
        got,
        [ours[10], ours[999], ours[500]]
            .into_iter()
            .collect::<BTreeSet<_>>()
    );
    let (got, all) = select_by_short(&ours, shorts.iter().copied(), &[shorts[3], 11 << 48]);
    assert!(!all, "a wanted short id we do not hold");
    assert_eq!(got, [ours[3]].into_iter().collect::<BTreeSet<_>>());
    let (got, all) = select_by_short(&ours, shorts.iter().copied(), &[]);
    assert!(all && got.is_empty());
}

/// Walk bytes and round trips of one v2 reconciliation in which the answering side has
/// `theirs` beyond the common ids and the asker `ours`, under `salt`, through the real
/// first answer, encoder, decoder, page sizes and message encodings. Symbol counts are
/// set to what the answering side's would be at n = 1M (they only change the varints'
/// lengths), since the common ids cancel.
fn walk_at_1m(salt: Salt, theirs: &[u64], ours: &[u64]) -> (usize, u32) {
    const N: f64 = 1_000_000.0;
    let as_at_1m = |start: u64, symbols: &[CodedSymbol]| -> Vec<CodedSymbol> {
        (start..)
            .zip(symbols)
            .map(|(i, s)| CodedSymbol {
                count: (N / (1.0 + i as f64 / 2.0)) as i64,
                ..*s
            })
            .collect()
    };
    let mut enc = Encoder::from_shorts(&salt, theirs.iter().copied());
    let mut dec = Decoder::new(&salt, ours.iter().copied());
    let (answering, asking) = (N as u64 + theirs.len() as u64, N as u64 + ours.len() as u64);
    let hello = HelloRequest {
        ledger: [1; 8],
        root: [2; 32],
        count: asking,
        salt,
    };
    let (k, estimated) = first_page(answering, asking, MAX_SYMBOLS);
    let first = enc.window(k);
    let their_buckets = buckets(theirs.iter().copied());
    let answer = HelloAnswer::Differ {
        root: [3; 32],
        count: answering,
        symbols: as_at_1m(0, &first),
        buckets: estimated.then_some(their_buckets),
    };
    let mut bytes = hello.encode().len() + answer.encode().len();
    let mut round_trips = 1;
    let net = answering as i64 - asking as i64;
    let mut pager = Pager::new(
        estimated
            .then(|| estimate_from_buckets(&their_buckets, &buckets(ours.iter().copied()), net)),
    );
    let mut want = if first.is_empty() {
        pager.first(net)
    } else {
        0
    };
    if !first.is_empty() {
        dec.add(&first);
    }
    while dec.difference().is_none() {
        assert!(
            !dec.is_malformed() && round_trips < 10,
            "the sketch did not decode"
        );
        let at = dec.received() as u64;
        if at > 0 {
            want = pager.next(at, dec.decoded(), &dec.residual_counts());
        }
        let page = enc.window(want as usize);
        bytes += SketchRequest::LEN + encode_page(at, &as_at_1m(at, &page)).len();
        round_trips += 1;
        dec.add(&page);
    }
    let diff = dec.difference().expect("decoded");
    let mut found = diff.remote_only;
    found.sort();
    let mut expected = theirs.to_vec();
    expected.sort();
    assert_eq!(
        found, expected,
        "the sketch found exactly their extra short ids"
    );
    (bytes, round_trips)
}

/// Issue 12's targets at n = 1M (d = 1: 200 B and 2 round trips; d = 10: 80 B per
/// difference and 3; d = 1000: 40 B and 3), on one side only (the hello's first symbols
/// are sized by the net difference) and on both (equal counts: the hello's few symbols,
/// then a page sized by the buckets), over many salts: the bench shows a few salts per
/// case, this the distribution. Deterministic: the salts come from a seeded generator.
#[test]
fn the_walk_meets_the_byte_and_round_trip_targets_for_nearly_every_salt() {
    let mut rng = fastrand::Rng::with_seed(12);
    let cases = [
        // (theirs, ours, runs, bytes per difference, round trips, share of runs)
        (1usize, 0usize, 300usize, 200usize, 2u32, 1.0),
        (10, 0, 1000, 80, 3, 0.98),
        (5, 5, 1000, 80, 3, 0.97),
        (1000, 0, 100, 40, 3, 0.99),
        (500, 500, 1000, 40, 3, 0.99),
    ];
    for (a, b, runs, per_diff, max_rt, share) in cases {
        let mut met = 0;
        let mut worst_rt = 0;
        for _ in 0..runs {
            let salt = Salt(rng.u128(..).to_le_bytes());
            let theirs: Vec<u64> = (0..a).map(|_| rng.u64(..)).collect();
            let ours: Vec<u64> = (0..b).map(|_| rng.u64(..)).collect();
            let (bytes, rt) = walk_at_1m(salt, &theirs, &ours);
            worst_rt = worst_rt.max(rt);
            if bytes <= per_diff * (a + b) && rt <= max_rt {
                met += 1;
            }
        }
        let d = a + b;
        assert!(
            met as f64 >= share * runs as f64,
            "d = {d} ({a} and {b}): {met} of {runs} salts within {per_diff} B per difference and {max_rt} round trips"
        );
        assert!(worst_rt <= 5, "d = {d}: a run took {worst_rt} round trips");
    }
}

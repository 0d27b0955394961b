use super::*;
use crate::sync::riblt::CodedSymbol;

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

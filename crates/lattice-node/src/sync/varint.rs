//! Unsigned LEB128 varints, as both binary sync encodings write them (the v2 hello and
//! sketch messages over HTTP, the binary P2P sync protocol): seven bits a byte, low
//! first, the high bit set on every byte but the last.

/// Why a varint could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VarintError {
    /// The bytes ended inside it.
    Truncated,
    /// Longer than a u64 can hold.
    TooLong,
}

pub fn put(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// Reads one varint from the front of `rest`, which then holds what follows it.
pub fn take(rest: &mut &[u8]) -> Result<u64, VarintError> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&b, tail) = rest.split_first().ok_or(VarintError::Truncated)?;
        *rest = tail;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(VarintError::TooLong)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_in_as_few_bytes_as_they_need() {
        for (v, len) in [
            (0, 1),
            (127, 1),
            (128, 2),
            (300, 2),
            (u32::MAX as u64, 5),
            (u64::MAX, 10),
        ] {
            let mut out = Vec::new();
            put(&mut out, v);
            assert_eq!(out.len(), len, "{v}");
            out.push(0xAA);
            let mut rest = out.as_slice();
            assert_eq!(take(&mut rest), Ok(v));
            assert_eq!(rest, [0xAA], "what follows is left");
        }
    }

    #[test]
    fn truncated_and_overlong_varints_are_named() {
        assert_eq!(take(&mut [].as_slice()), Err(VarintError::Truncated));
        assert_eq!(
            take(&mut [0x80, 0x80].as_slice()),
            Err(VarintError::Truncated)
        );
        assert_eq!(take(&mut [0xFF; 11].as_slice()), Err(VarintError::TooLong));
    }
}

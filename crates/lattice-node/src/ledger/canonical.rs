//! Canonical JSON text for payloads.
//!
//! A payload is signed as bytes, so every node must turn the same JSON value into the
//! same bytes. We do not rely on `serde_json`'s map ordering (a dependency elsewhere in
//! the tree may switch on `preserve_order`, which would make the order follow the input):
//! object keys are sorted here, explicitly, by their UTF-8 bytes. Strings use
//! `serde_json`'s escaping and numbers its shortest round-trip form, both deterministic.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why a payload's JSON text cannot be signed as it stands: its canonical form would mean
/// something else than the text (a key given twice keeps only one value; a number a
/// 64-bit integer or a double cannot hold is rounded), so it is refused instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("not valid JSON: {0}")]
    NotJson(String),
    #[error("object key {0:?} appears more than once; a payload may give each key once")]
    DuplicateKey(String),
    #[error(
        "number {0} cannot be kept exactly (integers must fit in 64 bits, decimals in a double, about 15-17 significant digits); send it as a string"
    )]
    InexactNumber(String),
}

/// Parses payload text for signing, refusing what canonicalisation would change silently:
/// duplicate object keys and numbers whose value the canonical form cannot keep.
pub fn parse_payload(text: &str) -> Result<Value, PayloadError> {
    check_numbers(text)?;
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = StrictValue::deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    match parsed {
        Ok(StrictValue(v)) => Ok(v),
        Err(e) => {
            let message = e.to_string();
            match message
                .strip_prefix(DUPLICATE_MARK)
                .and_then(|rest| rest.split(DUPLICATE_END).next())
            {
                Some(key) => Err(PayloadError::DuplicateKey(key.to_string())),
                None => Err(PayloadError::NotJson(message)),
            }
        }
    }
}

const DUPLICATE_MARK: &str = "duplicate key \u{1}";
const DUPLICATE_END: char = '\u{1}';

/// A JSON value that refuses duplicate object keys while it is built.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Value, E> {
        Number::from_f64(n)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number that is not finite"))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "{DUPLICATE_MARK}{key}{DUPLICATE_END}"
                )));
            }
            let StrictValue(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// Finds every number literal outside strings and checks that the canonical form keeps
/// its value: integers within i64/u64, other numbers equal to their double's shortest
/// decimal form (serde_json writes that form, so this is exactly "kept").
fn check_numbers(text: &str) -> Result<(), PayloadError> {
    let bytes = text.as_bytes();
    let (mut i, mut in_string) = (0, false);
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        if b == b'-' || b.is_ascii_digit() {
            let start = i;
            while i < bytes.len()
                && matches!(bytes[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
            {
                i += 1;
            }
            check_number(&text[start..i])?;
            continue;
        }
        i += 1;
    }
    Ok(())
}

fn check_number(token: &str) -> Result<(), PayloadError> {
    let inexact = || PayloadError::InexactNumber(token.chars().take(40).collect());
    if !token.contains(['.', 'e', 'E']) {
        // Malformed tokens are left to the parser, which names them better.
        let fits = token.parse::<i64>().is_ok() || token.parse::<u64>().is_ok();
        let digits_only = token
            .trim_start_matches('-')
            .bytes()
            .all(|b| b.is_ascii_digit());
        return if fits || !digits_only {
            Ok(())
        } else {
            Err(inexact())
        };
    }
    let Ok(double) = token.parse::<f64>() else {
        return Ok(());
    };
    if !double.is_finite() {
        return Ok(()); // the parser refuses it ("number out of range")
    }
    let written = serde_json::to_string(&double).unwrap_or_default();
    match (decimal_value(token), decimal_value(&written)) {
        (Some(given), Some(kept)) if given == kept => Ok(()),
        (Some(_), Some(_)) => Err(inexact()),
        _ => Ok(()),
    }
}

/// A decimal literal's exact value as (negative, significant digits, exponent) with no
/// leading or trailing zeros in the digits, so equal values compare equal. Zero is
/// `(false, "", 0)` whatever its sign.
fn decimal_value(token: &str) -> Option<(bool, String, i64)> {
    let (negative, rest) = match token.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, token),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], rest[at + 1..].parse::<i64>().ok()?),
        None => (rest, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if !(int_part.bytes().chain(frac_part.bytes())).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = format!("{int_part}{frac_part}");
    let lead = digits.len() - digits.trim_start_matches('0').len();
    let significant = digits.trim_start_matches('0').trim_end_matches('0');
    if significant.is_empty() {
        return Some((false, String::new(), 0));
    }
    // value = 0.<significant> x 10^(int_len - lead + exponent)
    let point = int_part.len() as i64 - lead as i64 + exponent;
    Some((negative, significant.to_string(), point))
}

/// Writes `value` as compact JSON with object keys sorted by their bytes.
pub fn to_canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, &mut out);
    out
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_value(&map[key], out);
            }
            out.push('}');
        }
    }
}

fn write_string(s: &str, out: &mut String) {
    // Serializing a &str cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn duplicate_keys_are_refused_at_any_depth_naming_the_key() {
        assert_eq!(
            parse_payload(r#"{"a":1,"a":2}"#),
            Err(PayloadError::DuplicateKey("a".into()))
        );
        assert_eq!(
            parse_payload(r#"{"x":[{"b":1,"c":2,"b":3}]}"#),
            Err(PayloadError::DuplicateKey("b".into()))
        );
        assert!(
            parse_payload(r#"{"a":{"a":1}}"#).is_ok(),
            "same key at two depths is fine"
        );
    }

    #[test]
    fn numbers_the_canonical_form_would_change_are_refused() {
        for bad in [
            "123456789012345678901234567890",
            "-9223372036854775809",
            "18446744073709551616",
            "1.2345678901234567890",
            "9007199254740993.0",
            r#"{"amount": 0.30000000000000000001}"#,
        ] {
            assert!(
                matches!(parse_payload(bad), Err(PayloadError::InexactNumber(_))),
                "{bad} must be refused"
            );
        }
    }

    #[test]
    fn numbers_the_canonical_form_keeps_are_accepted() {
        for good in [
            "0",
            "-0",
            "18446744073709551615",
            "-9223372036854775808",
            "0.1",
            "1.5e3",
            "1E-7",
            "123.4500",
            "-0.0",
            "2.5e-308",
            "0.1234",
        ] {
            let v = parse_payload(good).unwrap_or_else(|e| panic!("{good}: {e}"));
            let canonical = to_canonical_json(&v);
            let again: Value = serde_json::from_str(&canonical).unwrap();
            assert_eq!(again, v, "{good} keeps its value through {canonical}");
        }
    }

    #[test]
    fn digits_inside_strings_are_not_numbers() {
        assert!(
            parse_payload(r#"{"id":"123456789012345678901234567890\"9999999999999999999999"}"#)
                .is_ok()
        );
    }

    #[test]
    fn malformed_text_is_not_json() {
        assert!(matches!(
            parse_payload("{\"a\":"),
            Err(PayloadError::NotJson(_))
        ));
        assert!(matches!(
            parse_payload("1e400"),
            Err(PayloadError::NotJson(_))
        ));
        assert!(matches!(
            parse_payload("{} x"),
            Err(PayloadError::NotJson(_))
        ));
    }

    #[test]
    fn object_keys_are_sorted_at_every_depth() {
        let v: Value = serde_json::from_str(r#"{"b":1,"a":{"z":[3,{"y":1,"x":2}],"c":null}}"#)
            .expect("valid json");
        assert_eq!(
            to_canonical_json(&v),
            r#"{"a":{"c":null,"z":[3,{"x":2,"y":1}]},"b":1}"#
        );
    }

    #[test]
    fn canonical_form_is_a_fixed_point() {
        let v = json!({"s": "é\"\n\u{1}", "f": 0.1, "n": -7, "big": 18446744073709551615u64, "t": true});
        let once = to_canonical_json(&v);
        let reparsed: Value = serde_json::from_str(&once).expect("canonical json parses");
        assert_eq!(to_canonical_json(&reparsed), once);
    }
}

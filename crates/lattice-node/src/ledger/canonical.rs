//! Canonical JSON text for payloads.
//!
//! A payload is signed as bytes, so every node must turn the same JSON value into the
//! same bytes. We do not rely on `serde_json`'s map ordering (a dependency elsewhere in
//! the tree may switch on `preserve_order`, which would make the order follow the input):
//! object keys are sorted here, explicitly, by their UTF-8 bytes. Strings use
//! `serde_json`'s escaping and numbers its shortest round-trip form, both deterministic.

use serde_json::Value;

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

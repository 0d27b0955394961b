//! The dashboard's TypeScript types against what the node sends.
//!
//! `ui/src/backend/types.ts` is written by hand. This test writes the messages the node
//! really serializes (a status with every optional field set, a sparse one, one event of
//! each kind) into `ui/src/backend/wire.generated.ts`, as typed TypeScript values:
//! `tsc` (the dashboard's build, in the test command) then refuses a field the node
//! sends that the types do not declare, a field they require that it does not send, and
//! a string outside a declared union. Here, the file must be exactly what the Rust types
//! produce now: after a change to them, `LATTICE_WRITE_FIXTURES=1 cargo test -p
//! lattice-node --test wire_types` writes it again, and the build says what the
//! TypeScript side must follow.

#![recursion_limit = "256"]

use lattice_node::status::{NodeEvent, Status};
use serde_json::Value;

const HASH_A: &str = "82bb249599f23c2f0487e281c38fbc56b8f44fa6a738d527a2957257d0a1d6fc";
const HASH_B: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const PEER: &str = "12D3KooWQWbkm5Q2VjSksGpoM1QyQQdAV7bQyZzxwqxS682cVTFx";

fn report() -> Value {
    serde_json::json!({
        "their_root": HASH_A, "our_root": HASH_B, "in_sync_before": false,
        "pulled": 3, "pushed": 1, "rounds": 2, "requests": 4,
        "bytes_sent": 310, "bytes_received": 1800, "refused": 0,
        "method": "sketch", "symbols": 8
    })
}

/// A status with every optional field set and every list holding something.
fn full() -> Value {
    serde_json::json!({
        "peer_count": 1, "has_peers": true, "http_sync_enabled": true, "sync_mode": "HTTP",
        "heartbeat_active": true, "mode": "auto",
        "peerless_since_ms": 1_796_165_889_964u64,
        "fallback_deadline_ms": 1_796_165_949_964u64,
        "fallback_active_since_ms": 1_796_165_949_970u64,
        "fallback_after_ms": 60000, "heartbeat_ms": 5000, "http_poll_ms": 10000,
        "last_transition": {
            "at_ms": 1_796_165_949_970u64, "from": "P2P", "to": "HTTP",
            "reason": "no live sync peer for 60 s"
        },
        "merkle_root": HASH_A, "entry_count": 12,
        "node": {
            "peer_id": PEER, "name": "Branch A", "version": "0.1.0",
            "http_listen": "127.0.0.1:8000", "started_at_ms": 1_796_165_889_776u64
        },
        "ledger": {
            "id": HASH_B, "name": "payments", "open": false, "authors": 3,
            "can_write": true, "refused": 2
        },
        "neighbors": [{
            "url": "http://10.0.0.2:8000/", "peer_id": PEER, "name": "Branch B",
            "health": "healthy", "last_sync_ms": 1_796_165_950_000u64,
            "last_error": "could not connect to neighbour", "last_error_kind": "connect",
            "consecutive_failures": 0, "next_attempt_ms": 1_796_165_960_000u64,
            "root": HASH_A, "root_matches": true,
            "checked_at_ms": 1_796_165_950_000u64, "events_connected": true,
            "events_next_attempt_ms": 1_796_165_951_000u64,
            "last_report": report(), "ledger": HASH_B, "rate_dropped": 4
        }],
        "last_sync": {
            "lung": "HTTP", "with": "http://10.0.0.2:8000/",
            "at_ms": 1_796_165_950_000u64, "pulled": 3, "pushed": 1, "bytes": 2110
        },
        "peers": [{
            "peer_id": PEER, "address": "/ip4/10.0.0.3/tcp/7600", "transport": "quic",
            "path": "direct", "rtt_ms": 1.5, "connected_since_ms": 1_796_165_900_000u64,
            "in_mesh": true, "sync_capable": false, "last_heard_ms": 1_796_165_949_000u64,
            "other_ledger": HASH_A, "admitted": true, "rate_dropped": 1,
            "root": HASH_B, "root_matches": false, "last_sync_ms": 1_796_165_940_000u64
        }],
        "p2p_blocked": true,
        "p2p_listen": [format!("/ip4/127.0.0.1/tcp/7600/p2p/{PEER}")],
        "reachability": "private",
        "store_failure": "disk full",
        "now_ms": 1_796_165_950_100u64,
        "p2p_state": "cut", "p2p_reason": "P2P cut by the operator",
        "http_state": "carrying", "http_reason": "1 of 1 neighbour healthy",
        "sync_state": "http", "sync_reason": "HTTP carries sync",
        "fallback_phase": "active",
        "entries_by_lung": {"p2p": {"received": 5, "sent": 2}, "http": {"received": 3, "sent": 1}},
        "seq": 42,
        "transitions": [
            {"at_ms": 1, "kind": "lung", "from": "P2P", "to": "HTTP", "reason": "fallback"},
            {"at_ms": 2, "kind": "countdown_started", "deadline_ms": 60002},
            {"at_ms": 3, "kind": "countdown_reset", "peers": 1},
            {"at_ms": 4, "kind": "operator", "action": "mode_set", "mode": "http", "by": "operator"}
        ]
    })
}

/// A status with every optional field unset and every list empty.
fn sparse() -> Value {
    let mut s = full();
    for key in [
        "peerless_since_ms",
        "fallback_deadline_ms",
        "fallback_active_since_ms",
        "last_transition",
        "last_sync",
        "store_failure",
    ] {
        s[key] = Value::Null;
    }
    for key in ["neighbors", "peers", "p2p_listen", "transitions"] {
        s[key] = serde_json::json!([]);
    }
    s["node"]["name"] = Value::Null;
    s
}

fn events() -> Value {
    let lung = |event: Value| serde_json::json!({"at_ms": 9, "type": "lung", "event": event});
    serde_json::json!([
        lung(serde_json::json!({"kind": "started"})),
        lung(serde_json::json!({"kind": "peers_stable", "peers": 2})),
        lung(serde_json::json!({"kind": "peerless_timer_started", "since_ms": 1, "deadline_ms": 2})),
        lung(serde_json::json!({"kind": "peerless_timer_reset", "peers": 1})),
        lung(serde_json::json!({"kind": "fallback_activated", "after_ms": 60000})),
        lung(serde_json::json!({"kind": "mode_changed", "from": "auto", "to": "http"})),
        lung(serde_json::json!({"kind": "transition", "at_ms": 3, "from": "P2P", "to": "HTTP", "reason": "fallback"})),
        {"at_ms": 10, "type": "entry_added", "id": HASH_A, "author": PEER},
        {"at_ms": 11, "type": "diverged", "neighbor": "http://10.0.0.2:8000/", "ours": HASH_A, "theirs": HASH_B},
        {"at_ms": 12, "type": "sync_completed", "lung": "P2P", "with": PEER, "report": report()},
        {"at_ms": 13, "type": "store_failed", "reason": "disk full"},
        {"at_ms": 14, "type": "sync_failed", "lung": "HTTP", "with": "http://10.0.0.2:8000/", "kind": "timeout", "message": "no answer within 5s"},
        {"at_ms": 15, "type": "hole_punched", "peer": PEER},
        {"at_ms": 16, "type": "operator", "action": "p2p_cut", "mode": null, "by": "operator"}
    ])
}

/// `value` read as `T` and written again: exactly what the node would send. A key the
/// Rust type does not have (serde would ignore it) or lacks fails here.
fn as_sent<T: serde::Serialize + serde::de::DeserializeOwned>(value: &Value, what: &str) -> Value {
    let typed: T = serde_json::from_value(value.clone())
        .unwrap_or_else(|e| panic!("{what} does not read as the Rust type: {e}"));
    let sent = serde_json::to_value(&typed).unwrap();
    assert_eq!(
        &sent, value,
        "{what}: the Rust type sends something else than was given"
    );
    sent
}

fn has_null(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.iter().any(has_null),
        Value::Object(o) => o.values().any(has_null),
        _ => false,
    }
}

fn typescript() -> String {
    let full = as_sent::<Status>(&full(), "the full status");
    assert!(
        !has_null(&full),
        "the full status leaves an optional field unset"
    );
    let sparse = as_sent::<Status>(&sparse(), "the sparse status");
    let events = as_sent::<Vec<NodeEvent>>(&events(), "the events");
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap();
    format!(
        "// Written by crates/lattice-node/tests/wire_types.rs from the node's own types: do not edit.\n\
         // `tsc` checks these against types.ts; after a change to the Rust types run\n\
         // LATTICE_WRITE_FIXTURES=1 cargo test -p lattice-node --test wire_types\n\
         import type {{ NodeEvent, Status }} from './types';\n\n\
         /** A status with every optional field set. */\n\
         export const fullStatus: Status = {};\n\n\
         /** A status with every optional field unset. */\n\
         export const sparseStatus: Status = {};\n\n\
         /** One event of each kind. */\n\
         export const everyEvent: NodeEvent[] = {};\n",
        pretty(&full),
        pretty(&sparse),
        pretty(&events)
    )
}

#[test]
fn the_dashboards_type_fixture_is_what_the_rust_types_send() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../ui/src/backend/wire.generated.ts");
    let want = typescript();
    if std::env::var("LATTICE_WRITE_FIXTURES").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{} is not what the Rust types send now; run \
         LATTICE_WRITE_FIXTURES=1 cargo test -p lattice-node --test wire_types, \
         then `npm --prefix ui run build` says what types.ts must follow",
        path.display()
    );
}

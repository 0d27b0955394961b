// Written by crates/lattice-node/tests/wire_types.rs from the node's own types: do not edit.
// `tsc` checks these against types.ts; after a change to the Rust types run
// LATTICE_WRITE_FIXTURES=1 cargo test -p lattice-node --test wire_types
import type { NodeEvent, Status } from './types';

/** A status with every optional field set. */
export const fullStatus: Status = {
  "entries_by_lung": {
    "http": {
      "received": 3,
      "sent": 1
    },
    "p2p": {
      "received": 5,
      "sent": 2
    }
  },
  "entry_count": 12,
  "fallback_active_since_ms": 1796165949970,
  "fallback_after_ms": 60000,
  "fallback_deadline_ms": 1796165949964,
  "fallback_phase": "active",
  "has_peers": true,
  "heartbeat_active": true,
  "heartbeat_ms": 5000,
  "http_poll_ms": 10000,
  "http_reason": "1 of 1 neighbour healthy",
  "http_state": "carrying",
  "http_sync_enabled": true,
  "last_sync": {
    "at_ms": 1796165950000,
    "bytes": 2110,
    "lung": "HTTP",
    "pulled": 3,
    "pushed": 1,
    "with": "http://10.0.0.2:8000/"
  },
  "last_transition": {
    "at_ms": 1796165949970,
    "from": "P2P",
    "reason": "no live sync peer for 60 s",
    "to": "HTTP"
  },
  "ledger": {
    "authors": 3,
    "can_write": true,
    "id": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "name": "payments",
    "open": false,
    "refused": 2
  },
  "merkle_root": "82bb249599f23c2f0487e281c38fbc56b8f44fa6a738d527a2957257d0a1d6fc",
  "mode": "auto",
  "neighbors": [
    {
      "checked_at_ms": 1796165950000,
      "consecutive_failures": 0,
      "events_connected": true,
      "events_next_attempt_ms": 1796165951000,
      "health": "healthy",
      "last_error": "could not connect to neighbour",
      "last_error_kind": "connect",
      "last_report": {
        "bytes_received": 1800,
        "bytes_sent": 310,
        "in_sync_before": false,
        "method": "sketch",
        "our_root": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "pulled": 3,
        "pushed": 1,
        "refused": 0,
        "requests": 4,
        "rounds": 2,
        "symbols": 8,
        "their_root": "82bb249599f23c2f0487e281c38fbc56b8f44fa6a738d527a2957257d0a1d6fc"
      },
      "last_sync_ms": 1796165950000,
      "ledger": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      "name": "Branch B",
      "next_attempt_ms": 1796165960000,
      "peer_id": "12D3KooWQWbkm5Q2VjSksGpoM1QyQQdAV7bQyZzxwqxS682cVTFx",
      "rate_dropped": 4,
      "root": "82bb249599f23c2f0487e281c38fbc56b8f44fa6a738d527a2957257d0a1d6fc",
      "root_matches": true,
      "url": "http://10.0.0.2:8000/"
    }
  ],
  "node": {
    "http_listen": "127.0.0.1:8000",
    "name": "Branch A",
    "peer_id": "12D3KooWQWbkm5Q2VjSksGpoM1QyQQdAV7bQyZzxwqxS682cVTFx",
    "started_at_ms": 1796165889776,
    "version": "0.1.0"
  },
  "now_ms": 1796165950100,
  "p2p_blocked": true,
  "p2p_listen": [
    "/ip4/127.0.0.1/tcp/7600/p2p/12D3KooWQWbkm5Q2VjSksGpoM1QyQQdAV7bQyZzxwqxS682cVTFx"
  ],
  "p2p_reason": "P2P cut by the operator",
  "p2p_state": "cut",
  "peer_count": 1,
  "peerless_since_ms": 1796165889964,
  "peers": [
    {
      "address": "/ip4/10.0.0.3/tcp/7600",
      "admitted": true,
      "connected_since_ms": 1796165900000,
      "in_mesh": true,
      "last_heard_ms": 1796165949000,
      "last_sync_ms": 1796165940000,
      "other_ledger": "82bb249599f23c2f0487e281c38fbc56b8f44fa6a738d527a2957257d0a1d6fc",
      "path": "direct",
      "peer_id": "12D3KooWQWbkm5Q2VjSksGpoM1QyQQdAV7bQyZzxwqxS682cVTFx",
      "rate_dropped": 1,
      "root": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      "root_matches": false,
      "rtt_ms": 1.5,
      "sync_capable": false,
      "transport": "quic"
    }
  ],
  "reachability": "private",
  "seq": 42,
  "store_failure": "disk full",
  "sync_mode": "HTTP",
  "sync_reason": "HTTP carries sync",
  "sync_state": "http",
  "transitions": [
    {
      "at_ms": 1,
      "from": "P2P",
      "kind": "lung",
      "reason": "fallback",
      "to": "HTTP"
    },
    {
      "at_ms": 2,
      "deadline_ms": 60002,
      "kind": "countdown_started"
    },
    {
      "at_ms": 3,
      "kind": "countdown_reset",
      "peers": 1
    },
    {
      "action": "mode_set",
      "at_ms": 4,
      "by": "operator",
      "kind": "operator",
      "mode": "http"
    }
  ]
};

/** A status with every optional field unset. */
export const sparseStatus: Status = {
  "entries_by_lung": {
    "http": {
      "received": 3,
      "sent": 1
    },
    "p2p": {
      "received": 5,
      "sent": 2
    }
  },
  "entry_count": 12,
  "fallback_active_since_ms": null,
  "fallback_after_ms": 60000,
  "fallback_deadline_ms": null,
  "fallback_phase": "active",
  "has_peers": true,
  "heartbeat_active": true,
  "heartbeat_ms": 5000,
  "http_poll_ms": 10000,
  "http_reason": "1 of 1 neighbour healthy",
  "http_state": "carrying",
  "http_sync_enabled": true,
  "last_sync": null,
  "last_transition": null,
  "ledger": {
    "authors": 3,
    "can_write": true,
    "id": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "name": "payments",
    "open": false,
    "refused": 2
  },
  "merkle_root": "82bb249599f23c2f0487e281c38fbc56b8f44fa6a738d527a2957257d0a1d6fc",
  "mode": "auto",
  "neighbors": [],
  "node": {
    "http_listen": "127.0.0.1:8000",
    "name": null,
    "peer_id": "12D3KooWQWbkm5Q2VjSksGpoM1QyQQdAV7bQyZzxwqxS682cVTFx",
    "started_at_ms": 1796165889776,
    "version": "0.1.0"
  },
  "now_ms": 1796165950100,
  "p2p_blocked": true,
  "p2p_listen": [],
  "p2p_reason": "P2P cut by the operator",
  "p2p_state": "cut",
  "peer_count": 1,
  "peerless_since_ms": null,
  "peers": [],
  "reachability": "private",
  "seq": 42,
  "store_failure": null,
  "sync_mode": "HTTP",
  "sync_reason": "HTTP carries sync",
  "sync_state": "http",
  "transitions": []
};

/** One event of each kind. */
export const everyEvent: NodeEvent[] = [
  {
    "at_ms": 9,
    "event": {
      "kind": "started"
    },
    "type": "lung"
  },
  {
    "at_ms": 9,
    "event": {
      "kind": "peers_stable",
      "peers": 2
    },
    "type": "lung"
  },
  {
    "at_ms": 9,
    "event": {
      "deadline_ms": 2,
      "kind": "peerless_timer_started",
      "since_ms": 1
    },
    "type": "lung"
  },
  {
    "at_ms": 9,
    "event": {
      "kind": "peerless_timer_reset",
      "peers": 1
    },
    "type": "lung"
  },
  {
    "at_ms": 9,
    "event": {
      "after_ms": 60000,
      "kind": "fallback_activated"
    },
    "type": "lung"
  },
  {
    "at_ms": 9,
    "event": {
      "from": "auto",
      "kind": "mode_changed",
      "to": "http"
    },
    "type": "lung"
  },
  {
    "at_ms": 9,
    "event": {
      "at_ms": 3,
      "from": "P2P",
      "kind": "transition",
      "reason": "fallback",
      "to": "HTTP"
    },
    "type": "lung"
  },
  {
    "at_ms": 10,
    "author": "12D3KooWQWbkm5Q2VjSksGpoM1QyQQdAV7bQyZzxwqxS682cVTFx",
    "id": "82bb249599f23c2f0487e281c38fbc56b8f44fa6a738d527a2957257d0a1d6fc",
    "type": "entry_added"
  },
  {
    "at_ms": 11,
    "neighbor": "http://10.0.0.2:8000/",
    "ours": "82bb249599f23c2f0487e281c38fbc56b8f44fa6a738d527a2957257d0a1d6fc",
    "theirs": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "type": "diverged"
  },
  {
    "at_ms": 12,
    "lung": "P2P",
    "report": {
      "bytes_received": 1800,
      "bytes_sent": 310,
      "in_sync_before": false,
      "method": "sketch",
      "our_root": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      "pulled": 3,
      "pushed": 1,
      "refused": 0,
      "requests": 4,
      "rounds": 2,
      "symbols": 8,
      "their_root": "82bb249599f23c2f0487e281c38fbc56b8f44fa6a738d527a2957257d0a1d6fc"
    },
    "type": "sync_completed",
    "with": "12D3KooWQWbkm5Q2VjSksGpoM1QyQQdAV7bQyZzxwqxS682cVTFx"
  },
  {
    "at_ms": 13,
    "reason": "disk full",
    "type": "store_failed"
  },
  {
    "at_ms": 14,
    "kind": "timeout",
    "lung": "HTTP",
    "message": "no answer within 5s",
    "type": "sync_failed",
    "with": "http://10.0.0.2:8000/"
  },
  {
    "at_ms": 15,
    "peer": "12D3KooWQWbkm5Q2VjSksGpoM1QyQQdAV7bQyZzxwqxS682cVTFx",
    "type": "hole_punched"
  },
  {
    "action": "p2p_cut",
    "at_ms": 16,
    "by": "operator",
    "mode": null,
    "type": "operator"
  }
];

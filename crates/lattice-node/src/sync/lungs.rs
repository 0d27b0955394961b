//! The heartbeat/fallback state machine (being written).

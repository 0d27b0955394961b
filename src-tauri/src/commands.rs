//! One-line commands over the watched node. Errors cross IPC as `{ kind, message }`.

use lattice_node::config::Mode;
use lattice_node::ledger::{EntryError, EntryId, parse_payload, verify_inclusion};
use lattice_node::node::NodeError;
use lattice_node::status::Status;
use serde::Serialize;
use serde_json::{Value, json};
use tauri::State;

use crate::demo::{AppState, DemoError, DemoStatus, SampleWritten};

#[derive(Debug, Serialize)]
pub struct CommandError {
    kind: String,
    message: String,
}

impl CommandError {
    fn new(kind: &str, message: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            message: message.into(),
        }
    }
}

impl From<NodeError> for CommandError {
    fn from(e: NodeError) -> Self {
        Self::new(e.kind(), e.to_string())
    }
}

impl From<lattice_node::ledger::StoreError> for CommandError {
    fn from(e: lattice_node::ledger::StoreError) -> Self {
        Self::new(e.kind(), e.to_string())
    }
}

impl From<DemoError> for CommandError {
    fn from(e: DemoError) -> Self {
        Self::new(e.kind(), e.to_string())
    }
}

type Answer<T> = Result<T, CommandError>;

#[tauri::command]
pub async fn status(state: State<'_, AppState>) -> Answer<Status> {
    Ok(state.focused().status())
}

#[tauri::command]
pub async fn switch_mode(state: State<'_, AppState>, mode: String) -> Answer<Status> {
    let mode: Mode = mode
        .parse()
        .map_err(|e: String| CommandError::new("invalid_mode", format!("{mode:?} {e}")))?;
    Ok(state.focused().switch_mode(mode).await?)
}

/// The payload arrives as the JSON text that was typed: parsing it on the way would drop a
/// duplicate key or round a long number before anything could refuse it.
#[tauri::command]
pub async fn put_entry(state: State<'_, AppState>, payload: String) -> Answer<Value> {
    let value = parse_payload(&payload).map_err(|e| NodeError::Entry(EntryError::from(e)))?;
    let node = state.focused();
    let appended = node.put(&value).await?;
    // Read back, so the window shows exactly what was signed and stored.
    let stored = node
        .store()
        .get(&appended.id)?
        .map(|e| e.payload_json().to_string());
    let payload = stored.and_then(|text| serde_json::from_str::<Value>(&text).ok());
    Ok(json!({
        "id": appended.id,
        "inserted": appended.inserted,
        "merkle_root": hex::encode(appended.root),
        "entry_count": appended.count,
        "payload": payload,
    }))
}

#[tauri::command]
pub async fn list_entries(state: State<'_, AppState>, limit: usize) -> Answer<Value> {
    let node = state.focused();
    let entries = node.store().latest(limit.min(500))?;
    Ok(json!({ "entries": entries, "entry_count": node.store().len() }))
}

#[tauri::command]
pub async fn get_entry(state: State<'_, AppState>, id: String) -> Answer<Value> {
    let node = state.focused();
    let id: EntryId = id
        .trim()
        .parse()
        .map_err(|e: lattice_node::ledger::EntryError| {
            CommandError::new(e.kind(), e.to_string())
        })?;
    let entry = node.store().get(&id)?.ok_or_else(|| {
        CommandError::new("no_such_entry", format!("entry {id} is not in this ledger"))
    })?;
    let proof = node.store().prove(&id);
    let verified = proof
        .as_ref()
        .is_some_and(|p| verify_inclusion(&p.root, &p.id, &p.steps));
    Ok(json!({ "entry": entry, "proof": proof, "proof_verified": verified }))
}

#[tauri::command]
pub async fn set_p2p_blocked(state: State<'_, AppState>, blocked: bool) -> Answer<Status> {
    Ok(state.focused().set_p2p_blocked(blocked).await?)
}

/// The admission prompt's Accept (`accept: true`) or Ignore for a pending P2P peer.
#[tauri::command]
pub async fn decide_peer(
    state: State<'_, AppState>,
    peer_id: String,
    accept: bool,
) -> Answer<Status> {
    let peer: lattice_node::p2p::PeerId = peer_id
        .trim()
        .parse()
        .map_err(|_| CommandError::new("bad_peer_id", format!("{peer_id:?} is not a PeerId")))?;
    let node = state.focused();
    node.decide_peer(peer, accept).await?;
    Ok(node.status())
}

/// Which node the window watches: a demo node by index, or `null` for this app's node.
#[tauri::command]
pub async fn focus_node(state: State<'_, AppState>, index: Option<usize>) -> Answer<Status> {
    state.set_focus(index).await?;
    Ok(state.focused().status())
}

#[tauri::command]
pub async fn demo_start(state: State<'_, AppState>, nodes: usize) -> Answer<DemoStatus> {
    Ok(state.demo_start(nodes).await?)
}

#[tauri::command]
pub async fn demo_cut(state: State<'_, AppState>) -> Answer<DemoStatus> {
    Ok(state.demo_cut(true).await?)
}

#[tauri::command]
pub async fn demo_restore(state: State<'_, AppState>) -> Answer<DemoStatus> {
    Ok(state.demo_cut(false).await?)
}

#[tauri::command]
pub async fn demo_stop(state: State<'_, AppState>) -> Answer<DemoStatus> {
    Ok(state.demo_stop().await)
}

#[tauri::command]
pub async fn demo_status(state: State<'_, AppState>) -> Answer<DemoStatus> {
    Ok(state.demo_status().await)
}

/// Automatic traffic from every demo node: a few entries a second, bounded.
#[tauri::command]
pub async fn demo_traffic(state: State<'_, AppState>, on: bool) -> Answer<DemoStatus> {
    Ok(state.demo_traffic(on).await?)
}

#[tauri::command]
pub async fn demo_sample(state: State<'_, AppState>) -> Answer<SampleWritten> {
    Ok(state.demo_sample().await?)
}

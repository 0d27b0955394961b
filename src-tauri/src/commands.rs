//! One-line commands over the watched node's operations (`lattice_node::node::ops`).

use lattice_node::node::{Created, EntriesPage, EntryWithProof, ErrorClass, OpError};
use lattice_node::status::Status;
use tauri::State;

use crate::demo::{AppState, DemoError, DemoStatus, SampleWritten};

impl From<DemoError> for OpError {
    fn from(e: DemoError) -> Self {
        let class = match &e {
            DemoError::InvalidNodes { .. } => ErrorClass::BadRequest,
            DemoError::NotRunning | DemoError::NoSuchNode(_) => ErrorClass::NotFound,
            _ => ErrorClass::Internal,
        };
        OpError::new(class, e.kind(), e.to_string())
    }
}

/// Errors cross IPC in the shape HTTP sends them: `{error, message, allowed?}`.
type Answer<T> = Result<T, OpError>;

#[tauri::command]
pub async fn status(state: State<'_, AppState>) -> Answer<Status> {
    Ok(state.focused().status())
}

#[tauri::command]
pub async fn switch_mode(state: State<'_, AppState>, mode: String) -> Answer<Status> {
    state.focused().switch_to(&mode).await
}

/// The payload arrives as the JSON text that was typed (see `NodeHandle::put_json`).
#[tauri::command]
pub async fn put_entry(state: State<'_, AppState>, payload: String) -> Answer<Created> {
    state.focused().put_json(&payload).await
}

#[tauri::command]
pub async fn list_entries(state: State<'_, AppState>, limit: Option<usize>) -> Answer<EntriesPage> {
    state.focused().entries(limit)
}

#[tauri::command]
pub async fn get_entry(state: State<'_, AppState>, id: String) -> Answer<EntryWithProof> {
    state.focused().entry(&id)
}

#[tauri::command]
pub async fn set_p2p_blocked(state: State<'_, AppState>, blocked: bool) -> Answer<Status> {
    state.focused().block_p2p(blocked).await
}

/// The admission prompt's Accept (`accept: true`) or Ignore for a pending P2P peer.
#[tauri::command]
pub async fn decide_peer(
    state: State<'_, AppState>,
    peer_id: String,
    accept: bool,
) -> Answer<Status> {
    let node = state.focused();
    node.decide(&peer_id, accept).await?;
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

//! Forwards the watched node's status snapshots and events to the window, as the
//! `lattice://status` and `lattice://event` events. Snapshots are coalesced to about
//! ten a second; the UI never polls.

use std::time::Duration;

use lattice_node::node::NodeHandle;
use tauri::{AppHandle, Emitter, Runtime};
use tokio::sync::{broadcast, watch};

pub const STATUS_EVENT: &str = "lattice://status";
pub const EVENT_EVENT: &str = "lattice://event";
const MIN_GAP: Duration = Duration::from_millis(100);

/// Follows whichever node `focus` names (the app's own, or a demo node).
pub fn spawn<R: Runtime>(app: AppHandle<R>, mut focus: watch::Receiver<NodeHandle>) {
    tauri::async_runtime::spawn(async move {
        loop {
            let node = focus.borrow_and_update().clone();
            let mut status = node.subscribe_status();
            let mut events = node.subscribe_events();
            let _ = app.emit(STATUS_EVENT, status.borrow_and_update().clone());
            loop {
                tokio::select! {
                    changed = focus.changed() => {
                        if changed.is_err() {
                            return; // the app is gone
                        }
                        break;
                    }
                    changed = status.changed() => {
                        if changed.is_err() {
                            break; // that node stopped: wait for a new focus
                        }
                        tokio::time::sleep(MIN_GAP).await;
                        let _ = app.emit(STATUS_EVENT, status.borrow_and_update().clone());
                    }
                    event = events.recv() => match event {
                        Ok(e) => {
                            let _ = app.emit(EVENT_EVENT, e);
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => {
                            if focus.changed().await.is_err() {
                                return;
                            }
                            break;
                        }
                    },
                }
            }
        }
    });
}

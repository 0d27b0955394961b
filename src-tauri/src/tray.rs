//! The system tray: closing the window leaves the node syncing in the background, and
//! the tray menu says what it is doing now, brings the window back, or quits.
//!
//! Only when the tray icon was created does closing the window hide it; without a tray
//! (a platform or desktop where it cannot be made) closing the window quits, as before,
//! so the node never keeps running where nothing shows it.

use lattice_node::node::NodeHandle;
use lattice_node::status::{Status, SyncState};
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{MouseButton, MouseButtonState, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Manager, Runtime, Window, WindowEvent};

const SHOW: &str = "show";
const QUIT: &str = "quit";
const UPDATE: &str = "update";

/// Present in the app's state once the tray icon exists.
pub(crate) struct Resident;

/// Creates the tray icon and its menu, and keeps its status line true to `node` (the
/// app's own node, which is what keeps running in the background).
///
/// `updates`: this build has an updater (a release built with its signing key); without
/// it the menu says updates come with the next installer instead of offering a check
/// that cannot verify anything.
pub(crate) fn install<R: Runtime>(
    app: &AppHandle<R>,
    node: NodeHandle,
    updates: bool,
) -> tauri::Result<()> {
    let status = MenuItem::with_id(app, "status", line(&node.status()), false, None::<&str>)?;
    let show = MenuItem::with_id(app, SHOW, "Show Lattice", true, None::<&str>)?;
    let update = if updates {
        MenuItem::with_id(app, UPDATE, "Check for updates", true, None::<&str>)?
    } else {
        MenuItem::with_id(
            app,
            UPDATE,
            "Updates: this build has no updater (install a release)",
            false,
            None::<&str>,
        )?
    };
    let quit = MenuItem::with_id(
        app,
        QUIT,
        "Quit Lattice (stops syncing)",
        true,
        None::<&str>,
    )?;
    let separator = PredefinedMenuItem::separator(app)?;
    let menu = Menu::with_items(app, &[&status, &separator, &show, &update, &quit])?;
    let update_item = update.clone();
    let mut builder = TrayIconBuilder::with_id("lattice")
        .tooltip("Lattice")
        .menu(&menu)
        .show_menu_on_left_click(false)
        .on_menu_event(move |app, event| match event.id().as_ref() {
            SHOW => show_window(app),
            UPDATE => crate::updates::check(app.clone(), update_item.clone()),
            QUIT => {
                log::info!("Quit from the tray: stopping the node and quitting");
                app.exit(0);
            }
            _ => {}
        })
        .on_tray_icon_event(|tray, event| {
            if let TrayIconEvent::Click {
                button: MouseButton::Left,
                button_state: MouseButtonState::Up,
                ..
            } = event
            {
                show_window(tray.app_handle());
            }
        });
    if let Some(icon) = app.default_window_icon() {
        builder = builder.icon(icon.clone().to_owned());
    }
    builder.build(app)?;
    app.manage(Resident);

    let mut updates = node.subscribe_status();
    tauri::async_runtime::spawn(async move {
        while updates.changed().await.is_ok() {
            let text = line(&updates.borrow_and_update());
            if status.set_text(text).is_err() {
                return;
            }
            // A line per second is enough for a menu and spares the main thread.
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    });
    Ok(())
}

/// The window's close button: with a tray, hide the window and keep syncing.
pub(crate) fn on_window_event<R: Runtime>(window: &Window<R>, event: &WindowEvent) {
    if let WindowEvent::CloseRequested { api, .. } = event
        && window.try_state::<Resident>().is_some()
    {
        api.prevent_close();
        let _ = window.hide();
        log::info!(
            "window closed: Lattice keeps syncing in the background (the tray's menu shows \
             it again or quits)"
        );
    }
}

fn show_window<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window(crate::MAIN_WINDOW) {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}

/// The tray's one-line status, in the window's words.
pub(crate) fn line(status: &Status) -> String {
    words(
        status.states.sync_state,
        status.peer_count,
        status.entry_count,
    )
}

fn words(sync: SyncState, peer_count: usize, entry_count: usize) -> String {
    let entries = match entry_count {
        1 => "1 entry".to_owned(),
        n => format!("{n} entries"),
    };
    match sync {
        SyncState::P2p => {
            let peers = match peer_count {
                1 => "1 peer".to_owned(),
                n => format!("{n} peers"),
            };
            format!("Syncing peer to peer · {peers} · {entries}")
        }
        SyncState::Http => format!("Syncing over HTTP (fallback) · {entries}"),
        SyncState::Isolated => format!("Not syncing: no peer or neighbour answers · {entries}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tray_line_names_the_lung_that_carries_sync_or_says_nothing_does() {
        assert_eq!(
            words(SyncState::Isolated, 0, 1),
            "Not syncing: no peer or neighbour answers · 1 entry"
        );
        assert_eq!(
            words(SyncState::P2p, 3, 12),
            "Syncing peer to peer · 3 peers · 12 entries"
        );
        assert_eq!(
            words(SyncState::P2p, 1, 0),
            "Syncing peer to peer · 1 peer · 0 entries"
        );
        assert_eq!(
            words(SyncState::Http, 0, 12),
            "Syncing over HTTP (fallback) · 12 entries"
        );
    }
}

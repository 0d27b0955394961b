//! Updates, from the tray: check the release feed, and if a newer signed release is
//! there, download it, verify its signature against the public key built into this
//! release, install it and restart. Only release builds made with the signing key carry
//! an updater (`plugins.updater` is merged into the config by the release workflow); a
//! development build has none and says so.

use tauri::menu::MenuItem;
use tauri::{AppHandle, Runtime};
use tauri_plugin_updater::UpdaterExt as _;

/// Whether this build's config carries an updater with a public key.
pub(crate) fn configured(config: &tauri::Config) -> bool {
    config
        .plugins
        .0
        .get("updater")
        .and_then(|u| u.get("pubkey"))
        .and_then(|k| k.as_str())
        .is_some_and(|k| !k.trim().is_empty())
}

/// Runs one check; the menu item says what happened (it is the only face this has).
pub(crate) fn check<R: Runtime>(app: AppHandle<R>, item: MenuItem<R>) {
    let _ = item.set_enabled(false);
    let _ = item.set_text("Checking for updates…");
    tauri::async_runtime::spawn(async move {
        let outcome = match app.updater() {
            Err(e) => Err(e.to_string()),
            Ok(updater) => match updater.check().await {
                Err(e) => Err(e.to_string()),
                Ok(None) => Ok(None),
                Ok(Some(update)) => {
                    let version = update.version.clone();
                    let _ = item.set_text(format!("Installing Lattice {version}…"));
                    log::info!("update {version} found: downloading and installing");
                    match update.download_and_install(|_, _| {}, || {}).await {
                        Ok(()) => Ok(Some(version)),
                        Err(e) => Err(e.to_string()),
                    }
                }
            },
        };
        let _ = item.set_enabled(true);
        match outcome {
            Ok(Some(version)) => {
                log::info!("update {version} installed: restarting");
                app.restart();
            }
            Ok(None) => {
                let _ = item.set_text(format!(
                    "Lattice {} is up to date (checked {}) — check again",
                    app.package_info().version,
                    clock_now()
                ));
            }
            Err(e) => {
                log::warn!("update check failed: {e}");
                let _ = item.set_text(format!(
                    "Update check failed at {} — try again",
                    clock_now()
                ));
            }
        }
    });
}

/// The time of day (UTC), for "checked at".
fn clock_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("{:02}:{:02} UTC", secs / 3600 % 24, secs / 60 % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_config_with_an_updater_public_key_counts_as_having_updates() {
        let mut config: tauri::Config =
            serde_json::from_str(include_str!("../../tauri.conf.json")).unwrap();
        assert!(
            !configured(&config),
            "the development config has no updater"
        );
        config.plugins.0.insert(
            "updater".into(),
            serde_json::json!({"pubkey": "", "endpoints": []}),
        );
        assert!(!configured(&config), "an empty key verifies nothing");
        config.plugins.0.insert(
            "updater".into(),
            serde_json::json!({"pubkey": "dW50cnVzdGVk", "endpoints": ["https://example.invalid/latest.json"]}),
        );
        assert!(configured(&config));
    }
}

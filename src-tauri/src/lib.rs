//! The desktop shell: a thin adapter that embeds the Lattice node and shows it.
//!
//! The node is the same as the headless one (same `Config`, same `.env` loading); this
//! crate only starts it, manages its handle, forwards its status and events to the window
//! (`bridge`), exposes one-line commands (`commands`) and runs the demo cluster (`demo`).

mod bridge;
mod commands;
mod demo;

use std::path::PathBuf;

use lattice_node::config::{self, Config, Overrides};
use lattice_node::http::server::{self, ServerOptions};
use lattice_node::node::{NodeError, NodeHandle, NodeOptions};
use tauri::{App, Builder, Context, Manager, RunEvent, Runtime};

pub use demo::AppState;

/// The bundle identifier: the app's config and data live under it.
const APP_ID: &str = "io.lattice.desktop";

/// Loads `.env` (the working directory's or `LATTICE_ENV_FILE`'s, else the app's config
/// directory's) with override, and defaults the data directory to the app's.
fn load_config() -> Result<Config, String> {
    let mut overrides = Overrides::default();
    if !config::env_file_path(&overrides).is_file()
        && let Some(dir) = dirs::config_dir()
    {
        let app_env = dir.join(APP_ID).join(".env");
        if app_env.is_file() {
            overrides.env_file = Some(app_env);
        }
    }
    config::load_env_file(&overrides).map_err(|e| e.to_string())?;
    if std::env::var("LATTICE_DATA_DIR").map_or(true, |v| v.trim().is_empty()) {
        overrides.data_dir = Some(app_data_dir());
    }
    let mut config = Config::from_env(&overrides).map_err(|e| e.to_string())?;
    if config.key.is_none() {
        config.key = Some(app_key(&config.data_dir)?);
    }
    Ok(config)
}

/// Without `LATTICE_P2P_KEY` the app keeps its own key in its data directory (0600), so
/// the desktop has the same PeerId from one launch to the next.
fn app_key(data_dir: &std::path::Path) -> Result<lattice_node::NodeKey, String> {
    let path = data_dir.join("node.key");
    if let Ok(text) = std::fs::read_to_string(&path) {
        return lattice_node::NodeKey::from_base64(&text)
            .map_err(|e| format!("{}: the stored node key {e}", path.display()));
    }
    let key = lattice_node::NodeKey::generate().map_err(|e| e.to_string())?;
    std::fs::create_dir_all(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    use std::io::Write as _;
    options
        .open(&path)
        .and_then(|mut f| {
            f.write_all(key.to_base64().as_bytes())
                .and_then(|_| f.sync_all())
        })
        .map_err(|e| format!("{}: {e}", path.display()))?;
    log::info!(
        "created the node key {} ({})",
        path.display(),
        key.peer_id()
    );
    Ok(key)
}

fn app_data_dir() -> PathBuf {
    dirs::data_dir()
        .map(|d| d.join(APP_ID))
        .unwrap_or_else(|| PathBuf::from("lattice-data"))
}

/// Starts the embedded node. If the configured P2P port is taken (a headless node on the
/// same machine, say), it listens on a free port instead and says so.
async fn start_node(config: Config) -> Result<NodeHandle, NodeError> {
    match NodeHandle::start(config.clone(), NodeOptions::default()).await {
        Err(NodeError::P2p(e)) if e.kind() == "p2p_listen" => {
            log::warn!("{e}; listening for P2P on a free port instead");
            let mut config = config;
            config.p2p_listen = vec!["/ip4/0.0.0.0/tcp/0".parse().expect("valid multiaddr")];
            NodeHandle::start(config, NodeOptions::default()).await
        }
        other => other,
    }
}

/// The app as shipped: Tauri's default runtime, the log plugin, the real config.
pub fn run() {
    let config = match load_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lattice: {e}");
            std::process::exit(2);
        }
    };
    let log = tauri_plugin_log::Builder::new()
        .clear_targets()
        .targets([
            tauri_plugin_log::Target::new(tauri_plugin_log::TargetKind::Stdout),
            tauri_plugin_log::Target::new(tauri_plugin_log::TargetKind::LogDir { file_name: None }),
            tauri_plugin_log::Target::new(tauri_plugin_log::TargetKind::Webview),
        ])
        .level(log::LevelFilter::Info)
        .build();
    let app = build_app(
        Builder::default().plugin(log),
        config,
        tauri::generate_context!(),
    )
    .expect("the Lattice window could not be created");
    app.run(|handle, event| {
        if let RunEvent::Exit = event {
            let state = handle.state::<AppState>();
            tauri::async_runtime::block_on(state.shutdown());
        }
    });
}

/// Builds the app on any runtime, so tests can use Tauri's mock runtime. The node starts
/// here, before the window, so commands work as soon as the app exists.
pub fn build_app<R: Runtime>(
    builder: Builder<R>,
    config: Config,
    context: Context<R>,
) -> Result<App<R>, Box<dyn std::error::Error>> {
    // The HTTP lung's API runs in the app too, so other nodes can use this desktop as
    // their HTTP neighbour (and a browser can watch it). It is bound before the node
    // starts, so a neighbour started at the same moment finds the port open.
    let listener = tauri::async_runtime::block_on(server::bind(&config));
    let node = tauri::async_runtime::block_on(start_node(config))?;
    let options = ServerOptions {
        ui_dir: server::find_ui_dir(),
        ..ServerOptions::default()
    };
    // Inside the runtime, because the server task is spawned on it.
    let served = listener.and_then(|listener| {
        tauri::async_runtime::block_on(async { server::spawn_on(listener, node.clone(), options) })
    });
    match served {
        Ok((addr, _task)) => log::info!("node API on http://{addr}/"),
        Err(e) => log::warn!("the node's HTTP API is not available: {e}"),
    }
    let state = AppState::new(node);
    let focus = state.focus_receiver();
    let app = builder
        .manage(state)
        .invoke_handler(tauri::generate_handler![
            commands::status,
            commands::switch_mode,
            commands::put_entry,
            commands::list_entries,
            commands::get_entry,
            commands::set_p2p_blocked,
            commands::focus_node,
            commands::demo_start,
            commands::demo_cut,
            commands::demo_restore,
            commands::demo_stop,
            commands::demo_status,
        ])
        .setup(move |app| {
            bridge::spawn(app.handle().clone(), focus);
            Ok(())
        })
        .build(context)?;
    Ok(app)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use tauri::ipc::{CallbackFn, InvokeBody};
    use tauri::test::{INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder};
    use tauri::webview::InvokeRequest;

    fn app(dir: &std::path::Path) -> (App<MockRuntime>, tauri::WebviewWindow<MockRuntime>) {
        let vars = [
            ("LATTICE_P2P_LISTEN", "/ip4/127.0.0.1/tcp/0"),
            ("LATTICE_HTTP_LISTEN", "127.0.0.1:0"),
            ("LATTICE_HEARTBEAT", "50ms"),
            ("LATTICE_FALLBACK_AFTER", "200ms"),
        ];
        let overrides = Overrides {
            data_dir: Some(dir.to_owned()),
            ..Overrides::default()
        };
        let config = Config::from_pairs(&vars, &overrides).unwrap();
        let app = build_app(mock_builder(), config, tauri::generate_context!()).unwrap();
        let window = tauri::WebviewWindowBuilder::new(&app, "main", Default::default())
            .build()
            .unwrap();
        (app, window)
    }

    fn call(
        window: &tauri::WebviewWindow<MockRuntime>,
        cmd: &str,
        args: Value,
    ) -> Result<Value, Value> {
        get_ipc_response(
            window,
            InvokeRequest {
                cmd: cmd.into(),
                callback: CallbackFn(0),
                error: CallbackFn(1),
                url: window.url().unwrap(),
                body: InvokeBody::Json(args),
                headers: Default::default(),
                invoke_key: INVOKE_KEY.to_string(),
            },
        )
        .map(|body| body.deserialize::<Value>().unwrap())
    }

    #[test]
    fn the_app_keeps_one_private_key_across_launches() {
        let dir = tempfile::tempdir().unwrap();
        let first = app_key(dir.path()).unwrap();
        let again = app_key(dir.path()).unwrap();
        assert_eq!(first.peer_id(), again.peer_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("node.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn the_window_reads_and_steers_the_embedded_node_through_commands() {
        let dir = tempfile::tempdir().unwrap();
        let (app, window) = app(dir.path());

        let status = call(&window, "status", json!({})).unwrap();
        assert_eq!(status["mode"], "auto");
        assert!(status["merkle_root"].as_str().unwrap().len() == 64);

        let status = call(&window, "switch_mode", json!({ "mode": "http" })).unwrap();
        assert_eq!(status["sync_mode"], "HTTP");
        let refused = call(&window, "switch_mode", json!({ "mode": "turbo" })).unwrap_err();
        assert_eq!(refused["kind"], "invalid_mode", "{refused}");
        assert_eq!(call(&window, "status", json!({})).unwrap()["mode"], "http");

        let put = call(
            &window,
            "put_entry",
            json!({ "payload": r#"{"amount": 7}"# }),
        )
        .unwrap();
        assert_eq!(put["entry_count"], 1);
        assert_eq!(
            put["payload"],
            json!({ "amount": 7 }),
            "the payload as stored"
        );
        let dup = call(
            &window,
            "put_entry",
            json!({ "payload": r#"{"a": 1, "a": 2}"# }),
        );
        assert_eq!(dup.unwrap_err()["kind"], "duplicate_key");
        let id = put["id"].as_str().unwrap().to_string();
        let got = call(&window, "get_entry", json!({ "id": id })).unwrap();
        assert_eq!(got["proof_verified"], true);
        let listed = call(&window, "list_entries", json!({ "limit": 10 })).unwrap();
        assert_eq!(listed["entries"][0]["payload"], json!({ "amount": 7 }));
        let bad = call(&window, "get_entry", json!({ "id": "nope" })).unwrap_err();
        assert_eq!(bad["kind"], "malformed_id", "{bad}");

        let demo = call(&window, "demo_status", json!({})).unwrap();
        assert_eq!(demo["running"], false);
        let refused = call(&window, "demo_cut", json!({})).unwrap_err();
        assert_eq!(refused["kind"], "demo");

        let state = app.state::<AppState>();
        tauri::async_runtime::block_on(state.shutdown());
    }

    #[test]
    fn the_demo_cluster_starts_is_watched_cut_and_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let (app, window) = app(dir.path());
        let demo = call(&window, "demo_start", json!({ "nodes": 3 })).unwrap();
        assert_eq!(demo["running"], true);
        assert_eq!(demo["nodes"].as_array().unwrap().len(), 3);
        assert_eq!(demo["focus"], 0);
        let watched = call(&window, "status", json!({})).unwrap();
        assert_eq!(watched["node"]["peer_id"], demo["nodes"][0]["peer_id"]);

        let cut = call(&window, "demo_cut", json!({})).unwrap();
        assert!(
            cut["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .all(|n| n["status"]["p2p_blocked"] == true)
        );
        let restored = call(&window, "demo_restore", json!({})).unwrap();
        assert!(
            restored["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .all(|n| n["status"]["p2p_blocked"] == false)
        );

        let own = call(&window, "focus_node", json!({ "index": null })).unwrap();
        assert_ne!(own["node"]["peer_id"], demo["nodes"][0]["peer_id"]);
        let stopped = call(&window, "demo_stop", json!({})).unwrap();
        assert_eq!(stopped["running"], false);
        let state = app.state::<AppState>();
        tauri::async_runtime::block_on(state.shutdown());
    }
}

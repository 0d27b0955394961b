//! The desktop shell: a thin adapter that embeds the Lattice node and shows it.
//!
//! The node is the same as the headless one (same `Config`, same `.env` loading); this
//! crate only starts it, manages its handle, forwards its status and events to the window
//! (`bridge`), exposes one-line commands (`commands`) and runs the demo cluster (`demo`).

mod bridge;
mod commands;
mod demo;
mod keychain;
mod tray;
mod updates;

use std::path::PathBuf;

use lattice_node::api::{self as server, ServerOptions};
use lattice_node::config::{self, Config, Overrides};
use lattice_node::node::{NodeError, NodeHandle, NodeOptions};
use tauri::{App, AppHandle, Builder, Context, Manager, RunEvent, Runtime};

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
    Config::from_env(&overrides).map_err(|e| e.to_string())
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
        Err(NodeError::P2p(e @ lattice_node::p2p::P2pError::Listen { .. })) => {
            log::warn!("{e}; listening for P2P on a free port instead");
            let mut config = config;
            // Both transports, as by default (with a pre-shared key the node keeps TCP).
            config.p2p_listen = ["/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"]
                .iter()
                .map(|a| a.parse().expect("valid multiaddr"))
                .collect();
            NodeHandle::start(config, NodeOptions::default()).await
        }
        other => other,
    }
}

/// The app as shipped: Tauri's default runtime, its plugins, the real config.
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
    // First among the plugins: a second launch must hand over before anything opens the
    // store (the node starts in `setup`, after every plugin).
    let single = tauri_plugin_single_instance::init(|app, _args, _cwd| {
        log::info!("a second launch: showing this window instead");
        if let Some(window) = app.get_webview_window(MAIN_WINDOW) {
            let _ = window.unminimize();
            let _ = window.show();
            let _ = window.set_focus();
        }
    });
    let context = tauri::generate_context!();
    let updates = updates::configured(context.config());
    let mut builder = Builder::default()
        .on_window_event(tray::on_window_event)
        .plugin(single)
        .plugin(log)
        .plugin(tauri_plugin_window_state::Builder::default().build());
    if updates {
        builder = builder.plugin(tauri_plugin_updater::Builder::new().build());
    }
    let signals = listen_for_signals();
    let app = match build_app(builder, config, context) {
        Ok(app) => app,
        Err(e) => {
            eprintln!("lattice: the app could not start: {e}");
            std::process::exit(1);
        }
    };
    // Only here, not in `build_app`: tests must keep their own signal handling, and the
    // mock runtime has no tray.
    quit_on_signals(app.handle().clone(), signals);
    let own = app.state::<AppState>().own();
    if let Err(e) = tray::install(app.handle(), own, updates) {
        log::warn!("no tray icon ({e}): closing the window quits Lattice");
    }
    app.run(|handle, event| {
        if let RunEvent::Exit = event {
            let state = handle.state::<AppState>();
            tauri::async_runtime::block_on(state.shutdown());
        }
    });
}

/// The window's label in tauri.conf.json.
const MAIN_WINDOW: &str = "main";

/// Builds the app on any runtime, so tests can use Tauri's mock runtime. The node starts
/// after the plugins initialise (so a second launch hands over before it touches the
/// store) and before the window opens (Tauri opens it when the event loop starts), so
/// commands work as soon as the window exists.
pub fn build_app<R: Runtime>(
    builder: Builder<R>,
    config: Config,
    context: Context<R>,
) -> Result<App<R>, Box<dyn std::error::Error>> {
    let app = builder
        .invoke_handler(tauri::generate_handler![
            commands::status,
            commands::switch_mode,
            commands::put_entry,
            commands::list_entries,
            commands::get_entry,
            commands::set_p2p_blocked,
            commands::decide_peer,
            commands::focus_node,
            commands::demo_start,
            commands::demo_cut,
            commands::demo_restore,
            commands::demo_stop,
            commands::demo_status,
            commands::demo_traffic,
            commands::demo_sample,
        ])
        .setup(|app| {
            if let Some(window) = app.get_webview_window(MAIN_WINDOW)
                && let Err(e) = fit_to_monitor(&window)
            {
                log::warn!("could not fit the window to its screen: {e}");
            }
            Ok(())
        })
        .build(context)?;
    let mut config = config;
    if config.key.is_none() {
        // Without `LATTICE_P2P_KEY` the app keeps its own key (the OS keychain, else a
        // 0600 file in its data directory), so the desktop keeps its PeerId. Here, after
        // the plugins, so what the keychain said reaches the log.
        let (key, home) = keychain::load_or_create(&config.data_dir)?;
        log::info!("node key {} ({})", key.peer_id(), home.describe());
        config.key = Some(key);
    }
    let node = start_node_and_api(config)?;
    let state = AppState::new(node);
    let focus = state.focus_receiver();
    app.manage(state);
    bridge::spawn(app.handle().clone(), focus);
    Ok(app)
}

/// Starts the node and its HTTP API (so other nodes can use this desktop as their HTTP
/// neighbour, and a browser can watch it). The API is bound before the node starts, so a
/// neighbour started at the same moment finds the port open.
fn start_node_and_api(config: Config) -> Result<NodeHandle, NodeError> {
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
    Ok(node)
}

/// window-state restores the window's last size and place as it opens; a size remembered
/// from a large monitor must still not hang off a 1280x720 projector.
fn fit_to_monitor<R: Runtime>(window: &tauri::WebviewWindow<R>) -> tauri::Result<()> {
    let Some(monitor) = window.current_monitor()? else {
        return Ok(());
    };
    let area = *monitor.work_area();
    let (outer, inner) = (window.outer_size()?, window.inner_size()?);
    let frame_w = outer.width.saturating_sub(inner.width);
    let frame_h = outer.height.saturating_sub(inner.height);
    if outer.width <= area.size.width && outer.height <= area.size.height {
        return Ok(());
    }
    let width = inner.width.min(area.size.width.saturating_sub(frame_w));
    let height = inner.height.min(area.size.height.saturating_sub(frame_h));
    log::info!(
        "the window ({}x{}) is larger than its screen ({}x{}): {width}x{height}",
        outer.width,
        outer.height,
        area.size.width,
        area.size.height
    );
    window.set_size(tauri::PhysicalSize::new(width, height))?;
    window.set_position(area.position)?;
    Ok(())
}

/// SIGTERM, SIGINT and SIGHUP quit the app as closing its window does: `RunEvent::Exit`
/// stops the demo cluster (removing its data) and the node, and the process exits 0.
/// SIGTERM, SIGINT and SIGHUP, listened for from before the node starts: a signal that
/// arrives while the app is still starting is kept and acted on, not fatal.
#[cfg(unix)]
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}
#[cfg(not(unix))]
struct Signals;

fn listen_for_signals() -> Option<Signals> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        // Registered here, in the runtime's context, before anything is started.
        tauri::async_runtime::block_on(async {
            match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
                signal(SignalKind::hangup()),
            ) {
                (Ok(term), Ok(int), Ok(hup)) => Some(Signals { term, int, hup }),
                _ => {
                    eprintln!(
                        "lattice: cannot listen for SIGTERM: a signal ends the app without cleanup"
                    );
                    None
                }
            }
        })
    }
    #[cfg(not(unix))]
    Some(Signals)
}

fn quit_on_signals<R: Runtime>(app: AppHandle<R>, signals: Option<Signals>) {
    #[cfg(unix)]
    if let Some(Signals {
        mut term,
        mut int,
        mut hup,
    }) = signals
    {
        tauri::async_runtime::spawn(async move {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
                _ = hup.recv() => "SIGHUP",
            };
            log::info!("{name}: stopping the node and quitting");
            app.exit(0);
        });
    }
    #[cfg(not(unix))]
    let _ = (app, signals);
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
        let window = tauri::WebviewWindowBuilder::new(&app, MAIN_WINDOW, Default::default())
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
    fn the_window_reads_and_steers_the_embedded_node_through_commands() {
        let dir = tempfile::tempdir().unwrap();
        let (app, window) = app(dir.path());

        let status = call(&window, "status", json!({})).unwrap();
        assert_eq!(status["mode"], "auto");
        assert!(status["merkle_root"].as_str().unwrap().len() == 64);

        let status = call(&window, "switch_mode", json!({ "mode": "http" })).unwrap();
        assert_eq!(status["sync_mode"], "HTTP");
        let refused = call(&window, "switch_mode", json!({ "mode": "turbo" })).unwrap_err();
        assert_eq!(refused["error"], "invalid_mode", "{refused}");
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
        assert_eq!(dup.unwrap_err()["error"], "duplicate_key");
        let id = put["id"].as_str().unwrap().to_string();
        let got = call(&window, "get_entry", json!({ "id": id })).unwrap();
        assert_eq!(got["proof_verified"], true);
        let listed = call(&window, "list_entries", json!({ "limit": 10 })).unwrap();
        assert_eq!(listed["entries"][0]["payload"], json!({ "amount": 7 }));
        let bad = call(&window, "get_entry", json!({ "id": "nope" })).unwrap_err();
        assert_eq!(bad["error"], "malformed_id", "{bad}");

        let demo = call(&window, "demo_status", json!({})).unwrap();
        assert_eq!(demo["running"], false);
        let refused = call(&window, "demo_cut", json!({})).unwrap_err();
        assert_eq!(refused["error"], "demo");

        let state = app.state::<AppState>();
        tauri::async_runtime::block_on(state.shutdown());
    }

    #[test]
    fn a_demo_cluster_outside_2_to_12_nodes_is_refused_with_the_range() {
        let dir = tempfile::tempdir().unwrap();
        let (app, window) = app(dir.path());
        for nodes in [0, 1, 13, 16] {
            let refused = call(&window, "demo_start", json!({ "nodes": nodes })).unwrap_err();
            assert_eq!(refused["error"], "invalid_demo_nodes", "{refused}");
            let message = refused["message"].as_str().unwrap();
            assert!(message.contains("2") && message.contains("12"), "{message}");
            assert!(message.contains(&nodes.to_string()), "{message}");
        }
        let demo = call(&window, "demo_status", json!({})).unwrap();
        assert_eq!(demo["running"], false, "a refused start changes nothing");
        let state = app.state::<AppState>();
        tauri::async_runtime::block_on(state.shutdown());
    }

    /// Polls the demo status until `cond` holds (bounded: 30 s).
    fn demo_until(
        window: &tauri::WebviewWindow<MockRuntime>,
        what: &str,
        cond: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let demo = call(window, "demo_status", json!({})).unwrap();
            if cond(&demo) {
                return demo;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}: {demo}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    #[test]
    fn the_presenter_bar_switches_traffic_writes_samples_and_counts_the_cut() {
        let dir = tempfile::tempdir().unwrap();
        let (app, window) = app(dir.path());
        let refused = call(&window, "demo_traffic", json!({ "on": true })).unwrap_err();
        assert_eq!(
            refused["error"], "demo",
            "no cluster, no traffic: {refused}"
        );
        assert_eq!(
            call(&window, "demo_sample", json!({})).unwrap_err()["error"],
            "demo"
        );

        let demo = call(&window, "demo_start", json!({ "nodes": 2 })).unwrap();
        assert_eq!(demo["traffic"]["on"], false);
        assert_eq!(demo["cut"], Value::Null, "no cut yet");
        call(&window, "focus_node", json!({ "index": 1 })).unwrap();
        let sample = call(&window, "demo_sample", json!({})).unwrap();
        assert_eq!(sample["node"], "Branch B", "written on the watched node");
        assert_eq!(sample["peer_id"], demo["nodes"][1]["peer_id"]);

        let on = call(&window, "demo_traffic", json!({ "on": true })).unwrap();
        assert_eq!(on["traffic"]["on"], true);
        demo_until(&window, "traffic", |d| {
            d["traffic"]["written"].as_u64() >= Some(2)
        });
        let off = call(&window, "demo_traffic", json!({ "on": false })).unwrap();
        assert_eq!(off["traffic"]["on"], false);

        let cut = call(&window, "demo_cut", json!({})).unwrap();
        assert_eq!(cut["cut"]["written"], 0, "{}", cut["cut"]);
        assert_eq!(cut["cut"]["nodes"], 2);
        call(&window, "demo_sample", json!({})).unwrap();
        demo_until(&window, "the cut counter", |d| d["cut"]["written"] == 1);
        let state = app.state::<AppState>();
        tauri::async_runtime::block_on(state.shutdown());
    }

    #[test]
    fn quitting_the_app_stops_the_demo_cluster_and_removes_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let (app, window) = app(dir.path());
        let demo = call(&window, "demo_start", json!({ "nodes": 2 })).unwrap();
        let data = std::path::PathBuf::from(demo["data_dir"].as_str().unwrap());
        assert!(data.join("node-1").is_dir(), "{}", data.display());
        let node = app.state::<AppState>().focused();
        tauri::async_runtime::block_on(app.state::<AppState>().shutdown());
        assert!(!data.exists(), "{} was left behind", data.display());
        let late = tauri::async_runtime::block_on(node.put(&json!({ "late": true })));
        assert!(
            late.is_err(),
            "the demo node was stopped, not just forgotten"
        );
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
        let data = std::path::PathBuf::from(demo["data_dir"].as_str().unwrap());
        assert!(data.is_dir());
        let stopped = call(&window, "demo_stop", json!({})).unwrap();
        assert_eq!(stopped["running"], false);
        assert!(!data.exists(), "stopping the demo removes its ledgers");
        let state = app.state::<AppState>();
        tauri::async_runtime::block_on(state.shutdown());
    }
}

//! Lists the app's commands so each needs an explicit permission in a capability.

const COMMANDS: &[&str] = &[
    "status",
    "switch_mode",
    "put_entry",
    "list_entries",
    "get_entry",
    "set_p2p_blocked",
    "decide_peer",
    "focus_node",
    "demo_start",
    "demo_cut",
    "demo_restore",
    "demo_stop",
    "demo_status",
    "demo_traffic",
    "demo_sample",
];

fn main() {
    let attributes = tauri_build::Attributes::new()
        .capabilities_path_pattern("./src-tauri/capabilities/**/*")
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    tauri_build::try_build(attributes).expect("tauri-build failed");
}

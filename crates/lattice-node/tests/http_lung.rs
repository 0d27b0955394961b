//! The HTTP lung end to end: real nodes on loopback sockets, no P2P peers, millisecond
//! timers. Every wait is on a condition with a deadline.

mod support;

use std::time::Duration;

use lattice_node::config::Mode;
use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_peers_three_nodes_fall_back_to_http_and_converge() {
    let nodes = cluster(3, &[]).await;
    eventually("every node falls back to HTTP", WAIT, || {
        all_in(&nodes, "HTTP")
    })
    .await;
    for n in &nodes {
        let s = n.status();
        assert!(s.http_sync_enabled && s.heartbeat_active && !s.has_peers);
        assert_eq!(s.peer_count, 0);
        let t = s.last_transition.expect("a transition was recorded");
        assert!(t.reason.contains("no sync peers"), "{}", t.reason);
        assert!(s.fallback_active_since_ms.is_some());
        assert!(s.fallback_deadline_ms.is_none());
    }
    for (i, n) in nodes.iter().enumerate() {
        n.node.put(&json!({ "from": i })).await.unwrap();
    }
    eventually("entries from every node reach every node", WAIT, || {
        nodes.iter().all(|n| n.status().entry_count == 3) && roots_equal(&nodes)
    })
    .await;
    eventually(
        "every neighbour is healthy with a matching root",
        WAIT,
        || {
            nodes.iter().all(|n| {
                n.status()
                    .neighbors
                    .iter()
                    .all(|nb| nb.root_matches == Some(true))
            })
        },
    )
    .await;
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_p2p_stops_http_sync_and_auto_resumes_it() {
    let nodes = cluster(2, &[]).await;
    eventually("both fall back", WAIT, || all_in(&nodes, "HTTP")).await;
    for n in &nodes {
        let s = n.node.switch_mode(Mode::P2p).await.unwrap();
        assert_eq!(s.mode, Mode::P2p);
        assert!(!s.http_sync_enabled);
    }
    let put = nodes[0]
        .node
        .put(&json!({ "while": "p2p forced" }))
        .await
        .unwrap();
    // Absence can only be shown over time: several poll intervals pass without it.
    tokio::time::sleep(Duration::from_millis(150 * 6)).await;
    assert!(
        !nodes[1].node.store().contains(&put.id),
        "HTTP synced while forced to p2p"
    );
    assert!(all_in(&nodes, "P2P"));

    // Back to auto: peerless for long already, so HTTP takes over at once and syncs.
    let s = nodes[1].node.switch_mode(Mode::Auto).await.unwrap();
    assert!(s.http_sync_enabled, "{s:?}");
    eventually("the entry arrives once auto resumes HTTP", WAIT, || {
        nodes[1].node.store().contains(&put.id)
    })
    .await;
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_http_syncs_at_once_and_new_entries_arrive_through_the_event_stream() {
    // A long poll: only the immediate poll at activation and the event stream are fast.
    let slow = [("LATTICE_HTTP_POLL", "60s"), ("LATTICE_MODE", "p2p")];
    let nodes = cluster(2, &slow).await;
    let before = nodes[0]
        .node
        .put(&json!({ "before": "http" }))
        .await
        .unwrap();
    for n in &nodes {
        n.node.switch_mode(Mode::Http).await.unwrap();
    }
    assert!(all_in(&nodes, "HTTP"));
    eventually(
        "the switch to http polls at once, not a minute later",
        Duration::from_secs(5),
        || nodes[1].node.store().contains(&before.id),
    )
    .await;
    eventually("both follow each other's event stream", WAIT, || {
        nodes
            .iter()
            .all(|n| n.status().neighbors.iter().all(|nb| nb.events_connected))
    })
    .await;
    let put = nodes[0]
        .node
        .put(&json!({ "via": "events" }))
        .await
        .unwrap();
    eventually(
        "the entry arrives long before the next poll",
        Duration::from_secs(5),
        || nodes[1].node.store().contains(&put.id),
    )
    .await;
    // What the CLI and the app read back is exactly what was sent: the status (here with
    // neighbours, their reports, a last sync and a story of transitions) survives a
    // round trip through the Rust type.
    let http = reqwest_client();
    for n in &nodes {
        let sent: serde_json::Value = http
            .get(format!("{}api/lattice/p2p/status", n.url()))
            .send()
            .await
            .unwrap()
            .json_value()
            .await;
        assert!(sent["neighbors"][0]["last_report"].is_object(), "{sent}");
        assert!(
            !sent["transitions"].as_array().unwrap().is_empty(),
            "{sent}"
        );
        let read: lattice_node::status::Status =
            serde_json::from_value(sent.clone()).expect("the status reads as a Status");
        assert_eq!(serde_json::to_value(&read).unwrap(), sent);
    }
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_with_the_documented_fields_and_json_errors() {
    let nodes = cluster(1, &[]).await;
    let base = nodes[0].url();
    let http = reqwest_client();

    let status: serde_json::Value = http
        .get(format!("{base}api/lattice/p2p/status"))
        .send()
        .await
        .unwrap()
        .json_value()
        .await;
    assert!(status["peer_count"].is_u64());
    assert!(status["has_peers"].is_boolean());
    assert!(status["http_sync_enabled"].is_boolean());
    assert!(status["sync_mode"] == "P2P" || status["sync_mode"] == "HTTP");
    assert!(status["heartbeat_active"].is_boolean());
    assert_eq!(status["mode"], "auto");
    assert!(status["merkle_root"].as_str().unwrap().len() == 64);
    assert!(status["entry_count"].is_u64());

    for bad in ["?mode=turbo", ""] {
        let resp = http
            .post(format!("{base}api/lattice/sync/switch{bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400);
        let body = resp.json_value().await;
        assert_eq!(body["error"], "invalid_mode");
        assert_eq!(body["allowed"], json!(["auto", "p2p", "http"]));
    }
    assert_eq!(
        nodes[0].status().mode,
        Mode::Auto,
        "a refused switch changed the mode"
    );

    let resp = http
        .post(format!("{base}api/lattice/sync/switch?mode=http"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.json_value().await["sync_mode"], "HTTP");

    let resp = http
        .post(format!("{base}api/lattice/entries"))
        .body(r#"{"payload": {"amount": 5}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let created = resp.json_value().await;
    let id = created["id"].as_str().unwrap().to_string();

    let entry = http
        .get(format!("{base}api/lattice/entries/{id}"))
        .send()
        .await
        .unwrap()
        .json_value()
        .await;
    assert_eq!(entry["entry"]["payload"], json!({"amount": 5}));
    assert_eq!(entry["proof_verified"], true);

    let resp = http
        .post(format!("{base}api/lattice/entries"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(resp.json_value().await["error"], "bad_json");

    // What parsing would change silently is refused, naming the problem, and not stored.
    // (Counted in the store: the 201 above came after the commit, while the status
    // snapshot may not have been published yet.)
    let count = nodes[0].node.store().len();
    for (body, kind, names) in [
        (
            r#"{"payload": {"a": 1, "a": 2}}"#,
            "duplicate_key",
            r#""a""#,
        ),
        (
            r#"{"payload": {"n": 123456789012345678901234567890}}"#,
            "inexact_number",
            "123456789012345678901234567890",
        ),
    ] {
        let resp = http
            .post(format!("{base}api/lattice/entries"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 422, "{body}");
        let answer = resp.json_value().await;
        assert_eq!(answer["error"], kind, "{answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(names),
            "{answer}"
        );
    }
    assert_eq!(nodes[0].node.store().len(), count);

    let resp = http
        .post(format!("{base}api/lattice/entries"))
        .body(vec![b' '; 40 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    assert_eq!(resp.json_value().await["error"], "body_too_large");

    let resp = http.get(format!("{base}nope")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    assert_eq!(resp.json_value().await["error"], "not_found");

    let resp = http
        .delete(format!("{base}api/lattice/p2p/status"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(resp.json_value().await["error"], "method_not_allowed");

    let resp = http
        .get(format!("{base}api/lattice/entries?limit=many"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(resp.json_value().await["error"], "bad_request");

    let metrics = http
        .get(format!("{base}metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("lattice_entries 1"), "{metrics}");
    // The store's group commit, read from the store itself: the one entry was written.
    assert!(
        metrics.contains("lattice_store_entries_written_total 1"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("lattice_store_commits_total 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("lattice_mode_transitions_total"),
        "{metrics}"
    );
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_writes_and_reconciliation_need_it_and_neighbours_use_it() {
    let nodes = cluster(2, &[("LATTICE_API_TOKEN", TOKEN)]).await;
    let base = nodes[0].url();
    let http = reqwest_client();
    for path in [
        "api/lattice/entries",
        "api/lattice/sync/switch?mode=p2p",
        "api/lattice/reconcile/children",
        "api/lattice/reconcile/push",
    ] {
        for auth in [None, Some("Bearer wrong-token-0123456789")] {
            let mut req = http.post(format!("{base}{path}")).body("{}");
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status().as_u16(), 401, "{path} with {auth:?}");
            assert_eq!(resp.json_value().await["error"], "unauthorized");
        }
    }
    assert_eq!(nodes[0].status().mode, Mode::Auto);
    let resp = http
        .post(format!("{base}api/lattice/entries"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(r#"{"payload": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    eventually("neighbours reconcile with the token", WAIT, || {
        nodes[1].status().entry_count == 1 && roots_equal(&nodes)
    })
    .await;
    for n in nodes {
        n.stop().await;
    }
}

/// A tiny reqwest client for the tests' own calls.
fn reqwest_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

trait JsonValue {
    async fn json_value(self) -> serde_json::Value;
}

impl JsonValue for reqwest::Response {
    async fn json_value(self) -> serde_json::Value {
        let ct = self
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        assert!(ct.starts_with("application/json"), "content-type {ct}");
        serde_json::from_slice(&self.bytes().await.unwrap()).unwrap()
    }
}

/// Serves `node`'s API with the dashboard from `ui_dir` (None: the one built in).
async fn serve_dashboard(
    node: &TestNode,
    ui_dir: Option<std::path::PathBuf>,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let options = lattice_node::api::ServerOptions {
        ui_dir,
        ..server_options()
    };
    let app = lattice_node::api::router(node.node.clone(), &options);
    let server = tokio::spawn(lattice_node::api::serve(
        listener,
        app,
        options,
        node.node.shutdown_token(),
    ));
    (addr, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_serves_the_dashboard_with_a_strict_csp_and_keeps_api_errors_json() {
    let ui = tempfile::tempdir().unwrap();
    std::fs::write(
        ui.path().join("index.html"),
        "<!doctype html><title>Lattice</title>",
    )
    .unwrap();
    let nodes = cluster(1, &[]).await;
    let (addr, server) = serve_dashboard(&nodes[0], Some(ui.path().to_owned())).await;
    let http = reqwest_client();
    let page = http.get(format!("http://{addr}/")).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("default-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("<title>Lattice</title>")
    );
    let missing = http
        .get(format!("http://{addr}/api/lattice/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    assert_eq!(missing.json_value().await["error"], "not_found");
    for n in nodes {
        n.stop().await;
    }
    let _ = server.await;
}

/// Without a folder, the node serves the dashboard built into the binary (the test command
/// builds `ui/` first and sets `LATTICE_REQUIRE_EMBEDDED_UI=1`, so there this cannot pass
/// vacuously); a binary built without one says so instead of serving nothing silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_built_into_the_binary_is_served_with_types_etags_and_clear_errors() {
    use lattice_node::api::dashboard;
    let required = std::env::var("LATTICE_REQUIRE_EMBEDDED_UI").is_ok_and(|v| v == "1");
    assert!(
        dashboard::embedded() || !required,
        "this build has no dashboard in it: build ui/ (npm --prefix ui run build) before cargo"
    );
    let nodes = cluster(1, &[]).await;
    let (addr, server) = serve_dashboard(&nodes[0], None).await;
    let http = reqwest_client();
    let page = http.get(format!("http://{addr}/")).send().await.unwrap();
    if dashboard::embedded() {
        assert_eq!(page.status().as_u16(), 200);
        assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
        assert_eq!(page.headers()["cache-control"], "no-cache");
        assert!(page.headers().contains_key("content-security-policy"));
        let etag = page.headers()["etag"].clone();
        let html = page.text().await.unwrap();
        assert!(html.contains("<title>"), "{html}");
        // Every script and stylesheet the page names is there, with a type a browser runs.
        let assets: Vec<&str> = html
            .split('"')
            .filter(|s| s.starts_with("/assets/") || s.starts_with("./assets/"))
            .collect();
        assert!(!assets.is_empty(), "{html}");
        for a in assets {
            let a = a.trim_start_matches('.');
            let r = http.get(format!("http://{addr}{a}")).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 200, "{a}");
            let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
            assert!(
                ct.starts_with("text/javascript") || ct.starts_with("text/css"),
                "{a}: {ct}"
            );
            assert!(
                r.headers()["cache-control"]
                    .to_str()
                    .unwrap()
                    .contains("immutable")
            );
        }
        let again = http
            .get(format!("http://{addr}/index.html"))
            .header("if-none-match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status().as_u16(), 304);
        let missing = http
            .get(format!("http://{addr}/nope.js"))
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status().as_u16(), 404);
        assert_eq!(missing.json_value().await["error"], "not_found");
        let post = http.post(format!("http://{addr}/")).send().await.unwrap();
        assert_eq!(post.status().as_u16(), 405);
    } else {
        assert_eq!(page.status().as_u16(), 404);
        let body = page.json_value().await;
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("without the dashboard"),
            "{body}"
        );
    }
    // The API is never shadowed by the dashboard.
    let status = http
        .get(format!("http://{addr}/api/lattice/p2p/status"))
        .send()
        .await
        .unwrap();
    assert_eq!(status.status().as_u16(), 200);
    for n in nodes {
        n.stop().await;
    }
    let _ = server.await;
}

//! The `lattice` binary, run as a user runs it.

use std::path::Path;
use std::process::{Command, Output};

const LATTICE: &str = env!("CARGO_BIN_EXE_lattice");

/// Runs `lattice` in `cwd` with a clean environment plus `env`.
fn lattice(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(LATTICE)
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("HOME", cwd)
        .envs(env.iter().copied())
        .output()
        .expect("lattice runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "failed: {}\n{}", o.status, stderr(&o));
    stdout(&o)
}

#[test]
fn keygen_writes_a_private_key_and_refuses_to_overwrite_it() {
    let dir = tempfile::tempdir().unwrap();
    let peer = ok(lattice(dir.path(), &["keygen"], &[]));
    assert!(peer.trim().starts_with("12D3KooW"), "{peer}");
    let env = std::fs::read_to_string(dir.path().join(".env")).unwrap();
    assert!(env.starts_with("LATTICE_P2P_KEY="));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(dir.path().join(".env")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }

    let again = lattice(dir.path(), &["keygen"], &[]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".env")).unwrap(),
        env
    );

    let forced = ok(lattice(dir.path(), &["keygen", "--force"], &[]));
    assert_ne!(forced, peer);
    // The secret is never printed.
    let secret = env.trim().trim_start_matches("LATTICE_P2P_KEY=");
    assert!(!forced.contains(secret));
}

#[test]
fn keygen_writes_the_env_file_named_by_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    ok(lattice(
        dir.path(),
        &["keygen", "--env-file", "node-a.env"],
        &[],
    ));
    assert!(dir.path().join("node-a.env").exists());
    assert!(!dir.path().join(".env").exists());
}

#[test]
fn put_list_proof_and_verify_work_on_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let peer = ok(lattice(dir.path(), &["keygen"], &[]));
    let put = ok(lattice(
        dir.path(),
        &["--data-dir", "d", "put", r#"{"amount": 12}"#],
        &[],
    ));
    let id = put
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    assert!(put.contains("entries 1"), "{put}");
    let root = ok(lattice(dir.path(), &["--data-dir", "d", "root"], &[]));
    assert!(put.contains(root.trim()));

    let list = ok(lattice(dir.path(), &["--data-dir", "d", "list"], &[]));
    assert!(
        list.contains(&id) && list.contains(r#"{"amount":12}"#),
        "{list}"
    );
    let json = ok(lattice(
        dir.path(),
        &["--data-dir", "d", "list", "--json"],
        &[],
    ));
    let entry: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(entry["author"], peer.trim());

    let proof = ok(lattice(dir.path(), &["--data-dir", "d", "proof", &id], &[]));
    let proof: serde_json::Value = serde_json::from_str(&proof).unwrap();
    assert_eq!(proof["root"], root.trim());

    let verify = ok(lattice(dir.path(), &["--data-dir", "d", "verify"], &[]));
    assert!(verify.starts_with("ok: 1 entries verified"), "{verify}");

    let missing = lattice(
        dir.path(),
        &["--data-dir", "d", "proof", &"0".repeat(64)],
        &[],
    );
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("is not in the ledger"));
}

#[test]
fn the_same_entries_in_different_orders_give_the_same_root() {
    let dir = tempfile::tempdir().unwrap();
    ok(lattice(dir.path(), &["keygen"], &[]));
    for n in 0..6 {
        ok(lattice(
            dir.path(),
            &["--data-dir", "a", "put", &format!(r#"{{"n":{n}}}"#)],
            &[],
        ));
    }
    let exported = ok(lattice(dir.path(), &["--data-dir", "a", "export"], &[]));
    let lines: Vec<&str> = exported.lines().collect();
    assert_eq!(lines.len(), 6);

    // b gets them one at a time newest first; c as one array in a shuffled order.
    for (i, line) in lines.iter().rev().enumerate() {
        let f = dir.path().join(format!("one-{i}.jsonl"));
        std::fs::write(&f, line).unwrap();
        ok(lattice(
            dir.path(),
            &["--data-dir", "b", "import", f.to_str().unwrap()],
            &[],
        ));
    }
    let shuffled = [3, 0, 5, 1, 4, 2].map(|i| lines[i]).join(",");
    std::fs::write(dir.path().join("all.json"), format!("[{shuffled}]")).unwrap();
    ok(lattice(
        dir.path(),
        &["--data-dir", "c", "import", "all.json"],
        &[],
    ));

    let roots: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|d| ok(lattice(dir.path(), &["--data-dir", d, "root"], &[])))
        .collect();
    assert_eq!(roots[0], roots[1]);
    assert_eq!(roots[0], roots[2]);
    assert_ne!(
        roots[0].trim(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn a_forged_entry_in_an_import_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    ok(lattice(dir.path(), &["keygen"], &[]));
    ok(lattice(
        dir.path(),
        &["--data-dir", "a", "put", r#"{"n":1}"#],
        &[],
    ));
    ok(lattice(
        dir.path(),
        &["--data-dir", "a", "put", r#"{"n":2}"#],
        &[],
    ));
    let exported = ok(lattice(dir.path(), &["--data-dir", "a", "export"], &[]));
    let mut lines: Vec<String> = exported.lines().map(String::from).collect();
    lines[1] = lines[1].replace(r#""n":2"#, r#""n":3"#);
    std::fs::write(dir.path().join("forged.jsonl"), lines.join("\n")).unwrap();

    let out = lattice(
        dir.path(),
        &["--data-dir", "b", "import", "forged.jsonl"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("line 2"), "{}", stderr(&out));
    let root = ok(lattice(dir.path(), &["--data-dir", "b", "root"], &[]));
    assert_eq!(
        root.trim(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn a_malformed_env_value_exits_2_with_one_line_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "LATTICE_HTTP_POLL=often\n").unwrap();
    let out = lattice(dir.path(), &["root"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(r#"LATTICE_HTTP_POLL: "often" is not a duration"#),
        "{err}"
    );
}

#[test]
fn a_malformed_env_file_exits_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.env"), "LATTICE_MODE='auto\n").unwrap();
    let out = lattice(dir.path(), &["--env-file", "broken.env", "root"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("broken.env"), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1);
}

#[test]
fn a_secret_with_an_unquoted_space_is_never_echoed_in_the_env_file_error() {
    for var in ["LATTICE_API_TOKEN", "LATTICE_P2P_KEY"] {
        let dir = tempfile::tempdir().unwrap();
        let env = format!("LATTICE_MODE=auto\n{var}=abc MySecretTokenABCDEF987654\n");
        std::fs::write(dir.path().join(".env"), env).unwrap();
        let out = lattice(dir.path(), &["root"], &[]);
        assert_eq!(out.status.code(), Some(2));
        let err = stderr(&out);
        assert!(!err.contains("MySecret") && !err.contains("abc"), "{err}");
        assert!(err.contains(&format!("line 2 (variable {var})")), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn the_file_wins_over_the_environment_and_flags_win_over_both() {
    let dir = tempfile::tempdir().unwrap();
    ok(lattice(dir.path(), &["keygen"], &[]));
    let mut env = std::fs::read_to_string(dir.path().join(".env")).unwrap();
    env.push_str("LATTICE_DATA_DIR=from-file\n");
    std::fs::write(dir.path().join(".env"), env).unwrap();

    ok(lattice(
        dir.path(),
        &["put", "1"],
        &[("LATTICE_DATA_DIR", "from-env")],
    ));
    assert!(dir.path().join("from-file").exists());
    assert!(!dir.path().join("from-env").exists());

    ok(lattice(
        dir.path(),
        &["--data-dir", "from-flag", "put", "2"],
        &[("LATTICE_DATA_DIR", "from-env")],
    ));
    assert!(dir.path().join("from-flag").exists());
    assert!(!dir.path().join("from-env").exists());

    // LATTICE_ENV_FILE picks another file.
    std::fs::write(dir.path().join("other.env"), "LATTICE_MODE=bogus\n").unwrap();
    let out = lattice(dir.path(), &["root"], &[("LATTICE_ENV_FILE", "other.env")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("LATTICE_MODE"));
}

#[test]
fn put_without_a_key_or_with_bad_json_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = lattice(dir.path(), &["--data-dir", "d", "put", "{}"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("lattice keygen"), "{}", stderr(&out));

    ok(lattice(dir.path(), &["keygen"], &[]));
    let out = lattice(dir.path(), &["--data-dir", "d", "put", "{not json"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not valid JSON"));

    for (payload, problem) in [
        (
            r#"{"a":1,"a":2}"#,
            r#"object key "a" appears more than once"#,
        ),
        (
            r#"{"n":123456789012345678901234567890}"#,
            "number 123456789012345678901234567890 cannot be kept exactly",
        ),
    ] {
        let out = lattice(dir.path(), &["--data-dir", "d", "put", payload], &[]);
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains(problem), "{}", stderr(&out));
    }

    let big = format!(r#"{{"x":"{}"}}"#, "y".repeat(200));
    let out = lattice(
        dir.path(),
        &["--data-dir", "d", "put", &big],
        &[("LATTICE_MAX_PAYLOAD", "100")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("limit is 100 bytes"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("d").join("ledger.db").exists());
}

#[test]
fn every_command_explains_itself() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in [
        "keygen", "put", "root", "list", "export", "import", "proof", "verify",
    ] {
        let help = ok(lattice(dir.path(), &[cmd, "--help"], &[]));
        assert!(help.contains("Usage: lattice"), "{cmd}: {help}");
    }
    let help = ok(lattice(dir.path(), &["--help"], &[]));
    assert!(help.contains("--env-file") && help.contains("--data-dir"));
}

/// A free loopback port (bound, then released for the child to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[cfg(unix)]
#[test]
fn two_node_processes_sync_over_http_and_stop_gracefully_on_sigterm() {
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let ports = [free_port(), free_port()];
    for (i, name) in ["a", "b"].iter().enumerate() {
        let env = format!(
            "LATTICE_DATA_DIR=./{name}\nLATTICE_P2P_LISTEN=/ip4/127.0.0.1/tcp/0\nLATTICE_HTTP_LISTEN=127.0.0.1:{}\nLATTICE_HTTP_NEIGHBORS=http://127.0.0.1:{}\nLATTICE_HEARTBEAT=50ms\nLATTICE_FALLBACK_AFTER=300ms\nLATTICE_HTTP_POLL=200ms\n",
            ports[i],
            ports[1 - i]
        );
        std::fs::write(dir.path().join(format!("{name}.env")), env).unwrap();
        ok(lattice(
            dir.path(),
            &["keygen", "--env-file", &format!("{name}.env")],
            &[],
        ));
    }
    let spawn = |name: &str| {
        Command::new(LATTICE)
            .args(["--env-file", &format!("{name}.env"), "node"])
            .current_dir(dir.path())
            .env_clear()
            .env("HOME", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut a = spawn("a");
    let mut b = spawn("b");
    let url = |i: usize| format!("http://127.0.0.1:{}", ports[i]);
    let status = |i: usize| -> Option<serde_json::Value> {
        let o = lattice(dir.path(), &["status", "--json", "--url", &url(i)], &[]);
        o.status
            .success()
            .then(|| serde_json::from_slice(&o.stdout).unwrap())
    };
    wait_for("both nodes fall back to HTTP", || {
        (0..2).all(|i| status(i).is_some_and(|s| s["sync_mode"] == "HTTP"))
    });
    ok(lattice(
        dir.path(),
        &[
            "--env-file",
            "a.env",
            "put",
            "--url",
            &url(0),
            r#"{"from":"a"}"#,
        ],
        &[],
    ));
    ok(lattice(
        dir.path(),
        &[
            "--env-file",
            "b.env",
            "put",
            "--url",
            &url(1),
            r#"{"from":"b"}"#,
        ],
        &[],
    ));
    wait_for("both hold both entries with equal roots", || {
        let (Some(sa), Some(sb)) = (status(0), status(1)) else {
            return false;
        };
        sa["entry_count"] == 2 && sa["merkle_root"] == sb["merkle_root"]
    });
    // The neighbour's root in status is as last seen: it matches after the next poll.
    let mut human = String::new();
    wait_for("the human status to show the neighbour in sync", || {
        human = ok(lattice(dir.path(), &["status", "--url", &url(0)], &[]));
        human.contains("root matches")
    });
    assert!(human.contains("sync over HTTP"), "{human}");
    let switched = ok(lattice(
        dir.path(),
        &["switch", "p2p", "--url", &url(0)],
        &[],
    ));
    assert!(switched.contains("mode p2p"), "{switched}");

    // While the node runs, local writes are refused with a pointer to --url.
    let locked = lattice(dir.path(), &["--env-file", "a.env", "put", "{}"], &[]);
    assert_eq!(locked.status.code(), Some(1));
    assert!(stderr(&locked).contains("--url"), "{}", stderr(&locked));

    for child in [&mut a, &mut b] {
        let pid = child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
    }
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        let log = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "exit {}: {log}", out.status);
        assert!(
            log.contains("[STARTUP] P2P Heartbeat Monitor activated"),
            "{log}"
        );
        assert!(
            log.contains("[P2P_HEARTBEAT] HTTP Sync Fallback activated"),
            "{log}"
        );
        assert!(log.contains("stopped"), "{log}");
    }
    // Everything acknowledged is still there after the stop.
    let root_a = ok(lattice(dir.path(), &["--env-file", "a.env", "root"], &[]));
    let root_b = ok(lattice(dir.path(), &["--env-file", "b.env", "root"], &[]));
    assert_eq!(root_a, root_b);
    let verify = ok(lattice(dir.path(), &["--env-file", "a.env", "verify"], &[]));
    assert!(verify.starts_with("ok: 2 entries"), "{verify}");
}

#[test]
fn a_node_refuses_a_public_address_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let out = lattice(
        dir.path(),
        &["--data-dir", "d", "node"],
        &[("LATTICE_HTTP_LISTEN", "0.0.0.0:0")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("LATTICE_API_TOKEN"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn talking_to_no_node_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", free_port());
    let out = lattice(dir.path(), &["status", "--url", &url], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("could not connect"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_p2p_port_already_taken_stops_the_node_with_the_reason_said_once() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let listen = format!("/ip4/127.0.0.1/tcp/{port}");
    let data = dir.path().join("data");
    let out = lattice(
        dir.path(),
        &["node"],
        &[
            ("LATTICE_P2P_LISTEN", listen.as_str()),
            ("LATTICE_HTTP_LISTEN", "127.0.0.1:0"),
            ("LATTICE_DATA_DIR", data.to_str().unwrap()),
            ("RUST_LOG", "off"),
        ],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.starts_with("lattice: "))
        .unwrap_or_else(|| panic!("{err}"));
    assert_eq!(
        line.matches("cannot listen on").count(),
        1,
        "said twice: {line}"
    );
    assert!(
        line.to_lowercase().contains("in use"),
        "no reason given: {line}"
    );
    drop(taken);
}

#[test]
fn a_key_that_is_no_author_cannot_put_and_the_refusal_is_said_once() {
    let dir = tempfile::tempdir().unwrap();
    let founder = dir.path().join("founder.env");
    ok(lattice(
        dir.path(),
        &["init", "--name", "bank-ledger"],
        &[("LATTICE_ENV_FILE", founder.to_str().unwrap())],
    ));
    let lines: String = std::fs::read_to_string(&founder)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("LATTICE_LEDGER=") || l.starts_with("LATTICE_GENESIS="))
        .map(|l| format!("{l}\n"))
        .collect();
    let outsider = dir.path().join("outsider.env");
    std::fs::write(&outsider, lines).unwrap();
    let data = dir.path().join("outsider-data");
    let env = [
        ("LATTICE_ENV_FILE", outsider.to_str().unwrap()),
        ("LATTICE_DATA_DIR", data.to_str().unwrap()),
    ];
    ok(lattice(dir.path(), &["keygen"], &env));
    let out = lattice(dir.path(), &["put", r#"{"steal": 1}"#], &env);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(
        err.matches("is not an author of ledger").count(),
        1,
        "said twice: {err}"
    );
    assert!(err.contains("bank-ledger"), "{err}");
}

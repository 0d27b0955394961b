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

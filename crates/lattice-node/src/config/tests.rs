//! The configuration's tests: every variable, every way it can be wrong.

use super::*;
use std::collections::HashMap;

fn cfg(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_lookup(|k| map.get(k).cloned(), &Overrides::default())
}

#[test]
fn defaults_are_the_documented_ones() {
    let c = cfg(&[]).unwrap();
    assert_eq!(c.http_listen.to_string(), "127.0.0.1:8000");
    assert_eq!(c.mode, Mode::Auto);
    assert_eq!(c.heartbeat, Duration::from_secs(5));
    assert_eq!(c.fallback_after, Duration::from_secs(60));
    assert_eq!(c.http_poll, Duration::from_secs(10));
    assert_eq!(c.max_payload, 64 * 1024);
    assert!(c.key.is_none() && c.bootstrap.is_empty() && c.http_neighbors.is_empty());
}

#[test]
fn the_peer_rate_defaults_to_100_a_second_and_bad_values_are_refused_by_name() {
    assert_eq!(cfg(&[]).unwrap().peer_rate, Some(PeerRate::DEFAULT));
    let c = cfg(&[("LATTICE_PEER_RATE", "20")]).unwrap();
    assert_eq!(
        c.peer_rate,
        Some(PeerRate {
            per_second: 20,
            burst: 100
        })
    );
    let c = cfg(&[("LATTICE_PEER_RATE", "20:30")]).unwrap();
    assert_eq!(
        c.peer_rate,
        Some(PeerRate {
            per_second: 20,
            burst: 30
        })
    );
    assert_eq!(cfg(&[("LATTICE_PEER_RATE", "0")]).unwrap().peer_rate, None);
    for bad in ["fast", "-1", "20:10", "5:x", "2000000"] {
        let err = cfg(&[("LATTICE_PEER_RATE", bad)]).unwrap_err();
        assert_eq!(err.var, "LATTICE_PEER_RATE", "{bad}");
        assert!(err.to_string().contains("RATE:BURST"), "{err}");
    }
}

#[test]
fn the_peer_timeout_defaults_to_three_heartbeats_and_may_be_set() {
    assert_eq!(cfg(&[]).unwrap().peer_timeout, Duration::from_secs(15));
    let c = cfg(&[("LATTICE_HEARTBEAT", "250ms")]).unwrap();
    assert_eq!(c.peer_timeout, Duration::from_millis(750));
    let c = cfg(&[
        ("LATTICE_HEARTBEAT", "250ms"),
        ("LATTICE_PEER_TIMEOUT", "3s"),
    ])
    .unwrap();
    assert_eq!(c.peer_timeout, Duration::from_secs(3));
    let c = cfg(&[("LATTICE_HEARTBEAT", "1s"), ("LATTICE_PEER_TIMEOUT", "1s")]).unwrap();
    assert_eq!(
        c.peer_timeout,
        Duration::from_secs(1),
        "one heartbeat is enough"
    );
}

#[test]
fn a_peer_timeout_shorter_than_a_heartbeat_or_not_a_duration_is_refused() {
    let e = cfg(&[
        ("LATTICE_HEARTBEAT", "1s"),
        ("LATTICE_PEER_TIMEOUT", "500ms"),
    ])
    .unwrap_err();
    assert_eq!(e.var, "LATTICE_PEER_TIMEOUT");
    assert_eq!(
        e.to_string(),
        r#"LATTICE_PEER_TIMEOUT: "500ms" is shorter than LATTICE_HEARTBEAT (1s); a peer needs at least one heartbeat to answer (the default is three)"#
    );
    for bad in ["soon", "0s", "-3s", "9999d"] {
        let e = cfg(&[("LATTICE_PEER_TIMEOUT", bad)]).unwrap_err();
        assert_eq!(e.var, "LATTICE_PEER_TIMEOUT");
        assert!(
            e.to_string().starts_with(&format!(
                "LATTICE_PEER_TIMEOUT: \"{bad}\" is not a duration"
            )),
            "{e}"
        );
    }
}

#[test]
fn human_durations_and_lists_parse() {
    let peer = NodeKey::from_seed([3; 32]).peer_id();
    let c = cfg(&[
        ("LATTICE_HEARTBEAT", "250ms"),
        ("LATTICE_FALLBACK_AFTER", "2m"),
        (
            "LATTICE_HTTP_NEIGHBORS",
            "http://127.0.0.1:8001, http://127.0.0.1:8002/",
        ),
        (
            "LATTICE_BOOTSTRAP",
            &format!("/ip4/127.0.0.1/tcp/7601/p2p/{peer}"),
        ),
        ("LATTICE_MODE", "HTTP"),
        ("LATTICE_MAX_PAYLOAD", "1MiB"),
    ])
    .unwrap();
    assert_eq!(c.heartbeat, Duration::from_millis(250));
    assert_eq!(c.fallback_after, Duration::from_secs(120));
    assert_eq!(c.http_neighbors[0].as_str(), "http://127.0.0.1:8001/");
    assert_eq!(c.http_neighbors.len(), 2);
    assert_eq!(c.bootstrap.len(), 1);
    assert_eq!(c.mode, Mode::Http);
    assert_eq!(c.max_payload, 1024 * 1024);
}

#[test]
fn a_bad_value_names_the_variable_the_value_and_what_was_expected() {
    let e = cfg(&[("LATTICE_BOOTSTRAP", "/ip4/1.2.3")]).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"LATTICE_BOOTSTRAP: "/ip4/1.2.3" is not a multiaddr with a /p2p/ peer id"#
    );
    let cases = [
        ("LATTICE_HEARTBEAT", "soon"),
        ("LATTICE_FALLBACK_AFTER", "0s"),
        ("LATTICE_HTTP_POLL", "-1s"),
        ("LATTICE_MODE", "turbo"),
        ("LATTICE_HTTP_LISTEN", "localhost"),
        ("LATTICE_HTTP_NEIGHBORS", "ftp://x"),
        ("LATTICE_P2P_LISTEN", "/ip4/0.0.0.0"),
        ("LATTICE_MAX_PAYLOAD", "lots"),
    ];
    for (var, value) in cases {
        let e = cfg(&[(var, value)]).unwrap_err();
        assert_eq!(e.var, var);
        assert!(
            e.to_string().starts_with(&format!("{var}: \"{value}\" ")),
            "{e}"
        );
        assert!(!e.to_string().contains('\n'));
    }
}

#[test]
fn bootstrapping_to_ourselves_is_refused_with_a_hint() {
    let key = NodeKey::from_seed([5; 32]);
    let e = cfg(&[
        ("LATTICE_P2P_KEY", &key.to_base64()),
        (
            "LATTICE_BOOTSTRAP",
            &format!("/ip4/127.0.0.1/tcp/7601/p2p/{}", key.peer_id()),
        ),
    ])
    .unwrap_err();
    assert_eq!(e.var, "LATTICE_BOOTSTRAP");
    assert!(e.to_string().contains("own PeerId"), "{e}");
}

#[test]
fn p2p_admission_settings_parse_and_refuse_nonsense() {
    let peer = NodeKey::from_seed([4; 32]).peer_id().to_string();
    let c = cfg(&[
        ("LATTICE_P2P_ALLOW", &peer),
        ("LATTICE_P2P_PSK", &"ab".repeat(32)),
        ("LATTICE_MDNS", "true"),
    ])
    .unwrap();
    assert_eq!(c.p2p_allow.unwrap()[0].to_string(), peer);
    assert_eq!(c.p2p_psk, Some([0xab; 32]));
    assert!(c.mdns);
    assert_eq!(
        cfg(&[("LATTICE_P2P_ALLOW", "bob")]).unwrap_err().var,
        "LATTICE_P2P_ALLOW"
    );
    let e = cfg(&[("LATTICE_P2P_PSK", "abcd")]).unwrap_err();
    assert!(!e.to_string().contains("abcd"), "{e}");
    assert_eq!(
        cfg(&[("LATTICE_MDNS", "maybe")]).unwrap_err().var,
        "LATTICE_MDNS"
    );
}

#[test]
fn nat_settings_parse_and_refuse_nonsense() {
    let c = cfg(&[]).unwrap();
    assert!(c.relays.is_empty() && !c.upnp && c.autonat_global_only);
    let quic = c
        .p2p_listen
        .iter()
        .any(|a| a.iter().any(|p| matches!(p, Protocol::QuicV1)));
    assert!(quic, "QUIC is on by default: {:?}", c.p2p_listen);

    let relay = format!(
        "/dns4/relay.example.org/tcp/4001/p2p/{}",
        NodeKey::from_seed([3; 32]).peer_id()
    );
    let c = cfg(&[
        (
            "LATTICE_RELAYS",
            &format!(
                "{relay}, /ip4/198.51.100.10/udp/4001/quic-v1/p2p/{}",
                NodeKey::from_seed([3; 32]).peer_id()
            ),
        ),
        ("LATTICE_UPNP", "true"),
        ("LATTICE_AUTONAT_GLOBAL_ONLY", "false"),
    ])
    .unwrap();
    assert_eq!(c.relays.len(), 2);
    assert_eq!(c.relays[0].to_string(), relay);
    assert!(c.upnp && !c.autonat_global_only);

    let e = cfg(&[("LATTICE_RELAYS", "/ip4/198.51.100.10/tcp/4001")]).unwrap_err();
    assert_eq!(e.var, "LATTICE_RELAYS");
    assert!(e.to_string().contains("/p2p/<relay peer id>"), "{e}");
    let e = cfg(&[(
        "LATTICE_RELAYS",
        &format!(
            "{relay}/p2p-circuit/p2p/{}",
            NodeKey::from_seed([4; 32]).peer_id()
        ),
    )])
    .unwrap_err();
    assert!(e.to_string().contains("circuit address"), "{e}");
    assert_eq!(
        cfg(&[("LATTICE_UPNP", "maybe")]).unwrap_err().var,
        "LATTICE_UPNP"
    );
}

#[test]
fn secrets_are_never_shown_in_errors() {
    let e = cfg(&[("LATTICE_P2P_KEY", "c2VjcmV0LXNlY3JldA==")]).unwrap_err();
    assert!(!e.to_string().contains("c2VjcmV0"), "{e}");
    assert!(
        e.to_string()
            .starts_with("LATTICE_P2P_KEY: (secret, 20 characters)")
    );
    let e = cfg(&[("LATTICE_API_TOKEN", "short")]).unwrap_err();
    assert!(!e.to_string().contains("short"), "{e}");
    let ok = cfg(&[("LATTICE_API_TOKEN", "0123456789abcdef0123")]).unwrap();
    assert!(!format!("{ok:?}").contains("0123456789abcdef"));
}

#[test]
fn an_unparsable_env_line_is_named_without_its_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.env");
    std::fs::write(
        &path,
        "LATTICE_MODE=auto\nLATTICE_API_TOKEN=\"s3cret-token-value\n",
    )
    .unwrap();
    let flags = Overrides {
        env_file: Some(path),
        ..Default::default()
    };
    let e = load_env_file(&flags).unwrap_err().to_string();
    assert!(!e.contains("s3cret"), "{e}");
    assert!(
        e.contains("line 2") && e.contains("LATTICE_API_TOKEN"),
        "{e}"
    );
}

#[test]
fn credentials_in_a_neighbour_url_are_refused_and_not_echoed() {
    let e = cfg(&[(
        "LATTICE_HTTP_NEIGHBORS",
        "http://admin:hunter2@10.0.0.1:8000",
    )])
    .unwrap_err();
    assert!(!e.to_string().contains("hunter2"), "{e}");
    assert!(e.to_string().contains("<redacted>"), "{e}");
}

#[test]
fn the_data_dir_flag_wins_over_the_environment() {
    let map: HashMap<String, String> =
        [("LATTICE_DATA_DIR".to_string(), "/from/env".to_string())].into();
    let flags = Overrides {
        data_dir: Some("/from/flag".into()),
        ..Default::default()
    };
    let c = Config::from_lookup(|k| map.get(k).cloned(), &flags).unwrap();
    assert_eq!(c.data_dir, PathBuf::from("/from/flag"));
    let c = Config::from_lookup(|k| map.get(k).cloned(), &Overrides::default()).unwrap();
    assert_eq!(c.data_dir, PathBuf::from("/from/env"));
}

#[test]
fn keygen_keeps_other_lines_and_refuses_to_replace_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".env");
    std::fs::write(&path, "# mine\nLATTICE_MODE=p2p\nLATTICE_P2P_KEY=\n").unwrap();
    let first = NodeKey::from_seed([1; 32]);
    assert_eq!(write_key_to_env_file(&path, &first, false).unwrap(), None);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("# mine\nLATTICE_MODE=p2p\n"));
    assert!(text.contains(&format!("LATTICE_P2P_KEY={}", first.to_base64())));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let second = NodeKey::from_seed([2; 32]);
    let err = write_key_to_env_file(&path, &second, false).unwrap_err();
    assert!(err.to_string().contains(&first.peer_id().to_string()));
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains(&first.to_base64())
    );
    let replaced = write_key_to_env_file(&path, &second, true).unwrap();
    assert_eq!(replaced, Some(first.peer_id().to_string()));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(&second.to_base64()) && !text.contains(&first.to_base64()));
}

#[test]
fn an_unparsable_env_line_is_named_by_number_and_variable_never_by_its_secret() {
    let secret = "MySecretTokenABCDEF987654";
    let text = format!("LATTICE_MODE=auto\nLATTICE_API_TOKEN=abc {secret}\n");
    let err = dotenvy::from_read_iter(text.as_bytes())
        .find_map(Result::err)
        .expect("dotenvy refuses an unquoted space");
    let dotenvy::Error::LineParse(rest, _) = err else {
        panic!("a line parse error")
    };
    let message = unparsable_line(&text, &rest);
    assert!(
        !message.contains(secret) && !message.contains("abc"),
        "{message}"
    );
    assert!(
        message.contains("line 2 (variable LATTICE_API_TOKEN)"),
        "{message}"
    );
}

#[test]
fn a_broken_line_that_is_not_ours_is_not_quoted_even_as_a_variable_name() {
    let text = "LATTICE_MODE=auto\nc2VjcmV0LWtleS1tYXRlcmlhbA==oops here\n";
    let Some(Err(dotenvy::Error::LineParse(rest, _))) =
        dotenvy::from_read_iter(text.as_bytes()).find(Result::is_err)
    else {
        panic!("dotenvy refuses the line")
    };
    let message = unparsable_line(text, &rest);
    assert!(!message.contains("c2Vj"), "{message}");
    assert!(message.contains("line 2"), "{message}");
}

#[test]
fn a_secret_with_a_dollar_sign_is_refused_unless_single_quoted() {
    let text = "LATTICE_API_TOKEN=My$Secret{TokenABCDEF987654\n";
    let e = refuse_expanded_secrets(text).unwrap_err().to_string();
    assert!(e.starts_with("LATTICE_API_TOKEN: (secret,"), "{e}");
    assert!(!e.contains("Secret{") && !e.contains("My$"), "{e}");
    assert!(e.contains("single quotes"), "{e}");
    assert!(refuse_expanded_secrets("LATTICE_P2P_KEY=\"a$b\"\n").is_err());
    assert!(refuse_expanded_secrets("LATTICE_API_TOKEN='My$SecretTokenABCDEF987654'\n").is_ok());
    assert!(
        refuse_expanded_secrets("LATTICE_DATA_DIR=$HOME/ledger\n").is_ok(),
        "only secrets"
    );
}

#[test]
fn node_name_is_optional_trimmed_and_bounded_to_64_printable_characters() {
    assert_eq!(cfg(&[]).unwrap().node_name, None);
    assert_eq!(cfg(&[("LATTICE_NODE_NAME", "  ")]).unwrap().node_name, None);
    let c = cfg(&[("LATTICE_NODE_NAME", " Branch A ")]).unwrap();
    assert_eq!(c.node_name.as_deref(), Some("Branch A"));
    let longest = "é".repeat(64);
    let c = cfg(&[("LATTICE_NODE_NAME", longest.as_str())]).unwrap();
    assert_eq!(c.node_name.as_deref(), Some(longest.as_str()));

    let e = cfg(&[("LATTICE_NODE_NAME", &"x".repeat(65))]).unwrap_err();
    assert_eq!(e.var, "LATTICE_NODE_NAME");
    assert!(
        e.to_string().contains("65 characters long; at most 64"),
        "{e}"
    );
    let e = cfg(&[("LATTICE_NODE_NAME", "Branch\u{1b}[31mA")]).unwrap_err();
    assert_eq!(e.var, "LATTICE_NODE_NAME");
    assert!(e.to_string().contains("control character"), "{e}");
}

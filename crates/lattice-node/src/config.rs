//! Configuration: a `.env` file and the environment, validated into a [`Config`] before
//! anything starts.
//!
//! Precedence, lowest first: the inherited environment, then the `.env` file (loaded with
//! dotenvy *with override*, so a value in the file wins), then command-line flags. An
//! empty value means "unset". Every value is checked here; a bad one is reported as one
//! line naming the variable, the value (never a secret's) and what was expected.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use multiaddr::{Multiaddr, Protocol};
use url::Url;

use crate::envfile;
use crate::identity::NodeKey;
use crate::ledger::{DEFAULT_MAX_PAYLOAD, Genesis, LedgerId};

pub const ENV_FILE_VAR: &str = "LATTICE_ENV_FILE";
pub const DEFAULT_ENV_FILE: &str = ".env";
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:8000";
/// TCP and QUIC on the same port number (QUIC is UDP); with `LATTICE_P2P_PSK` the QUIC
/// listener is skipped, since QUIC cannot carry a pre-shared key.
pub const DEFAULT_P2P_LISTEN: &str = "/ip4/0.0.0.0/tcp/7600,/ip4/0.0.0.0/udp/7600/quic-v1";

/// The sync mode lives with the decisions it steers; the configuration reads it.
pub use crate::sync::Mode;

/// An API token. Shown nowhere: `Debug` and `Display` redact it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The validated configuration every face of the node starts from.
#[derive(Clone, Debug)]
pub struct Config {
    /// The node's ed25519 key (`LATTICE_P2P_KEY`); `None` until `lattice keygen` runs.
    pub key: Option<NodeKey>,
    pub p2p_listen: Vec<Multiaddr>,
    pub bootstrap: Vec<Multiaddr>,
    pub http_listen: SocketAddr,
    pub http_neighbors: Vec<Url>,
    pub api_token: Option<Secret>,
    pub data_dir: PathBuf,
    pub mode: Mode,
    pub heartbeat: Duration,
    /// A P2P peer counts for the heartbeat only while it has answered within this long
    /// (`LATTICE_PEER_TIMEOUT`, default three heartbeats); one silent longer is
    /// disconnected. TCP alone keeps a blackholed connection "up" for many minutes.
    pub peer_timeout: Duration,
    pub fallback_after: Duration,
    pub http_poll: Duration,
    pub max_payload: usize,
    /// How many unsolicited entries (gossip) one P2P peer may send per second, and in
    /// one burst (`LATTICE_PEER_RATE`, `RATE` or `RATE:BURST`, default 100:500; `0`
    /// turns the limit off). Entries this node asked for in a reconciliation are free.
    pub peer_rate: Option<PeerRate>,
    /// Only these peers may connect over P2P (`LATTICE_P2P_ALLOW`); `None`: anyone.
    pub p2p_allow: Option<Vec<libp2p_identity::PeerId>>,
    /// A private-network pre-shared key (`LATTICE_P2P_PSK`, 64 hex characters): only
    /// nodes holding it can even start a P2P handshake.
    pub p2p_psk: Option<[u8; 32]>,
    /// Discover peers on the local network with mDNS (`LATTICE_MDNS`).
    pub mdns: bool,
    /// A name people can follow (`LATTICE_NODE_NAME`, at most 64 printable characters),
    /// shown beside the PeerId wherever a face names this node.
    pub node_name: Option<String>,
    /// The ledger this node belongs to (`LATTICE_LEDGER`, the id `lattice init` printed);
    /// `None`: the open development ledger.
    pub ledger: Option<LedgerId>,
    /// Its genesis record (`LATTICE_GENESIS`), already checked against `ledger`. A node
    /// without it finds it in its data directory or fetches it from a neighbour.
    pub genesis: Option<Genesis>,
    /// Public relays to reserve a slot on (`LATTICE_RELAYS`, multiaddrs ending in
    /// `/p2p/<relay id>`), for being reached behind a NAT and hole punching.
    pub relays: Vec<Multiaddr>,
    /// Ask the router for port mappings by UPnP (`LATTICE_UPNP`, default off).
    pub upnp: bool,
    /// AutoNAT only trusts peers at global addresses (`LATTICE_AUTONAT_GLOBAL_ONLY`,
    /// default true); off only for test networks on documentation addresses.
    pub autonat_global_only: bool,
}

/// A configuration problem, displayed as the one line the user sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {shown} {expected}")]
pub struct ConfigError {
    pub var: String,
    /// The offending value, quoted, or a description of it for secrets.
    pub shown: String,
    pub expected: String,
}

impl ConfigError {
    fn new(var: &str, value: &str, expected: impl Into<String>) -> Self {
        Self {
            var: var.into(),
            shown: format!("{:?}", truncate(value)),
            expected: expected.into(),
        }
    }
    fn secret(var: &str, value: &str, expected: impl Into<String>) -> Self {
        Self {
            var: var.into(),
            shown: format!("(secret, {} characters)", value.chars().count()),
            expected: expected.into(),
        }
    }
}

fn truncate(s: &str) -> String {
    const MAX: usize = 120;
    if s.chars().count() > MAX {
        format!("{}...", s.chars().take(MAX).collect::<String>())
    } else {
        s.to_string()
    }
}

/// Flags that win over both the environment and the file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub env_file: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
}

/// The env file to use: `--env-file`, else `LATTICE_ENV_FILE`, else `./.env`.
pub fn env_file_path(overrides: &Overrides) -> PathBuf {
    overrides
        .env_file
        .clone()
        .or_else(|| {
            std::env::var_os(ENV_FILE_VAR)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ENV_FILE))
}

/// Says which line of the env file `text` holds the unparsable `rest` (as dotenvy reports
/// it: the value part of a bad value, or the remainder from an unclosed quote on), by
/// number and variable name only, so a secret on that line is never echoed.
fn unparsable_line(text: &str, rest: &str) -> String {
    const HINT: &str =
        "expected KEY=value lines with balanced quotes (quote a value that has spaces)";
    let first = rest.lines().next().unwrap_or("").trim();
    let found = text.lines().enumerate().find(|(_, line)| {
        !first.is_empty()
            && (line.trim() == first
                || line
                    .split_once('=')
                    .is_some_and(|(_, value)| value.contains(first)))
    });
    let Some((index, line)) = found else {
        return format!("cannot be parsed; {HINT}");
    };
    let key = line.split_once('=').map(|(k, _)| {
        let k = k.trim();
        k.strip_prefix("export ").unwrap_or(k).trim()
    });
    let is_name = |k: &&str| {
        // Only our own names: anything else on a broken line may be pasted key material.
        k.starts_with("LATTICE_")
            && k.len() <= 64
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    match key.filter(is_name) {
        Some(var) => format!(
            "cannot be parsed at line {} (variable {var}); {HINT}",
            index + 1
        ),
        None => format!(
            "cannot be parsed at line {} (not a LATTICE_ variable); {HINT}",
            index + 1
        ),
    }
}

/// Loads the env file into the process environment, with override. Returns the path
/// loaded, or `None` when there is no such file (not an error). Call it before any
/// other thread starts: it changes the process environment.
pub fn load_env_file(overrides: &Overrides) -> Result<Option<PathBuf>, ConfigError> {
    let path = env_file_path(overrides);
    if !path.is_file() {
        return Ok(None);
    }
    if let Ok(text) = std::fs::read_to_string(&path) {
        refuse_expanded_secrets(&text)?;
    }
    dotenvy::from_path_override(&path).map_err(|e| env_file_error(&path, e))?;
    Ok(Some(path))
}

/// Variables whose values are secrets: never printed, never expanded.
const SECRET_VARS: [&str; 3] = ["LATTICE_API_TOKEN", "LATTICE_P2P_KEY", "LATTICE_P2P_PSK"];

/// An env file expands `$NAME` and `${NAME}` in unquoted and double-quoted values, so a
/// secret with a `$` in it would silently become another (shorter) secret. Refuse it,
/// naming the variable and the fix, never the value.
fn refuse_expanded_secrets(text: &str) -> Result<(), ConfigError> {
    for line in text.lines() {
        let line = line.trim();
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        let single_quoted = value.len() >= 2 && value.starts_with('\'') && value.ends_with('\'');
        if SECRET_VARS.contains(&key) && value.contains('$') && !single_quoted {
            return Err(ConfigError::secret(
                key,
                value.trim_matches(['"', '\'']),
                "contains `$`, which an env file expands as a variable, so the secret in force would not be the one written; put the value in single quotes",
            ));
        }
    }
    Ok(())
}

fn env_file_error(path: &Path, e: dotenvy::Error) -> ConfigError {
    let expected = match e {
        // What dotenvy hands back may be a secret (for a bad value it is the value alone):
        // find the line in the file and name its number and variable, never its text.
        dotenvy::Error::LineParse(rest, _) => {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            unparsable_line(&text, &rest)
        }
        dotenvy::Error::Io(io) => format!("cannot be read: {io}"),
        other => format!("cannot be loaded: {other}"),
    };
    ConfigError {
        var: "env file".into(),
        shown: format!("{:?}", path.display().to_string()),
        expected,
    }
}

impl Config {
    /// Validates the process environment (after [`load_env_file`]) plus `overrides`.
    pub fn from_env(overrides: &Overrides) -> Result<Config, ConfigError> {
        Config::from_lookup(|k| std::env::var(k).ok(), overrides)
    }

    /// Validates a configuration from name/value pairs; a later pair wins over an earlier
    /// one with the same name (demo clusters and tests build their nodes this way).
    pub fn from_pairs<K: AsRef<str>, V: AsRef<str>>(
        pairs: &[(K, V)],
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        Config::from_lookup(
            |name| {
                pairs
                    .iter()
                    .rev()
                    .find(|(k, _)| k.as_ref() == name)
                    .map(|(_, v)| v.as_ref().to_string())
            },
            overrides,
        )
    }

    /// Validates a configuration from any source of variables.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());

        let key = get("LATTICE_P2P_KEY")
            .map(|v| {
                NodeKey::from_base64(&v).map_err(|e| {
                    ConfigError::secret(
                        "LATTICE_P2P_KEY",
                        &v,
                        format!("{e} (run `lattice keygen` to make one)"),
                    )
                })
            })
            .transpose()?;

        let p2p_listen = list(
            get("LATTICE_P2P_LISTEN")
                .as_deref()
                .unwrap_or(DEFAULT_P2P_LISTEN),
        )
        .map(|s| parse_listen_addr("LATTICE_P2P_LISTEN", s))
        .collect::<Result<Vec<_>, _>>()?;
        let bootstrap = list(get("LATTICE_BOOTSTRAP").as_deref().unwrap_or(""))
            .map(|s| parse_bootstrap("LATTICE_BOOTSTRAP", s))
            .collect::<Result<Vec<_>, _>>()?;

        if let Some(key) = &key {
            let me = key.peer_id();
            if let Some(own) = bootstrap
                .iter()
                .find(|a| a.iter().any(|p| matches!(p, Protocol::P2p(id) if id == me)))
            {
                return Err(ConfigError::new(
                    "LATTICE_BOOTSTRAP",
                    &own.to_string(),
                    "names this node's own PeerId; was LATTICE_P2P_KEY copied from another node's env file? (each node needs its own: lattice keygen --force)",
                ));
            }
        }

        let http_listen_text =
            get("LATTICE_HTTP_LISTEN").unwrap_or_else(|| DEFAULT_HTTP_LISTEN.into());
        let http_listen = http_listen_text.trim().parse::<SocketAddr>().map_err(|_| {
            ConfigError::new(
                "LATTICE_HTTP_LISTEN",
                &http_listen_text,
                "is not an address:port such as 127.0.0.1:8000",
            )
        })?;

        let http_neighbors = list(get("LATTICE_HTTP_NEIGHBORS").as_deref().unwrap_or(""))
            .map(|s| parse_neighbor("LATTICE_HTTP_NEIGHBORS", s))
            .collect::<Result<Vec<_>, _>>()?;

        let api_token = get("LATTICE_API_TOKEN")
            .map(|v| {
                let t = v.trim();
                if t.chars().count() < 16 || t.chars().any(|c| c.is_whitespace() || c.is_control())
                {
                    Err(ConfigError::secret(
                        "LATTICE_API_TOKEN",
                        &v,
                        "is too weak; expected at least 16 characters without spaces",
                    ))
                } else {
                    Ok(Secret(t.to_string()))
                }
            })
            .transpose()?;

        let data_dir = match &overrides.data_dir {
            Some(d) => d.clone(),
            None => get("LATTICE_DATA_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(default_data_dir),
        };

        let mode = match get("LATTICE_MODE") {
            Some(v) => v
                .parse::<Mode>()
                .map_err(|expected| ConfigError::new("LATTICE_MODE", &v, expected))?,
            None => Mode::Auto,
        };

        let heartbeat = duration(&get, "LATTICE_HEARTBEAT", "5s")?;
        let peer_timeout = match get("LATTICE_PEER_TIMEOUT") {
            None => heartbeat * 3,
            Some(v) => {
                let d = duration(&get, "LATTICE_PEER_TIMEOUT", "")?;
                if d < heartbeat {
                    return Err(ConfigError::new(
                        "LATTICE_PEER_TIMEOUT",
                        &v,
                        format!(
                            "is shorter than LATTICE_HEARTBEAT ({}); a peer needs at least one heartbeat to answer (the default is three)",
                            humantime::format_duration(heartbeat)
                        ),
                    ));
                }
                d
            }
        };
        let fallback_after = duration(&get, "LATTICE_FALLBACK_AFTER", "60s")?;
        let http_poll = duration(&get, "LATTICE_HTTP_POLL", "10s")?;

        let max_payload = match get("LATTICE_MAX_PAYLOAD") {
            Some(v) => parse_size(&v)
                .filter(|n| (1..=16 * 1024 * 1024).contains(n))
                .ok_or_else(|| {
                    ConfigError::new(
                        "LATTICE_MAX_PAYLOAD",
                        &v,
                        "is not a size between 1 byte and 16MiB, such as 65536 or 64KiB",
                    )
                })?,
            None => DEFAULT_MAX_PAYLOAD,
        };

        let peer_rate = match get("LATTICE_PEER_RATE") {
            Some(v) => PeerRate::parse(&v).ok_or_else(|| {
                ConfigError::new(
                    "LATTICE_PEER_RATE",
                    &v,
                    "is not RATE or RATE:BURST (entries per second, burst at least the rate, both at most 1000000), such as 100 or 100:500; 0 turns the limit off",
                )
            })?,
            None => Some(PeerRate::DEFAULT),
        };

        let p2p_allow = get("LATTICE_P2P_ALLOW")
            .map(|v| {
                list(&v)
                    .map(|p| {
                        p.parse::<libp2p_identity::PeerId>().map_err(|_| {
                            ConfigError::new(
                                "LATTICE_P2P_ALLOW",
                                p,
                                "is not a PeerId such as 12D3KooW...",
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        let p2p_psk = get("LATTICE_P2P_PSK")
            .map(|v| {
                hex::decode(v.trim())
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| {
                        ConfigError::secret(
                            "LATTICE_P2P_PSK",
                            &v,
                            "is not 64 hex characters (a 32-byte key)",
                        )
                    })
            })
            .transpose()?;
        let mdns = flag(&get, "LATTICE_MDNS", false)?;
        let upnp = flag(&get, "LATTICE_UPNP", false)?;
        let autonat_global_only = flag(&get, "LATTICE_AUTONAT_GLOBAL_ONLY", true)?;
        let relays = list(get("LATTICE_RELAYS").as_deref().unwrap_or(""))
            .map(|s| parse_relay("LATTICE_RELAYS", s))
            .collect::<Result<Vec<_>, _>>()?;

        let node_name = get("LATTICE_NODE_NAME")
            .map(|v| parse_node_name("LATTICE_NODE_NAME", &v))
            .transpose()?
            .flatten();

        let ledger = get("LATTICE_LEDGER")
            .map(|v| {
                v.trim().parse::<LedgerId>().map_err(|_| {
                    ConfigError::new(
                        "LATTICE_LEDGER",
                        &v,
                        "is not a ledger id (64 lowercase hex characters, as `lattice init` prints)",
                    )
                })
            })
            .transpose()?;
        let genesis = match (get("LATTICE_GENESIS"), ledger) {
            (None, _) => None,
            (Some(v), None) => {
                return Err(ConfigError::new(
                    "LATTICE_GENESIS",
                    &v,
                    "is set without LATTICE_LEDGER, the ledger id it must match; set both, as `lattice init` writes them",
                ));
            }
            (Some(v), Some(id)) => Some(Genesis::from_base64_for(&v, id).map_err(|e| {
                ConfigError::new("LATTICE_GENESIS", &v, format!("is refused: {e}"))
            })?),
        };

        Ok(Config {
            ledger,
            genesis,
            node_name,
            p2p_allow,
            p2p_psk,
            mdns,
            key,
            p2p_listen,
            bootstrap,
            http_listen,
            http_neighbors,
            api_token,
            data_dir,
            mode,
            heartbeat,
            peer_timeout,
            fallback_after,
            http_poll,
            max_payload,
            relays,
            upnp,
            autonat_global_only,
            peer_rate,
        })
    }
}

fn flag(
    get: &impl Fn(&str) -> Option<String>,
    var: &str,
    default: bool,
) -> Result<bool, ConfigError> {
    match get(var) {
        None => Ok(default),
        Some(v) => match v.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(ConfigError::new(var, &v, "is not true or false")),
        },
    }
}

/// A relay address: where to reach it (TCP or QUIC, IP or DNS name) and its PeerId,
/// and not itself a circuit.
fn parse_relay(var: &str, s: &str) -> Result<Multiaddr, ConfigError> {
    let expected =
        "is not a relay multiaddr such as /dns4/relay.example.org/tcp/7600/p2p/<relay peer id>";
    let addr = parse_bootstrap(var, s).map_err(|_| ConfigError::new(var, s, expected))?;
    if addr.iter().any(|p| matches!(p, Protocol::P2pCircuit)) {
        return Err(ConfigError::new(
            var,
            s,
            "is a circuit address; name the relay itself",
        ));
    }
    Ok(addr)
}

/// A per-peer limit on unsolicited entries: a token bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerRate {
    pub per_second: u32,
    pub burst: u32,
}

impl PeerRate {
    pub const DEFAULT: PeerRate = PeerRate {
        per_second: 100,
        burst: 500,
    };
    const MAX: u32 = 1_000_000;

    /// `RATE` (burst five times the rate) or `RATE:BURST`; `0` is no limit (`None`).
    fn parse(text: &str) -> Option<Option<PeerRate>> {
        let text = text.trim();
        if text == "0" {
            return Some(None);
        }
        let (rate, burst) = match text.split_once(':') {
            Some((r, b)) => (
                r.trim().parse::<u32>().ok()?,
                Some(b.trim().parse::<u32>().ok()?),
            ),
            None => (text.parse::<u32>().ok()?, None),
        };
        let burst = burst.unwrap_or(rate.saturating_mul(5).min(Self::MAX));
        if rate == 0 || rate > Self::MAX || burst < rate || burst > Self::MAX {
            return None;
        }
        Some(Some(PeerRate {
            per_second: rate,
            burst,
        }))
    }
}

/// Most characters in `LATTICE_NODE_NAME`: it must fit a circle's label.
pub const MAX_NODE_NAME: usize = 64;

/// A node name: trimmed, empty is none, at most [`MAX_NODE_NAME`] characters, none of
/// them a control character (a name is printed in logs, terminals and the window).
fn parse_node_name(var: &str, value: &str) -> Result<Option<String>, ConfigError> {
    let name = value.trim();
    if name.is_empty() {
        return Ok(None);
    }
    match node_name_problem(name) {
        Some(problem) => Err(ConfigError::new(var, value, problem)),
        None => Ok(Some(name.to_string())),
    }
}

/// Why `name` cannot be a node name, if it cannot: also applied to the names neighbours
/// announce, which faces print too.
pub fn node_name_problem(name: &str) -> Option<String> {
    let count = name.chars().count();
    if count > MAX_NODE_NAME {
        return Some(format!(
            "is {count} characters long; at most {MAX_NODE_NAME}"
        ));
    }
    if name.trim() != name || name.is_empty() {
        return Some("is empty or starts or ends with spaces".into());
    }
    name.chars()
        .find(|c| c.is_control())
        .map(|c| format!("contains the control character {c:?}; only printable characters"))
}

/// `$XDG_DATA_HOME/lattice` (or the platform's equivalent), else `./lattice-data`.
pub fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .map(|d| d.join("lattice"))
        .unwrap_or_else(|| PathBuf::from("lattice-data"))
}

fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn duration(
    get: &impl Fn(&str) -> Option<String>,
    var: &str,
    default: &str,
) -> Result<Duration, ConfigError> {
    let text = get(var).unwrap_or_else(|| default.to_string());
    match humantime::parse_duration(text.trim()) {
        Ok(d) if !d.is_zero() && d <= Duration::from_secs(7 * 24 * 3600) => Ok(d),
        _ => Err(ConfigError::new(
            var,
            &text,
            "is not a duration between 1ms and 7 days, such as 250ms, 5s or 2m",
        )),
    }
}

fn parse_size(text: &str) -> Option<usize> {
    let t = text.trim();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: usize = digits.parse().ok()?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "k" => 1024,
        "mib" | "m" => 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(mult)
}

fn parse_listen_addr(var: &str, s: &str) -> Result<Multiaddr, ConfigError> {
    let addr: Multiaddr = s.parse().map_err(|_| {
        ConfigError::new(var, s, "is not a multiaddr such as /ip4/0.0.0.0/tcp/7600")
    })?;
    let has_transport = addr
        .iter()
        .any(|p| matches!(p, Protocol::Tcp(_) | Protocol::QuicV1));
    if !has_transport || addr.iter().any(|p| matches!(p, Protocol::P2p(_))) {
        return Err(ConfigError::new(
            var,
            s,
            "is not a listen multiaddr with /tcp/ or /udp/../quic-v1 and no /p2p/ part",
        ));
    }
    Ok(addr)
}

fn parse_bootstrap(var: &str, s: &str) -> Result<Multiaddr, ConfigError> {
    let expected = "is not a multiaddr with a /p2p/ peer id";
    let addr: Multiaddr = s.parse().map_err(|_| ConfigError::new(var, s, expected))?;
    match addr.iter().last() {
        Some(Protocol::P2p(_)) if addr.iter().count() > 1 => Ok(addr),
        _ => Err(ConfigError::new(var, s, expected)),
    }
}

fn parse_neighbor(var: &str, s: &str) -> Result<Url, ConfigError> {
    let expected = "is not a base URL such as http://127.0.0.1:8001 (without user:password@)";
    // Never echo credentials someone put in a URL.
    let shown = match (s.find("://"), s.rfind('@')) {
        (Some(a), Some(b)) if b > a => format!("{}://<redacted>@{}", &s[..a], &s[b + 1..]),
        _ => s.to_string(),
    };
    let s_shown = shown.as_str();
    let mut url = Url::parse(s).map_err(|_| ConfigError::new(var, s_shown, expected))?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host().is_none()
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(ConfigError::new(var, s_shown, expected));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// Writes `LATTICE_P2P_KEY=<key>` into the env file at `path` (mode 0600 on Unix),
/// keeping every other line. Refuses to replace an existing key unless `force`.
/// Returns the PeerId of the key that was replaced, if any.
pub fn write_key_to_env_file(
    path: &Path,
    key: &NodeKey,
    force: bool,
) -> Result<Option<String>, KeygenError> {
    let io = |source| KeygenError::Io {
        path: path.to_owned(),
        source,
    };
    let existing = envfile::read(path).map_err(io)?;
    let old_peer = envfile::value_of(&existing, "LATTICE_P2P_KEY").map(|v| {
        NodeKey::from_base64(&v)
            .map_or_else(|_| "an unreadable key".into(), |k| k.peer_id().to_string())
    });
    if let Some(peer) = &old_peer
        && !force
    {
        return Err(KeygenError::KeyExists {
            path: path.to_owned(),
            peer: peer.clone(),
        });
    }
    let text = envfile::with_vars(&existing, &[("LATTICE_P2P_KEY", key.to_base64())]);
    envfile::write_private(path, &text).map_err(io)?;
    Ok(old_peer)
}

/// Sets each `(variable, value)` in the env file at `path` (mode 0600), keeping every
/// other line: an existing line of the variable is replaced, later repeats commented out.
/// Refuses (changing nothing) when `guard` already has a value there, unless `force`.
pub fn set_env_vars(
    path: &Path,
    vars: &[(&str, String)],
    guard: &str,
    force: bool,
) -> Result<(), InitError> {
    let io = |source| InitError::Io {
        path: path.to_owned(),
        source,
    };
    let existing = envfile::read(path).map_err(io)?;
    if !force && envfile::value_of(&existing, guard).is_some() {
        return Err(InitError::Exists {
            path: path.to_owned(),
            var: guard.to_string(),
        });
    }
    envfile::write_private(path, &envfile::with_vars(&existing, vars)).map_err(io)
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{path} already sets {var}; pass --force to replace it", path = .path.display())]
    Exists { path: PathBuf, var: String },
    #[error("{path}: {source}", path = .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum KeygenError {
    #[error("{path} already holds a key (PeerId {peer}); pass --force to replace it", path = .path.display())]
    KeyExists { path: PathBuf, peer: String },
    #[error("{path}: {source}", path = .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Key(#[from] crate::identity::KeyError),
}

#[cfg(test)]
mod tests;

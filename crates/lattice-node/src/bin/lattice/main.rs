//! `lattice`: the command-line face of a Lattice node.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context as _, anyhow};
use clap::{Parser, Subcommand};
use lattice_node::NodeKey;
use lattice_node::config::Mode;
use lattice_node::time::now_ms;

mod members;
mod online;
mod peers;
use lattice_node::config::{self, Config, ConfigError, Overrides};
use lattice_node::ledger::{
    Entry, EntryId, Genesis, Ledger, Store, StoreOptions, verify_inclusion,
};

/// Lattice keeps a signed, Merkle-rooted ledger identical on many machines.
///
/// Configuration comes from the environment and a `.env` file (values in the file win;
/// flags win over both). See `.env.example` for every variable.
#[derive(Debug, Parser)]
#[command(name = "lattice", version, propagate_version = true)]
struct Cli {
    /// The .env file to load (default: $LATTICE_ENV_FILE, else ./.env). A missing file is fine.
    #[arg(long, global = true, value_name = "FILE")]
    env_file: Option<PathBuf>,
    /// The data directory holding the ledger (overrides LATTICE_DATA_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the node: the heartbeat, the HTTP lung and the HTTP API on LATTICE_HTTP_LISTEN.
    /// Logs to stdout (RUST_LOG is respected); stops gracefully on Ctrl-C or SIGTERM.
    Node,
    /// Run a relay for nodes behind NATs, on LATTICE_P2P_LISTEN: it relays circuits so
    /// two nodes that cannot dial each other meet and hole punch, and tells nodes whether
    /// they are publicly reachable (AutoNAT). It holds no ledger and never syncs. With
    /// LATTICE_P2P_ALLOW set, only those peers may use it. Clients name it in
    /// LATTICE_RELAYS as one of the addresses it prints.
    Relay,
    /// Show a running node's status (mode, lung, peers, fallback timer, root, neighbours).
    Status {
        /// The node's base URL (default: http://LATTICE_HTTP_LISTEN).
        #[arg(long)]
        url: Option<String>,
        /// Print the raw JSON status.
        #[arg(long)]
        json: bool,
    },
    /// Switch a running node's sync mode: auto, p2p or http.
    Switch {
        mode: Mode,
        /// The node's base URL (default: http://LATTICE_HTTP_LISTEN).
        #[arg(long)]
        url: Option<String>,
    },
    /// Start N nodes in this process on loopback, connected over P2P, each with its own
    /// HTTP API on a printed port. Without --script it runs until Ctrl-C for dashboards,
    /// curl and `lattice p2p block|unblock`; with --script it plays the whole story
    /// (gossip, P2P cut, countdown, HTTP takeover, recovery) and exits 0 only if every
    /// step happened and all roots ended equal.
    Demo {
        /// How many nodes.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(2..=32))]
        nodes: u16,
        /// Compressed timers: heartbeat 500ms, fallback 6s, poll 1s.
        #[arg(long)]
        fast: bool,
        /// Play the story unattended and print a verdict.
        #[arg(long)]
        script: bool,
    },
    /// Cut P2P on a running node for real (close every connection, refuse new ones) or
    /// restore it. Needs LATTICE_API_TOKEN when the node has one.
    P2p {
        action: P2pAction,
        /// The node's base URL (default: http://LATTICE_HTTP_LISTEN).
        #[arg(long)]
        url: Option<String>,
    },
    /// Generate the node's ed25519 key, write it to the env file (mode 0600) as
    /// LATTICE_P2P_KEY, and print its PeerId.
    Keygen {
        /// Replace a key the env file already holds.
        #[arg(long)]
        force: bool,
    },
    /// Create a ledger of your own: a genesis record naming who may write (this node's
    /// key and every --author), signed by this node's key (created when the env file has
    /// none). Prints the ledger id and writes LATTICE_LEDGER and LATTICE_GENESIS to the
    /// env file: copy those two lines to every node of the ledger.
    Init {
        /// The ledger's name (1 to 64 printable characters), e.g. "branch-ledger".
        #[arg(long)]
        name: String,
        /// The PeerId of another node allowed to write (repeat for each).
        #[arg(long = "author", value_name = "PEER_ID")]
        authors: Vec<String>,
        /// Replace a ledger the env file already names.
        #[arg(long)]
        force: bool,
    },
    /// Sign a JSON payload with the node key and append it to the local ledger; prints
    /// the entry's id and the new Merkle root.
    Put {
        /// The payload, as JSON text, e.g. '{"amount": 12, "to": "acme"}'.
        json: String,
        /// Send it to the running node at this base URL (which signs it with its key)
        /// instead of writing the local data directory.
        #[arg(long)]
        url: Option<String>,
    },
    /// The ledger's membership: `list`, or `add|remove <PEER_ID>` (signed with this
    /// node's key, which must be an administrator of the ledger).
    Members {
        #[command(subcommand)]
        action: members::MembersCommand,
    },
    /// P2P admission on a running node: `list` peers (pending ones wait for a
    /// decision), `accept <PEER_ID>` or `ignore <PEER_ID>`. Needs LATTICE_API_TOKEN
    /// when the node has one.
    Peers {
        #[command(subcommand)]
        action: peers::PeersCommand,
        /// The node's base URL (default: http://LATTICE_HTTP_LISTEN).
        #[arg(long, global = true)]
        url: Option<String>,
    },
    /// Print the local ledger's Merkle root (lowercase hex).
    Root,
    /// List the most recently stored entries, newest first.
    List {
        /// How many entries to show.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// One JSON entry per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print every entry, oldest first, one JSON entry per line (the format `import` reads).
    Export,
    /// Verify and append entries from FILE (or stdin): JSON lines as `export` writes them,
    /// or one JSON array. Every entry is checked before any is stored: if one is bad,
    /// nothing changes.
    Import {
        /// The file to read; `-` or nothing reads stdin.
        file: Option<PathBuf>,
    },
    /// Print the inclusion proof of an entry against the current root, as JSON.
    Proof {
        /// The entry id (64 lowercase hex characters).
        id: String,
    },
    /// Re-check every stored entry (id, signature, size) and the Merkle root.
    Verify,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum P2pAction {
    /// Close every P2P connection and refuse new ones.
    Block,
    /// Accept P2P connections again and redial peers.
    Unblock,
}

/// How a command failed, which decides the exit status.
pub(crate) enum Failure {
    /// Bad configuration or usage: exit status 2.
    Config(String),
    /// Anything else: exit status 1.
    Other(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Other(e)
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Failure::Config(e.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Config(msg)) => {
            eprintln!("lattice: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Other(e)) => {
            eprintln!("lattice: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    let overrides = Overrides {
        env_file: cli.env_file.clone(),
        data_dir: cli.data_dir.clone(),
    };
    // Before any thread starts: this writes the process environment.
    let loaded = config::load_env_file(&overrides)?;
    init_logging(matches!(
        cli.command,
        Command::Node | Command::Relay | Command::Demo { script: false, .. }
    ));
    match &loaded {
        Some(path) => tracing::info!("loaded env file {}", path.display()),
        None => tracing::info!(
            "no env file at {}; using the environment only",
            config::env_file_path(&overrides).display()
        ),
    }
    let config = match (Config::from_env(&overrides), &cli.command) {
        (Ok(c), _) => c,
        // A broken key is exactly what `keygen --force` is for.
        (Err(e), Command::Keygen { force: true }) if e.var == "LATTICE_P2P_KEY" => {
            return keygen(&overrides, true);
        }
        (Err(e), _) => return Err(e.into()),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match cli.command {
        Command::Node => online::run_node(config),
        Command::Relay => online::run_relay(config),
        Command::Demo {
            nodes,
            fast,
            script,
        } => online::demo(nodes as usize, fast, script),
        Command::Status { url, json } => {
            runtime.block_on(online::status(&config, url.as_deref(), json))
        }
        Command::Switch { mode, url } => {
            runtime.block_on(online::switch(&config, mode, url.as_deref()))
        }
        Command::P2p { action, url } => runtime.block_on(online::p2p(
            &config,
            matches!(action, P2pAction::Block),
            url.as_deref(),
        )),
        Command::Keygen { force } => keygen(&overrides, force),
        Command::Init {
            name,
            authors,
            force,
        } => init(&overrides, &config, &name, &authors, force),
        Command::Put {
            json,
            url: Some(url),
        } => {
            let payload = lattice_node::ledger::parse_payload(&json)
                .map_err(|e| anyhow!("the payload is refused: {e}"))?;
            runtime.block_on(online::put(&config, payload, &url))
        }
        Command::Put { json, url: None } => runtime.block_on(put(&config, &json)),
        Command::Members { action } => runtime.block_on(members::run(&config, action)),
        Command::Peers { action, url } => {
            runtime.block_on(peers::run(&config, action, url.as_deref()))
        }
        Command::Root => root(&config),
        Command::List { limit, json } => list(&config, limit, json),
        Command::Export => export(&config),
        Command::Import { file } => runtime.block_on(import(&config, file)),
        Command::Proof { id } => proof(&config, &id),
        Command::Verify => verify(&config),
    }
}

/// The node logs to stdout at `info`; one-shot commands keep stdout for their answer
/// and log warnings to stderr. `RUST_LOG` overrides either.
fn init_logging(node: bool) {
    let default = if node { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal as _;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if node {
        let ansi = std::io::stdout().is_terminal();
        builder.with_ansi(ansi).with_writer(std::io::stdout).init();
    } else {
        let ansi = std::io::stderr().is_terminal();
        builder.with_ansi(ansi).with_writer(std::io::stderr).init();
    }
}

/// The ledger an offline command writes: the configured genesis, the one the data
/// directory keeps, or the development ledger when none is configured.
fn store_options(config: &Config) -> anyhow::Result<StoreOptions> {
    let genesis = match (config.ledger, &config.genesis) {
        (None, _) => Genesis::development(),
        (Some(_), Some(g)) => g.clone(),
        (Some(id), None) => {
            let recorded = lattice_node::ledger::store::recorded_genesis(&config.data_dir)?
                .ok_or_else(|| {
                    anyhow!(
                        "LATTICE_LEDGER is {id} but neither LATTICE_GENESIS nor the data directory {} holds its genesis record; set LATTICE_GENESIS as `lattice init` wrote it",
                        config.data_dir.display()
                    )
                })?;
            Genesis::from_base64_for(&recorded, id)?
        }
    };
    Ok(StoreOptions {
        max_payload: config.max_payload,
        ledger: std::sync::Arc::new(Ledger::new(genesis)),
        ..StoreOptions::default()
    })
}

fn init(
    overrides: &Overrides,
    config: &Config,
    name: &str,
    authors: &[String],
    force: bool,
) -> Result<(), Failure> {
    let path = config::env_file_path(overrides);
    let mut keys = Vec::with_capacity(authors.len() + 1);
    for a in authors {
        let key = members::ed25519_key_of(a).ok_or_else(|| {
            Failure::Config(format!(
                "--author {a:?} is not the PeerId of an ed25519 key (`lattice keygen` prints one)"
            ))
        })?;
        keys.push(key);
    }
    if config.ledger.is_some() && !force {
        return Err(Failure::Config(format!(
            "{} already sets LATTICE_LEDGER; pass --force to replace it",
            path.display()
        )));
    }
    let (key, new_key) = match &config.key {
        Some(k) => (k.clone(), false),
        None => (NodeKey::generate().map_err(|e| anyhow!(e))?, true),
    };
    keys.push(key.public_bytes());
    let genesis = Genesis::sign(&key, name, false, &keys, &[], now_ms())
        .map_err(|e| Failure::Config(e.to_string()))?;
    if new_key {
        config::write_key_to_env_file(&path, &key, false).map_err(|e| anyhow!(e))?;
    }
    config::set_env_vars(
        &path,
        &[
            ("LATTICE_LEDGER", genesis.id().to_hex()),
            ("LATTICE_GENESIS", genesis.to_base64()),
        ],
        "LATTICE_LEDGER",
        force,
    )
    .map_err(|e| match e {
        config::InitError::Exists { .. } => Failure::Config(e.to_string()),
        e => Failure::Other(anyhow!(e)),
    })?;
    println!("{}", genesis.id());
    eprintln!(
        "ledger {name:?}: {} authors, founded by this node ({}){}",
        genesis.authors().count(),
        key.peer_id(),
        if new_key {
            "; a new node key was written as LATTICE_P2P_KEY"
        } else {
            ""
        }
    );
    eprintln!(
        "wrote LATTICE_LEDGER and LATTICE_GENESIS to {} (mode 0600); give every node of this ledger those two lines (never LATTICE_P2P_KEY: each node has its own)",
        path.display()
    );
    Ok(())
}

fn keygen(overrides: &Overrides, force: bool) -> Result<(), Failure> {
    let path = config::env_file_path(overrides);
    let key = NodeKey::generate().map_err(|e| anyhow!(e))?;
    match config::write_key_to_env_file(&path, &key, force) {
        Ok(replaced) => {
            if let Some(old) = replaced {
                eprintln!("replaced the key of {old}");
            }
            println!("{}", key.peer_id());
            eprintln!("wrote LATTICE_P2P_KEY to {} (mode 0600)", path.display());
            Ok(())
        }
        Err(e @ config::KeygenError::KeyExists { .. }) => Err(Failure::Config(e.to_string())),
        Err(e) => Err(anyhow!(e).into()),
    }
}

async fn put(config: &Config, json: &str) -> Result<(), Failure> {
    let key = config.key.as_ref().ok_or_else(|| {
        Failure::Config(
            "LATTICE_P2P_KEY: is not set; run `lattice keygen` to create the node key".into(),
        )
    })?;
    let payload = lattice_node::ledger::parse_payload(json)
        .map_err(|e| anyhow!("the payload is refused: {e}"))?;
    let entry = Entry::sign(key, now_ms(), &payload, config.max_payload).map_err(|e| anyhow!(e))?;
    let store = Store::open(&config.data_dir, store_options(config)?).map_err(|e| anyhow!(e))?;
    let result = store.append(entry).await;
    tokio::task::spawn_blocking(move || store.close())
        .await
        .context("closing the store")?;
    let appended = result.map_err(|e| anyhow!(e))?;
    let note = if appended.inserted {
        ""
    } else {
        " (already present)"
    };
    println!("id      {}{note}", appended.id);
    println!("root    {}", hex::encode(appended.root));
    println!("entries {}", appended.count);
    Ok(())
}

fn open_read_only(config: &Config) -> anyhow::Result<Store> {
    Store::open_read_only(&config.data_dir, store_options(config)?)
        .with_context(|| format!("reading the ledger in {}", config.data_dir.display()))
}

fn root(config: &Config) -> Result<(), Failure> {
    println!("{}", hex::encode(open_read_only(config)?.root()));
    Ok(())
}

fn list(config: &Config, limit: usize, json: bool) -> Result<(), Failure> {
    let store = open_read_only(config)?;
    for entry in store.latest(limit).map_err(|e| anyhow!(e))? {
        if json {
            println!("{}", entry.to_json());
            continue;
        }
        let when = UNIX_EPOCH + Duration::from_millis(entry.created_at());
        let mut payload = entry.payload_json().to_string();
        if payload.chars().count() > 60 {
            payload = format!("{}...", payload.chars().take(57).collect::<String>());
        }
        let author = entry.author();
        let short_author = &author[author.len().saturating_sub(8)..];
        println!(
            "{}  {}  ..{short_author}  {payload}",
            entry.id(),
            humantime::format_rfc3339_millis(when),
        );
    }
    Ok(())
}

fn export(config: &Config) -> Result<(), Failure> {
    use std::io::Write as _;
    let store = open_read_only(config)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    store.for_each(|entry| -> anyhow::Result<()> {
        writeln!(out, "{}", entry.to_json()).context("writing to stdout")
    })?;
    out.flush().context("writing to stdout")?;
    Ok(())
}

/// Parses and verifies every entry in `text`; the first bad one fails the whole import.
fn parse_entries(text: &str, max_payload: usize) -> anyhow::Result<Vec<Entry>> {
    if text.trim_start().starts_with('[') {
        let items: Vec<Box<serde_json::value::RawValue>> =
            serde_json::from_str(text).context("the input is not a JSON array of entries")?;
        return items
            .iter()
            .enumerate()
            .map(|(i, raw)| {
                Entry::from_json(raw.get(), max_payload)
                    .map_err(|e| anyhow!("entry {} of the array: {e}", i + 1))
            })
            .collect();
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, line)| {
            Entry::from_json(line, max_payload).map_err(|e| anyhow!("line {}: {e}", n + 1))
        })
        .collect()
}

async fn import(config: &Config, file: Option<PathBuf>) -> Result<(), Failure> {
    use std::io::Read as _;
    let text = match file.as_deref() {
        None => read_stdin()?,
        Some(p) if p.as_os_str() == "-" => read_stdin()?,
        Some(p) => {
            let mut text = String::new();
            std::fs::File::open(p)
                .and_then(|mut f| f.read_to_string(&mut text))
                .with_context(|| format!("reading {}", p.display()))?;
            text
        }
    };
    let entries = parse_entries(&text, config.max_payload)?;
    let store = Store::open(&config.data_dir, store_options(config)?).map_err(|e| anyhow!(e))?;
    let result = store.append_batch(entries).await;
    let root = store.root();
    tokio::task::spawn_blocking(move || store.close())
        .await
        .context("closing the store")?;
    let appended = result.map_err(|e| anyhow!(e))?;
    let new = appended.iter().filter(|a| a.inserted).count();
    println!(
        "imported {new} new of {} entries; root {}",
        appended.len(),
        hex::encode(root)
    );
    Ok(())
}

fn read_stdin() -> anyhow::Result<String> {
    use std::io::Read as _;
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("reading stdin")?;
    Ok(text)
}

fn proof(config: &Config, id: &str) -> Result<(), Failure> {
    let id: EntryId = id.trim().parse().map_err(|e| anyhow!("{e}"))?;
    let store = open_read_only(config)?;
    let proof = store.prove(&id).ok_or_else(|| {
        anyhow!(
            "entry {id} is not in the ledger in {}",
            config.data_dir.display()
        )
    })?;
    debug_assert!(verify_inclusion(&proof.root, &proof.id, &proof.steps));
    println!(
        "{}",
        serde_json::to_string_pretty(&proof).context("encoding the proof")?
    );
    Ok(())
}

fn verify(config: &Config) -> Result<(), Failure> {
    let store = open_read_only(config)?;
    let report = store.verify_all().map_err(|e| anyhow!(e))?;
    if report.problems.is_empty() {
        println!(
            "ok: {} entries verified; root {}",
            report.entries,
            hex::encode(report.root)
        );
        return Ok(());
    }
    for p in &report.problems {
        eprintln!("problem: {p}");
    }
    Err(anyhow!(
        "{} problem(s) in {} entries",
        report.problems.len(),
        report.entries
    )
    .into())
}

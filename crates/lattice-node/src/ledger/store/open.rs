//! Opening a store: what the open found (`OpenReport`), the checks it runs (layout,
//! integrity, which ledger the directory holds) and the Merkle tree rebuilt from the rows.

use std::path::Path;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::{DB_FILE, StoreError, schema, sqlite};
use crate::ledger::entry::EntryId;
use crate::ledger::genesis::{Genesis, LedgerId};
use crate::ledger::merkle::Merkle;

/// What opening the store found, and how long it took.
#[derive(Clone, Debug)]
pub struct OpenReport {
    pub path: PathBuf,
    pub entries: usize,
    /// Whether the full integrity check (`PRAGMA quick_check`) ran: it is skipped only
    /// when the last session closed cleanly and nothing was written since.
    pub integrity_checked: bool,
    /// Time spent on the integrity check (zero when skipped).
    pub integrity: Duration,
    pub rebuild: Duration,
    /// The layout version migrated from at this open, if any.
    pub migrated_from: Option<i64>,
}

impl OpenReport {
    pub(super) fn new(
        path: &Path,
        tree: &Merkle,
        integrity: Option<Duration>,
        rebuild: Duration,
        migrated_from: Option<i64>,
    ) -> Self {
        OpenReport {
            path: path.to_path_buf(),
            entries: tree.len(),
            integrity_checked: integrity.is_some(),
            integrity: integrity.unwrap_or_default(),
            rebuild,
            migrated_from,
        }
    }
}

/// Records the ledger in a directory that has none yet, or refuses a directory of another
/// ledger. A directory with entries but no record predates ledger identities: it holds
/// the development ledger.
pub(super) fn check_ledger(
    conn: &Connection,
    dir: &Path,
    path: &Path,
    genesis: &Genesis,
) -> Result<(), StoreError> {
    let err = sqlite(path);
    let recorded: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'ledger'", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(&err)?;
    let dir_ledger = match recorded {
        Some(text) => text.parse::<LedgerId>().map_err(|e| StoreError::Corrupt {
            path: path.to_owned(),
            detail: format!("the recorded ledger: {e}"),
        })?,
        None => {
            let entries: i64 = conn
                .query_row("SELECT count(*) FROM entries", [], |r| r.get(0))
                .map_err(&err)?;
            let dev = Genesis::development().id();
            if entries > 0 && genesis.id() != dev {
                dev
            } else {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('ledger', ?1), ('genesis', ?2)",
                    params![genesis.id().to_hex(), genesis.to_base64()],
                )
                .map_err(&err)?;
                genesis.id()
            }
        }
    };
    if dir_ledger != genesis.id() {
        return Err(StoreError::OtherLedger {
            dir: dir.to_owned(),
            dir_ledger,
            ours: genesis.id(),
        });
    }
    Ok(())
}

/// The genesis record a data directory keeps (base64), if it has one: a node configured
/// with only `LATTICE_LEDGER` uses it after its first start. Reads without the lock.
pub fn recorded_genesis(dir: &Path) -> Result<Option<String>, StoreError> {
    let path = dir.join(DB_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let err = sqlite(&path);
    let conn =
        Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(&err)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(&err)?;
    let has_meta: bool = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map_err(&err)?
        > 0;
    if !has_meta {
        return Ok(None);
    }
    conn.query_row("SELECT value FROM meta WHERE key = 'genesis'", [], |r| {
        r.get(0)
    })
    .optional()
    .map_err(&err)
}

/// The layout found (a newer one than this build knows is refused) and, unless the last
/// session closed cleanly, how long the integrity check took.
pub(super) fn inspect(
    conn: &Connection,
    path: &Path,
) -> Result<(schema::Found, Option<Duration>), StoreError> {
    let found = schema::inspect(conn).map_err(sqlite(path))?;
    if found.version > schema::VERSION {
        return Err(StoreError::NewerLayout {
            path: path.to_path_buf(),
            version: found.version,
        });
    }
    let integrity = (!found.clean)
        .then(|| integrity_check(conn, path))
        .transpose()?;
    Ok((found, integrity))
}

/// `PRAGMA quick_check`: a full pass over the file.
fn integrity_check(conn: &Connection, path: &Path) -> Result<Duration, StoreError> {
    let started = Instant::now();
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(sqlite(path))?;
    if check != "ok" {
        return Err(StoreError::Corrupt {
            path: path.to_owned(),
            detail: check,
        });
    }
    Ok(started.elapsed())
}

/// Rebuilds the tree (with each id's row) from the database.
pub(super) fn load(conn: &Connection, path: &Path) -> Result<(Merkle, Duration), StoreError> {
    let started = Instant::now();
    let ids = read_ids(conn).map_err(sqlite(path))?;
    Ok((Merkle::from_ids_with_seq(ids), started.elapsed()))
}

pub(super) fn read_ids(conn: &Connection) -> rusqlite::Result<Vec<(EntryId, u64)>> {
    let count: i64 = conn.query_row("SELECT max(seq) FROM entries", [], |r| {
        r.get::<_, Option<i64>>(0).map(|m| m.unwrap_or(0))
    })?;
    let mut ids = Vec::with_capacity(count.clamp(0, 1 << 26) as usize);
    let mut stmt = conn.prepare("SELECT seq, id FROM entries")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        let id = row.get_ref(1)?.as_blob()?;
        let id: [u8; 32] = id
            .try_into()
            .map_err(|_| rusqlite::Error::IntegralValueOutOfRange(1, id.len() as i64))?;
        ids.push((EntryId(id), seq as u64));
    }
    Ok(ids)
}

pub(super) fn log_open(report: &OpenReport) {
    tracing::info!(
        path = %report.path.display(),
        entries = report.entries,
        integrity_checked = report.integrity_checked,
        integrity_ms = report.integrity.as_millis() as u64,
        rebuild_ms = report.rebuild.as_millis() as u64,
        migrated_from = report.migrated_from,
        "opened ledger"
    );
}

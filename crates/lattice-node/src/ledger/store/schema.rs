//! The database's layout, its migrations, and the clean-close mark.
//!
//! Version 2 keys the entries table by its row number alone: rows are appended at the end
//! of one B-tree, so a commit rewrites a few pages at its tail. Version 1 also kept a
//! unique index on the id, a random key: every entry of a commit landed on a different
//! index page, each rewritten in full to the log and again at the checkpoint (about 70 KB
//! written per entry at a million entries). The ids live in the in-memory tree, which
//! also records each id's row, so lookups by id need no index on disk.
//!
//! The clean-close mark (a `meta` row) is written by the last commit of a clean close and
//! deleted by the first commit after an open, in the same transaction as that commit's
//! entries. An open reads it and writes nothing; while it is there the file is exactly as
//! a clean close left it, so the full integrity check can be skipped. Any crash after a
//! write finds it gone, and the check runs.

use rusqlite::{Connection, OptionalExtension, Transaction};

/// The layout this code writes.
pub const VERSION: i64 = 2;

/// The `meta` key of the clean-close mark.
const CLEAN_CLOSE: &str = "clean_close";

pub(super) const ENTRIES_V2: &str = "
CREATE TABLE IF NOT EXISTS entries (
    seq         INTEGER PRIMARY KEY,
    id          BLOB    NOT NULL CHECK (length(id) = 32),
    author      BLOB    NOT NULL CHECK (length(author) = 32),
    created_at  INTEGER NOT NULL,
    payload     TEXT    NOT NULL,
    signature   BLOB    NOT NULL CHECK (length(signature) = 64),
    received_at INTEGER NOT NULL
);
";

/// Which ledger the directory holds (`ledger` = its id, `genesis` = the record, base64),
/// so a node never mixes two ledgers in one directory; and the clean-close mark.
pub(super) const META_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

/// What the database was before [`prepare`] touched it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Found {
    /// The layout version found (0: a new, empty database).
    pub version: i64,
    /// Whether the last session closed cleanly and nothing was written since.
    pub clean: bool,
}

fn has_table(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// Reads the layout version and the clean-close mark. Writes nothing.
pub(super) fn inspect(conn: &Connection) -> rusqlite::Result<Found> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let version = if version == 0 && has_table(conn, "entries")? {
        1
    } else {
        version
    };
    let clean = has_table(conn, "meta")?
        && conn
            .query_row(
                "SELECT count(*) FROM meta WHERE key = ?1",
                [CLEAN_CLOSE],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            .unwrap_or(0)
            > 0;
    Ok(Found { version, clean })
}

/// Brings the database to [`VERSION`]: creates it when new, migrates an older layout in
/// one transaction (all or nothing), and leaves a current one untouched.
pub(super) fn prepare(conn: &mut Connection, found: Found) -> rusqlite::Result<()> {
    match found.version {
        VERSION => Ok(()),
        0 => {
            let tx = conn.transaction()?;
            tx.execute_batch(ENTRIES_V2)?;
            tx.execute_batch(META_SCHEMA)?;
            tx.pragma_update(None, "user_version", VERSION)?;
            tx.commit()
        }
        1 => {
            tracing::info!("migrating the ledger database from layout 1 to {VERSION}");
            let tx = conn.transaction()?;
            tx.execute_batch(&format!(
                "{}
                 INSERT INTO entries_v2 (seq, id, author, created_at, payload, signature, received_at)
                     SELECT seq, id, author, created_at, payload, signature, received_at
                     FROM entries ORDER BY seq;
                 DROP TABLE entries;
                 ALTER TABLE entries_v2 RENAME TO entries;
                 {META_SCHEMA}",
                ENTRIES_V2.replace("EXISTS entries", "EXISTS entries_v2")
            ))?;
            clear_clean_mark(&tx)?;
            tx.pragma_update(None, "user_version", VERSION)?;
            tx.commit()
        }
        // Refused before this is called (see `Store::open`).
        newer => Err(rusqlite::Error::IntegralValueOutOfRange(0, newer)),
    }
}

/// Called in the first write transaction after an open, so the mark goes with it.
pub(super) fn clear_clean_mark(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM meta WHERE key = ?1", [CLEAN_CLOSE])
        .map(|_| ())
}

/// Records a clean close: the last write of a session.
pub(super) fn set_clean_mark(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
        rusqlite::params![CLEAN_CLOSE, crate::time::now_ms().to_string()],
    )?;
    tx.commit()
}

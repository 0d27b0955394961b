//! The durable ledger: SQLite (WAL, `synchronous=FULL`) in the data directory, plus the
//! in-memory Merkle tree over what it holds.
//!
//! One writer thread owns the writing connection. Callers send it entries and wait; it
//! takes everything queued, commits it in one transaction (group commit: many writers,
//! one fsync) and only then answers. An entry is acknowledged only after its commit.
//! If a commit fails, the store stops accepting entries for good and says why: after a
//! failed fsync the state of the file is unknown, and pretending otherwise loses data.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::entry::{DEFAULT_MAX_PAYLOAD, Entry, EntryId};
use super::genesis::{Ledger, LedgerId, UnauthorizedAuthor};

mod evict;
mod open;
mod schema;
mod verify;
mod writer;
use super::merkle::{Hash, InclusionProof, Merkle, Prefix, Subtree};
use evict::{apply_evictions, evict, learn_records};
pub use open::{OpenReport, recorded_genesis};
use open::{check_ledger, inspect, load, log_open, read_ids};
pub use schema::VERSION as SCHEMA_VERSION;

pub const DB_FILE: &str = "ledger.db";
pub const LOCK_FILE: &str = "lattice.lock";

/// Requests waiting for the writer; senders wait (backpressure) beyond this.
const WRITE_QUEUE: usize = 1024;
/// Most entries committed in one transaction.
const MAX_GROUP: usize = 4096;
/// Committed batches buffered for slow subscribers before they see `Lagged`.
const COMMITTED_BUFFER: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "data directory {0} is in use by another lattice process (a running node?); stop it, or talk to it with --url"
    )]
    Locked(PathBuf),
    #[error("database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "database {path} has layout version {version}, newer than this program's {}; use a newer lattice",
        schema::VERSION
    )]
    NewerLayout { path: PathBuf, version: i64 },
    #[error("integrity check of {path} failed: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error("writing to the ledger failed and the store stopped accepting entries: {0}")]
    WriterFailed(String),
    #[error(
        "data directory {dir} holds ledger {dir_ledger}, not the configured ledger {ours}; use another LATTICE_DATA_DIR or the ledger that directory was made for"
    )]
    OtherLedger {
        dir: PathBuf,
        dir_ledger: LedgerId,
        ours: LedgerId,
    },
    #[error(transparent)]
    Unauthorized(#[from] UnauthorizedAuthor),
    #[error("this store was opened read-only")]
    ReadOnly,
    #[error("the store is closed")]
    Closed,
}

impl StoreError {
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::DataDir { .. } => "data_dir",
            StoreError::Locked(_) => "data_dir_locked",
            StoreError::Sqlite { .. } => "database",
            StoreError::NewerLayout { .. } => "database_too_new",
            StoreError::Corrupt { .. } => "database_corrupt",
            StoreError::WriterFailed(_) => "store_failed",
            StoreError::OtherLedger { .. } => "other_ledger",
            StoreError::Unauthorized(_) => UnauthorizedAuthor::KIND,
            StoreError::ReadOnly => "read_only",
            StoreError::Closed => "store_closed",
        }
    }
}

#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Largest payload accepted by [`Store::verify_all`] (entries were checked on arrival).
    pub max_payload: usize,
    /// Caps the database at this many pages (SQLite `max_page_count`). Writes beyond it
    /// fail as a full disk would; used to prove that a failed write stops the store.
    pub max_db_pages: Option<u32>,
    /// The ledger this store holds: only its authors' entries are stored.
    pub ledger: Arc<Ledger>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_payload: DEFAULT_MAX_PAYLOAD,
            max_db_pages: None,
            ledger: Arc::new(Ledger::default()),
        }
    }
}

/// The result of one acknowledged append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    pub id: EntryId,
    /// False when the entry was already present (appends are idempotent).
    pub inserted: bool,
    /// The root right after this entry's commit.
    pub root: Hash,
    pub count: usize,
}

/// Counters for group commit, read by tests and `/metrics`.
#[derive(Clone, Copy, Debug, Default)]
pub struct StoreStats {
    pub commits: u64,
    pub entries_written: u64,
}

/// What `verify_all` found.
#[derive(Clone, Debug)]
pub struct VerifyReport {
    pub entries: usize,
    pub root: Hash,
    pub problems: Vec<String>,
}

struct WriteRequest {
    entries: Vec<Entry>,
    reply: oneshot::Sender<Result<Vec<Appended>, StoreError>>,
}

struct Inner {
    path: PathBuf,
    /// Also the id index: each leaf records its entry's row.
    tree: RwLock<Merkle>,
    /// `None` once closed: the writer's connection must be the last to close, so SQLite
    /// folds the log into the file and deletes it.
    reader: Mutex<Option<Connection>>,
    writer: Mutex<Option<mpsc::Sender<WriteRequest>>>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    failure: Mutex<Option<String>>,
    commits: AtomicU64,
    entries_written: AtomicU64,
    options: StoreOptions,
    report: OpenReport,
    /// Every commit's newly inserted entries, whoever wrote them: the node actor, the
    /// event stream and (later) gossip learn of new entries here, in one place.
    committed: broadcast::Sender<Arc<[Entry]>>,
    /// Held for the store's life: the OS releases it if the process dies.
    _lock: Option<File>,
}

/// A handle to the ledger. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .field("entries", &self.len())
            .finish_non_exhaustive()
    }
}

fn sqlite(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + use<> {
    let path = path.to_owned();
    move |source| StoreError::Sqlite {
        path: path.clone(),
        source,
    }
}

impl Store {
    /// Opens (creating if needed) the ledger in `dir` for reading and writing. Takes the
    /// directory's lock, checks integrity and rebuilds the Merkle tree.
    pub fn open(dir: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        let dir_err = |source| StoreError::DataDir {
            path: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(dir_err)?;
        let lock = File::create(dir.join(LOCK_FILE)).map_err(dir_err)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Locked(dir.to_owned()));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(dir_err(e)),
        }
        let path = dir.join(DB_FILE);
        let err = sqlite(&path);
        let mut conn = Connection::open(&path).map_err(&err)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(&err)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(&err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Corrupt {
                path,
                detail: format!("could not switch to WAL mode (journal_mode is {mode})"),
            });
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(&err)?;
        if let Some(pages) = options.max_db_pages {
            let _: i64 = conn
                .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |r| {
                    r.get(0)
                })
                .map_err(&err)?;
        }
        let (found, integrity) = inspect(&conn, &path)?;
        schema::prepare(&mut conn, found).map_err(&err)?;
        let migrated_from =
            (found.version != 0 && found.version != schema::VERSION).then_some(found.version);
        check_ledger(&conn, dir, &path, options.ledger.genesis())?;
        learn_records(&conn, &options.ledger).map_err(&err)?;
        // Also after a crash between a removal's commit and its evictions.
        // (Only removed authors: entries a directory holds of authors never admitted are
        // not this node's to judge at open; they were refused on arrival.)
        let stale = options.ledger.removed_evictions();
        let evicted = !evict(&mut conn, &options.ledger, &stale)
            .map_err(&err)?
            .is_empty();

        let reader = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(&err)?;
        reader.busy_timeout(Duration::from_secs(5)).map_err(&err)?;
        let (tree, rebuild) = load(&reader, &path)?;
        let report = OpenReport::new(&path, &tree, integrity, rebuild, migrated_from);
        log_open(&report);
        // Until the first commit clears it, the mark stays (and an open writes nothing).
        let marked = found.clean && migrated_from.is_none() && !evicted;

        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let inner = Arc::new(Inner {
            path,
            tree: RwLock::new(tree),
            reader: Mutex::new(Some(reader)),
            writer: Mutex::new(Some(tx)),
            writer_thread: Mutex::new(None),
            failure: Mutex::new(None),
            commits: AtomicU64::new(0),
            entries_written: AtomicU64::new(0),
            options,
            report,
            committed: broadcast::channel(COMMITTED_BUFFER).0,
            _lock: Some(lock),
        });
        let weak = Arc::downgrade(&inner);
        let handle = std::thread::Builder::new()
            .name("lattice-store-writer".into())
            .spawn(move || writer::run(conn, rx, weak, marked))
            .map_err(dir_err)?;
        *inner.writer_thread.lock().expect("not poisoned") = Some(handle);
        Ok(Store { inner })
    }

    /// Opens the ledger in `dir` for reading only, without taking the lock, so it works
    /// beside a running node. A directory with no ledger reads as the empty ledger.
    pub fn open_read_only(dir: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        let path = dir.join(DB_FILE);
        let err = sqlite(&path);
        let reader = if path.exists() {
            Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(&err)?
        } else {
            let c = Connection::open_in_memory().map_err(&err)?;
            c.execute_batch(schema::ENTRIES_V2).map_err(&err)?;
            c
        };
        reader.busy_timeout(Duration::from_secs(5)).map_err(&err)?;
        // Layout 1 reads as layout 2 does (same columns); migrating is the writer's job.
        let (_, integrity) = inspect(&reader, &path)?;
        learn_records(&reader, &options.ledger).map_err(&err)?;
        let (tree, rebuild) = load(&reader, &path)?;
        let report = OpenReport::new(&path, &tree, integrity, rebuild, None);
        Ok(Store {
            inner: Arc::new(Inner {
                path,
                tree: RwLock::new(tree),
                reader: Mutex::new(Some(reader)),
                writer: Mutex::new(None),
                writer_thread: Mutex::new(None),
                failure: Mutex::new(None),
                commits: AtomicU64::new(0),
                entries_written: AtomicU64::new(0),
                options,
                report,
                committed: broadcast::channel(1).0,
                _lock: None,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub fn open_report(&self) -> &OpenReport {
        &self.inner.report
    }

    /// Appends one entry; returns once it is committed.
    pub async fn append(&self, entry: Entry) -> Result<Appended, StoreError> {
        let mut out = self.append_batch(vec![entry]).await?;
        Ok(out.pop().expect("one result per entry"))
    }

    /// The ledger this store holds.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.inner.options.ledger
    }

    /// Appends several entries in one transaction; returns once they are committed. An
    /// entry whose author is not a member refuses the whole batch: nothing changes.
    pub async fn append_batch(&self, entries: Vec<Entry>) -> Result<Vec<Appended>, StoreError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        for e in &entries {
            self.ledger().check(e)?;
        }
        if let Some(reason) = self.write_failure() {
            return Err(StoreError::WriterFailed(reason));
        }
        let sender = self
            .inner
            .writer
            .lock()
            .expect("not poisoned")
            .clone()
            .ok_or(if self.inner._lock.is_some() {
                StoreError::Closed
            } else {
                StoreError::ReadOnly
            })?;
        let (reply, rx) = oneshot::channel();
        sender
            .send(WriteRequest { entries, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Entries newly inserted by each commit, as they commit.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<[Entry]>> {
        self.inner.committed.subscribe()
    }

    /// Why writing stopped, if it did.
    pub fn write_failure(&self) -> Option<String> {
        self.inner.failure.lock().expect("not poisoned").clone()
    }

    pub fn root(&self) -> Hash {
        self.inner.tree.read().expect("not poisoned").root()
    }

    pub fn len(&self) -> usize {
        self.inner.tree.read().expect("not poisoned").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, id: &EntryId) -> bool {
        self.inner.tree.read().expect("not poisoned").contains(id)
    }

    pub fn prove(&self, id: &EntryId) -> Option<InclusionProof> {
        self.inner.tree.read().expect("not poisoned").prove(id)
    }

    pub fn subtree(&self, prefix: &Prefix) -> Subtree {
        self.inner
            .tree
            .read()
            .expect("not poisoned")
            .subtree(prefix)
    }

    pub fn ids_under(&self, prefix: &Prefix) -> Vec<EntryId> {
        self.inner
            .tree
            .read()
            .expect("not poisoned")
            .ids_under(prefix)
    }

    /// Every id held, in no particular order; see [`Merkle::ids_any_order`].
    pub fn ids_any_order(&self) -> Vec<EntryId> {
        self.inner
            .tree
            .read()
            .expect("not poisoned")
            .ids_any_order()
    }

    /// A page of the ids below `prefix` after `after`; see [`Merkle::ids_page`].
    pub fn ids_page(
        &self,
        prefix: &Prefix,
        after: Option<&EntryId>,
        limit: usize,
    ) -> (Vec<EntryId>, bool) {
        self.inner
            .tree
            .read()
            .expect("not poisoned")
            .ids_page(prefix, after, limit)
    }

    pub fn stats(&self) -> StoreStats {
        StoreStats {
            commits: self.inner.commits.load(Ordering::Relaxed),
            entries_written: self.inner.entries_written.load(Ordering::Relaxed),
        }
    }

    pub fn get(&self, id: &EntryId) -> Result<Option<Entry>, StoreError> {
        Ok(self.get_many(std::slice::from_ref(id))?.pop())
    }

    /// The entries among `ids` that are stored, in no particular order.
    pub fn get_many(&self, ids: &[EntryId]) -> Result<Vec<Entry>, StoreError> {
        // The tree knows each id's row; a reader's tree was loaded at its open, so an id
        // it does not know may have been committed by the writing process since.
        let rows: Vec<(EntryId, Option<u64>)> = {
            let tree = self.inner.tree.read().expect("not poisoned");
            ids.iter().map(|id| (*id, tree.seq_of(id))).collect()
        };
        let is_writer = self.inner._lock.is_some();
        let guard = self.inner.reader.lock().expect("not poisoned");
        let conn = guard.as_ref().ok_or(StoreError::Closed)?;
        let err = sqlite(&self.inner.path);
        let mut by_seq = conn
            .prepare_cached(
                "SELECT author, created_at, payload, signature FROM entries WHERE seq = ?1",
            )
            .map_err(&err)?;
        let mut out = Vec::with_capacity(ids.len());
        for (id, seq) in rows {
            let found = match seq {
                Some(seq) => by_seq
                    .query_row([seq as i64], row_to_entry)
                    .optional()
                    .map_err(&err)?,
                None if !is_writer => conn
                    .prepare_cached(
                        "SELECT author, created_at, payload, signature FROM entries WHERE id = ?1",
                    )
                    .map_err(&err)?
                    .query_row([id.as_bytes().as_slice()], row_to_entry)
                    .optional()
                    .map_err(&err)?,
                None => None,
            };
            // A row whose content does not hash to its id is not that entry.
            if let Some(e) = found.filter(|e| e.id() == id) {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// The ids of `author`'s stored entries (not its membership records): what a
    /// removal record keeps valid.
    pub fn ids_of_author(
        &self,
        author: &[u8; 32],
    ) -> Result<std::collections::BTreeSet<EntryId>, StoreError> {
        let guard = self.inner.reader.lock().expect("not poisoned");
        let conn = guard.as_ref().ok_or(StoreError::Closed)?;
        let err = sqlite(&self.inner.path);
        let mut stmt = conn
            .prepare_cached(
                "SELECT author, created_at, payload, signature FROM entries WHERE author = ?1",
            )
            .map_err(&err)?;
        let rows = stmt
            .query_map([author.as_slice()], row_to_entry)
            .map_err(&err)?;
        let mut out = std::collections::BTreeSet::new();
        for e in rows {
            let e = e.map_err(&err)?;
            if !self.ledger().is_admin_record(&e) {
                out.insert(e.id());
            }
        }
        Ok(out)
    }

    /// The most recently stored entries, newest first.
    pub fn latest(&self, limit: usize) -> Result<Vec<Entry>, StoreError> {
        let guard = self.inner.reader.lock().expect("not poisoned");
        let conn = guard.as_ref().ok_or(StoreError::Closed)?;
        let err = sqlite(&self.inner.path);
        let mut stmt = conn
            .prepare_cached(
                "SELECT author, created_at, payload, signature FROM entries ORDER BY seq DESC LIMIT ?1",
            )
            .map_err(&err)?;
        let rows = stmt
            .query_map([limit.min(i64::MAX as usize) as i64], row_to_entry)
            .map_err(&err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(err)
    }

    /// Calls `f` with every stored entry, oldest first, stopping at its first error.
    pub fn for_each<E: From<StoreError>>(
        &self,
        mut f: impl FnMut(Entry) -> Result<(), E>,
    ) -> Result<(), E> {
        let guard = self.inner.reader.lock().expect("not poisoned");
        let conn = guard.as_ref().ok_or(StoreError::Closed)?;
        let err = sqlite(&self.inner.path);
        let mut stmt = conn
            .prepare("SELECT author, created_at, payload, signature FROM entries ORDER BY seq")
            .map_err(&err)?;
        let mut rows = stmt.query([]).map_err(&err)?;
        while let Some(row) = rows.next().map_err(&err)? {
            f(row_to_entry(row).map_err(&err)?)?;
        }
        Ok(())
    }

    /// Stops accepting entries, commits everything already queued, records a clean
    /// close, folds the write-ahead log into `ledger.db` and waits for the writer to
    /// finish: afterwards `ledger.db` alone holds the whole ledger (no `-wal`, no `-shm`).
    /// Reads that need the database fail with [`StoreError::Closed`] from here on.
    /// Blocks; call it from a blocking context. Dropping the last handle does the same.
    pub fn close(&self) {
        self.inner.shut();
    }
}

impl Inner {
    fn shut(&self) {
        self.writer.lock().expect("not poisoned").take();
        // The writer's connection must close last (see `reader`).
        self.reader.lock().expect("not poisoned").take();
        let handle = self.writer_thread.lock().expect("not poisoned").take();
        if let Some(handle) = handle {
            // The writer thread itself may drop the last handle; it finishes on its own.
            if handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shut();
    }
}

fn row_to_entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    row_to_entry_at(row, 0)
}

fn row_to_entry_at(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Entry> {
    let blob = |i: usize, len: usize| -> rusqlite::Result<Vec<u8>> {
        let v: Vec<u8> = row.get(at + i)?;
        if v.len() != len {
            return Err(rusqlite::Error::IntegralValueOutOfRange(
                at + i,
                v.len() as i64,
            ));
        }
        Ok(v)
    };
    let author: [u8; 32] = blob(0, 32)?.try_into().expect("length checked");
    let created_at: i64 = row.get(at + 1)?;
    let payload: String = row.get(at + 2)?;
    let signature: [u8; 64] = blob(3, 64)?.try_into().expect("length checked");
    Ok(Entry::from_stored(
        author,
        created_at.max(0) as u64,
        payload,
        signature,
    ))
}

//! The durable store, used as the node uses it: a real database file on disk.

use lattice_node::NodeKey;
use lattice_node::ledger::{Entry, Merkle, Store, StoreError, StoreOptions};
use serde_json::json;

fn entry(key: &NodeKey, n: u64) -> Entry {
    Entry::sign(key, 1_700_000_000_000 + n, &json!({ "n": n }), 64 * 1024).expect("signs")
}

#[tokio::test]
async fn appends_are_idempotent_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let key = NodeKey::from_seed([1; 32]);
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let first = store.append(entry(&key, 1)).await.unwrap();
    assert!(first.inserted);
    let again = store.append(entry(&key, 1)).await.unwrap();
    assert!(!again.inserted);
    assert_eq!(again.root, first.root);
    let second = store.append(entry(&key, 2)).await.unwrap();
    assert_eq!(second.count, 2);
    store.close();
    drop(store);

    let reopened = Store::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(reopened.len(), 2);
    assert_eq!(reopened.root(), second.root);
    assert_eq!(reopened.open_report().entries, 2);
    assert_eq!(reopened.get(&first.id).unwrap(), Some(entry(&key, 1)));
    assert_eq!(reopened.latest(10).unwrap()[0].id(), second.id);
    assert!(reopened.verify_all().unwrap().problems.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let key = NodeKey::from_seed([2; 32]);
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let writers: Vec<_> = (0..200)
        .map(|n| {
            let (store, e) = (store.clone(), entry(&key, n));
            tokio::spawn(async move { store.append(e).await })
        })
        .collect();
    for w in writers {
        assert!(w.await.unwrap().unwrap().inserted);
    }
    let stats = store.stats();
    assert_eq!(stats.entries_written, 200);
    assert!(
        stats.commits < 200,
        "200 concurrent appends took {} commits: no grouping",
        stats.commits
    );
    let expected = Merkle::from_ids((0..200).map(|n| entry(&key, n).id()).collect()).root();
    assert_eq!(store.root(), expected);
}

#[tokio::test]
async fn a_failed_write_stops_the_store_and_keeps_what_was_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let key = NodeKey::from_seed([3; 32]);
    let options = StoreOptions {
        max_db_pages: Some(12),
        ..StoreOptions::default()
    };
    let store = Store::open(dir.path(), options).unwrap();
    let big = |n: u64| {
        Entry::sign(
            &key,
            n,
            &json!({ "n": n, "pad": "x".repeat(3000) }),
            64 * 1024,
        )
        .unwrap()
    };
    let mut acknowledged = Vec::new();
    let mut failure = None;
    for n in 0..200 {
        match store.append(big(n)).await {
            Ok(a) => acknowledged.push(a.id),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let failure = failure.expect("a 12-page database fills up");
    assert!(matches!(failure, StoreError::WriterFailed(_)), "{failure}");
    assert!(failure.to_string().contains("full"), "{failure}");
    assert!(store.write_failure().is_some());
    // Once failed, the store refuses everything, even an entry that would fit.
    let err = store.append(entry(&key, 9_999)).await.unwrap_err();
    assert_eq!(err.kind(), "store_failed");
    assert!(!acknowledged.is_empty());
    store.close();
    drop(store);

    let reopened = Store::open(dir.path(), StoreOptions::default()).unwrap();
    for id in &acknowledged {
        assert!(reopened.contains(id), "acknowledged {id} was lost");
    }
    assert_eq!(reopened.len(), acknowledged.len());
}

#[test]
fn a_second_writer_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let err = Store::open(dir.path(), StoreOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::Locked(_)), "{err}");
    // Readers do not need the lock.
    assert!(Store::open_read_only(dir.path(), StoreOptions::default()).is_ok());
}

#[test]
fn reading_a_directory_with_no_ledger_shows_the_empty_ledger_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_read_only(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(store.root(), Merkle::new().root());
    assert!(store.latest(5).unwrap().is_empty());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn writes_after_close_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store.close();
    let err = store
        .append(entry(&NodeKey::from_seed([4; 32]), 1))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "store_closed");
}

fn log_files(dir: &std::path::Path) -> Vec<String> {
    ["ledger.db-wal", "ledger.db-shm", "ledger.db-journal"]
        .into_iter()
        .filter(|f| dir.join(f).exists())
        .map(String::from)
        .collect()
}

#[tokio::test]
async fn a_clean_close_leaves_no_log_and_the_database_file_alone_is_a_complete_copy() {
    let dir = tempfile::tempdir().unwrap();
    let key = NodeKey::from_seed([5; 32]);
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    for n in 0..50 {
        store.append(entry(&key, n)).await.unwrap();
    }
    let (root, count) = (store.root(), store.len());
    assert!(
        dir.path().join("ledger.db-wal").exists(),
        "WAL mode while open"
    );
    store.close();
    assert_eq!(log_files(dir.path()), Vec::<String>::new());
    // Reads that need the database are refused once closed; the tree still answers.
    assert_eq!(store.latest(1).unwrap_err().kind(), "store_closed");
    assert_eq!(store.root(), root);
    drop(store);

    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(dir.path().join("ledger.db"), copy.path().join("ledger.db")).unwrap();
    let reopened = Store::open(copy.path(), StoreOptions::default()).unwrap();
    assert_eq!((reopened.root(), reopened.len()), (root, count));
    assert!(reopened.get(&entry(&key, 49).id()).unwrap().is_some());
    assert!(reopened.verify_all().unwrap().problems.is_empty());
}

#[tokio::test]
async fn dropping_the_last_handle_closes_as_cleanly_as_close() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let appended = store
        .append(entry(&NodeKey::from_seed([6; 32]), 1))
        .await
        .unwrap();
    let clone = store.clone();
    drop(store);
    assert!(
        dir.path().join("ledger.db-wal").exists(),
        "a handle remains"
    );
    drop(clone);
    assert_eq!(log_files(dir.path()), Vec::<String>::new());
    let reopened = Store::open(dir.path(), StoreOptions::default()).unwrap();
    assert!(!reopened.open_report().integrity_checked);
    assert!(reopened.contains(&appended.id));
}

#[tokio::test]
async fn an_open_after_a_clean_close_skips_the_check_and_writes_nothing_until_an_append() {
    let dir = tempfile::tempdir().unwrap();
    let key = NodeKey::from_seed([7; 32]);
    let first = Store::open(dir.path(), StoreOptions::default()).unwrap();
    // A new database has never been closed cleanly: checked.
    assert!(first.open_report().integrity_checked);
    first.append(entry(&key, 1)).await.unwrap();
    first.close();
    drop(first);
    let db = dir.path().join("ledger.db");
    let before = std::fs::read(&db).unwrap();

    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    assert!(!store.open_report().integrity_checked);
    assert_eq!(store.open_report().integrity, std::time::Duration::ZERO);
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "opening changed ledger.db"
    );
    let wal = std::fs::metadata(dir.path().join("ledger.db-wal")).map_or(0, |m| m.len());
    assert_eq!(wal, 0, "opening wrote to the log");
    assert!(store.get(&entry(&key, 1).id()).unwrap().is_some());
    // Closing a session that wrote nothing writes nothing either.
    store.close();
    drop(store);
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "closing changed ledger.db"
    );

    // A session that writes clears the mark with its first commit: were it to crash
    // now (the handle leaked, so nothing closes), the next open would check.
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store.append(entry(&key, 2)).await.unwrap();
    let copy = tempfile::tempdir().unwrap();
    for f in ["ledger.db", "ledger.db-wal"] {
        std::fs::copy(dir.path().join(f), copy.path().join(f)).unwrap();
    }
    let crashed = Store::open(copy.path(), StoreOptions::default()).unwrap();
    assert!(crashed.open_report().integrity_checked);
    assert_eq!(crashed.len(), 2);
}

/// Layout 1, verbatim as the store before layout 2 created it.
const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS entries (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          BLOB    NOT NULL UNIQUE CHECK (length(id) = 32),
    author      BLOB    NOT NULL CHECK (length(author) = 32),
    created_at  INTEGER NOT NULL,
    payload     TEXT    NOT NULL,
    signature   BLOB    NOT NULL CHECK (length(signature) = 64),
    received_at INTEGER NOT NULL
);
PRAGMA user_version = 1;
";
const META_V1: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

#[tokio::test]
async fn a_database_of_layout_1_is_migrated_on_open_and_keeps_every_entry() {
    let dir = tempfile::tempdir().unwrap();
    let key = NodeKey::from_seed([8; 32]);
    let entries: Vec<Entry> = (0..300).map(|n| entry(&key, n)).collect();
    {
        let conn = rusqlite::Connection::open(dir.path().join("ledger.db")).unwrap();
        conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
            .unwrap();
        conn.execute_batch(SCHEMA_V1).unwrap();
        conn.execute_batch(META_V1).unwrap();
        let genesis = lattice_node::ledger::Genesis::development();
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('ledger', ?1), ('genesis', ?2)",
            rusqlite::params![genesis.id().to_hex(), genesis.to_base64()],
        )
        .unwrap();
        for e in &entries {
            conn.execute(
                "INSERT INTO entries (id, author, created_at, payload, signature, received_at) VALUES (?1, ?2, ?3, ?4, ?5, 0)",
                rusqlite::params![
                    e.id().as_bytes().as_slice(),
                    e.author_key().as_slice(),
                    e.created_at() as i64,
                    e.payload_json(),
                    e.signature().as_slice()
                ],
            )
            .unwrap();
        }
    }
    let expected = Merkle::from_ids(entries.iter().map(Entry::id).collect()).root();
    // A reader (`lattice verify` beside an old node) reads layout 1 as it is.
    let reader = Store::open_read_only(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(reader.root(), expected);
    assert_eq!(
        reader.get(&entries[7].id()).unwrap().as_ref(),
        Some(&entries[7])
    );
    drop(reader);

    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(store.open_report().migrated_from, Some(1));
    assert!(store.open_report().integrity_checked);
    assert_eq!((store.root(), store.len()), (expected, 300));
    assert_eq!(
        store.get(&entries[299].id()).unwrap().as_ref(),
        Some(&entries[299])
    );
    assert_eq!(store.latest(1).unwrap()[0], entries[299]);
    assert!(!store.append(entries[3].clone()).await.unwrap().inserted);
    assert!(store.append(entry(&key, 300)).await.unwrap().inserted);
    assert!(store.verify_all().unwrap().problems.is_empty());
    store.close();
    drop(store);

    let conn = rusqlite::Connection::open(dir.path().join("ledger.db")).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, lattice_node::ledger::store::SCHEMA_VERSION);
    drop(conn);
    let again = Store::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(again.open_report().migrated_from, None);
    assert_eq!(again.len(), 301);
}

#[test]
fn a_database_of_a_newer_layout_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path(), StoreOptions::default()).unwrap());
    let db = dir.path().join("ledger.db");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("PRAGMA user_version = 99").unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    let err = Store::open(dir.path(), StoreOptions::default()).unwrap_err();
    assert_eq!(err.kind(), "database_too_new", "{err}");
    assert!(err.to_string().contains("99"), "{err}");
    assert_eq!(std::fs::read(&db).unwrap(), before);
    let err = Store::open_read_only(dir.path(), StoreOptions::default()).unwrap_err();
    assert_eq!(err.kind(), "database_too_new", "{err}");
}

#[tokio::test]
async fn verify_on_every_core_finds_each_damaged_row_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let key = NodeKey::from_seed([9; 32]);
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let entries: Vec<Entry> = (0..1_500).map(|n| entry(&key, n)).collect();
    store.append_batch(entries.clone()).await.unwrap();
    store.close();
    drop(store);
    // Damage two rows in different chunks: a signature, and a payload.
    {
        let conn = rusqlite::Connection::open(dir.path().join("ledger.db")).unwrap();
        conn.execute(
            "UPDATE entries SET signature = zeroblob(64) WHERE seq = 1200",
            [],
        )
        .unwrap();
        conn.execute(
            "UPDATE entries SET payload = '{\"n\":-1}' WHERE seq = 3",
            [],
        )
        .unwrap();
    }
    let reader = Store::open_read_only(dir.path(), StoreOptions::default()).unwrap();
    let report = reader.verify_all().unwrap();
    assert_eq!(report.entries, 1_500);
    assert_eq!(report.problems.len(), 3, "{:#?}", report.problems);
    // In row order: row 3's id no longer matches its content (and its signature fails),
    // then row 1200's signature.
    assert!(
        report.problems[0].starts_with("row 3 is stored under id"),
        "{}",
        report.problems[0]
    );
    assert!(
        report.problems[1].contains("signature"),
        "{}",
        report.problems[1]
    );
    assert!(
        report.problems[2].contains(&entries[1199].id().to_string()),
        "{}",
        report.problems[2]
    );
}

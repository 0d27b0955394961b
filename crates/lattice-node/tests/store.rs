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

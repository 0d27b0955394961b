//! The writer thread: group commit, the tree's updates in commit order, and the end of a
//! session (the clean-close mark, the checkpoint, the last connection's close).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use rusqlite::{Connection, params};
use tokio::sync::mpsc;

use super::{Appended, Inner, MAX_GROUP, StoreError, WriteRequest, apply_evictions, schema};

pub(super) fn run(
    mut conn: Connection,
    mut rx: mpsc::Receiver<WriteRequest>,
    inner: std::sync::Weak<Inner>,
    mut marked: bool,
) {
    let mut failed = false;
    while let Some(first) = rx.blocking_recv() {
        let mut group = vec![first];
        let mut queued = group[0].entries.len();
        while queued < MAX_GROUP {
            match rx.try_recv() {
                Ok(req) => {
                    queued += req.entries.len();
                    group.push(req);
                }
                Err(_) => break,
            }
        }
        let Some(inner) = inner.upgrade() else {
            break;
        };
        if let Some(reason) = inner.failure.lock().expect("not poisoned").clone() {
            failed = true;
            for req in group {
                let _ = req
                    .reply
                    .send(Err(StoreError::WriterFailed(reason.clone())));
            }
            continue;
        }
        // Checked again here, in commit order: a removal committed since the caller's
        // check must not let its author's entry in behind it.
        let ledger = Arc::clone(&inner.options.ledger);
        let group: Vec<WriteRequest> = group
            .into_iter()
            .filter_map(
                |req| match req.entries.iter().try_for_each(|e| ledger.check(e)) {
                    Ok(()) => Some(req),
                    Err(refused) => {
                        let _ = req.reply.send(Err(StoreError::Unauthorized(refused)));
                        None
                    }
                },
            )
            .collect();
        if group.is_empty() {
            continue;
        }
        match commit_group(&mut conn, &inner, &group, marked) {
            Ok(rows) => {
                marked = false;
                inner.commits.fetch_add(1, Ordering::Relaxed);
                inner.entries_written.fetch_add(
                    rows.iter().filter(|r| r.is_some()).count() as u64,
                    Ordering::Relaxed,
                );
                let mut tree = inner.tree.write().expect("not poisoned");
                let mut fresh = Vec::new();
                let mut rows = rows.into_iter();
                let mut replies = Vec::with_capacity(group.len());
                for req in group {
                    let mut results = Vec::with_capacity(req.entries.len());
                    for entry in &req.entries {
                        let row = rows.next().expect("one row per entry");
                        if let Some(seq) = row {
                            tree.insert_with_seq(&entry.id(), seq);
                            fresh.push(entry.clone());
                        }
                        results.push(Appended {
                            id: entry.id(),
                            inserted: row.is_some(),
                            root: tree.root(),
                            count: tree.len(),
                        });
                    }
                    replies.push((req.reply, results));
                }
                drop(tree);
                if let Some(evictions) = ledger.learn(&fresh) {
                    apply_evictions(&mut conn, &inner, &evictions);
                }
                if !fresh.is_empty() {
                    // No subscribers is fine.
                    let _ = inner.committed.send(fresh.into());
                }
                for (reply, results) in replies {
                    let _ = reply.send(Ok(results));
                }
            }
            Err(e) => {
                failed = true;
                let reason = format!("commit to {} failed: {e}", inner.path.display());
                tracing::error!("{reason}; no further entries will be accepted");
                *inner.failure.lock().expect("not poisoned") = Some(reason.clone());
                for req in group {
                    let _ = req
                        .reply
                        .send(Err(StoreError::WriterFailed(reason.clone())));
                }
            }
        }
        failed |= inner.failure.lock().expect("not poisoned").is_some();
    }
    finish(conn, failed, marked);
}

/// The end of a session: records a clean close (unless a write failed: then the file's
/// state is unknown and the next open must check it), folds the log into the file and
/// closes the last connection, which deletes the `-wal` and `-shm` files.
fn finish(mut conn: Connection, failed: bool, marked: bool) {
    if !failed
        && !marked
        && let Err(e) = schema::set_clean_mark(&mut conn)
    {
        tracing::warn!(error = %e, "could not record a clean close; the next open checks the file");
    }
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        r.get::<_, i64>(0)
    }) {
        tracing::warn!(error = %e, "could not checkpoint the write-ahead log at close");
    }
    if let Err((_, e)) = conn.close() {
        tracing::warn!(error = %e, "closing the ledger database failed");
    }
}

/// Inserts the group's new entries in one transaction; for each entry, the row it was
/// stored at, or `None` when it was already present (in the store or earlier in the
/// group). Only this thread inserts, so the tree tells what is present.
fn commit_group(
    conn: &mut Connection,
    inner: &Inner,
    group: &[WriteRequest],
    marked: bool,
) -> rusqlite::Result<Vec<Option<u64>>> {
    let tx = conn.transaction()?;
    if marked {
        schema::clear_clean_mark(&tx)?;
    }
    let mut rows = Vec::new();
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO entries (id, author, created_at, payload, signature, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let received = crate::time::now_ms() as i64;
        let tree = inner.tree.read().expect("not poisoned");
        let mut in_group = std::collections::HashSet::new();
        for entry in group.iter().flat_map(|r| &r.entries) {
            let id = entry.id();
            if tree.contains(&id) || !in_group.insert(id) {
                rows.push(None);
                continue;
            }
            stmt.execute(params![
                id.as_bytes().as_slice(),
                entry.author_key().as_slice(),
                entry.created_at() as i64,
                entry.payload_json(),
                entry.signature().as_slice(),
                received,
            ])?;
            rows.push(Some(tx.last_insert_rowid() as u64));
        }
    }
    tx.commit()?;
    Ok(rows)
}

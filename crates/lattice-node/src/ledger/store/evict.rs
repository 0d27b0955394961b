//! The store's side of membership changes: learning the records a directory holds,
//! and evicting what a change no longer allows (in the writer thread, after the commit
//! that brought the records, so nothing slips in between).

use rusqlite::Connection;

use super::{Inner, read_ids, row_to_entry, row_to_entry_at, schema};
use crate::ledger::entry::EntryId;
use crate::ledger::genesis::Ledger;
use crate::ledger::membership::{Evictions, MEMBERSHIP_KEY};
use crate::ledger::merkle::Merkle;

/// Evicts what a membership change no longer allows, and rebuilds the tree without it.
/// A failure stops the store as a failed commit does: the disk and the tree would differ.
pub(super) fn apply_evictions(conn: &mut Connection, inner: &Inner, evictions: &Evictions) {
    let result = evict(conn, &inner.options.ledger, evictions).and_then(|gone| {
        if gone.is_empty() {
            return Ok(gone);
        }
        let ids = read_ids(conn)?;
        *inner.tree.write().expect("not poisoned") = Merkle::from_ids_with_seq(ids);
        Ok(gone)
    });
    match result {
        Ok(gone) if !gone.is_empty() => tracing::warn!(
            evicted = gone.len(),
            "membership changed: evicted entries of authors who may no longer write them"
        ),
        Ok(_) => {}
        Err(e) => {
            let reason = format!(
                "evicting after a membership change in {} failed: {e}",
                inner.path.display()
            );
            tracing::error!("{reason}; no further entries will be accepted");
            *inner.failure.lock().expect("not poisoned") = Some(reason);
        }
    }
}

/// Deletes each listed author's entries except those it keeps (and administrators'
/// records, which membership never touches); returns the deleted ids.
pub(super) fn evict(
    conn: &mut Connection,
    ledger: &Ledger,
    evictions: &Evictions,
) -> rusqlite::Result<Vec<EntryId>> {
    if evictions.authors.is_empty() {
        return Ok(Vec::new());
    }
    let tx = conn.transaction()?;
    schema::clear_clean_mark(&tx)?;
    let mut gone = Vec::new();
    {
        let mut select = tx.prepare_cached(
            "SELECT seq, author, created_at, payload, signature FROM entries WHERE author = ?1",
        )?;
        let mut delete = tx.prepare_cached("DELETE FROM entries WHERE seq = ?1")?;
        for (author, keep) in &evictions.authors {
            let entries = select
                .query_map([author.as_slice()], |r| {
                    Ok((r.get::<_, i64>(0)?, row_to_entry_at(r, 1)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let doomed = entries
                .iter()
                .filter(|(_, e)| !ledger.is_admin_record(e) && !keep.contains(&e.id()));
            for (seq, e) in doomed {
                delete.execute([seq])?;
                gone.push(e.id());
            }
        }
    }
    tx.commit()?;
    Ok(gone)
}

/// Teaches the ledger the membership records the directory holds.
pub(super) fn learn_records(conn: &Connection, ledger: &Ledger) -> rusqlite::Result<()> {
    if ledger.is_open() {
        return Ok(());
    }
    let mut stmt = conn.prepare(
        "SELECT author, created_at, payload, signature FROM entries WHERE instr(payload, ?1) > 0",
    )?;
    let records = stmt
        .query_map([MEMBERSHIP_KEY], row_to_entry)?
        .collect::<Result<Vec<_>, _>>()?;
    let _ = ledger.learn(&records);
    Ok(())
}

//! `verify_all` on every core: one thread reads the rows in order and hands chunks to a
//! worker per core, each of which re-checks its entries from scratch with
//! `Entry::recheck_stored` (the strict signature check, one entry at a time: exactly
//! what an arriving entry gets).

use std::sync::Mutex;
use std::sync::mpsc;

use super::{Store, StoreError, VerifyReport, sqlite};
use crate::ledger::entry::{Entry, EntryId};
use crate::ledger::merkle::Merkle;

/// Rows handed to a worker at a time.
const CHUNK: usize = 512;

struct Row {
    stored_id: Vec<u8>,
    author: Vec<u8>,
    created_at: i64,
    payload: String,
    signature: Vec<u8>,
}

/// A chunk: the index of its first row, and its rows.
type Chunk = (usize, Vec<Row>);

impl Store {
    /// Re-checks every stored entry from scratch (id, payload size, strict signature)
    /// and, for the writing store, that the root rebuilt from the rows equals the live one.
    pub fn verify_all(&self) -> Result<VerifyReport, StoreError> {
        let max_payload = self.inner.options.max_payload;
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 64);
        let (tx, rx) = mpsc::sync_channel::<Chunk>(workers * 2);
        let rx = Mutex::new(rx);
        let (read, results) = std::thread::scope(|s| {
            let handles: Vec<_> = (0..workers)
                .map(|_| s.spawn(|| verify_chunks(&rx, max_payload)))
                .collect();
            let read = self.read_rows(tx);
            let results: Vec<_> = handles
                .into_iter()
                .map(|h| h.join().expect("verifying does not panic"))
                .collect();
            (read, results)
        });
        let entries = read?;
        let mut ids = Vec::with_capacity(entries);
        let mut problems = Vec::new();
        for (chunk_ids, chunk_problems) in results {
            ids.extend(chunk_ids);
            problems.extend(chunk_problems);
        }
        problems.sort_by_key(|(row, _)| *row);
        let mut problems: Vec<String> = problems.into_iter().map(|(_, p)| p).collect();
        let rebuilt = Merkle::from_ids(ids).root();
        let live = self.root();
        // Only a writer's live tree is authoritative: a reader's was loaded at open and
        // another process may have committed since.
        let is_writer = self.inner._lock.is_some();
        if is_writer && rebuilt != live {
            problems.push(format!(
                "root rebuilt from the database ({}) differs from the live root ({})",
                hex::encode(rebuilt),
                hex::encode(live)
            ));
        }
        Ok(VerifyReport {
            entries,
            root: rebuilt,
            problems,
        })
    }

    /// Sends every row, oldest first, in chunks; returns how many there were.
    fn read_rows(&self, tx: mpsc::SyncSender<Chunk>) -> Result<usize, StoreError> {
        let guard = self.inner.reader.lock().expect("not poisoned");
        let conn = guard.as_ref().ok_or(StoreError::Closed)?;
        let err = sqlite(&self.inner.path);
        let mut stmt = conn
            .prepare("SELECT id, author, created_at, payload, signature FROM entries ORDER BY seq")
            .map_err(&err)?;
        let mut rows = stmt.query([]).map_err(&err)?;
        let mut count = 0;
        let mut chunk = Vec::with_capacity(CHUNK);
        while let Some(row) = rows.next().map_err(&err)? {
            chunk.push(Row {
                stored_id: row.get(0).map_err(&err)?,
                author: row.get(1).map_err(&err)?,
                created_at: row.get(2).map_err(&err)?,
                payload: row.get(3).map_err(&err)?,
                signature: row.get(4).map_err(&err)?,
            });
            if chunk.len() == CHUNK {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                // The workers outlive this loop: a send fails only if they all panicked.
                let _ = tx.send((count, full));
                count += CHUNK;
            }
        }
        count += chunk.len();
        let _ = tx.send((count - chunk.len(), chunk));
        Ok(count)
    }
}

/// Verifies chunks until the reader is done; returns the ids seen and the problems found
/// (each with its row index, to report them in row order).
fn verify_chunks(
    rx: &Mutex<mpsc::Receiver<Chunk>>,
    max_payload: usize,
) -> (Vec<EntryId>, Vec<(usize, String)>) {
    let mut ids = Vec::new();
    let mut problems = Vec::new();
    loop {
        let next = rx.lock().expect("not poisoned").recv();
        let Ok((first, rows)) = next else {
            return (ids, problems);
        };
        for (i, row) in rows.into_iter().enumerate() {
            let at = first + i;
            let (Ok(author), Ok(signature)) = (
                <[u8; 32]>::try_from(row.author.as_slice()),
                <[u8; 64]>::try_from(row.signature.as_slice()),
            ) else {
                problems.push((
                    at,
                    format!("row {} has a malformed author or signature", at + 1),
                ));
                continue;
            };
            let (entry, checked) = Entry::recheck_stored(
                author,
                row.created_at.max(0) as u64,
                row.payload,
                signature,
                max_payload,
            );
            if row.stored_id != entry.id().as_bytes() {
                problems.push((
                    at,
                    format!(
                        "row {} is stored under id {} but its content hashes to {}",
                        at + 1,
                        hex::encode(&row.stored_id),
                        entry.id()
                    ),
                ));
            }
            if let Err(e) = checked {
                problems.push((at, format!("entry {}: {e}", entry.id())));
            }
            ids.push(entry.id());
        }
    }
}

//! The answering side of the v1 walk, over a store. Requests beyond the caps are
//! refused, not trimmed.

use super::*;

pub fn state(store: &impl Local, node: &str) -> LedgerState {
    LedgerState {
        root: store.root(),
        count: store.len(),
        node: node.to_string(),
        name: None,
        fanout_bits: FANOUT_BITS,
        ids_inline: IDS_INLINE,
        ledger: Some(store.ledger().id()),
        ledger_name: Some(store.ledger().genesis().name().to_string()),
        ledger_open: Some(store.ledger().is_open()),
        versions: crate::sync::reconcile_v2::VERSIONS.to_vec(),
    }
}

pub fn children(store: &impl Local, req: &ChildrenRequest) -> Result<ChildrenResponse, String> {
    if req.prefixes.len() > MAX_PREFIXES {
        return Err(format!(
            "{} prefixes requested; at most {MAX_PREFIXES} per request",
            req.prefixes.len()
        ));
    }
    let mut children = Vec::with_capacity(req.prefixes.len());
    for p in &req.prefixes {
        let p = parse_prefix(p)?;
        if p.len() + FANOUT_BITS > 256 {
            return Err("prefix is too long to have children".into());
        }
        children.push(
            children_of(&p)
                .iter()
                .map(|c| {
                    let sub = store.subtree(c);
                    if sub.count == 0 {
                        ChildSummary {
                            count: 0,
                            hash: None,
                            ids: None,
                        }
                    } else if sub.count <= IDS_INLINE {
                        ChildSummary {
                            count: sub.count,
                            hash: None,
                            ids: Some(store.ids_under(c)),
                        }
                    } else {
                        ChildSummary {
                            count: sub.count,
                            hash: Some(sub.hash),
                            ids: None,
                        }
                    }
                })
                .collect(),
        );
    }
    Ok(ChildrenResponse { children })
}

pub fn ids(store: &impl Local, req: &IdsRequest) -> Result<IdsResponse, String> {
    if req.limit == 0 || req.limit > MAX_IDS_PAGE {
        return Err(format!("limit must be between 1 and {MAX_IDS_PAGE}"));
    }
    let p = parse_prefix(&req.prefix)?;
    let (ids, more) = store.ids_page(&p, req.after.as_ref(), req.limit);
    Ok(IdsResponse { ids, more })
}

pub fn fetch(store: &impl Local, req: &FetchRequest) -> Result<EntriesMessage, String> {
    if req.ids.len() > MAX_ENTRIES {
        return Err(format!(
            "{} entries requested; at most {MAX_ENTRIES} per request",
            req.ids.len()
        ));
    }
    let entries = store.get_many(&req.ids).map_err(|e| e.to_string())?;
    Ok(bounded_message(&entries).0)
}

/// Verifies every pushed entry before storing any: one bad entry and nothing changes.
pub fn verify_push(msg: &EntriesMessage, max_payload: usize) -> Result<Vec<Entry>, PushRefused> {
    if msg.entries.len() > MAX_ENTRIES {
        return Err(PushRefused::TooMany(msg.entries.len()));
    }
    msg.entries
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            Entry::from_json(raw.get(), max_payload).map_err(|e| PushRefused::Entry(i + 1, e))
        })
        .collect()
}

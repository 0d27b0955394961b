//! Reconciliation between two real stores, over a transport that serializes every
//! message to JSON and counts the bytes (deterministic, unlike timing).

use std::sync::atomic::{AtomicU64, Ordering};

use lattice_node::NodeKey;
use lattice_node::ledger::{Entry, Store, StoreOptions};
use lattice_node::sync::reconcile::{
    self, ChildrenRequest, ChildrenResponse, EntriesMessage, FetchRequest, IdsRequest, IdsResponse,
    LedgerState, PushResponse, ReconcileError, Remote, TransportError, answer,
};
use lattice_node::sync::reconcile_v2::{
    self, HelloRequest, Method, Options, ShortFetchRequest, SketchRequest,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

const MAX: usize = 64 * 1024;

/// The other side: a store answered through JSON, as any transport would carry it.
struct JsonRemote {
    store: Store,
    sent: AtomicU64,
    received: AtomicU64,
    /// Lets a test make the other side lie about fetched entries.
    tamper_fetch: Option<fn(&mut Vec<serde_json::Value>)>,
    /// Plays a node older than v2: its state answer announces no versions.
    v1_only: bool,
}

impl JsonRemote {
    fn new(store: Store) -> Self {
        Self {
            store,
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            tamper_fetch: None,
            v1_only: false,
        }
    }

    fn v1(store: Store) -> Self {
        Self {
            v1_only: true,
            ..Self::new(store)
        }
    }

    fn entries_answer(&self, mut msg: EntriesMessage) -> Result<EntriesMessage, TransportError> {
        if let Some(tamper) = self.tamper_fetch {
            let mut values: Vec<serde_json::Value> = msg
                .entries
                .iter()
                .map(|r| serde_json::from_str(r.get()).unwrap())
                .collect();
            tamper(&mut values);
            msg.entries = values
                .iter()
                .map(|v| serde_json::value::RawValue::from_string(v.to_string()).unwrap())
                .collect();
        }
        let text = serde_json::to_string(&msg).unwrap();
        self.received
            .fetch_add(text.len() as u64, Ordering::Relaxed);
        Ok(serde_json::from_str(&text).unwrap())
    }

    fn send<T: Serialize + DeserializeOwned>(&self, req: &T) -> T {
        let text = serde_json::to_string(req).unwrap();
        self.sent.fetch_add(text.len() as u64, Ordering::Relaxed);
        serde_json::from_str(&text).unwrap()
    }

    fn answer<T: Serialize + DeserializeOwned>(
        &self,
        resp: Result<T, String>,
    ) -> Result<T, TransportError> {
        let resp = resp.map_err(|message| TransportError {
            kind: "bad_request".into(),
            message,
        })?;
        let text = serde_json::to_string(&resp).unwrap();
        self.received
            .fetch_add(text.len() as u64, Ordering::Relaxed);
        Ok(serde_json::from_str(&text).unwrap())
    }
}

impl Remote for JsonRemote {
    async fn state(&self) -> Result<LedgerState, TransportError> {
        let mut state = answer::state(&self.store, "them");
        if self.v1_only {
            state.versions.clear();
        }
        self.answer(Ok(state))
    }
    async fn children(&self, req: &ChildrenRequest) -> Result<ChildrenResponse, TransportError> {
        let req = self.send(req);
        self.answer(answer::children(&self.store, &req))
    }
    async fn ids(&self, req: &IdsRequest) -> Result<IdsResponse, TransportError> {
        let req = self.send(req);
        self.answer(answer::ids(&self.store, &req))
    }
    async fn fetch(&self, req: &FetchRequest) -> Result<EntriesMessage, TransportError> {
        let req = self.send(req);
        let msg = answer::fetch(&self.store, &req).map_err(|message| TransportError {
            kind: "bad_request".into(),
            message,
        })?;
        self.entries_answer(msg)
    }
    async fn hello(&self, req: &HelloRequest) -> Result<Vec<u8>, TransportError> {
        if self.v1_only {
            return Err(TransportError::v2_unsupported());
        }
        let bytes = req.encode();
        self.sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let answer =
            reconcile_v2::answer::hello(&self.store, &bytes).map_err(|e| TransportError {
                kind: "bad_request".into(),
                message: e.to_string(),
            })?;
        self.received
            .fetch_add(answer.len() as u64, Ordering::Relaxed);
        Ok(answer)
    }
    async fn sketch(&self, req: &SketchRequest) -> Result<Vec<u8>, TransportError> {
        if self.v1_only {
            return Err(TransportError::v2_unsupported());
        }
        let bytes = req.encode();
        self.sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let page =
            reconcile_v2::answer::sketch(&self.store, &bytes).map_err(|e| TransportError {
                kind: "bad_request".into(),
                message: e.to_string(),
            })?;
        self.received
            .fetch_add(page.len() as u64, Ordering::Relaxed);
        Ok(page)
    }
    async fn fetch_short(&self, req: &ShortFetchRequest) -> Result<EntriesMessage, TransportError> {
        let bytes = req.encode();
        self.sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let msg =
            reconcile_v2::answer::fetch(&self.store, &bytes).map_err(|message| TransportError {
                kind: "bad_request".into(),
                message,
            })?;
        self.entries_answer(msg)
    }
    async fn push(&self, req: &EntriesMessage) -> Result<PushResponse, TransportError> {
        let text = serde_json::to_string(req).unwrap();
        self.sent.fetch_add(text.len() as u64, Ordering::Relaxed);
        let req: EntriesMessage = serde_json::from_str(&text).unwrap();
        let entries = answer::verify_push(&req, MAX).map_err(|e| TransportError {
            kind: e.kind().into(),
            message: e.to_string(),
        })?;
        let appended = self.store.append_batch(entries).await.unwrap();
        let accepted = appended.iter().filter(|a| a.inserted).count();
        self.answer(Ok(PushResponse {
            accepted,
            already_present: appended.len() - accepted,
        }))
    }
    fn bytes(&self) -> (u64, u64) {
        (
            self.sent.load(Ordering::Relaxed),
            self.received.load(Ordering::Relaxed),
        )
    }
}

fn entries(key: &NodeKey, range: std::ops::Range<u64>) -> Vec<Entry> {
    range
        .map(|n| {
            let payload = json!({ "n": n, "memo": "payment batch", "amount": n * 7 });
            Entry::sign(key, 1_700_000_000_000 + n, &payload, MAX).unwrap()
        })
        .collect()
}

async fn store_with(dir: &std::path::Path, items: &[Entry]) -> Store {
    let store = Store::open(dir, StoreOptions::default()).unwrap();
    for chunk in items.chunks(2000) {
        store.append_batch(chunk.to_vec()).await.unwrap();
    }
    store
}

fn json_size(items: &[Entry]) -> u64 {
    items.iter().map(|e| e.to_json().len() as u64).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_missing_of_ten_thousand_cost_about_the_ten_entries_not_the_ledger() {
    let key = NodeKey::from_seed([5; 32]);
    let common = entries(&key, 0..10_000);
    let extra = entries(&key, 10_000..10_010);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ours = store_with(a.path(), &common).await;
    let theirs_items: Vec<Entry> = common.iter().chain(&extra).cloned().collect();
    let theirs = JsonRemote::new(store_with(b.path(), &theirs_items).await);

    let report = reconcile::reconcile(&ours, &theirs, MAX).await.unwrap();
    assert_eq!(report.pulled, 10);
    assert_eq!(report.pushed, 0);
    assert_eq!(ours.root(), theirs.store.root());
    assert_eq!(report.our_root, report.their_root);

    let bytes = report.bytes_sent + report.bytes_received;
    let ledger = json_size(&theirs_items);
    let missing = json_size(&extra);
    // About d * log2(n) hashes: 10 differences * 14 levels, each hash at most ~100 bytes
    // of JSON, on top of the entries themselves.
    let hash_budget = 10 * 14 * 100;
    eprintln!(
        "reconciled 10 of 10,010: {bytes} bytes in {} requests ({} rounds); entries {missing} bytes, ledger {ledger} bytes",
        report.requests, report.rounds
    );
    assert!(
        bytes <= 3 * missing + hash_budget,
        "{bytes} bytes exchanged for {missing} bytes of missing entries"
    );
    assert!(
        bytes * 50 < ledger,
        "{bytes} bytes is not small next to the {ledger}-byte ledger"
    );

    // Already in sync: one small request.
    let again = reconcile::reconcile(&ours, &theirs, MAX).await.unwrap();
    assert!(again.in_sync_before);
    assert_eq!(again.requests, 1);
    assert!(again.bytes_sent + again.bytes_received < 300);
}

#[tokio::test]
async fn both_sides_get_what_they_lack() {
    let key = NodeKey::from_seed([6; 32]);
    let common = entries(&key, 0..300);
    let only_ours = entries(&key, 1_000..1_007);
    let only_theirs = entries(&key, 2_000..2_005);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ours_items: Vec<Entry> = common.iter().chain(&only_ours).cloned().collect();
    let theirs_items: Vec<Entry> = common.iter().chain(&only_theirs).cloned().collect();
    let ours = store_with(a.path(), &ours_items).await;
    let theirs = JsonRemote::new(store_with(b.path(), &theirs_items).await);

    let report = reconcile::reconcile(&ours, &theirs, MAX).await.unwrap();
    assert_eq!((report.pulled, report.pushed), (5, 7));
    assert_eq!(ours.root(), theirs.store.root());
    assert_eq!(ours.len(), 312);
}

#[tokio::test]
async fn an_empty_node_pulls_a_whole_ledger_page_by_page() {
    let key = NodeKey::from_seed([7; 32]);
    let all = entries(&key, 0..2_500);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ours = Store::open(a.path(), StoreOptions::default()).unwrap();
    let theirs = JsonRemote::new(store_with(b.path(), &all).await);
    let report = reconcile::reconcile(&ours, &theirs, MAX).await.unwrap();
    assert_eq!(report.pulled, 2_500);
    assert_eq!(ours.root(), theirs.store.root());

    // And the other way round: an empty neighbour gets everything pushed.
    let c = tempfile::tempdir().unwrap();
    let empty = JsonRemote::new(Store::open(c.path(), StoreOptions::default()).unwrap());
    let report = reconcile::reconcile(&ours, &empty, MAX).await.unwrap();
    assert_eq!(report.pushed, 2_500);
    assert_eq!(empty.store.root(), ours.root());
}

#[tokio::test]
async fn forged_entries_from_the_other_side_are_never_stored() {
    let key = NodeKey::from_seed([8; 32]);
    let common = entries(&key, 0..50);
    let extra = entries(&key, 100..103);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ours = store_with(a.path(), &common).await;
    let theirs_items: Vec<Entry> = common.iter().chain(&extra).cloned().collect();
    let mut theirs = JsonRemote::new(store_with(b.path(), &theirs_items).await);
    // The other side changes one payload but keeps the signature (and drops the id).
    theirs.tamper_fetch = Some(|values| {
        values[0]["payload"]["amount"] = json!(1_000_000);
        values[0].as_object_mut().unwrap().remove("id");
    });

    let err = reconcile::reconcile(&ours, &theirs, MAX).await.unwrap_err();
    assert!(matches!(err, ReconcileError::Forged(_)), "{err}");
    assert_eq!(err.kind(), "forged_entry");
    assert!(err.to_string().contains("fails verification"), "{err}");
    // The two honest entries were stored; the forged one was not.
    assert_eq!(ours.len(), 52);
    assert!(ours.verify_all().unwrap().problems.is_empty());
    let amounts: Vec<i64> = ours
        .latest(100)
        .unwrap()
        .iter()
        .map(|e| {
            serde_json::from_str::<serde_json::Value>(e.payload_json()).unwrap()["amount"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert!(!amounts.contains(&1_000_000));
}

#[tokio::test]
async fn a_remote_caught_forging_receives_nothing_of_ours() {
    let key = NodeKey::from_seed([9; 32]);
    let common = entries(&key, 0..20);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // We hold 5 entries they lack; they hold 3 we lack, and forge one when we fetch.
    let ours_items: Vec<Entry> = common
        .iter()
        .chain(&entries(&key, 200..205))
        .cloned()
        .collect();
    let theirs_items: Vec<Entry> = common
        .iter()
        .chain(&entries(&key, 300..303))
        .cloned()
        .collect();
    let ours = store_with(a.path(), &ours_items).await;
    let mut theirs = JsonRemote::new(store_with(b.path(), &theirs_items).await);
    theirs.tamper_fetch = Some(|values| {
        values[0]["payload"]["amount"] = json!(-1);
    });

    let err = reconcile::reconcile(&ours, &theirs, MAX).await.unwrap_err();
    assert_eq!(err.kind(), "forged_entry", "{err}");
    assert_eq!(
        theirs.store.len(),
        23,
        "the liar was pushed our entries in the sync where it was caught"
    );
    assert_eq!(ours.len(), 27, "the two honest entries it sent are kept");
}

#[tokio::test]
async fn a_push_with_one_bad_entry_changes_nothing() {
    let key = NodeKey::from_seed([9; 32]);
    let items = entries(&key, 0..3);
    let mut values: Vec<serde_json::Value> = items
        .iter()
        .map(|e| serde_json::from_str(&e.to_json()).unwrap())
        .collect();
    values[2]["signature"] = json!("00".repeat(64));
    let msg = EntriesMessage {
        entries: values
            .iter()
            .map(|v| serde_json::value::RawValue::from_string(v.to_string()).unwrap())
            .collect(),
    };
    let err = answer::verify_push(&msg, MAX).unwrap_err();
    assert_eq!(err.kind(), "bad_signature");
    assert!(err.to_string().starts_with("entry 3 of the push"), "{err}");
}

#[test]
fn requests_beyond_the_caps_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let many = ChildrenRequest {
        prefixes: vec![String::new(); reconcile::MAX_PREFIXES + 1],
    };
    assert!(answer::children(&store, &many).is_err());
    let bad = ChildrenRequest {
        prefixes: vec!["01x".into()],
    };
    assert!(answer::children(&store, &bad).unwrap_err().contains("01x"));
    let huge = IdsRequest {
        prefix: String::new(),
        after: None,
        limit: 1_000_000,
    };
    assert!(answer::ids(&store, &huge).is_err());
}

/// Walk bytes: everything exchanged minus the entries' own JSON.
fn walk_bytes(report: &reconcile::ReconcileReport, moved: u64) -> u64 {
    (report.bytes_sent + report.bytes_received).saturating_sub(moved)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_finds_ten_missing_of_ten_thousand_through_the_sketch_in_a_few_pages() {
    let key = NodeKey::from_seed([15; 32]);
    let common = entries(&key, 0..10_000);
    let only_theirs = entries(&key, 10_000..10_006);
    let only_ours = entries(&key, 20_000..20_004);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ours_items: Vec<Entry> = common.iter().chain(&only_ours).cloned().collect();
    let theirs_items: Vec<Entry> = common.iter().chain(&only_theirs).cloned().collect();
    let ours = store_with(a.path(), &ours_items).await;
    let theirs = JsonRemote::new(store_with(b.path(), &theirs_items).await);

    let report = reconcile::reconcile(&ours, &theirs, MAX).await.unwrap();
    assert_eq!(report.method, Method::Sketch);
    assert_eq!((report.pulled, report.pushed), (6, 4));
    assert_eq!(ours.root(), theirs.store.root());
    let moved = json_size(&only_theirs) + json_size(&only_ours);
    let walk = walk_bytes(&report, moved);
    eprintln!(
        "v2, d = 10 of 10,000: {walk} walk bytes, {} symbols, {} sketch pages, {} requests",
        report.symbols, report.rounds, report.requests
    );
    // The state answer (JSON, about 400 bytes), a few pages of 19-byte symbols, the
    // short-id fetch and the push envelopes: far below v1's 10 * 14 hashes.
    assert!(walk < 2_000, "{walk} walk bytes for 10 differences");
    assert!(report.rounds <= 3, "{} sketch pages", report.rounds);
}

#[tokio::test]
async fn a_v2_node_reconciles_with_a_peer_that_speaks_v1_only_by_the_walk() {
    let key = NodeKey::from_seed([16; 32]);
    let common = entries(&key, 0..300);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ours_items: Vec<Entry> = common
        .iter()
        .chain(&entries(&key, 500..503))
        .cloned()
        .collect();
    let theirs_items: Vec<Entry> = common
        .iter()
        .chain(&entries(&key, 600..604))
        .cloned()
        .collect();
    let ours = store_with(a.path(), &ours_items).await;
    let theirs = JsonRemote::v1(store_with(b.path(), &theirs_items).await);

    let report = reconcile::reconcile(&ours, &theirs, MAX).await.unwrap();
    assert_eq!(report.method, Method::Walk);
    assert_eq!(report.symbols, 0, "no sketch was asked of a v1 peer");
    assert_eq!((report.pulled, report.pushed), (4, 3));
    assert_eq!(ours.root(), theirs.store.root());
}

#[tokio::test]
async fn a_node_that_speaks_v1_only_still_reconciles_with_a_v2_node() {
    let key = NodeKey::from_seed([17; 32]);
    let common = entries(&key, 0..300);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ours_items: Vec<Entry> = common
        .iter()
        .chain(&entries(&key, 500..502))
        .cloned()
        .collect();
    let theirs_items: Vec<Entry> = common
        .iter()
        .chain(&entries(&key, 600..605))
        .cloned()
        .collect();
    let ours = store_with(a.path(), &ours_items).await;
    let theirs = JsonRemote::new(store_with(b.path(), &theirs_items).await);
    let old = Options {
        v1_only: true,
        ..Options::default()
    };

    let report = reconcile::reconcile_with(&ours, &theirs, MAX, &old)
        .await
        .unwrap();
    assert_eq!(report.method, Method::Walk);
    assert_eq!((report.pulled, report.pushed), (5, 2));
    assert_eq!(ours.root(), theirs.store.root());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sketch_that_does_not_decode_within_its_cap_falls_back_to_their_ids_once() {
    let key = NodeKey::from_seed([18; 32]);
    let common = entries(&key, 0..3_000);
    let only_ours = entries(&key, 10_000..10_100);
    let only_theirs = entries(&key, 20_000..20_100);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ours_items: Vec<Entry> = common.iter().chain(&only_ours).cloned().collect();
    let theirs_items: Vec<Entry> = common.iter().chain(&only_theirs).cloned().collect();
    let ours = store_with(a.path(), &ours_items).await;
    let theirs = JsonRemote::new(store_with(b.path(), &theirs_items).await);
    let capped = Options {
        max_symbols: Some(40),
        ..Options::default()
    };

    let report = reconcile::reconcile_with(&ours, &theirs, MAX, &capped)
        .await
        .unwrap();
    assert_eq!(report.method, Method::Ids, "200 differences in 40 symbols");
    assert_eq!(report.symbols, 40, "the sketch stopped at its cap");
    assert_eq!((report.pulled, report.pushed), (100, 100));
    assert_eq!(ours.root(), theirs.store.root());
    // Their 3,100 ids listed once (2 pages of at most 2048, about 67 JSON bytes per id),
    // never their whole ledger of entries.
    let ledger = json_size(&theirs_items);
    let moved = json_size(&only_theirs) + json_size(&only_ours);
    let walk = walk_bytes(&report, moved);
    assert!(walk < 3_100 * 80, "{walk} walk bytes");
    assert!(
        walk < ledger / 2,
        "{walk} walk bytes against a {ledger}-byte ledger"
    );
}

#[tokio::test]
async fn forged_entries_served_by_short_id_are_never_stored() {
    let key = NodeKey::from_seed([19; 32]);
    let common = entries(&key, 0..50);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ours = store_with(a.path(), &common).await;
    let theirs_items: Vec<Entry> = common
        .iter()
        .chain(&entries(&key, 90..92))
        .cloned()
        .collect();
    let mut theirs = JsonRemote::new(store_with(b.path(), &theirs_items).await);
    theirs.tamper_fetch = Some(|values| {
        for v in values.iter_mut() {
            v["payload"]["amount"] = json!(-1);
        }
    });

    let err = reconcile::reconcile(&ours, &theirs, MAX).await.unwrap_err();
    assert_eq!(err.kind(), "forged_entry", "{err}");
    assert_eq!(ours.len(), 50, "nothing forged was stored");
}

#[test]
fn v2_requests_that_cannot_be_read_or_exceed_the_caps_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let ok = SketchRequest {
        salt: lattice_node::sync::riblt::Salt([1; 16]),
        start: 0,
        count: 8,
    };
    assert!(reconcile_v2::answer::sketch(&store, &ok.encode()).is_ok());
    let mut v3 = ok.encode();
    v3[0] = 3;
    let err = reconcile_v2::answer::sketch(&store, &v3).unwrap_err();
    assert!(err.to_string().contains("v3"), "{err}");
    let err = reconcile_v2::answer::sketch(&store, &ok.encode()[..20]).unwrap_err();
    assert!(err.to_string().contains("20 bytes"), "{err}");
    let huge = SketchRequest {
        count: reconcile_v2::MAX_PAGE_SYMBOLS as u32 + 1,
        ..ok.clone()
    };
    assert!(reconcile_v2::answer::sketch(&store, &huge.encode()).is_err());
    let far = SketchRequest {
        start: reconcile_v2::MAX_SYMBOLS,
        ..ok.clone()
    };
    assert!(reconcile_v2::answer::sketch(&store, &far.encode()).is_err());
    let many = ShortFetchRequest {
        salt: ok.salt,
        shorts: vec![7; reconcile_v2::MAX_SHORT_FETCH + 1],
    };
    let err = reconcile_v2::answer::fetch(&store, &many.encode()).unwrap_err();
    assert!(err.contains("short ids"), "{err}");
    let err = reconcile_v2::answer::fetch(&store, &many.encode()[..20]).unwrap_err();
    assert!(err.contains("short-id fetch"), "{err}");
}

#[tokio::test]
async fn equal_ledgers_are_confirmed_in_one_round_trip_of_at_most_64_bytes() {
    let key = NodeKey::from_seed([21; 32]);
    let items = entries(&key, 0..200);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ours = store_with(a.path(), &items).await;
    let theirs = JsonRemote::new(store_with(b.path(), &items).await);
    let report = reconcile::reconcile(&ours, &theirs, MAX).await.unwrap();
    assert!(report.in_sync_before);
    assert_eq!(report.requests, 1);
    let bytes = report.bytes_sent + report.bytes_received;
    assert!(bytes <= 64, "{bytes} bytes to find equal ledgers");
}

#[tokio::test]
async fn one_new_entry_is_found_by_the_first_round_trip_in_under_200_bytes() {
    let key = NodeKey::from_seed([22; 32]);
    let common = entries(&key, 0..2_000);
    let new = entries(&key, 5_000..5_001);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ours = store_with(a.path(), &common).await;
    let theirs_items: Vec<Entry> = common.iter().chain(&new).cloned().collect();
    let theirs = JsonRemote::new(store_with(b.path(), &theirs_items).await);
    let report = reconcile::reconcile(&ours, &theirs, MAX).await.unwrap();
    assert_eq!(report.method, Method::Sketch);
    assert_eq!((report.pulled, report.pushed), (1, 0));
    assert_eq!(ours.root(), theirs.store.root());
    // The hello, then the fetch by short id: no page of symbols was asked for.
    assert_eq!((report.requests, report.rounds), (2, 0));
    let walk = walk_bytes(&report, json_size(&new));
    // The walk's bytes, and the fetch's envelope (17 + 8 bytes out, `{"entries":[]}`).
    assert!(walk <= 200 + 25 + 14, "{walk} bytes besides the entry");
}

#[tokio::test]
async fn a_node_of_another_ledger_is_refused_at_the_hello() {
    let key = NodeKey::from_seed([23; 32]);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ours = store_with(a.path(), &entries(&key, 0..5)).await;
    let genesis =
        lattice_node::ledger::Genesis::sign(&key, "another", true, &[key.public_bytes()], &[], 1)
            .unwrap();
    let other = Store::open(
        b.path(),
        StoreOptions {
            ledger: std::sync::Arc::new(lattice_node::ledger::Ledger::new(genesis)),
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let theirs = JsonRemote::new(other);
    let err = reconcile::reconcile(&ours, &theirs, MAX).await.unwrap_err();
    assert!(matches!(err, ReconcileError::OtherLedger { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answering_side_prepares_a_reconciliation_once_for_its_pages_and_fetches() {
    use lattice_node::sync::riblt::Salt;
    use lattice_node::sync::sketch_cache::SketchCache;
    let key = NodeKey::from_seed([24; 32]);
    let common = entries(&key, 0..3_000);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Both sides gained as many: the hello carries the estimator, then pages follow.
    let ours_items: Vec<Entry> = common
        .iter()
        .chain(&entries(&key, 9_000..9_020))
        .cloned()
        .collect();
    let theirs_items: Vec<Entry> = common
        .iter()
        .chain(&entries(&key, 8_000..8_020))
        .cloned()
        .collect();
    let ours = store_with(a.path(), &ours_items).await;
    let theirs = JsonRemote::new(store_with(b.path(), &theirs_items).await);
    let salt = Salt([0x5a; 16]);
    let root = theirs.store.root();
    let options = Options {
        salt: Some(salt),
        ..Options::default()
    };
    let report = reconcile::reconcile_with(&ours, &theirs, MAX, &options)
        .await
        .unwrap();
    assert_eq!(report.method, Method::Sketch);
    assert_eq!((report.pulled, report.pushed), (20, 20));
    // hello + pages + one fetch by short id, all under one salt and root; one was
    // the preparation, every other one a reuse.
    let asked = (report.rounds + 2) as u64;
    assert_eq!(SketchCache::global().uses(&salt, &root), Some(asked - 1));
    // The push changed the answering side's root: that is another set, prepared anew.
    assert_ne!(theirs.store.root(), root);
    assert_eq!(
        SketchCache::global().uses(&salt, &theirs.store.root()),
        None
    );
}

/// A real node behind a router that answers its hello route 404, as a node older than
/// the hello does: a v2 asker falls back to the state answer (which announces v2) and
/// reconciles by the sketch pages, over a real loopback socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http_a_node_without_the_hello_is_asked_for_its_state_and_reconciles() {
    let key = NodeKey::from_seed([25; 32]);
    let common = entries(&key, 0..300);
    let tmp = tempfile::tempdir().unwrap();
    let theirs_dir = tmp.path().join("theirs");
    let theirs_items: Vec<Entry> = common
        .iter()
        .chain(&entries(&key, 700..707))
        .cloned()
        .collect();
    store_with(&theirs_dir, &theirs_items).await.close();
    let ours_items: Vec<Entry> = common
        .iter()
        .chain(&entries(&key, 800..803))
        .cloned()
        .collect();
    let ours = store_with(&tmp.path().join("ours"), &ours_items).await;

    let (node, client, serving) = serve_node(theirs_dir, true).await;
    let err = client
        .hello(&HelloRequest {
            ledger: reconcile_v2::ledger_prefix(&ours.ledger().id()),
            root: ours.root(),
            count: ours.len() as u64,
            salt: lattice_node::sync::riblt::Salt([1; 16]),
        })
        .await
        .unwrap_err();
    assert!(err.is_v2_unsupported(), "{err:?}");
    let report = reconcile::reconcile(&ours, &client, MAX).await.unwrap();
    assert_eq!(report.method, Method::Sketch);
    assert_eq!((report.pulled, report.pushed), (7, 3));
    assert_eq!(ours.root(), node.store().root());

    node.shutdown_token().cancel();
    let _ = serving.await;
    node.shutdown().await;
}

/// A real node over `dir`, served on a loopback socket (its hello route answering 404,
/// as an older node's, when `without_hello`), and a neighbour client of it.
async fn serve_node(
    dir: std::path::PathBuf,
    without_hello: bool,
) -> (
    lattice_node::node::NodeHandle,
    lattice_node::http::client::NeighborClient,
    tokio::task::JoinHandle<()>,
) {
    use lattice_node::api::{self as server, ServerOptions};
    use lattice_node::config::{Config, Overrides};
    use lattice_node::http::client::{ClientLimits, NeighborClient};
    use lattice_node::http::wire::paths;
    use lattice_node::node::{NodeHandle, NodeOptions};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let vars = [
        ("LATTICE_HTTP_LISTEN", addr.to_string()),
        ("LATTICE_P2P_LISTEN", "/ip4/127.0.0.1/tcp/0".to_string()),
        (
            "LATTICE_API_TOKEN",
            "reconcile-test-token-0123456789".to_string(),
        ),
    ];
    let overrides = Overrides {
        data_dir: Some(dir),
        ..Overrides::default()
    };
    let config = Config::from_pairs(&vars, &overrides).unwrap();
    let token = config.api_token.clone();
    let node = NodeHandle::start(config, NodeOptions::fast())
        .await
        .unwrap();
    let options = ServerOptions::default();
    let mut app = server::router(node.clone(), &options);
    if without_hello {
        app = axum::Router::new()
            .route(
                &format!("/{}", paths::HELLO),
                axum::routing::post(|| async {
                    (
                        axum::http::StatusCode::NOT_FOUND,
                        r#"{"kind":"not_found","message":"no such endpoint"}"#,
                    )
                }),
            )
            .fallback_service(app);
    }
    let serving = tokio::spawn(server::serve(listener, app, options, node.shutdown_token()));
    let base = url::Url::parse(&format!("http://{addr}/")).unwrap();
    let client = NeighborClient::new(base, token, ClientLimits::default()).unwrap();
    (node, client, serving)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http_a_sketch_that_does_not_decode_within_its_cap_falls_back_to_ids() {
    let key = NodeKey::from_seed([26; 32]);
    let common = entries(&key, 0..300);
    let tmp = tempfile::tempdir().unwrap();
    let theirs_dir = tmp.path().join("theirs");
    let theirs_items: Vec<Entry> = common
        .iter()
        .chain(&entries(&key, 700..730))
        .cloned()
        .collect();
    store_with(&theirs_dir, &theirs_items).await.close();
    let ours_items: Vec<Entry> = common
        .iter()
        .chain(&entries(&key, 800..830))
        .cloned()
        .collect();
    let ours = store_with(&tmp.path().join("ours"), &ours_items).await;
    let (node, client, serving) = serve_node(theirs_dir, false).await;

    let capped = Options {
        max_symbols: Some(24),
        ..Options::default()
    };
    let report = reconcile::reconcile_with(&ours, &client, MAX, &capped)
        .await
        .unwrap();
    // Equal counts: the hello brought 20 symbols; one page of 4 more reached the cap.
    assert_eq!(report.method, Method::Ids, "60 differences in 24 symbols");
    assert_eq!(report.symbols, 24);
    assert_eq!((report.pulled, report.pushed), (30, 30));
    assert_eq!(ours.root(), node.store().root());

    node.shutdown_token().cancel();
    let _ = serving.await;
    node.shutdown().await;
}

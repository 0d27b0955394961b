use super::*;
use crate::ledger::DEFAULT_MAX_PAYLOAD;

fn key(n: u8) -> NodeKey {
    NodeKey::from_seed([n; 32])
}

/// Founder 1 (administrator), authors 2 and 3; 4 is an outsider.
fn bank() -> Ledger {
    let g = Genesis::sign(
        &key(1),
        "bank",
        false,
        &[key(2).public_bytes(), key(3).public_bytes()],
        &[],
        5,
    )
    .unwrap();
    Ledger::new(g)
}

fn entry(n: u8, i: u64) -> Entry {
    Entry::sign(
        &key(n),
        i,
        &serde_json::json!({ "i": i }),
        DEFAULT_MAX_PAYLOAD,
    )
    .unwrap()
}

fn record(ledger: &Ledger, op: Op, who: u8, keep: BTreeSet<EntryId>) -> Entry {
    let r = ledger
        .sign_record(
            &key(1),
            op,
            &key(who).public_bytes(),
            keep,
            9,
            DEFAULT_MAX_PAYLOAD,
        )
        .unwrap();
    ledger.check(&r).unwrap();
    r
}

#[test]
fn refusals_are_remembered_in_a_bounded_set() {
    let ledger = bank();
    let member = entry(2, 1);
    assert!(ledger.check(&member).is_ok());
    let mut first = None;
    for i in 0..(MAX_REFUSED + 10) {
        let e = entry(4, i as u64);
        let err = ledger.check(&e).unwrap_err();
        assert_eq!(err.entry, e.id());
        first.get_or_insert(e.id());
    }
    assert_eq!(ledger.refused_count(), MAX_REFUSED);
    assert!(
        !ledger.was_refused(&first.unwrap()),
        "the oldest is forgotten first"
    );
    assert!(!ledger.was_refused(&member.id()));
}

#[test]
fn an_added_author_may_write_and_earlier_refusals_are_forgotten_for_a_recheck() {
    let ledger = bank();
    let early = entry(4, 1);
    assert!(ledger.check(&early).is_err());
    assert!(ledger.was_refused(&early.id()));
    let add = record(&ledger, Op::Add, 4, BTreeSet::new());
    let change = ledger
        .learn(std::slice::from_ref(&add))
        .expect("membership changed");
    assert!(change.authors.is_empty(), "an add evicts nothing");
    assert!(
        !ledger.was_refused(&early.id()),
        "refusals are forgotten, so reconciliation fetches and checks them again"
    );
    assert!(ledger.check(&early).is_ok());
    assert!(ledger.is_member(&key(4).public_bytes()));
    assert_eq!(ledger.member_count(), 3);
}

#[test]
fn a_removed_author_keeps_exactly_the_entries_its_removal_names() {
    let ledger = bank();
    let kept = entry(3, 1);
    let later = entry(3, 2);
    let remove = record(&ledger, Op::Remove, 3, [kept.id()].into());
    let change = ledger.learn(&[remove]).expect("membership changed");
    assert_eq!(
        change.authors,
        vec![(key(3).public_bytes(), [kept.id()].into())]
    );
    assert!(ledger.check(&kept).is_ok());
    let err = ledger.check(&later).unwrap_err();
    assert!(
        err.to_string().contains("was removed as an author"),
        "{err}"
    );
    assert!(!ledger.is_member(&key(3).public_bytes()));
    assert_eq!(ledger.members().removed.len(), 1);
}

#[test]
fn only_an_administrator_signs_records_and_only_on_a_closed_ledger() {
    let ledger = bank();
    let err = ledger
        .sign_record(
            &key(2),
            Op::Add,
            &key(4).public_bytes(),
            BTreeSet::new(),
            1,
            4096,
        )
        .unwrap_err();
    assert_eq!(err.kind(), "not_admin");
    // A record an author signs itself (the payload built by hand) is refused on arrival.
    let payload = record_payload(
        ledger.id(),
        ledger.id().0,
        Op::Add,
        &key(4).public_bytes(),
        &BTreeSet::new(),
    );
    let forged = Entry::sign(&key(2), 1, &payload, 4096).unwrap();
    let err = ledger.check(&forged).unwrap_err();
    assert!(err.to_string().contains("not an administrator"), "{err}");
    assert!(ledger.learn(&[forged]).is_none());
    assert!(!ledger.is_member(&key(4).public_bytes()));

    let dev = Ledger::default();
    let err = dev
        .sign_record(
            &key(1),
            Op::Add,
            &key(4).public_bytes(),
            BTreeSet::new(),
            1,
            4096,
        )
        .unwrap_err();
    assert_eq!(err.kind(), "open_ledger");
}

#[test]
fn a_record_of_another_ledger_or_malformed_is_refused() {
    let ledger = bank();
    let other = Ledger::new(
        Genesis::sign(&key(1), "other", false, &[key(2).public_bytes()], &[], 5).unwrap(),
    );
    let foreign = other
        .sign_record(
            &key(1),
            Op::Add,
            &key(4).public_bytes(),
            BTreeSet::new(),
            1,
            4096,
        )
        .unwrap();
    let err = ledger.check(&foreign).unwrap_err();
    assert!(err.to_string().contains(&other.id().to_hex()), "{err}");
    let extra = serde_json::json!({ MEMBERSHIP_KEY: {"v": 1}, "note": "x" });
    let bad = Entry::sign(&key(1), 1, &extra, 4096).unwrap();
    assert!(ledger.check(&bad).is_err());
    // An ordinary entry that merely mentions the key is an ordinary entry.
    let mention = Entry::sign(
        &key(2),
        1,
        &serde_json::json!({"note": MEMBERSHIP_KEY}),
        4096,
    )
    .unwrap();
    assert!(ledger.check(&mention).is_ok());
}

#[test]
fn of_two_successors_of_one_record_the_smaller_id_wins_whatever_the_arrival_order() {
    let a = bank();
    let add4 = a
        .sign_record(
            &key(1),
            Op::Add,
            &key(4).public_bytes(),
            BTreeSet::new(),
            1,
            4096,
        )
        .unwrap();
    let add5 = a
        .sign_record(
            &key(1),
            Op::Add,
            &key(5).public_bytes(),
            BTreeSet::new(),
            2,
            4096,
        )
        .unwrap();
    let (winner, loser) = if add4.id() < add5.id() {
        (4, 5)
    } else {
        (5, 4)
    };
    let b = bank();
    a.learn(std::slice::from_ref(&add4));
    a.learn(std::slice::from_ref(&add5));
    b.learn(&[add5]);
    b.learn(&[add4]);
    for l in [&a, &b] {
        assert!(l.is_member(&key(winner).public_bytes()));
        assert!(!l.is_member(&key(loser).public_bytes()));
        let info = l.members();
        assert_eq!(info.records.iter().filter(|r| r.applied).count(), 1);
        assert_eq!(
            info.records.len(),
            2,
            "the loser stays stored, without effect"
        );
    }
    assert_eq!(a.members().head, b.members().head);
    // The loser's issuer re-issues on top of the winner.
    let again = a
        .sign_record(
            &key(1),
            Op::Add,
            &key(loser).public_bytes(),
            BTreeSet::new(),
            3,
            4096,
        )
        .unwrap();
    a.learn(&[again]);
    assert!(a.is_member(&key(loser).public_bytes()));
}

#[test]
fn adding_a_member_twice_or_removing_a_stranger_is_refused_before_signing() {
    let ledger = bank();
    let err = ledger
        .sign_record(
            &key(1),
            Op::Add,
            &key(2).public_bytes(),
            BTreeSet::new(),
            1,
            4096,
        )
        .unwrap_err();
    assert_eq!(err.kind(), "already_member");
    let err = ledger
        .sign_record(
            &key(1),
            Op::Remove,
            &key(4).public_bytes(),
            BTreeSet::new(),
            1,
            4096,
        )
        .unwrap_err();
    assert_eq!(err.kind(), "not_member");
    let many: BTreeSet<EntryId> = (0..100).map(|i| entry(3, i).id()).collect();
    let err = ledger
        .sign_record(&key(1), Op::Remove, &key(3).public_bytes(), many, 1, 4096)
        .unwrap_err();
    assert_eq!(err.kind(), "too_many_kept");
    assert!(err.to_string().contains("100 entries"), "{err}");
}

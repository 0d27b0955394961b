//! The node's own story, as a failover timeline draws it: a real two-node P2P link cut
//! and restored by the operator, then a forced mode, recorded in the snapshot's
//! `transitions` and announced as operator events.

mod support;

use lattice_node::config::Mode;
use lattice_node::status::{EventKind, Lung, NodeEvent, Status, TRANSITIONS_KEPT, TransitionKind};
use support::*;

/// The records' kinds in order, in a form a failing assertion prints readably.
fn story(s: &Status) -> Vec<String> {
    s.transitions
        .iter()
        .map(|r| match &r.what {
            TransitionKind::Lung { from, to, .. } => format!("{from}->{to}"),
            TransitionKind::CountdownStarted { .. } => "countdown".into(),
            TransitionKind::CountdownReset { .. } => "reset".into(),
            TransitionKind::Operator { action, mode, by } => {
                format!(
                    "{by}:{action:?}{}",
                    mode.map(|m| format!("={m}")).unwrap_or_default()
                )
            }
        })
        .collect()
}

fn operator_events(events: &mut tokio::sync::broadcast::Receiver<NodeEvent>) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let EventKind::Operator { action, mode, by } = e.what {
            out.push(format!(
                "{by}:{action:?}{}",
                mode.map(|m| format!("={m}")).unwrap_or_default()
            ));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_and_restore_by_the_operator_are_recorded_with_their_consequences_in_order() {
    let nodes = p2p_cluster(2, &[]).await;
    let a = &nodes[0];
    eventually("A has its sync peer", WAIT, || sync_peers(a) == 1).await;
    eventually("A carries over P2P", WAIT, || all_in(&nodes[..1], "P2P")).await;
    let mut events = a.node.subscribe_events();
    let before = a.status().transitions.len();

    a.node.set_p2p_blocked(true).await.unwrap();
    eventually("A falls back to HTTP", WAIT, || all_in(&nodes[..1], "HTTP")).await;
    let cut = a.status();
    assert_eq!(
        story(&cut)[before..],
        ["operator:P2pCut", "countdown", "P2P->HTTP"],
        "{:?}",
        cut.transitions
    );
    // The countdown record names the deadline the lung switch then met.
    let (countdown, switch) = (&cut.transitions[before + 1], &cut.transitions[before + 2]);
    match countdown.what {
        TransitionKind::CountdownStarted { deadline_ms } => {
            assert!(switch.at_ms >= deadline_ms, "{countdown:?} {switch:?}");
            assert_eq!(deadline_ms - countdown.at_ms, cut.fallback_after_ms);
        }
        ref other => panic!("not a countdown: {other:?}"),
    }
    assert!(
        cut.transitions.windows(2).all(|w| w[0].at_ms <= w[1].at_ms),
        "oldest first: {:?}",
        cut.transitions
    );

    // Cutting what is already cut is no action: nothing new is recorded.
    a.node.set_p2p_blocked(true).await.unwrap();
    assert_eq!(a.status().transitions.len(), before + 3);

    a.node.set_p2p_blocked(false).await.unwrap();
    eventually("A is back on P2P", WAIT, || all_in(&nodes[..1], "P2P")).await;
    let restored = story(&a.status());
    assert_eq!(restored[before + 3], "operator:P2pRestored", "{restored:?}");
    assert_eq!(
        restored.last().map(String::as_str),
        Some("HTTP->P2P"),
        "{restored:?}"
    );

    let forced = a.node.switch_mode(Mode::Http).await.unwrap();
    let tail: Vec<String> = story(&forced).into_iter().rev().take(2).rev().collect();
    assert_eq!(tail, ["operator:ModeSet=http", "P2P->HTTP"]);
    match &forced.transitions.last().unwrap().what {
        TransitionKind::Lung {
            to: Lung::Http,
            reason,
            ..
        } => {
            assert!(reason.contains("forced"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    // Setting the mode it already has changes nothing and records nothing.
    let again = a.node.switch_mode(Mode::Http).await.unwrap();
    assert_eq!(again.transitions, forced.transitions);

    assert_eq!(
        operator_events(&mut events),
        [
            "operator:P2pCut",
            "operator:P2pRestored",
            "operator:ModeSet=http"
        ],
        "every face's event log hears each action once"
    );
    assert!(forced.transitions.len() <= TRANSITIONS_KEPT);
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_event_serializes_with_type_operator_action_mode_and_by() {
    let nodes = cluster(1, &[]).await;
    let mut events = nodes[0].node.subscribe_events();
    nodes[0].node.switch_mode(Mode::P2p).await.unwrap();
    let event = loop {
        let e = events.recv().await.unwrap();
        if matches!(e.what, EventKind::Operator { .. }) {
            break e;
        }
    };
    let json = serde_json::to_value(&event).unwrap();
    assert_eq!(json["type"], "operator");
    assert_eq!(json["action"], "mode_set");
    assert_eq!(json["mode"], "p2p");
    assert_eq!(json["by"], "operator");
    let record = serde_json::to_value(nodes[0].status().transitions.last().unwrap()).unwrap();
    assert_eq!(record["kind"], "operator", "{record}");
    assert_eq!(record["action"], "mode_set", "{record}");
    for n in nodes {
        n.stop().await;
    }
}

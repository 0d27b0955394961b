//! The node's recent story for the snapshot: a bounded record of lung changes, fallback
//! countdowns and the operator's actions, oldest first.

use std::collections::VecDeque;

use crate::config::Mode;
use crate::status::{OperatorAction, TRANSITIONS_KEPT, TransitionKind, TransitionRecord};
use crate::sync::lungs::LungEvent;

#[derive(Debug, Default)]
pub(super) struct Transitions {
    kept: VecDeque<TransitionRecord>,
}

impl Transitions {
    pub(super) fn push(&mut self, at_ms: u64, what: TransitionKind) {
        if self.kept.len() == TRANSITIONS_KEPT {
            self.kept.pop_front();
        }
        self.kept.push_back(TransitionRecord { at_ms, what });
    }

    /// Keeps the lung events a timeline draws; the rest (started, stable, mode changed:
    /// the operator record says that one) stay in the event stream only.
    pub(super) fn lung_event(&mut self, at_ms: u64, event: &LungEvent) {
        let what = match event {
            LungEvent::Transition(t) => TransitionKind::Lung {
                from: t.from,
                to: t.to,
                reason: t.reason.clone(),
            },
            LungEvent::PeerlessTimerStarted { deadline_ms, .. } => {
                TransitionKind::CountdownStarted {
                    deadline_ms: *deadline_ms,
                }
            }
            LungEvent::PeerlessTimerReset { peers } => {
                TransitionKind::CountdownReset { peers: *peers }
            }
            _ => return,
        };
        // A lung transition carries its own time (the heartbeat's clock).
        let at_ms = match event {
            LungEvent::Transition(t) => t.at_ms,
            _ => at_ms,
        };
        self.push(at_ms, what);
    }

    pub(super) fn operator(
        &mut self,
        at_ms: u64,
        action: OperatorAction,
        mode: Option<Mode>,
        by: &str,
    ) {
        self.push(
            at_ms,
            TransitionKind::Operator {
                action,
                mode,
                by: by.to_string(),
            },
        );
    }

    pub(super) fn to_vec(&self) -> Vec<TransitionRecord> {
        self.kept.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Lung;
    use crate::sync::lungs::Transition;

    #[test]
    fn only_the_last_32_records_are_kept_oldest_first() {
        let mut t = Transitions::default();
        for i in 0..40u64 {
            t.push(i, TransitionKind::CountdownReset { peers: 1 });
        }
        let kept = t.to_vec();
        assert_eq!(kept.len(), TRANSITIONS_KEPT);
        assert_eq!(kept.first().map(|r| r.at_ms), Some(8));
        assert_eq!(kept.last().map(|r| r.at_ms), Some(39));
    }

    #[test]
    fn a_lung_transition_is_recorded_at_its_own_time_and_quiet_events_are_not() {
        let mut t = Transitions::default();
        t.lung_event(5, &LungEvent::Started);
        t.lung_event(5, &LungEvent::PeersStable { peers: 2 });
        t.lung_event(
            9,
            &LungEvent::Transition(Transition {
                at_ms: 7,
                from: Lung::P2p,
                to: Lung::Http,
                reason: "no sync peers for 6s".into(),
            }),
        );
        let kept = t.to_vec();
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert_eq!(kept[0].at_ms, 7);
        let json = serde_json::to_value(&kept[0]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"at_ms": 7, "kind": "lung", "from": "P2P", "to": "HTTP",
                "reason": "no sync peers for 6s"})
        );
    }
}

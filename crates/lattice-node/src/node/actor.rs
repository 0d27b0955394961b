//! The actor's loop: it owns the store, the schedule and the lungs' state, feeds the
//! schedule what happens, and carries out the actions it decides.

use std::collections::VecDeque;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::config::Mode;
use crate::ledger::Entry;
use crate::metrics::TransitionLabels;
use crate::status::{EventKind, NodeEvent, OPERATOR, OperatorAction};
use crate::sync::lungs::LungEvent;
use crate::sync::schedule::{Action, Input};

use super::{Actor, Channels, Command, ENTRY_EVENTS_PER_COMMIT, INPUTS_PER_STEP, SWARM_CLOSE};

impl Actor {
    pub(super) async fn run(mut self, mut ch: Channels, cancel: CancellationToken) {
        let mut committed = self.store.subscribe();
        let mut shutdown_reply = None;
        loop {
            let wake = self.clock.instant(self.schedule.next_wakeup());
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                _ = &mut ch.life => break,
                cmd = ch.commands.recv() => match cmd {
                    Some(Command::Shutdown { reply }) => {
                        shutdown_reply = Some(reply);
                        break;
                    }
                    Some(cmd) => self.command(cmd).await,
                    None => break,
                },
                Some(event) = ch.p2p_events.recv() => self.p2p_event(event).await,
                Some(done) = ch.p2p_done.recv() => self.p2p_sync_done(done).await,
                Some(done) = ch.done.recv() => self.sync_done(done).await,
                _ = tokio::time::sleep_until(wake) => self.feed(Input::Tick).await,
                got = committed.recv() => match got {
                    Ok(entries) => self.committed(&entries).await,
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => break,
                },
            }
            self.publish();
        }
        self.close(cancel).await;
        if let Some(reply) = shutdown_reply {
            let _ = reply.send(());
        }
        tracing::info!("node actor stopped");
    }

    /// Everything the node runs, stopped and waited for: the HTTP lung's work, the server
    /// and the swarm (through the token), then the store's writer.
    pub(super) async fn close(&mut self, cancel: CancellationToken) {
        cancel.cancel();
        if let Some(token) = self.http_lung.take() {
            token.cancel();
        }
        if tokio::time::timeout(SWARM_CLOSE, self.p2p.handle.closed())
            .await
            .is_err()
        {
            tracing::warn!("the P2P swarm did not close within {SWARM_CLOSE:?}");
        }
        let store = self.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.close()).await;
    }

    /// Hands `input` to the schedule and carries out what it asks, feeding back what the
    /// actions report.
    pub(super) async fn feed(&mut self, input: Input) {
        let mut queue = VecDeque::from([input]);
        for _ in 0..INPUTS_PER_STEP {
            let Some(input) = queue.pop_front() else {
                return;
            };
            let actions = self.schedule.handle(self.clock.now_ms(), input);
            queue.extend(self.perform_all(actions).await);
        }
        tracing::warn!("the schedule asked for more than {INPUTS_PER_STEP} steps at once");
    }

    pub(super) async fn perform_all(&mut self, actions: Vec<Action>) -> Vec<Input> {
        let mut reports = Vec::new();
        for action in actions {
            reports.extend(self.perform(action).await);
        }
        reports
    }

    /// Carries one action out; some report back at once.
    pub(super) async fn perform(&mut self, action: Action) -> Option<Input> {
        match action {
            Action::Lung(event) => self.lung_event(event),
            Action::HttpLungActive => self.http_lung_active(),
            Action::HttpLungStandby => self.http_lung_standby(),
            Action::SyncNeighbor { index } => {
                let done = self.done_tx.clone();
                self.sync_neighbor(index, &done);
            }
            Action::CheckNeighbor { index } => {
                let done = self.done_tx.clone();
                self.check_neighbor(index, &done);
            }
            Action::Follow { index, epoch } => self.follow_neighbor(index, epoch),
            Action::SyncPeer(peer) => {
                let done = self.p2p_done_tx.clone();
                if !self.sync_peer(&peer, &done) {
                    return Some(Input::PeerSyncDone(peer));
                }
            }
            Action::SetGossip(on) => self.p2p.handle.set_gossip(on).await,
            Action::BlockP2p(blocked) => self.block_p2p(blocked).await,
            Action::RefreshPeers => return Some(self.refresh_peers(false).await),
        }
        None
    }

    pub(super) async fn command(&mut self, cmd: Command) {
        match cmd {
            Command::SwitchMode { mode, reply } => {
                if mode != self.schedule.mode() {
                    self.operator(OperatorAction::ModeSet, Some(mode));
                }
                self.feed(Input::SetMode(mode)).await;
                // Published before the reply, so the caller's next `status()` agrees.
                self.publish();
                let _ = reply.send(self.published());
            }
            Command::SetP2pBlocked { blocked, reply } => {
                if blocked != self.schedule.p2p_blocked() {
                    let action = if blocked {
                        OperatorAction::P2pCut
                    } else {
                        OperatorAction::P2pRestored
                    };
                    self.operator(action, None);
                }
                self.feed(Input::SetP2pBlocked(blocked)).await;
                self.publish();
                let _ = reply.send(self.published());
            }
            Command::Follower {
                index,
                epoch,
                report,
            } => self.follower_report(index, epoch, report).await,
            Command::Carried(flow) => self.entries_by_lung.http.add(flow),
            // Handled by the loop, which stops.
            Command::Shutdown { .. } => {}
        }
    }

    pub(super) fn emit(&self, what: EventKind) {
        let _ = self.events.send(NodeEvent {
            at_ms: self.clock.now_ms(),
            what,
        });
    }

    /// Recorded before the change is applied, so the story reads cause, then effects.
    pub(super) fn operator(&mut self, action: OperatorAction, mode: Option<Mode>) {
        // The heartbeat's clock, as the lung transitions it sits between.
        let at_ms = self.clock.now_ms();
        self.transitions.operator(at_ms, action, mode, OPERATOR);
        self.emit(EventKind::Operator {
            action,
            mode,
            by: OPERATOR.to_string(),
        });
    }

    pub(super) fn lung_event(&mut self, event: LungEvent) {
        self.transitions.lung_event(self.clock.now_ms(), &event);
        for line in event.log_lines(self.config.fallback_after) {
            tracing::info!("{line}");
        }
        if let LungEvent::Transition(t) = &event {
            self.metrics
                .mode_transitions
                .get_or_create(&TransitionLabels {
                    to: t.to.to_string(),
                })
                .inc();
        }
        self.emit(EventKind::Lung { event });
    }

    pub(super) async fn committed(&mut self, entries: &[Entry]) {
        self.feed(Input::EntryCommitted).await;
        self.metrics.entries.set(self.store.len() as i64);
        self.metrics.root_changes.inc();
        for e in entries.iter().take(ENTRY_EVENTS_PER_COMMIT) {
            self.emit(EventKind::EntryAdded {
                id: e.id().to_hex(),
                author: e.author(),
            });
        }
    }
}

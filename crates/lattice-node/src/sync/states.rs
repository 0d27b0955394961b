//! What each lung is doing, in words a face shows as they are: decided here once, so the
//! window, the browser dashboard and the CLI cannot disagree about it.
//!
//! Pure: a [`Situation`] (what the node knows at a snapshot) in, [`LungStates`] out. The
//! reasons never contain relative times ("in 40 s"), because a snapshot is only
//! republished when something changes; deadlines travel as absolute fields instead.

use serde::{Deserialize, Serialize};

use crate::sync::Mode;
use crate::sync::lungs::Lung;

/// The P2P lung's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum P2pState {
    /// P2P may sync and at least one sync peer is live.
    Carrying,
    /// Mode auto, no live sync peer, the fallback timer runs.
    Countdown,
    /// No live sync peer and no countdown: HTTP carries (after the fallback), or the
    /// mode forbids a fallback.
    Down,
    /// P2P blocked on this node on purpose.
    Cut,
    /// Mode forced to `http`.
    Off,
}

/// The HTTP lung's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpState {
    /// HTTP sync enabled and at least one neighbour healthy.
    Carrying,
    /// HTTP sync enabled and no neighbour healthy (or none configured).
    Failing,
    /// Not carrying; at least one neighbour checked healthy: the reserve works.
    Standby,
    /// Not carrying; no neighbour healthy (or none configured): the reserve would fail.
    Unready,
    /// Mode forced to `p2p`.
    Off,
}

/// Which lung carries sync now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    P2p,
    Http,
    /// Neither lung has a live partner: nothing reaches this node, nothing leaves it.
    Isolated,
}

/// Where the heartbeat's fallback stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FallbackPhase {
    /// Mode forced (`p2p` or `http`): the heartbeat does not steer.
    Forced,
    /// Mode auto with sync peers (or not yet sampled): no timer.
    Watching,
    /// Mode auto, peerless, the timer runs toward `fallback_deadline_ms`.
    Countdown,
    /// The HTTP fallback is active until a sync peer returns.
    Active,
}

/// What the node knows when it makes a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Situation {
    pub mode: Mode,
    /// Whether the heartbeat steers (mode auto and started).
    pub heartbeat_active: bool,
    pub sync_lung: Lung,
    pub http_sync_enabled: bool,
    pub p2p_blocked: bool,
    /// Sync-capable peers live now.
    pub live_sync_peers: usize,
    /// Whether the fallback timer runs (a deadline exists).
    pub countdown_running: bool,
    /// Whether the fallback has fired and not yet been undone.
    pub fallback_active: bool,
    pub neighbors: usize,
    /// Neighbours whose last exchange (sync or standby check) succeeded.
    pub healthy_neighbors: usize,
}

/// Each lung's state with a one-line reason, the overall state and the fallback phase.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LungStates {
    pub p2p_state: P2pState,
    pub p2p_reason: String,
    pub http_state: HttpState,
    pub http_reason: String,
    pub sync_state: SyncState,
    pub sync_reason: String,
    pub fallback_phase: FallbackPhase,
}

/// The one decision. A cut is reported before a forced mode: the presenter who cut P2P
/// sees that it is cut, whatever the mode.
pub fn derive(s: &Situation) -> LungStates {
    let (p2p_state, p2p_reason) = p2p(s);
    let (http_state, http_reason) = http(s);
    let (sync_state, sync_reason) = match (p2p_state, http_state) {
        // Both carry only for the heartbeat between a peer's return and the switch
        // back: the lung the state machine chose is the one said.
        (P2pState::Carrying, HttpState::Carrying) => match s.sync_lung {
            Lung::P2p => (SyncState::P2p, "P2P carries sync".to_string()),
            Lung::Http => (SyncState::Http, "HTTP carries sync".to_string()),
        },
        (P2pState::Carrying, _) => (SyncState::P2p, "P2P carries sync".to_string()),
        (_, HttpState::Carrying) => (SyncState::Http, "HTTP carries sync".to_string()),
        _ => (
            SyncState::Isolated,
            "no live sync peer and no healthy neighbour carrying sync".to_string(),
        ),
    };
    let fallback_phase = if !s.heartbeat_active {
        FallbackPhase::Forced
    } else if s.fallback_active {
        FallbackPhase::Active
    } else if s.countdown_running {
        FallbackPhase::Countdown
    } else {
        FallbackPhase::Watching
    };
    LungStates {
        p2p_state,
        p2p_reason,
        http_state,
        http_reason,
        sync_state,
        sync_reason,
        fallback_phase,
    }
}

fn p2p(s: &Situation) -> (P2pState, String) {
    if s.p2p_blocked {
        return (
            P2pState::Cut,
            "P2P cut on this node: every connection closed and refused".into(),
        );
    }
    if s.mode == Mode::Http {
        return (P2pState::Off, "mode forced to http".into());
    }
    if s.live_sync_peers > 0 {
        return (
            P2pState::Carrying,
            format!("{} live", peers(s.live_sync_peers)),
        );
    }
    if s.countdown_running {
        return (
            P2pState::Countdown,
            "no live sync peer: HTTP fallback when the countdown ends".into(),
        );
    }
    let reason = if s.sync_lung == Lung::Http && s.healthy_neighbors > 0 {
        "no live sync peer: HTTP carries sync since the fallback"
    } else if s.sync_lung == Lung::Http {
        "no live sync peer, and no neighbour answers: nothing to sync with"
    } else if s.mode == Mode::P2p {
        "no live sync peer (mode forced to p2p: no HTTP fallback)"
    } else {
        "no live sync peer yet"
    };
    (P2pState::Down, reason.into())
}

fn http(s: &Situation) -> (HttpState, String) {
    if s.mode == Mode::P2p {
        return (HttpState::Off, "mode forced to p2p".into());
    }
    let healthy = s.healthy_neighbors;
    if s.http_sync_enabled {
        return match (s.neighbors, healthy) {
            (0, _) => (
                HttpState::Failing,
                "HTTP sync enabled but no neighbour configured".into(),
            ),
            (n, 0) => (
                HttpState::Failing,
                format!("HTTP sync enabled but none of {} healthy", neighbours(n)),
            ),
            (n, h) => (
                HttpState::Carrying,
                format!("syncing with {h} of {} healthy", neighbours(n)),
            ),
        };
    }
    match (s.neighbors, healthy) {
        (0, _) => (HttpState::Unready, "no neighbour configured".into()),
        (n, 0) => (
            HttpState::Unready,
            format!("on standby; none of {} healthy", neighbours(n)),
        ),
        (n, h) => (
            HttpState::Standby,
            format!("on standby; {h} of {} checked healthy", neighbours(n)),
        ),
    }
}

fn peers(n: usize) -> String {
    if n == 1 {
        "1 sync peer".into()
    } else {
        format!("{n} sync peers")
    }
}

fn neighbours(n: usize) -> String {
    if n == 1 {
        "1 neighbour".into()
    } else {
        format!("{n} neighbours")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Auto mode on P2P with one live peer and one healthy neighbour on standby.
    fn normal() -> Situation {
        Situation {
            mode: Mode::Auto,
            heartbeat_active: true,
            sync_lung: Lung::P2p,
            http_sync_enabled: false,
            p2p_blocked: false,
            live_sync_peers: 1,
            countdown_running: false,
            fallback_active: false,
            neighbors: 1,
            healthy_neighbors: 1,
        }
    }

    /// Auto mode after the fallback fired: no peer, HTTP enabled.
    fn fallen_back() -> Situation {
        Situation {
            sync_lung: Lung::Http,
            http_sync_enabled: true,
            live_sync_peers: 0,
            fallback_active: true,
            ..normal()
        }
    }

    #[test]
    fn p2p_carries_when_it_may_sync_and_a_sync_peer_is_live() {
        let st = derive(&Situation {
            live_sync_peers: 3,
            ..normal()
        });
        assert_eq!(st.p2p_state, P2pState::Carrying);
        assert_eq!(st.p2p_reason, "3 sync peers live");
        assert_eq!(st.sync_state, SyncState::P2p);
        assert_eq!(st.fallback_phase, FallbackPhase::Watching);
    }

    #[test]
    fn p2p_counts_down_in_auto_without_a_live_peer_while_the_timer_runs() {
        let st = derive(&Situation {
            live_sync_peers: 0,
            countdown_running: true,
            ..normal()
        });
        assert_eq!(st.p2p_state, P2pState::Countdown);
        assert_eq!(st.fallback_phase, FallbackPhase::Countdown);
        // Nothing carries during the countdown: the header must not say "via P2P".
        assert_eq!(st.sync_state, SyncState::Isolated);
        assert_eq!(st.http_state, HttpState::Standby);
    }

    #[test]
    fn p2p_is_down_without_a_live_peer_once_http_carries_after_the_fallback() {
        let st = derive(&fallen_back());
        assert_eq!(st.p2p_state, P2pState::Down);
        assert!(
            st.p2p_reason.contains("since the fallback"),
            "{}",
            st.p2p_reason
        );
        assert_eq!(st.fallback_phase, FallbackPhase::Active);
        assert_eq!(st.sync_state, SyncState::Http);
    }

    #[test]
    fn p2p_down_after_the_fallback_never_says_http_carries_when_no_neighbour_answers() {
        for neighbors in [0, 2] {
            let st = derive(&Situation {
                neighbors,
                healthy_neighbors: 0,
                ..fallen_back()
            });
            assert_eq!(st.p2p_state, P2pState::Down);
            assert_eq!(st.sync_state, SyncState::Isolated);
            assert!(
                !st.p2p_reason.contains("carries"),
                "an isolated node's P2P reason says something carries: {}",
                st.p2p_reason
            );
            assert!(
                st.p2p_reason.contains("no live sync peer"),
                "{}",
                st.p2p_reason
            );
        }
    }

    #[test]
    fn p2p_is_cut_when_blocked_on_this_node_whatever_the_mode() {
        for mode in [Mode::Auto, Mode::P2p, Mode::Http] {
            let st = derive(&Situation {
                mode,
                p2p_blocked: true,
                live_sync_peers: 0,
                countdown_running: mode == Mode::Auto,
                ..normal()
            });
            assert_eq!(st.p2p_state, P2pState::Cut, "{mode}");
        }
    }

    #[test]
    fn p2p_is_off_when_the_mode_forces_http() {
        let st = derive(&Situation {
            mode: Mode::Http,
            heartbeat_active: false,
            sync_lung: Lung::Http,
            http_sync_enabled: true,
            live_sync_peers: 2,
            ..normal()
        });
        assert_eq!(st.p2p_state, P2pState::Off);
        assert_eq!(st.p2p_reason, "mode forced to http");
        assert_eq!(st.http_state, HttpState::Carrying);
        assert_eq!(st.sync_state, SyncState::Http);
        assert_eq!(st.fallback_phase, FallbackPhase::Forced);
    }

    #[test]
    fn p2p_forced_without_a_peer_is_down_and_says_there_is_no_fallback() {
        let st = derive(&Situation {
            mode: Mode::P2p,
            heartbeat_active: false,
            live_sync_peers: 0,
            ..normal()
        });
        assert_eq!(st.p2p_state, P2pState::Down);
        assert!(
            st.p2p_reason.contains("no HTTP fallback"),
            "{}",
            st.p2p_reason
        );
        assert_eq!(st.http_state, HttpState::Off);
        assert_eq!(st.sync_state, SyncState::Isolated);
    }

    #[test]
    fn http_carries_when_enabled_and_a_neighbour_is_healthy() {
        let st = derive(&Situation {
            neighbors: 3,
            healthy_neighbors: 2,
            ..fallen_back()
        });
        assert_eq!(st.http_state, HttpState::Carrying);
        assert_eq!(st.http_reason, "syncing with 2 of 3 neighbours healthy");
    }

    #[test]
    fn http_fails_when_enabled_and_no_neighbour_is_healthy_or_none_is_configured() {
        let none_healthy = derive(&Situation {
            neighbors: 2,
            healthy_neighbors: 0,
            ..fallen_back()
        });
        assert_eq!(none_healthy.http_state, HttpState::Failing);
        assert_eq!(
            none_healthy.http_reason,
            "HTTP sync enabled but none of 2 neighbours healthy"
        );
        assert_eq!(none_healthy.sync_state, SyncState::Isolated);
        let none_configured = derive(&Situation {
            neighbors: 0,
            healthy_neighbors: 0,
            ..fallen_back()
        });
        assert_eq!(none_configured.http_state, HttpState::Failing);
        assert!(
            none_configured
                .http_reason
                .contains("no neighbour configured")
        );
        assert_eq!(none_configured.sync_state, SyncState::Isolated);
    }

    #[test]
    fn http_is_on_standby_when_not_carrying_and_a_neighbour_checked_healthy() {
        let st = derive(&normal());
        assert_eq!(st.http_state, HttpState::Standby);
        assert_eq!(
            st.http_reason,
            "on standby; 1 of 1 neighbour checked healthy"
        );
    }

    #[test]
    fn http_is_unready_when_not_carrying_and_no_neighbour_is_healthy_or_none_is_configured() {
        let none_healthy = derive(&Situation {
            healthy_neighbors: 0,
            ..normal()
        });
        assert_eq!(none_healthy.http_state, HttpState::Unready);
        let none_configured = derive(&Situation {
            neighbors: 0,
            healthy_neighbors: 0,
            ..normal()
        });
        assert_eq!(none_configured.http_state, HttpState::Unready);
        assert_eq!(none_configured.http_reason, "no neighbour configured");
        // P2P still carries: an unready reserve does not isolate the node.
        assert_eq!(none_configured.sync_state, SyncState::P2p);
    }

    #[test]
    fn http_is_off_when_the_mode_forces_p2p() {
        let st = derive(&Situation {
            mode: Mode::P2p,
            heartbeat_active: false,
            ..normal()
        });
        assert_eq!(st.http_state, HttpState::Off);
        assert_eq!(st.http_reason, "mode forced to p2p");
        assert_eq!(st.fallback_phase, FallbackPhase::Forced);
    }

    #[test]
    fn overall_is_isolated_when_neither_lung_has_a_live_partner() {
        // The issue's contradiction: isolated, HTTP failing, P2P down after the fallback.
        let st = derive(&Situation {
            healthy_neighbors: 0,
            ..fallen_back()
        });
        assert_eq!(
            (st.p2p_state, st.http_state, st.sync_state),
            (P2pState::Down, HttpState::Failing, SyncState::Isolated)
        );
        assert_eq!(st.fallback_phase, FallbackPhase::Active);
    }

    #[test]
    fn overall_follows_the_chosen_lung_when_both_briefly_carry() {
        // A peer came back; the switch to P2P happens at the next heartbeat.
        let back = Situation {
            live_sync_peers: 1,
            ..fallen_back()
        };
        let st = derive(&back);
        assert_eq!(
            (st.p2p_state, st.http_state, st.sync_state),
            (P2pState::Carrying, HttpState::Carrying, SyncState::Http)
        );
        let switched = derive(&Situation {
            sync_lung: Lung::P2p,
            ..back
        });
        assert_eq!(switched.sync_state, SyncState::P2p);
    }

    #[test]
    fn every_state_serializes_as_the_issue_names_it() {
        let names = |v: serde_json::Value| v.as_str().unwrap().to_string();
        let p2p: Vec<String> = [
            P2pState::Carrying,
            P2pState::Countdown,
            P2pState::Down,
            P2pState::Cut,
            P2pState::Off,
        ]
        .into_iter()
        .map(|s| names(serde_json::to_value(s).unwrap()))
        .collect();
        assert_eq!(p2p, ["carrying", "countdown", "down", "cut", "off"]);
        let http: Vec<String> = [
            HttpState::Carrying,
            HttpState::Failing,
            HttpState::Standby,
            HttpState::Unready,
            HttpState::Off,
        ]
        .into_iter()
        .map(|s| names(serde_json::to_value(s).unwrap()))
        .collect();
        assert_eq!(http, ["carrying", "failing", "standby", "unready", "off"]);
        let sync: Vec<String> = [SyncState::P2p, SyncState::Http, SyncState::Isolated]
            .into_iter()
            .map(|s| names(serde_json::to_value(s).unwrap()))
            .collect();
        assert_eq!(sync, ["p2p", "http", "isolated"]);
    }
}

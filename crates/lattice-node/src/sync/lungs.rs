//! The heartbeat/fallback state machine that decides which lung carries sync.
//!
//! Pure on purpose: time comes in as `now_ms` (unix milliseconds) and events go out as
//! data, so the node actor drives it and tests can replay any timeline without a clock.
//! Nothing here logs; the actor turns [`LungEvent`]s into log lines and status updates.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::sync::Mode;

/// Which lung carries sync. Serializes as "P2P" / "HTTP" (these exact strings).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Lung {
    #[serde(rename = "P2P")]
    P2p,
    #[serde(rename = "HTTP")]
    Http,
}

impl fmt::Display for Lung {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Lung::P2p => "P2P",
            Lung::Http => "HTTP",
        })
    }
}

/// A change of sync lung, kept so the status can say why the node breathes as it does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub at_ms: u64,
    pub from: Lung,
    pub to: Lung,
    pub reason: String,
}

/// Something that happened, for logs and the event stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LungEvent {
    Started,
    PeersStable {
        peers: usize,
    },
    PeerlessTimerStarted {
        since_ms: u64,
        deadline_ms: u64,
    },
    PeerlessTimerReset {
        peers: usize,
    },
    /// `after_ms` is how long the node had really been peerless, which can exceed the
    /// configured duration by up to one heartbeat.
    FallbackActivated {
        after_ms: u64,
    },
    ModeChanged {
        from: Mode,
        to: Mode,
    },
    Transition(Transition),
}

impl LungEvent {
    /// The log line(s) operators grep for; the texts are those of the earlier version,
    /// kept byte-exact so existing alerts keep matching.
    pub fn log_lines(&self, fallback_after: Duration) -> Vec<String> {
        match self {
            LungEvent::Started => vec!["[STARTUP] P2P Heartbeat Monitor activated".into()],
            LungEvent::PeersStable { .. } => {
                vec!["[P2P_HEARTBEAT] Peers found, system stable".into()]
            }
            LungEvent::PeerlessTimerStarted { .. } => vec![format!(
                "[P2P_HEARTBEAT] No peers detected, starting {} timer",
                format_duration(fallback_after)
            )],
            LungEvent::PeerlessTimerReset { .. } => {
                vec!["[P2P_HEARTBEAT] Peers found, resetting peerless timer".into()]
            }
            LungEvent::FallbackActivated { .. } => {
                let span = if fallback_after.subsec_nanos() == 0 {
                    format!("{} seconds", fallback_after.as_secs())
                } else {
                    format_duration(fallback_after)
                };
                vec![
                    format!("[P2P_HEARTBEAT] {span} without peers - Activating HTTP Fallback"),
                    "[P2P_HEARTBEAT] HTTP Sync Fallback activated".into(),
                ]
            }
            LungEvent::ModeChanged { from, to } => {
                vec![format!("[SYNC_MODE] Mode changed from {from} to {to}")]
            }
            LungEvent::Transition(t) => {
                vec![format!("[SYNC_MODE] {} -> {}: {}", t.from, t.to, t.reason)]
            }
        }
    }
}

/// Everything the status snapshot needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LungsSnapshot {
    pub mode: Mode,
    pub sync_lung: Lung,
    pub http_sync_enabled: bool,
    pub heartbeat_active: bool,
    pub peer_count: usize,
    pub has_peers: bool,
    pub peerless_since_ms: Option<u64>,
    /// Only while an Auto timer runs, so the UI can animate a countdown that exists.
    pub fallback_deadline_ms: Option<u64>,
    pub fallback_active_since_ms: Option<u64>,
    pub fallback_after_ms: u64,
    pub last_transition: Option<Transition>,
}

/// The state machine. The peerless timer is not stored: in Auto it runs exactly while
/// the last sample was 0 and fallback has not fired, with its deadline at
/// `peerless_since + fallback_after`, so a stale deadline cannot survive a flicker.
#[derive(Clone, Debug)]
pub struct Lungs {
    mode: Mode,
    fallback_after: Duration,
    /// `fallback_after` rounded up, so a sub-millisecond remainder never fires early.
    fallback_after_ms: u64,
    /// Ticks before `start` only record samples: the heartbeat is not steering yet.
    started: bool,
    last_sample: Option<usize>,
    /// Start of the current run of 0 samples, tracked in every mode so that switching
    /// back to Auto can judge how long the node has really been peerless.
    peerless_since_ms: Option<u64>,
    /// Set only in Auto; leaving Auto clears it because forced modes own the lung.
    fallback_since_ms: Option<u64>,
    sync_lung: Lung,
    last_transition: Option<Transition>,
    /// `PeersStable` is said once per stable stretch the heartbeat sees, to keep logs quiet.
    stable_announced: bool,
}

impl Lungs {
    pub fn new(mode: Mode, fallback_after: Duration) -> Self {
        let nanos = fallback_after.as_nanos();
        let fallback_after_ms = u64::try_from(nanos.div_ceil(1_000_000)).unwrap_or(u64::MAX);
        Self {
            mode,
            fallback_after,
            fallback_after_ms,
            started: false,
            last_sample: None,
            peerless_since_ms: None,
            fallback_since_ms: None,
            sync_lung: forced_lung(mode).unwrap_or(Lung::P2p),
            last_transition: None,
            stable_announced: false,
        }
    }

    /// Starts the heartbeat (emits `Started`). Auto begins on P2P optimistically unless
    /// samples recorded before the start already say otherwise. A second call is a no-op.
    pub fn start(&mut self, now_ms: u64) -> Vec<LungEvent> {
        if self.started {
            return Vec::new();
        }
        self.started = true;
        let mut events = vec![LungEvent::Started];
        if self.mode == Mode::Auto {
            self.evaluate_auto(now_ms, "heartbeat started", &mut events);
        }
        events
    }

    /// One heartbeat with the current number of sync-capable peers.
    pub fn tick(&mut self, now_ms: u64, sync_peers: usize) -> Vec<LungEvent> {
        let mut events = Vec::new();
        let was_peerless = self.peerless_since_ms.is_some();
        self.last_sample = Some(sync_peers);
        if sync_peers == 0 {
            self.peerless_since_ms.get_or_insert(now_ms);
            self.stable_announced = false;
        } else {
            self.peerless_since_ms = None;
        }
        if !self.steering() {
            return events;
        }

        if sync_peers > 0 {
            if was_peerless {
                events.push(LungEvent::PeerlessTimerReset { peers: sync_peers });
                if self.fallback_since_ms.take().is_some() {
                    let reason = format!("sync peers returned ({sync_peers})");
                    self.switch_lung(now_ms, Lung::P2p, reason, &mut events);
                }
            }
            if !self.stable_announced {
                self.stable_announced = true;
                events.push(LungEvent::PeersStable { peers: sync_peers });
            }
            return events;
        }

        if self.fallback_since_ms.is_some() {
            return events;
        }
        let since = self.peerless_since_ms.unwrap_or(now_ms);
        let deadline = since.saturating_add(self.fallback_after_ms);
        if !was_peerless {
            events.push(LungEvent::PeerlessTimerStarted {
                since_ms: since,
                deadline_ms: deadline,
            });
        }
        if now_ms >= deadline {
            self.activate_fallback(now_ms, since, &mut events);
            let reason = format!("no sync peers for {}", format_duration(self.fallback_after));
            self.switch_lung(now_ms, Lung::Http, reason, &mut events);
        }
        events
    }

    /// Forces a lung, or hands the choice back to the heartbeat (Auto), which then
    /// judges the current state at once rather than waiting for the next tick.
    pub fn set_mode(&mut self, now_ms: u64, mode: Mode) -> Vec<LungEvent> {
        if mode == self.mode {
            return Vec::new();
        }
        let from = std::mem::replace(&mut self.mode, mode);
        let mut events = vec![LungEvent::ModeChanged { from, to: mode }];
        self.fallback_since_ms = None;
        self.stable_announced = false;
        match forced_lung(mode) {
            Some(lung) => {
                let reason = format!("mode forced to {mode}");
                self.switch_lung(now_ms, lung, reason, &mut events);
            }
            None if self.started => self.evaluate_auto(now_ms, "mode set to auto", &mut events),
            None => {
                let reason = "mode set to auto: heartbeat not started".to_string();
                self.switch_lung(now_ms, Lung::P2p, reason, &mut events);
            }
        }
        events
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn sync_lung(&self) -> Lung {
        self.sync_lung
    }

    pub fn http_sync_enabled(&self) -> bool {
        self.mode == Mode::Http || (self.mode == Mode::Auto && self.fallback_since_ms.is_some())
    }

    pub fn snapshot(&self) -> LungsSnapshot {
        let peer_count = self.last_sample.unwrap_or(0);
        LungsSnapshot {
            mode: self.mode,
            sync_lung: self.sync_lung,
            http_sync_enabled: self.http_sync_enabled(),
            heartbeat_active: self.steering(),
            peer_count,
            has_peers: peer_count > 0,
            peerless_since_ms: self.peerless_since_ms,
            fallback_deadline_ms: self.fallback_deadline_ms(),
            fallback_active_since_ms: self.fallback_since_ms,
            fallback_after_ms: self.fallback_after_ms,
            last_transition: self.last_transition.clone(),
        }
    }

    fn steering(&self) -> bool {
        self.started && self.mode == Mode::Auto
    }

    fn fallback_deadline_ms(&self) -> Option<u64> {
        if !self.steering() || self.fallback_since_ms.is_some() {
            return None;
        }
        self.peerless_since_ms
            .map(|since| since.saturating_add(self.fallback_after_ms))
    }

    /// Decides the Auto lung from the samples alone, as if the heartbeat had been
    /// steering all along.
    fn evaluate_auto(&mut self, now_ms: u64, why: &str, events: &mut Vec<LungEvent>) {
        let reason = match (self.last_sample, self.peerless_since_ms) {
            (None, _) => format!("{why}: no peer sample yet"),
            (Some(_), Some(since)) => {
                let elapsed = now_ms.saturating_sub(since);
                let deadline = since.saturating_add(self.fallback_after_ms);
                if now_ms >= deadline {
                    self.activate_fallback(now_ms, since, events);
                    let reason = format!(
                        "{why}: no sync peers for {}",
                        format_duration(Duration::from_millis(elapsed))
                    );
                    self.switch_lung(now_ms, Lung::Http, reason, events);
                    return;
                }
                events.push(LungEvent::PeerlessTimerStarted {
                    since_ms: since,
                    deadline_ms: deadline,
                });
                format!(
                    "{why}: no sync peers for {}, fallback in {}",
                    format_duration(Duration::from_millis(elapsed)),
                    format_duration(Duration::from_millis(deadline - now_ms))
                )
            }
            (Some(n), None) => format!("{why}: {}", peers_phrase(n)),
        };
        self.switch_lung(now_ms, Lung::P2p, reason, events);
    }

    fn activate_fallback(&mut self, now_ms: u64, since: u64, events: &mut Vec<LungEvent>) {
        self.fallback_since_ms = Some(now_ms);
        events.push(LungEvent::FallbackActivated {
            after_ms: now_ms.saturating_sub(since),
        });
    }

    /// Records a transition only when the lung really changes.
    fn switch_lung(&mut self, now_ms: u64, to: Lung, reason: String, events: &mut Vec<LungEvent>) {
        if to == self.sync_lung {
            return;
        }
        let transition = Transition {
            at_ms: now_ms,
            from: self.sync_lung,
            to,
            reason,
        };
        self.sync_lung = to;
        self.last_transition = Some(transition.clone());
        events.push(LungEvent::Transition(transition));
    }
}

fn forced_lung(mode: Mode) -> Option<Lung> {
    match mode {
        Mode::Auto => None,
        Mode::P2p => Some(Lung::P2p),
        Mode::Http => Some(Lung::Http),
    }
}

fn peers_phrase(n: usize) -> String {
    if n == 1 {
        "1 sync peer".into()
    } else {
        format!("{n} sync peers")
    }
}

/// `60s` rather than humantime's `1m`, because operators grep for the seconds form;
/// sub-second parts fall back to humantime (`500ms`, `1s 500ms`).
fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let rest = Duration::from_nanos(u64::from(d.subsec_nanos()));
    match (secs, rest.is_zero()) {
        (_, true) => format!("{secs}s"),
        (0, false) => humantime::format_duration(rest).to_string(),
        (_, false) => format!("{secs}s {}", humantime::format_duration(rest)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: u64 = 1_700_000_000_000;
    const FB: Duration = Duration::from_secs(60);
    const FB_MS: u64 = 60_000;
    const HB_MS: u64 = 5_000;

    fn started(mode: Mode) -> Lungs {
        let mut lungs = Lungs::new(mode, FB);
        assert_eq!(lungs.start(T0), vec![LungEvent::Started]);
        lungs
    }

    fn transitions(events: &[LungEvent]) -> Vec<&Transition> {
        events
            .iter()
            .filter_map(|e| match e {
                LungEvent::Transition(t) => Some(t),
                _ => None,
            })
            .collect()
    }

    fn log(events: &[LungEvent], fallback_after: Duration) -> Vec<String> {
        events
            .iter()
            .flat_map(|e| e.log_lines(fallback_after))
            .collect()
    }

    #[test]
    fn start_is_optimistically_p2p_without_timer() {
        let lungs = started(Mode::Auto);
        let snap = lungs.snapshot();
        assert_eq!(snap.sync_lung, Lung::P2p);
        assert!(snap.heartbeat_active);
        assert!(!snap.http_sync_enabled);
        assert_eq!(snap.fallback_deadline_ms, None);
        assert_eq!(snap.peer_count, 0);
        assert!(!snap.has_peers);
        assert_eq!(snap.last_transition, None);
        assert_eq!(
            LungEvent::Started.log_lines(FB),
            vec!["[STARTUP] P2P Heartbeat Monitor activated"]
        );
    }

    #[test]
    fn starting_twice_is_a_no_op() {
        let mut lungs = started(Mode::Auto);
        assert!(lungs.start(T0 + 1).is_empty());
    }

    #[test]
    fn peers_from_the_start_are_stable_on_p2p_without_timer() {
        let mut lungs = started(Mode::Auto);
        let events = lungs.tick(T0, 3);
        assert_eq!(events, vec![LungEvent::PeersStable { peers: 3 }]);
        assert_eq!(
            log(&events, FB),
            vec!["[P2P_HEARTBEAT] Peers found, system stable"]
        );
        for i in 1..30 {
            assert!(
                lungs.tick(T0 + i * HB_MS, 2).is_empty(),
                "quiet while stable"
            );
        }
        let snap = lungs.snapshot();
        assert_eq!(snap.sync_lung, Lung::P2p);
        assert_eq!(snap.peer_count, 2);
        assert!(snap.has_peers);
        assert_eq!(snap.peerless_since_ms, None);
        assert_eq!(snap.fallback_deadline_ms, None);
        assert_eq!(snap.fallback_active_since_ms, None);
        assert_eq!(snap.last_transition, None);
    }

    #[test]
    fn peerless_falls_back_exactly_at_the_deadline_not_a_millisecond_before() {
        let mut lungs = started(Mode::Auto);
        let events = lungs.tick(T0, 0);
        assert_eq!(
            events,
            vec![LungEvent::PeerlessTimerStarted {
                since_ms: T0,
                deadline_ms: T0 + FB_MS
            }]
        );
        assert_eq!(
            log(&events, FB),
            vec!["[P2P_HEARTBEAT] No peers detected, starting 60s timer"]
        );
        for t in (T0 + HB_MS..T0 + FB_MS).step_by(HB_MS as usize) {
            assert!(lungs.tick(t, 0).is_empty());
        }
        assert!(lungs.tick(T0 + FB_MS - 1, 0).is_empty());
        assert_eq!(lungs.sync_lung(), Lung::P2p);

        let events = lungs.tick(T0 + FB_MS, 0);
        assert_eq!(lungs.sync_lung(), Lung::Http);
        assert!(lungs.http_sync_enabled());
        assert_eq!(
            events,
            vec![
                LungEvent::FallbackActivated { after_ms: FB_MS },
                LungEvent::Transition(Transition {
                    at_ms: T0 + FB_MS,
                    from: Lung::P2p,
                    to: Lung::Http,
                    reason: "no sync peers for 60s".into(),
                }),
            ]
        );
        assert_eq!(
            log(&events, FB),
            vec![
                "[P2P_HEARTBEAT] 60 seconds without peers - Activating HTTP Fallback",
                "[P2P_HEARTBEAT] HTTP Sync Fallback activated",
                "[SYNC_MODE] P2P -> HTTP: no sync peers for 60s",
            ]
        );
        assert!(lungs.tick(T0 + FB_MS + HB_MS, 0).is_empty(), "fires once");
        assert_eq!(lungs.sync_lung(), Lung::Http);
    }

    #[test]
    fn peers_returning_after_fallback_restore_p2p_and_clear_the_timer() {
        let mut lungs = started(Mode::Auto);
        lungs.tick(T0, 0);
        lungs.tick(T0 + FB_MS, 0);
        assert_eq!(lungs.sync_lung(), Lung::Http);

        let at = T0 + FB_MS + HB_MS;
        let events = lungs.tick(at, 3);
        let back = Transition {
            at_ms: at,
            from: Lung::Http,
            to: Lung::P2p,
            reason: "sync peers returned (3)".into(),
        };
        assert_eq!(
            events,
            vec![
                LungEvent::PeerlessTimerReset { peers: 3 },
                LungEvent::Transition(back.clone()),
                LungEvent::PeersStable { peers: 3 },
            ]
        );
        assert_eq!(
            log(&events, FB),
            vec![
                "[P2P_HEARTBEAT] Peers found, resetting peerless timer",
                "[SYNC_MODE] HTTP -> P2P: sync peers returned (3)",
                "[P2P_HEARTBEAT] Peers found, system stable",
            ]
        );
        let snap = lungs.snapshot();
        assert_eq!(snap.sync_lung, Lung::P2p);
        assert!(!snap.http_sync_enabled);
        assert_eq!(snap.peerless_since_ms, None);
        assert_eq!(snap.fallback_deadline_ms, None);
        assert_eq!(snap.fallback_active_since_ms, None);
        assert_eq!(snap.last_transition, Some(back));
    }

    #[test]
    fn peers_found_before_the_deadline_reset_the_timer_without_transition() {
        let mut lungs = started(Mode::Auto);
        lungs.tick(T0, 0);
        let events = lungs.tick(T0 + HB_MS, 1);
        assert_eq!(
            events,
            vec![
                LungEvent::PeerlessTimerReset { peers: 1 },
                LungEvent::PeersStable { peers: 1 },
            ]
        );
        assert_eq!(lungs.snapshot().fallback_deadline_ms, None);
        assert_eq!(lungs.snapshot().last_transition, None);
    }

    #[test]
    fn flickering_peers_restart_the_timer_and_the_old_deadline_never_fires() {
        let mut lungs = started(Mode::Auto);
        lungs.tick(T0, 0);
        let flicker = T0 + FB_MS - 1;
        lungs.tick(flicker, 2);
        let restart = T0 + FB_MS - 1 + 1;
        let events = lungs.tick(restart, 0);
        assert_eq!(
            events,
            vec![LungEvent::PeerlessTimerStarted {
                since_ms: restart,
                deadline_ms: restart + FB_MS
            }]
        );
        // Old deadline and the ticks after it: still P2P.
        for t in [T0 + FB_MS, T0 + FB_MS + 1, restart + FB_MS - 1] {
            assert!(lungs.tick(t, 0).is_empty(), "tick at {t}");
            assert_eq!(lungs.sync_lung(), Lung::P2p);
        }
        assert_eq!(lungs.snapshot().peerless_since_ms, Some(restart));
        assert_eq!(lungs.snapshot().fallback_deadline_ms, Some(restart + FB_MS));
        let events = lungs.tick(restart + FB_MS, 0);
        assert_eq!(transitions(&events).len(), 1);
        assert_eq!(lungs.sync_lung(), Lung::Http);
    }

    #[test]
    fn forced_p2p_without_peers_never_falls_back() {
        let mut lungs = started(Mode::P2p);
        for i in 0..100 {
            assert!(lungs.tick(T0 + i * HB_MS, 0).is_empty());
        }
        let snap = lungs.snapshot();
        assert_eq!(snap.sync_lung, Lung::P2p);
        assert!(!snap.http_sync_enabled);
        assert!(!snap.heartbeat_active);
        assert_eq!(snap.peerless_since_ms, Some(T0), "samples still tracked");
        assert_eq!(snap.fallback_deadline_ms, None);
    }

    #[test]
    fn forced_http_switches_at_once_and_stays_http_with_peers() {
        let mut lungs = started(Mode::Auto);
        lungs.tick(T0, 4);
        let events = lungs.set_mode(T0 + 1, Mode::Http);
        let forced = Transition {
            at_ms: T0 + 1,
            from: Lung::P2p,
            to: Lung::Http,
            reason: "mode forced to http".into(),
        };
        assert_eq!(
            events,
            vec![
                LungEvent::ModeChanged {
                    from: Mode::Auto,
                    to: Mode::Http
                },
                LungEvent::Transition(forced.clone()),
            ]
        );
        assert_eq!(
            log(&events, FB),
            vec![
                "[SYNC_MODE] Mode changed from auto to http",
                "[SYNC_MODE] P2P -> HTTP: mode forced to http",
            ]
        );
        for i in 1..20 {
            assert!(lungs.tick(T0 + i * HB_MS, 5).is_empty());
        }
        assert_eq!(lungs.sync_lung(), Lung::Http);
        assert!(lungs.http_sync_enabled());
        assert_eq!(lungs.snapshot().last_transition, Some(forced));
    }

    #[test]
    fn forced_http_before_start_is_http_from_the_outset() {
        let lungs = Lungs::new(Mode::Http, FB);
        assert_eq!(lungs.sync_lung(), Lung::Http);
        assert!(lungs.http_sync_enabled());
    }

    #[test]
    fn back_to_auto_after_a_long_peerless_forced_period_falls_back_at_once() {
        let mut lungs = started(Mode::P2p);
        lungs.tick(T0, 0);
        lungs.tick(T0 + 2 * FB_MS, 0);
        let at = T0 + 2 * FB_MS + 7;
        let events = lungs.set_mode(at, Mode::Auto);
        assert_eq!(
            events,
            vec![
                LungEvent::ModeChanged {
                    from: Mode::P2p,
                    to: Mode::Auto
                },
                LungEvent::FallbackActivated {
                    after_ms: 2 * FB_MS + 7
                },
                LungEvent::Transition(Transition {
                    at_ms: at,
                    from: Lung::P2p,
                    to: Lung::Http,
                    reason: "mode set to auto: no sync peers for 120s 7ms".into(),
                }),
            ]
        );
        let snap = lungs.snapshot();
        assert_eq!(snap.sync_lung, Lung::Http);
        assert!(snap.http_sync_enabled);
        assert_eq!(snap.fallback_active_since_ms, Some(at));
        assert_eq!(snap.fallback_deadline_ms, None);
    }

    #[test]
    fn back_to_auto_while_briefly_peerless_resumes_the_timer_from_peerless_since() {
        let mut lungs = started(Mode::Http);
        lungs.tick(T0, 0);
        let at = T0 + 20_000;
        let events = lungs.set_mode(at, Mode::Auto);
        assert_eq!(
            events,
            vec![
                LungEvent::ModeChanged {
                    from: Mode::Http,
                    to: Mode::Auto
                },
                LungEvent::PeerlessTimerStarted {
                    since_ms: T0,
                    deadline_ms: T0 + FB_MS
                },
                LungEvent::Transition(Transition {
                    at_ms: at,
                    from: Lung::Http,
                    to: Lung::P2p,
                    reason: "mode set to auto: no sync peers for 20s, fallback in 40s".into(),
                }),
            ]
        );
        assert_eq!(lungs.snapshot().fallback_deadline_ms, Some(T0 + FB_MS));
        assert!(lungs.tick(T0 + FB_MS - 1, 0).is_empty());
        assert_eq!(transitions(&lungs.tick(T0 + FB_MS, 0)).len(), 1);
        assert_eq!(lungs.sync_lung(), Lung::Http);
    }

    #[test]
    fn back_to_auto_with_peers_is_p2p() {
        let mut lungs = started(Mode::Http);
        lungs.tick(T0, 2);
        let events = lungs.set_mode(T0 + 1, Mode::Auto);
        let t = transitions(&events);
        assert_eq!(t.len(), 1);
        assert_eq!((t[0].from, t[0].to), (Lung::Http, Lung::P2p));
        assert_eq!(t[0].reason, "mode set to auto: 2 sync peers");
        assert_eq!(lungs.snapshot().fallback_deadline_ms, None);
        assert!(lungs.snapshot().heartbeat_active);
    }

    #[test]
    fn back_to_auto_without_any_sample_is_p2p() {
        let mut lungs = started(Mode::Http);
        let events = lungs.set_mode(T0, Mode::Auto);
        assert_eq!(
            transitions(&events)[0].reason,
            "mode set to auto: no peer sample yet"
        );
        assert_eq!(lungs.sync_lung(), Lung::P2p);
        assert_eq!(lungs.snapshot().fallback_deadline_ms, None);
    }

    #[test]
    fn setting_the_same_mode_twice_gives_no_events() {
        let mut lungs = started(Mode::Auto);
        assert!(lungs.set_mode(T0, Mode::Auto).is_empty());
        assert_eq!(lungs.set_mode(T0, Mode::Http).len(), 2);
        assert!(lungs.set_mode(T0 + 1, Mode::Http).is_empty());
        assert_eq!(lungs.mode(), Mode::Http);
    }

    #[test]
    fn forcing_http_during_fallback_keeps_http_without_a_transition() {
        let mut lungs = started(Mode::Auto);
        lungs.tick(T0, 0);
        lungs.tick(T0 + FB_MS, 0);
        let events = lungs.set_mode(T0 + FB_MS + 1, Mode::Http);
        assert!(transitions(&events).is_empty());
        assert_eq!(lungs.sync_lung(), Lung::Http);
        assert_eq!(lungs.snapshot().fallback_active_since_ms, None);
    }

    #[test]
    fn snapshot_shows_the_deadline_only_while_the_timer_runs() {
        let mut lungs = started(Mode::Auto);
        lungs.tick(T0, 0);
        let snap = lungs.snapshot();
        assert_eq!(snap.peerless_since_ms, Some(T0));
        assert_eq!(snap.fallback_deadline_ms, Some(T0 + FB_MS));
        assert_eq!(snap.fallback_active_since_ms, None);
        assert_eq!(snap.fallback_after_ms, FB_MS);

        lungs.tick(T0 + FB_MS + 3, 0);
        let snap = lungs.snapshot();
        assert_eq!(snap.fallback_deadline_ms, None, "not after fallback fired");
        assert_eq!(snap.fallback_active_since_ms, Some(T0 + FB_MS + 3));
        assert_eq!(snap.peerless_since_ms, Some(T0));
        assert!(snap.heartbeat_active);

        lungs.set_mode(T0 + FB_MS + 4, Mode::P2p);
        let snap = lungs.snapshot();
        assert!(!snap.heartbeat_active, "forced modes do not steer");
        assert_eq!(snap.fallback_deadline_ms, None);
        assert_eq!(snap.fallback_active_since_ms, None);
        assert_eq!(snap.peerless_since_ms, Some(T0));
        assert_eq!(snap.sync_lung, Lung::P2p);
    }

    #[test]
    fn peers_stable_is_logged_once_per_stable_stretch() {
        let mut lungs = started(Mode::Auto);
        let stable = |e: &Vec<LungEvent>| {
            e.iter()
                .filter(|e| matches!(e, LungEvent::PeersStable { .. }))
                .count()
        };
        assert_eq!(stable(&lungs.tick(T0, 1)), 1);
        assert_eq!(stable(&lungs.tick(T0 + HB_MS, 4)), 0);
        assert_eq!(stable(&lungs.tick(T0 + 2 * HB_MS, 0)), 0);
        assert_eq!(stable(&lungs.tick(T0 + 3 * HB_MS, 2)), 1);
        assert_eq!(stable(&lungs.tick(T0 + 4 * HB_MS, 2)), 0);
    }

    #[test]
    fn ticks_before_start_only_record_samples() {
        let mut lungs = Lungs::new(Mode::Auto, FB);
        assert!(lungs.tick(T0, 0).is_empty());
        assert!(!lungs.snapshot().heartbeat_active);
        assert_eq!(lungs.snapshot().fallback_deadline_ms, None);
        let events = lungs.start(T0 + 1);
        assert_eq!(
            events,
            vec![
                LungEvent::Started,
                LungEvent::PeerlessTimerStarted {
                    since_ms: T0,
                    deadline_ms: T0 + FB_MS
                },
            ]
        );
    }

    #[test]
    fn log_lines_name_sub_second_and_fractional_durations() {
        let half = Duration::from_millis(500);
        let timer = LungEvent::PeerlessTimerStarted {
            since_ms: 0,
            deadline_ms: 500,
        };
        let fallback = LungEvent::FallbackActivated { after_ms: 500 };
        assert_eq!(
            timer.log_lines(half),
            vec!["[P2P_HEARTBEAT] No peers detected, starting 500ms timer"]
        );
        assert_eq!(
            fallback.log_lines(half),
            vec![
                "[P2P_HEARTBEAT] 500ms without peers - Activating HTTP Fallback",
                "[P2P_HEARTBEAT] HTTP Sync Fallback activated",
            ]
        );
        assert_eq!(
            timer.log_lines(Duration::from_millis(1500)),
            vec!["[P2P_HEARTBEAT] No peers detected, starting 1s 500ms timer"]
        );
        assert_eq!(
            timer.log_lines(Duration::from_secs(6)),
            vec!["[P2P_HEARTBEAT] No peers detected, starting 6s timer"]
        );
        assert_eq!(
            fallback.log_lines(Duration::from_secs(6))[0],
            "[P2P_HEARTBEAT] 6 seconds without peers - Activating HTTP Fallback"
        );
    }

    #[test]
    fn millisecond_scale_configs_fall_back_on_time() {
        let mut lungs = Lungs::new(Mode::Auto, Duration::from_millis(250));
        lungs.start(0);
        lungs.tick(10, 0);
        assert!(lungs.tick(259, 0).is_empty());
        let events = lungs.tick(260, 0);
        assert_eq!(transitions(&events)[0].reason, "no sync peers for 250ms");
    }

    #[test]
    fn lung_serializes_as_p2p_and_http() {
        assert_eq!(serde_json::to_string(&Lung::P2p).unwrap(), r#""P2P""#);
        assert_eq!(serde_json::to_string(&Lung::Http).unwrap(), r#""HTTP""#);
        assert_eq!(
            serde_json::from_str::<Lung>(r#""HTTP""#).unwrap(),
            Lung::Http
        );
        assert_eq!(Lung::P2p.to_string(), "P2P");
        assert_eq!(Lung::Http.to_string(), "HTTP");
    }

    #[test]
    fn transition_event_serializes_with_kind_transition() {
        let event = LungEvent::Transition(Transition {
            at_ms: 42,
            from: Lung::P2p,
            to: Lung::Http,
            reason: "no sync peers for 60s".into(),
        });
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            serde_json::json!({
                "kind": "transition",
                "at_ms": 42,
                "from": "P2P",
                "to": "HTTP",
                "reason": "no sync peers for 60s",
            })
        );
        assert_eq!(
            serde_json::to_value(LungEvent::ModeChanged {
                from: Mode::Auto,
                to: Mode::P2p
            })
            .unwrap(),
            serde_json::json!({ "kind": "mode_changed", "from": "auto", "to": "p2p" })
        );
        assert_eq!(
            serde_json::to_value(LungEvent::Started).unwrap(),
            serde_json::json!({ "kind": "started" })
        );
    }

    #[derive(Clone, Debug)]
    enum Op {
        Tick { dt: u64, peers: usize },
        SetMode(Mode),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0u64..40, prop_oneof![3 => Just(0usize), 1 => 1usize..4])
                .prop_map(|(dt, peers)| Op::Tick { dt, peers }),
            1 => prop::sample::select(Mode::ALL.to_vec()).prop_map(Op::SetMode),
        ]
    }

    proptest! {
        /// A reference model: in Auto the lung is HTTP iff, at some evaluation (a tick or
        /// entering Auto) during the current run of 0 samples and since Auto was entered,
        /// the run had lasted at least `fallback_after`.
        #[test]
        fn lungs_match_the_reference_model(
            initial in prop::sample::select(Mode::ALL.to_vec()),
            ops in prop::collection::vec(op(), 0..120),
        ) {
            const FB_MS: u64 = 100;
            let fb = Duration::from_millis(FB_MS);
            let mut lungs = Lungs::new(initial, fb);
            let mut now = 0u64;
            lungs.start(now);
            let mut mode = initial;
            let mut run_start: Option<u64> = None;
            let mut fallen = false;
            let mut last_transition = None;
            for op in ops {
                let before = lungs.sync_lung();
                let events = match op {
                    Op::Tick { dt, peers } => {
                        now += dt;
                        if peers == 0 {
                            run_start.get_or_insert(now);
                        } else {
                            run_start = None;
                            fallen = false;
                        }
                        lungs.tick(now, peers)
                    }
                    Op::SetMode(m) => {
                        if m != mode {
                            fallen = false;
                        }
                        mode = m;
                        lungs.set_mode(now, m)
                    }
                };
                if mode == Mode::Auto
                    && let Some(since) = run_start
                    && now - since >= FB_MS
                {
                    fallen = true;
                }
                let expected = match mode {
                    Mode::Http => Lung::Http,
                    Mode::P2p => Lung::P2p,
                    Mode::Auto if fallen => Lung::Http,
                    Mode::Auto => Lung::P2p,
                };
                let snap = lungs.snapshot();
                prop_assert_eq!(snap.mode, mode);
                prop_assert_eq!(snap.sync_lung, expected);
                prop_assert_eq!(snap.http_sync_enabled, snap.sync_lung == Lung::Http);
                prop_assert_eq!(snap.heartbeat_active, mode == Mode::Auto);
                prop_assert_eq!(snap.peerless_since_ms, run_start);
                let timer = mode == Mode::Auto && run_start.is_some() && !fallen;
                prop_assert_eq!(snap.fallback_deadline_ms, timer.then(|| run_start.unwrap() + FB_MS));
                prop_assert_eq!(snap.fallback_active_since_ms.is_some(), mode == Mode::Auto && fallen);
                if let Some(deadline) = snap.fallback_deadline_ms {
                    prop_assert!(now < deadline);
                }

                let mut lung = before;
                for event in &events {
                    prop_assert!(!event.log_lines(fb).is_empty());
                    if let LungEvent::Transition(t) = event {
                        prop_assert_eq!(t.from, lung);
                        prop_assert_ne!(t.from, t.to);
                        prop_assert_eq!(t.at_ms, now);
                        lung = t.to;
                        last_transition = Some(t.clone());
                    }
                    if mode != Mode::Auto {
                        let quiet = !matches!(
                            event,
                            LungEvent::PeerlessTimerStarted { .. }
                                | LungEvent::PeerlessTimerReset { .. }
                                | LungEvent::FallbackActivated { .. }
                                | LungEvent::PeersStable { .. }
                        );
                        prop_assert!(quiet, "heartbeat event in forced mode: {:?}", event);
                    }
                }
                prop_assert_eq!(lung, snap.sync_lung);
                prop_assert_eq!(&snap.last_transition, &last_transition);
            }
        }
    }
}

import type { Status } from '../backend/types';
import { formatCountdown, remainingFraction, remainingMs } from '../countdown';
import { h, s, setText } from '../dom';
import { field } from '../frame';
import { clock, duration, plural } from '../format';
import type { Snapshot } from '../store';

/** The timer's story: the core's `fallback_phase`, with `watching` told apart by the P2P state. */
export type TimerStory = 'countdown' | 'fallback' | 'forced' | 'healthy' | 'waiting';
const STORIES: readonly TimerStory[] = ['countdown', 'fallback', 'forced', 'healthy', 'waiting'];

/** Which story the timer tells, from the core's states only. */
export function timerStory(st: Status): TimerStory {
  switch (st.fallback_phase) {
    case 'forced': return 'forced';
    case 'countdown': return 'countdown';
    case 'active': return 'fallback';
    case 'watching': return st.p2p_state === 'carrying' ? 'healthy' : 'waiting';
  }
}

/** The words for each phase, as the timer's title says them. */
export const PHASE_WORDS: Record<Status['fallback_phase'], string> = {
  forced: 'Heartbeat overridden',
  watching: 'Watching P2P',
  countdown: 'Fallback countdown',
  active: 'HTTP fallback active',
};

const R = 52;
const C = 2 * Math.PI * R;

/**
 * The fallback countdown ring. The node sends a deadline once; we animate it locally with
 * requestAnimationFrame, corrected by the clock skew measured when the snapshot arrived.
 */
export function createFallbackTimer(now: () => number = () => Date.now()) {
  const arc = s('circle', { class: 'ring__arc', cx: 60, cy: 60, r: R, 'stroke-dasharray': C.toFixed(2), 'stroke-dashoffset': '0', transform: 'rotate(-90 60 60)' });
  const ring = s('svg', { class: 'ring', viewBox: '0 0 120 120', 'aria-hidden': 'true' },
    s('circle', { class: 'ring__track', cx: 60, cy: 60, r: R }),
    arc,
  );
  const big = h('span', { class: 'ring__value num' });
  const unit = h('span', { class: 'ring__unit' });
  const title = h('h2', { class: 'timer__title' });
  const line = h('p', { class: 'timer__line num' });
  const detail = h('p', { class: 'timer__detail' });
  const el = h('section', { class: 'card timer', attrs: { 'aria-label': 'Fallback timer', 'data-field': 'fallback-phase' } },
    h('header', { class: 'timer__head' }, h('span', { class: 'card__eyebrow', text: 'Fallback timer' }), title),
    h('div', { class: 'ring-wrap' }, ring, h('div', { class: 'ring__center' }, big, unit)),
    h('div', { class: 'timer__text' }, line, detail),
  );

  let snap: Snapshot | null = null;
  let raf = 0;
  let frozen = false;

  function setArc(frac: number): void {
    arc.setAttribute('stroke-dashoffset', (C * (1 - frac)).toFixed(2));
  }

  function frame(): void {
    raf = 0;
    if (!snap) return;
    const st = snap.status;
    const phase = timerStory(st);
    const nodeNow = now() + snap.skew;
    if (phase === 'countdown' && st.fallback_deadline_ms != null) {
      const left = remainingMs(st.fallback_deadline_ms, now(), snap.skew, st.fallback_after_ms);
      setArc(remainingFraction(left, st.fallback_after_ms));
      const txt = formatCountdown(left);
      setText(big, txt.replace(/ s$/, ''));
      setText(unit, txt.endsWith(' s') ? 'seconds' : 'min:s');
      setText(line, left > 0 ? `HTTP takes over at ${clock(st.fallback_deadline_ms)}` : 'Deadline reached: waiting for the next heartbeat');
      schedule();
    } else if (phase === 'fallback' && st.fallback_active_since_ms != null) {
      setText(line, `since ${clock(st.fallback_active_since_ms)}, for ${duration(nodeNow - st.fallback_active_since_ms).replace(/ /g, '\u00a0')}`);
      schedule();
    }
  }

  function schedule(): void {
    if (!raf && !frozen && typeof requestAnimationFrame === 'function') raf = requestAnimationFrame(frame);
  }

  function update(next: Snapshot): void {
    snap = next;
    const st = next.status;
    const phase = timerStory(st);
    for (const p of STORIES) el.classList.toggle(`is-${p}`, p === phase);
    // The fallback fired but HTTP has nobody to carry sync with: no happy purple.
    el.classList.toggle('is-isolated', st.sync_state === 'isolated');
    field(el, 'fallback-phase', st.fallback_phase);
    switch (phase) {
      case 'countdown':
        setText(title, PHASE_WORDS.countdown);
        setText(detail, `No P2P peers since ${clock(st.peerless_since_ms)}; HTTP takes over after ${duration(st.fallback_after_ms)}`);
        break;
      case 'fallback':
        setArc(1);
        setText(big, 'HTTP');
        setText(unit, st.sync_state === 'isolated' ? 'nobody' : 'active');
        setText(title, PHASE_WORDS.active);
        setText(detail, st.sync_reason);
        break;
      case 'forced':
        setArc(1);
        setText(big, st.mode.toUpperCase());
        setText(unit, 'forced');
        setText(title, PHASE_WORDS.forced);
        setText(line, `Forced ${st.mode.toUpperCase()}: the peer timer cannot switch lungs`);
        el.classList.toggle('is-forced-http', st.mode === 'http');
        setText(detail, 'Switch to Auto to let the heartbeat decide');
        break;
      case 'healthy':
        setArc(1);
        setText(big, String(st.peer_count));
        setText(unit, plural(st.peer_count, 'peer'));
        setText(title, 'P2P healthy');
        setText(line, `HTTP takes over after ${duration(st.fallback_after_ms)} without sync peers`);
        setText(detail, `Checked every ${st.heartbeat_ms < 1000 ? `${st.heartbeat_ms} ms` : duration(st.heartbeat_ms)}`);
        break;
      case 'waiting':
        setArc(0);
        setText(big, '—');
        setText(unit, '');
        setText(title, 'Waiting for peers');
        setText(line, st.p2p_reason);
        setText(detail, `HTTP takes over after ${duration(st.fallback_after_ms)} without sync peers`);
        break;
    }
    frame();
  }

  /** Stops (or resumes) the countdown's animation, for a face that lost its node. */
  function freeze(on: boolean): void {
    frozen = on;
    if (on && raf && typeof cancelAnimationFrame === 'function') cancelAnimationFrame(raf);
    if (on) raf = 0;
    else frame();
  }

  return { el, update, freeze };
}

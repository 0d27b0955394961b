import type { Status } from '../backend/types';
import { formatCountdown, remainingFraction, remainingMs } from '../countdown';
import { h, s, setText } from '../dom';
import { clock, duration, plural } from '../format';
import type { Snapshot } from '../store';

export type FallbackPhase = 'countdown' | 'fallback' | 'forced' | 'healthy' | 'waiting' | 'inactive';

/** Which story the timer tells, from the snapshot only. */
export function fallbackPhase(st: Status): FallbackPhase {
  if (st.mode !== 'auto') return 'forced';
  if (!st.heartbeat_active) return 'inactive';
  if (st.fallback_active_since_ms != null) return 'fallback';
  if (st.fallback_deadline_ms != null) return 'countdown';
  if (st.has_peers && st.sync_mode === 'P2P') return 'healthy';
  return 'waiting';
}

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
  const el = h('section', { class: 'card timer', attrs: { 'aria-label': 'Fallback timer' } },
    h('header', { class: 'timer__head' }, h('span', { class: 'card__eyebrow', text: 'Fallback timer' }), title),
    h('div', { class: 'ring-wrap' }, ring, h('div', { class: 'ring__center' }, big, unit)),
    h('div', { class: 'timer__text' }, line, detail),
  );

  let snap: Snapshot | null = null;
  let raf = 0;

  function setArc(frac: number): void {
    arc.setAttribute('stroke-dashoffset', (C * (1 - frac)).toFixed(2));
  }

  function frame(): void {
    raf = 0;
    if (!snap) return;
    const st = snap.status;
    const phase = fallbackPhase(st);
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
      setText(line, `since ${clock(st.fallback_active_since_ms)}, for ${duration(nodeNow - st.fallback_active_since_ms)}`);
      schedule();
    }
  }

  function schedule(): void {
    if (!raf && typeof requestAnimationFrame === 'function') raf = requestAnimationFrame(frame);
  }

  function update(next: Snapshot): void {
    snap = next;
    const st = next.status;
    const phase = fallbackPhase(st);
    for (const p of ['countdown', 'fallback', 'forced', 'healthy', 'waiting', 'inactive']) el.classList.toggle(`is-${p}`, p === phase);
    switch (phase) {
      case 'countdown':
        setText(title, 'Fallback countdown');
        setText(detail, `No P2P peers since ${clock(st.peerless_since_ms)}; HTTP takes over after ${duration(st.fallback_after_ms)}`);
        break;
      case 'fallback':
        setArc(1);
        setText(big, 'HTTP');
        setText(unit, 'active');
        setText(title, 'HTTP fallback active');
        setText(detail, st.last_transition ? `Reason: ${st.last_transition.reason}` : 'The heartbeat switched sync to HTTP');
        break;
      case 'forced':
        setArc(1);
        setText(big, st.mode.toUpperCase());
        setText(unit, 'forced');
        setText(title, 'Heartbeat overridden');
        setText(line, `Forced ${st.mode.toUpperCase()}: the peer timer cannot switch lungs`);
        el.classList.toggle('is-forced-http', st.mode === 'http');
        setText(detail, 'Switch to Auto to let the heartbeat decide');
        break;
      case 'healthy':
        setArc(1);
        setText(big, String(st.peer_count));
        setText(unit, plural(st.peer_count, 'peer'));
        setText(title, 'P2P healthy');
        setText(line, `Heartbeat every ${st.heartbeat_ms < 1000 ? `${st.heartbeat_ms} ms` : duration(st.heartbeat_ms)}`);
        setText(detail, `HTTP takes over after ${duration(st.fallback_after_ms)} without sync peers`);
        break;
      case 'waiting':
        setArc(0);
        setText(big, '—');
        setText(unit, '');
        setText(title, 'Waiting for heartbeat');
        setText(line, 'No sync peers yet; no countdown reported');
        setText(detail, ' ');
        break;
      case 'inactive':
        setArc(0);
        setText(big, '—');
        setText(unit, 'off');
        setText(title, 'Heartbeat inactive');
        setText(line, 'The node reports no running heartbeat');
        setText(detail, ' ');
        break;
    }
    frame();
  }

  return { el, update };
}

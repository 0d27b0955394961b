import type { Status } from '../backend/types';
import { remainingMs } from '../countdown';
import { h, setText } from '../dom';

/**
 * The pill that says what carries sync, as status says it. During the fallback countdown
 * P2P has no live sync peer although `sync_mode` still reads P2P, so it says so and counts
 * down to the node's deadline (skew-corrected) between snapshots.
 */
export function createCarrier(now: () => number = () => Date.now(), attrs: Record<string, string> = {}) {
  const carrier = h('span', { class: 'carrier', attrs });
  let last: { s: Status; skew: number } | null = null;
  let tick: ReturnType<typeof setTimeout> | null = null;

  function renderCarrier(): void {
    if (!last) return;
    const { s, skew } = last;
    if (tick) clearTimeout(tick);
    tick = null;
    const counting = s.sync_mode === 'P2P' && s.mode === 'auto' && s.fallback_deadline_ms != null && s.fallback_active_since_ms == null;
    if (counting) {
      const left = remainingMs(s.fallback_deadline_ms!, now(), skew, Number.MAX_SAFE_INTEGER);
      const secs = Math.ceil(left / 1000);
      carrier.className = 'carrier carrier--lost';
      setText(carrier, secs > 0 ? `P2P lost — HTTP in ${secs} s` : 'P2P lost — HTTP now');
      if (secs > 0) tick = setTimeout(renderCarrier, left - (secs - 1) * 1000 + 5);
    } else if (s.sync_mode === 'P2P' && s.p2p_blocked) {
      carrier.className = 'carrier carrier--lost';
      setText(carrier, 'P2P cut — HTTP soon');
    } else {
      carrier.className = `carrier carrier--${s.sync_mode.toLowerCase()}`;
      setText(carrier, `Sync via ${s.sync_mode}`);
    }
  }

  return {
    el: carrier,
    /** `skew`: node clock minus ours when the snapshot arrived (see countdown.ts). */
    update(s: Status, skew = 0) {
      last = { s, skew };
      renderCarrier();
    },
  };
}

import type { Status, SyncState } from '../backend/types';
import { remainingMs } from '../countdown';
import { h, setText } from '../dom';
import { isAlone } from './lungs';

export const SYNC_WORDS: Record<SyncState, string> = {
  p2p: 'Sync via P2P',
  http: 'Sync via HTTP',
  isolated: 'Isolated',
};

/**
 * The pill that says which lung carries sync, as the core's `sync_state` says it. During
 * the fallback countdown nothing carries (`isolated`), and the pill counts down to the
 * node's deadline (skew-corrected) between snapshots; `freeze()` stops that, for a face
 * that lost its node.
 */
export function createCarrier(now: () => number = () => Date.now(), attrs: Record<string, string> = {}) {
  const carrier = h('span', { class: 'carrier', attrs });
  let last: { s: Status; skew: number } | null = null;
  let tick: ReturnType<typeof setTimeout> | null = null;
  let frozen = false;

  function renderCarrier(): void {
    if (!last) return;
    const { s, skew } = last;
    if (tick) clearTimeout(tick);
    tick = null;
    carrier.setAttribute('data-value', s.sync_state);
    if (s.sync_state === 'isolated' && s.fallback_phase === 'countdown' && s.fallback_deadline_ms != null) {
      const left = remainingMs(s.fallback_deadline_ms, now(), skew, Number.MAX_SAFE_INTEGER);
      const secs = Math.ceil(left / 1000);
      carrier.className = 'carrier carrier--lost';
      setText(carrier, secs > 0 ? `P2P lost — HTTP in ${secs} s` : 'P2P lost — HTTP now');
      if (secs > 0 && !frozen) tick = setTimeout(renderCarrier, left - (secs - 1) * 1000 + 5);
    } else if (s.sync_state === 'isolated') {
      carrier.className = `carrier ${isAlone(s) ? 'carrier--idle' : 'carrier--isolated'}`;
      setText(carrier, SYNC_WORDS.isolated);
    } else {
      carrier.className = `carrier carrier--${s.sync_state}`;
      setText(carrier, SYNC_WORDS[s.sync_state]);
    }
    carrier.title = s.sync_reason;
  }

  return {
    el: carrier,
    /** `skew`: node clock minus ours when the snapshot arrived (see countdown.ts). */
    update(s: Status, skew = 0) {
      last = { s, skew };
      renderCarrier();
    },
    /** Stops (or resumes) counting down between snapshots. */
    freeze(on: boolean) {
      if (frozen === on) return;
      frozen = on;
      renderCarrier();
    },
  };
}

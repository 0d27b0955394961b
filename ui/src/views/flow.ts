import type { EntriesByLung, Status } from '../backend/types';
import { h, s, setText } from '../dom';

/** Seconds per bar: one-second bars of a few entries a second are mostly noise. */
export const FLOW_BUCKET_MS = 5_000;
/** How far back the chart reaches. */
export const FLOW_WINDOW_MS = 3 * 60_000;

export interface FlowBucket {
  /** Start of the bucket (node clock, unix ms). */
  start_ms: number;
  /** Entries the lung carried in the bucket (received + sent). */
  p2p: number;
  http: number;
}

/** What one snapshot added to the counters since the one before (of the same node run). */
export interface FlowDelta {
  at_ms: number;
  p2p: number;
  http: number;
}

type FlowInput = Pick<Status, 'now_ms' | 'node'> & { entries_by_lung?: EntriesByLung | null };

const carried = (c: EntriesByLung) => ({ p2p: c.p2p.received + c.p2p.sent, http: c.http.received + c.http.sent });

/**
 * Entries per lung over the last minutes, from the deltas of the node's own per-lung
 * counters between snapshots; nothing is guessed. The first snapshot of a node (or of a
 * restarted node) is only a baseline: its totals happened before we watched.
 */
export class FlowSeries {
  private key = '';
  private base: { p2p: number; http: number } | null = null;
  private buckets = new Map<number, FlowBucket>();

  constructor(readonly bucketMs = FLOW_BUCKET_MS, readonly windowMs = FLOW_WINDOW_MS) {}

  /** Takes a snapshot; returns what it added (null for a baseline or an older node's snapshot). */
  add(st: FlowInput): FlowDelta | null {
    const key = `${st.node.peer_id}@${st.node.started_at_ms}`;
    const c = st.entries_by_lung;
    if (!c) return null;
    const now = carried(c);
    if (key !== this.key) {
      // Another node (or a restart): its history is not ours to chart.
      this.key = key;
      this.buckets.clear();
      this.base = now;
      return null;
    }
    const base = this.base ?? now;
    const d = { p2p: now.p2p - base.p2p, http: now.http - base.http };
    this.base = now;
    if (d.p2p < 0 || d.http < 0) return null; // an out-of-order snapshot: keep the newer base
    if (d.p2p === 0 && d.http === 0) return null;
    const start = Math.floor(st.now_ms / this.bucketMs) * this.bucketMs;
    const b = this.buckets.get(start) ?? { start_ms: start, p2p: 0, http: 0 };
    b.p2p += d.p2p;
    b.http += d.http;
    this.buckets.set(start, b);
    this.prune(st.now_ms);
    return { at_ms: st.now_ms, ...d };
  }

  /** Every bucket of the window ending at `now_ms` (node clock), oldest first, empty ones included. */
  series(now_ms: number): FlowBucket[] {
    this.prune(now_ms);
    const last = Math.floor(now_ms / this.bucketMs) * this.bucketMs;
    const n = Math.ceil(this.windowMs / this.bucketMs);
    const out: FlowBucket[] = [];
    for (let i = n - 1; i >= 0; i--) {
      const start = last - i * this.bucketMs;
      out.push(this.buckets.get(start) ?? { start_ms: start, p2p: 0, http: 0 });
    }
    return out;
  }

  private prune(now_ms: number): void {
    const oldest = now_ms - this.windowMs - this.bucketMs;
    for (const k of this.buckets.keys()) if (k < oldest) this.buckets.delete(k);
  }
}

/** Per second, one decimal: "2.4". */
export function perSecond(count: number, bucketMs = FLOW_BUCKET_MS): string {
  return (count / (bucketMs / 1000)).toFixed(1).replace(/\.0$/, '');
}

const W = 360;
const H = 56;

/**
 * The entries-flow chart: stacked bars, P2P below HTTP, one per bucket, the newest on the
 * right. It moves with the node's clock (our clock plus the measured skew) once a second,
 * and freezes when the window lost the node (`setLive(false)`).
 */
export function createFlowChart(now: () => number = () => Date.now()) {
  const series = new FlowSeries();
  const bars = s('g', { class: 'flow__bars' });
  const svg = s('svg', { class: 'flow__chart', viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': 'Entries per second by lung, last 3 minutes' }, bars);
  const p2pRate = h('span', { class: 'flow__rate flow__rate--p2p num', text: 'P2P 0/s' });
  const httpRate = h('span', { class: 'flow__rate flow__rate--http num', text: 'HTTP 0/s' });
  const scale = h('span', { class: 'flow__scale num' });
  const el = h('figure', { class: 'flow', attrs: { 'data-field': 'presenter-flow', 'data-flow-p2p': '0', 'data-flow-http': '0' } },
    h('figcaption', { class: 'flow__head' }, h('span', { class: 'flow__title', text: 'Entries flowing' }), p2pRate, httpRate, scale),
    svg);
  const listeners = new Set<(d: FlowDelta) => void>();
  let skew = 0;
  let hasNode = false;
  let live = true;
  let tick: ReturnType<typeof setInterval> | null = null;

  function render(): void {
    if (!hasNode) return;
    const buckets = series.series(now() + skew);
    const max = Math.max(1, ...buckets.map((b) => b.p2p + b.http));
    const bw = W / buckets.length;
    bars.replaceChildren(...buckets.flatMap((b, i) => {
      const x = (i * bw).toFixed(1);
      const w = Math.max(1, bw - 1.5).toFixed(1);
      const hp = (b.p2p / max) * (H - 2);
      const hh = (b.http / max) * (H - 2);
      const out: SVGElement[] = [];
      if (b.p2p) out.push(s('rect', { class: 'flow__bar flow__bar--p2p', x, y: (H - hp).toFixed(1), width: w, height: hp.toFixed(1) }));
      if (b.http) out.push(s('rect', { class: 'flow__bar flow__bar--http', x, y: (H - hp - hh).toFixed(1), width: w, height: hh.toFixed(1) }));
      return out;
    }));
    // The newest complete bucket says the current rate; the one filling now would understate it.
    const last = buckets[buckets.length - 2] ?? buckets[buckets.length - 1]!;
    const [pr, hr] = [perSecond(last.p2p, series.bucketMs), perSecond(last.http, series.bucketMs)];
    setText(p2pRate, `P2P ${pr}/s`);
    setText(httpRate, `HTTP ${hr}/s`);
    setText(scale, `top ${perSecond(max, series.bucketMs)}/s`);
    el.setAttribute('data-flow-p2p', pr);
    el.setAttribute('data-flow-http', hr);
  }

  function setLive(on: boolean): void {
    live = on;
    if (!on && tick) {
      clearInterval(tick);
      tick = null;
    } else if (on && !tick && hasNode) {
      tick = setInterval(render, 1000);
    }
  }

  return {
    el,
    series,
    /** `skew`: node clock minus ours when the snapshot arrived. */
    update(st: Status, skewMs = 0) {
      skew = skewMs;
      hasNode = true;
      const d = series.add(st);
      if (d) listeners.forEach((cb) => cb(d));
      if (live && !tick) tick = setInterval(render, 1000);
      render();
    },
    setLive,
    /** What each snapshot added per lung: for the graph's pulses on the lung that carried it. */
    onDelta(cb: (d: FlowDelta) => void): () => void {
      listeners.add(cb);
      return () => listeners.delete(cb);
    },
    render,
    destroy() {
      setLive(false);
    },
  };
}

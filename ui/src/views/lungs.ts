import type { HttpState, P2pState, Status } from '../backend/types';
import { h, setText } from '../dom';
import { clock, median, rtt } from '../format';
import { field } from '../frame';

/** How a lung panel looks: the state is the core's, the tone only says how loud to show it. */
export type Tone = 'breathing' | 'standby' | 'off' | 'warn' | 'failed' | 'idle';

export interface Metric {
  key: string;
  label: string;
  value: string;
  /** A second, smaller line (units, context). */
  sub?: string;
  /** Words for engineers (RTT and the like): hidden in presentation mode. */
  jargon?: boolean;
  /** Detail a short screen can spare (hidden when the window is not tall enough). */
  minor?: boolean;
  /** CONTRACT.md field this metric shows, with its raw value. */
  field?: { name: string; value: string | number };
}

export interface LungView {
  state: P2pState | HttpState;
  /** Whether the node routes sync through this lung now (`sync_mode`). */
  routed: boolean;
  tone: Tone;
  badge: string;
  reason: string;
  metrics: Metric[];
}

export const P2P_WORDS: Record<P2pState, string> = {
  carrying: 'Carrying sync',
  countdown: 'Countdown',
  down: 'Down',
  cut: 'Cut',
  off: 'Off',
};

export const HTTP_WORDS: Record<HttpState, string> = {
  carrying: 'Carrying sync',
  failing: 'Failing',
  standby: 'Standby',
  unready: 'Not ready',
  off: 'Off',
};

/**
 * A node with no peer and no neighbour has nobody to sync with yet: a first launch, not an
 * emergency. Its lungs stay calm (the welcome card explains what to do).
 */
export const isAlone = (s: Status): boolean => s.peers.length === 0 && s.neighbors.length === 0;

const maxOf = (xs: (number | null | undefined)[]): number | null =>
  xs.reduce<number | null>((m, x) => (x != null && (m == null || x > m) ? x : m), null);

function p2pTone(s: Status): Tone {
  switch (s.p2p_state) {
    case 'carrying': return 'breathing';
    case 'countdown': return 'warn';
    case 'cut': return 'failed';
    case 'off': return 'off';
    case 'down': return isAlone(s) ? 'idle' : s.sync_state === 'http' ? 'warn' : 'failed';
  }
}

function httpTone(s: Status): Tone {
  const none = s.neighbors.length === 0;
  switch (s.http_state) {
    case 'carrying': return 'breathing';
    case 'standby': return 'standby';
    case 'off': return 'off';
    case 'failing': return none ? 'idle' : 'failed';
    case 'unready': return none ? 'idle' : 'warn';
  }
}

const flow = (received: number, sent: number) => ({ value: received.toLocaleString('en-US'), sub: `${sent.toLocaleString('en-US')} sent` });

/** What the P2P panel shows: the core's state and reason, and a few counts. */
export function p2pLung(s: Status): LungView {
  const ready = s.peers.filter((p) => p.sync_capable).length;
  const rtts = s.peers.map((p) => p.rtt_ms).filter((x): x is number => x != null);
  const last = s.last_sync?.lung === 'P2P' ? s.last_sync.at_ms : maxOf(s.peers.map((p) => p.last_sync_ms));
  const moved = flow(s.entries_by_lung.p2p.received, s.entries_by_lung.p2p.sent);
  return {
    state: s.p2p_state,
    routed: s.sync_mode === 'P2P',
    tone: p2pTone(s),
    badge: P2P_WORDS[s.p2p_state],
    reason: s.p2p_reason,
    metrics: [
      { key: 'peers', label: 'Peers', value: String(s.peer_count), sub: `${ready} ready to sync`, field: { name: 'peer-count', value: s.peer_count } },
      { key: 'entries', label: 'Received', ...moved },
      { key: 'last', label: 'Last sync', value: clock(last), sub: ' ', minor: true },
      { key: 'rtt', label: 'Round trip', value: rtt(median(rtts)), sub: rtts.length ? `median of ${rtts.length}` : 'no pings yet', jargon: true, minor: true },
    ],
  };
}

/** What the HTTP panel shows: the core's state and reason, and a few counts. */
export function httpLung(s: Status): LungView {
  const total = s.neighbors.length;
  const healthy = s.neighbors.filter((n) => n.health === 'healthy').length;
  const unhealthy = s.neighbors.filter((n) => n.health === 'unhealthy').length;
  const checked = maxOf(s.neighbors.map((n) => n.checked_at_ms));
  const last = s.last_sync?.lung === 'HTTP' ? s.last_sync.at_ms : maxOf(s.neighbors.map((n) => n.last_sync_ms));
  const moved = flow(s.entries_by_lung.http.received, s.entries_by_lung.http.sent);
  const poll = s.http_poll_ms < 1000 ? `${s.http_poll_ms} ms` : `${Math.round(s.http_poll_ms / 100) / 10} s`;
  return {
    state: s.http_state,
    routed: s.sync_mode === 'HTTP',
    tone: httpTone(s),
    badge: HTTP_WORDS[s.http_state],
    reason: s.http_reason,
    metrics: [
      { key: 'healthy', label: 'Neighbours', value: `${healthy} / ${total}`, sub: total === 0 ? 'none configured' : unhealthy ? `healthy · ${unhealthy} unreachable` : total - healthy ? `healthy · ${total - healthy} not checked` : 'healthy' },
      { key: 'entries', label: 'Received', ...moved },
      { key: 'last', label: 'Last sync', value: clock(last), sub: ' ', minor: true },
      { key: 'checked', label: 'Last check', value: clock(checked), sub: `every ${poll}`, minor: true },
    ],
  };
}

interface Panel {
  root: HTMLElement;
  badge: HTMLElement;
  reason: HTMLElement;
  values: Map<string, { box: HTMLElement; value: HTMLElement; sub: HTMLElement }>;
}

function panel(kind: 'p2p' | 'http', title: string, subtitle: string, keys: Metric[]): Panel {
  const badge = h('span', { class: 'lung__badge' });
  const reason = h('p', { class: 'lung__note lung__reason', attrs: { 'data-field': `${kind}-reason` } });
  const values = new Map<string, { box: HTMLElement; value: HTMLElement; sub: HTMLElement }>();
  const grid = h('dl', { class: 'lung__metrics' });
  for (const m of keys) {
    const value = h('dd', { class: 'metric__value num', attrs: { 'data-metric': m.key } });
    const sub = h('span', { class: 'metric__sub' });
    const box = h('div', { class: `metric metric--${m.key}${m.jargon ? ' jargon' : ''}${m.minor ? ' minor' : ''}` }, h('dt', { class: 'metric__label', text: m.label }), value, sub);
    values.set(m.key, { box, value, sub });
    grid.append(box);
  }
  const root = h(
    'section',
    { class: `card lung lung--${kind}`, attrs: { 'aria-label': `${title} lung`, 'data-lung': kind } },
    h('header', { class: 'lung__head' },
      h('div', { class: 'lung__titles' }, h('h2', { class: 'lung__title', text: title }), h('span', { class: 'lung__subtitle', text: subtitle })),
      badge,
    ),
    h('div', { class: 'lung__body' },
      h('span', { class: 'lung__glyph', attrs: { 'aria-hidden': 'true' } }, h('span', { class: 'lung__core' })),
      reason,
    ),
    grid,
  );
  return { root, badge, reason, values };
}

const TONES: readonly Tone[] = ['breathing', 'standby', 'off', 'warn', 'failed', 'idle'];

function apply(p: Panel, kind: 'p2p' | 'http', v: LungView): void {
  for (const t of TONES) p.root.classList.toggle(`is-${t}`, v.tone === t);
  // `is-carrying`: the lung the node routes sync through (the core's `sync_mode`), which
  // e2e/browser.mjs and app-window.mjs wait for; forced HTTP with no neighbour routes
  // through HTTP although its state is `failing`.
  p.root.classList.toggle('is-carrying', v.routed);
  field(p.badge, `${kind}-state`, v.state);
  setText(p.badge, v.badge);
  field(p.reason, `${kind}-reason`, v.reason);
  setText(p.reason, v.reason);
  for (const m of v.metrics) {
    const slot = p.values.get(m.key);
    if (!slot) continue;
    setText(slot.value, m.value);
    setText(slot.sub, m.sub ?? '');
    if (m.field) field(slot.value, m.field.name, m.field.value);
  }
}

/** The two large lung panels. */
export function createLungs(): { el: HTMLElement; update(s: Status): void } {
  let p2p: Panel | null = null;
  let http: Panel | null = null;
  const el = h('div', { class: 'lungs' });
  return {
    el,
    update(s) {
      const a = p2pLung(s);
      const b = httpLung(s);
      if (!p2p || !http) {
        p2p = panel('p2p', 'P2P', 'direct', a.metrics);
        http = panel('http', 'HTTP', 'reserve', b.metrics);
        el.append(p2p.root, http.root);
      }
      apply(p2p, 'p2p', a);
      apply(http, 'http', b);
    },
  };
}

import type { Status, SyncSummary } from '../backend/types';
import { h, setText } from '../dom';
import { bytes, clock, counted, duration, median, plural, rtt } from '../format';

/** "1↓ 0↑ entry", "3↓ 2↑ entries": the noun agrees with what moved in all. */
function movedEntries(l: SyncSummary): string {
  return `${l.pulled}↓ ${l.pushed}↑ ${plural(l.pulled + l.pushed, 'entry', 'entries')}`;
}

export type LungState = 'breathing' | 'standby' | 'off' | 'failed';

export interface Metric {
  key: string;
  label: string;
  value: string;
  /** A second, smaller line (units, context). */
  sub?: string;
}

export interface LungView {
  state: LungState;
  carrying: boolean;
  badge: string;
  note: string;
  metrics: Metric[];
}

const span = (ms: number): string => (ms < 1000 ? `${ms} ms` : ms % 1000 ? `${(ms / 1000).toFixed(1)} s` : duration(ms));

const maxOf = (xs: (number | null)[]): number | null =>
  xs.reduce<number | null>((m, x) => (x != null && (m == null || x > m) ? x : m), null);

/** What the P2P panel shows, from the snapshot only. */
export function p2pLung(s: Status): LungView {
  const carrying = s.sync_mode === 'P2P';
  const sync = s.peers.filter((p) => p.sync_capable).length;
  const mesh = s.peers.filter((p) => p.in_mesh).length;
  const rtts = s.peers.map((p) => p.rtt_ms).filter((x): x is number => x != null);
  const lastP2p =
    s.last_sync?.lung === 'P2P' ? s.last_sync.at_ms : maxOf(s.peers.map((p) => p.last_sync_ms));
  let state: LungState;
  let note: string;
  if (s.p2p_blocked) {
    state = 'failed';
    note = 'P2P cut on this node: connections closed and refused';
  } else if (carrying && sync === 0) {
    state = 'failed';
    note = s.fallback_deadline_ms != null ? 'No sync-capable peers: fallback countdown running' : 'No sync-capable peers';
  } else if (carrying) {
    state = 'breathing';
    note = `Carrying sync with ${counted(sync, 'peer')}: gossip and reconciliation`;
  } else if (s.mode === 'http') {
    state = 'off';
    note = 'Forced HTTP mode: no gossip, no P2P reconciliation';
  } else {
    state = 'standby';
    note = 'Standby: HTTP carries sync until peers return';
  }
  const badge = { breathing: 'Carrying sync', standby: 'Standby', off: 'Overridden', failed: s.p2p_blocked ? 'Cut' : 'No peers' }[state];
  return {
    state,
    carrying,
    badge,
    note,
    metrics: [
      { key: 'peers', label: 'Peers', value: String(s.peers.length), sub: `${sync} sync-capable` },
      { key: 'mesh', label: 'In mesh', value: String(mesh), sub: 'gossipsub' },
      { key: 'rtt', label: 'RTT median', value: rtt(median(rtts)), sub: rtts.length ? `${rtts.length} measured` : 'no pings yet' },
      { key: 'last', label: 'Last P2P sync', value: clock(lastP2p), sub: lastP2p != null && s.last_sync?.lung === 'P2P' ? movedEntries(s.last_sync) : ' ' },
    ],
  };
}

/** What the HTTP panel shows, from the snapshot only. */
export function httpLung(s: Status): LungView {
  const carrying = s.sync_mode === 'HTTP';
  const total = s.neighbors.length;
  const healthy = s.neighbors.filter((n) => n.health === 'healthy').length;
  const unhealthy = s.neighbors.filter((n) => n.health === 'unhealthy').length;
  const streams = s.neighbors.filter((n) => n.events_connected).length;
  const lastHttp =
    s.last_sync?.lung === 'HTTP' ? s.last_sync.at_ms : maxOf(s.neighbors.map((n) => n.last_sync_ms));
  let moved: number | null = null;
  if (s.last_sync?.lung === 'HTTP') moved = s.last_sync.bytes;
  else {
    const latest = [...s.neighbors]
      .filter((n) => n.last_report && n.last_sync_ms != null)
      .sort((a, b) => (b.last_sync_ms ?? 0) - (a.last_sync_ms ?? 0))[0];
    if (latest?.last_report) moved = latest.last_report.bytes_sent + latest.last_report.bytes_received;
  }
  let state: LungState;
  let note: string;
  if (carrying && total === 0) {
    state = 'failed';
    note = 'HTTP carries sync but no neighbours are configured';
  } else if (carrying && unhealthy === total) {
    state = 'failed';
    note = total === 1 ? 'The neighbour is unhealthy' : `All ${total} neighbours unhealthy`;
  } else if (carrying) {
    state = 'breathing';
    note = `Polling ${counted(total, 'neighbour')} every ${span(s.http_poll_ms)}`;
  } else if (s.mode === 'p2p') {
    state = 'off';
    note = 'Forced P2P mode: HTTP sync off';
  } else {
    state = 'standby';
    note = `Reserve: takes over after ${span(s.fallback_after_ms)} without P2P peers`;
  }
  const badge = { breathing: 'Carrying sync', standby: 'Standby', off: 'Overridden', failed: 'Failing' }[state];
  return {
    state,
    carrying,
    badge,
    note,
    metrics: [
      { key: 'healthy', label: 'Neighbours', value: `${healthy} / ${total}`, sub: unhealthy ? `healthy · ${unhealthy} unhealthy` : total - healthy ? `healthy · ${total - healthy} not contacted` : 'healthy' },
      { key: 'last', label: 'Last HTTP sync', value: clock(lastHttp), sub: s.last_sync?.lung === 'HTTP' ? movedEntries(s.last_sync) : ' ' },
      { key: 'bytes', label: 'Bytes moved', value: bytes(moved), sub: 'last reconciliation' },
      { key: 'streams', label: 'Event streams', value: `${streams} / ${total}`, sub: 'connected' },
    ],
  };
}

interface Panel {
  root: HTMLElement;
  badge: HTMLElement;
  note: HTMLElement;
  values: Map<string, { value: HTMLElement; sub: HTMLElement }>;
}

function panel(kind: 'p2p' | 'http', title: string, subtitle: string, keys: Metric[]): Panel {
  const badge = h('span', { class: 'lung__badge' });
  const note = h('p', { class: 'lung__note' });
  const values = new Map<string, { value: HTMLElement; sub: HTMLElement }>();
  const grid = h('dl', { class: 'lung__metrics' });
  for (const m of keys) {
    const value = h('dd', { class: 'metric__value num', attrs: { 'data-metric': m.key } });
    const sub = h('span', { class: 'metric__sub' });
    values.set(m.key, { value, sub });
    grid.append(h('div', { class: `metric metric--${m.key}` }, h('dt', { class: 'metric__label', text: m.label }), value, sub));
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
      note,
    ),
    grid,
  );
  return { root, badge, note, values };
}

function apply(p: Panel, v: LungView): void {
  for (const st of ['breathing', 'standby', 'off', 'failed'] as const) p.root.classList.toggle(`is-${st}`, v.state === st);
  p.root.classList.toggle('is-carrying', v.carrying);
  setText(p.badge, v.badge);
  setText(p.note, v.note);
  for (const m of v.metrics) {
    const slot = p.values.get(m.key);
    if (!slot) continue;
    setText(slot.value, m.value);
    setText(slot.sub, m.sub ?? '');
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
        p2p = panel('p2p', 'P2P', 'libp2p', a.metrics);
        http = panel('http', 'HTTP', 'polling', b.metrics);
        el.append(p2p.root, http.root);
      }
      apply(p2p, a);
      apply(http, b);
    },
  };
}

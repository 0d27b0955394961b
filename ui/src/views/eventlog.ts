import type { NodeEvent } from '../backend/types';
import { h } from '../dom';
import { bytes, clock, counted, duration, shortHash, shortId, shortUrl } from '../format';

export type EventCategory = 'transitions' | 'syncs' | 'errors' | 'entries' | 'log';
export type EventFilter = 'all' | EventCategory;
export const FILTERS: readonly EventFilter[] = ['all', 'transitions', 'syncs', 'errors', 'entries', 'log'];

export interface LogItem {
  seq: number;
  at_ms: number;
  category: EventCategory;
  level: 'info' | 'ok' | 'warn' | 'error';
  text: string;
}

/** A machine's name for a PeerId or neighbour URL, when the watched node knows one. */
export type Namer = (idOrUrl: string) => string | undefined;

/** One human sentence per node event, and the filter it belongs to; machines by name when known. */
export function describeEvent(e: NodeEvent, name: Namer = () => undefined): Omit<LogItem, 'seq' | 'at_ms'> {
  const who = (lung: string, w: string) => name(w) ?? (lung === 'HTTP' ? shortUrl(w) : shortId(w, 6, 4));
  switch (e.type) {
    case 'lung': {
      const l = e.event;
      switch (l.kind) {
        case 'started': return { category: 'transitions', level: 'info', text: 'Heartbeat monitor started' };
        case 'peers_stable': return { category: 'transitions', level: 'ok', text: `P2P stable with ${counted(l.peers, 'sync peer')}` };
        case 'peerless_timer_started': return { category: 'transitions', level: 'warn', text: `No P2P peers: fallback countdown started (HTTP at ${clock(l.deadline_ms)})` };
        case 'peerless_timer_reset': return { category: 'transitions', level: 'ok', text: `${l.peers === 1 ? 'Peer' : 'Peers'} found (${l.peers}): countdown reset` };
        case 'fallback_activated': return { category: 'transitions', level: 'warn', text: `HTTP fallback activated after ${duration(l.after_ms)} without peers` };
        case 'mode_changed': return { category: 'transitions', level: 'info', text: `Mode changed from ${l.from} to ${l.to}` };
        case 'transition': return { category: 'transitions', level: l.to === 'HTTP' ? 'warn' : 'ok', text: `Sync moved from ${l.from} to ${l.to}: ${l.reason}` };
        default: return { category: 'transitions', level: 'info', text: `Heartbeat: ${(l as { kind: string }).kind}` };
      }
    }
    case 'entry_added': return { category: 'entries', level: 'info', text: `Entry ${shortHash(e.id, 6)} added, by ${name(e.author) ?? shortId(e.author, 6, 4)}` };
    case 'diverged': return { category: 'syncs', level: 'warn', text: `Root differs from ${name(e.neighbor) ?? shortUrl(e.neighbor)} (${shortHash(e.theirs, 4)} vs ours ${shortHash(e.ours, 4)}): reconciling` };
    case 'sync_completed': {
      const r = e.report;
      const moved = r.pulled + r.pushed;
      return { category: 'syncs', level: moved ? 'ok' : 'info', text: moved ? `${e.lung} sync with ${who(e.lung, e.with)}: pulled ${r.pulled}, pushed ${r.pushed} (${bytes(r.bytes_sent + r.bytes_received)})` : `${e.lung} sync with ${who(e.lung, e.with)}: already in sync` };
    }
    case 'sync_failed': return { category: 'errors', level: 'error', text: `${e.lung} sync with ${who(e.lung, e.with)} failed (${e.kind}): ${e.message}` };
    case 'hole_punched': return { category: 'transitions', level: 'ok', text: `Direct connection to ${name(e.peer) ?? shortId(e.peer, 6, 4)} established by hole punching` };
    case 'store_failed': return { category: 'errors', level: 'error', text: `Store stopped accepting writes: ${e.reason}` };
    // presenter: what a person did, so the log shows the cause before its consequences.
    case 'operator': return { category: 'transitions', level: 'info', text: `${e.by === 'operator' ? 'Operator' : e.by}: ${e.action === 'p2p_cut' ? 'P2P cut' : e.action === 'p2p_restored' ? 'P2P restored' : `mode set to ${e.mode ?? '?'}`}` };
    // The app process's log lines ([P2P_HEARTBEAT] ...), as the terminal shows them. With
    // a demo cluster running they come from every node in the process, so they stay
    // under their own filter and never mix into the watched node's events.
    case 'log': return { category: 'log', level: e.level, text: e.message };
    default: return { category: 'errors', level: 'warn', text: `Unknown event ${(e as { type: string }).type}` };
  }
}

export function filterItems(items: readonly LogItem[], f: EventFilter): LogItem[] {
  // Raw log lines repeat what the sentences say: they have their own filter only.
  return f === 'all' ? items.filter((i) => i.category !== 'log') : items.filter((i) => i.category === f);
}

/** Newest-first buffer, capped: the oldest items fall off. */
export class EventBuffer {
  private items: LogItem[] = [];
  private seq = 0;
  constructor(readonly cap = 500, private name: Namer = () => undefined) {}
  push(e: NodeEvent): LogItem {
    const item: LogItem = { seq: ++this.seq, at_ms: e.at_ms, ...describeEvent(e, this.name) };
    this.items.unshift(item);
    if (this.items.length > this.cap) this.items.length = this.cap;
    return item;
  }
  all(): readonly LogItem[] {
    return this.items;
  }
  clear(): void {
    this.items = [];
  }
}

const LABELS: Record<EventFilter, string> = { all: 'All', transitions: 'Transitions', syncs: 'Syncs', errors: 'Errors', entries: 'Entries', log: 'App log' };

/** The event log widget: newest first, filterable, capped. */
export function createEventLog(cap = 500, name?: Namer) {
  const buf = new EventBuffer(cap, name);
  let filter: EventFilter = 'all';
  const list = h('ol', { class: 'log__list', attrs: { 'aria-live': 'off' } });
  const chips = h('div', { class: 'chips', attrs: { role: 'group', 'aria-label': 'Filter events' } });
  const chipEls = new Map<EventFilter, HTMLButtonElement>();
  for (const f of FILTERS) {
    const b = h('button', { class: 'chip', text: LABELS[f], attrs: { type: 'button', 'data-filter': f, 'aria-pressed': String(f === filter) }, on: { click: () => setFilter(f) } });
    chipEls.set(f, b);
    chips.append(b);
  }
  const el = h('section', { class: 'card log', attrs: { 'aria-label': 'Event log' } },
    h('header', { class: 'card__head' }, h('h2', { class: 'card__title', text: 'Event log' }), chips),
    list);

  function itemEl(i: LogItem): HTMLElement {
    return h('li', { class: `log__item log__item--${i.level}`, attrs: { 'data-category': i.category } },
      h('time', { class: 'log__time num', text: clock(i.at_ms) }),
      h('span', { class: 'log__text', text: i.text }));
  }

  function render(): void {
    const items = filterItems(buf.all(), filter);
    list.replaceChildren(...(items.length ? items.slice(0, 200).map(itemEl) : [h('li', { class: 'log__empty', text: filter === 'all' ? 'Waiting for the node’s events…' : `No ${LABELS[filter].toLowerCase()} yet` })]));
  }

  function setFilter(f: EventFilter): void {
    filter = f;
    for (const [k, b] of chipEls) b.setAttribute('aria-pressed', String(k === f));
    render();
  }

  function add(e: NodeEvent): void {
    const item = buf.push(e);
    if (!filterItems([item], filter).length) return;
    list.querySelector('.log__empty')?.remove();
    list.prepend(itemEl(item));
    while (list.children.length > 200) list.lastElementChild?.remove();
  }

  /** Starts afresh, e.g. when the window watches another node: its events are not this one's. */
  function clear(): void {
    buf.clear();
    render();
  }

  render();
  return { el, add, clear, setFilter, items: () => buf.all() };
}

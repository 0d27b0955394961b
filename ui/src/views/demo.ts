import type { CutCounter, DemoControls, DemoStatus, SampleWritten, Status } from '../backend/types';
import { errorMessage } from '../backend/errors';
import { h, setText } from '../dom';
import { clock, counted, shortHash, shortId } from '../format';
import { createCarrier } from './carrier';
import { createFlowChart } from './flow';
import { buttonShortcut, createShortcuts, type Shortcut } from './shortcuts';
import { createTimeline } from './timeline';
import type { Toast } from './toast';
import '../styles/presenter.css';

/** What the presenter bar may tell the rest of the window. */
export interface DemoHooks {
  /** A sample entry the presenter wrote (for the graph's pulse of our own writes). */
  onWrite?: (w: SampleWritten) => void;
}

/** The cut counter in words: "Written during the cut: 12 · delivered to 4 of 4 nodes". */
export function cutCounterText(c: CutCounter): { text: string; detail: string; tone: 'ok' | 'warn' } {
  // Nothing written yet: "delivered to 4 of 4 nodes" of nothing would claim a delivery.
  const text = c.written === 0
    ? 'Written during the cut: nothing yet'
    : `Written during the cut: ${c.written} · delivered to ${c.least_delivered} of ${c.nodes} nodes`;
  const when = c.restored_ms == null ? `cut since ${clock(c.since_ms)}` : `cut ${clock(c.since_ms)}–${clock(c.restored_ms)}`;
  const how = c.written === 0 ? '' : c.on_every_node === c.written ? `all ${c.written} on every node` : `${c.on_every_node} of ${c.written} on every node so far`;
  const detail = how ? `${when} · ${how}` : when;
  return { text, detail, tone: c.written > 0 && c.on_every_node < c.written ? 'warn' : 'ok' };
}

/** What the demo cluster accepts (src-tauri demo.rs); anything else is refused here, not clamped. */
export const DEMO_NODES_MIN = 2;
export const DEMO_NODES_MAX = 12;

/** The node count typed in the Nodes field, or why it cannot be used. */
export function parseNodeCount(text: string): { ok: true; n: number } | { ok: false; message: string } {
  const t = text.trim();
  const n = Number(t);
  if (t === '' || !Number.isInteger(n) || n < DEMO_NODES_MIN || n > DEMO_NODES_MAX) {
    return { ok: false, message: `Nodes must be a whole number from ${DEMO_NODES_MIN} to ${DEMO_NODES_MAX}${t === '' ? '' : ` (got ${t})`}` };
  }
  return { ok: true, n };
}

const isStatus = (x: unknown): x is Status =>
  !!x && typeof x === 'object' && 'now_ms' in x && 'node' in x && typeof (x as Status).node?.peer_id === 'string';
const isDemoStatus = (x: unknown): x is DemoStatus =>
  !!x && typeof x === 'object' && 'running' in x && Array.isArray((x as DemoStatus).nodes);

/**
 * The built-in demo cluster (desktop app only): start N in-process peers, cut and restore
 * their P2P for real, stop. Two pieces: `bar`, the presenter controls that stay on screen
 * in every mode (presentation included), and `el`, the per-node table (a detail).
 * `onStatus` receives the status of the node the window watches after Watch and Stop, so
 * the window switches at once instead of waiting for a push. Refreshed when a status push
 * arrives, at most once a second.
 */
export function createDemoPanel(demo: DemoControls, toast: Toast, onStatus: (s: Status) => void = () => {}, getStatus?: () => Promise<Status>, hooks: DemoHooks = {}) {
  const n = h('input', { class: 'input input--num num', attrs: { type: 'number', min: String(DEMO_NODES_MIN), max: String(DEMO_NODES_MAX), step: '1', value: '4', 'aria-label': 'Number of demo nodes', 'aria-describedby': 'demo-n-error' } });
  const nError = h('span', { class: 'presenter__error', attrs: { id: 'demo-n-error', role: 'alert', hidden: '' } });
  const state = h('span', { class: 'card__meta', attrs: { 'data-field': 'demo-state' } });
  const barState = h('span', { class: 'presenter__state' });
  const countdown = createCarrier(undefined, { 'data-field': 'presenter-carrier' });
  const body = h('tbody');
  const table = h('table', { class: 'demo__table' },
    h('thead', {}, h('tr', {}, ...['Node', 'PeerId', 'Mode', 'Lung', 'Peers', 'Root', 'Window'].map((t) => h('th', { text: t })))),
    body);
  const btn = (text: string, cls: string, fn: () => Promise<unknown>, action?: string) =>
    h('button', { class: `btn ${cls}`, text, attrs: { type: 'button', ...(action ? { 'data-action': action } : {}) }, on: { click: () => void run(text, fn) } });

  async function watch(index: number | null): Promise<void> {
    const s = await demo.focus(index);
    if (isStatus(s)) onStatus(s);
    else if (getStatus) onStatus(await getStatus());
  }

  function nodesOrRefuse(): number | null {
    const parsed = parseNodeCount(n.value);
    if (parsed.ok) {
      n.removeAttribute('aria-invalid');
      nError.setAttribute('hidden', '');
      return parsed.n;
    }
    n.setAttribute('aria-invalid', 'true');
    setText(nError, parsed.message);
    nError.removeAttribute('hidden');
    toast(parsed.message, 'error');
    return null;
  }

  const startBtn = h('button', { class: 'btn btn--primary', text: 'Start', attrs: { type: 'button', 'data-action': 'demo-start' }, on: { click: () => {
    const count = nodesOrRefuse();
    if (count != null) void run('Start', () => demo.start(count));
  } } });
  n.addEventListener('input', () => {
    if (n.hasAttribute('aria-invalid') && parseNodeCount(n.value).ok) nodesOrRefuse();
  });
  const cutBtn = btn('Cut P2P (cluster)', 'btn--cut', () => demo.cut(), 'demo-cut');
  const restoreBtn = btn('Restore P2P', 'btn--restore', () => demo.restore(), 'demo-restore');
  const stopBtn = btn('Stop', '', async () => {
    const d = await demo.stop();
    if (isDemoStatus(d)) render(d);
    // The window now watches the app's own node: show it at once.
    if (getStatus) onStatus(await getStatus());
  }, 'demo-stop');
  const ownBtn = btn('Watch this app\'s node', '', () => watch(null), 'demo-watch-own');
  const sampleBtn = btn('Write entry', '', async () => {
    if (!demo.sample) return;
    const w = await demo.sample();
    toast(`${w.node} wrote entry ${shortHash(w.id, 6)}`, 'success');
    hooks.onWrite?.(w);
  }, 'demo-sample');
  const trafficBtn = btn('Traffic', 'btn--toggle', async () => {
    if (!demo.traffic) return;
    const d = await demo.traffic(trafficBtn.getAttribute('aria-pressed') !== 'true');
    render(d);
  }, 'demo-traffic');
  trafficBtn.setAttribute('aria-pressed', 'false');
  const counter = h('div', { class: 'cut-counter', attrs: { 'data-field': 'presenter-cut-counter', hidden: '', 'aria-live': 'polite' } });
  const counterText = h('span', { class: 'cut-counter__text' });
  const counterDetail = h('span', { class: 'cut-counter__detail' });
  counter.append(counterText, counterDetail);
  const timeline = createTimeline();
  const flow = createFlowChart();
  let nodesRunning = 0;
  let running = false;

  const watchKey = (i: number): Shortcut => ({
    key: String(i + 1),
    label: `Watch demo node ${i + 1}`,
    listed: false,
    run: () => {
      if (!running || i >= nodesRunning) return false;
      void run(`Watch node ${i + 1}`, () => watch(i));
      return true;
    },
  });
  const shortcuts = createShortcuts([
    buttonShortcut('s', 'Start the demo cluster', startBtn),
    buttonShortcut('c', 'Cut P2P on every demo node', cutBtn),
    buttonShortcut('r', 'Restore P2P', restoreBtn),
    buttonShortcut('w', 'Write a sample entry on the watched node', sampleBtn),
    buttonShortcut('t', 'Automatic traffic on / off', trafficBtn),
    buttonShortcut('x', 'Stop the demo cluster', stopBtn),
    buttonShortcut('o', 'Watch this app\'s own node', ownBtn),
    ...Array.from({ length: 9 }, (_, i) => watchKey(i)),
  ], [{ key: '1–9', label: 'Watch demo node 1 to 9' }, { key: 'p', label: 'Presentation mode on / off' }]);
  const helpBtn = h('button', { class: 'btn btn--small btn--help', text: '?', attrs: { type: 'button', 'aria-label': 'Keyboard shortcuts', title: 'Keyboard shortcuts (?)', 'data-action': 'shortcuts' }, on: { click: () => shortcuts.open() } });

  const bar = h('section', { class: 'presenter demo-bar', attrs: { 'aria-label': 'Presenter controls', 'data-field': 'presenter' } },
    h('div', { class: 'presenter__row presenter__row--controls' },
      h('label', { class: 'demo__n' }, 'Nodes', n), startBtn, cutBtn, restoreBtn, sampleBtn, trafficBtn, stopBtn, ownBtn, nError,
      h('span', { class: 'presenter__spacer' }), barState, countdown.el, helpBtn),
    h('div', { class: 'presenter__row presenter__row--story' }, timeline.el, counter, flow.el),
    shortcuts.overlay);
  const el = h('section', { class: 'card demo', attrs: { 'aria-label': 'Demo cluster' } },
    h('header', { class: 'card__head' }, h('h2', { class: 'card__title', text: 'Demo cluster' }), state),
    table);

  async function run(label: string, fn: () => Promise<unknown>): Promise<void> {
    bar.classList.add('is-pending');
    el.classList.add('is-pending');
    try {
      await fn();
    } catch (e) {
      toast(`${label} failed: ${errorMessage(e)}`, 'error');
    } finally {
      bar.classList.remove('is-pending');
      el.classList.remove('is-pending');
      await refreshNow();
    }
  }

  function render(d: DemoStatus): void {
    const text = d.running ? `${counted(d.nodes.length, 'node')} running` : 'stopped';
    setText(state, text);
    setText(barState, d.running ? `Demo: ${text}${d.focus != null && d.nodes[d.focus] ? `, watching ${d.nodes[d.focus]!.name}` : ''}` : 'Demo cluster stopped');
    running = d.running;
    nodesRunning = d.nodes.length;
    startBtn.disabled = d.running;
    n.disabled = d.running;
    // Enabled only when they make sense: cut what is not cut, restore what is.
    cutBtn.disabled = !d.running || d.nodes.every((x) => x.status.p2p_blocked);
    restoreBtn.disabled = !d.running || !d.nodes.some((x) => x.status.p2p_blocked);
    stopBtn.disabled = !d.running;
    sampleBtn.disabled = !d.running || !demo.sample;
    trafficBtn.disabled = !d.running || !demo.traffic;
    ownBtn.disabled = d.focus === null;
    const on = !!d.traffic?.on;
    trafficBtn.setAttribute('aria-pressed', String(on));
    setText(trafficBtn, on ? `Traffic on · ${d.traffic!.per_second}/s` : 'Traffic off');
    if (d.running && d.cut) {
      const c = cutCounterText(d.cut);
      setText(counterText, c.text);
      setText(counterDetail, c.detail);
      counter.className = `cut-counter cut-counter--${c.tone}${d.cut.restored_ms == null ? ' is-cut' : ''}`;
      counter.setAttribute('data-written', String(d.cut.written));
      counter.setAttribute('data-delivered', String(d.cut.least_delivered));
      counter.setAttribute('data-nodes', String(d.cut.nodes));
      counter.removeAttribute('hidden');
    } else counter.setAttribute('hidden', '');
    body.replaceChildren(...d.nodes.map((x, i) => h('tr', { class: x.status.sync_mode === 'HTTP' ? 'is-http' : 'is-p2p' },
      h('td', { text: x.name }),
      h('td', { class: 'mono', text: shortId(x.peer_id, 6, 4), title: x.peer_id }),
      h('td', { text: x.status.mode }),
      h('td', {}, h('span', { class: `pill pill--${x.status.sync_mode.toLowerCase()}`, text: x.status.sync_mode })),
      h('td', { class: 'num', text: x.status.p2p_blocked ? 'cut' : String(x.status.peer_count) }),
      h('td', { class: 'mono', text: shortHash(x.status.merkle_root, 5), title: x.status.merkle_root }),
      h('td', {}, d.focus === i
        ? h('span', { class: 'pill', text: 'watching' })
        : btn('Watch', 'btn--small', () => watch(i))),
    )));
  }

  let last = 0;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let stopped = false;
  async function refreshNow(): Promise<void> {
    if (stopped) return;
    last = Date.now();
    try {
      const d = await demo.status();
      if (!stopped) render(d);
    } catch (e) {
      if (stopped) return;
      setText(state, `status unavailable: ${errorMessage(e)}`);
      setText(barState, `Demo status unavailable: ${errorMessage(e)}`);
    }
  }
  /** Throttled: call on every status push. */
  function refresh(): void {
    if (timer || stopped) return;
    const wait = Math.max(0, 1000 - (Date.now() - last));
    timer = setTimeout(() => {
      timer = null;
      void refreshNow();
    }, wait);
  }

  return {
    el,
    bar,
    refresh,
    refreshNow,
    /** The watched node's status, for the bar's countdown pill, timeline and flow chart. */
    update(s: Status, skew = 0) {
      countdown.update(s, skew);
      timeline.update(s);
      flow.update(s, skew);
    },
    /** The flow chart: `onDelta` tells what each snapshot added per lung (for the graph's pulses). */
    flow,
    shortcuts,
    /** False once the window lost its node: the chart freezes. */
    setLive: (live: boolean) => flow.setLive(live),
    /** No timer left running and no answer rendered after this. */
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
      flow.destroy();
      countdown.freeze(true);
      shortcuts.destroy();
    },
  };
}

import type { DemoControls, DemoStatus, Status } from '../backend/types';
import { errorMessage } from '../backend/errors';
import { h, setText } from '../dom';
import { counted, shortHash, shortId } from '../format';
import { createCarrier } from './carrier';
import type { Toast } from './toast';

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
export function createDemoPanel(demo: DemoControls, toast: Toast, onStatus: (s: Status) => void = () => {}, getStatus?: () => Promise<Status>) {
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

  const bar = h('section', { class: 'presenter demo-bar', attrs: { 'aria-label': 'Presenter controls', 'data-field': 'presenter' } },
    h('label', { class: 'demo__n' }, 'Nodes', n), startBtn, cutBtn, restoreBtn, stopBtn, ownBtn, nError,
    h('span', { class: 'presenter__spacer' }), barState, countdown.el);
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
    startBtn.disabled = d.running;
    n.disabled = d.running;
    cutBtn.disabled = restoreBtn.disabled = stopBtn.disabled = !d.running;
    ownBtn.disabled = d.focus === null;
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
  async function refreshNow(): Promise<void> {
    last = Date.now();
    try {
      render(await demo.status());
    } catch (e) {
      setText(state, `status unavailable: ${errorMessage(e)}`);
      setText(barState, `Demo status unavailable: ${errorMessage(e)}`);
    }
  }
  /** Throttled: call on every status push. */
  function refresh(): void {
    if (timer) return;
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
    /** The watched node's status, for the bar's countdown pill. */
    update(s: Status, skew = 0) {
      countdown.update(s, skew);
    },
  };
}

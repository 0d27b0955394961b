import type { DemoControls, DemoStatus } from '../backend/types';
import { errorMessage } from '../backend/errors';
import { h, setText } from '../dom';
import { counted, shortHash, shortId } from '../format';
import type { Toast } from './toast';

/**
 * The built-in demo cluster (desktop app only): start N in-process peers, cut and restore
 * their P2P for real, stop. Refreshed when a status push arrives, at most once a second.
 */
export function createDemoPanel(demo: DemoControls, toast: Toast) {
  const n = h('input', { class: 'input input--num num', attrs: { type: 'number', min: '1', max: '16', value: '4', 'aria-label': 'Number of demo nodes' } });
  const state = h('span', { class: 'card__meta' });
  const body = h('tbody');
  const table = h('table', { class: 'demo__table' },
    h('thead', {}, h('tr', {}, ...['Node', 'PeerId', 'Mode', 'Lung', 'Peers', 'Root', 'Window'].map((t) => h('th', { text: t })))),
    body);
  const btn = (text: string, cls: string, fn: () => Promise<unknown>) =>
    h('button', { class: `btn ${cls}`, text, attrs: { type: 'button' }, on: { click: () => void run(text, fn) } });
  const startBtn = btn('Start', 'btn--primary', () => demo.start(Math.min(16, Math.max(1, Number(n.value) || 4))));
  const cutBtn = btn('Cut P2P (cluster)', 'btn--cut', () => demo.cut());
  const restoreBtn = btn('Restore P2P', 'btn--restore', () => demo.restore());
  const stopBtn = btn('Stop', '', () => demo.stop());
  const ownBtn = btn('Watch this app\'s node', '', () => demo.focus(null));
  const el = h('section', { class: 'card demo', attrs: { 'aria-label': 'Demo cluster' } },
    h('header', { class: 'card__head' }, h('h2', { class: 'card__title', text: 'Demo cluster' }), state),
    h('div', { class: 'demo__controls' }, h('label', { class: 'demo__n' }, 'Nodes', n), startBtn, cutBtn, restoreBtn, stopBtn, ownBtn),
    table);

  async function run(label: string, fn: () => Promise<unknown>): Promise<void> {
    el.classList.add('is-pending');
    try {
      await fn();
    } catch (e) {
      toast(`${label} failed: ${errorMessage(e)}`, 'error');
    } finally {
      el.classList.remove('is-pending');
      await refreshNow();
    }
  }

  function render(d: DemoStatus): void {
    setText(state, d.running ? `${counted(d.nodes.length, 'node')} running` : 'stopped');
    startBtn.disabled = d.running;
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
        : btn('Watch', 'btn--small', () => demo.focus(i))),
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

  return { el, refresh, refreshNow };
}

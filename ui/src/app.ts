import type { Backend, NodeEvent, Status } from './backend/types';
import { errorMessage } from './backend/errors';
import { h, setText } from './dom';
import { StatusStore } from './store';
import { createDemoPanel } from './views/demo';
import { createEntries } from './views/entries';
import { createEventLog } from './views/eventlog';
import { createFallbackTimer } from './views/fallback';
import { createPeerGraph } from './views/graph';
import { createHeader } from './views/header';
import { createLungs } from './views/lungs';
import { createMerklePanel } from './views/merkle-panel';
import { mountToasts } from './views/toast';

/** Mounts the dashboard into `root` and wires it to `backend`. Returns handles for tests. */
export function createApp(root: HTMLElement, backend: Backend) {
  const store = new StatusStore();
  const toast = mountToasts(document.body);
  const setStatus = (s: Status) => store.set(s);

  const header = createHeader(backend, toast, setStatus);
  const lungs = createLungs();
  const timer = createFallbackTimer();
  const graph = createPeerGraph();
  const merkle = createMerklePanel(backend, toast, () => store.current?.status ?? null);
  const entries = createEntries(backend, toast, { onIds: (ids) => merkle.setKnownIds(ids), onPick: (id) => merkle.choose(id) });
  const log = createEventLog(500);
  const demo = backend.demo ? createDemoPanel(backend.demo, toast, setStatus, () => backend.getStatus()) : null;

  const banner = h('div', { class: 'banner', attrs: { hidden: '', role: 'alert' } });
  const waiting = h('div', { class: 'waiting', text: 'Connecting to the node…' });
  const grid = h('main', { class: 'grid', attrs: { hidden: '' } },
    h('div', { class: 'area area--lungs' }, lungs.el),
    h('div', { class: 'area area--graph' }, graph.el),
    h('div', { class: 'area area--side' }, timer.el, merkle.el),
    h('div', { class: 'area area--entries detail' }, entries.el),
    h('div', { class: 'area area--log detail' }, log.el),
    demo ? h('div', { class: 'area area--demo detail' }, demo.el) : null,
  );
  const app = h('div', { class: `app ${demo ? 'has-demo' : ''}` }, header.el, demo?.bar ?? null, banner, waiting, grid);
  root.replaceChildren(app);

  let selfId = '';
  let seeded = false;
  store.subscribe(({ status }) => {
    selfId = status.node.peer_id;
    if (!seeded) {
      // The last lung change the node reports is a real past event: start the log with it.
      seeded = true;
      const t = status.last_transition;
      if (t) log.add({ at_ms: t.at_ms, type: 'lung', event: { kind: 'transition', ...t } });
    }
    waiting.remove();
    grid.removeAttribute('hidden');
    header.update(status, store.current!.skew);
    lungs.update(status);
    timer.update(store.current!);
    graph.update(status);
    merkle.update(status);
    demo?.update(status, store.current!.skew);
    demo?.refresh();
    if (status.store_failure) {
      setText(banner, `The ledger store failed and refuses writes: ${status.store_failure}`);
      banner.removeAttribute('hidden');
    } else banner.setAttribute('hidden', '');
  });

  function onEvent(e: NodeEvent): void {
    log.add(e);
    if (e.type === 'entry_added') {
      entries.entryAdded();
      if (e.author !== selfId) graph.pulse(e.author);
    } else if (e.type === 'sync_completed' && e.report.pulled + e.report.pushed > 0) {
      graph.pulse(e.with);
    }
  }

  backend.onStatus(setStatus);
  backend.onEvent(onEvent);
  let wasConnected = false;
  backend.onConnection((c) => {
    header.setConnected(c);
    demo?.setLive(c);
    // Events missed while the stream was down: catch up on the entry list once.
    if (c && !wasConnected) entries.entryAdded();
    wasConnected = c;
  });
  backend.getStatus().then(setStatus, (e) => {
    if (!store.current) setText(waiting, `Cannot reach the node: ${errorMessage(e)}. Waiting for its event stream…`);
  });
  void entries.refresh();
  void demo?.refreshNow();

  return { store, log, graph, onEvent };
}

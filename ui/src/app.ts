import type { Backend, NodeEvent, Status } from './backend/types';
import { errorMessage } from './backend/errors';
import { startClock } from './clock';
import { h, setText } from './dom';
import { ago, clock } from './format';
import { frameOf, markStale, type Frame } from './frame';
import { machines } from './machines';
import { StatusStore } from './store';
import { createAdmission } from './views/admission';
import { createDemoPanel } from './views/demo';
import { createEntries } from './views/entries';
import { createEventLog } from './views/eventlog';
import { createFallbackTimer } from './views/fallback';
import { createPeerGraph } from './views/graph';
import { createHeader } from './views/header';
import { createLungs } from './views/lungs';
import { createMerklePanel } from './views/merkle-panel';
import { mountToasts } from './views/toast';
import { createWelcome } from './views/welcome';

/** The CONTRACT.md version this page implements (e2e truth checks read it). */
export const TRUTH_VERSION = '1';

export interface AppOptions {
  /** Our clock (tests pass a fake one). */
  now?: () => number;
  /** Whether to run the 1 s UI clock (tests drive `tick` themselves). */
  clock?: boolean;
  /**
   * Keep a trace of every snapshot offered to the store (source, seq, now_ms, states,
   * applied or dropped) as `window.__latticeTrace`: `?debug=snapshots` (see main.ts).
   */
  trace?: boolean;
}

/** Mounts the dashboard into `root` and wires it to `backend`. Returns handles for tests. */
export function createApp(root: HTMLElement, backend: Backend, opts: AppOptions = {}) {
  const now = opts.now ?? (() => Date.now());
  const store = new StatusStore(now, { trace: opts.trace });
  if (store.trace) (window as unknown as { __latticeTrace: unknown }).__latticeTrace = store.trace;
  const toast = mountToasts(document.body);
  const setStatus = (s: Status) => store.set(s, 'reply');

  const header = createHeader(backend, toast, setStatus, now);
  const lungs = createLungs();
  const timer = createFallbackTimer(now);
  const graph = createPeerGraph();
  const welcome = createWelcome(backend, toast);
  const merkle = createMerklePanel(backend, toast, () => store.current?.status ?? null);
  const entries = createEntries(backend, toast, { onIds: (ids) => merkle.setKnownIds(ids), onPick: (id) => merkle.choose(id) });
  const log = createEventLog(500, (who) => {
    const s = store.current?.status;
    if (!s) return undefined;
    if (who === s.node.peer_id) return s.node.name ?? undefined;
    const bare = who.replace(/\/$/, '');
    return machines(s).find((m) => m.key === who || m.peerId === who || m.neighbor?.url.replace(/\/$/, '') === bare)?.name ?? undefined;
  });
  const admission = createAdmission(backend, toast, setStatus);
  const demo = backend.demo ? createDemoPanel(backend.demo, toast, setStatus, () => backend.getStatus()) : null;

  const banner = h('div', { class: 'banner', attrs: { hidden: '', role: 'alert' } });
  const lostBanner = h('div', { class: 'banner banner--lost', attrs: { hidden: '', role: 'alert', 'data-field': 'lost-banner' } });
  const waiting = h('div', { class: 'waiting', text: 'Connecting to the node…' });
  const grid = h('main', { class: 'grid', attrs: { hidden: '' } },
    h('div', { class: 'area area--lungs' }, lungs.el),
    h('div', { class: 'area area--graph' }, graph.el, welcome.el),
    h('div', { class: 'area area--side' }, timer.el, merkle.el),
    h('div', { class: 'area area--entries detail' }, entries.el),
    h('div', { class: 'area area--log detail' }, log.el),
    demo ? h('div', { class: 'area area--demo detail' }, demo.el) : null,
  );
  const app = h('div', { class: `app ${demo ? 'has-demo' : ''}`, attrs: { 'data-truth-version': TRUTH_VERSION } },
    header.el, demo?.bar ?? null, lostBanner, banner, waiting, grid, admission.el);
  root.replaceChildren(app);

  let connected = backend.kind === 'tauri';
  let everConnected = connected;
  /** When the face last stopped receiving the node (our clock). */
  let lostAt = now();
  let demoRunning = false;
  let demoAsked = 0;

  /** The app's demo cluster runs? Asked only while the welcome card could show, every 2 s at most. */
  function askDemo(f: Frame): void {
    if (!backend.demo || f.status.peers.length || f.status.neighbors.length || now() - demoAsked < 2000) return;
    demoAsked = now();
    backend.demo.status().then((d) => {
      if (d.running !== demoRunning) {
        demoRunning = d.running;
        render();
      }
    }, () => {});
  }

  /**
   * Renders everything from the held snapshot as of now. Called for a new snapshot, a
   * connection change and every UI clock tick, so relative times and staleness move even
   * when the node publishes nothing new.
   */
  /**
   * Where the grid starts (below the header, the presenter bar and any banner), for the
   * CSS that ends the first row at the fold (`--grid-top`, layout.css). Measured, not
   * guessed: the bar's height changes with the window's width, the mode and the theme.
   */
  // Not on every render: reading the layout forces it, ten times a second on a busy page.
  let stopped = false;
  function fitFold(): void {
    if (stopped || grid.hasAttribute('hidden')) return;
    const top = `${Math.round(grid.getBoundingClientRect().top + window.scrollY)}px`;
    if (app.style.getPropertyValue('--grid-top') !== top) app.style.setProperty('--grid-top', top);
  }
  const ro = typeof ResizeObserver !== 'undefined' ? new ResizeObserver(() => fitFold()) : null;
  for (const el of [header.el, demo?.bar, lostBanner, banner]) if (el) ro?.observe(el);
  const onResize = () => fitFold();
  window.addEventListener('resize', onResize);

  function render(): void {
    const snap = store.current;
    const lost = !connected;
    if (lost) document.body.setAttribute('data-lost', 'true');
    else document.body.removeAttribute('data-lost');
    if (lost) {
      lostBanner.removeAttribute('hidden');
      setText(lostBanner, !everConnected
        ? 'Connecting to the node’s live status…'
        : !snap
        ? 'Lost the node. Reconnecting…'
        : `Lost the node at ${clock(lostAt)} (${ago(now() - lostAt)}): what is shown is frozen as of then. Reconnecting…`);
    } else lostBanner.setAttribute('hidden', '');
    if (!snap) return;
    const f = frameOf(snap, now(), lost);
    graph.update(f);
    merkle.update(f);
    askDemo(f);
    welcome.update(f, demoRunning);
    grid.classList.toggle('is-welcome', welcome.shown);
    // Every value of a lost node is frozen: say so on each of them.
    for (const el of app.querySelectorAll('[data-field]')) {
      if (el === lostBanner || el.getAttribute('data-field') === 'connection') continue;
      if (el.hasAttribute('data-machine')) continue;
      markStale(el, lost);
    }
  }

  let seeded = false;
  let watching = '';
  store.subscribe(({ status }) => {
    if (watching && watching !== status.node.peer_id) {
      // Another node now: the previous node's lines are not this one's history.
      log.clear();
      seeded = false;
    }
    watching = status.node.peer_id;
    // The seq of the snapshot on screen (docs/truth-contract.md): the truth checks tell a
    // face one snapshot behind from a face showing a wrong value by it.
    if (typeof status.seq === 'number') app.setAttribute('data-seq', String(status.seq));
    else app.removeAttribute('data-seq');
    admission.update(status);
    if (!seeded) {
      // The last lung change the node reports is a real past event: start the log with it.
      seeded = true;
      const t = status.last_transition;
      if (t) log.add({ at_ms: t.at_ms, type: 'lung', event: { kind: 'transition', ...t } });
    }
    waiting.remove();
    if (grid.hasAttribute('hidden')) {
      grid.removeAttribute('hidden');
      if (typeof requestAnimationFrame === 'function') requestAnimationFrame(() => fitFold());
      else fitFold();
    }
    header.update(status, store.current!.skew);
    lungs.update(status);
    timer.update(store.current!);
    demo?.update(status, store.current!.skew);
    demo?.refresh();
    if (status.store_failure) {
      setText(banner, `The ledger store failed and refuses writes: ${status.store_failure}`);
      banner.removeAttribute('hidden');
    } else banner.setAttribute('hidden', '');
    render();
  });

  function onEvent(e: NodeEvent): void {
    log.add(e);
    const self = store.current?.status.node.peer_id;
    if (e.type === 'entry_added') {
      entries.entryAdded();
      if (e.author === self) graph.pulseOut();
      else graph.pulse(e.author);
    } else if (e.type === 'sync_completed' && e.report.pulled + e.report.pushed > 0) {
      graph.pulse(e.with, e.lung === 'HTTP' ? 'http' : 'p2p');
    }
  }

  function setConnected(c: boolean): void {
    header.setConnected(c);
    timer.freeze(!c);
    demo?.setLive(c);
    // Events missed while the stream was down: catch up on the entry list once.
    if (c && !connected && everConnected) entries.entryAdded();
    everConnected ||= c;
    if (!c && connected) lostAt = now();
    connected = c;
    render();
  }

  const unsubscribe = [
    backend.onStatus((s) => store.set(s, 'stream')),
    backend.onEvent(onEvent),
  ];
  header.setConnected(connected);
  unsubscribe.push(backend.onConnection(setConnected));
  backend.getStatus().then((s) => store.set(s, 'get'), (e) => {
    if (!store.current) setText(waiting, `Cannot reach the node: ${errorMessage(e)}. Waiting for its event stream…`);
  });
  void entries.refresh();
  void demo?.refreshNow();
  const stopClock = opts.clock === false ? () => {} : startClock(render);
  render();

  /**
   * Unmounts the dashboard's life: no callback from the backend, no timer, no animation and
   * no late answer touches the page after this (the DOM stays as it was).
   */
  function stop(): void {
    stopped = true;
    stopClock();
    for (const off of unsubscribe) off();
    ro?.disconnect();
    window.removeEventListener('resize', onResize);
    entries.stop();
    demo?.stop();
    graph.stop();
    timer.freeze(true);
    header.stop();
  }

  return { store, log, graph, onEvent, tick: render, stop };
}

import { afterEach, describe, expect, it, vi } from 'vitest';
import type { DemoStatus, Status } from '../src/backend/types';
import { createDemoPanel } from '../src/views/demo';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { drivenBackend, fakeBackend, fixture, mountApp, shown, stopApps, withStates } from './helpers';

afterEach(stopApps);

describe('the dashboard wired to a backend', () => {
  it('renders pushed status and never shows the grid before the node has spoken', async () => {
    const { backend, push, emit } = drivenBackend();
    const root = document.createElement('div');
    mountApp(root, backend, { clock: false });
    expect(root.querySelector('.grid')!.hasAttribute('hidden')).toBe(true);
    push(fixture());
    expect(root.querySelector('.grid')!.hasAttribute('hidden')).toBe(false);
    expect(shown(root, 'sync-state')).toEqual({ value: 'p2p', text: 'Sync via P2P' });
    expect(shown(root, 'entry-count')).toEqual({ value: '0', text: '0' });
    expect(shown(root, 'root').value).toBe(fixture().merkle_root);
    expect(root.querySelector('.segmented [aria-pressed="true"]')!.getAttribute('data-mode')).toBe('auto');
    emit({ at_ms: 1, type: 'lung', event: { kind: 'fallback_activated', after_ms: 6000 } });
    expect(root.querySelector('.log__item .log__text')!.textContent).toBe('HTTP fallback activated after 6 s without peers');
  });

  it('carries the seq of the snapshot on screen on its root, for the truth checks', () => {
    const { backend, push } = drivenBackend();
    const root = document.createElement('div');
    mountApp(root, backend, { clock: false });
    const app = root.querySelector('[data-truth-version]')!;
    expect(app.hasAttribute('data-seq')).toBe(false);
    push(fixture({ seq: 41 }));
    expect(app.getAttribute('data-seq')).toBe('41');
    push(fixture({ seq: 40 })); // older: dropped, so the seq on screen stays
    expect(app.getAttribute('data-seq')).toBe('41');
    push(fixture({ seq: 42 }));
    expect(app.getAttribute('data-seq')).toBe('42');
  });

  it('draws one circle per machine: 3 for a 4-node cluster whose peers are also its neighbours', () => {
    const { backend, push } = drivenBackend();
    const root = document.createElement('div');
    mountApp(root, backend, { clock: false });
    const s = fixture();
    push(s);
    const circles = root.querySelectorAll('[data-graph-machine]');
    expect(circles).toHaveLength(3);
    expect([...circles].map((c) => c.getAttribute('data-links'))).toEqual(['p2p,http', 'p2p,http', 'p2p,http']);
    expect([...circles].map((c) => c.getAttribute('data-agreement'))).toEqual(['match', 'match', 'match']);
    expect([...circles].map((c) => c.querySelector('.gnode__label')!.textContent).sort()).toEqual(['Branch B', 'Branch C', 'Branch D']);
    // One edge per lung per machine.
    expect(root.querySelectorAll('.gedge--p2p')).toHaveLength(3);
    expect(root.querySelectorAll('.gedge--http')).toHaveLength(3);
    // The Merkle panel lists the same machines, by the same keys, with their names.
    const rows = root.querySelectorAll('.roots [data-machine]');
    expect([...rows].map((r) => r.getAttribute('data-machine')).sort()).toEqual([...circles].map((c) => c.getAttribute('data-machine')).sort());
    expect(root.querySelector('.roots')!.textContent).toContain('Branch C');
    expect(root.querySelector('.roots')!.textContent).not.toContain('127.0.0.1');
  });

  it('shows "All 4 ledgers identical" only while every machine’s root matches ours', () => {
    const { backend, push } = drivenBackend();
    const root = document.createElement('div');
    mountApp(root, backend, { clock: false });
    const s = fixture();
    push(s);
    expect(shown(root, 'identical-banner')).toEqual({ value: '4', text: 'All 4 ledgers identical' });
    const differs = fixture({ seq: s.seq + 1 });
    differs.peers[2]!.root_matches = false;
    push(differs);
    expect(root.querySelectorAll('[data-field="identical-banner"]')).toHaveLength(0);
    expect(root.querySelector(`[data-graph-machine="${differs.peers[2]!.peer_id}"]`)!.getAttribute('data-agreement')).toBe('differs');
    push(fixture({ seq: s.seq + 2 }));
    expect(shown(root, 'identical-banner').value).toBe('4');
  });

  it('keeps graph nodes for machines that stay, drops those that leave', () => {
    const { backend, push } = drivenBackend();
    const root = document.createElement('div');
    mountApp(root, backend, { clock: false });
    const s = fixture();
    push(s);
    const id = s.peers[0]!.peer_id;
    const kept = root.querySelector(`[data-graph-machine="${id}"]`);
    const next = fixture({ seq: s.seq + 1, peer_count: 1 });
    next.peers = [next.peers[0]!];
    next.neighbors = next.neighbors.filter((n) => n.peer_id === id);
    push(next);
    expect(root.querySelectorAll('[data-graph-machine]')).toHaveLength(1);
    expect(root.querySelector(`[data-graph-machine="${id}"]`)).toBe(kept);
  });

  it('pulses along the edge of the lung that carried entries, and outward for our own writes', () => {
    const { backend, push, emit, connect } = drivenBackend();
    const root = document.createElement('div');
    mountApp(root, backend, { clock: false });
    const s = fixture();
    connect(true);
    push(s);
    emit({ at_ms: 2, type: 'entry_added', id: 'e'.repeat(64), author: 'someone-else' });
    expect(root.querySelectorAll('.gpulse')).toHaveLength(0);
    emit({ at_ms: 3, type: 'entry_added', id: 'f'.repeat(64), author: s.peers[0]!.peer_id });
    expect(root.querySelectorAll('.gpulse--p2p')).toHaveLength(1);
    const report = { their_root: '', our_root: '', in_sync_before: false, pulled: 2, pushed: 0, rounds: 1, requests: 1, bytes_sent: 1, bytes_received: 1, refused: 0, method: 'walk' as const, symbols: 0 };
    emit({ at_ms: 4, type: 'sync_completed', lung: 'HTTP', with: s.neighbors[1]!.url, report });
    expect(root.querySelectorAll('.gpulse--http')).toHaveLength(1);
    emit({ at_ms: 5, type: 'entry_added', id: 'a'.repeat(64), author: s.node.peer_id });
    expect(root.querySelectorAll('.gpulse--p2p')).toHaveLength(4);
    // A face that lost its node draws no flow at all.
    connect(false);
    expect(root.querySelectorAll('.gpulse')).toHaveLength(0);
    emit({ at_ms: 6, type: 'entry_added', id: 'b'.repeat(64), author: s.peers[1]!.peer_id });
    expect(root.querySelectorAll('.gpulse')).toHaveLength(0);
  });
});

describe('staleness', () => {
  it('fades a machine whose news is older than its refresh interval and says how old, re-rendered by the UI clock', () => {
    let local = 5_000_000;
    const { backend, push, connect } = drivenBackend();
    const root = document.createElement('div');
    const app = mountApp(root, backend, { now: () => local, clock: false });
    const s = fixture({ now_ms: local, heartbeat_ms: 500, http_poll_ms: 1000 });
    s.peers.forEach((p) => (p.last_heard_ms = local));
    s.neighbors.forEach((n) => (n.checked_at_ms = local));
    connect(true);
    push(s);
    const circle = () => root.querySelector(`[data-graph-machine="${s.peers[0]!.peer_id}"]`)!;
    const row = () => root.querySelector(`.roots [data-machine="${s.peers[0]!.peer_id}"]`)!;
    expect(circle().hasAttribute('data-stale')).toBe(false);
    local += 40_000;
    app.tick();
    expect(circle().getAttribute('data-stale')).toBe('true');
    expect(circle().querySelector('.gnode__sub')!.textContent).toBe('checked 40 s ago');
    expect(row().getAttribute('data-stale')).toBe('true');
    expect(row().textContent).toContain('checked 40 s ago');
    local += 2_000;
    app.tick();
    expect(row().textContent).toContain('checked 42 s ago');
    // Live values of the node itself are not stale while the face receives it.
    expect(root.querySelector('[data-field="p2p-state"]')!.hasAttribute('data-stale')).toBe(false);
  });

  it('marks every value stale, shows the lost banner and stops animating once the face lost its node', () => {
    let local = 5_000_000;
    const { backend, push, connect } = drivenBackend();
    const root = document.createElement('div');
    document.body.append(root);
    try {
      const app = mountApp(root, backend, { now: () => local, clock: false });
      connect(true);
      push(fixture({ now_ms: local }));
      expect(document.body.hasAttribute('data-lost')).toBe(false);
      expect(root.querySelector('[data-field="lost-banner"]')!.hasAttribute('hidden')).toBe(true);
      connect(false);
      local += 12_000;
      app.tick();
      expect(document.body.getAttribute('data-lost')).toBe('true');
      expect(shown(root, 'connection').value).toBe('lost');
      const banner = root.querySelector('[data-field="lost-banner"]')!;
      expect(banner.hasAttribute('hidden')).toBe(false);
      expect(banner.textContent).toContain('(12 s ago)');
      for (const name of ['p2p-state', 'http-state', 'sync-state', 'fallback-phase', 'mode', 'entry-count', 'root', 'peer-count', 'watched-node']) {
        expect(root.querySelector(`[data-field="${name}"]`)!.getAttribute('data-stale'), name).toBe('true');
      }
      expect(root.querySelectorAll('[data-graph-machine]:not([data-stale="true"])')).toHaveLength(0);
      connect(true);
      app.tick();
      expect(document.body.hasAttribute('data-lost')).toBe(false);
      expect(root.querySelector('[data-field="p2p-state"]')!.hasAttribute('data-stale')).toBe(false);
    } finally {
      root.remove();
      document.body.removeAttribute('data-lost');
    }
  });

  it('stops every animation in the style sheets while lost', () => {
    const css = readFileSync(join(__dirname, '..', 'src', 'styles', 'state.css'), 'utf8');
    expect(css).toMatch(/body\[data-lost='true'\] \*,\s*body\[data-lost='true'\] \*::before,\s*body\[data-lost='true'\] \*::after \{\s*animation: none !important;/);
  });
});

describe('first launch', () => {
  const alone = () => withStates('down', 'failing', 'isolated', 'active', { peers: [], neighbors: [], peer_count: 0, has_peers: false });
  const demo = (running: boolean) => ({
    start: vi.fn(async () => ({})), cut: vi.fn(async () => ({})), restore: vi.fn(async () => ({})),
    stop: vi.fn(async () => ({})), focus: vi.fn(async () => ({})),
    status: vi.fn(async () => ({ running, focus: null, nodes: [] })),
  });

  it('welcomes with a "Start a demo cluster" button in the app instead of red alarms', async () => {
    const d = demo(false);
    const { backend, push } = drivenBackend({ kind: 'tauri', demo: d });
    const root = document.createElement('div');
    mountApp(root, backend, { clock: false });
    push(alone());
    const card = root.querySelector('[data-welcome]')!;
    expect(card.hasAttribute('hidden')).toBe(false);
    expect(root.querySelector('.lung.is-failed')).toBeNull();
    const btn = card.querySelector('[data-action="demo-start"]') as HTMLButtonElement;
    expect(btn.textContent).toBe('Start a demo cluster');
    btn.click();
    await vi.waitFor(() => expect(d.start).toHaveBeenCalledWith(4));
  });

  it('explains how to add neighbours in a browser, where there is no demo button', () => {
    const { backend, push } = drivenBackend();
    const root = document.createElement('div');
    mountApp(root, backend, { clock: false });
    push(alone());
    const card = root.querySelector('[data-welcome]')!;
    expect(card.hasAttribute('hidden')).toBe(false);
    expect(card.querySelector('[data-action="demo-start"]')).toBeNull();
    expect(card.textContent).toContain('LATTICE_HTTP_NEIGHBORS');
  });

  it('does not welcome while the demo runs or once the node has company', async () => {
    const d = demo(true);
    const { backend, push } = drivenBackend({ kind: 'tauri', demo: d });
    const root = document.createElement('div');
    mountApp(root, backend, { clock: false });
    push(alone());
    await vi.waitFor(() => expect(root.querySelector('[data-welcome]')!.hasAttribute('hidden')).toBe(true));
    const { backend: b2, push: push2 } = drivenBackend();
    const root2 = document.createElement('div');
    mountApp(root2, b2, { clock: false });
    push2(fixture());
    expect(root2.querySelector('[data-welcome]')!.hasAttribute('hidden')).toBe(true);
  });
});

describe('demo cluster panel', () => {
  it('renders each demo node from demo_status', async () => {
    const st = fixture();
    const demo = {
      start: vi.fn(async () => ({})),
      cut: vi.fn(async () => ({})),
      restore: vi.fn(async () => ({})),
      stop: vi.fn(async () => ({})),
      focus: vi.fn(async () => ({})),
      status: vi.fn(async () => ({ running: true, focus: 0, nodes: [{ name: 'node-1', url: 'http://127.0.0.1:1/', peer_id: st.node.peer_id, status: st }, { name: 'node-2', url: 'http://127.0.0.1:2/', peer_id: 'x', status: { ...st, sync_mode: 'HTTP' as const } }] })),
    };
    const p = createDemoPanel(demo, vi.fn());
    await p.refreshNow();
    const rows = p.el.querySelectorAll('tbody tr');
    expect(rows).toHaveLength(2);
    expect(rows[1]!.textContent).toContain('HTTP');
    expect(rows[0]!.textContent).toContain('watching');
    (p.bar.querySelector('.btn--cut') as HTMLButtonElement).click();
    await vi.waitFor(() => expect(demo.cut).toHaveBeenCalled());
    (rows[1]!.querySelector('button') as HTMLButtonElement).click();
    await vi.waitFor(() => expect(demo.focus).toHaveBeenCalledWith(1));
  });

  const demoNodes = (st: Status) => [
    { name: 'node-1', url: 'http://127.0.0.1:1/', peer_id: st.node.peer_id, status: st },
    { name: 'node-2', url: 'http://127.0.0.1:2/', peer_id: 'x', status: { ...st, sync_mode: 'HTTP' as const } },
  ];
  const fakeDemo = (st: Status) => ({
    start: vi.fn(async () => ({})),
    cut: vi.fn(async () => ({})),
    restore: vi.fn(async () => ({})),
    stop: vi.fn(async () => ({ running: false, focus: null, nodes: [] })),
    focus: vi.fn(async () => ({})),
    status: vi.fn(async (): Promise<DemoStatus> => ({ running: true, focus: 0, nodes: demoNodes(st) })),
  });

  it('refuses a node count outside 2–12 with a message instead of clamping it', async () => {
    const demo = fakeDemo(fixture());
    demo.status = vi.fn(async (): Promise<DemoStatus> => ({ running: false, focus: null, nodes: [] }));
    const toast = vi.fn();
    const p = createDemoPanel(demo, toast);
    await p.refreshNow();
    const input = p.bar.querySelector('input[type="number"]') as HTMLInputElement;
    expect([input.min, input.max]).toEqual(['2', '12']);
    const start = p.bar.querySelector('[data-action="demo-start"]') as HTMLButtonElement;
    for (const bad of ['1', '13', '16', '2.5', '']) {
      input.value = bad;
      start.click();
      expect(input.getAttribute('aria-invalid')).toBe('true');
      expect(p.bar.querySelector('[role="alert"]')!.textContent).toContain('from 2 to 12');
    }
    expect(demo.start).not.toHaveBeenCalled();
    expect(toast).toHaveBeenLastCalledWith(expect.stringContaining('from 2 to 12'), 'error');
    input.value = '12';
    start.click();
    await vi.waitFor(() => expect(demo.start).toHaveBeenCalledWith(12));
    expect(input.hasAttribute('aria-invalid')).toBe(false);
    expect(p.bar.querySelector('[role="alert"]')!.hasAttribute('hidden')).toBe(true);
  });

  it('after Watch shows the status focus_node returns: the node now watched', async () => {
    const st = fixture();
    const watched = fixture({ sync_mode: 'HTTP', entry_count: 0, peer_count: 0, now_ms: st.now_ms - 5000 });
    watched.node = { ...watched.node, peer_id: 'own-node' };
    const demo = fakeDemo(st);
    demo.focus = vi.fn(async () => watched);
    const onStatus = vi.fn();
    const p = createDemoPanel(demo, vi.fn(), onStatus);
    await p.refreshNow();
    (p.bar.querySelector('[data-action="demo-watch-own"]') as HTMLButtonElement).click();
    await vi.waitFor(() => expect(onStatus).toHaveBeenCalledWith(watched));
    expect(demo.focus).toHaveBeenCalledWith(null);
  });

  it('after Stop renders what stop returns and shows the app’s own node', async () => {
    const st = fixture();
    const own = fixture();
    own.node = { ...own.node, peer_id: 'own-node' };
    const demo = fakeDemo(st);
    const onStatus = vi.fn();
    const p = createDemoPanel(demo, vi.fn(), onStatus, async () => own);
    await p.refreshNow();
    expect(p.el.querySelectorAll('tbody tr')).toHaveLength(2);
    demo.status = vi.fn(() => new Promise<DemoStatus>(() => {})); // only stop's own answer can update the panel
    (p.bar.querySelector('[data-action="demo-stop"]') as HTMLButtonElement).click();
    await vi.waitFor(() => expect(onStatus).toHaveBeenCalledWith(own));
    expect(p.el.querySelectorAll('tbody tr')).toHaveLength(0);
    expect(p.el.querySelector('[data-field="demo-state"]')!.textContent).toBe('stopped');
    expect((p.bar.querySelector('[data-action="demo-start"]') as HTMLButtonElement).disabled).toBe(false);
  });
});

describe('presenter bar', () => {
  it('keeps Start, Cut, Restore and the countdown outside the details presentation mode hides', async () => {
    document.documentElement.classList.add('presentation');
    try {
      let push: (s: Status) => void = () => {};
      const backend = fakeBackend({
        kind: 'tauri',
        onStatus: vi.fn((cb) => ((push = cb), () => {})),
        demo: {
          start: vi.fn(async () => ({})), cut: vi.fn(async () => ({})), restore: vi.fn(async () => ({})),
          stop: vi.fn(async () => ({})), focus: vi.fn(async () => ({})),
          status: vi.fn(async () => ({ running: true, focus: 0, nodes: [] })),
        },
      });
      const root = document.createElement('div');
      mountApp(root, backend);
      // A fresh snapshot (pushed as the countdown starts): its clock is ours.
      const at = Date.now();
      push(withStates('cut', 'standby', 'isolated', 'countdown', { now_ms: at, p2p_blocked: true, peers: [], peer_count: 0, has_peers: false, fallback_deadline_ms: at + 4000, fallback_active_since_ms: null }));
      const bar = root.querySelector('[data-field="presenter"]')!;
      expect(bar).not.toBeNull();
      // responsive.css hides `.presentation .detail`: nothing of the bar may sit in one.
      expect(bar.closest('.detail')).toBeNull();
      const labels = [...bar.querySelectorAll('button')].map((b) => b.textContent);
      expect(labels).toEqual(expect.arrayContaining(['Start', 'Cut P2P (cluster)', 'Restore P2P']));
      expect(bar.querySelector('[data-field="presenter-carrier"]')!.textContent).toMatch(/^P2P lost — HTTP in \d s$/);
      // The bar comes before the grid, right under the header.
      expect(bar.previousElementSibling!.classList.contains('header')).toBe(true);
    } finally {
      document.documentElement.classList.remove('presentation');
    }
  });
});

describe('watching another node', () => {
  it('starts the event log afresh: the previous node’s lines are not the new one’s history', () => {
    const { backend, push, emit } = drivenBackend();
    const root = document.createElement('div');
    mountApp(root, backend, { clock: false });
    push(fixture());
    emit({ at_ms: 1, type: 'lung', event: { kind: 'fallback_activated', after_ms: 6000 } });
    expect(root.querySelectorAll('.log__item')).toHaveLength(1);
    const other = fixture({ seq: 1 });
    other.node = { ...other.node, peer_id: '12D3KooWFWHh9Q64ZA3phDJULkFJf49Tmeh1iRa2rtUqFfP54W2e', name: 'Branch B' };
    push(other);
    expect(root.querySelectorAll('.log__item')).toHaveLength(0);
    expect(shown(root, 'watched-node').text).toBe('Branch B');
  });
});

describe('unmounting', () => {
  it('after stop no event, timer or late answer touches the page', async () => {
    vi.useFakeTimers();
    try {
      let answer: (v: { entries: never[]; entry_count: number }) => void = () => {};
      const listEntries = vi.fn(() => new Promise<{ entries: never[]; entry_count: number }>((r) => (answer = r)));
      const { backend, push, emit } = drivenBackend({ listEntries });
      const root = document.createElement('div');
      const app = mountApp(root, backend);
      push(fixture());
      expect(listEntries).toHaveBeenCalledTimes(1);
      emit({ at_ms: 2, type: 'entry_added', id: 'e'.repeat(64), author: 'someone-else' });
      const before = root.innerHTML;
      app.stop();
      // The first listing answers late, the burst's refresh would have fired at 400 ms.
      answer({ entries: [], entry_count: 7 });
      await vi.advanceTimersByTimeAsync(5_000);
      expect(listEntries).toHaveBeenCalledTimes(1);
      expect(root.innerHTML).toBe(before);
      expect(root.textContent).not.toContain('7 total');
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});

import { describe, expect, it, vi } from 'vitest';
import { createApp } from '../src/app';
import type { DemoStatus, NodeEvent, Status } from '../src/backend/types';
import { createDemoPanel } from '../src/views/demo';
import { fakeBackend, fixture } from './helpers';

describe('the dashboard wired to a backend', () => {
  it('renders pushed status and never shows the grid before the node has spoken', async () => {
    let push: (s: Status) => void = () => {};
    let emit: (e: NodeEvent) => void = () => {};
    const backend = fakeBackend({
      getStatus: vi.fn(() => new Promise<Status>(() => {})), // never answers
      onStatus: vi.fn((cb) => ((push = cb), () => {})),
      onEvent: vi.fn((cb) => ((emit = cb), () => {})),
    });
    const root = document.createElement('div');
    createApp(root, backend);
    expect(root.querySelector('.grid')!.hasAttribute('hidden')).toBe(true);
    push(fixture());
    expect(root.querySelector('.grid')!.hasAttribute('hidden')).toBe(false);
    expect(root.querySelector('[data-field="carrier"]')!.textContent).toBe('Sync via P2P');
    expect(root.querySelector('[data-field="entry-count"]')!.textContent).toBe('1');
    expect(root.querySelector('.segmented [aria-pressed="true"]')!.getAttribute('data-mode')).toBe('auto');
    // Graph: self + 2 peers + 2 neighbours, keyed by PeerId / URL.
    expect(root.querySelectorAll('.gnode')).toHaveLength(5);
    expect(root.querySelectorAll('.gedge--p2p')).toHaveLength(2);
    expect(root.querySelectorAll('.gedge--http')).toHaveLength(2);
    emit({ at_ms: 1, type: 'lung', event: { kind: 'fallback_activated', after_ms: 6000 } });
    expect(root.querySelector('.log__item .log__text')!.textContent).toBe('HTTP fallback activated after 6 s without peers');
    // Entries from a peer pulse along its edge; from an unknown author, nothing is drawn.
    emit({ at_ms: 2, type: 'entry_added', id: 'e'.repeat(64), author: 'someone-else' });
    expect(root.querySelectorAll('.gpulse')).toHaveLength(0);
    emit({ at_ms: 3, type: 'entry_added', id: 'f'.repeat(64), author: fixture().peers[0]!.peer_id });
    expect(root.querySelectorAll('.gpulse--p2p')).toHaveLength(1);
  });

  it('keeps graph nodes for peers that stay, drops those that leave', () => {
    let push: (s: Status) => void = () => {};
    const backend = fakeBackend({ onStatus: vi.fn((cb) => ((push = cb), () => {})) });
    const root = document.createElement('div');
    createApp(root, backend);
    const s = fixture();
    push(s);
    const kept = root.querySelector(`.gnode[aria-label$="${s.peers[0]!.peer_id.slice(0, 6)}…${s.peers[0]!.peer_id.slice(-4)}"]`);
    expect(kept).not.toBeNull();
    push({ ...s, now_ms: s.now_ms + 1, peers: [s.peers[0]!], peer_count: 1 });
    expect(root.querySelectorAll('.gnode--p2p')).toHaveLength(1);
    expect(root.querySelector('.gnode--p2p')).toBe(kept);
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
      const st = fixture();
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
      createApp(root, backend);
      push({ ...st, p2p_blocked: true, peers: [], peer_count: 0, has_peers: false, fallback_deadline_ms: st.now_ms + 4000, fallback_active_since_ms: null });
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

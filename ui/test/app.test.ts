import { describe, expect, it, vi } from 'vitest';
import { createApp } from '../src/app';
import type { NodeEvent, Status } from '../src/backend/types';
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
    (p.el.querySelector('.btn--cut') as HTMLButtonElement).click();
    await vi.waitFor(() => expect(demo.cut).toHaveBeenCalled());
    (rows[1]!.querySelector('button') as HTMLButtonElement).click();
    await vi.waitFor(() => expect(demo.focus).toHaveBeenCalledWith(1));
  });
});

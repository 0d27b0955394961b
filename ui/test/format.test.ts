import { afterEach, describe, expect, it } from 'vitest';
import type { Status } from '../src/backend/types';
import { counted, plural } from '../src/format';
import { fakeBackend, fixture, mountApp, stopApps } from './helpers';

afterEach(stopApps);

describe('counts on screen', () => {
  it('take the singular for exactly one and the plural for zero and many', () => {
    expect(counted(1, 'entry', 'entries')).toBe('1 entry');
    expect(counted(0, 'entry', 'entries')).toBe('0 entries');
    expect(counted(2, 'entry', 'entries')).toBe('2 entries');
    expect(counted(3, 'peer')).toBe('3 peers');
    expect(counted(1, 'peer')).toBe('1 peer');
    expect(counted(1204, 'node')).toBe('1,204 nodes');
    expect(plural(1, 'entry', 'entries')).toBe('entry');
    expect(plural(-1, 'entry', 'entries')).toBe('entries');
  });

  it('never show "1 entries" or "1 peers" anywhere on the dashboard', () => {
    let push: (s: Status) => void = () => {};
    const backend = fakeBackend({ onStatus: (cb) => ((push = cb), () => {}) });
    const root = document.createElement('div');
    mountApp(root, backend);
    const one = fixture({ entry_count: 1 });
    one.peers = one.peers.slice(0, 1);
    one.peer_count = 1;
    one.neighbors = one.neighbors.slice(0, 1);
    if (one.last_sync) one.last_sync = { ...one.last_sync, pulled: 1, pushed: 0 };
    push(one);
    const text = root.textContent ?? '';
    expect(root.querySelector('[data-field="entry-noun"]')!.textContent).toBe('entry');
    expect(text).not.toMatch(/\b1 (entries|peers|nodes|neighbours|sync peers|hash steps)\b/);
    push({ ...fixture({ entry_count: 2 }), now_ms: one.now_ms + 1 });
    expect(root.querySelector('[data-field="entry-noun"]')!.textContent).toBe('entries');
  });
});

import { describe, expect, it } from 'vitest';
import type { Status } from '../src/backend/types';
import { StatusStore } from '../src/store';
import { fixture } from './helpers';

/** A snapshot of node `peer` (started at `started`) taken at `now`, with an optional seq. */
function snap(peer: string, now: number, seq?: number, started = 1_000): Status {
  const s = fixture({ now_ms: now });
  s.node = { ...s.node, peer_id: peer, started_at_ms: started };
  if (seq !== undefined) s.seq = seq;
  else delete (s as Partial<Status>).seq;
  return s;
}

const shown = (store: StatusStore) => {
  const s = store.current!.status as Status & { seq?: number };
  return { peer: s.node.peer_id, now: s.now_ms, seq: s.seq };
};

describe('StatusStore', () => {
  it('shows another node as soon as its snapshot arrives, even when that snapshot is older', () => {
    const store = new StatusStore();
    store.set(snap('node-2', 50_000, 40));
    // The app's own node was idle: its last snapshot is 20 s older and has a lower seq.
    store.set(snap('own', 30_000, 3));
    expect(shown(store)).toEqual({ peer: 'own', now: 30_000, seq: 3 });
  });

  it('tells subscribers about the switch to another node', () => {
    const store = new StatusStore();
    const seen: string[] = [];
    store.subscribe(({ status }) => seen.push(status.node.peer_id));
    store.set(snap('node-1', 9_000));
    store.set(snap('own', 1_000));
    expect(seen).toEqual(['node-1', 'own']);
  });

  it('orders one node\'s snapshots by seq, not by its clock', () => {
    const store = new StatusStore();
    store.set(snap('a', 5_000, 7));
    store.set(snap('a', 6_000, 6)); // a late answer to an earlier request
    expect(shown(store).seq).toBe(7);
    store.set(snap('a', 4_000, 8)); // the node's clock stepped back; seq still moves on
    expect(shown(store)).toEqual({ peer: 'a', now: 4_000, seq: 8 });
  });

  it('falls back to now_ms within one node when a snapshot carries no seq', () => {
    const store = new StatusStore();
    store.set(snap('a', 5_000));
    store.set(snap('a', 4_000));
    expect(shown(store).now).toBe(5_000);
    store.set(snap('a', 6_000));
    expect(shown(store).now).toBe(6_000);
  });

  it('starts afresh when the same node restarts (its seq starts again)', () => {
    const store = new StatusStore();
    store.set(snap('a', 5_000, 900, 1_000));
    store.set(snap('a', 7_000, 1, 6_500));
    expect(shown(store)).toEqual({ peer: 'a', now: 7_000, seq: 1 });
  });

  it('measures the clock skew from the snapshot that is kept', () => {
    let local = 10_000;
    const store = new StatusStore(() => local);
    store.set(snap('a', 12_000, 1));
    expect(store.current!.skew).toBe(2_000);
    local = 11_000;
    store.set(snap('b', 11_500, 1));
    expect(store.current!.skew).toBe(500);
  });
});

describe('the clock skew of an idle node', () => {
  it('does not take an old snapshot for a slow clock: a node idle for 20 minutes is not 20 minutes behind', () => {
    const local = 10_000_000;
    const store = new StatusStore(() => local);
    store.set(snap('idle', local - 20 * 60_000, 5));
    expect(store.current!.skew).toBe(0);
  });

  it('keeps the largest skew seen over the node’s run, since a later snapshot may have been published earlier', () => {
    let local = 10_000_000;
    const store = new StatusStore(() => local);
    store.set(snap('a', local + 3_000, 1)); // the node's clock is at least 3 s ahead
    local += 5_000;
    store.set(snap('a', local + 1_000, 2)); // published 2 s before it arrived
    expect(store.current!.skew).toBe(3_000);
    store.set(snap('b', local + 500, 1)); // another node: measured afresh
    expect(store.current!.skew).toBe(500);
  });
});

describe('the snapshot trace (?debug=snapshots)', () => {
  it('records every snapshot offered, where it came from, and whether it was applied or dropped', () => {
    const store = new StatusStore(() => 42, { trace: true });
    store.set(snap('a', 5_000, 7), 'stream');
    store.set(snap('a', 4_000, 6), 'get');
    expect(store.trace!.map((r) => [r.source, r.seq, r.now_ms, r.applied, r.at])).toEqual([
      ['stream', 7, 5_000, true, 42],
      ['get', 6, 4_000, false, 42],
    ]);
    expect(shown(store).seq).toBe(7);
  });

  it('keeps no trace unless asked', () => {
    const store = new StatusStore();
    store.set(snap('a', 5_000, 7), 'stream');
    expect(store.trace).toBeNull();
  });
});

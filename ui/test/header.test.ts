import { afterEach, describe, expect, it, vi } from 'vitest';
import { MODES, SYNC_STATES } from '../src/backend/types';
import { SYNC_WORDS } from '../src/views/carrier';
import { createHeader } from '../src/views/header';
import { fakeBackend, fixture, shown, withStates } from './helpers';

afterEach(() => vi.useRealTimers());

describe('header', () => {
  const make = (now: () => number = () => 1_000_000) => createHeader(fakeBackend(), vi.fn(), vi.fn(), now);

  it.each(SYNC_STATES)('renders the core’s sync_state %s as data-value and in words', (sync) => {
    const header = make();
    header.update(withStates(sync === 'p2p' ? 'carrying' : 'down', sync === 'http' ? 'carrying' : 'standby', sync, sync === 'http' ? 'active' : 'watching'));
    expect(shown(header.el, 'sync-state')).toEqual({ value: sync, text: SYNC_WORDS[sync] });
  });

  it('says "P2P lost — HTTP in N s" during the countdown (isolated), counting down between snapshots', () => {
    vi.useFakeTimers();
    let t = 1_000_000;
    const header = make(() => t);
    header.update(withStates('cut', 'standby', 'isolated', 'countdown', { now_ms: t, fallback_deadline_ms: t + 5000 }), 0);
    expect(shown(header.el, 'sync-state')).toEqual({ value: 'isolated', text: 'P2P lost — HTTP in 5 s' });
    t += 2100;
    vi.advanceTimersByTime(2100);
    expect(shown(header.el, 'sync-state').text).toBe('P2P lost — HTTP in 3 s');
    t += 3000;
    vi.advanceTimersByTime(3000);
    expect(shown(header.el, 'sync-state').text).toBe('P2P lost — HTTP now');
  });

  it('corrects the countdown by the clock skew of the snapshot', () => {
    const header = make();
    // The node's clock runs 2 s ahead of ours: its deadline is 3 s away, not 5 s.
    header.update(withStates('countdown', 'standby', 'isolated', 'countdown', { fallback_deadline_ms: 1_005_000 }), 2000);
    expect(shown(header.el, 'sync-state').text).toBe('P2P lost — HTTP in 3 s');
  });

  it('never says "Sync via P2P" while the core says nothing carries, whatever sync_mode reads', () => {
    const header = make();
    header.update(withStates('cut', 'standby', 'isolated', 'watching', { sync_mode: 'P2P' }));
    expect(shown(header.el, 'sync-state')).toEqual({ value: 'isolated', text: 'Isolated' });
  });

  it('stops counting down once frozen (a face that lost its node)', () => {
    vi.useFakeTimers();
    let t = 1_000_000;
    const header = make(() => t);
    header.update(withStates('countdown', 'standby', 'isolated', 'countdown', { fallback_deadline_ms: t + 5000 }), 0);
    header.setConnected(true);
    header.setConnected(false);
    t += 3000;
    vi.advanceTimersByTime(3000);
    expect(shown(header.el, 'sync-state').text).toBe('P2P lost — HTTP in 5 s');
  });

  it('names the watched node, carries its PeerId and API, and keeps the short PeerId the e2e checks read', () => {
    const header = make();
    const s = fixture();
    header.update(s);
    const w = header.el.querySelector('[data-field="watched-node"]')!;
    expect(shown(header.el, 'watched-node')).toEqual({ value: s.node.peer_id, text: 'Branch A' });
    expect(w.getAttribute('data-api')).toBe(`http://${s.node.http_listen}`);
    expect(header.el.querySelector('[data-field="peer-id"]')!.textContent).toBe('12D3KooWAi…sm7gpf');
    const unnamed = fixture();
    unnamed.node = { ...unnamed.node, name: null };
    header.update(unnamed);
    expect(shown(header.el, 'watched-node').text).toBe('12D3KooWAi…sm7gpf');
  });

  it.each(MODES)('carries the node’s mode %s as data-value on the mode control, with that button pressed', (mode) => {
    const header = make();
    header.update(fixture({ mode }));
    expect(shown(header.el, 'mode').value).toBe(mode);
    expect(header.el.querySelector('[data-field="mode"] [aria-pressed="true"]')!.getAttribute('data-mode')).toBe(mode);
  });

  it('says live while connected and lost once the node is lost', () => {
    const header = make();
    header.update(fixture());
    header.setConnected(true);
    expect(shown(header.el, 'connection')).toEqual({ value: 'live', text: 'Live' });
    header.setConnected(false);
    expect(shown(header.el, 'connection').value).toBe('lost');
    expect(shown(header.el, 'connection').text).toMatch(/^Lost/);
  });

  it('says plainly when the node keeps the open development ledger, and names a closed one', () => {
    const header = make();
    const ledger = { id: 'c2c4d872aa', name: 'development', open: true, authors: 0, can_write: true, refused: 0 };
    header.update({ ...fixture(), ledger });
    expect(shown(header.el, 'ledger')).toEqual({ value: 'c2c4d872aa', text: 'development — open development ledger: anyone can write' });
    header.update({ ...fixture(), ledger: { ...ledger, id: 'ab12', name: 'Branches', open: false, authors: 4, can_write: false, refused: 2 } });
    expect(shown(header.el, 'ledger')).toEqual({ value: 'ab12', text: 'Branches — 4 authors · this node may not write · 2 entries refused' });
    expect(header.el.querySelector('[data-field="ledger"]')!.classList.contains('is-open')).toBe(false);
  });
});

import { afterEach, describe, expect, it, vi } from 'vitest';
import { createHeader } from '../src/views/header';
import { fakeBackend, fixture } from './helpers';

afterEach(() => vi.useRealTimers());

describe('header carrier pill', () => {
  const make = (now: () => number) => createHeader(fakeBackend(), vi.fn(), vi.fn(), now);
  const carrier = (el: HTMLElement) => el.querySelector('[data-field="carrier"]')!;

  it('says "P2P lost — HTTP in N s" during the fallback countdown, not "Sync via P2P"', () => {
    vi.useFakeTimers();
    let t = 1_000_000;
    const header = make(() => t);
    const s = fixture({ sync_mode: 'P2P', mode: 'auto', p2p_blocked: true, has_peers: false, peer_count: 0, peers: [], now_ms: t, peerless_since_ms: t - 1000, fallback_deadline_ms: t + 5000, fallback_active_since_ms: null });
    header.update(s, 0);
    expect(carrier(header.el).textContent).toBe('P2P lost — HTTP in 5 s');
    expect(carrier(header.el).classList.contains('carrier--lost')).toBe(true);
    // It counts down on its own between snapshots, from the node's deadline.
    t += 2100;
    vi.advanceTimersByTime(2100);
    expect(carrier(header.el).textContent).toBe('P2P lost — HTTP in 3 s');
    t += 3000;
    vi.advanceTimersByTime(3000);
    expect(carrier(header.el).textContent).toBe('P2P lost — HTTP now');
  });

  it('corrects the countdown by the clock skew of the snapshot', () => {
    const header = make(() => 1_000_000);
    // The node's clock runs 2 s ahead of ours: its deadline is 3 s away, not 5 s.
    header.update(fixture({ mode: 'auto', sync_mode: 'P2P', fallback_deadline_ms: 1_005_000, fallback_active_since_ms: null }), 2000);
    expect(carrier(header.el).textContent).toBe('P2P lost — HTTP in 3 s');
  });

  it('follows status: HTTP after the fallback, P2P again once restored', () => {
    const header = make(() => 1_000_000);
    header.update(fixture({ mode: 'auto', sync_mode: 'HTTP', p2p_blocked: true, fallback_deadline_ms: null, fallback_active_since_ms: 999_000 }));
    expect(carrier(header.el).textContent).toBe('Sync via HTTP');
    header.update(fixture({ mode: 'auto', sync_mode: 'P2P', p2p_blocked: false, fallback_deadline_ms: null, fallback_active_since_ms: null }));
    expect(carrier(header.el).textContent).toBe('Sync via P2P');
    expect(carrier(header.el).className).toBe('carrier carrier--p2p');
  });

  it('says P2P is cut while the node has not started its countdown yet', () => {
    const header = make(() => 1_000_000);
    header.update(fixture({ mode: 'auto', sync_mode: 'P2P', p2p_blocked: true, fallback_deadline_ms: null, fallback_active_since_ms: null }));
    expect(carrier(header.el).textContent).toBe('P2P cut — HTTP soon');
  });
});

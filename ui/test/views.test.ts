import { describe, expect, it, vi } from 'vitest';
import { ApiError } from '../src/backend/errors';
import { createFallbackTimer, fallbackPhase } from '../src/views/fallback';
import { createLungs } from '../src/views/lungs';
import { createCutButton, createModeControl } from '../src/views/mode';
import { StatusStore } from '../src/store';
import { fakeBackend, fixture } from './helpers';

const metric = (root: HTMLElement, lung: string, key: string) =>
  root.querySelector(`.lung--${lung} [data-metric="${key}"]`)?.textContent;

describe('lungs view', () => {
  it('shows the P2P lung breathing and HTTP on standby for the real snapshot', () => {
    const v = createLungs();
    v.update(fixture());
    const p2p = v.el.querySelector('.lung--p2p')!;
    const http = v.el.querySelector('.lung--http')!;
    expect(p2p.classList.contains('is-breathing')).toBe(true);
    expect(p2p.classList.contains('is-carrying')).toBe(true);
    expect(http.classList.contains('is-standby')).toBe(true);
    expect(http.classList.contains('is-breathing')).toBe(false);
    expect(metric(v.el, 'p2p', 'peers')).toBe('2');
    expect(metric(v.el, 'p2p', 'mesh')).toBe('2');
    expect(metric(v.el, 'p2p', 'rtt')).toBe('8.3 ms'); // median of 6.33 and 10.17
    expect(metric(v.el, 'http', 'healthy')).toBe('0 / 2');
    expect(metric(v.el, 'http', 'streams')).toBe('0 / 2');
    expect(p2p.querySelector('.lung__badge')?.textContent).toBe('Carrying sync');
  });

  it('alarms P2P when it is cut and lets HTTP breathe when it carries sync', () => {
    const s = fixture({ p2p_blocked: true, sync_mode: 'HTTP', http_sync_enabled: true, peers: [], peer_count: 0, has_peers: false });
    s.neighbors.forEach((n) => (n.health = 'healthy'));
    const v = createLungs();
    v.update(s);
    expect(v.el.querySelector('.lung--p2p')!.classList.contains('is-failed')).toBe(true);
    expect(v.el.querySelector('.lung--p2p .lung__badge')!.textContent).toBe('Cut');
    expect(v.el.querySelector('.lung--http')!.classList.contains('is-breathing')).toBe(true);
    expect(metric(v.el, 'http', 'healthy')).toBe('2 / 2');
  });

  it('alarms HTTP when it carries sync and every neighbour is unhealthy', () => {
    const s = fixture({ sync_mode: 'HTTP', mode: 'http', peers: [] });
    s.neighbors.forEach((n) => (n.health = 'unhealthy'));
    const v = createLungs();
    v.update(s);
    expect(v.el.querySelector('.lung--http')!.classList.contains('is-failed')).toBe(true);
    expect(v.el.querySelector('.lung--p2p')!.classList.contains('is-off')).toBe(true);
  });

  it('alarms P2P while it should carry sync with no sync-capable peers', () => {
    const v = createLungs();
    v.update(fixture({ peers: [], peer_count: 0, has_peers: false, fallback_deadline_ms: 1795605540000 }));
    expect(v.el.querySelector('.lung--p2p')!.classList.contains('is-failed')).toBe(true);
    expect(v.el.querySelector('.lung--p2p .lung__note')!.textContent).toMatch(/countdown/);
  });

  it('keeps the same DOM nodes across updates (no re-layout of the panels)', () => {
    const v = createLungs();
    v.update(fixture());
    const before = v.el.querySelector('.lung--p2p');
    v.update(fixture({ peer_count: 1 }));
    expect(v.el.querySelector('.lung--p2p')).toBe(before);
    expect(v.el.querySelectorAll('.lung').length).toBe(2);
  });
});

describe('mode control', () => {
  it('highlights the mode the node reports', () => {
    const c = createModeControl(fakeBackend(), vi.fn(), vi.fn());
    c.update(fixture({ mode: 'http' }));
    const pressed = [...c.el.querySelectorAll('button')].filter((b) => b.getAttribute('aria-pressed') === 'true');
    expect(pressed.map((b) => b.dataset.mode)).toEqual(['http']);
  });

  it('asks the node to switch and renders the status it returns', async () => {
    const backend = fakeBackend();
    const onStatus = vi.fn();
    const c = createModeControl(backend, vi.fn(), onStatus);
    c.update(fixture());
    (c.el.querySelector('[data-mode="p2p"]') as HTMLButtonElement).click();
    await vi.waitFor(() => expect(onStatus).toHaveBeenCalled());
    expect(backend.switchMode).toHaveBeenCalledWith('p2p');
    expect(onStatus.mock.calls[0]![0].mode).toBe('p2p');
  });

  it('shows the node’s message in a toast when a switch is refused', async () => {
    const backend = fakeBackend({ switchMode: vi.fn(async () => { throw new ApiError('invalid_mode', '"turbo" is not a mode; use auto, p2p or http'); }) });
    const toast = vi.fn();
    const c = createModeControl(backend, toast, vi.fn());
    c.update(fixture());
    (c.el.querySelector('[data-mode="http"]') as HTMLButtonElement).click();
    await vi.waitFor(() => expect(toast).toHaveBeenCalled());
    expect(toast.mock.calls[0]![0]).toContain('"turbo" is not a mode');
    expect(toast.mock.calls[0]![1]).toBe('error');
    // The highlighted mode is still the node's.
    expect(c.el.querySelector('[aria-pressed="true"]')!.getAttribute('data-mode')).toBe('auto');
  });

  it('cut button says Restore when the node reports P2P blocked, and toggles it', async () => {
    const backend = fakeBackend();
    const b = createCutButton(backend, vi.fn(), vi.fn());
    b.update(fixture());
    expect(b.el.textContent).toContain('Cut P2P');
    b.el.click();
    await vi.waitFor(() => expect(backend.setP2pBlocked).toHaveBeenCalledWith(true));
    b.update(fixture({ p2p_blocked: true }));
    expect(b.el.textContent).toContain('Restore P2P');
  });
});

describe('fallback timer', () => {
  it('picks the story from the snapshot', () => {
    expect(fallbackPhase(fixture())).toBe('healthy');
    expect(fallbackPhase(fixture({ mode: 'p2p' }))).toBe('forced');
    expect(fallbackPhase(fixture({ fallback_deadline_ms: 1 }))).toBe('countdown');
    expect(fallbackPhase(fixture({ fallback_active_since_ms: 1, sync_mode: 'HTTP' }))).toBe('fallback');
  });

  it('renders the remaining time from the deadline, corrected for skew', () => {
    let local = 1_000_000;
    const store = new StatusStore(() => local);
    const t = createFallbackTimer(() => local);
    // Node clock is 5 s ahead of ours; deadline is 4 s after the node's now.
    const s = fixture({ now_ms: 1_005_000, fallback_deadline_ms: 1_009_000, peers: [], has_peers: false });
    store.set(s);
    t.update(store.current!);
    expect(t.el.classList.contains('is-countdown')).toBe(true);
    expect(t.el.querySelector('.ring__value')!.textContent).toBe('4.0');
    local += 1500;
    t.update(store.current!);
    expect(t.el.querySelector('.ring__value')!.textContent).toBe('2.5');
  });

  it('says since when the HTTP fallback is active', () => {
    const store = new StatusStore(() => 0);
    const t = createFallbackTimer(() => 0);
    store.set(fixture({ fallback_active_since_ms: fixture().now_ms - 65_000, sync_mode: 'HTTP' }));
    t.update(store.current!);
    expect(t.el.querySelector('.timer__title')!.textContent).toBe('HTTP fallback active');
    expect(t.el.querySelector('.timer__line')!.textContent).toMatch(/^since \d\d:\d\d:\d\d, for 1 min 05 s$/);
  });
});

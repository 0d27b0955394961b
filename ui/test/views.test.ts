import { describe, expect, it, vi } from 'vitest';
import { ApiError } from '../src/backend/errors';
import { FALLBACK_PHASES } from '../src/backend/types';
import { createFallbackTimer, PHASE_WORDS, timerStory } from '../src/views/fallback';
import { createCutButton, createModeControl } from '../src/views/mode';
import { StatusStore } from '../src/store';
import { fakeBackend, fixture, withStates } from './helpers';

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
  it.each(FALLBACK_PHASES)('renders the core’s fallback phase %s as data-value with its words', (phase) => {
    const t = createFallbackTimer(() => 0);
    const store = new StatusStore(() => 0);
    const p2p = phase === 'countdown' ? 'countdown' : phase === 'active' ? 'down' : 'carrying';
    const st = withStates(p2p, phase === 'active' ? 'carrying' : 'standby', phase === 'active' ? 'http' : 'p2p', phase, {
      fallback_deadline_ms: phase === 'countdown' ? fixture().now_ms + 3000 : null,
      fallback_active_since_ms: phase === 'active' ? fixture().now_ms - 1000 : null,
    });
    store.set(st);
    t.update(store.current!);
    expect(t.el.getAttribute('data-field')).toBe('fallback-phase');
    expect(t.el.getAttribute('data-value')).toBe(phase);
    const title = t.el.querySelector('.timer__title')!.textContent;
    expect(title).toBe(phase === 'watching' ? 'P2P healthy' : PHASE_WORDS[phase]);
  });

  it('tells the story from the core’s phase, not from the timer fields', () => {
    expect(timerStory(withStates('carrying', 'standby', 'p2p', 'watching'))).toBe('healthy');
    expect(timerStory(withStates('down', 'unready', 'isolated', 'watching'))).toBe('waiting');
    expect(timerStory(withStates('carrying', 'off', 'p2p', 'forced', { mode: 'p2p' }))).toBe('forced');
    // A deadline in the snapshot does not make a countdown when the core says active.
    expect(timerStory(withStates('down', 'carrying', 'http', 'active', { fallback_deadline_ms: 1 }))).toBe('fallback');
    expect(timerStory(withStates('countdown', 'standby', 'isolated', 'countdown'))).toBe('countdown');
  });

  it('does not show an active fallback as carrying when the core says nothing carries (isolated)', () => {
    const store = new StatusStore(() => 0);
    const t = createFallbackTimer(() => 0);
    store.set(withStates('down', 'failing', 'isolated', 'active', { fallback_active_since_ms: fixture().now_ms - 1000 }));
    t.update(store.current!);
    expect(t.el.getAttribute('data-value')).toBe('active');
    expect(t.el.classList.contains('is-isolated')).toBe(true);
    expect(t.el.querySelector('.ring__unit')!.textContent).toBe('nobody');
    store.set(withStates('down', 'carrying', 'http', 'active', { seq: 1000, fallback_active_since_ms: fixture().now_ms - 1000 }));
    t.update(store.current!);
    expect(t.el.classList.contains('is-isolated')).toBe(false);
    expect(t.el.querySelector('.ring__unit')!.textContent).toBe('active');
  });

  it('renders the remaining time from the deadline, corrected for skew', () => {
    let local = 1_000_000;
    const store = new StatusStore(() => local);
    const t = createFallbackTimer(() => local);
    // Node clock is 5 s ahead of ours; deadline is 4 s after the node's now.
    const s = withStates('countdown', 'standby', 'isolated', 'countdown', { now_ms: 1_005_000, fallback_deadline_ms: 1_009_000 });
    store.set(s);
    t.update(store.current!);
    expect(t.el.classList.contains('is-countdown')).toBe(true);
    expect(t.el.querySelector('.ring__value')!.textContent).toBe('4.0');
    local += 1500;
    t.update(store.current!);
    expect(t.el.querySelector('.ring__value')!.textContent).toBe('2.5');
  });

  it('says since when the HTTP fallback is active, and why in the core’s words', () => {
    const store = new StatusStore(() => 0);
    const t = createFallbackTimer(() => 0);
    store.set(withStates('down', 'carrying', 'http', 'active', { fallback_active_since_ms: fixture().now_ms - 65_000 }));
    t.update(store.current!);
    expect(t.el.querySelector('.timer__title')!.textContent).toBe('HTTP fallback active');
    expect(t.el.querySelector('.timer__line')!.textContent).toMatch(/^since \d\d:\d\d:\d\d, for 1\u00a0min\u00a005\u00a0s$/);
    expect(t.el.querySelector('.timer__detail')!.textContent).toBe('core says sync http');
    expect(t.el.classList.contains('is-fallback')).toBe(true);
  });
});

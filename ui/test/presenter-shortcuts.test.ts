import { afterEach, describe, expect, it, vi } from 'vitest';
import { h } from '../src/dom';
import { buttonShortcut, createShortcuts } from '../src/views/shortcuts';

const press = (key: string, init: KeyboardEventInit = {}, target: EventTarget = document.body) =>
  target.dispatchEvent(new KeyboardEvent('keydown', { key, bubbles: true, cancelable: true, ...init }));

let cleanup: (() => void)[] = [];
afterEach(() => {
  cleanup.forEach((f) => f());
  cleanup = [];
  document.body.replaceChildren();
});

function setup() {
  const clicks: string[] = [];
  const cut = h('button', { text: 'Cut', on: { click: () => clicks.push('cut') } });
  const restore = h('button', { text: 'Restore', on: { click: () => clicks.push('restore') } });
  restore.disabled = true;
  const field = h('input');
  document.body.append(cut, restore, field);
  const keys = createShortcuts([buttonShortcut('c', 'Cut P2P', cut), buttonShortcut('r', 'Restore P2P', restore)], [{ key: 'p', label: 'Presentation mode' }]);
  document.body.append(keys.overlay);
  cleanup.push(keys.destroy);
  return { clicks, cut, restore, field, keys };
}

describe('presenter shortcuts', () => {
  it('press the bar button of their key, only while that button is enabled', () => {
    const { clicks, restore } = setup();
    press('c');
    press('C');
    press('r');
    expect(clicks).toEqual(['cut', 'cut']);
    restore.disabled = false;
    press('r');
    expect(clicks).toEqual(['cut', 'cut', 'restore']);
    expect(restore.getAttribute('aria-keyshortcuts')).toBe('R');
  });

  it('never fire while typing in a field or with a modifier', () => {
    const { clicks, field } = setup();
    press('c', {}, field);
    press('c', { ctrlKey: true });
    press('c', { metaKey: true });
    expect(clicks).toEqual([]);
  });

  it('? opens a help overlay listing every key, Escape closes it, and keys wait while it is open', () => {
    const { clicks, keys } = setup();
    expect(keys.isOpen()).toBe(false);
    press('?');
    expect(keys.isOpen()).toBe(true);
    const listed = [...keys.overlay.querySelectorAll('kbd')].map((k) => k.textContent);
    expect(listed).toEqual(['C', 'R', 'P', '?', 'Esc']);
    expect(keys.overlay.textContent).toContain('Cut P2P');
    expect(keys.overlay.textContent).toContain('Presentation mode');
    press('c');
    expect(clicks).toEqual([]);
    press('Escape');
    expect(keys.isOpen()).toBe(false);
    press('?');
    press('?');
    expect(keys.isOpen()).toBe(false);
  });

  it('a custom shortcut runs its action, and one left out of the help still works', () => {
    const run = vi.fn(() => true);
    const keys = createShortcuts([{ key: '3', label: 'Watch node 3', run, listed: false }], [{ key: '1–9', label: 'Watch a node' }]);
    cleanup.push(keys.destroy);
    press('3');
    expect(run).toHaveBeenCalledTimes(1);
    expect([...keys.overlay.querySelectorAll('kbd')].map((k) => k.textContent)).toEqual(['1–9', '?', 'Esc']);
  });
});

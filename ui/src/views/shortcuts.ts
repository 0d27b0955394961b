import { h } from '../dom';

/** One key of the presenter's keyboard. */
export interface Shortcut {
  /** `KeyboardEvent.key`, case-insensitive for letters ("c", "1", "?"). */
  key: string;
  /** What the help overlay says it does. */
  label: string;
  /** Does it; `false` when it does not make sense now (the button is disabled). */
  run: () => boolean | void;
  /** False for keys the help lists as one row (the node digits). */
  listed?: boolean;
}

/** A button as a shortcut: it fires only while the button is enabled, as a click would. */
export function buttonShortcut(key: string, label: string, button: HTMLButtonElement): Shortcut {
  button.setAttribute('aria-keyshortcuts', key.toUpperCase());
  const title = button.title ? `${button.title} ` : '';
  button.title = `${title}(key ${key.toUpperCase()})`.trim();
  return {
    key,
    label,
    run: () => {
      if (button.disabled || button.closest('[inert]')) return false;
      button.click();
      return true;
    },
  };
}

/** Typing in a field, or a chord with a modifier, is never a shortcut. */
function ignored(e: KeyboardEvent): boolean {
  if (e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) return true;
  const t = e.target as HTMLElement | null;
  return !!t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName ?? ''));
}

/**
 * The presenter's keyboard: each key presses a bar button, `?` opens a help overlay that
 * lists them all, Escape (or `?` again) closes it. `extra` lists keys handled elsewhere
 * (presentation mode's `p`) so the overlay shows the whole keyboard.
 */
export function createShortcuts(shortcuts: Shortcut[], extra: { key: string; label: string }[] = [], target: Document = document) {
  const byKey = new Map(shortcuts.map((s) => [s.key.toLowerCase(), s]));
  const rows = [...shortcuts.filter((x) => x.listed !== false), ...extra, { key: '?', label: 'Show or hide this help' }, { key: 'Esc', label: 'Close this help' }];
  const closeBtn = h('button', { class: 'btn btn--small', text: 'Close', attrs: { type: 'button', 'data-action': 'shortcuts-close' }, on: { click: () => close() } });
  const overlay = h('div', { class: 'shortcuts', attrs: { role: 'dialog', 'aria-modal': 'true', 'aria-label': 'Keyboard shortcuts', hidden: '', 'data-field': 'presenter-shortcuts' } },
    h('div', { class: 'shortcuts__panel' },
      h('h2', { class: 'shortcuts__title', text: 'Keyboard shortcuts' }),
      h('dl', { class: 'shortcuts__list' }, ...rows.flatMap((r) => [h('dt', {}, h('kbd', { text: r.key.length === 1 ? r.key.toUpperCase() : r.key })), h('dd', { text: r.label })])),
      closeBtn));
  overlay.addEventListener('click', (e) => {
    if (e.target === overlay) close();
  });
  let lastFocus: Element | null = null;

  function isOpen(): boolean {
    return !overlay.hasAttribute('hidden');
  }
  function open(): void {
    lastFocus = target.activeElement;
    overlay.removeAttribute('hidden');
    closeBtn.focus();
  }
  function close(): void {
    if (!isOpen()) return;
    overlay.setAttribute('hidden', '');
    if (lastFocus instanceof HTMLElement) lastFocus.focus();
  }

  /** Returns whether the key was a shortcut (and then the event is consumed). */
  function handle(e: KeyboardEvent): boolean {
    if (e.key === 'Escape' && isOpen()) {
      close();
      e.preventDefault();
      return true;
    }
    if (ignored(e)) return false;
    if (e.key === '?') {
      if (isOpen()) close();
      else open();
      e.preventDefault();
      return true;
    }
    if (isOpen()) return false;
    const s = byKey.get(e.key.toLowerCase());
    if (!s) return false;
    s.run();
    e.preventDefault();
    return true;
  }

  const listener = (e: KeyboardEvent) => void handle(e);
  target.addEventListener('keydown', listener);
  return {
    overlay,
    handle,
    open,
    close,
    isOpen,
    destroy: () => target.removeEventListener('keydown', listener),
  };
}

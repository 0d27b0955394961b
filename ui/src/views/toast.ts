import { h } from '../dom';

export type ToastKind = 'error' | 'info' | 'success';
export type Toast = (message: string, kind?: ToastKind) => void;

/** A stack of short notices in a corner (refused switches, copy confirmations). */
export function mountToasts(root: HTMLElement): Toast {
  const stack = h('div', { class: 'toasts', attrs: { 'aria-live': 'polite', role: 'status' } });
  root.append(stack);
  return (message, kind = 'info') => {
    const t = h('div', { class: `toast toast--${kind}`, text: message });
    stack.prepend(t);
    while (stack.children.length > 4) stack.lastElementChild?.remove();
    setTimeout(() => {
      t.classList.add('toast--leaving');
      setTimeout(() => t.remove(), 300);
    }, kind === 'error' ? 7000 : 3000);
  };
}

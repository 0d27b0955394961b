import { createHttpBackend } from './http';
import { createTauriBackend } from './tauri';
import type { Backend } from './types';

export type { Backend } from './types';

/** Inside the desktop app Tauri injects `__TAURI_INTERNALS__`; anywhere else, HTTP. */
export function isTauri(win: object): boolean {
  return '__TAURI_INTERNALS__' in win;
}

export function selectBackend(win: Window & typeof globalThis = window): Backend {
  if (isTauri(win)) return createTauriBackend();
  return createHttpBackend({
    fetch: win.fetch.bind(win),
  });
}

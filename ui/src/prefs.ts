/** Theme and presentation mode: classes/attributes on <html>, remembered locally. */
export type Theme = 'light' | 'dark';
const THEME_KEY = 'lattice.theme';
const PRESENT_KEY = 'lattice.presentation';

function safeGet(key: string): string | null {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}
function safeSet(key: string, v: string): void {
  try {
    localStorage.setItem(key, v);
  } catch {
    /* storage disabled: preference lasts for this page only */
  }
}

export function initialTheme(): Theme {
  const q = new URLSearchParams(location.search).get('theme');
  if (q === 'light' || q === 'dark') return q;
  const saved = safeGet(THEME_KEY);
  if (saved === 'light' || saved === 'dark') return saved;
  return window.matchMedia?.('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

export function applyTheme(t: Theme, remember = false): void {
  document.documentElement.dataset.theme = t;
  if (remember) safeSet(THEME_KEY, t);
}

export function currentTheme(): Theme {
  return document.documentElement.dataset.theme === 'dark' ? 'dark' : 'light';
}

export function initialPresentation(): boolean {
  const q = new URLSearchParams(location.search).get('present');
  if (q !== null) return q !== '0';
  return safeGet(PRESENT_KEY) === '1';
}

export function applyPresentation(on: boolean, remember = false): void {
  document.documentElement.classList.toggle('presentation', on);
  if (remember) safeSet(PRESENT_KEY, on ? '1' : '0');
}

export function isPresentation(): boolean {
  return document.documentElement.classList.contains('presentation');
}

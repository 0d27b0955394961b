/** Small, pure formatting helpers shared by the views. */

/** `12D3KooWC8w5…q76EFF`: enough to tell peers apart on screen. */
export function shortId(id: string, head = 8, tail = 6): string {
  if (id.length <= head + tail + 1) return id;
  return `${id.slice(0, head)}…${id.slice(-tail)}`;
}

export function shortHash(hex: string, n = 8): string {
  if (hex.length <= 2 * n + 1) return hex;
  return `${hex.slice(0, n)}…${hex.slice(-n)}`;
}

/** A neighbour URL without scheme and trailing slash: `127.0.0.1:8002`. */
export function shortUrl(url: string): string {
  return url.replace(/^https?:\/\//, '').replace(/\/$/, '');
}

/**
 * The noun that goes with a count: English has exactly one singular, `1`; 0 and 2 take the
 * plural ("0 entries", "1 entry"). Irregular plurals are passed in.
 */
export function plural(n: number, one: string, many = `${one}s`): string {
  return n === 1 ? one : many;
}

/** "1 entry", "12 entries", "1,204 entries": a count with its noun. */
export function counted(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString('en-US')} ${plural(n, one, many)}`;
}

const pad = (n: number) => String(n).padStart(2, '0');

/** Local wall-clock time HH:MM:SS of a unix-ms instant. */
export function clock(ms: number | null | undefined): string {
  if (ms == null) return '—';
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A duration as "4 s", "3 min 05 s", "2 h 07 min". */
export function duration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${pad(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${pad(m % 60)} min`;
}

export function bytes(n: number | null | undefined): string {
  if (n == null) return '—';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function rtt(ms: number | null | undefined): string {
  if (ms == null) return '—';
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

export function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** One-line JSON preview of a payload, cut to `max` characters. */
export function preview(payload: unknown, max = 80): string {
  let s: string;
  try {
    s = JSON.stringify(payload) ?? String(payload);
  } catch {
    s = String(payload);
  }
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** "40 s ago", "3 min 05 s ago": the only relative times, re-rendered by the 1 s UI clock. */
export function ago(ms: number): string {
  return `${duration(ms)} ago`;
}

import { ApiError } from './errors';
import type {
  Backend,
  EntryList,
  EntryWithProof,
  Mode,
  NodeEvent,
  PutResult,
  Status,
  Unsubscribe,
} from './types';

const TOKEN_KEY = 'lattice.apiToken';

/** Minimal view of the browser globals the HTTP backend needs (tests pass fakes). */
export interface HttpEnv {
  fetch: typeof fetch;
  EventSource?: typeof EventSource;
  /** Base URL of the API ('' = same origin). */
  base?: string;
  token?: () => string | null;
}

/**
 * Reads a bearer token from `#token=...` once, keeps it in sessionStorage and strips it
 * from the address bar so it never shows on a projector.
 */
export function captureTokenFromHash(loc: Location = location, store: Storage = sessionStorage): void {
  const m = /(?:^#|&)token=([^&]+)/.exec(loc.hash);
  if (!m || !m[1]) return;
  store.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
  const rest = loc.hash.replace(/(^#|&)token=[^&]+/, '$1').replace(/^#&/, '#');
  history.replaceState(null, '', loc.pathname + loc.search + (rest === '#' ? '' : rest));
}

export function storedToken(store: Storage = sessionStorage): string | null {
  return store.getItem(TOKEN_KEY);
}

export function setStoredToken(token: string, store: Storage = sessionStorage): void {
  if (token) store.setItem(TOKEN_KEY, token);
  else store.removeItem(TOKEN_KEY);
}

/** Parses a non-2xx response into an ApiError carrying the node's own message. */
export async function toApiError(res: Response): Promise<ApiError> {
  let text = '';
  try {
    text = await res.text();
  } catch {
    /* body unreadable: fall through to the status line */
  }
  try {
    const body: unknown = JSON.parse(text);
    if (body && typeof body === 'object') {
      const o = body as Record<string, unknown>;
      const kind = typeof o.error === 'string' ? o.error : `http_${res.status}`;
      const message = typeof o.message === 'string' ? o.message : `${res.status} ${res.statusText}`.trim();
      const allowed = Array.isArray(o.allowed) ? o.allowed.map(String) : undefined;
      return new ApiError(kind, message, res.status, allowed);
    }
  } catch {
    /* not JSON */
  }
  const line = `${res.status} ${res.statusText}`.trim();
  return new ApiError(`http_${res.status}`, `The node answered ${line}${text ? `: ${text.slice(0, 200)}` : ''}`, res.status);
}

/** The HTTP + Server-Sent-Events transport, for a page served by `lattice node`. */
export function createHttpBackend(env: HttpEnv): Backend {
  const base = env.base ?? '';
  const token = env.token ?? (() => storedToken());
  const statusSubs = new Set<(s: Status) => void>();
  const eventSubs = new Set<(e: NodeEvent) => void>();
  const connSubs = new Set<(c: boolean) => void>();
  let source: EventSource | null = null;
  let connected = false;

  async function call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const t = token();
    if (method === 'POST' && t) headers.authorization = `Bearer ${t}`;
    let res: Response;
    try {
      res = await env.fetch(base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ApiError('network', `Cannot reach the node (${e instanceof Error ? e.message : String(e)})`);
    }
    if (!res.ok) throw await toApiError(res);
    try {
      return (await res.json()) as T;
    } catch {
      throw new ApiError('bad_response', 'The node sent a response that is not JSON', res.status);
    }
  }

  function setConnected(c: boolean): void {
    if (c === connected) return;
    connected = c;
    connSubs.forEach((cb) => cb(c));
  }

  function parse<T>(data: string): T | null {
    try {
      return JSON.parse(data) as T;
    } catch {
      return null;
    }
  }

  /** One EventSource for all subscribers, opened on first use; it reconnects by itself. */
  function ensureStream(): void {
    if (source || !env.EventSource) return;
    source = new env.EventSource(base + '/api/lattice/events');
    source.addEventListener('open', () => setConnected(true));
    source.addEventListener('error', () => setConnected(false));
    source.addEventListener('status', (ev) => {
      setConnected(true);
      const s = parse<Status>((ev as MessageEvent<string>).data);
      if (s) statusSubs.forEach((cb) => cb(s));
    });
    source.addEventListener('event', (ev) => {
      const e = parse<NodeEvent>((ev as MessageEvent<string>).data);
      if (e) eventSubs.forEach((cb) => cb(e));
    });
  }

  function sub<T>(set: Set<T>, cb: T): Unsubscribe {
    set.add(cb);
    ensureStream();
    return () => {
      set.delete(cb);
    };
  }

  return {
    kind: 'http',
    getStatus: () => call<Status>('GET', '/api/lattice/p2p/status'),
    onStatus: (cb) => sub(statusSubs, cb),
    onEvent: (cb) => sub(eventSubs, cb),
    onConnection: (cb) => {
      const un = sub(connSubs, cb);
      cb(connected);
      return un;
    },
    switchMode: (mode: Mode) =>
      call<Status>('POST', `/api/lattice/sync/switch?mode=${encodeURIComponent(mode)}`),
    put: (payload: unknown) => call<PutResult>('POST', '/api/lattice/entries', { payload }),
    listEntries: (limit: number) =>
      call<EntryList>('GET', `/api/lattice/entries?limit=${Math.max(1, Math.floor(limit))}`),
    getEntry: (id: string) =>
      call<EntryWithProof>('GET', `/api/lattice/entries/${encodeURIComponent(id)}`),
    setP2pBlocked: (blocked: boolean) =>
      call<Status>('POST', blocked ? '/api/lattice/p2p/block' : '/api/lattice/p2p/unblock'),
  };
}

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
  /** Base URL of the API ('' = same origin). */
  base?: string;
  token?: () => string | null;
  /** Waits before a reconnect (tests pass one that resolves at once). */
  sleep?: (ms: number) => Promise<void>;
  /** In [0, 1): spreads reconnects of many dashboards after a node restart. */
  random?: () => number;
  /** How long the event stream may stay silent before the node counts as lost (ms). */
  silenceMs?: number;
}

/** One Server-Sent Event. */
export interface SseEvent {
  event: string;
  data: string;
  id?: string;
  retry?: number;
}

/**
 * A streaming parser for `text/event-stream` (the WHATWG "event stream interpretation"):
 * feed it text as it arrives, in chunks cut anywhere, and it returns the events completed
 * so far. `EventSource` would do this, but it cannot send an `Authorization` header.
 */
export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private event = '';
  private id: string | undefined;
  private retry: number | undefined;
  private started = false;
  /** A chunk ended in CR: a LF starting the next one belongs to it. */
  private pendingCr = false;

  push(chunk: string): SseEvent[] {
    let text = chunk;
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (this.pendingCr && text.startsWith('\n')) text = text.slice(1);
    this.pendingCr = false;
    this.buffer += text;
    const out: SseEvent[] = [];
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buffer);
      if (!m) break;
      if (m[0] === '\r' && m.index === this.buffer.length - 1) {
        // Maybe the first half of CRLF: take the line, drop a LF that follows.
        this.pendingCr = true;
      }
      const line = this.buffer.slice(0, m.index);
      this.buffer = this.buffer.slice(m.index + m[0].length);
      const ev = this.line(line);
      if (ev) out.push(ev);
    }
    return out;
  }

  private line(line: string): SseEvent | null {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return null;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        this.data.push(value);
        break;
      case 'event':
        this.event = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.id = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default:
        break;
    }
    return null;
  }

  private dispatch(): SseEvent | null {
    const hadData = this.data.length > 0;
    const ev: SseEvent = { event: this.event || 'message', data: this.data.join('\n') };
    if (this.id !== undefined) ev.id = this.id;
    if (this.retry !== undefined) ev.retry = this.retry;
    this.data = [];
    this.event = '';
    this.retry = undefined;
    return hadData ? ev : null;
  }
}

/** First reconnect delay of the event stream; it doubles per failure up to the cap. */
export const STREAM_RETRY_MS = 500;
/**
 * The node sends a keep-alive comment every 15 s (`sse_keepalive`): a stream silent for
 * longer than two of them belongs to a frozen or unreachable node, although its TCP
 * connection may stay open for minutes. The page then says it lost the node and reconnects.
 */
export const STREAM_SILENCE_MS = 35_000;
export const STREAM_RETRY_CAP_MS = 30_000;

/** The wait before reconnect `attempt` (1 = first), jittered by ±20 %. */
export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(STREAM_RETRY_CAP_MS, STREAM_RETRY_MS * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (0.8 + 0.4 * random()));
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A message for a 401, pointing at the way to give the dashboard its token. */
const TOKEN_NEEDED =
  'Token needed: this node protects entries and changes with its API token (LATTICE_API_TOKEN). Open the dashboard as …/#token=<token>.';

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
  const sleep = env.sleep ?? defaultSleep;
  const random = env.random ?? Math.random;
  let streaming = false;
  let connected = false;
  const silenceMs = env.silenceMs ?? STREAM_SILENCE_MS;

  /** The token goes on every request: reads of entries need it as writes do. */
  function withAuth(headers: Record<string, string>): Record<string, string> {
    const t = token();
    if (t) headers.authorization = `Bearer ${t}`;
    return headers;
  }

  /** `body` is JSON text, sent as it is. */
  async function call<T>(method: 'GET' | 'POST', path: string, body?: string): Promise<T> {
    const headers = withAuth({ accept: 'application/json' });
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await env.fetch(base + path, {
        method,
        headers,
        body,
      });
    } catch (e) {
      throw new ApiError('network', `Cannot reach the node (${e instanceof Error ? e.message : String(e)})`);
    }
    if (res.status === 401) {
      const err = await toApiError(res);
      throw new ApiError(err.kind, token() ? `${TOKEN_NEEDED} (the token given was refused)` : TOKEN_NEEDED, 401);
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

  function dispatch(ev: SseEvent): void {
    if (ev.event === 'status') {
      setConnected(true);
      const s = parse<Status>(ev.data);
      if (s) statusSubs.forEach((cb) => cb(s));
    } else if (ev.event === 'event') {
      const e = parse<NodeEvent>(ev.data);
      if (e) eventSubs.forEach((cb) => cb(e));
    }
  }

  /** Reads the stream once, until it ends or fails. */
  async function readStream(onOpen: () => void): Promise<void> {
    const res = await env.fetch(base + '/api/lattice/events', {
      method: 'GET',
      headers: withAuth({ accept: 'text/event-stream' }),
      cache: 'no-store',
    });
    if (!res.ok || !res.body) throw await toApiError(res);
    onOpen();
    setConnected(true);
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    const parser = new SseParser();
    let silent: ReturnType<typeof setTimeout> | null = null;
    let lostBySilence = false;
    const arm = () => {
      if (silent) clearTimeout(silent);
      silent = setTimeout(() => {
        lostBySilence = true;
        void reader.cancel().catch(() => {});
      }, silenceMs);
    };
    try {
      arm();
      for (;;) {
        const { done, value } = await reader.read();
        if (done || lostBySilence) break;
        arm();
        parser.push(decoder.decode(value, { stream: true })).forEach(dispatch);
      }
    } finally {
      if (silent) clearTimeout(silent);
      reader.releaseLock();
    }
  }

  /**
   * One event stream for all subscribers, opened on first use, read with `fetch` so it
   * carries the token; it reconnects with a growing, jittered delay, reset once connected.
   */
  function ensureStream(): void {
    if (streaming) return;
    streaming = true;
    void (async () => {
      let failures = 0;
      for (;;) {
        let opened = false;
        try {
          await readStream(() => {
            opened = true;
          });
        } catch {
          /* reported as disconnected below; the next attempt waits longer */
        }
        if (opened) failures = 0;
        setConnected(false);
        failures += 1;
        await sleep(backoffDelay(failures, random));
      }
    })();
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
    put: (payloadJson: string) => call<PutResult>('POST', '/api/lattice/entries', `{"payload":${payloadJson}}`),
    listEntries: (limit: number) =>
      call<EntryList>('GET', `/api/lattice/entries?limit=${Math.max(1, Math.floor(limit))}`),
    getEntry: (id: string) =>
      call<EntryWithProof>('GET', `/api/lattice/entries/${encodeURIComponent(id)}`),
    setP2pBlocked: (blocked: boolean) =>
      call<Status>('POST', blocked ? '/api/lattice/p2p/block' : '/api/lattice/p2p/unblock'),
    decidePeer: (peerId: string, accept: boolean) =>
      call<unknown>(
        'POST',
        `/api/lattice/peers/${encodeURIComponent(peerId)}/${accept ? 'accept' : 'ignore'}`,
      ),
  };
}

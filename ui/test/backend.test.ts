import { describe, expect, it, vi } from 'vitest';
import { isTauri, selectBackend } from '../src/backend';
import { ApiError } from '../src/backend/errors';
import { backoffDelay, createHttpBackend, SseParser } from '../src/backend/http';
import { createTauriBackend } from '../src/backend/tauri';
import type { Status } from '../src/backend/types';
import { fixture } from './helpers';

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}

describe('backend selection', () => {
  it('uses Tauri IPC when the app injected __TAURI_INTERNALS__, HTTP otherwise', () => {
    expect(isTauri({ __TAURI_INTERNALS__: {} })).toBe(true);
    expect(isTauri({})).toBe(false);
    const fakeWin = { fetch: vi.fn() } as unknown as Window & typeof globalThis;
    expect(selectBackend(fakeWin).kind).toBe('http');
    expect(selectBackend(fakeWin).demo).toBeUndefined();
    const tauriWin = { __TAURI_INTERNALS__: {} } as unknown as Window & typeof globalThis;
    const b = selectBackend(tauriWin);
    expect(b.kind).toBe('tauri');
    expect(b.demo).toBeDefined();
  });
});

describe('HTTP backend', () => {
  it('sends the payload text as typed, so the node can refuse what parsing would change', async () => {
    const fetch = vi.fn(async (_url: string, _init?: RequestInit) => json(201, { id: 'x', inserted: true, merkle_root: 'r', entry_count: 1 }));
    const b = createHttpBackend({ fetch: fetch as unknown as typeof globalThis.fetch, token: () => null });
    await b.put('{"a": 1, "a": 2, "n": 123456789012345678901234567890}');
    expect(fetch.mock.calls[0]![1]!.body).toBe('{"payload":{"a": 1, "a": 2, "n": 123456789012345678901234567890}}');
  });

  it('calls the documented API paths', async () => {
    const fetch = vi.fn(async (_url: string, _init?: RequestInit) => json(200, fixture()));
    const b = createHttpBackend({ fetch: fetch as unknown as typeof globalThis.fetch, token: () => null });
    await b.getStatus();
    await b.switchMode('http');
    await b.setP2pBlocked(true);
    await b.setP2pBlocked(false);
    await b.listEntries(12);
    await b.getEntry('ab'.repeat(32));
    await b.put('{"to": "acme"}');
    expect(fetch.mock.calls.map((c) => `${c[1]!.method} ${c[0]}`)).toEqual([
      'GET /api/lattice/p2p/status',
      'POST /api/lattice/sync/switch?mode=http',
      'POST /api/lattice/p2p/block',
      'POST /api/lattice/p2p/unblock',
      'GET /api/lattice/entries?limit=12',
      `GET /api/lattice/entries/${'ab'.repeat(32)}`,
      'POST /api/lattice/entries',
    ]);
    expect(JSON.parse(fetch.mock.calls[6]![1]!.body as string)).toEqual({ payload: { to: 'acme' } });
  });

  it('surfaces the node’s error message and allowed values', async () => {
    const fetch = vi.fn(async () => json(400, { error: 'invalid_mode', message: '"turbo" is not a mode; use auto, p2p or http', allowed: ['auto', 'p2p', 'http'] }));
    const b = createHttpBackend({ fetch: fetch as unknown as typeof globalThis.fetch, token: () => null });
    const err = await b.switchMode('auto').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).message).toBe('"turbo" is not a mode; use auto, p2p or http');
    expect((err as ApiError).kind).toBe('invalid_mode');
    expect((err as ApiError).status).toBe(400);
    expect((err as ApiError).allowed).toEqual(['auto', 'p2p', 'http']);
  });

  it('reports a non-JSON error body with its status', async () => {
    const fetch = vi.fn(async () => new Response('<html>Bad gateway</html>', { status: 502, statusText: 'Bad Gateway' }));
    const b = createHttpBackend({ fetch: fetch as unknown as typeof globalThis.fetch, token: () => null });
    const err = (await b.getStatus().catch((e: unknown) => e)) as ApiError;
    expect(err.kind).toBe('http_502');
    expect(err.message).toContain('502');
  });

  it('reports an unreachable node as a network error', async () => {
    const fetch = vi.fn(async () => { throw new TypeError('Failed to fetch'); });
    const b = createHttpBackend({ fetch: fetch as unknown as typeof globalThis.fetch, token: () => null });
    const err = (await b.getStatus().catch((e: unknown) => e)) as ApiError;
    expect(err.kind).toBe('network');
    expect(err.message).toContain('Failed to fetch');
  });

  it('reports a 2xx that is not JSON', async () => {
    const fetch = vi.fn(async () => new Response('ok', { status: 200 }));
    const b = createHttpBackend({ fetch: fetch as unknown as typeof globalThis.fetch, token: () => null });
    expect(((await b.getStatus().catch((e: unknown) => e)) as ApiError).kind).toBe('bad_response');
  });

  it('sends the bearer token on every request, reads and the event stream included', async () => {
    const calls: [string, RequestInit | undefined][] = [];
    const fetch = vi.fn(async (u: string, i?: RequestInit) => {
      calls.push([u, i]);
      if (u === '/api/lattice/events') return new Promise<Response>(() => {});
      return json(200, fixture());
    });
    const b = createHttpBackend({ fetch: fetch as unknown as typeof globalThis.fetch, token: () => 'sekrit-token-123456' });
    await b.getStatus();
    await b.listEntries(5);
    await b.getEntry('ab'.repeat(32));
    await b.switchMode('p2p');
    await b.put('{"a": 1}');
    await b.setP2pBlocked(true);
    b.onStatus(() => {});
    expect(calls.map((c) => c[0])).toContain('/api/lattice/events');
    expect(calls).toHaveLength(7);
    for (const [url, init] of calls) {
      expect((init!.headers as Record<string, string>).authorization, url).toBe('Bearer sekrit-token-123456');
    }
  });

  it('sends no Authorization header without a token', async () => {
    const fetch = vi.fn(async (_u: string, _i?: RequestInit) => json(200, fixture()));
    const b = createHttpBackend({ fetch: fetch as unknown as typeof globalThis.fetch, token: () => null });
    await b.listEntries(5);
    await b.put('{"a": 1}');
    for (const c of fetch.mock.calls) {
      expect((c[1]!.headers as Record<string, string>).authorization).toBeUndefined();
    }
  });

  it('says a token is needed when the node refuses to list entries without one', async () => {
    const fetch = vi.fn(async () => json(401, { error: 'unauthorized', message: 'this endpoint needs Authorization: Bearer <LATTICE_API_TOKEN>' }));
    const b = createHttpBackend({ fetch: fetch as unknown as typeof globalThis.fetch, token: () => null });
    const err = (await b.listEntries(5).catch((e: unknown) => e)) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(401);
    expect(err.kind).toBe('unauthorized');
    expect(err.message).toMatch(/^Token needed/);
    expect(err.message).toContain('#token=');
    const b2 = createHttpBackend({ fetch: fetch as unknown as typeof globalThis.fetch, token: () => 'wrong' });
    expect(((await b2.getEntry('ab').catch((e: unknown) => e)) as ApiError).message).toContain('refused');
  });

  it('reads pushed status and events from a fetch stream and reconnects with growing delays', async () => {
    const encoder = new TextEncoder();
    const sent: string[] = [
      ': keep-alive\n\nevent: sta',
      'tus\ndata: ' + JSON.stringify(fixture()) + '\r\n\r',
      '\nevent: status\ndata: {not json\n\n',
      'event: event\ndata: ' + JSON.stringify({ at_ms: 1, type: 'entry_added', id: 'a', author: 'b' }) + '\n\n',
      'event: entry\ndata: {"payload":1}\n\n',
    ];
    let opened = 0;
    const fetch = vi.fn(async (_u: string, _i?: RequestInit) => {
      opened += 1;
      if (opened === 1) {
        const body = new ReadableStream<Uint8Array>({
          start(c) {
            sent.forEach((chunk) => c.enqueue(encoder.encode(chunk)));
            c.close();
          },
        });
        return new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } });
      }
      if (opened <= 3) throw new TypeError('Failed to fetch');
      return new Promise<Response>(() => {});
    });
    const waits: number[] = [];
    let resumed: () => void = () => {};
    const allWaited = new Promise<void>((r) => (resumed = r));
    const sleep = async (ms: number) => {
      waits.push(ms);
      if (waits.length === 3) resumed();
    };
    const b = createHttpBackend({ fetch: fetch as unknown as typeof globalThis.fetch, token: () => null, sleep, random: () => 0.5 });
    const statuses: Status[] = [];
    const evs: unknown[] = [];
    const conn: boolean[] = [];
    b.onStatus((s) => statuses.push(s));
    b.onEvent((e) => evs.push(e));
    b.onConnection((c) => conn.push(c));
    await allWaited;
    expect(fetch.mock.calls[0]![0]).toBe('/api/lattice/events');
    expect(statuses).toHaveLength(1);
    expect(evs).toEqual([{ at_ms: 1, type: 'entry_added', id: 'a', author: 'b' }]);
    expect(conn).toEqual([false, true, false]);
    // The stream ended after it had connected: the first retry is quick, then it grows.
    expect(waits).toEqual([500, 1000, 2000]);
  });
});

describe('a silent event stream', () => {
  it('counts the node as lost once nothing, not even a keep-alive, arrives for the silence limit', async () => {
    const encoder = new TextEncoder();
    let opened = 0;
    const fetch = vi.fn(async () => {
      opened += 1;
      if (opened > 1) return new Promise<Response>(() => {});
      // One status, then nothing: a frozen node whose TCP connection stays open.
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(encoder.encode('event: status\ndata: ' + JSON.stringify(fixture()) + '\n\n'));
        },
      });
      return new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } });
    });
    const b = createHttpBackend({ fetch: fetch as unknown as typeof globalThis.fetch, token: () => null, sleep: async () => {}, silenceMs: 60 });
    const conn: boolean[] = [];
    b.onConnection((c) => conn.push(c));
    await vi.waitFor(() => expect(conn).toEqual([false, true, false]), { timeout: 2000 });
    await vi.waitFor(() => expect(opened).toBe(2));
  });

  it('stays connected while keep-alive comments keep arriving', async () => {
    const encoder = new TextEncoder();
    let ctrl: ReadableStreamDefaultController<Uint8Array> | null = null;
    const fetch = vi.fn(async () => new Response(new ReadableStream<Uint8Array>({
      start(c) {
        ctrl = c;
        c.enqueue(encoder.encode('event: status\ndata: ' + JSON.stringify(fixture()) + '\n\n'));
      },
    }), { status: 200, headers: { 'content-type': 'text/event-stream' } }));
    const b = createHttpBackend({ fetch: fetch as unknown as typeof globalThis.fetch, token: () => null, sleep: async () => {}, silenceMs: 200 });
    const conn: boolean[] = [];
    b.onConnection((c) => conn.push(c));
    await vi.waitFor(() => expect(conn).toEqual([false, true]));
    for (let i = 0; i < 6; i++) {
      await new Promise((r) => setTimeout(r, 60));
      ctrl!.enqueue(encoder.encode(': keep-alive\n\n'));
    }
    expect(conn).toEqual([false, true]);
    expect(fetch).toHaveBeenCalledTimes(1);
  });
});

describe('SSE parser', () => {
  it('joins multi-line data, ignores comments and unknown fields, and keeps id and retry', () => {
    const p = new SseParser();
    expect(p.push(': hello\nfoo: bar\ndata: a\ndata:b\nid: 7\nretry: 1500\n\n')).toEqual([
      { event: 'message', data: 'a\nb', id: '7', retry: 1500 },
    ]);
  });

  it('completes events split anywhere, with LF, CR or CRLF line ends and a leading BOM', () => {
    const text = '\ufeffevent: status\r\ndata: {"x":1}\r\n\r\nevent: event\rdata: 2\r\rdata: 3\n\n';
    const whole = new SseParser().push(text);
    expect(whole).toEqual([
      { event: 'status', data: '{"x":1}' },
      { event: 'event', data: '2' },
      { event: 'message', data: '3' },
    ]);
    for (let cut = 1; cut < text.length; cut++) {
      const p = new SseParser();
      expect([...p.push(text.slice(0, cut)), ...p.push(text.slice(cut))], `cut at ${cut}`).toEqual(whole);
    }
  });

  it('dispatches nothing for a block without data, and keeps the last id across events', () => {
    const p = new SseParser();
    expect(p.push('event: status\n\nid: 1\n\ndata: x\n\n')).toEqual([{ event: 'message', data: 'x', id: '1' }]);
  });
});

describe('reconnect backoff', () => {
  it('doubles from 500 ms to a 30 s cap, jittered by at most 20 %', () => {
    expect([1, 2, 3, 4].map((a) => backoffDelay(a, () => 0.5))).toEqual([500, 1000, 2000, 4000]);
    expect(backoffDelay(20, () => 0.5)).toBe(30_000);
    expect(backoffDelay(1, () => 0)).toBe(400);
    expect(backoffDelay(1, () => 0.999999)).toBe(600);
  });
});

describe('Tauri backend', () => {
  it('invokes the app commands with camelCase args and listens to lattice:// events', async () => {
    const inv = vi.fn(async () => ({}));
    const lis = vi.fn(async () => () => {});
    const b = createTauriBackend(inv as never, lis as never);
    await b.getStatus();
    await b.switchMode('http');
    await b.put('{"a": 1}');
    await b.listEntries(5);
    await b.getEntry('id');
    await b.setP2pBlocked(true);
    await b.demo!.start(4);
    await b.demo!.cut();
    await b.demo!.restore();
    await b.demo!.stop();
    await b.demo!.status();
    expect(inv.mock.calls).toEqual([
      ['status', undefined],
      ['switch_mode', { mode: 'http' }],
      ['put_entry', { payload: '{"a": 1}' }],
      ['list_entries', { limit: 5 }],
      ['get_entry', { id: 'id' }],
      ['set_p2p_blocked', { blocked: true }],
      ['demo_start', { nodes: 4 }],
      ['demo_cut', undefined],
      ['demo_restore', undefined],
      ['demo_stop', undefined],
      ['demo_status', undefined],
    ]);
    b.onStatus(() => {});
    b.onEvent(() => {});
    expect((lis.mock.calls as unknown as [string][]).map((c) => c[0])).toEqual(['lattice://status', 'lattice://event', 'log://log']);
  });

  it('shows the node log lines the log plugin forwards, warnings as warnings', () => {
    const handlers: Record<string, (e: { payload: unknown }) => void> = {};
    const lis = vi.fn(async (name: string, cb: (e: { payload: unknown }) => void) => {
      handlers[name] = cb;
      return () => {};
    });
    const b = createTauriBackend(vi.fn() as never, lis as never);
    const seen: unknown[] = [];
    b.onEvent((e) => seen.push(e));
    handlers['log://log']!({ payload: { level: 3, message: '[P2P_HEARTBEAT] HTTP Sync Fallback activated' } });
    handlers['log://log']!({ payload: { level: 4, message: 'neighbour down' } });
    handlers['log://log']!({ payload: { level: 2, message: 'debug noise' } });
    expect(seen).toMatchObject([
      { type: 'log', level: 'info', message: '[P2P_HEARTBEAT] HTTP Sync Fallback activated' },
      { type: 'log', level: 'warn', message: 'neighbour down' },
    ]);
  });

  it('turns IPC errors, in the shape HTTP sends, into the same ApiErrors', async () => {
    const inv = vi.fn(async () => {
      throw { error: 'invalid_mode', message: '"turbo" is not a mode; use auto, p2p or http', allowed: ['auto', 'p2p', 'http'] };
    });
    const b = createTauriBackend(inv as never, vi.fn() as never);
    const err = (await b.switchMode('auto').catch((e: unknown) => e)) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect(err.kind).toBe('invalid_mode');
    expect(err.message).toBe('"turbo" is not a mode; use auto, p2p or http');
    expect(err.allowed).toEqual(['auto', 'p2p', 'http']);
  });
});

import { describe, expect, it, vi } from 'vitest';
import { isTauri, selectBackend } from '../src/backend';
import { ApiError } from '../src/backend/errors';
import { createHttpBackend } from '../src/backend/http';
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
    const fakeWin = { fetch: vi.fn(), EventSource: undefined } as unknown as Window & typeof globalThis;
    expect(selectBackend(fakeWin).kind).toBe('http');
    expect(selectBackend(fakeWin).demo).toBeUndefined();
    const tauriWin = { __TAURI_INTERNALS__: {} } as unknown as Window & typeof globalThis;
    const b = selectBackend(tauriWin);
    expect(b.kind).toBe('tauri');
    expect(b.demo).toBeDefined();
  });
});

describe('HTTP backend', () => {
  it('calls the documented API paths', async () => {
    const fetch = vi.fn(async (_url: string, _init?: RequestInit) => json(200, fixture()));
    const b = createHttpBackend({ fetch: fetch as unknown as typeof globalThis.fetch, token: () => null });
    await b.getStatus();
    await b.switchMode('http');
    await b.setP2pBlocked(true);
    await b.setP2pBlocked(false);
    await b.listEntries(12);
    await b.getEntry('ab'.repeat(32));
    await b.put({ to: 'acme' });
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

  it('sends the bearer token on POSTs only', async () => {
    const fetch = vi.fn(async (_u: string, _i?: RequestInit) => json(200, fixture()));
    const b = createHttpBackend({ fetch: fetch as unknown as typeof globalThis.fetch, token: () => 'sekrit-token-123456' });
    await b.getStatus();
    await b.switchMode('p2p');
    const h0 = fetch.mock.calls[0]![1]!.headers as Record<string, string>;
    const h1 = fetch.mock.calls[1]![1]!.headers as Record<string, string>;
    expect(h0.authorization).toBeUndefined();
    expect(h1.authorization).toBe('Bearer sekrit-token-123456');
  });

  it('receives pushed status and events over one EventSource', () => {
    const instances: FakeES[] = [];
    class FakeES {
      listeners = new Map<string, ((e: MessageEvent) => void)[]>();
      constructor(readonly url: string) {
        instances.push(this);
      }
      addEventListener(name: string, cb: (e: MessageEvent) => void) {
        this.listeners.set(name, [...(this.listeners.get(name) ?? []), cb]);
      }
      emit(name: string, data?: string) {
        this.listeners.get(name)?.forEach((cb) => cb({ data } as MessageEvent));
      }
    }
    const b = createHttpBackend({ fetch: vi.fn() as unknown as typeof globalThis.fetch, EventSource: FakeES as unknown as typeof EventSource });
    const statuses: Status[] = [];
    const conn: boolean[] = [];
    b.onStatus((s) => statuses.push(s));
    const evs: unknown[] = [];
    b.onEvent((e) => evs.push(e));
    b.onConnection((c) => conn.push(c));
    expect(instances).toHaveLength(1);
    expect(instances[0]!.url).toBe('/api/lattice/events');
    instances[0]!.emit('open');
    instances[0]!.emit('status', JSON.stringify(fixture()));
    instances[0]!.emit('status', '{not json');
    instances[0]!.emit('event', JSON.stringify({ at_ms: 1, type: 'entry_added', id: 'a', author: 'b' }));
    instances[0]!.emit('error');
    expect(statuses).toHaveLength(1);
    expect(evs).toHaveLength(1);
    expect(conn).toEqual([false, true, false]);
  });
});

describe('Tauri backend', () => {
  it('invokes the app commands with camelCase args and listens to lattice:// events', async () => {
    const inv = vi.fn(async () => ({}));
    const lis = vi.fn(async () => () => {});
    const b = createTauriBackend(inv as never, lis as never);
    await b.getStatus();
    await b.switchMode('http');
    await b.put({ a: 1 });
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
      ['put_entry', { payload: { a: 1 } }],
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

  it('turns IPC {kind, message} errors into ApiErrors', async () => {
    const inv = vi.fn(async () => { throw { kind: 'invalid_mode', message: 'no such mode' }; });
    const b = createTauriBackend(inv as never, vi.fn() as never);
    const err = (await b.switchMode('auto').catch((e: unknown) => e)) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect(err.kind).toBe('invalid_mode');
    expect(err.message).toBe('no such mode');
  });
});

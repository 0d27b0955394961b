import { vi } from 'vitest';
import { createApp, type AppOptions } from '../src/app';
import type { Backend, FallbackPhase, HttpState, P2pState, Status, SyncState } from '../src/backend/types';
import sample from './fixtures/status.json';

/**
 * A fresh deep copy of a real snapshot of "Branch A" in a 4-node demo cluster: 3 P2P
 * peers that are also its 3 HTTP neighbours (same PeerIds, named Branch B–D), all roots
 * equal, P2P carrying, HTTP on standby.
 */
export function fixture(patch: Partial<Status> = {}): Status {
  return { ...(structuredClone(sample) as Status), ...patch };
}

/**
 * The fixture with the core's states set as given, with reasons that are not what a view
 * could make up: a test then proves the view shows the core's words, not its own.
 */
export function withStates(p2p: P2pState, http: HttpState, sync: SyncState, phase: FallbackPhase, patch: Partial<Status> = {}): Status {
  return fixture({
    p2p_state: p2p,
    p2p_reason: `core says P2P ${p2p}`,
    http_state: http,
    http_reason: `core says HTTP ${http}`,
    sync_state: sync,
    sync_reason: `core says sync ${sync}`,
    fallback_phase: phase,
    ...patch,
  });
}

export function fakeBackend(over: Partial<Backend> = {}): Backend {
  return {
    kind: 'http',
    getStatus: vi.fn(async () => fixture()),
    onStatus: vi.fn(() => () => {}),
    onEvent: vi.fn(() => () => {}),
    onConnection: vi.fn(() => () => {}),
    switchMode: vi.fn(async (mode) => fixture({ mode })),
    put: vi.fn(),
    listEntries: vi.fn(async () => ({ entries: [], entry_count: 0 })),
    getEntry: vi.fn(),
    setP2pBlocked: vi.fn(async (blocked) => fixture({ p2p_blocked: blocked })),
    ...over,
  } as Backend;
}

/** A backend whose pushes, events and connection changes the test drives. */
export function drivenBackend(over: Partial<Backend> = {}) {
  let push: (s: Status) => void = () => {};
  let connect: (c: boolean) => void = () => {};
  let emit: (e: Parameters<Parameters<Backend['onEvent']>[0]>[0]) => void = () => {};
  const backend = fakeBackend({
    getStatus: vi.fn(() => new Promise<Status>(() => {})),
    onStatus: vi.fn((cb) => ((push = cb), () => {})),
    onEvent: vi.fn((cb) => ((emit = cb), () => {})),
    onConnection: vi.fn((cb) => ((connect = cb), () => {})),
    ...over,
  });
  return {
    backend,
    push: (s: Status) => push(s),
    connect: (c: boolean) => connect(c),
    emit: (e: Parameters<Parameters<Backend['onEvent']>[0]>[0]) => emit(e),
  };
}

/** `data-value` and text of the one element carrying `data-field=name`. */
export function shown(root: ParentNode, name: string): { value: string | null; text: string } {
  const all = root.querySelectorAll(`[data-field="${name}"]`);
  if (all.length !== 1) throw new Error(`expected exactly one [data-field="${name}"], found ${all.length}`);
  const el = all[0]!;
  return { value: el.getAttribute('data-value'), text: (el.textContent ?? '').trim() };
}

const mounted: ReturnType<typeof createApp>[] = [];

/**
 * `createApp`, remembered so that `stopApps` (each file's `afterEach`) unmounts it: a timer
 * of one test (the entry list's 400 ms refresh, the UI clock) must not fire into the next
 * one, or after the file's DOM is gone.
 */
export function mountApp(root: HTMLElement, backend: Backend, opts?: AppOptions): ReturnType<typeof createApp> {
  const app = createApp(root, backend, opts);
  mounted.push(app);
  return app;
}

export function stopApps(): void {
  for (const app of mounted.splice(0)) app.stop();
}

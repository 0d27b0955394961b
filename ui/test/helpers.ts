import { vi } from 'vitest';
import type { Backend, Status } from '../src/backend/types';
import sample from './fixtures/status.json';

/** A fresh deep copy of the real status snapshot (2 P2P peers, 2 neighbours). */
export function fixture(patch: Partial<Status> = {}): Status {
  return { ...(structuredClone(sample) as Status), ...patch };
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

import { invoke } from '@tauri-apps/api/core';
import { listen, type UnlistenFn } from '@tauri-apps/api/event';
import { ApiError } from './errors';
import type {
  Backend,
  DemoStatus,
  EntryList,
  EntryWithProof,
  Mode,
  NodeEvent,
  PutResult,
  SampleWritten,
  Status,
  Unsubscribe,
} from './types';

export type InvokeFn = <T>(cmd: string, args?: Record<string, unknown>) => Promise<T>;
export type ListenFn = <T>(event: string, cb: (e: { payload: T }) => void) => Promise<UnlistenFn>;

/** Errors cross IPC in the shape HTTP sends them, `{error, message, allowed?}`: the same
 * ApiError either way. */
function wrapIpcError(e: unknown): ApiError {
  if (e && typeof e === 'object' && 'message' in e) {
    const o = e as { error?: unknown; message?: unknown; allowed?: unknown };
    const allowed = Array.isArray(o.allowed) ? o.allowed.map(String) : undefined;
    return new ApiError(typeof o.error === 'string' ? o.error : 'ipc', String(o.message), undefined, allowed);
  }
  return new ApiError('ipc', typeof e === 'string' ? e : 'The app backend failed');
}

/** The Tauri IPC transport, inside the desktop app. */
export function createTauriBackend(
  inv: InvokeFn = invoke as InvokeFn,
  lis: ListenFn = listen as ListenFn,
): Backend {
  async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
    try {
      return await inv<T>(cmd, args);
    } catch (e) {
      throw wrapIpcError(e);
    }
  }

  function subscribe<T>(event: string, cb: (p: T) => void): Unsubscribe {
    let closed = false;
    let un: UnlistenFn | null = null;
    lis<T>(event, (e) => {
      if (!closed) cb(e.payload);
    })
      .then((u) => {
        if (closed) u();
        else un = u;
      })
      .catch(() => {
        /* no event bridge: nothing to unsubscribe */
      });
    return () => {
      closed = true;
      un?.();
    };
  }

  return {
    kind: 'tauri',
    getStatus: () => call<Status>('status'),
    onStatus: (cb) => subscribe<Status>('lattice://status', cb),
    onEvent: (cb) => {
      const events = subscribe<NodeEvent>('lattice://event', cb);
      // tauri-plugin-log forwards the node's log lines; levels 1..5 = trace..error.
      const logs = subscribe<{ level: number; message: string }>('log://log', (l) => {
        if (l.level < 3) return;
        const level = l.level >= 5 ? 'error' : l.level === 4 ? 'warn' : 'info';
        cb({ at_ms: Date.now(), type: 'log', level, message: l.message });
      });
      return () => {
        events();
        logs();
      };
    },
    onConnection: (cb) => {
      cb(true);
      return () => {};
    },
    switchMode: (mode: Mode) => call<Status>('switch_mode', { mode }),
    put: (payloadJson: string) => call<PutResult>('put_entry', { payload: payloadJson }),
    listEntries: (limit: number) => call<EntryList>('list_entries', { limit }),
    getEntry: (id: string) => call<EntryWithProof>('get_entry', { id }),
    setP2pBlocked: (blocked: boolean) => call<Status>('set_p2p_blocked', { blocked }),
    decidePeer: (peerId: string, accept: boolean) => call<Status>('decide_peer', { peerId, accept }),
    demo: {
      start: (nodes: number) => call<unknown>('demo_start', { nodes }),
      cut: () => call<unknown>('demo_cut'),
      restore: () => call<unknown>('demo_restore'),
      stop: () => call<unknown>('demo_stop'),
      status: () => call<DemoStatus>('demo_status'),
      focus: (index: number | null) => call<Status>('focus_node', { index }),
      traffic: (on: boolean) => call<DemoStatus>('demo_traffic', { on }),
      sample: () => call<SampleWritten>('demo_sample'),
    },
  };
}

import type { Status } from './backend/types';
import { clockSkew } from './countdown';
import { linksAttr, machines } from './machines';

/** The latest snapshot, when it arrived, and the node's clock minus ours (estimated). */
export interface Snapshot {
  status: Status;
  receivedAt: number;
  skew: number;
}

/** `seq` is the node's own snapshot counter (newer nodes send it; older ones do not). */
type Sequenced = Status & { seq?: number | null };

/** One snapshot offered to the store, as the debug trace (`?debug=snapshots`) keeps it. */
export interface TraceRow {
  /** Our clock when it was offered. */
  at: number;
  source: string;
  applied: boolean;
  seq: number | null;
  now_ms: number;
  p2p_state: string;
  http_state: string;
  sync_state: string;
  fallback_phase: string;
  peer_count: number;
  entry_count: number;
  /** The other machines, `<last 4 of the id>:<links>:<agreement>`. */
  machines: string;
}

/** The trace keeps the last rows only: a page left open for a day must not grow forever. */
const TRACE_MAX = 5000;

/** One run of one node: a restart starts its `seq` again, so it counts as another node. */
function nodeKey(s: Status): string {
  return `${s.node.peer_id}@${s.node.started_at_ms}`;
}

/** Whether `next` is older than `held`, both from the same run of the same node. */
function isOlder(next: Sequenced, held: Sequenced): boolean {
  if (typeof next.seq === 'number' && typeof held.seq === 'number') return next.seq < held.seq;
  return next.now_ms < held.now_ms;
}

/**
 * Holds the last Status of the node the window watches, nothing more: views render from it
 * and never keep their own copy of node state. The store is keyed by the node (its PeerId
 * and start time): a snapshot of another node replaces what it holds at once, whatever its
 * clock says, because an idle node's `now_ms` only moves when one of its fields changes.
 * Within one node, snapshots are ordered by the node's `seq` (by `now_ms` when a snapshot
 * has none), so a slow answer to a request cannot overwrite a newer pushed snapshot.
 */
export class StatusStore {
  private snap: Snapshot | null = null;
  private subs = new Set<(s: Snapshot) => void>();
  /** Every snapshot offered (applied or dropped), when a debug trace was asked for. */
  readonly trace: TraceRow[] | null;

  constructor(private now: () => number = () => Date.now(), opts: { trace?: boolean } = {}) {
    this.trace = opts.trace ? [] : null;
  }

  get current(): Snapshot | null {
    return this.snap;
  }

  /** `source` names where the snapshot came from, for the debug trace only. */
  set(status: Status, source = 'other'): void {
    const held = this.snap?.status;
    const same = !!held && nodeKey(held) === nodeKey(status);
    const dropped = same && isOlder(status, held!);
    if (this.trace) this.traceRow(status, source, dropped);
    if (dropped) return;
    const receivedAt = this.now();
    // A snapshot is as old as the last change of an idle node, so `now_ms` can only be
    // behind the node's clock: the largest skew seen over the node's run is the best
    // estimate, and a seemingly slow node clock is taken for an old snapshot (skew 0).
    // Otherwise a node idle for 20 minutes would look 20 minutes behind, and "for 0 s"
    // and "checked 0 s ago" would be shown forever.
    const seen = clockSkew(status.now_ms, receivedAt);
    const skew = Math.max(0, seen, same ? this.snap!.skew : 0);
    this.snap = { status, receivedAt, skew };
    this.subs.forEach((cb) => cb(this.snap!));
  }

  private traceRow(s: Sequenced, source: string, dropped: boolean): void {
    const t = this.trace!;
    t.push({ at: this.now(), source, applied: !dropped, seq: s.seq ?? null, now_ms: s.now_ms,
      p2p_state: s.p2p_state, http_state: s.http_state, sync_state: s.sync_state, fallback_phase: s.fallback_phase,
      peer_count: s.peer_count, entry_count: s.entry_count,
      machines: machines(s).map((m) => `${m.key.slice(-4)}:${linksAttr(m)}:${m.agreement}`).join(' ') });
    if (t.length > TRACE_MAX) t.splice(0, t.length - TRACE_MAX);
  }

  subscribe(cb: (s: Snapshot) => void): () => void {
    this.subs.add(cb);
    if (this.snap) cb(this.snap);
    return () => this.subs.delete(cb);
  }
}

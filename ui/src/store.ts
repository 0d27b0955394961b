import type { Status } from './backend/types';
import { clockSkew } from './countdown';

/** The latest snapshot and the clock skew measured when it arrived. */
export interface Snapshot {
  status: Status;
  receivedAt: number;
  skew: number;
}

/** `seq` is the node's own snapshot counter (newer nodes send it; older ones do not). */
type Sequenced = Status & { seq?: number | null };

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

  constructor(private now: () => number = () => Date.now()) {}

  get current(): Snapshot | null {
    return this.snap;
  }

  set(status: Status): void {
    const held = this.snap?.status;
    if (held && nodeKey(held) === nodeKey(status) && isOlder(status, held)) return;
    const receivedAt = this.now();
    this.snap = { status, receivedAt, skew: clockSkew(status.now_ms, receivedAt) };
    this.subs.forEach((cb) => cb(this.snap!));
  }

  subscribe(cb: (s: Snapshot) => void): () => void {
    this.subs.add(cb);
    if (this.snap) cb(this.snap);
    return () => this.subs.delete(cb);
  }
}

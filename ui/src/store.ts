import type { Status } from './backend/types';
import { clockSkew } from './countdown';

/** The latest snapshot and the clock skew measured when it arrived. */
export interface Snapshot {
  status: Status;
  receivedAt: number;
  skew: number;
}

/**
 * Holds the last Status the node sent, nothing more: views render from it and never keep
 * their own copy of node state. Older snapshots (by node clock) are ignored, so a slow
 * response to a request cannot overwrite a newer pushed snapshot.
 */
export class StatusStore {
  private snap: Snapshot | null = null;
  private subs = new Set<(s: Snapshot) => void>();

  constructor(private now: () => number = () => Date.now()) {}

  get current(): Snapshot | null {
    return this.snap;
  }

  set(status: Status): void {
    if (this.snap && status.now_ms < this.snap.status.now_ms) return;
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

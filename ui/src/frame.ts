import type { Status } from './backend/types';
import type { Snapshot } from './store';

/**
 * What every view renders: the watched node's last snapshot, the time now (ours and the
 * node's, from the skew measured when the snapshot arrived), and whether the face still
 * receives the node. Built once per render (a new snapshot, a connection change, or the
 * 1 s UI clock), so every relative time on screen is as of the same instant.
 */
export interface Frame {
  status: Status;
  skew: number;
  receivedAt: number;
  /** Our clock (unix ms). */
  now: number;
  /** The node's clock now: `now + skew`. */
  nodeNow: number;
  /** The face lost its node: values are frozen as of `receivedAt`. */
  lost: boolean;
}

export function frameOf(snap: Snapshot, now: number, lost: boolean): Frame {
  return { status: snap.status, skew: snap.skew, receivedAt: snap.receivedAt, now, nodeNow: now + snap.skew, lost };
}

/** The attributes CONTRACT.md asks of an element that shows one status field. */
export function field(el: Element, name: string, value: string | number | boolean): void {
  if (el.getAttribute('data-field') !== name) el.setAttribute('data-field', name);
  const v = String(value);
  if (el.getAttribute('data-value') !== v) el.setAttribute('data-value', v);
}

/** Marks an element stale (faded, and saying how old) or fresh. */
export function markStale(el: Element, stale: boolean): void {
  if (stale) el.setAttribute('data-stale', 'true');
  else el.removeAttribute('data-stale');
}

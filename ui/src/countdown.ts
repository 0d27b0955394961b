/**
 * The fallback countdown, computed from the deadline the node sends. The node's clock and
 * ours differ; `skew` = node now - our now at the moment a snapshot arrived, so the node's
 * "now" at any later local instant is `localNow + skew`.
 */

export function clockSkew(nodeNowMs: number, receivedAtLocalMs: number): number {
  return nodeNowMs - receivedAtLocalMs;
}

/** Milliseconds left before the HTTP fallback, clamped to [0, total]. */
export function remainingMs(deadlineMs: number, localNowMs: number, skewMs: number, totalMs: number): number {
  const left = deadlineMs - (localNowMs + skewMs);
  return Math.min(Math.max(left, 0), Math.max(totalMs, 0));
}

/** Fraction of the ring still to run, 1 = just started, 0 = deadline reached. */
export function remainingFraction(remaining: number, totalMs: number): number {
  if (totalMs <= 0) return 0;
  return Math.min(Math.max(remaining / totalMs, 0), 1);
}

/** "5.3 s" below 10 s, "42 s" below a minute, "1:05" beyond. Fixed shape per range. */
export function formatCountdown(ms: number): string {
  if (ms < 10_000) return `${(Math.floor(ms / 100) / 10).toFixed(1)} s`;
  const s = Math.ceil(ms / 1000);
  if (s < 60) return `${s} s`;
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

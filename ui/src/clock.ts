/**
 * The UI's 1 s clock: the only thing that re-renders relative times ("checked 40 s ago")
 * and staleness between snapshots. A node republishes only when something changes, so a
 * view that waited for the next snapshot would keep saying "2 s ago" forever.
 */
export const UI_CLOCK_MS = 1000;

export function startClock(tick: () => void, every = UI_CLOCK_MS): () => void {
  const id = setInterval(tick, every);
  return () => clearInterval(id);
}

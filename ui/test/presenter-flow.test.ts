import { describe, expect, it } from 'vitest';
import type { EntriesByLung, Status } from '../src/backend/types';
import { FlowSeries, createFlowChart, perSecond } from '../src/views/flow';
import { fixture } from './helpers';

const T0 = 1_700_000_000_000;

function snap(now_ms: number, p2p: [number, number], http: [number, number], patch: Partial<Status> = {}): Status {
  const entries_by_lung: EntriesByLung = { p2p: { received: p2p[0], sent: p2p[1] }, http: { received: http[0], sent: http[1] } };
  return fixture({ now_ms, entries_by_lung, ...patch });
}

describe('the entries-flow series', () => {
  it('charts what each lung carried between snapshots, not the totals from before it watched', () => {
    const f = new FlowSeries(5_000, 60_000);
    expect(f.add(snap(T0, [100, 40], [7, 0]))).toBeNull(); // baseline only
    expect(f.add(snap(T0 + 1_000, [103, 41], [7, 0]))).toEqual({ at_ms: T0 + 1_000, p2p: 4, http: 0 });
    f.add(snap(T0 + 11_000, [103, 41], [9, 1]));
    const series = f.series(T0 + 12_000);
    expect(series).toHaveLength(12);
    const nonEmpty = series.filter((b) => b.p2p || b.http);
    expect(nonEmpty).toEqual([
      { start_ms: Math.floor((T0 + 1_000) / 5_000) * 5_000, p2p: 4, http: 0 },
      { start_ms: Math.floor((T0 + 11_000) / 5_000) * 5_000, p2p: 0, http: 3 },
    ]);
  });

  it('starts afresh for another node or a restart, and forgets what left the window', () => {
    const f = new FlowSeries(5_000, 30_000);
    f.add(snap(T0, [0, 0], [0, 0]));
    f.add(snap(T0 + 1_000, [5, 0], [0, 0]));
    const other = fixture().node;
    const b = snap(T0 + 2_000, [50, 0], [50, 0], { node: { ...other, peer_id: 'someone-else' } });
    expect(f.add(b)).toBeNull();
    expect(f.series(T0 + 2_000).every((x) => x.p2p === 0 && x.http === 0)).toBe(true);
    f.add(snap(T0 + 3_000, [50, 0], [53, 0], { node: b.node }));
    expect(f.series(T0 + 3_000).some((x) => x.http === 3)).toBe(true);
    expect(f.series(T0 + 3_000 + 60_000).every((x) => x.http === 0)).toBe(true);
  });

  it('ignores a snapshot whose counters went backwards and a node that sends none', () => {
    const f = new FlowSeries();
    f.add(snap(T0, [10, 0], [0, 0]));
    expect(f.add(snap(T0 + 1, [8, 0], [0, 0]))).toBeNull();
    expect(f.add({ ...fixture(), entries_by_lung: undefined } as unknown as Status)).toBeNull();
  });

  it('says rates per second', () => {
    expect(perSecond(12, 5_000)).toBe('2.4');
    expect(perSecond(10, 5_000)).toBe('2');
    expect(perSecond(0, 5_000)).toBe('0');
  });
});

describe('the entries-flow chart', () => {
  it('draws a P2P bar below an HTTP bar and names the last complete rate of each lung', () => {
    let now = T0 + 11_000;
    const chart = createFlowChart(() => now);
    chart.update(snap(T0, [0, 0], [0, 0]));
    chart.update(snap(T0 + 6_000, [10, 0], [0, 0]));
    chart.update(snap(T0 + 7_000, [10, 0], [5, 0]));
    now = T0 + 11_000; // the bucket of T0+5..10 s is complete
    chart.render();
    const p2p = chart.el.querySelectorAll('.flow__bar--p2p');
    const http = chart.el.querySelectorAll('.flow__bar--http');
    expect(p2p).toHaveLength(1);
    expect(http).toHaveLength(1);
    const y = (e: Element) => Number(e.getAttribute('y'));
    expect(y(http[0]!)).toBeLessThan(y(p2p[0]!));
    expect(chart.el.getAttribute('data-flow-p2p')).toBe('2');
    expect(chart.el.getAttribute('data-flow-http')).toBe('1');
    expect(chart.el.textContent).toContain('P2P 2/s');
    expect(chart.el.textContent).toContain('HTTP 1/s');
    chart.destroy();
  });

  it('tells listeners what each snapshot added, for pulses on the lung that carried it', () => {
    const chart = createFlowChart(() => T0);
    const seen: unknown[] = [];
    chart.onDelta((d) => seen.push(d));
    chart.update(snap(T0, [0, 0], [0, 0]));
    chart.update(snap(T0 + 500, [0, 0], [2, 1]));
    expect(seen).toEqual([{ at_ms: T0 + 500, p2p: 0, http: 3 }]);
    chart.destroy();
  });
});

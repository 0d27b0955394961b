import { afterEach, describe, expect, it, vi } from 'vitest';
import type { CutCounter, DemoStatus, Status } from '../src/backend/types';
import { clock } from '../src/format';
import { createDemoPanel, cutCounterText } from '../src/views/demo';
import { fixture } from './helpers';

const T0 = 1_700_000_000_000;

function demoStatus(patch: Partial<DemoStatus> & { blocked?: boolean[] } = {}): DemoStatus {
  const st = fixture();
  const blocked = patch.blocked ?? [false, false];
  return {
    running: true,
    focus: 0,
    nodes: blocked.map((b, i) => ({ name: `Branch ${'AB'[i]}`, url: `http://127.0.0.1:${i + 1}/`, peer_id: `peer-${i}`, status: { ...st, p2p_blocked: b } as Status })),
    traffic: { on: false, per_second: 3, written: 0, max_entries: 3600 },
    cut: null,
    ...patch,
  };
}

function controls(first: DemoStatus) {
  let current = first;
  return {
    set: (d: DemoStatus) => (current = d),
    demo: {
      start: vi.fn(async () => current),
      cut: vi.fn(async () => current),
      restore: vi.fn(async () => current),
      stop: vi.fn(async () => current),
      focus: vi.fn(async () => ({})),
      status: vi.fn(async () => current),
      traffic: vi.fn(async (on: boolean) => (current = { ...current, traffic: { ...current.traffic!, on } })),
      sample: vi.fn(async () => ({ node: 'Branch A', peer_id: 'peer-0', id: 'a'.repeat(64), entry_count: 2 })),
    },
  };
}

const button = (bar: HTMLElement, action: string) => bar.querySelector(`[data-action="${action}"]`) as HTMLButtonElement;
let panels: ReturnType<typeof createDemoPanel>[] = [];
afterEach(() => {
  panels.forEach((p) => (p.shortcuts.destroy(), p.flow.destroy()));
  panels = [];
});

describe('the presenter bar', () => {
  it('enables each button only when it makes sense', async () => {
    const c = controls({ running: false, focus: null, nodes: [] });
    const p = createDemoPanel(c.demo, vi.fn());
    panels.push(p);
    await p.refreshNow();
    const state = () => ['demo-start', 'demo-cut', 'demo-restore', 'demo-sample', 'demo-traffic', 'demo-stop', 'demo-watch-own'].map((a) => !button(p.bar, a).disabled);
    expect(state()).toEqual([true, false, false, false, false, false, false]);
    c.set(demoStatus());
    await p.refreshNow();
    expect(state()).toEqual([false, true, false, true, true, true, true]);
    c.set(demoStatus({ blocked: [true, true] }));
    await p.refreshNow();
    expect(state()).toEqual([false, false, true, true, true, true, true]);
    c.set(demoStatus({ blocked: [true, false] }));
    await p.refreshNow();
    expect(state().slice(1, 3)).toEqual([true, true]);
  });

  it('switches traffic to the opposite of what it shows, and says so', async () => {
    const c = controls(demoStatus());
    const p = createDemoPanel(c.demo, vi.fn());
    panels.push(p);
    await p.refreshNow();
    const t = button(p.bar, 'demo-traffic');
    expect(t.getAttribute('aria-pressed')).toBe('false');
    expect(t.textContent).toBe('Traffic off');
    t.click();
    await vi.waitFor(() => expect(t.getAttribute('aria-pressed')).toBe('true'));
    expect(c.demo.traffic).toHaveBeenLastCalledWith(true);
    expect(t.textContent).toBe('Traffic on · 3/s');
    t.click();
    await vi.waitFor(() => expect(c.demo.traffic).toHaveBeenLastCalledWith(false));
  });

  it('a sample write is passed on for the graph, and the T and W keys press their buttons', async () => {
    const c = controls(demoStatus());
    const onWrite = vi.fn();
    const p = createDemoPanel(c.demo, vi.fn(), () => {}, undefined, { onWrite });
    panels.push(p);
    await p.refreshNow();
    document.body.dispatchEvent(new KeyboardEvent('keydown', { key: 'w', bubbles: true }));
    await vi.waitFor(() => expect(onWrite).toHaveBeenCalledWith(expect.objectContaining({ peer_id: 'peer-0' })));
    document.body.dispatchEvent(new KeyboardEvent('keydown', { key: 't', bubbles: true }));
    await vi.waitFor(() => expect(c.demo.traffic).toHaveBeenCalledWith(true));
  });

  it('shows the cut counter large while a cut runs and after it, hidden before the first cut', async () => {
    const counter: CutCounter = { since_ms: T0, restored_ms: null, written: 12, on_every_node: 11, least_delivered: 3, nodes: 4 };
    const c = controls(demoStatus({ blocked: [true, true] }));
    const p = createDemoPanel(c.demo, vi.fn());
    panels.push(p);
    await p.refreshNow();
    const el = p.bar.querySelector('[data-field="presenter-cut-counter"]')!;
    expect(el.hasAttribute('hidden')).toBe(true);
    c.set(demoStatus({ blocked: [true, true], cut: counter }));
    await p.refreshNow();
    expect(el.hasAttribute('hidden')).toBe(false);
    expect(el.textContent).toContain('Written during the cut: 12 · delivered to 3 of 4 nodes');
    expect(el.textContent).toContain('11 of 12 on every node so far');
    expect(el.getAttribute('data-delivered')).toBe('3');
    expect(el.classList.contains('cut-counter--warn')).toBe(true);
  });
});

describe('the cut counter in words', () => {
  it('says how far the cut entries got, and when the cut ran once it is over', () => {
    const done = cutCounterText({ since_ms: T0, restored_ms: T0 + 40_000, written: 12, on_every_node: 12, least_delivered: 4, nodes: 4 });
    expect(done.text).toBe('Written during the cut: 12 · delivered to 4 of 4 nodes');
    expect(done.detail).toBe(`cut ${clock(T0)}–${clock(T0 + 40_000)} · all 12 on every node`);
    expect(done.tone).toBe('ok');
    // Nothing written: no delivery is claimed ("delivered to 4 of 4 nodes" of nothing).
    const none = cutCounterText({ since_ms: T0, restored_ms: null, written: 0, on_every_node: 0, least_delivered: 4, nodes: 4 });
    expect(none.text).toBe('Written during the cut: nothing yet');
    expect(none.detail).toBe(`cut since ${clock(T0)}`);
  });
});

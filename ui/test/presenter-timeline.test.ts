import { describe, expect, it } from 'vitest';
import type { Status, TransitionRecord } from '../src/backend/types';
import { clock } from '../src/format';
import { buildTimeline, createTimeline } from '../src/views/timeline';
import { fixture } from './helpers';

const T0 = 1_700_000_000_000;
const cut: TransitionRecord = { at_ms: T0, kind: 'operator', action: 'p2p_cut', mode: null, by: 'operator' };
const countdown: TransitionRecord = { at_ms: T0 + 50, kind: 'countdown_started', deadline_ms: T0 + 6_050 };
const toHttp: TransitionRecord = { at_ms: T0 + 6_100, kind: 'lung', from: 'P2P', to: 'HTTP', reason: 'no sync peers for 6s' };
const restored: TransitionRecord = { at_ms: T0 + 48_100, kind: 'operator', action: 'p2p_restored', mode: null, by: 'operator' };
const toP2p: TransitionRecord = { at_ms: T0 + 49_000, kind: 'lung', from: 'HTTP', to: 'P2P', reason: 'sync peers returned (3)' };

const st = (transitions: TransitionRecord[], patch: Partial<Status> = {}) => fixture({ transitions, now_ms: T0 + 60_000, ...patch });
const texts = (s: Status) => buildTimeline(s).map((x) => x.text);

describe('the failover timeline', () => {
  it('tells a whole cut from the node records: P2P, cut, countdown, HTTP for N s, restored, P2P', () => {
    expect(texts(st([cut, countdown, toHttp, restored, toP2p]))).toEqual([
      'P2P',
      `cut at ${clock(T0)}`,
      'countdown 6 s',
      'HTTP for 42 s',
      `restored at ${clock(T0 + 48_100)}`,
      'P2P',
    ]);
    const steps = buildTimeline(st([cut, countdown, toHttp, restored, toP2p]));
    expect(steps.filter((x) => x.ongoing).map((x) => x.text)).toEqual(['P2P']);
  });

  it('names the start of what is still going on instead of a growing duration', () => {
    expect(texts(st([cut, countdown], { sync_mode: 'P2P' }))).toEqual(['P2P', `cut at ${clock(T0)}`, `countdown, HTTP at ${clock(T0 + 6_050)}`]);
    const during = buildTimeline(st([cut, countdown, toHttp], { sync_mode: 'HTTP' }));
    expect(during.at(-1)).toMatchObject({ text: `HTTP since ${clock(T0 + 6_100)}`, ongoing: true, tone: 'http' });
  });

  it('shows peers returning in time, a forced mode, and a node with no story yet', () => {
    const reset: TransitionRecord = { at_ms: T0 + 2_000, kind: 'countdown_reset', peers: 2 };
    expect(texts(st([countdown, reset]))).toEqual(['P2P', 'countdown 1 s', 'peers back']);
    const forced: TransitionRecord = { at_ms: T0, kind: 'operator', action: 'mode_set', mode: 'http', by: 'operator' };
    const toHttpForced: TransitionRecord = { ...toHttp, at_ms: T0, reason: 'mode forced to http' };
    expect(texts(st([forced, toHttpForced], { sync_mode: 'HTTP' }))).toEqual(['P2P', `mode http at ${clock(T0)}`, `HTTP since ${clock(T0)}`]);
    expect(buildTimeline(st([], { sync_mode: 'HTTP' }))).toEqual([{ tone: 'http', text: 'HTTP', at_ms: T0 + 60_000, ongoing: true }]);
    expect(buildTimeline({ ...fixture(), transitions: undefined } as unknown as Status)).toHaveLength(1);
  });

  it('leaves out the countdown a node starts with when its peers connect in time, but not one that ran out', () => {
    const node = { ...fixture().node, started_at_ms: T0 - 100 };
    const reset: TransitionRecord = { at_ms: T0 + 300, kind: 'countdown_reset', peers: 2 };
    expect(texts(st([countdown, reset], { node }))).toEqual(['P2P']);
    // Later cuts are told in full.
    expect(texts(st([countdown, reset, cut, { ...countdown, at_ms: T0 + 9_050 }, { ...toHttp, at_ms: T0 + 15_100 }], { node, sync_mode: 'HTTP' })))
      .toEqual(['P2P', `cut at ${clock(T0)}`, 'countdown 6 s', `HTTP since ${clock(T0 + 15_100)}`]);
    // No peer within the fallback time at start: that countdown is the story.
    expect(texts(st([countdown, toHttp], { node, sync_mode: 'HTTP' }))).toEqual(['P2P', 'countdown 6 s', `HTTP since ${clock(T0 + 6_100)}`]);
  });

  it('renders one chip per step, the one going on marked, and keeps the newest when long', () => {
    const t = createTimeline();
    t.update(st([cut, countdown, toHttp], { sync_mode: 'HTTP' }));
    const chips = [...t.el.querySelectorAll('.timeline__step')];
    expect(chips.map((c) => c.getAttribute('data-tone'))).toEqual(['p2p', 'cut', 'countdown', 'http']);
    expect(chips.at(-1)!.classList.contains('is-now')).toBe(true);
    const many: TransitionRecord[] = [];
    for (let i = 0; i < 6; i++) {
      const at = T0 + i * 100_000;
      many.push({ ...cut, at_ms: at }, { ...toHttp, at_ms: at + 6_000 }, { ...restored, at_ms: at + 50_000 }, { ...toP2p, at_ms: at + 51_000 });
    }
    t.update(st(many));
    const shown = [...t.el.querySelectorAll('.timeline__step')];
    expect(shown.length).toBeLessThanOrEqual(9);
    expect(shown.at(-1)!.textContent).toBe('P2P');
    expect(shown.at(-2)!.textContent).toBe(`restored at ${clock(T0 + 550_000)}`);
  });

  it('hides whole chips from the oldest while the strip, right-aligned, spills out on the left', () => {
    // jsdom lays nothing out: a strip 300 px wide whose chips, 100 px each with no gap,
    // stand against its right edge as flex-end puts them. What does not fit lies left of
    // the strip, where scrollWidth does not count it (it stays 300).
    const t = createTimeline();
    const list = t.el.querySelector('.timeline__steps') as HTMLElement;
    const rect = (left: number, width: number) => ({ left, right: left + width, width, top: 0, bottom: 20, height: 20, x: left, y: 0, toJSON: () => ({}) }) as DOMRect;
    const visible = () => [...list.children].filter((c) => !c.classList.contains('is-hidden'));
    const real = HTMLElement.prototype.getBoundingClientRect;
    HTMLElement.prototype.getBoundingClientRect = function (this: HTMLElement) {
      if (this === list) return rect(0, 300);
      const v = visible();
      const i = v.indexOf(this);
      return i < 0 ? real.call(this) : rect(300 - (v.length - i) * 100, 100);
    };
    Object.defineProperty(list, 'scrollWidth', { get: () => 300 });
    Object.defineProperty(list, 'clientWidth', { get: () => 300 });
    try {
      t.update(st([cut, countdown, toHttp, restored, toP2p]));
      expect(visible().map((c) => c.textContent)).toEqual(['HTTP for 42 s', `restored at ${clock(T0 + 48_100)}`, 'P2P']);
      expect(list.children).toHaveLength(6);
    } finally {
      HTMLElement.prototype.getBoundingClientRect = real;
    }
  });
});

import type { Lung, Status, TransitionRecord } from '../backend/types';
import { h, setText } from '../dom';
import { clock, duration } from '../format';

export type StepTone = 'p2p' | 'http' | 'cut' | 'countdown' | 'ok' | 'info';

/** One chip of the strip: what it says, how it looks, and the record it came from. */
export interface Step {
  tone: StepTone;
  text: string;
  at_ms: number;
  /** Still going on at the snapshot (the last lung, a running countdown). */
  ongoing?: boolean;
}

/** Chips shown at most: a 1280 px bar holds about this many; older ones fall off the left. */
export const TIMELINE_STEPS = 9;

type TimelineInput = Pick<Status, 'sync_mode' | 'now_ms'> & { transitions?: TransitionRecord[] | null; node?: Pick<Status['node'], 'started_at_ms'> };

/**
 * A node starts peerless, so its heartbeat starts the fallback countdown at once; when
 * its peers connect in time, that countdown never mattered: "countdown 0 s · peers back"
 * at the start of every cluster is noise, not a failover. Within this long of the node's
 * start, a countdown that ended in peers is left out (one that ran out is shown).
 */
export const STARTUP_COUNTDOWN_MS = 2000;

/**
 * The failover told in steps, from the node's own records only: "P2P · cut at 12:00:05 ·
 * countdown 6 s · HTTP for 41 s · restored at 12:00:52 · P2P". Nothing is timed by the
 * window: an ongoing step names its start ("HTTP since 12:00:11"), so a frozen window
 * never shows a duration still growing.
 */
export function buildTimeline(st: TimelineInput): Step[] {
  const records = st.transitions ?? [];
  const firstLung = records.find((r): r is Extract<TransitionRecord, { kind: 'lung' }> => r.kind === 'lung');
  const startLung: Lung = firstLung ? firstLung.from : st.sync_mode;
  const steps: Step[] = [{ tone: lungTone(startLung), text: startLung, at_ms: records[0]?.at_ms ?? st.now_ms }];

  const next = (i: number, pred: (r: TransitionRecord) => boolean) => records.slice(i + 1).find(pred);
  const started = st.node?.started_at_ms;
  /** The startup countdown that peers ended, and the "peers back" that ended it. */
  const skip = new Set<number>();
  const first = records.findIndex((r) => r.kind === 'countdown_started');
  if (first >= 0 && started != null && Math.abs(records[first]!.at_ms - started) <= STARTUP_COUNTDOWN_MS) {
    const end = records.findIndex((r, j) => j > first && (r.kind === 'countdown_reset' || r.kind === 'lung'));
    if (end >= 0 && records[end]!.kind === 'countdown_reset') [first, end].forEach((j) => skip.add(j));
  }
  records.forEach((r, i) => {
    if (skip.has(i)) return;
    switch (r.kind) {
      case 'operator':
        if (r.action === 'p2p_cut') steps.push({ tone: 'cut', text: `cut at ${clock(r.at_ms)}`, at_ms: r.at_ms });
        else if (r.action === 'p2p_restored') steps.push({ tone: 'ok', text: `restored at ${clock(r.at_ms)}`, at_ms: r.at_ms });
        else steps.push({ tone: 'info', text: `mode ${r.mode ?? '?'} at ${clock(r.at_ms)}`, at_ms: r.at_ms });
        break;
      case 'countdown_started': {
        const end = next(i, (x) => x.kind === 'countdown_reset' || (x.kind === 'lung' && x.to === 'HTTP'));
        steps.push(end
          ? { tone: 'countdown', text: `countdown ${duration(end.at_ms - r.at_ms)}`, at_ms: r.at_ms }
          : { tone: 'countdown', text: `countdown, HTTP at ${clock(r.deadline_ms)}`, at_ms: r.at_ms, ongoing: true });
        break;
      }
      case 'countdown_reset':
        // Peers returning after the fallback also switch the lung: the "P2P" step says it.
        if (records[i + 1]?.kind !== 'lung') steps.push({ tone: 'ok', text: 'peers back', at_ms: r.at_ms });
        break;
      case 'lung': {
        const end = next(i, (x) => x.kind === 'lung');
        if (r.to === 'HTTP') {
          steps.push(end
            ? { tone: 'http', text: `HTTP for ${duration(end.at_ms - r.at_ms)}`, at_ms: r.at_ms }
            : { tone: 'http', text: `HTTP since ${clock(r.at_ms)}`, at_ms: r.at_ms, ongoing: true });
        } else {
          steps.push({ tone: 'p2p', text: 'P2P', at_ms: r.at_ms, ongoing: !end });
        }
        break;
      }
    }
  });
  if (!records.some((r) => r.kind === 'lung')) steps[0]!.ongoing = true;
  return steps;
}

function lungTone(l: Lung): StepTone {
  return l === 'HTTP' ? 'http' : 'p2p';
}

/** The failover timeline strip, for the presenter bar. */
export function createTimeline() {
  const list = h('ol', { class: 'timeline__steps' });
  const el = h('section', { class: 'timeline', attrs: { 'aria-label': 'Failover timeline', 'data-field': 'presenter-timeline' } },
    h('span', { class: 'timeline__title', text: 'Timeline' }), list);
  let shown = '';
  /**
   * Whole chips fall off the left until the rest fits: a half-cut "ut at 12:00" reads wrong.
   * The strip is right-aligned (the newest step stays in view), so what does not fit spills
   * out on the left, where `scrollWidth` does not count it: the chips' edges are what tell.
   */
  function overflows(v: Element[]): boolean {
    const box = list.getBoundingClientRect();
    return v[0]!.getBoundingClientRect().left < box.left - 0.5 || v.at(-1)!.getBoundingClientRect().right > box.right + 0.5;
  }
  function fit(): void {
    for (const li of list.querySelectorAll('.timeline__step.is-hidden')) li.classList.remove('is-hidden');
    const visible = () => [...list.children].filter((c) => !c.classList.contains('is-hidden'));
    for (let v = visible(); v.length > 1 && overflows(v); v = visible()) v[0]!.classList.add('is-hidden');
  }
  if (typeof window !== 'undefined') window.addEventListener('resize', () => fit());

  return {
    el,
    update(st: Status) {
      const steps = buildTimeline(st).slice(-TIMELINE_STEPS);
      const key = steps.map((x) => `${x.tone}|${x.text}|${x.ongoing ? 1 : 0}`).join('\n');
      if (key === shown) {
        fit(); // the type size may have changed (presentation mode), the chips not
        return;
      }
      shown = key;
      list.replaceChildren(...steps.map((x) => {
        const li = h('li', { class: `timeline__step timeline__step--${x.tone}${x.ongoing ? ' is-now' : ''}`, attrs: { 'data-tone': x.tone } });
        setText(li, x.text);
        return li;
      }));
      fit();
    },
    fit,
  };
}

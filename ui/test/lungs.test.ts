import { describe, expect, it } from 'vitest';
import { HTTP_STATES, P2P_STATES, SYNC_STATES, type HttpState, type P2pState } from '../src/backend/types';
import { createLungs, HTTP_WORDS, P2P_WORDS } from '../src/views/lungs';
import { fixture, shown, withStates } from './helpers';

const lungOf = (root: HTMLElement, kind: string) => root.querySelector(`[data-lung="${kind}"]`)!;

describe('the lung panels render the core’s states', () => {
  it.each(P2P_STATES)('P2P %s: the badge says the word for it, data-value is the raw state, the reason is the core’s', (state) => {
    const v = createLungs();
    v.update(withStates(state, 'standby', state === 'carrying' ? 'p2p' : 'isolated', 'watching'));
    expect(shown(v.el, 'p2p-state')).toEqual({ value: state, text: P2P_WORDS[state as P2pState] });
    expect(shown(v.el, 'p2p-reason')).toEqual({ value: `core says P2P ${state}`, text: `core says P2P ${state}` });
  });

  it.each(HTTP_STATES)('HTTP %s: the badge says the word for it, data-value is the raw state, the reason is the core’s', (state) => {
    const v = createLungs();
    v.update(withStates('down', state, state === 'carrying' ? 'http' : 'isolated', 'active'));
    expect(shown(v.el, 'http-state')).toEqual({ value: state, text: HTTP_WORDS[state as HttpState] });
    expect(shown(v.el, 'http-reason').text).toBe(`core says HTTP ${state}`);
  });

  it.each(SYNC_STATES)('keeps both lungs’ states as sent whatever the overall state (%s)', (sync) => {
    const v = createLungs();
    v.update(withStates('cut', 'carrying', sync, 'active'));
    expect(shown(v.el, 'p2p-state').value).toBe('cut');
    expect(shown(v.el, 'http-state').value).toBe('carrying');
  });

  it('shows what the core says even where the lists would suggest otherwise (it derives nothing)', () => {
    // Three connected, sync-capable peers, yet the core says P2P is cut: the panel says Cut.
    const s = withStates('cut', 'failing', 'isolated', 'countdown');
    expect(s.peers.filter((p) => p.sync_capable)).toHaveLength(3);
    const v = createLungs();
    v.update(s);
    expect(shown(v.el, 'p2p-state').text).toBe('Cut');
    expect(lungOf(v.el, 'p2p').classList.contains('is-failed')).toBe(true);
    expect(lungOf(v.el, 'http').classList.contains('is-failed')).toBe(true);
  });

  it('marks the lung the node routes sync through (sync_mode) as carrying, as the e2e checks expect', () => {
    const v = createLungs();
    // Forced HTTP with no neighbour: HTTP is the route although its state is failing.
    v.update(withStates('off', 'failing', 'isolated', 'forced', { mode: 'http', sync_mode: 'HTTP', neighbors: [] }));
    expect(lungOf(v.el, 'http').classList.contains('is-carrying')).toBe(true);
    expect(lungOf(v.el, 'p2p').classList.contains('is-carrying')).toBe(false);
    v.update(withStates('carrying', 'standby', 'p2p', 'watching', { sync_mode: 'P2P', seq: 1 }));
    expect(lungOf(v.el, 'p2p').classList.contains('is-carrying')).toBe(true);
    expect(lungOf(v.el, 'http').classList.contains('is-carrying')).toBe(false);
  });

  it('does not alarm a lone node: HTTP failing or unready with no neighbour is calm, not red', () => {
    for (const http of ['failing', 'unready'] as const) {
      const v = createLungs();
      v.update(withStates('down', http, 'isolated', 'active', { peers: [], neighbors: [], peer_count: 0, has_peers: false }));
      expect(shown(v.el, 'http-state').value).toBe(http);
      expect(lungOf(v.el, 'http').classList.contains('is-failed')).toBe(false);
      expect(lungOf(v.el, 'http').classList.contains('is-idle')).toBe(true);
      expect(lungOf(v.el, 'p2p').classList.contains('is-failed')).toBe(false);
    }
  });

  it('alarms HTTP failing when neighbours are configured and none is healthy', () => {
    const v = createLungs();
    v.update(withStates('down', 'failing', 'isolated', 'active'));
    expect(lungOf(v.el, 'http').classList.contains('is-failed')).toBe(true);
  });

  it('shows the node’s peer_count and each lung’s own entry counters', () => {
    const s = fixture({ peer_count: 7, entries_by_lung: { p2p: { received: 12, sent: 3 }, http: { received: 5, sent: 0 } } });
    const v = createLungs();
    v.update(s);
    expect(shown(v.el, 'peer-count')).toEqual({ value: '7', text: '7' });
    const entries = (kind: string) => v.el.querySelector(`.lung--${kind} [data-metric="entries"]`)!.textContent;
    expect(entries('p2p')).toBe('12');
    expect(entries('http')).toBe('5');
    expect(v.el.querySelector('.lung--p2p .metric--entries .metric__sub')!.textContent).toBe('3 sent');
  });

  it('marks engineers’ words (round trip) as jargon, which presentation mode hides', () => {
    const v = createLungs();
    v.update(fixture());
    expect(v.el.querySelector('.metric--rtt')!.classList.contains('jargon')).toBe(true);
    expect(v.el.textContent).not.toMatch(/gossipsub|mesh|RTT|reconcil/i);
  });

  it('keeps the same DOM nodes across updates (no re-layout of the panels)', () => {
    const v = createLungs();
    v.update(fixture());
    const before = v.el.querySelector('.lung--p2p');
    v.update(withStates('countdown', 'standby', 'isolated', 'countdown'));
    expect(v.el.querySelector('.lung--p2p')).toBe(before);
    expect(v.el.querySelectorAll('.lung').length).toBe(2);
  });
});

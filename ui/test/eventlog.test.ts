import { describe, expect, it } from 'vitest';
import type { NodeEvent } from '../src/backend/types';
import { createEventLog, describeEvent, EventBuffer, filterItems } from '../src/views/eventlog';

const report = { their_root: 'a'.repeat(64), our_root: 'b'.repeat(64), in_sync_before: false, pulled: 3, pushed: 1, rounds: 2, requests: 4, bytes_sent: 100, bytes_received: 900, refused: 0, method: 'walk' as const, symbols: 0 };
const events: NodeEvent[] = [
  { at_ms: 1, type: 'lung', event: { kind: 'transition', from: 'P2P', to: 'HTTP', reason: 'no sync peers for 6s', at_ms: 1 } },
  { at_ms: 2, type: 'sync_completed', lung: 'HTTP', with: 'http://127.0.0.1:8002/', report },
  { at_ms: 3, type: 'sync_failed', lung: 'HTTP', with: 'http://127.0.0.1:8003/', kind: 'refused', message: 'connection refused' },
  { at_ms: 4, type: 'entry_added', id: 'c'.repeat(64), author: '12D3KooWC8w5cN5zunm3guDVoXGZHDSyvXh9JCisyhkpLrq76EFF' },
  { at_ms: 5, type: 'store_failed', reason: 'disk full' },
];

describe('event log', () => {
  it('describes each event in one sentence and files it under a filter', () => {
    const d = events.map((e) => describeEvent(e));
    expect(d.map((x) => x.category)).toEqual(['transitions', 'syncs', 'errors', 'entries', 'errors']);
    expect(d[0]!.text).toBe('Sync moved from P2P to HTTP: no sync peers for 6s');
    expect(d[1]!.text).toContain('pulled 3, pushed 1');
    expect(d[2]!.text).toContain('connection refused');
  });

  it('keeps newest first and filters', () => {
    const b = new EventBuffer();
    events.forEach((e) => b.push(e));
    expect(b.all()[0]!.at_ms).toBe(5);
    expect(filterItems(b.all(), 'errors').map((i) => i.at_ms)).toEqual([5, 3]);
    expect(filterItems(b.all(), 'all')).toHaveLength(5);
    expect(filterItems(b.all(), 'entries')).toHaveLength(1);
  });

  it('is capped: the oldest items fall off', () => {
    const b = new EventBuffer(3);
    events.forEach((e) => b.push(e));
    expect(b.all().map((i) => i.at_ms)).toEqual([5, 4, 3]);
  });

  it('filters in the DOM with the chips', () => {
    const log = createEventLog();
    events.forEach((e) => log.add(e));
    expect(log.el.querySelectorAll('.log__item')).toHaveLength(5);
    (log.el.querySelector('[data-filter="transitions"]') as HTMLButtonElement).click();
    const items = [...log.el.querySelectorAll('.log__item')];
    expect(items).toHaveLength(1);
    expect(items[0]!.getAttribute('data-category')).toBe('transitions');
    // A new non-matching event does not appear under this filter.
    log.add({ at_ms: 6, type: 'entry_added', id: 'd'.repeat(64), author: 'x' });
    expect(log.el.querySelectorAll('.log__item')).toHaveLength(1);
    (log.el.querySelector('[data-filter="all"]') as HTMLButtonElement).click();
    expect(log.el.querySelectorAll('.log__item')).toHaveLength(6);
    expect(log.el.querySelector('.log__item .log__text')!.textContent).toContain('Entry dddddd');
  });

  it('keeps the app log lines under their own filter, never under All', () => {
    const log = createEventLog();
    log.add({ at_ms: 1, type: 'log', level: 'info', message: '[P2P_HEARTBEAT] HTTP Sync Fallback activated' });
    expect(log.el.querySelectorAll('.log__item')).toHaveLength(0);
    (log.el.querySelector('[data-filter="log"]') as HTMLButtonElement).click();
    expect(log.el.querySelector('.log__item .log__text')!.textContent).toContain('[P2P_HEARTBEAT]');
  });
});

describe('the event log names machines', () => {
  it('says a machine’s name where it knows one, the short id or URL otherwise', () => {
    const names: Record<string, string> = { '12D3KooWFWHh9Q64ZA3phDJULkFJf49Tmeh1iRa2rtUqFfP54W2e': 'Branch B', 'http://127.0.0.1:45847/': 'Branch C' };
    const name = (w: string) => names[w];
    const report = { their_root: '', our_root: '', in_sync_before: false, pulled: 1, pushed: 0, rounds: 1, requests: 1, bytes_sent: 10, bytes_received: 10, refused: 0, method: 'walk' as const, symbols: 0 };
    expect(describeEvent({ at_ms: 1, type: 'entry_added', id: 'a'.repeat(64), author: '12D3KooWFWHh9Q64ZA3phDJULkFJf49Tmeh1iRa2rtUqFfP54W2e' }, name).text).toBe('Entry aaaaaa…aaaaaa added, by Branch B');
    expect(describeEvent({ at_ms: 1, type: 'sync_completed', lung: 'HTTP', with: 'http://127.0.0.1:45847/', report }, name).text).toMatch(/^HTTP sync with Branch C: /);
    expect(describeEvent({ at_ms: 1, type: 'sync_completed', lung: 'HTTP', with: 'http://127.0.0.1:9/', report }, name).text).toMatch(/^HTTP sync with 127\.0\.0\.1:9: /);
  });
});

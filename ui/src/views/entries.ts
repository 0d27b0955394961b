import type { Backend, WireEntry } from '../backend/types';
import { errorMessage } from '../backend/errors';
import { h, setText } from '../dom';
import { clock, preview, shortHash, shortId } from '../format';
import type { Toast } from './toast';

/**
 * Checks the textarea's syntax; invalid JSON is reported and never sent. The text itself
 * is what is sent, so the node judges exactly what was typed.
 */
export function parsePayload(text: string): { ok: true; text: string } | { ok: false; error: string } {
  if (!text.trim()) return { ok: false, error: 'Write a JSON payload, e.g. {"to": "acme", "amount": 12}' };
  try {
    JSON.parse(text);
    return { ok: true, text: text.trim() };
  } catch (e) {
    return { ok: false, error: `Not valid JSON: ${e instanceof Error ? e.message : String(e)}` };
  }
}

const LIMIT = 12;

/** Write an entry; see the latest ones. Refreshes on `entry_added` (debounced), never polls. */
export function createEntries(backend: Backend, toast: Toast, opts: { onIds?: (ids: string[]) => void; onPick?: (id: string) => void } = {}) {
  const area = h('textarea', { class: 'input mono entries__payload', attrs: { rows: '3', spellcheck: 'false', 'aria-label': 'Entry payload (JSON)' } });
  area.value = '{"to": "acme", "amount": 12}';
  const msg = h('p', { class: 'entries__msg', attrs: { 'aria-live': 'polite' } });
  const submit = h('button', { class: 'btn btn--primary', text: 'Sign & append', attrs: { type: 'submit' } });
  const form = h('form', { class: 'entries__form' }, area, h('div', { class: 'entries__actions' }, msg, submit));
  const list = h('ol', { class: 'entries__list' });
  const total = h('span', { class: 'card__meta num' });
  const el = h('section', { class: 'card entries', attrs: { 'aria-label': 'Entries' } },
    h('header', { class: 'card__head' }, h('h2', { class: 'card__title', text: 'Entries' }), total),
    form, list);

  function validate(): boolean {
    const r = parsePayload(area.value);
    area.classList.toggle('is-invalid', !r.ok);
    msg.classList.toggle('is-error', !r.ok);
    setText(msg, r.ok ? '' : r.error);
    submit.disabled = !r.ok;
    return r.ok;
  }
  area.addEventListener('input', validate);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const r = parsePayload(area.value);
    if (!r.ok) {
      validate();
      return;
    }
    submit.disabled = true;
    try {
      const res = await backend.put(r.text);
      const stored = res.payload === undefined ? '' : ` · signed as ${preview(res.payload, 60)}`;
      toast(res.inserted ? `Entry ${shortHash(res.id, 6)} appended${stored} · root ${shortHash(res.merkle_root, 6)}` : `Entry ${shortHash(res.id, 6)} was already in the ledger`, 'success');
      refresh();
    } catch (err) {
      toast(`Entry refused: ${errorMessage(err)}`, 'error');
    } finally {
      submit.disabled = false;
    }
  });

  function row(e: WireEntry): HTMLElement {
    return h('li', { class: 'entry' },
      h('button', { class: 'entry__id mono', text: shortHash(e.id, 5), title: `${e.id}\nVerify its inclusion proof`, attrs: { type: 'button' }, on: { click: () => opts.onPick?.(e.id) } }),
      h('span', { class: 'entry__time num', text: clock(e.created_at) }),
      h('span', { class: 'entry__author mono', text: shortId(e.author, 6, 4), title: e.author }),
      h('code', { class: 'entry__payload', text: preview(e.payload, 90) }),
    );
  }

  let inflight = false;
  let again = false;
  let stopped = false;
  async function refresh(): Promise<void> {
    if (stopped) return;
    if (inflight) {
      again = true;
      return;
    }
    inflight = true;
    try {
      const res = await backend.listEntries(LIMIT);
      if (stopped) return;
      setText(total, `${res.entry_count.toLocaleString('en-US')} total`);
      list.replaceChildren(...(res.entries.length ? res.entries.map(row) : [h('li', { class: 'entries__empty', text: 'The ledger is empty' })]));
      opts.onIds?.(res.entries.map((e) => e.id));
    } catch (err) {
      if (stopped) return;
      list.replaceChildren(h('li', { class: 'entries__empty is-error', text: `Cannot list entries: ${errorMessage(err)}` }));
    } finally {
      inflight = false;
      if (again) {
        again = false;
        void refresh();
      }
    }
  }

  let timer: ReturnType<typeof setTimeout> | null = null;
  /** Called for each `entry_added`: many entries in a burst cause one refresh. */
  function entryAdded(): void {
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      void refresh();
    }, 400);
  }

  /** No refresh after this: a pending one is cancelled, an answer still in flight is dropped. */
  function stop(): void {
    stopped = true;
    if (timer) clearTimeout(timer);
    timer = null;
  }

  validate();
  return { el, refresh, entryAdded, stop };
}

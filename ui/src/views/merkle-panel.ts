import type { Backend, Status } from '../backend/types';
import { errorMessage } from '../backend/errors';
import { copyText, h, setText } from '../dom';
import { ago, bytes, clock, counted, plural, shortHash, shortId, shortUrl } from '../format';
import { field, markStale, type Frame } from '../frame';
import { freshness, identicalLedgers, linksAttr, machines, type Agreement, type Machine } from '../machines';
import { verifyProof } from '../merkle';
import type { Toast } from './toast';
import { AGREEMENT_WORDS } from './words';

const BADGE_CLASS: Record<Agreement, string> = { match: 'ok', differs: 'warn', unknown: 'muted' };

function badge(a: Agreement): HTMLElement {
  return h('span', { class: `badge badge--${BADGE_CLASS[a]}`, text: AGREEMENT_WORDS[a] });
}

/** One row per other machine: its links, its name, its root and how it compares with ours. */
function machineRow(m: Machine, f: Frame): HTMLElement {
  const fr = freshness(m, f.status, f.nodeNow);
  const stale = fr.stale || f.lost;
  const age = fr.ageMs ?? (f.lost ? f.nodeNow - f.status.now_ms : null);
  const root = m.peer?.root ?? m.neighbor?.root ?? null;
  const who = h('span', { class: 'roots__who', title: [m.peerId, m.neighbor?.url].filter(Boolean).join('\n') },
    h('span', { class: 'roots__name', text: m.label }),
    stale && age != null
      ? h('span', { class: 'roots__age', text: `checked ${ago(age)}` })
      : h('span', { class: 'roots__links', text: `linked by ${m.links.map((l) => l.toUpperCase()).join(' + ')}` }));
  const row = h('li', { class: 'roots__row', attrs: { 'data-machine': m.key, 'data-links': linksAttr(m), 'data-agreement': m.agreement } },
    h('span', { class: `roots__dot roots__dot--${m.agreement}`, attrs: { 'aria-hidden': 'true' } }),
    who,
    h('span', { class: 'roots__root mono', text: root ? shortHash(root, 6) : '—', title: root ?? 'unknown' }),
    badge(m.agreement));
  markStale(row, stale);
  return row;
}

/**
 * Our root and entry count, everyone else's root against ours, what the last
 * reconciliation moved, and an inclusion-proof check done in the browser.
 */
export function createMerklePanel(backend: Backend, toast: Toast, getStatus: () => Status | null) {
  const rootBtn = h('button', { class: 'root-chip mono', title: 'Copy the full Merkle root', attrs: { type: 'button', 'data-field': 'root' } });
  const count = h('span', { class: 'merkle__count num', attrs: { 'data-field': 'entry-count' } });
  const list = h('ul', { class: 'roots' });
  const identical = h('p', { class: 'identical', attrs: { 'data-field': 'identical-banner', role: 'status' } });
  const last = h('p', { class: 'merkle__last' });
  let fullRoot = '';
  rootBtn.addEventListener('click', async () => {
    if (!fullRoot) return;
    toast((await copyText(fullRoot)) ? 'Merkle root copied' : `Root: ${fullRoot}`, 'success');
  });

  // Inclusion proof box.
  const idInput = h('input', { class: 'input mono', attrs: { type: 'text', placeholder: 'entry id (64 hex)', spellcheck: 'false', autocomplete: 'off', list: 'entry-ids', 'aria-label': 'Entry id' } });
  const datalist = h('datalist', { attrs: { id: 'entry-ids' } });
  const verdict = h('div', { class: 'proof__verdict', attrs: { 'aria-live': 'polite' } });
  const verifyBtn = h('button', { class: 'btn btn--primary', text: 'Verify', attrs: { type: 'submit' } });
  const form = h('form', { class: 'proof', attrs: { 'aria-label': 'Inclusion proof' } },
    h('label', { class: 'proof__label', text: 'Inclusion proof · verified here with WebCrypto' }),
    h('div', { class: 'proof__row' }, idInput, verifyBtn),
    datalist,
    verdict,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const id = idInput.value.trim().toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(id)) {
      showVerdict(false, 'An entry id is 64 hexadecimal characters');
      return;
    }
    verifyBtn.disabled = true;
    setText(verdict, 'Fetching the proof…');
    verdict.className = 'proof__verdict';
    try {
      const res = await backend.getEntry(id);
      if (!res.proof) {
        showVerdict(false, 'The node sent no proof for this entry');
        return;
      }
      const current = getStatus()?.merkle_root ?? '';
      const v = await verifyProof(id, res.proof, current);
      const steps = res.proof.steps.length;
      if (v.ok) showVerdict(true, `Verified: ${counted(steps, 'hash step')} ${steps === 1 ? 'reproduces' : 'reproduce'} the current root ${shortHash(v.currentRoot)}`);
      else showVerdict(false, v.reason);
    } catch (err) {
      showVerdict(false, errorMessage(err));
    } finally {
      verifyBtn.disabled = false;
    }
  });
  function showVerdict(ok: boolean, text: string): void {
    verdict.className = `proof__verdict ${ok ? 'is-ok' : 'is-bad'}`;
    setText(verdict, `${ok ? '✓' : '✗'} ${text}`);
  }

  const rootBox = h('div', { class: 'merkle__rootbox' }, h('span', { class: 'card__eyebrow', text: 'Our root' }), rootBtn);
  const countNoun = h('span', { class: 'card__eyebrow', text: 'entries', attrs: { 'data-field': 'entry-noun' } });
  const el = h('section', { class: 'card merkle', attrs: { 'aria-label': 'Merkle state' } },
    h('header', { class: 'card__head merkle__head' },
      h('h2', { class: 'card__title', text: 'Merkle state' }),
      h('div', { class: 'merkle__countbox' }, count, countNoun),
    ),
    rootBox,
    h('div', { class: 'merkle__section' }, h('span', { class: 'card__eyebrow', text: 'Other machines' }), list),
    last,
    h('div', { class: 'detail' }, form),
  );

  return {
    el,
    /** Entry ids to offer in the proof box (the latest entries). */
    setKnownIds(ids: string[]) {
      datalist.replaceChildren(...ids.map((id) => h('option', { attrs: { value: id } })));
    },
    /** Prefill the proof box, e.g. from a click on an entry. */
    choose(id: string) {
      idInput.value = id;
      form.requestSubmit();
    },
    update(f: Frame) {
      const st = f.status;
      fullRoot = st.merkle_root;
      field(rootBtn, 'root', st.merkle_root);
      setText(rootBtn, shortHash(st.merkle_root, 8));
      rootBtn.title = `${st.merkle_root} (click to copy)`;
      field(count, 'entry-count', st.entry_count);
      setText(count, st.entry_count.toLocaleString('en-US'));
      setText(countNoun, plural(st.entry_count, 'entry', 'entries'));
      const ms = machines(st);
      const rows = ms.map((m) => machineRow(m, f));
      if (!rows.length) rows.push(h('li', { class: 'roots__empty', text: 'No other machine to compare with yet' }));
      list.replaceChildren(...rows);
      // Exists only while it is true: every other machine's root equals ours.
      const n = identicalLedgers(ms);
      if (n == null) identical.remove();
      else {
        field(identical, 'identical-banner', n);
        setText(identical, `All ${n} ledgers identical`);
        if (identical.previousElementSibling !== rootBox) rootBox.after(identical);
      }
      const ls = st.last_sync;
      const peer = ls ? ms.find((m) => m.key === ls.with || m.peerId === ls.with || m.neighbor?.url === ls.with) : undefined;
      setText(last, ls
        ? `Last sync ${clock(ls.at_ms)} over ${ls.lung} with ${peer?.label ?? (ls.lung === 'HTTP' ? shortUrl(ls.with) : shortId(ls.with, 6, 4))}: ${counted(ls.pulled, 'entry', 'entries')} in, ${ls.pushed} out, ${bytes(ls.bytes)}`
        : 'No sync yet');
    },
  };
}

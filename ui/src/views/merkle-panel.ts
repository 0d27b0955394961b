import type { Backend, Status } from '../backend/types';
import { errorMessage } from '../backend/errors';
import { copyText, h, setText } from '../dom';
import { bytes, clock, counted, plural, shortHash, shortId, shortUrl } from '../format';
import { verifyProof } from '../merkle';
import type { Toast } from './toast';

function badge(m: boolean | null, asOf: number | null): HTMLElement {
  const [cls, text] = m === true ? ['ok', 'in sync'] : m === false ? ['warn', 'diverged'] : ['muted', 'unknown'];
  return h('span', { class: `badge badge--${cls}`, text, title: asOf != null ? `as of the last sync at ${clock(asOf)}` : 'never synced' });
}

/**
 * Our root and entry count, everyone else's root against ours, what the last
 * reconciliation moved, and an inclusion-proof check done in the browser.
 */
export function createMerklePanel(backend: Backend, toast: Toast, getStatus: () => Status | null) {
  const rootBtn = h('button', { class: 'root-chip mono', title: 'Copy the full Merkle root', attrs: { type: 'button', 'data-field': 'root' } });
  const count = h('span', { class: 'merkle__count num', attrs: { 'data-field': 'entry-count' } });
  const list = h('ul', { class: 'roots' });
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

  const countNoun = h('span', { class: 'card__eyebrow', text: 'entries', attrs: { 'data-field': 'entry-noun' } });
  const el = h('section', { class: 'card merkle', attrs: { 'aria-label': 'Merkle state' } },
    h('header', { class: 'card__head merkle__head' },
      h('h2', { class: 'card__title', text: 'Merkle state' }),
      h('div', { class: 'merkle__countbox' }, count, countNoun),
    ),
    h('div', { class: 'merkle__rootbox' }, h('span', { class: 'card__eyebrow', text: 'Our root' }), rootBtn),
    h('div', { class: 'merkle__section' }, h('span', { class: 'card__eyebrow', text: 'Peers and neighbours' }), list),
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
    update(st: Status) {
      fullRoot = st.merkle_root;
      setText(rootBtn, shortHash(st.merkle_root, 8));
      rootBtn.title = `${st.merkle_root} (click to copy)`;
      setText(count, st.entry_count.toLocaleString('en-US'));
      setText(countNoun, plural(st.entry_count, 'entry', 'entries'));
      const rows: HTMLElement[] = [];
      for (const p of st.peers) {
        rows.push(h('li', { class: 'roots__row' }, h('span', { class: 'roots__kind roots__kind--p2p', text: 'P2P' }), h('span', { class: 'roots__who mono', text: shortId(p.peer_id, 6, 4), title: p.peer_id }), h('span', { class: 'roots__root mono', text: p.root ? shortHash(p.root, 6) : '—', title: p.root ?? 'unknown' }), badge(p.root_matches, p.last_sync_ms)));
      }
      for (const n of st.neighbors) {
        rows.push(h('li', { class: 'roots__row' }, h('span', { class: 'roots__kind roots__kind--http', text: 'HTTP' }), h('span', { class: 'roots__who mono', text: shortUrl(n.url), title: n.url }), h('span', { class: 'roots__root mono', text: n.root ? shortHash(n.root, 6) : '—', title: n.root ?? 'unknown' }), badge(n.root_matches, n.last_sync_ms)));
      }
      if (!rows.length) rows.push(h('li', { class: 'roots__empty', text: 'No peers or neighbours to compare with' }));
      list.replaceChildren(...rows);
      const ls = st.last_sync;
      setText(last, ls
        ? `Last reconciliation ${clock(ls.at_ms)} over ${ls.lung} with ${ls.lung === 'HTTP' ? shortUrl(ls.with) : shortId(ls.with, 6, 4)}: pulled ${ls.pulled}, pushed ${ls.pushed}, ${bytes(ls.bytes)}`
        : 'No reconciliation yet');
    },
  };
}

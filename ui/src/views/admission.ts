import type { Backend, Status } from '../backend/types';
import { errorMessage } from '../backend/errors';
import { h } from '../dom';
import type { Toast } from './toast';

/**
 * The Syncthing-like prompt: an unknown P2P peer that connected to a closed ledger is
 * pending (neither synced with nor counted) until a person accepts or ignores it. One
 * card per pending peer, with its PeerId and address, straight from the status: the
 * node decides who is pending, this view only asks.
 */
export function createAdmission(backend: Backend, toast: Toast, onStatus: (s: Status) => void) {
  const el = h('section', { class: 'admission', attrs: { hidden: '', 'aria-live': 'polite', 'data-field': 'admission' } });
  const busy = new Set<string>();

  function decide(peerId: string, accept: boolean): void {
    busy.add(peerId);
    backend.decidePeer(peerId, accept).then(
      () => {
        toast(accept ? `Accepted ${peerId.slice(0, 12)}…: it syncs now` : `Ignored ${peerId.slice(0, 12)}…`, 'success');
        return backend.getStatus().then(onStatus);
      },
      (e) => toast(`Could not decide: ${errorMessage(e)}`, 'error'),
    ).finally(() => busy.delete(peerId));
  }

  /** What the cards show, so a snapshot that changes nothing about them keeps them (and
   * the button under the presenter's pointer) in place. */
  let shownKey = '';

  function update(status: Status): void {
    const pending = status.peers.filter((p) => p.admitted === false && !p.other_ledger);
    const key = pending.map((p) => `${p.peer_id} ${p.address ?? ''}`).join('\n');
    if (key === shownKey) return;
    shownKey = key;
    if (!pending.length) {
      el.setAttribute('hidden', '');
      el.replaceChildren();
      return;
    }
    el.removeAttribute('hidden');
    el.replaceChildren(
      ...pending.map((p) =>
        h('div', { class: 'admission__card', attrs: { 'data-peer': p.peer_id } },
          h('div', { class: 'admission__title', text: 'An unknown node wants to sync with this ledger' }),
          h('code', { class: 'admission__peer', text: p.peer_id }),
          h('div', { class: 'admission__addr', text: p.address ?? 'address unknown' }),
          h('div', { class: 'admission__actions' },
            h('button', {
              class: 'btn btn--primary', text: 'Accept', attrs: { type: 'button', 'data-action': 'accept' },
              on: { click: () => { if (!busy.has(p.peer_id)) decide(p.peer_id, true); } },
            }),
            h('button', {
              class: 'btn', text: 'Ignore', attrs: { type: 'button', 'data-action': 'ignore' },
              on: { click: () => { if (!busy.has(p.peer_id)) decide(p.peer_id, false); } },
            }),
          ),
        ),
      ),
    );
  }

  return { el, update };
}

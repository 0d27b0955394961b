import type { Backend, Status } from '../backend/types';
import { setStoredToken, storedToken } from '../backend/http';
import { copyText, h, setText } from '../dom';
import { shortId } from '../format';
import { field } from '../frame';
import { nodeLabel } from '../machines';
import { applyPresentation, applyTheme, currentTheme, isPresentation } from '../prefs';
import { createCarrier } from './carrier';
import { createCutButton, createModeControl } from './mode';
import type { Toast } from './toast';

/** Identity, mode control, the lung carrying sync, connection, theme and presentation. */
export function createHeader(backend: Backend, toast: Toast, onStatus: (s: Status) => void, now: () => number = () => Date.now()) {
  const mode = createModeControl(backend, toast, onStatus);
  const cut = createCutButton(backend, toast, onStatus);
  const idBtn = h('button', { class: 'identity__id mono', title: 'Copy the full PeerId', attrs: { type: 'button', 'data-field': 'peer-id' } });
  const version = h('span', { class: 'identity__meta' });
  const watched = h('span', { class: 'identity__name', attrs: { 'data-field': 'watched-node' } });
  const ledger = h('span', { class: 'ledger-chip', attrs: { 'data-field': 'ledger' } });
  let peerId = '';
  idBtn.addEventListener('click', async () => {
    if (peerId) toast((await copyText(peerId)) ? 'PeerId copied' : peerId, 'success');
  });
  const carrier = createCarrier(now, { 'data-field': 'sync-state' });
  const conn = h('span', { class: 'conn', attrs: { 'data-field': 'connection', 'data-value': 'lost' } });
  const theme = h('button', { class: 'icon-btn icon-btn--theme', title: 'Light / dark theme', attrs: { type: 'button', 'aria-label': 'Toggle theme' } });
  const present = h('button', { class: 'icon-btn icon-btn--present', title: 'Presentation mode (P)', attrs: { type: 'button', 'aria-label': 'Toggle presentation mode' } });
  theme.addEventListener('click', () => applyTheme(currentTheme() === 'dark' ? 'light' : 'dark', true));
  present.addEventListener('click', () => applyPresentation(!isPresentation(), true));

  const tools = h('div', { class: 'header__tools' }, conn, theme, present);
  if (backend.kind === 'http') {
    const input = h('input', { class: 'input mono', attrs: { type: 'password', placeholder: 'API token (optional)', autocomplete: 'off', 'aria-label': 'API token' } });
    input.value = storedToken() ?? '';
    const save = h('button', { class: 'btn', text: 'Save', attrs: { type: 'button' }, on: { click: () => { setStoredToken(input.value.trim()); toast(input.value.trim() ? 'Token kept for this tab' : 'Token cleared', 'info'); } } });
    tools.prepend(h('details', { class: 'token detail' }, h('summary', { class: 'icon-btn icon-btn--key', title: 'API token for nodes with LATTICE_API_TOKEN', attrs: { 'aria-label': 'API token' } }), h('div', { class: 'token__pop' }, input, save)));
  }

  const el = h('header', { class: 'header is-loading' },
    h('div', { class: 'brand' }, h('span', { class: 'brand__mark', attrs: { 'aria-hidden': 'true' } }), h('span', { class: 'brand__name', text: 'Lattice' })),
    h('div', { class: 'identity' }, h('span', { class: 'card__eyebrow', text: 'Watching' }), watched, h('span', { class: 'identity__ids' }, idBtn, version, ledger)),
    h('div', { class: 'header__controls' }, mode.el, carrier.el, cut.el),
    tools,
  );

  let everConnected = false;
  return {
    el,
    /** The carrier's countdown stops ticking for good (the app unmounts). */
    stop: () => carrier.freeze(true),
    /** Whether the face receives the node's snapshots (CONTRACT.md `connection`). */
    setConnected(c: boolean) {
      everConnected ||= c;
      field(conn, 'connection', c ? 'live' : 'lost');
      conn.classList.toggle('is-up', c);
      conn.classList.toggle('is-down', !c && everConnected);
      setText(conn, c ? 'Live' : everConnected ? 'Lost — reconnecting' : 'Connecting');
      conn.title = c ? 'Receiving the node\'s status as it changes' : 'Not receiving the node: what is shown is frozen';
      carrier.freeze(!c);
    },
    /** `skew`: node clock minus ours when the snapshot arrived (see countdown.ts). */
    update(s: Status, skew = 0) {
      el.classList.remove('is-loading');
      peerId = s.node.peer_id;
      setText(idBtn, shortId(s.node.peer_id, 10, 6));
      field(watched, 'watched-node', s.node.peer_id);
      watched.setAttribute('data-api', `http://${s.node.http_listen}`);
      setText(watched, nodeLabel(s));
      watched.title = s.node.peer_id;
      idBtn.title = `${s.node.peer_id} (click to copy)`;
      setText(version, `v${s.node.version} · ${s.node.http_listen}`);
      renderLedger(ledger, s);
      carrier.update(s, skew);
      mode.update(s);
      cut.update(s);
    },
  };
}

/** The ledger this node keeps; an open development ledger says plainly that anyone can write. */
export function renderLedger(el: HTMLElement, s: Status) {
  const l = s.ledger;
  el.hidden = !l;
  if (!l) return;
  field(el, 'ledger', l.id);
  el.classList.toggle('is-open', l.open);
  el.classList.toggle('is-readonly', !l.can_write);
  const who = l.open ? 'open development ledger: anyone can write' : `${l.authors === 1 ? '1 author' : `${l.authors} authors`}`;
  const refused = l.refused ? ` · ${l.refused === 1 ? '1 entry' : `${l.refused} entries`} refused` : '';
  const ro = l.can_write ? '' : ' · this node may not write';
  setText(el, `${l.name} — ${who}${ro}${refused}`);
  el.title = `Ledger ${l.id}`;
}

import type { Backend, Mode, Status } from '../backend/types';
import { MODES } from '../backend/types';
import { errorMessage } from '../backend/errors';
import { h, setText } from '../dom';
import { field } from '../frame';
import type { Toast } from './toast';

const LABEL: Record<Mode, string> = { auto: 'Auto', p2p: 'P2P', http: 'HTTP' };
const HINT: Record<Mode, string> = {
  auto: 'The heartbeat decides: P2P while sync peers exist, HTTP after the fallback time',
  p2p: 'Force P2P: HTTP sync off',
  http: 'Force HTTP: poll neighbours only',
};

export interface ModeControl {
  el: HTMLElement;
  update(s: Status): void;
}

/** Auto / P2P / HTTP as one segmented control; the highlighted mode is the node's, not ours. */
export function createModeControl(backend: Backend, toast: Toast, onStatus: (s: Status) => void): ModeControl {
  const buttons = new Map<Mode, HTMLButtonElement>();
  const el = h('div', { class: 'segmented', attrs: { role: 'group', 'aria-label': 'Sync mode', 'data-field': 'mode' } });
  let pending = false;
  for (const m of MODES) {
    const b = h('button', {
      class: `segmented__btn segmented__btn--${m}`,
      text: LABEL[m],
      title: HINT[m],
      attrs: { type: 'button', 'aria-pressed': 'false', 'data-mode': m },
      on: {
        click: async () => {
          if (pending || b.getAttribute('aria-pressed') === 'true') return;
          pending = true;
          el.classList.add('is-pending');
          try {
            onStatus(await backend.switchMode(m));
          } catch (e) {
            toast(`Switch to ${LABEL[m]} refused: ${errorMessage(e)}`, 'error');
          } finally {
            pending = false;
            el.classList.remove('is-pending');
          }
        },
      },
    });
    buttons.set(m, b);
    el.append(b);
  }
  return {
    el,
    update(s) {
      // The pressed button's label is the visible text of the node's mode.
      field(el, 'mode', s.mode);
      el.setAttribute('aria-label', `Sync mode: ${LABEL[s.mode]}`);
      for (const [m, b] of buttons) {
        const on = s.mode === m;
        b.setAttribute('aria-pressed', String(on));
        b.classList.toggle('is-active', on);
      }
    },
  };
}

/** "Cut P2P" / "Restore P2P" for this node: closes and refuses every P2P connection for real. */
export function createCutButton(backend: Backend, toast: Toast, onStatus: (s: Status) => void): ModeControl {
  const label = h('span', { text: 'Cut P2P' });
  const el = h('button', {
    class: 'btn btn--cut',
    attrs: { type: 'button', 'data-action': 'cut-p2p' },
    title: 'Close and refuse every P2P connection of this node',
  }, h('span', { class: 'btn__icon', attrs: { 'aria-hidden': 'true' } }), label);
  let blocked = false;
  el.addEventListener('click', async () => {
    el.disabled = true;
    try {
      onStatus(await backend.setP2pBlocked(!blocked));
    } catch (e) {
      toast(`${blocked ? 'Restore' : 'Cut'} P2P failed: ${errorMessage(e)}`, 'error');
    } finally {
      el.disabled = false;
    }
  });
  return {
    el,
    update(s) {
      blocked = s.p2p_blocked;
      setText(label, blocked ? 'Restore P2P' : 'Cut P2P');
      el.classList.toggle('btn--restore', blocked);
      el.title = blocked ? 'Accept P2P connections again' : 'Close and refuse every P2P connection of this node';
    },
  };
}

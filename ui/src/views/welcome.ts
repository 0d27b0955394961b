import type { Backend } from '../backend/types';
import { errorMessage } from '../backend/errors';
import { h, setText } from '../dom';
import type { Frame } from '../frame';
import { isAlone } from './lungs';
import type { Toast } from './toast';

/** How many nodes the welcome card's demo starts (within demo.ts's 2–12). */
export const WELCOME_DEMO_NODES = 4;

/**
 * A first launch: no peer, no neighbour, no demo running. Instead of red alarms (a lone
 * node's HTTP lung "fails" with nobody to fail to), a card says what to do next: in the app
 * a button starts the built-in demo cluster; in a browser, how to give the node company.
 */
export function createWelcome(backend: Backend, toast: Toast) {
  const title = h('h2', { class: 'welcome__title', text: 'Nobody to sync with yet' });
  const body = h('div', { class: 'welcome__body' });
  const el = h('section', { class: 'card welcome', attrs: { 'aria-label': 'Welcome', 'data-welcome': '', hidden: '' } }, title, body);
  const demo = backend.demo;
  if (demo) {
    const start = h('button', { class: 'btn btn--primary btn--large', text: 'Start a demo cluster', attrs: { type: 'button', 'data-action': 'demo-start' } });
    const msg = h('p', { class: 'welcome__msg', attrs: { 'aria-live': 'polite' } });
    start.addEventListener('click', async () => {
      start.disabled = true;
      setText(msg, `Starting ${WELCOME_DEMO_NODES} nodes on this machine…`);
      try {
        await demo.start(WELCOME_DEMO_NODES);
        setText(msg, '');
      } catch (e) {
        setText(msg, '');
        toast(`Start failed: ${errorMessage(e)}`, 'error');
      } finally {
        start.disabled = false;
      }
    });
    body.append(
      h('p', { text: `This node runs alone. Start ${WELCOME_DEMO_NODES} more on this machine, linked by P2P and HTTP, and watch them keep one ledger through a P2P cut.` }),
      start,
      msg,
    );
  } else {
    body.append(
      h('p', { text: 'This node has no P2P peer and no HTTP neighbour. Give it company:' }),
      h('ul', { class: 'welcome__list' },
        h('li', {}, 'start another node with ', h('code', { text: 'LATTICE_BOOTSTRAP' }), ' set to one of this node’s P2P addresses,'),
        h('li', {}, 'and list the other nodes’ URLs in ', h('code', { text: 'LATTICE_HTTP_NEIGHBORS' }), ' so HTTP can take over when P2P fails,'),
        h('li', {}, 'or try ', h('code', { text: 'lattice demo --nodes 4' }), ', which prints the dashboards of four linked nodes.'),
      ),
    );
  }
  let shown = false;
  return {
    el,
    get shown() {
      return shown;
    },
    /** `demoRunning`: whether the app's demo cluster runs (always false in a browser). */
    update(f: Frame, demoRunning: boolean) {
      shown = isAlone(f.status) && !demoRunning;
      el.toggleAttribute('hidden', !shown);
    },
  };
}

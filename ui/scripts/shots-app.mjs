// The app's window layout (presenter bar included) without building the app: the page runs
// in Chromium with a stand-in for Tauri's IPC that forwards every command to real demo
// nodes' HTTP APIs (status, switch, block/unblock, entries; demo_status lists the nodes;
// demo_cut/restore block and unblock all of them). Only for screenshots and looking.
// Usage: node scripts/shots-app.mjs <page url> <outdir> <node url>...   (first node = watched)
// DEMO_OFF=1: the demo is not running (a first launch shows the welcome card); NAME=prefix of the files.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const [page0, out = '/tmp/ui-shots', ...apis] = process.argv.slice(2);
mkdirSync(out, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--disable-web-security', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

function fakeTauri({ apis, demoOff }) {
  const cbs = new Map();
  let next = 1;
  let focus = 0;
  const base = () => apis[focus].replace(/\/$/, '');
  const get = async (u) => (await fetch(u)).json();
  const post = async (u) => (await fetch(u, { method: 'POST' })).json();
  const listeners = [];
  window.__TAURI_INTERNALS__ = {
    transformCallback(cb) { const id = next++; cbs.set(id, cb); return id; },
    unregisterCallback(id) { cbs.delete(id); },
    async invoke(cmd, args = {}) {
      switch (cmd) {
        case 'plugin:event|listen': listeners.push({ event: args.event, id: args.handler }); return next++;
        case 'status': return get(`${base()}/api/lattice/p2p/status`);
        case 'switch_mode': return post(`${base()}/api/lattice/sync/switch?mode=${args.mode}`);
        case 'set_p2p_blocked': return post(`${base()}/api/lattice/p2p/${args.blocked ? 'block' : 'unblock'}`);
        case 'list_entries': return get(`${base()}/api/lattice/entries?limit=${args.limit}`);
        case 'demo_status': {
          if (demoOff) return { running: false, focus: null, nodes: [] };
          const nodes = await Promise.all(apis.map(async (url) => { const status = await get(`${url.replace(/\/$/, '')}/api/lattice/p2p/status`); return { name: status.node.name ?? url, url, peer_id: status.node.peer_id, status }; }));
          return { running: true, focus, nodes };
        }
        case 'demo_cut': for (const u of apis) await post(`${u.replace(/\/$/, '')}/api/lattice/p2p/block`); return {};
        case 'demo_restore': for (const u of apis) await post(`${u.replace(/\/$/, '')}/api/lattice/p2p/unblock`); return {};
        case 'focus_node': focus = args.index ?? 0; return get(`${base()}/api/lattice/p2p/status`);
        default: return {};
      }
    },
  };
  setInterval(async () => {
    const s = await get(`${base()}/api/lattice/p2p/status`);
    for (const l of listeners) if (l.event === 'lattice://status') cbs.get(l.id)?.({ event: l.event, id: 0, payload: s });
  }, 250);
}

const shots = [];
for (const [w, h] of [[1280, 720], [1920, 1080]]) {
  for (const theme of ['light', 'dark']) {
    for (const present of [false, true]) {
      const page = await browser.newPage({ viewport: { width: w, height: h } });
      await page.addInitScript(fakeTauri, { apis, demoOff: process.env.DEMO_OFF === '1' });
      await page.goto(`${page0}?theme=${theme}&present=${present ? 1 : 0}`);
      await page.waitForSelector('.grid:not([hidden])', { timeout: 10000 });
      await page.waitForTimeout(1800);
      const file = `${out}/${process.env.NAME ?? 'app'}-${w}x${h}-${theme}${present ? '-present' : ''}.png`;
      await page.screenshot({ path: file });
      shots.push(file);
      if (process.env.CUT && w === 1280 && !present) {
        await page.click('[data-action="demo-cut"]');
        await page.waitForSelector('.timer.is-countdown', { timeout: 10000 });
        await page.waitForTimeout(1200);
        await page.screenshot({ path: file.replace('.png', '-countdown.png') });
        await page.waitForSelector('.timer.is-fallback', { timeout: 20000 });
        await page.waitForTimeout(2500);
        await page.screenshot({ path: file.replace('.png', '-http.png') });
        await page.click('[data-action="demo-restore"]');
        await page.waitForSelector('[data-lung="p2p"].is-carrying', { timeout: 20000 });
        await page.waitForTimeout(2500);
        await page.screenshot({ path: file.replace('.png', '-restored.png') });
      }
      await page.close();
    }
  }
}
await browser.close();
console.log(shots.join('\n'));

// Screenshots of the app during a live demo, for the README (docs/app-*.png): the demo
// cluster started from the window, P2P cut, the countdown, the HTTP lung taking over.
// Run by hand after building the app with the custom-protocol feature.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, chmodSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir, homedir } from 'node:os';
import { join } from 'node:path';
import { ROOT, TARGET, freePort, until } from './lib.mjs';

const OUT = join(ROOT, 'docs');
mkdirSync(OUT, { recursive: true });
const APP = join(TARGET, 'debug', 'lattice-app');
const cargoDriver = join(homedir(), '.cargo', 'bin', 'tauri-driver');
const DRIVER = existsSync(cargoDriver) ? cargoDriver : 'tauri-driver';
const display = ':89';
const home = mkdtempSync(join(tmpdir(), 'lattice-shots-'));
const runtime = mkdtempSync(join(tmpdir(), 'lattice-shots-run-'));
chmodSync(runtime, 0o700);
const work = mkdtempSync(join(tmpdir(), 'lattice-shots-cwd-'));
writeFileSync(join(work, '.env'), `LATTICE_P2P_LISTEN=/ip4/127.0.0.1/tcp/0\nLATTICE_HTTP_LISTEN=127.0.0.1:${await freePort()}\n`);
const env = { ...process.env, DISPLAY: display, HOME: home, XDG_RUNTIME_DIR: runtime, WEBKIT_DISABLE_DMABUF_RENDERER: '1' };
const kids = [spawn('Xvfb', [display, '-screen', '0', '1440x900x24', '-nolisten', 'tcp'], { env, stdio: 'ignore' })];
await until(`Xvfb on ${display}`, () => existsSync(`/tmp/.X11-unix/X${display.slice(1)}`), 15_000);
const port = await freePort();
kids.push(spawn(DRIVER, ['--port', String(port)], { env, cwd: work, stdio: 'ignore' }));
const wd = `http://127.0.0.1:${port}`;
const call = async (method, path, body) => {
  const r = await fetch(`${wd}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body && JSON.stringify(body) });
  const j = await r.json();
  if (!r.ok) throw new Error(JSON.stringify(j.value));
  return j.value;
};
const shot = (name) => execFileSync('import', ['-window', 'root', join(OUT, `${name}.png`)], { env });
try {
  await until('driver', async () => (await fetch(`${wd}/status`)).ok);
  const { sessionId: s } = await call('POST', '/session', { capabilities: { alwaysMatch: { browserName: 'wry', 'tauri:options': { application: APP } } } });
  await call('POST', `/session/${s}/window/rect`, { x: 0, y: 0, width: 1440, height: 900 }).catch(() => {});
  const find = async (css) => Object.values(await call('POST', `/session/${s}/element`, { using: 'css selector', value: css }) ?? {})[0];
  const click = async (xpath) => call('POST', `/session/${s}/element/${Object.values(await call('POST', `/session/${s}/element`, { using: 'xpath', value: xpath }))[0]}/click`, {});
  const top = async () => {
    await call('POST', `/session/${s}/execute/sync`, { script: 'for (const e of [document.scrollingElement, ...document.querySelectorAll("*")]) { if (e && e.scrollTop) e.scrollTo({ top: 0, behavior: "instant" }); } window.scrollTo({ top: 0, behavior: "instant" });', args: [] });
    await new Promise((r) => setTimeout(r, 800));
  };
  await until('window', () => find('[data-field="peer-id"]'), 30_000);
  await click("//button[normalize-space()='Start']");
  await until('demo peers', async () => (await call('GET', `/session/${s}/element/${await find('[data-lung="p2p"]')}/attribute/class`)).includes('is-carrying'), 30_000);
  await new Promise((r) => setTimeout(r, 3000)); // let the graph settle for the picture
  await top(); shot('app-p2p');
  await click("//button[normalize-space()='Cut P2P (cluster)']");
  await until('countdown', () => find('.timer.is-countdown'), 15_000);
  await new Promise((r) => setTimeout(r, 2500));
  await top(); shot('app-countdown');
  await until('fallback', () => find('.timer.is-fallback'), 15_000);
  await new Promise((r) => setTimeout(r, 2500));
  await top(); shot('app-demo');
  // Write an entry during the cut, through the window's own form.
  const form = await find('textarea');
  await call('POST', `/session/${s}/element/${form}/clear`, {});
  await call('POST', `/session/${s}/element/${form}/value`, { text: '{"written": "while P2P was cut"}' });
  await click("//button[normalize-space()='Sign & append']");
  await new Promise((r) => setTimeout(r, 2000));
  await click("//section[contains(@class,'demo')]//button[normalize-space()='Restore P2P']");
  await until('P2P back', async () => (await call('GET', `/session/${s}/element/${await find('[data-lung="p2p"]')}/attribute/class`)).includes('is-carrying'), 20_000);
  await new Promise((r) => setTimeout(r, 3000));
  await top(); await new Promise((r) => setTimeout(r, 800)); shot('app-p2p-back');
  await call('POST', `/session/${s}/execute/sync`, { script: 'document.querySelector(".demo").scrollIntoView()', args: [] });
  await new Promise((r) => setTimeout(r, 1000));
  shot('app-roots-equal');
  await call('DELETE', `/session/${s}`);
} finally {
  for (const k of kids.reverse()) k.kill('SIGTERM');
}

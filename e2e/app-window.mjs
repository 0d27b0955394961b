// The real desktop app in a real window: started under Xvfb through WebDriver
// (tauri-driver + WebKitWebDriver), it must show its own node's live status, follow a
// change made through the node's API, hand a second launch over to the first window, and
// quit cleanly on SIGTERM, removing the demo cluster's data. Screenshots are taken with
// ImageMagick (WebDriver's own screenshot hangs under Xvfb) into artifacts/e2e/.
// Run it under `dbus-run-session` (the single-instance plugin finds the first instance
// over the D-Bus session bus).
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, chmodSync, existsSync, readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { tmpdir, homedir } from 'node:os';
import { join } from 'node:path';
import { TARGET, ARTIFACTS, freePort, until } from './lib.mjs';

const APP = process.env.LATTICE_APP || join(TARGET, 'debug', 'lattice-app');
const CARGO_DRIVER = join(homedir(), '.cargo', 'bin', 'tauri-driver');
const DRIVER = process.env.TAURI_DRIVER || (existsSync(CARGO_DRIVER) ? CARGO_DRIVER : 'tauri-driver');
const display = `:${90 + Math.floor(Math.random() * 9)}`;
const home = mkdtempSync(join(tmpdir(), 'lattice-app-home-'));
const runtime = mkdtempSync(join(tmpdir(), 'lattice-app-run-'));
chmodSync(runtime, 0o700);
const work = mkdtempSync(join(tmpdir(), 'lattice-app-cwd-'));
// The app's own temporary directory, so a demo cluster's leftovers would show here.
const appTmp = mkdtempSync(join(tmpdir(), 'lattice-app-tmp-'));
const httpPort = await freePort();
writeFileSync(join(work, '.env'), [
  'LATTICE_P2P_LISTEN=/ip4/127.0.0.1/tcp/0',
  `LATTICE_HTTP_LISTEN=127.0.0.1:${httpPort}`,
  'LATTICE_HEARTBEAT=250ms', 'LATTICE_FALLBACK_AFTER=3s', '',
].join('\n'));
const api = `http://127.0.0.1:${httpPort}/api/lattice`;
const env = { ...process.env, DISPLAY: display, HOME: home, XDG_RUNTIME_DIR: runtime,
  WEBKIT_DISABLE_DMABUF_RENDERER: '1', RUST_LOG: 'info', TMPDIR: appTmp };
if (!process.env.DBUS_SESSION_BUS_ADDRESS) throw new Error('run this under dbus-run-session');

/** The pid of the app this check started (its binary, and this run's HOME). */
function appPid() {
  const exe = realpathSync(APP);
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (readlinkSync(`/proc/${pid}/exe`) !== exe) continue;
      if (readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(`HOME=${home}`)) return Number(pid);
    } catch { /* gone, or not ours */ }
  }
  return null;
}
const exited = (child, ms) => until('the process to exit', () => child.exitCode !== null || child.signalCode !== null, ms)
  .then(() => child.exitCode ?? child.signalCode);
const apiDown = () => until('the app to close', async () => {
  try { await fetch(`${api}/p2p/status`); return false; } catch { return true; }
}, 20_000);

const children = [];
const start = (cmd, args, opts = {}) => {
  const c = spawn(cmd, args, { env, cwd: work, stdio: 'ignore', ...opts });
  children.push(c);
  return c;
};
start('Xvfb', [display, '-screen', '0', '1280x720x24', '-nolisten', 'tcp']);
// The display is up once its socket exists.
await until(`Xvfb on ${display}`, () => existsSync(`/tmp/.X11-unix/X${display.slice(1)}`), 15_000);
const driverPort = await freePort();
start(DRIVER, ['--port', String(driverPort)]);
const wd = `http://127.0.0.1:${driverPort}`;

async function call(method, path, body) {
  const res = await fetch(`${wd}${path}`, {
    method, headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${path}: ${JSON.stringify(json.value ?? json)}`);
  return json.value;
}
const shot = (name) => execFileSync('import', ['-window', 'root', join(ARTIFACTS, `${name}.png`)], { env });

let failed = false;
let session;
try {
  await until('tauri-driver to listen', async () => (await fetch(`${wd}/status`)).ok, 15_000);
  const created = await call('POST', '/session', {
    capabilities: { alwaysMatch: { browserName: 'wry', 'tauri:options': { application: APP } } },
  });
  session = created.sessionId;
  // W3C element references are objects with one key, 'element-6066-11e4-a52e-4f735466cecf'.
  const find = async (css) => Object.values(
    await call('POST', `/session/${session}/element`, { using: 'css selector', value: css }) ?? {})[0];
  const attr = async (el, name) => call('GET', `/session/${session}/element/${el}/attribute/${name}`);
  const text = async (el) => call('GET', `/session/${session}/element/${el}/text`);

  const status = await until('the app node API', async () => (await fetch(`${api}/p2p/status`)).json(), 30_000);
  const peer = status.node.peer_id;
  const idEl = await until('the window to render the node', () => find('[data-field="peer-id"]'), 30_000);
  await until('the window to show this node\'s PeerId', async () => {
    const shown = (await text(idEl)).replace('…', '');
    return shown.length > 8 && peer.startsWith(shown.slice(0, 8)) && peer.endsWith(shown.slice(-6));
  });
  console.log(`ok: the window shows its own node ${peer}`);
  await until('the window to say auto mode', async () => (await attr(await find('[data-mode="auto"]'), 'aria-pressed')) === 'true');
  shot('app-01-window');

  // Live: a change made through the node's API reaches the window without a reload.
  const switched = await fetch(`${api}/sync/switch?mode=http`, { method: 'POST' });
  if (!switched.ok) throw new Error(`switching through the API failed: ${switched.status}`);
  await until('the window to follow the node into http mode', async () =>
    (await attr(await find('[data-mode="http"]'), 'aria-pressed')) === 'true');
  await until('the HTTP lung to show as carrying', async () =>
    (await attr(await find('[data-lung="http"]'), 'class')).includes('is-carrying'));
  shot('app-02-live-http');
  console.log('ok: the window follows the node live (mode http, HTTP lung carrying)');

  // One instance only: a second launch hands over to the first window and exits 0,
  // instead of failing on the locked store.
  const second = spawn(APP, [], { env, cwd: work, stdio: 'ignore' });
  const secondCode = await exited(second, 20_000);
  if (secondCode !== 0) throw new Error(`a second launch exited with ${secondCode}, not 0`);
  if (!(await fetch(`${api}/p2p/status`)).ok) throw new Error('the first instance stopped answering');
  console.log('ok: a second launch hands over to the first window and exits 0');

  // SIGTERM with a demo cluster running: the node stops and the demo's data is removed.
  const demo = await call('POST', `/session/${session}/execute/async`, {
    script: `const done = arguments[arguments.length - 1];
      window.__TAURI_INTERNALS__.invoke('demo_start', { nodes: 2 })
        .then((d) => done(d.data_dir), (e) => done('error: ' + JSON.stringify(e)));`,
    args: [],
  });
  if (typeof demo !== 'string' || !existsSync(demo)) throw new Error(`the demo did not start: ${demo}`);
  await until('the window to watch a demo node', async () => (await text(await find('[data-field="peer-id"]'))) !== '' );
  shot('app-03-demo');
  const pid = appPid();
  if (!pid) throw new Error('cannot find the app process');
  process.kill(pid, 'SIGTERM');
  await apiDown();
  await until('the app process to end', () => !existsSync(`/proc/${pid}`), 20_000);
  if (existsSync(demo)) throw new Error(`SIGTERM left the demo's data behind: ${demo}`);
  const left = readdirSync(appTmp).filter((f) => f.startsWith('lattice-app-demo-'));
  if (left.length) throw new Error(`leftover demo directories: ${left}`);
  console.log('ok: SIGTERM stops the app and removes the demo cluster\'s data');
  await call('DELETE', `/session/${session}`).catch(() => {});
  session = undefined;

  // The exit status of a SIGTERM, seen by the process that started the app.
  const direct = spawn(APP, [], { env, cwd: work, stdio: 'ignore' });
  children.push(direct);
  await until('the relaunched app API', async () => (await fetch(`${api}/p2p/status`)).ok, 30_000);
  direct.kill('SIGTERM');
  const code = await exited(direct, 20_000);
  if (code !== 0) throw new Error(`SIGTERM: the app exited with ${code}, not 0`);
  console.log('ok: SIGTERM quits the app with status 0');
} catch (e) {
  failed = true;
  console.error(`FAILED: ${e.message}`);
  try { shot('app-failure'); } catch { /* no display */ }
} finally {
  if (session) await call('DELETE', `/session/${session}`).catch(() => {});
  for (const c of children.reverse()) c.kill('SIGTERM');
}
process.exit(failed ? 1 : 0);

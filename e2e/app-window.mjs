// The real desktop app in a real window: started under Xvfb through WebDriver
// (tauri-driver + WebKitWebDriver), it must show its own node's live status, follow a
// change made through the node's API, hand a second launch over to the first window, and
// quit cleanly on SIGTERM, removing the demo cluster's data. Screenshots are taken with
// ImageMagick (WebDriver's own screenshot hangs under Xvfb) into artifacts/e2e/.
// Run it under `dbus-run-session` (the single-instance plugin finds the first instance
// over the D-Bus session bus).
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ARTIFACTS, startAppHarness, until } from './lib.mjs';

const harness = await startAppHarness({ width: 1280, height: 720, displayBase: 90, prefix: 'lattice-app', rustLog: 'info' });
const { env, work, appTmp, appPid, call: wdCall } = harness;
const APP = harness.app;
const api = `${harness.own}/api/lattice`;

const exited = (child, ms) => until('the process to exit', () => child.exitCode !== null || child.signalCode !== null, ms)
  .then(() => child.exitCode ?? child.signalCode);
const apiDown = () => until('the app to close', async () => {
  try { await fetch(`${api}/p2p/status`); return false; } catch { return true; }
}, 20_000);

const call = (method, path, body) => wdCall(method, path, body, 120_000);
const shot = (name) => execFileSync('import', ['-window', 'root', join(ARTIFACTS, `${name}.png`)], { env });

let failed = false;
let session;
try {
  session = await harness.session();
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
  const direct = harness.start(APP, []);
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
  harness.stop();
}
process.exit(failed ? 1 : 0);

// The accept prompt in the real desktop app (issue 10): the app's node holds a closed
// ledger (made with `lattice init`); an unknown node of that ledger (a `lattice node`
// with a key that is no author, not allow-listed, not a bootstrap peer of the app)
// dials the app over P2P. The window must show it as a card with its PeerId and address
// while the node keeps it pending (not counted, not synced with); a real click on
// Accept must make the node admit it, the card go away, and the peer count as a sync
// peer. Screenshots with ImageMagick into artifacts/e2e/admission-*.png.
// Run it under `dbus-run-session` (the single-instance plugin needs a session bus).
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ARTIFACTS, LATTICE, freePort, startAppHarness, until } from './lib.mjs';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'lattice-admission-'));
const children = [];
const cleanup = () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
};
process.once('exit', cleanup);

// The ledger: a founder's env file, of which every node gets LATTICE_LEDGER and LATTICE_GENESIS.
const founder = join(dir, 'founder.env');
writeFileSync(founder, '');
execFileSync(LATTICE, ['init', '--name', 'admission-check'], { env: { ...process.env, LATTICE_ENV_FILE: founder } });
const ledgerLines = readFileSync(founder, 'utf8').split('\n').filter((l) => /^LATTICE_(LEDGER|GENESIS)=/.test(l));
if (ledgerLines.length !== 2) throw new Error(`lattice init wrote no LATTICE_LEDGER/LATTICE_GENESIS: ${readFileSync(founder, 'utf8')}`);

const appP2p = await freePort();
const harness = await startAppHarness({ width: 1280, height: 720, displayBase: 60, prefix: 'lattice-admission-app', p2pPort: appP2p, envLines: ledgerLines });
const { env, call } = harness;
const api = `${harness.own}/api/lattice`;
const shot = (name) => run('import', ['-window', 'root', join(ARTIFACTS, `admission-${name}.png`)], { env, timeout: 15_000 });
const status = async (base) => (await fetch(`${base}/p2p/status`, { signal: AbortSignal.timeout(2000) })).json();

let failed = false;
let session;
try {
  session = await harness.session();
  const S = `/session/${session}`;
  const script = (body, args = []) => call('POST', `${S}/execute/sync`, { script: body, args }, 10_000);
  const find = async (css) => {
    try {
      return Object.values(await call('POST', `${S}/element`, { using: 'css selector', value: css }) ?? {})[0] ?? null;
    } catch (e) {
      if (/no such element/.test(e.message)) return null;
      throw e;
    }
  };
  await call('POST', `${S}/window/rect`, { x: 0, y: 0, width: 1280, height: 720 }).catch(() => {});
  const own = await until('the app node API', () => status(api), 30_000);
  if (own.ledger?.open !== false || own.ledger?.name !== 'admission-check') {
    throw new Error(`the app's node does not hold the closed ledger: ${JSON.stringify(own.ledger ?? null)}`);
  }

  // The stranger: same ledger, a key of its own (no author), dialling the app.
  const strangerHttp = await freePort();
  const strangerEnv = join(dir, 'stranger.env');
  writeFileSync(strangerEnv, [
    `LATTICE_DATA_DIR=${join(dir, 'stranger-data')}`,
    'LATTICE_P2P_LISTEN=/ip4/127.0.0.1/tcp/0',
    `LATTICE_HTTP_LISTEN=127.0.0.1:${strangerHttp}`,
    `LATTICE_BOOTSTRAP=/ip4/127.0.0.1/tcp/${appP2p}/p2p/${own.node.peer_id}`,
    'LATTICE_HEARTBEAT=250ms', 'LATTICE_FALLBACK_AFTER=3s',
    ...ledgerLines, '',
  ].join('\n'));
  const stranger = spawn(LATTICE, ['node'], { env: { ...process.env, LATTICE_ENV_FILE: strangerEnv, RUST_LOG: 'warn' }, stdio: 'ignore' });
  children.push(stranger);
  const strangerApi = `http://127.0.0.1:${strangerHttp}/api/lattice`;
  const strangerId = (await until('the stranger node API', () => status(strangerApi), 30_000)).node.peer_id;

  const card = await until('the window to show the stranger as an accept card', () => find(`.admission__card[data-peer="${strangerId}"]`), 30_000);
  const pending = (await status(api)).peers.find((p) => p.peer_id === strangerId);
  if (!pending || pending.admitted !== false) throw new Error(`the node does not hold the stranger as pending: ${JSON.stringify(pending)}`);
  if ((await status(api)).peer_count !== 0) throw new Error('a pending peer counts as a sync peer');
  const shown = await script(`const c = document.querySelector('.admission__card[data-peer="' + arguments[0] + '"]');
    const r = c.getBoundingClientRect();
    return { text: c.textContent, inside: r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight && r.right <= innerWidth };`, [strangerId]);
  if (!shown.inside) throw new Error('the accept card is not on screen');
  if (!shown.text.includes(strangerId)) throw new Error(`the card does not name the PeerId: ${shown.text}`);
  if (!shown.text.includes('127.0.0.1')) throw new Error(`the card does not show the address: ${shown.text}`);
  await shot('01-pending');
  console.log(`admission-app: the window asks about ${strangerId.slice(0, 16)}… (pending, not counted)`);

  const accept = await find(`.admission__card[data-peer="${strangerId}"] [data-action="accept"]`);
  if (!accept || !card) throw new Error('the card has no Accept button');
  await call('POST', `${S}/element/${accept}/click`, {});
  await until('the node to admit the stranger and count it', async () => {
    const s = await status(api);
    const p = s.peers.find((x) => x.peer_id === strangerId);
    return p && p.admitted !== false && s.peer_count >= 1;
  }, 30_000);
  await until('the card to go away', async () => (await find(`.admission__card[data-peer="${strangerId}"]`)) === null, 15_000);
  await shot('02-accepted');
  console.log('admission-app: Accept clicked: the node admits and counts it, the card is gone');
} catch (e) {
  failed = true;
  console.error(`FAILED: ${e.message}`);
  await shot('failure').catch(() => {});
} finally {
  if (session) await call('DELETE', `/session/${session}`, undefined, 15_000).catch(() => {});
  harness.stop();
  cleanup();
}
process.exit(failed ? 1 : 0);

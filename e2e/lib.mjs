// Shared helpers for the end-to-end checks: real `lattice` processes on loopback.
import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, writeFileSync, mkdirSync, chmodSync, existsSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir, homedir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Cargo's target directory (CARGO_TARGET_DIR when set). */
export const TARGET = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(ROOT, 'target');
export const LATTICE = join(TARGET, 'debug', 'lattice');
export const ARTIFACTS = join(ROOT, 'artifacts', 'e2e');
mkdirSync(ARTIFACTS, { recursive: true });

export function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

/** Waits until `check()` is truthy, every 50 ms, failing after `ms` with `what`. */
export async function until(what, check, ms = 20_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    let value;
    try { value = await check(); } catch { value = undefined; }
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Starts `lattice node` processes. Node i bootstraps to node 0 over P2P and lists the
 * others as HTTP neighbours; timers are fast (heartbeat 200ms, fallback 2s, poll 500ms).
 */
export async function startNodes(count, extraEnv = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'lattice-e2e-'));
  const http = [];
  const p2p = [];
  for (let i = 0; i < count; i++) { http.push(await freePort()); p2p.push(await freePort()); }
  const peerIds = [];
  for (let i = 0; i < count; i++) {
    const env = join(dir, `n${i}.env`);
    writeFileSync(env, [
      `LATTICE_DATA_DIR=${join(dir, `data-${i}`)}`,
      `LATTICE_P2P_LISTEN=/ip4/127.0.0.1/tcp/${p2p[i]}`,
      `LATTICE_HTTP_LISTEN=127.0.0.1:${http[i]}`,
      `LATTICE_HTTP_NEIGHBORS=${http.filter((_, j) => j !== i).map((p) => `http://127.0.0.1:${p}`).join(',')}`,
      'LATTICE_HEARTBEAT=200ms', 'LATTICE_FALLBACK_AFTER=2s', 'LATTICE_HTTP_POLL=500ms', '',
    ].join('\n'));
    peerIds.push(execFileSync(LATTICE, ['keygen', '--env-file', env], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim());
  }
  const procs = [];
  for (let i = 0; i < count; i++) {
    const env = { ...process.env, ...extraEnv, RUST_LOG: 'warn' };
    if (i > 0) env.LATTICE_BOOTSTRAP = `/ip4/127.0.0.1/tcp/${p2p[0]}/p2p/${peerIds[0]}`;
    const child = spawn(LATTICE, ['--env-file', join(dir, `n${i}.env`), 'node'], { env, stdio: 'ignore' });
    procs.push(child);
  }
  const urls = http.map((p) => `http://127.0.0.1:${p}/`);
  for (const u of urls) await until(`node ${u} to answer`, async () => (await fetch(`${u}api/lattice/p2p/status`)).ok);
  return {
    urls,
    status: async (i) => (await fetch(`${urls[i]}api/lattice/p2p/status`)).json(),
    stop: async () => {
      for (const c of procs) c.kill('SIGTERM');
      await Promise.all(procs.map((c) => new Promise((r) => (c.exitCode !== null ? r() : c.once('exit', r)))));
    },
  };
}

/**
 * The desktop app under Xvfb, driven through WebDriver (tauri-driver + WebKitWebDriver),
 * for the checks that need the real window (app-window.mjs, truth-app.mjs). Each run gets
 * its own display, HOME, XDG_RUNTIME_DIR, working directory (with the app's `.env`: its
 * node on `127.0.0.1:<ownPort>`, fast timers) and TMPDIR, and its own WebDriver ports
 * (tauri-driver's and WebKitWebDriver's native one: the default 4445 may be another
 * run's). Every child leads its own process group; `cleanup()` ends them all and the app,
 * and removes the directories (it also runs when this process exits).
 */
export async function startAppHarness({ width = 1280, height = 720, displayBase = 80, prefix = 'lattice-app', rustLog = 'warn', p2pPort = 0, envLines = [] } = {}) {
  const app = process.env.LATTICE_APP || join(TARGET, 'debug', 'lattice-app');
  const cargoDriver = join(homedir(), '.cargo', 'bin', 'tauri-driver');
  const driver = process.env.TAURI_DRIVER || (existsSync(cargoDriver) ? cargoDriver : 'tauri-driver');
  if (!process.env.DBUS_SESSION_BUS_ADDRESS) throw new Error('run this under dbus-run-session');
  if (!existsSync(app)) throw new Error(`no app at ${app}: cargo build -p lattice-app --features custom-protocol`);
  const temps = ['home', 'run', 'cwd', 'tmp'].map((n) => mkdtempSync(join(tmpdir(), `${prefix}-${n}-`)));
  const [home, runtime, work, appTmp] = temps;
  chmodSync(runtime, 0o700);
  const ownPort = await freePort();
  writeFileSync(join(work, '.env'), [
    `LATTICE_P2P_LISTEN=/ip4/127.0.0.1/tcp/${p2pPort}`,
    `LATTICE_HTTP_LISTEN=127.0.0.1:${ownPort}`,
    'LATTICE_HEARTBEAT=250ms', 'LATTICE_FALLBACK_AFTER=3s', ...envLines, '',
  ].join('\n'));
  // A display nobody holds: a killed Xvfb leaves its lock and socket behind, and an Xvfb
  // started on such a display exits at once while the stale socket looks alive.
  const freeDisplays = [...Array(9).keys()].map((i) => displayBase + i).filter((n) => !existsSync(`/tmp/.X${n}-lock`));
  if (!freeDisplays.length) throw new Error(`no free X display in :${displayBase}-:${displayBase + 8} (stale /tmp/.X*-lock files?)`);
  const display = `:${freeDisplays[Math.floor(Math.random() * freeDisplays.length)]}`;
  const env = { ...process.env, DISPLAY: display, HOME: home, XDG_RUNTIME_DIR: runtime,
    RUST_LOG: rustLog, TMPDIR: appTmp };
  // WebKit's own renderer choice, as users get it. WEBKIT_DISABLE_DMABUF_RENDERER=1 (which
  // these checks used to set) repaints the whole window on every change in software: at
  // 1920x1080 under Xvfb that kept the page's main thread ~85% busy and a 100 ms timer fired
  // every ~500 ms (about:blank in the same window: every 100 ms). LATTICE_E2E_NO_DMABUF=1
  // brings that renderer back, to compare.
  if (process.env.LATTICE_E2E_NO_DMABUF === '1') env.WEBKIT_DISABLE_DMABUF_RENDERER = '1';
  else delete env.WEBKIT_DISABLE_DMABUF_RENDERER;
  const children = [];
  const start = (cmd, args) => {
    const c = spawn(cmd, args, { env, cwd: work, stdio: 'ignore', detached: true });
    children.push(c);
    return c;
  };
  /** The app this run started (its binary, and this run's HOME), or null. */
  const appPid = () => {
    let exe;
    try { exe = realpathSync(app); } catch { return null; }
    for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      try {
        if (readlinkSync(`/proc/${pid}/exe`) !== exe) continue;
        if (readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(`HOME=${home}`)) return Number(pid);
      } catch { /* gone, or not ours */ }
    }
    return null;
  };
  let cleaned = false;
  const cleanup = () => {
    if (cleaned) return;
    cleaned = true;
    const pid = appPid();
    if (pid) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    for (const c of children.reverse()) {
      // Xvfb gets SIGTERM, so it removes its lock and socket; the rest are killed.
      try { process.kill(-c.pid, c.spawnargs[0] === 'Xvfb' ? 'SIGTERM' : 'SIGKILL'); } catch { /* the group is gone */ }
    }
    for (const d of temps) rmSync(d, { recursive: true, force: true });
  };
  process.once('exit', cleanup);

  start('Xvfb', [display, '-screen', '0', `${width}x${height}x24`, '-nolisten', 'tcp']);
  await until(`Xvfb on ${display}`, () => existsSync(`/tmp/.X11-unix/X${display.slice(1)}`), 15_000);
  const driverPort = await freePort();
  start(driver, ['--port', String(driverPort), '--native-port', String(await freePort())]);
  const wd = `http://127.0.0.1:${driverPort}`;
  /** One WebDriver call; its `value`, or an error naming the call (and the time it got). */
  const call = async (method, path, body, ms = 30_000) => {
    let res;
    try {
      res = await fetch(`${wd}${path}`, {
        method, headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(ms),
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new Error(`${method} ${path.replace(/^\/session\/[^/]+/, '')}: ${e.message} (${ms} ms)`);
    }
    const json = await res.json();
    if (!res.ok) throw new Error(`${method} ${path}: ${JSON.stringify(json.value ?? json)}`);
    return json.value;
  };
  await until('tauri-driver to listen', async () => (await fetch(`${wd}/status`)).ok, 15_000);
  /** A WebDriver session on the app (starts it). */
  const session = async () => (await call('POST', '/session', {
    capabilities: { alwaysMatch: { browserName: 'wry', 'tauri:options': { application: app } } },
  }, 120_000)).sessionId;
  return { app, env, home, work, appTmp, ownPort, own: `http://127.0.0.1:${ownPort}`, display, start, children, appPid, call, session,
    stop() { cleanup(); process.removeListener('exit', cleanup); } };
}

/**
 * Runs IN THE PAGE (serialised with `toString()`; keep it self-contained): what a presenter
 * would see wrong in the layout. Everything the story needs must be on screen without
 * scrolling (the lung cards, the graph, the fallback timer, the presenter bar's buttons),
 * a lung's title must not run into its badge or glyph, and no text of the presenter bar
 * (the flow chart's rates, the timeline) may be cut off. Returns one line per problem.
 */
export function layoutProblems() {
  const out = [];
  const vw = window.innerWidth;
  const vh = window.innerHeight;
  const name = (el) => el.getAttribute('data-action') || el.getAttribute('data-lung') || el.getAttribute('data-field') || el.className.toString().split(' ')[0];
  const shown = (el) => el.checkVisibility ? el.checkVisibility() : el.getBoundingClientRect().width > 0;
  const below = [...document.querySelectorAll('[data-lung], .area--graph > .card, .timer, .presenter button')].filter(shown);
  for (const el of below) {
    const r = el.getBoundingClientRect();
    if (r.bottom > vh + 1 || r.right > vw + 1) out.push(`${name(el)} ends at ${Math.round(r.right)}x${Math.round(r.bottom)}, outside the ${vw}x${vh} window`);
  }
  const hit = (a, b) => a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1;
  for (const lung of document.querySelectorAll('[data-lung]')) {
    const title = lung.querySelector('.lung__titles');
    for (const other of lung.querySelectorAll('.lung__badge, .lung__glyph')) {
      if (title && shown(other) && hit(title.getBoundingClientRect(), other.getBoundingClientRect())) out.push(`the ${lung.getAttribute('data-lung')} lung's title overlaps its ${other.className.toString().split(' ')[0]}`);
    }
  }
  for (const el of document.querySelectorAll('.flow__rate, .flow__title, .timeline__step:not(.is-hidden), .presenter button')) {
    if (!shown(el)) continue;
    const r = el.getBoundingClientRect();
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      const cs = getComputedStyle(p);
      if (cs.overflow === 'visible' && cs.overflowX === 'visible') continue;
      const q = p.getBoundingClientRect();
      if (r.right > q.right + 1 || r.bottom > q.bottom + 1 || r.left < q.left - 1) out.push(`"${(el.textContent || '').trim().slice(0, 30)}" is cut off by ${name(p)}`);
      break;
    }
  }
  return out;
}

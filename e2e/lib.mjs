// Shared helpers for the end-to-end checks: real `lattice` processes on loopback.
import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

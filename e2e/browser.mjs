// The dashboard in a real browser (Debian's Chromium, driven by playwright-core) against
// the page served by real `lattice node` processes. Buttons must change the nodes' real
// state; cutting P2P must show the countdown and then the HTTP lung carrying sync.
// Screenshots go to artifacts/e2e/.
import { chromium } from 'playwright-core';
import { join } from 'node:path';
import { ROOT, ARTIFACTS, startNodes, until } from './lib.mjs';

const nodes = await startNodes(2, { LATTICE_UI_DIR: join(ROOT, 'ui', 'dist') });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let failed = false;
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(nodes.urls[0]);
  const shot = (name) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });

  // Live status: two nodes connected over P2P, the P2P lung carrying sync.
  await page.locator('[data-lung="p2p"].is-carrying').waitFor({ timeout: 20_000 });
  await until('node 0 to sync over P2P', async () => (await nodes.status(0)).sync_mode === 'P2P');
  await shot('01-p2p-carrying');
  console.log('ok: the page shows the P2P lung carrying sync');

  // The mode buttons change the node's real mode.
  await page.click('[data-mode="http"]');
  await until('node 0 to be in http mode', async () => (await nodes.status(0)).mode === 'http');
  await page.locator('[data-mode="http"][aria-pressed="true"]').waitFor();
  await page.locator('[data-lung="http"].is-carrying').waitFor();
  await shot('02-forced-http');
  console.log('ok: HTTP button switched the node to http');
  await page.click('[data-mode="auto"]');
  await until('node 0 back in auto mode', async () => (await nodes.status(0)).mode === 'auto');
  await page.locator('[data-lung="p2p"].is-carrying').waitFor();
  console.log('ok: Auto button switched the node back to auto');

  // Cut P2P for real: the countdown, then the HTTP lung takes over.
  await page.click('[data-action="cut-p2p"]');
  await until('node 0 to cut P2P', async () => (await nodes.status(0)).p2p_blocked === true);
  await page.locator('.timer.is-countdown').waitFor({ timeout: 10_000 });
  await shot('03-countdown');
  console.log('ok: cutting P2P shows the fallback countdown');
  await page.locator('.timer.is-fallback').waitFor({ timeout: 10_000 });
  await page.locator('[data-lung="http"].is-carrying').waitFor();
  await until('node 0 to sync over HTTP', async () => (await nodes.status(0)).sync_mode === 'HTTP');
  await shot('04-http-fallback');
  console.log('ok: after the countdown the HTTP lung carries sync');

  // Restore: P2P comes back.
  await page.click('[data-action="cut-p2p"]');
  await until('node 0 to restore P2P', async () => {
    const s = await nodes.status(0);
    return !s.p2p_blocked && s.sync_mode === 'P2P';
  });
  await page.locator('[data-lung="p2p"].is-carrying').waitFor({ timeout: 10_000 });
  await shot('05-p2p-restored');
  console.log('ok: restoring P2P brings the P2P lung back');

  if (errors.length) throw new Error(`the page logged errors:\n${errors.join('\n')}`);
} catch (e) {
  failed = true;
  console.error(`FAILED: ${e.message}`);
} finally {
  await browser.close();
  await nodes.stop();
}
process.exit(failed ? 1 : 0);

// Screenshots of the states a presenter must never see wrong: a node that is lost, and a
// first launch with nobody to sync with. Debian's Chromium through playwright-core.
// Usage: KILL_PID=<pid of the node> node scripts/shots-states.mjs <url> <outdir> <name>
//   without KILL_PID: one screenshot per size/theme/mode of the page as it is (e.g. the welcome card);
//   with KILL_PID: screenshots live, kills the process, waits for the page to say it lost the
//   node (body[data-lost]) and screenshots again 3 s later (frozen, stale, nothing animating).
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const [url, out = '/tmp/ui-shots', name = 'state'] = process.argv.slice(2);
mkdirSync(out, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const sizes = (process.env.SIZES ?? '1280x720,1920x1080').split(',').map((s) => s.split('x').map(Number));
const themes = (process.env.THEMES ?? 'light,dark').split(',');
const presents = (process.env.PRESENTS ?? '0,1').split(',').map((p) => p === '1');
const pages = [];
for (const [w, h] of sizes) for (const theme of themes) for (const present of presents) {
  const page = await browser.newPage({ viewport: { width: w, height: h } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${url}?theme=${theme}&present=${present ? 1 : 0}`);
  await page.waitForSelector('.grid:not([hidden])', { timeout: 10000 });
  await page.waitForSelector('[data-field="connection"][data-value="live"]', { timeout: 10000 });
  pages.push({ page, errors, file: `${out}/${name}-${w}x${h}-${theme}${present ? '-present' : ''}` });
}
await new Promise((r) => setTimeout(r, 1500));
for (const p of pages) await p.page.screenshot({ path: `${p.file}.png` });
if (process.env.KILL_PID) {
  process.kill(Number(process.env.KILL_PID), 'SIGKILL');
  for (const p of pages) await p.page.waitForSelector('body[data-lost="true"] [data-field="lost-banner"]:not([hidden])', { timeout: 10000 });
  await new Promise((r) => setTimeout(r, 3000));
  for (const p of pages) {
    await p.page.screenshot({ path: `${p.file}-lost.png` });
    const running = await p.page.evaluate(() => document.getAnimations().filter((a) => a.playState === 'running').length);
    const live = await p.page.evaluate(() => [...document.querySelectorAll('[data-field]')].filter((e) => !['connection', 'lost-banner'].includes(e.getAttribute('data-field')) && e.getAttribute('data-stale') !== 'true').map((e) => e.getAttribute('data-field')));
    console.log(`${p.file}-lost.png: ${running} running animations; fields not marked stale: ${live.join(', ') || 'none'}`);
  }
}
for (const p of pages) if (p.errors.length) console.log('page errors', p.file, p.errors);
await browser.close();

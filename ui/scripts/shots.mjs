// Screenshots of the dashboard in Debian's Chromium (playwright-core, no bundled browser).
// Usage: node scripts/shots.mjs [url] [outdir]     (default http://127.0.0.1:4173/, /tmp/ui-shots)
// With SCENARIO=cut it also clicks "Cut P2P", captures the countdown and the HTTP takeover,
// then clicks "Restore P2P" and captures P2P back.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const url = process.argv[2] ?? 'http://127.0.0.1:4173/';
const out = process.argv[3] ?? '/tmp/ui-shots';
mkdirSync(out, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

async function open(w, h, theme, present) {
  const page = await browser.newPage({ viewport: { width: w, height: h } });
  const errors = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${url}?theme=${theme}&present=${present ? 1 : 0}`);
  await page.waitForSelector('.grid:not([hidden])', { timeout: 10000 });
  await page.waitForTimeout(1500);
  return { page, errors };
}

const shots = [];
if (process.env.SCENARIO === 'mode') {
  // Force HTTP with the segmented control, check the node really switched, then back to Auto.
  const theme = process.env.THEME ?? 'dark';
  const { page, errors } = await open(1280, 720, theme, false);
  await page.click('.segmented [data-mode="http"]');
  await page.waitForSelector('.segmented [data-mode="http"][aria-pressed="true"]', { timeout: 10000 });
  await page.waitForSelector('.lung--http.is-breathing', { timeout: 10000 });
  await page.waitForTimeout(1500);
  const file = `${out}/mode-http-${theme}.png`;
  await page.screenshot({ path: file });
  shots.push(file);
  const nodeMode = await page.evaluate(async () => (await (await fetch('/api/lattice/p2p/status')).json()).mode);
  console.log('node mode after clicking HTTP:', nodeMode);
  await page.click('.segmented [data-mode="auto"]');
  await page.waitForSelector('.segmented [data-mode="auto"][aria-pressed="true"]', { timeout: 10000 });
  if (errors.length) console.log('console errors', errors);
} else if (process.env.SCENARIO === 'proof') {
  // Write an entry through the form, then verify its inclusion proof in the browser.
  const theme = process.env.THEME ?? 'light';
  const { page, errors } = await open(1920, 1080, theme, false);
  await page.fill('.entries__payload', '{"to": "acme", "amount": 1250, "ref": "INV-2041"}');
  await page.click('.entries__form button[type=submit]');
  await page.waitForTimeout(1500);
  await page.click('.entry__id >> nth=0');
  await page.waitForSelector('.proof__verdict.is-ok, .proof__verdict.is-bad', { timeout: 10000 });
  await page.fill('.entries__payload', '{"to": "acme", amount: }');
  await page.click('.gnode--p2p >> nth=0');
  await page.waitForTimeout(500);
  const file = `${out}/proof-${theme}.png`;
  await page.screenshot({ path: file, fullPage: true });
  shots.push(file);
  console.log('verdict:', await page.textContent('.proof__verdict'));
  if (errors.length) console.log('console errors', errors);
} else if (process.env.SCENARIO !== 'cut') {
  for (const [w, h] of [[1280, 720], [1920, 1080]]) {
    for (const theme of ['light', 'dark']) {
      for (const present of [false, true]) {
        const { page, errors } = await open(w, h, theme, present);
        const file = `${out}/${w}x${h}-${theme}${present ? '-present' : ''}.png`;
        await page.screenshot({ path: file });
        if (!present && w === 1920) await page.screenshot({ path: file.replace('.png', '-full.png'), fullPage: true });
        shots.push(file);
        if (errors.length) console.log('console errors', file, errors);
        await page.close();
      }
    }
  }
} else {
  const theme = process.env.THEME ?? 'dark';
  const [sw, sh] = (process.env.SIZE ?? '1920x1080').split('x').map(Number);
  const { page, errors } = await open(sw, sh, theme, process.env.PRESENT === '1');
  // Nothing may move when the state changes: record the boxes of the main blocks.
  const boxes = [];
  const layout = () => page.evaluate(() => ['.segmented', '.carrier', '[data-action="cut-p2p"]', '.lung--p2p', '.lung--http', '.timer', '.merkle', '.graph']
    .map((s) => { const r = document.querySelector(s)?.getBoundingClientRect(); return r ? `${s}:${Math.round(r.x)},${Math.round(r.y)},${Math.round(r.width)}x${Math.round(r.height)}` : `${s}:-`; }));
  const snap = async (name) => {
    boxes.push(await layout());
    const file = `${out}/cut-${name}-${theme}-${sw}${process.env.PRESENT === "1" ? "-present" : ""}.png`;
    await page.screenshot({ path: file });
    shots.push(file);
  };
  await snap('0-p2p');
  await page.click('[data-action="cut-p2p"]');
  await page.waitForSelector('.timer.is-countdown', { timeout: 10000 });
  await page.waitForTimeout(1500);
  await snap('1-countdown');
  await page.waitForSelector('.timer.is-fallback', { timeout: 20000 });
  await page.waitForTimeout(2500);
  await snap('2-http-active');
  await page.click('[data-action="cut-p2p"]');
  await page.waitForSelector('.lung--p2p.is-breathing', { timeout: 20000 });
  await page.waitForTimeout(2500);
  await snap('3-p2p-back');
  const moved = boxes[0].map((_, i) => i).filter((i) => boxes.some((bs) => bs[i] !== boxes[0][i]));
  console.log(moved.length ? `LAYOUT MOVED:\n${moved.map((i) => boxes.map((bs) => bs[i]).join(' -> ')).join('\n')}` : 'layout stable across all four states');
  if (errors.length) console.log('console errors', errors);
}
await browser.close();
console.log(shots.join('\n'));

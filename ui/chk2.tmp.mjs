import { chromium } from 'playwright-core';
const b = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox','--disable-gpu'] });
const p = await b.newPage({ viewport: { width: 1280, height: 720 } });
await p.goto(process.argv[2]);
await p.waitForSelector('[data-field="connection"][data-value="live"]');
let stale = 0, n = 0;
for (let i = 0; i < 75; i++) {
  await p.waitForTimeout(200);
  stale += await p.evaluate(() => document.querySelectorAll('[data-graph-machine][data-stale="true"]').length);
  n++;
}
console.log({ samples: n, staleCircleSamples: stale });
await b.close();

// The truth check against the browser dashboard (issue 9): Debian's Chromium (through
// playwright-core) shows the page a headless `lattice node` serves, while three real nodes
// connect, sync, switch mode, lose P2P to the HTTP fallback and get it back; every 100 ms
// the page's contract attributes are compared with the node's own status JSON. Then the
// node is killed: within a second the page must say it lost the node (connection "lost",
// the lost banner, body data-lost) and afterwards show nothing "live" and animate nothing.
// Screenshots: artifacts/e2e/truth-browser-*.png.
import { chromium } from 'playwright-core';
import { join } from 'node:path';
import { ROOT, ARTIFACTS, until } from './lib.mjs';
import { LIMIT_MS, collectTruth, startCluster, startSampler, verdict, versionProblem, listed, reportInterrupted, traceNodeStream, traceLines } from './truth-lib.mjs';

const WIDTH = Number(process.env.TRUTH_WIDTH || 1280);
const HEIGHT = Number(process.env.TRUTH_HEIGHT || 720);
const step = (what) => console.log(`truth-browser: ${what}`);
/**
 * TRUTH_SELFTEST=frozen: the check's own test. The page's status stream goes silent just
 * before the cut, so the window shows P2P carrying while the node is cut; the check must
 * fail on that, and this run succeeds only if it does.
 */
const FROZEN = process.env.TRUTH_SELFTEST === 'frozen';

const cluster = await startCluster(3, { LATTICE_UI_DIR: join(ROOT, 'ui', 'dist') });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});  // Playwright gives the browser a fresh, empty profile of its own.
let failed = false;
let sampler;
let page;
/** Our own reader of Branch A's event stream: when the node sent each snapshot. */
const nodeStream = traceNodeStream(cluster.apis[0]);
try {
  const [a, b, c] = cluster.apis;
  page = await browser.newPage({ viewport: { width: WIDTH, height: HEIGHT } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const shot = (name) => page.screenshot({ path: join(ARTIFACTS, `truth-browser-${WIDTH}x${HEIGHT}-${name}.png`) });
  if (FROZEN) {
    // The self-test's fault: the page's status stream silently stops delivering (the
    // connection stays open), so the page keeps showing its last snapshot as live.
    await page.addInitScript(() => {
      const real = window.fetch.bind(window);
      window.fetch = async (input, init) => {
        const res = await real(input, init);
        if (!String(input).includes('/api/lattice/events') || !res.body) return res;
        const reader = res.body.getReader();
        const body = new ReadableStream({
          async pull(c) {
            if (window.__truthFrozen) return new Promise(() => {});
            const { done, value } = await reader.read();
            if (done) c.close();
            else if (!window.__truthFrozen) c.enqueue(value);
          },
        });
        return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
      };
    });
  }
  // `?debug=snapshots`: the page keeps every snapshot it is offered (GET, stream, replies),
  // with seq and now_ms, applied or dropped; printed beside the node's on a failure.
  await page.goto(`${a}/?debug=snapshots`);
  await page.locator('[data-field]').first().waitFor({ timeout: 20_000 });
  const problem = versionProblem(await page.evaluate(collectTruth));
  // TRUTH_ANY_UI=1 plays the story against an older UI anyway (to see what it gets wrong).
  if (problem && process.env.TRUTH_ANY_UI !== '1') throw new Error(problem);
  if (problem) console.log(`truth-browser: going on anyway (TRUTH_ANY_UI=1): ${problem}`);

  // The page was opened at Branch A: that is the node it must watch.
  sampler = startSampler({ collect: async () => ({ page: await page.evaluate(collectTruth), watched: a }), candidates: () => [a], unreachable: 'lost', log: console.log });
  const status = () => cluster.status(0);
  const write = async (api, what) => {
    const r = await fetch(`${api}/api/lattice/entries`, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ payload: { truth: what, at: Date.now() } }) });
    if (!r.ok) throw new Error(`writing to ${api} failed: ${r.status} ${await r.text()}`);
  };

  await until('Branch A to sync over P2P with both others', async () => {
    const s = await status();
    return s.peer_count >= 2 && s.sync_state === 'p2p' && s.neighbors.every((n) => n.peer_id);
  }, 30_000);
  await shot('01-p2p');
  step('three nodes over P2P');

  const before = (await status()).entry_count;
  await write(b, 'written on Branch B');
  await until('the entry from Branch B to reach Branch A', async () => (await status()).entry_count > before, 10_000);
  await until('every root to agree', async () => expectedAllMatch(await status()), 15_000);
  await shot('02-entry-synced');
  step('an entry written on Branch B reached Branch A');

  await page.click('[data-mode="http"]');
  await until('Branch A in http mode', async () => (await status()).mode === 'http', 10_000);
  await until('HTTP to carry sync', async () => (await status()).sync_state === 'http', 10_000);
  await shot('03-forced-http');
  await page.click('[data-mode="auto"]');
  await until('Branch A back on P2P', async () => { const s = await status(); return s.mode === 'auto' && s.sync_state === 'p2p'; }, 15_000);
  step('mode http and back to auto, from the page');

  if (FROZEN) await page.evaluate(() => { window.__truthFrozen = true; });
  await page.click('[data-action="cut-p2p"]');
  await until('Branch A to count down', async () => (await status()).p2p_state !== 'carrying', 10_000);
  await shot('04-cut');
  await until('HTTP to take over on Branch A', async () => (await status()).sync_state === 'http', 15_000);
  const during = (await status()).entry_count;
  await write(c, 'written on Branch C during the cut');
  await until('the entry written during the cut to reach Branch A over HTTP', async () => (await status()).entry_count > during, 15_000);
  await shot('05-http-fallback');
  step('P2P cut: the countdown, HTTP took over, an entry still arrived');
  // The frozen page of the self-test cannot restore (its button still says "Cut"): it ends here.
  if (!FROZEN) {
  await page.click('[data-action="cut-p2p"]');
  await until('P2P restored on Branch A', async () => { const s = await status(); return !s.p2p_blocked && s.sync_state === 'p2p'; }, 20_000);
  await until('every root to agree again', async () => expectedAllMatch(await status()), 15_000);
  await shot('06-restored');
  step('P2P restored');

  await cluster.kill(2);
  await until('Branch A to notice Branch C is gone', async () => (await status()).peer_count === 1, 20_000);
  await shot('07-neighbour-gone');
  step('Branch C killed; Branch A noticed');

  await cluster.kill(0);
  const killedAt = Date.now();
  step('Branch A (the watched node) killed');
  const lost = await until('the page to say it lost its node', async () => {
    const p = await page.evaluate(collectTruth);
    const banner = (p.fields['lost-banner'] ?? []).some((e) => e.visible);
    const conn = (p.fields.connection ?? []).map((e) => e.value);
    return banner && p.lost === 'true' && conn.length === 1 && conn[0] === 'lost' && Date.now();
  }, 5_000);
  await shot('08-lost');
  if (lost - killedAt > LIMIT_MS) throw new Error(`the page took ${lost - killedAt} ms to say it lost its node (limit ${LIMIT_MS} ms)`);
  step(`the page said "lost" ${lost - killedAt} ms after the kill`);
  // Frozen from then on: the sampler keeps checking that nothing says "live" or moves.
  const frozenUntil = Date.now() + 3000;
  await until('three seconds of the lost page', () => Date.now() > frozenUntil, 5000);

  }
  const result = await sampler.stop();
  await printTrace(sampler, result, page);
  sampler = undefined;
  if (FROZEN) {
    console.log(result.report);
    const caught = result.described.filter((_, i) => ['p2p-state', 'sync-state', 'fallback-phase'].includes(result.failures[i].key));
    if (!caught.length) throw new Error('self-test: the page froze before the cut, yet the truth check did not catch it');
    console.log(`ok: self-test: the truth check caught the frozen page:\n${listed(caught)}`);
  } else {
    verdict('truth-browser', result);
  }
  if (errors.length) throw new Error(`the page logged errors:\n${errors.join('\n')}`);
  if (!FROZEN) console.log('ok: the browser dashboard told the truth throughout, and said when it lost its node');
} catch (e) {
  failed = true;
  console.error(`FAILED: ${e.message}`);
  const stopped = sampler;
  const result = await reportInterrupted(stopped);
  if (result) await printTrace(stopped, result, page).catch(() => {});
} finally {
  await nodeStream.stop();
  await browser.close().catch(() => {});
  await cluster.stop();
}
process.exit(failed ? 1 : 0);

/**
 * The snapshots around each disagreement, merged by time: what Branch A served (its status
 * answers to the check, its event stream to our own reader) and what the page was offered
 * and applied. TRUTH_TRACE=<seconds> prints that many first seconds of the run as well.
 */
async function printTrace(s, result, p) {
  const pageRows = p ? await p.evaluate(() => window.__latticeTrace ?? []).catch(() => []) : [];
  const rows = [...s.served, ...nodeStream.rows, ...pageRows.map((r) => ({ ...r, source: `page ${r.source}` }))];
  const spans = result.failures.map((f) => [f.start - 2000, f.start + f.upTo + 1000]);
  if (process.env.TRUTH_TRACE) spans.unshift([-Infinity, s.startedAt + Number(process.env.TRUTH_TRACE) * 1000]);
  for (const [from, to] of spans) {
    console.log(`truth-browser: snapshots from ${((from - s.startedAt) / 1000).toFixed(1)} s to ${((to - s.startedAt) / 1000).toFixed(1)} s into the run:`);
    console.log(traceLines(rows, from, to, s.startedAt).join('\n'));
  }
}

function expectedAllMatch(s) {
  const ms = [...(s.peers ?? []).map((p) => p.root_matches), ...(s.neighbors ?? []).map((n) => n.root_matches)];
  return ms.length > 0 && ms.every((m) => m === true);
}

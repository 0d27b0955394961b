// The truth check's own checks: the comparator must fail on what the issue saw (a stuck
// window, a missing field, every machine twice) and must not fail a face that is merely
// one snapshot behind a busy node. Run with `node --test e2e/truth-lib.test.mjs`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createComparator, expectations, observations, expectedMachines, versionProblem, startSampler, startMergedSampler, TRUTH_VERSION } from './truth-lib.mjs';

const A = '12D3KooWAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
const B = '12D3KooWBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB';
const C = '12D3KooWCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC';
const ROOT = 'ab'.repeat(32);

function status(over = {}) {
  return {
    node: { peer_id: A, name: 'Branch A', http_listen: '127.0.0.1:7001' },
    p2p_state: 'carrying', http_state: 'standby', sync_state: 'p2p', fallback_phase: 'watching', mode: 'auto',
    entry_count: 3, merkle_root: ROOT, peer_count: 1,
    peers: [{ peer_id: B, root_matches: true }],
    neighbors: [{ url: 'http://127.0.0.1:7002', peer_id: B, root_matches: false }, { url: 'http://127.0.0.1:7003', peer_id: null, root_matches: true }],
    ...over,
  };
}

/** The page a face that follows the contract would show for `s`. */
function pageFor(s, over = {}) {
  const f = (value, text = value, extra = {}) => [{ value: String(value), text: String(text), api: null, stale: null, visible: true, ...extra }];
  const machines = expectedMachines(s);
  const identical = machines.length && machines.every((m) => m.agreement === 'match');
  const fields = {
    'watched-node': f(s.node.peer_id, s.node.name, { api: `http://${s.node.http_listen}` }),
    'p2p-state': f(s.p2p_state, 'Carrying sync'), 'http-state': f(s.http_state, 'Standby'),
    'sync-state': f(s.sync_state), 'fallback-phase': f(s.fallback_phase), mode: f(s.mode),
    'entry-count': f(s.entry_count, `${s.entry_count} entries`), root: f(s.merkle_root, `${s.merkle_root.slice(0, 6)}…${s.merkle_root.slice(-4)}`),
    'peer-count': f(s.peer_count, `${s.peer_count} peer`), connection: f('live'),
    ...(identical ? { 'identical-banner': f(machines.length + 1, 'All ledgers identical') } : {}),
  };
  return {
    version: String(TRUTH_VERSION), lost: null, running: 2, live: 1, fields,
    machines: machines.flatMap((m) => [{ ...m, graph: true }, { ...m, graph: false }]),
    ...over,
    ...(over.fields ? { fields: { ...fields, ...over.fields } } : {}),
  };
}

test('a face one snapshot behind a node writing every 300 ms passes, with its lag reported', () => {
  const cmp = createComparator({ startedAt: 0 });
  let shown = status();
  for (let t = 0; t < 5000; t += 100) {
    const now = status({ entry_count: 3 + Math.floor(t / 300) });
    cmp.add(t, expectations(now), observations(pageFor(shown)));
    shown = now;
  }
  assert.deepEqual(cmp.failures(), []);
  assert.match(cmp.report(), /entry-count\s+worst lag\s+≤\s*100 ms/);
});

test('a window stuck on an old value for 1.5 s fails, naming the field, both values and when', () => {
  const cmp = createComparator({ startedAt: 0 });
  for (let t = 0; t <= 3000; t += 100) {
    const now = status({ p2p_state: t >= 1000 ? 'countdown' : 'carrying' });
    const shown = status({ p2p_state: t >= 2500 ? 'countdown' : 'carrying' });
    cmp.add(t, expectations(now), observations(pageFor(shown)));
  }
  const [f, ...rest] = cmp.failures();
  assert.equal(rest.length, 0);
  assert.equal(f.key, 'p2p-state');
  assert.equal(f.ms, 1400); // surely: from the change to the last sample that saw it
  assert.equal(f.upTo, 1500); // at most: to the first sample that did not
  assert.equal(f.start, 1000);
  assert.match(cmp.describe(f), /p2p-state.*showed "carrying" while the node said "countdown", for 1\.4 s from 1\.0 s into the run/);
});

test('a disagreement of exactly one second is within the limit', () => {
  const cmp = createComparator({ startedAt: 0 });
  for (let t = 0; t <= 3000; t += 100) {
    const shown = status({ mode: t >= 1000 && t < 2000 ? 'p2p' : 'auto' });
    cmp.add(t, expectations(status()), observations(pageFor(shown)));
  }
  assert.deepEqual(cmp.failures(), []);
});

test('a disagreement seen once before a long gap between samples is not called long', () => {
  const cmp = createComparator({ startedAt: 0 });
  const at = [0, 100, 200, 3200, 3300];
  for (const t of at) {
    const now = status({ mode: t >= 200 ? 'http' : 'auto' });
    const shown = status({ mode: t >= 3200 ? 'http' : 'auto' });
    cmp.add(t, expectations(now), observations(pageFor(shown)));
  }
  assert.deepEqual(cmp.failures(), []);
  assert.match(cmp.report(), /mode\s+worst lag\s+≤\s*3000 ms/);
});

test('a missing field is a disagreement', () => {
  const cmp = createComparator({ startedAt: 0 });
  for (let t = 0; t <= 2000; t += 100) {
    const page = pageFor(status());
    delete page.fields['sync-state'];
    cmp.add(t, expectations(status()), observations(page));
  }
  assert.deepEqual(cmp.failures().map((f) => [f.key, f.shown]), [['sync-state', '(missing)']]);
});

test('a field shown twice for the watched node fails', () => {
  const cmp = createComparator({ startedAt: 0 });
  const page = pageFor(status());
  page.fields.mode = [...page.fields.mode, ...page.fields.mode];
  for (let t = 0; t <= 2000; t += 100) cmp.add(t, expectations(status()), observations(page));
  assert.match(cmp.failures()[0].shown, /2 elements carry data-field="mode"/);
});

test('every machine drawn twice (by PeerId and by URL) fails the graph count', () => {
  const cmp = createComparator({ startedAt: 0 });
  const page = pageFor(status());
  page.machines.push({ id: 'http://127.0.0.1:7002', links: 'http', agreement: 'differs', graph: true });
  for (let t = 0; t <= 2000; t += 100) cmp.add(t, expectations(status()), observations(page));
  assert.ok(cmp.failures().some((f) => f.key === 'graph machines'));
});

test('the window showing the previous node after a switch fails from the moment of the switch', () => {
  const cmp = createComparator({ startedAt: 0 });
  const other = status({ node: { peer_id: C, name: null, http_listen: '127.0.0.1:7009' }, entry_count: 0, peers: [], neighbors: [] });
  for (let t = 0; t <= 4000; t += 100) {
    cmp.add(t, expectations(t >= 1000 ? other : status()), observations(pageFor(status())));
  }
  const keys = cmp.failures().map((f) => f.key);
  assert.ok(keys.includes('watched-node') && keys.includes('entry-count'), keys.join());
  assert.equal(cmp.failures().find((f) => f.key === 'watched-node').start, 1000);
});

test('a machine known by both lungs is one machine, and takes P2P\'s agreement', () => {
  assert.deepEqual(expectedMachines(status()), [
    { id: B, links: 'p2p,http', agreement: 'match' },
    { id: 'http://127.0.0.1:7003', links: 'http', agreement: 'match' },
  ].sort((a, b) => (a.id < b.id ? -1 : 1)));
});

test('the identical banner is expected only when every machine matches', () => {
  assert.equal(expectations(status()).get('identical-banner').value, '3');
  const split = status({ peers: [{ peer_id: B, root_matches: false }] });
  assert.equal(expectations(split).get('identical-banner').value, 'hidden');
  assert.equal(expectations(status({ peers: [], neighbors: [] })).get('identical-banner').value, 'hidden');
});

test('a node that does not answer must be shown lost, with nothing live and nothing moving', () => {
  const cmp = createComparator({ startedAt: 0 });
  for (let t = 0; t <= 2000; t += 100) cmp.add(t, expectations(null), observations(pageFor(status())));
  assert.deepEqual(cmp.failures().map((f) => f.key).sort(),
    ['body data-lost', 'connection', 'elements saying live', 'lost-banner', 'running animations']);
  const lost = pageFor(status(), { lost: 'true', running: 0, live: 0,
    fields: { connection: [{ value: 'lost', text: 'Lost', visible: true }], 'lost-banner': [{ value: null, text: 'Lost the node', visible: true }] } });
  const ok = createComparator({ startedAt: 0 });
  for (let t = 0; t <= 2000; t += 100) ok.add(t, expectations(null), observations(lost));
  assert.deepEqual(ok.failures(), []);
});

/**
 * A node on a real loopback socket whose status is `state()`; `onAnswered` runs right after
 * each answer is written (the node moving on while the check reads the page).
 */
async function statusServer(state, onAnswered = () => {}) {
  const srv = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(state()), () => onAnswered());
  });
  await new Promise((ok) => srv.listen(0, '127.0.0.1', ok));
  return { api: `http://127.0.0.1:${srv.address().port}`, close: () => new Promise((ok) => srv.close(ok)) };
}

test('a face that is never behind its node passes, even when the node changes between its answer and the page read', async () => {
  // The startup failure of session 3: HTTP took over (the node's third state, equal to its
  // first) just after the node answered the check and just before the page was read. A
  // page that shows the newer snapshot is not wrong: it must not count as wrong since the
  // node last said that value seconds ago.
  let http = 'carrying';
  let answers = 0;
  let flipAt = Infinity;
  const node = await statusServer(() => status({ http_state: http }), () => {
    answers++;
    if (answers === 5) http = 'standby';
    if (answers === flipAt) http = 'carrying';
  });
  try {
    // A perfect face: the page always shows what the node holds at the moment it is read.
    const collect = async () => {
      await new Promise((r) => setTimeout(r, 20));
      return { page: pageFor(status({ http_state: http })), watched: node.api };
    };
    const sampler = startSampler({ collect, candidates: () => [node.api] });
    flipAt = 20; // standby for 1.5 s of samples, then back to carrying
    for (let i = 0; i < 100 && answers < 26; i++) await new Promise((r) => setTimeout(r, 100));
    const result = await sampler.stop();
    assert.ok(answers >= 26, `the node answered ${answers} times`);
    assert.deepEqual(result.described, []);
  } finally {
    await node.close();
  }
});

test('the merged sampler (the app) passes a face that is never behind its node, even when the node changed just before the page sampled itself', async () => {
  let http = 'carrying';
  let answers = 0;
  const samples = [];
  const sample = () => samples.push({ t: Date.now(), page: pageFor(status({ http_state: http })) });
  const node = await statusServer(() => status({ http_state: http }), () => {
    answers++;
    if (answers === 5) http = 'standby';
    if (answers === 20) {
      // The node moves on right after answering, and the page samples itself at once:
      // the latest status taken before that page sample is the older one.
      http = 'carrying';
      sample();
    }
  });
  const ticker = setInterval(sample, 100);
  try {
    const sampler = startMergedSampler({ drainPage: async () => samples.splice(0), apis: () => [node.api], focusAt: () => node.api });
    for (let i = 0; i < 100 && answers < 26; i++) await new Promise((r) => setTimeout(r, 100));
    const result = await sampler.stop();
    assert.ok(answers >= 26, `the node answered ${answers} times`);
    assert.ok(result.samples >= 15, `only ${result.samples} samples were compared`);
    assert.deepEqual(result.described, []);
  } finally {
    clearInterval(ticker);
    await node.close();
  }
});

test('a UI without data-truth-version is named older than the contract', () => {
  assert.match(versionProblem({ version: null }), /older than the truth contract/);
  assert.match(versionProblem({ version: '0' }), /older than the contract/);
  assert.equal(versionProblem({ version: String(TRUTH_VERSION) }), null);
});

test('a page one snapshot behind, showing a value the node passed through between two samples, is late by that snapshot only', () => {
  // Session 4: peers came back 0 -> 1 -> 2 between two samples 600 ms apart; the page
  // still showed 1, which the check had last seen the node say during the cut, 6 s before.
  const cmp = createComparator({ startedAt: 0 });
  const meta = (nodeSeq, pageSeq) => ({ nodeId: A, nodeSeq, pageId: A, pageSeq });
  let seq = 10;
  for (let t = 0; t <= 500; t += 100) cmp.add(t, expectations(status({ peer_count: 1 })), observations(pageFor(status({ peer_count: 1 }))), meta(seq, seq));
  for (let t = 600; t <= 5000; t += 100) { seq++; cmp.add(t, expectations(status({ peer_count: 0 })), observations(pageFor(status({ peer_count: 0 }))), meta(seq, seq)); }
  // The node said 1 (seq + 1) and 2 (seq + 2) unseen; the page got seq + 1.
  cmp.add(5600, expectations(status({ peer_count: 2 })), observations(pageFor(status({ peer_count: 1 }))), meta(seq + 2, seq + 1));
  cmp.add(6200, expectations(status({ peer_count: 2 })), observations(pageFor(status({ peer_count: 2 }))), meta(seq + 2, seq + 2));
  assert.deepEqual(cmp.failures().map((f) => cmp.describe(f)), []);
});

test('a page stuck on an old snapshot fails from when the node surely had a newer one, whatever value history says', () => {
  const cmp = createComparator({ startedAt: 0 });
  for (let t = 0; t <= 3000; t += 100) {
    const nodeSeq = t >= 1000 ? 20 + t / 100 : 5;
    const now = status({ p2p_state: t >= 1000 ? 'countdown' : 'carrying' });
    cmp.add(t, expectations(now), observations(pageFor(status())), { nodeId: A, nodeSeq, pageId: A, pageSeq: 5 });
  }
  const [f] = cmp.failures();
  assert.equal(f.key, 'p2p-state');
  assert.equal(f.start, 1000);
  assert.equal(f.ms, 2000);
});

test('a page whose seq trails the node\'s (pings the page does not show) is late from the change it missed, not from its seq', () => {
  const cmp = createComparator({ startedAt: 0 });
  // The node's seq moves every sample (pings); the page stays 5 behind, as a busy bridge does.
  for (let t = 0; t <= 3000; t += 100) {
    const nodeSeq = 100 + t / 100;
    const now = status({ p2p_state: t >= 2000 ? 'cut' : 'carrying' });
    const shown = status({ p2p_state: t >= 2800 ? 'cut' : 'carrying' });
    cmp.add(t, expectations(now), observations(pageFor(shown)), { nodeId: A, nodeSeq, pageId: A, pageSeq: nodeSeq - 5 });
  }
  assert.deepEqual(cmp.failures().map((f) => cmp.describe(f)), []);
  assert.match(cmp.report(), /p2p-state\s+worst lag\s+≤\s*800 ms/);
});

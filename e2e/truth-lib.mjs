// The truth check (issue 9): what a face shows must be what the watched node says.
// Every 100 ms one script call collects every attribute of the window's truth contract
// (/work/helpers/CONTRACT.md, mirrored in docs/truth-contract.md) and, right after, the
// watched node's own status JSON is fetched. The comparator follows each field's
// disagreement from the moment the page's value stopped being true and fails on any that
// lasts longer than a second; it also reports the worst lag per field, so a pass still says
// how close the face followed.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LATTICE, freePort, until } from './lib.mjs';

// Interrupted (Ctrl-C, a CI timeout): exit through the 'exit' handlers, which stop every
// process and remove every temporary directory this check made.
for (const [sig, n] of [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]]) {
  if (process.listenerCount(sig) === 0) process.once(sig, () => process.exit(128 + n));
}

/** The contract version this check speaks; the UI announces its own in `data-truth-version`. */
export const TRUTH_VERSION = 1;
/** A disagreement may last this long (a snapshot, a render, a sample apart). */
export const LIMIT_MS = 1000;
export const SAMPLE_MS = 100;

/**
 * Runs IN THE PAGE (serialised with `toString()`): every contract attribute in one pass,
 * so all values come from the same instant. Keep it self-contained.
 */
export function collectTruth() {
  const shown = (el) => {
    if (!el || !el.isConnected) return false;
    if (typeof el.checkVisibility === 'function') return el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true });
    const r = el.getBoundingClientRect();
    const cs = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && cs.visibility !== 'hidden' && cs.display !== 'none' && cs.opacity !== '0';
  };
  const fields = {};
  for (const el of document.querySelectorAll('[data-field]')) {
    const name = el.getAttribute('data-field');
    (fields[name] ||= []).push({
      value: el.getAttribute('data-value'),
      text: (el.textContent || '').replace(/\s+/g, ' ').trim().slice(0, 160),
      api: el.getAttribute('data-api'),
      stale: el.getAttribute('data-stale'),
      visible: shown(el),
    });
  }
  const machines = [...document.querySelectorAll('[data-machine]')].map((el) => ({
    id: el.getAttribute('data-machine'),
    links: el.getAttribute('data-links'),
    agreement: el.getAttribute('data-agreement'),
    graph: el.hasAttribute('data-graph-machine'),
  }));
  let running = -1;
  try { running = document.getAnimations().filter((a) => a.playState === 'running').length; } catch { /* no Web Animations API */ }
  const version = document.querySelector('[data-truth-version]');
  return {
    at: Date.now(),
    version: version ? version.getAttribute('data-truth-version') : null,
    seq: version ? version.getAttribute('data-seq') : null,
    lost: document.body ? document.body.getAttribute('data-lost') : null,
    fields,
    machines,
    running,
    live: document.querySelectorAll('[data-value="live"]').length,
  };
}

/** Why the page cannot be checked against this contract, or null when it can. */
export function versionProblem(page) {
  if (!page || page.version == null) {
    return `the UI is older than the truth contract: it carries no data-truth-version (this check needs version ${TRUTH_VERSION}, see docs/truth-contract.md)`;
  }
  const v = Number(page.version);
  if (!Number.isInteger(v) || v < TRUTH_VERSION) {
    return `the UI speaks truth contract version ${JSON.stringify(page.version)}, this check needs ${TRUTH_VERSION} (the UI is older than the contract)`;
  }
  return null;
}

const agreementOf = (m) => (m === true ? 'match' : m === false ? 'differs' : 'unknown');

/** The other machines the node knows, one per machine: PeerId, else the neighbour URL. */
export function expectedMachines(status) {
  const byId = new Map();
  const get = (id) => {
    if (!byId.has(id)) byId.set(id, { id, p2p: null, http: null });
    return byId.get(id);
  };
  for (const p of status.peers ?? []) get(p.peer_id).p2p = p;
  for (const n of status.neighbors ?? []) get(n.peer_id ?? n.url).http = n;
  return [...byId.values()].map((m) => ({
    id: m.id,
    links: [m.p2p && 'p2p', m.http && 'http'].filter(Boolean).join(','),
    agreement: agreementOf(m.p2p && m.p2p.root_matches != null ? m.p2p.root_matches : m.http?.root_matches),
  })).sort((a, b) => (a.id < b.id ? -1 : 1));
}

const eq = (a, b) => a === b;
const firstNumber = (text) => (/\d+/.exec(text ?? '') ?? [null])[0];
/** A short root ("ab12…ef34", "ab12cd") is every hex run of the text found in the full root, in order. */
const rootText = (text, root) => {
  const runs = (text ?? '').toLowerCase().match(/[0-9a-f]{4,}/g);
  if (!runs || !root) return false;
  let at = 0;
  for (const r of runs) {
    const i = root.indexOf(r, at);
    if (i < 0) return false;
    at = i + r.length;
  }
  return runs[0] === root.slice(0, runs[0].length);
};

/**
 * What the page must show, derived from the node's status JSON (`null`: the node cannot be
 * reached, so the face must say it lost it). Each check: key -> { field, value, match },
 * where `match(shown, value)` says whether what the page shows stands for `value`.
 */
export function expectations(status) {
  const out = new Map();
  const add = (key, field, value, match = eq) => out.set(key, { field, value: String(value), match });
  if (!status) {
    add('connection', 'connection', 'lost');
    add('body data-lost', 'lost', 'true');
    add('lost-banner', 'lost-banner', 'visible');
    add('elements saying live', 'lost', '0');
    add('running animations', 'animations', '0');
    return out;
  }
  const node = status.node;
  add('watched-node', 'watched-node', node.peer_id);
  add('watched-node data-api', 'watched-node', `http://${node.http_listen}`);
  // The name when the node has one, else a short PeerId: every run of letters and digits
  // in the text is part of the PeerId ("12D3Ko…x7Yq").
  add('watched-node text', 'watched-node', node.name ? `name ${node.name}` : `id ${node.peer_id}`, (shown, v) => {
    const [kind, ...rest] = v.split(' ');
    const want = rest.join(' ');
    if (kind === 'name') return shown.includes(want);
    const parts = shown.split(/[^0-9A-Za-z]+/).filter(Boolean);
    return parts.join('').length >= 6 && parts.every((part) => want.includes(part));
  });
  for (const [field, value] of [['p2p-state', status.p2p_state], ['http-state', status.http_state],
    ['sync-state', status.sync_state], ['fallback-phase', status.fallback_phase], ['mode', status.mode],
    ['entry-count', status.entry_count], ['root', status.merkle_root], ['peer-count', status.peer_count]]) {
    add(field, field, value);
  }
  add('entry-count text', 'entry-count', status.entry_count, (shown, v) => firstNumber(shown) === v);
  add('peer-count text', 'peer-count', status.peer_count, (shown, v) => firstNumber(shown) === v);
  add('root text', 'root', status.merkle_root, (shown, v) => rootText(shown, v));
  add('connection', 'connection', 'live');
  add('body data-lost', 'lost', 'false');
  add('lost-banner', 'lost-banner', 'hidden');
  const machines = expectedMachines(status);
  add('machines', 'machines', machines.map((m) => m.id).join(' '));
  add('graph machines', 'machines', machines.map((m) => m.id).join(' '));
  for (const m of machines) {
    add(`machine ${m.id} links`, 'machine links', m.links);
    add(`machine ${m.id} agreement`, 'machine agreement', m.agreement);
  }
  const identical = machines.length > 0 && machines.every((m) => m.agreement === 'match');
  add('identical-banner', 'identical-banner', identical ? machines.length + 1 : 'hidden');
  return out;
}

/** What the page shows, under the same keys as `expectations`. */
export function observations(page) {
  const out = new Map();
  const one = (name) => {
    const els = page.fields[name] ?? [];
    if (els.length === 0) return { missing: '(missing)' };
    if (els.length > 1) return { missing: `(${els.length} elements carry data-field="${name}")` };
    return els[0];
  };
  const value = (name) => { const e = one(name); return e.missing ?? e.value ?? '(no data-value)'; };
  const text = (name) => { const e = one(name); return e.missing ?? e.text; };
  const watched = one('watched-node');
  out.set('watched-node', value('watched-node'));
  out.set('watched-node data-api', watched.missing ?? watched.api ?? '(no data-api)');
  out.set('watched-node text', text('watched-node'));
  for (const f of ['p2p-state', 'http-state', 'sync-state', 'fallback-phase', 'mode', 'entry-count', 'root', 'peer-count', 'connection']) {
    out.set(f, value(f));
  }
  out.set('entry-count text', text('entry-count'));
  out.set('peer-count text', text('peer-count'));
  out.set('root text', text('root'));
  out.set('body data-lost', page.lost === 'true' ? 'true' : 'false');
  const banner = (name) => { const e = one(name); return e.missing === '(missing)' ? 'hidden' : e.missing ?? (e.visible ? 'visible' : 'hidden'); };
  out.set('lost-banner', banner('lost-banner'));
  const idb = one('identical-banner');
  out.set('identical-banner', idb.missing === '(missing)' || (!idb.missing && !idb.visible) ? 'hidden'
    : idb.missing ?? idb.value ?? '(no data-value)');
  out.set('elements saying live', String(page.live));
  out.set('running animations', String(page.running));
  const ids = (list) => [...list].sort().join(' ');
  const graph = page.machines.filter((m) => m.graph);
  out.set('machines', ids(new Set(page.machines.map((m) => m.id))));
  // Exactly one graph element per machine: duplicates show as repeated ids.
  out.set('graph machines', ids(graph.map((m) => m.id)));
  const byId = new Map();
  for (const m of page.machines) { if (!byId.has(m.id)) byId.set(m.id, []); byId.get(m.id).push(m); }
  for (const [id, els] of byId) {
    // Every element showing this machine (graph and Merkle panel) must say the same.
    const say = (attr) => { const vs = [...new Set(els.map((e) => e[attr] ?? '(none)'))]; return vs.length === 1 ? vs[0] : `(panels disagree: ${vs.join(' / ')})`; };
    out.set(`machine ${id} links`, say('links'));
    out.set(`machine ${id} agreement`, say('agreement'));
  }
  return out;
}

const clock = (ms) => new Date(ms).toISOString().slice(11, 23);

/**
 * Follows every check over time. A disagreement starts when the value the page shows
 * stopped being true (the first sample after the node last said it), or when the page
 * first showed it if the node never said it: a page one snapshot behind a node that
 * changes every 300 ms is 100 ms late, not "wrong for a minute".
 */
export function createComparator({ limitMs = LIMIT_MS, startedAt = Date.now() } = {}) {
  const history = new Map(); // key -> [{ t, value }] of the node's values, changes only
  const open = new Map(); // key -> { shown, start, expected }
  const worst = new Map(); // field -> { ms, key, at }
  const failures = new Map(); // key -> the longest over-limit disagreement
  let samples = 0;
  let lastT = null;
  let maxGap = 0;
  const rel = (t) => `${((t - startedAt) / 1000).toFixed(1)} s into the run, ${clock(t)} UTC`;

  const seqs = new Map(); // node id -> [{ t, seq }] of the node's seq, changes only

  /**
   * With the page's snapshot seq (`data-seq`) and the node's: the page is late at most
   * since the first sample where the node had a newer snapshot than the one the page
   * shows. Value history alone cannot say that when the node passed through the page's
   * value between two samples (it would find the last time a sample saw that value, maybe
   * seconds before). A page as new as the node yet showing another value is wrong from
   * when it was seen.
   */
  function seqSince(meta, t) {
    if (!meta || meta.pageSeq == null || meta.nodeSeq == null || meta.pageId !== meta.nodeId) return null;
    if (meta.pageSeq >= meta.nodeSeq) return t;
    const h = seqs.get(meta.nodeId) ?? [];
    const first = h.find((x) => x.seq > meta.pageSeq);
    return first ? first.t : t;
  }

  function since(key, shown, match, t) {
    const h = history.get(key) ?? [];
    for (let i = h.length - 1; i >= 0; i--) {
      if (match(shown, h[i].value)) return i + 1 < h.length ? h[i + 1].t : t;
    }
    return null;
  }

  // Samples can be far apart on a busy machine, so a disagreement's length is known only
  // between bounds: at least until the last sample that saw it, at most until the first
  // that did not. It fails on the lower bound (it surely lasted that long); the report
  // gives the upper one (it may have lasted that long).
  function record(key, field, o, t, closed) {
    const ms = t - o.start;
    const w = worst.get(field);
    if (!w || ms > w.ms) worst.set(field, { ms, key, at: o.start });
    const seen = closed ? o.seen - o.start : ms;
    if (seen > limitMs) {
      const f = failures.get(key);
      if (!f || seen > f.ms) failures.set(key, { key, field, ms: seen, upTo: ms, start: o.start, shown: o.shown, expected: o.expected });
      else if (f.start === o.start) f.upTo = Math.max(f.upTo, ms);
    }
  }

  return {
    /** One sample: the node's expectations and the page's observations taken at `t`. */
    /**
     * `meta` (optional): `{ nodeId, nodeSeq, pageId, pageSeq }`, the node's PeerId and
     * snapshot seq, and the ones the page shows (`watched-node`, `data-seq`).
     */
    add(t, expected, observed, meta = null) {
      samples++;
      if (lastT != null) maxGap = Math.max(maxGap, t - lastT);
      lastT = t;
      if (meta?.nodeSeq != null) {
        const h = seqs.get(meta.nodeId) ?? [];
        if (!h.length || h[h.length - 1].seq !== meta.nodeSeq) h.push({ t, seq: meta.nodeSeq });
        seqs.set(meta.nodeId, h);
      }
      for (const [key, e] of expected) {
        const h = history.get(key) ?? [];
        if (!h.length || h[h.length - 1].value !== e.value) h.push({ t, value: e.value });
        history.set(key, h);
        const shown = observed.get(key) ?? '(missing)';
        const o = open.get(key);
        if (e.match(shown, e.value)) {
          if (o) { record(key, e.field, o, t, true); open.delete(key); }
          else if (!worst.has(e.field)) worst.set(e.field, { ms: 0, key, at: t });
          continue;
        }
        // Surely wrong from the later of the two: the node seen past the page's value, and
        // the node seen past the page's snapshot (its seq also moves for changes this key
        // does not show, e.g. a peer's last ping, so alone it would date a lag too early).
        const bySeq = seqSince(meta, t);
        const byValue = since(key, shown, e.match, t);
        const start = bySeq == null ? byValue : byValue == null ? bySeq : Math.max(bySeq, byValue);
        if (!o || o.shown !== shown) {
          const begun = start ?? (o ? Math.min(o.start, t) : t);
          open.set(key, { shown, start: begun, seen: t, expected: e.value, field: e.field });
        } else {
          o.expected = e.value;
          o.seen = t;
          if (start != null) o.start = Math.min(o.start, start);
        }
        record(key, e.field, open.get(key), t, false);
      }
      // A key the node no longer has (a machine that left) closes its disagreement.
      for (const key of [...open.keys()]) if (!expected.has(key)) open.delete(key);
    },
    failures: () => [...failures.values()].sort((a, b) => a.start - b.start),
    describe(f) {
      return `${f.field}: ${f.key}: the window showed ${JSON.stringify(f.shown)} while the node said ${JSON.stringify(f.expected)}, `
        + `for ${(f.ms / 1000).toFixed(1)} s${f.upTo > f.ms + SAMPLE_MS ? ` (up to ${(f.upTo / 1000).toFixed(1)} s)` : ''} from ${rel(f.start)} (limit ${(limitMs / 1000).toFixed(1)} s)`;
    },
    report() {
      const rows = [...worst.entries()].sort((a, b) => b[1].ms - a[1].ms)
        .map(([field, w]) => `  ${field.padEnd(18)} worst lag ${w.ms ? '≤' : ' '}${String(w.ms).padStart(5)} ms${w.ms ? ` (${w.key}, from ${rel(w.at)})` : ''}`);
      return [`truth: ${samples} samples, longest gap between samples ${maxGap} ms`, ...rows].join('\n');
    },
    get samples() { return samples; },
    get maxGap() { return maxGap; },
  };
}

/** The node's PeerId and snapshot seq beside the page's, for the comparator. */
export function seqMeta(status, page) {
  const num = (v) => (v == null || v === '' || !Number.isFinite(Number(v)) ? null : Number(v));
  return {
    nodeId: status?.node?.peer_id ?? null,
    nodeSeq: num(status?.seq),
    pageId: (page?.fields?.['watched-node'] ?? [])[0]?.value ?? null,
    pageSeq: num(page?.seq),
  };
}

/** Fetches a node's status JSON, or null when the node does not answer (within `ms`). */
export async function fetchStatus(api, ms = 1500) {
  try {
    const r = await fetch(`${api}/api/lattice/p2p/status`, { signal: AbortSignal.timeout(ms), cache: 'no-store' });
    if (!r.ok) return null;
    return await r.json();
  } catch {
    return null;
  }
}

/**
 * Samples the page every 100 ms until stopped. `collect()` runs `collectTruth` in the page
 * (one script call) and returns `{ page, watched }`: `watched` names the node the face must
 * be watching, from a source other than the face (the app's own focus, read in the same
 * call; the face's `data-api` would follow the face's own mistake). Every API in
 * `candidates()` is fetched right after the page is read, so the watched node's status is
 * at least as new as anything the page shows. `unreachable`: 'lost' when a node that does not answer must be shown as lost,
 * 'skip' when such a sample proves nothing (the node is not supposed to go).
 */
export function startSampler({ collect, candidates, unreachable = 'skip', log = () => {} }) {
  const startedAt = Date.now();
  const cmp = createComparator({ startedAt });
  let stopped = false;
  let skipped = 0;
  let slowest = 0;
  const took = [];
  let error = null;
  let last = null;
  let version = null;
  /** What the watched node served at each sample (seq, now_ms, states), for the debug trace. */
  const served = [];
  const loop = (async () => {
    let next = Date.now();
    while (!stopped) {
      const t = Date.now();
      const apis = [...new Set(candidates())];
      try {
        // The page first, then the node: every snapshot the page can show was sent before
        // the node answers, so the page is never ahead of the status it is compared with.
        // Read at the same time, the node could answer before it changed and the page be
        // read after: a page showing the newer value would seem stuck on that value's last
        // time (session 3's "carrying for 2.2 s" at the fallback).
        const { page, watched } = await collect();
        const statuses = await Promise.all(apis.map((a) => fetchStatus(a)));
        slowest = Math.max(slowest, Date.now() - t);
        took.push(Date.now() - t);
        const i = apis.indexOf(watched);
        const status = i >= 0 ? statuses[i] : await fetchStatus(watched);
        last = { page, status, watched };
        served.push({ at: t, source: 'node GET', seq: status?.seq ?? null, now_ms: status?.now_ms ?? null,
          p2p_state: status?.p2p_state, http_state: status?.http_state, sync_state: status?.sync_state,
          fallback_phase: status?.fallback_phase, peer_count: status?.peer_count, entry_count: status?.entry_count,
          machines: status ? machinesLine(status) : null,
          dom: ['p2p-state', 'http-state', 'sync-state', 'fallback-phase', 'peer-count', 'entry-count']
            .map((f) => `${f} ${(page.fields[f] ?? []).map((e) => e.value).join('/')}`).join(' ')
            + ` machines ${page.machines.map((m) => `${m.graph ? 'g' : 'm'}${m.id.slice(-4)}:${m.links}:${m.agreement}`).join(' ')}` });
        version ??= versionProblem(page);
        if (status || unreachable === 'lost') cmp.add(t, expectations(status), observations(page), seqMeta(status, page));
        else skipped++;
      } catch (e) {
        // The page is reloading or the driver is busy: count it, never hang on it.
        skipped++;
        error = e;
        log(`truth: a sample failed: ${e.message}`);
      }
      next += SAMPLE_MS;
      const wait = next - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      else next = Date.now();
    }
  })();
  return {
    comparator: cmp,
    get last() { return last; },
    get versionProblem() { return version; },
    served,
    startedAt,
    /** Stops sampling; returns the failures (empty when the face told the truth). */
    async stop() {
      stopped = true;
      await loop;
      const lines = [cmp.report(), `  samples skipped ${skipped}, a sample took ${took.sort((x, y) => x - y)[took.length >> 1] ?? 0} ms (median), ${slowest} ms at most${error ? ` (last error: ${error.message})` : ''}`];
      if (cmp.maxGap > LIMIT_MS) lines.push(`  WARNING: ${cmp.maxGap} ms passed between two samples (the machine was busy): a disagreement shorter than that could go unseen`);
      const failures = cmp.failures();
      return { failures, described: failures.map((f) => cmp.describe(f)), report: lines.join('\n'), skipped };
    },
  };
}

/**
 * For a face whose driver is slow (WebDriver round trips, and the app's own IPC, take up
 * to seconds on a busy machine, too coarse for a one-second limit): two clocks-aligned
 * streams merged by time. The page samples itself every 100 ms into a buffer, each sample
 * stamped with its moment (same host clock); `drainPage()` fetches and empties it (one
 * script call, every 400 ms). Here, every API in `apis()` is polled every 100 ms over HTTP
 * (loopback: milliseconds), each status stamped with the moment its request was sent.
 * `focusAt(t)` names the API the face must watch at t (null: it is switching, the sample
 * proves nothing). Each page sample is compared with the first status of that API asked
 * for after it (at most 300 ms after): never with an older one, which the page may
 * rightly be ahead of.
 */
export function startMergedSampler({ drainPage, apis, focusAt, log = () => {}, onFailure = () => {} }) {
  const startedAt = Date.now();
  const cmp = createComparator({ startedAt });
  const history = new Map(); // api -> [{ t, status }]
  let stopped = false;
  let drains = 0;
  let failedDrains = 0;
  let error = null;
  const left = { switching: 0, noStatus: 0 };
  const reported = new Set();
  let pending = [];
  const polls = [];
  const poller = (async () => {
    let next = Date.now();
    while (!stopped) {
      await Promise.all([...new Set(apis())].map(async (api) => {
        const t0 = Date.now();
        const status = await fetchStatus(api, 1000);
        const t1 = Date.now();
        polls.push(t1 - t0);
        if (!history.has(api)) history.set(api, []);
        history.get(api).push({ t0, t: Math.round((t0 + t1) / 2), status });
      }));
      next += SAMPLE_MS;
      const wait = next - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      else next = Date.now();
    }
  })();
  // A page sample is compared with the first status asked for after it: whatever the page
  // showed, the node had sent before that request, so the page is never ahead of it.
  const statusAt = (api, t) => {
    const h = history.get(api) ?? [];
    const i = h.findIndex((x) => x.t0 >= t);
    return i >= 0 && h[i].t0 - t <= 300 ? h[i].status : undefined;
  };
  /** Page samples up to this moment have a status asked for after them, for every API. */
  const latest = () => Math.min(...[...history.values()].map((h) => (h.length ? h[h.length - 1].t0 : 0)), Date.now());
  async function merge(final) {
    const upTo = final ? Infinity : latest();
    const ready = pending.filter((x) => x.t <= upTo);
    pending = pending.filter((x) => x.t > upTo);
    for (const { t, page } of ready) {
      const api = focusAt(t);
      if (api == null) { left.switching++; continue; }
      const status = statusAt(api, t);
      if (!status) { left.noStatus++; continue; }
      cmp.add(t, expectations(status), observations(page), seqMeta(status, page));
    }
    const fresh = cmp.failures().filter((f) => !reported.has(f.key));
    for (const f of fresh) reported.add(f.key);
    if (fresh.length && !final) {
      log(`truth: the window is wrong: ${cmp.describe(fresh[0])}`);
      await onFailure(fresh);
    }
  }
  const loop = (async () => {
    while (!stopped) {
      const at = Date.now();
      try {
        const batch = await drainPage();
        drains++;
        pending.push(...batch);
        await merge(false);
      } catch (e) {
        failedDrains++;
        error = e;
        log(`truth: reading the page's samples failed: ${e.message}`);
      }
      const wait = at + 400 - Date.now();
      if (wait > 0 && !stopped) await new Promise((r) => setTimeout(r, wait));
    }
  })();
  const spread = (xs) => { const v = [...xs].sort((x, y) => x - y); return `median ${v[v.length >> 1] ?? 0} ms, max ${v[v.length - 1] ?? 0} ms`; };
  return {
    comparator: cmp,
    async stop() {
      stopped = true;
      await loop;
      await poller;
      try { pending.push(...await drainPage()); } catch { /* the page is gone */ }
      await merge(true);
      const lines = [cmp.report(),
        `  ${drains} reads of the page's buffer (${failedDrains} failed${error ? `, last: ${error.message}` : ''}); left out: ${left.switching} samples while the watched node switched, ${left.noStatus} without a status within 300 ms`,
        `  a status request took ${spread(polls)}`];
      if (cmp.maxGap > LIMIT_MS) lines.push(`  WARNING: ${cmp.maxGap} ms passed between two compared samples (the page was busy): a disagreement shorter than that could go unseen`);
      const failures = cmp.failures();
      return { failures, described: failures.map((f) => cmp.describe(f)), report: lines.join('\n'), samples: cmp.samples, maxGap: cmp.maxGap };
    },
  };
}

/**
 * Real `lattice node` processes on loopback, named "Branch A"...; node i bootstraps to
 * node 0 and lists every other node as an HTTP neighbour. Fast timers (heartbeat 200ms,
 * fallback 2s, poll 500ms). Every process and the temporary directory go away on `stop()`
 * and, should the check die first, when this process exits.
 */
export async function startCluster(count, extraEnv = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'lattice-truth-'));
  const http = [];
  const p2p = [];
  for (let i = 0; i < count; i++) { http.push(await freePort()); p2p.push(await freePort()); }
  const procs = [];
  const cleanup = () => {
    for (const c of procs) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', cleanup);
  const ids = [];
  for (let i = 0; i < count; i++) {
    writeFileSync(join(dir, `n${i}.env`), [
      `LATTICE_DATA_DIR=${join(dir, `data-${i}`)}`,
      `LATTICE_P2P_LISTEN=/ip4/127.0.0.1/tcp/${p2p[i]}`,
      `LATTICE_HTTP_LISTEN=127.0.0.1:${http[i]}`,
      `LATTICE_HTTP_NEIGHBORS=${http.filter((_, j) => j !== i).map((p) => `http://127.0.0.1:${p}`).join(',')}`,
      `LATTICE_NODE_NAME='Branch ${String.fromCharCode(65 + i)}'`,
      'LATTICE_HEARTBEAT=200ms', 'LATTICE_FALLBACK_AFTER=2s', 'LATTICE_HTTP_POLL=500ms', '',
    ].join('\n'));
    ids.push(execFileSync(LATTICE, ['keygen', '--env-file', join(dir, `n${i}.env`)], { stdio: ['ignore', 'pipe', 'pipe'] }).toString().trim());
  }
  for (let i = 0; i < count; i++) {
    const env = { ...process.env, ...extraEnv, RUST_LOG: 'warn' };
    if (i > 0) env.LATTICE_BOOTSTRAP = `/ip4/127.0.0.1/tcp/${p2p[0]}/p2p/${ids[0]}`;
    procs.push(spawn(LATTICE, ['--env-file', join(dir, `n${i}.env`), 'node'], { env, stdio: 'ignore' }));
  }
  const apis = http.map((p) => `http://127.0.0.1:${p}`);
  for (const a of apis) await until(`node ${a} to answer`, async () => (await fetchStatus(a)) !== null, 30_000);
  const ended = (c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', r)));
  return {
    apis,
    ids,
    status: (i) => fetchStatus(apis[i]),
    /** Kills node i at once (SIGKILL: no goodbye to its faces). */
    async kill(i) {
      procs[i].kill('SIGKILL');
      await ended(procs[i]);
    },
    async stop() {
      for (const c of procs) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
      await Promise.race([Promise.all(procs.map(ended)), new Promise((r) => setTimeout(r, 10_000))]);
      cleanup();
      process.removeListener('exit', cleanup);
    },
  };
}

/**
 * Reads a node's own event stream (as a page would) and keeps when each `status` snapshot
 * arrived, with its seq, now_ms and states: the trace that tells a node slow to send from a
 * page slow to apply. `stop()` ends it and returns the rows.
 */
export function traceNodeStream(api) {
  const rows = [];
  const ac = new AbortController();
  const done = (async () => {
    try {
      const res = await fetch(`${api}/api/lattice/events`, { signal: ac.signal, headers: { accept: 'text/event-stream' } });
      const decoder = new TextDecoder();
      let buf = '';
      for await (const chunk of res.body) {
        buf += decoder.decode(chunk, { stream: true });
        let cut;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          if (!/^event: ?status$/m.test(block)) continue;
          const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.replace(/^data: ?/, '')).join('\n');
          try {
            const s = JSON.parse(data);
            rows.push({ at: Date.now(), source: 'node stream', seq: s.seq ?? null, now_ms: s.now_ms, p2p_state: s.p2p_state, http_state: s.http_state, sync_state: s.sync_state, fallback_phase: s.fallback_phase, peer_count: s.peer_count, entry_count: s.entry_count, machines: machinesLine(s) });
          } catch { /* a cut-off block: not a snapshot */ }
        }
      }
    } catch { /* aborted, or the node went away */ }
  })();
  return { rows, async stop() { ac.abort(); await done; return rows; } };
}

/**
 * The snapshot traces merged by time (our clock), one row a line, from `from` to `to`:
 * what the node served (GET, stream) and what the page was offered and applied.
 */
export function traceLines(rows, from = -Infinity, to = Infinity, startedAt = 0) {
  return rows.filter((r) => r.at >= from && r.at <= to).sort((a, b) => a.at - b.at)
    .map((r) => `  ${((r.at - startedAt) / 1000).toFixed(3).padStart(8)} s  ${r.source.padEnd(12)} ${r.applied === false ? 'DROPPED' : r.applied ? 'applied' : '       '}`
      + ` seq ${String(r.seq).padStart(4)} now_ms ${r.now_ms} p2p ${r.p2p_state} http ${r.http_state} sync ${r.sync_state}`
      + ` fallback ${r.fallback_phase} peers ${r.peer_count} entries ${r.entry_count} machines ${r.machines}${r.dom ? ` | page shows ${r.dom}` : ''}`);
}

/** The machines a status names, as the traces print them: `<last 4 of the id>:<links>:<agreement>`. */
function machinesLine(status) {
  return expectedMachines(status).map((m) => `${m.id.slice(-4)}:${m.links}:${m.agreement}`).join(' ');
}

/** Prints the sampler's result and throws on any disagreement that lasted too long. */
export function verdict(name, result) {
  console.log(result.report);
  if (result.failures.length) {
    throw new Error(`${name}: the window disagreed with the node for longer than ${LIMIT_MS} ms:\n${listed(result.described, Number(process.env.TRUTH_LIST || 12))}`);
  }
}

/**
 * After a run that failed on something else (a timeout, a missing button): stops the
 * sampler if it still runs and prints what it saw until then, so the failure comes with
 * the window's record. Returns the result (null when there was none).
 */
export async function reportInterrupted(sampler) {
  if (!sampler) return null;
  const result = await sampler.stop().catch(() => null);
  if (result) {
    console.error(result.report);
    console.error(listed(result.described));
  }
  return result;
}

/** The first dozen disagreements, one a line (the rest counted). */
export function listed(described, max = 12) {
  const lines = described.slice(0, max).map((d) => `  - ${d}`);
  if (described.length > max) lines.push(`  ... and ${described.length - max} more`);
  return lines.join('\n');
}

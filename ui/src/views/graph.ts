import { forceCollide, forceLink, forceManyBody, forceRadial, forceSimulation, forceX, forceY, type Simulation, type SimulationLinkDatum, type SimulationNodeDatum } from 'd3-force';
import { h, s, setText } from '../dom';
import { ago, clock, counted, duration, rtt } from '../format';
import type { Frame } from '../frame';
import { markStale } from '../frame';
import { freshness, linksAttr, machines, nodeLabel, type Link, type Machine } from '../machines';
import { AGREEMENT_WORDS } from './words';

/** Inner ring: machines P2P links; outer ring: machines only HTTP links. */
type Ring = 'self' | 'p2p' | 'http';

interface GNode extends SimulationNodeDatum {
  key: string;
  ring: Ring;
  g: SVGGElement;
  label: SVGTextElement;
  sub: SVGTextElement;
}

interface GLink extends SimulationLinkDatum<GNode> {
  key: string;
  lung: Link;
  line: SVGLineElement;
  source: GNode;
  target: GNode;
}

function hashAngle(key: string): number {
  let x = 2166136261;
  for (let i = 0; i < key.length; i++) x = Math.imul(x ^ key.charCodeAt(i), 16777619);
  return ((x >>> 0) / 2 ** 32) * 2 * Math.PI;
}

const AGREEMENT_CLASS = { match: 'is-insync', differs: 'is-diverged', unknown: 'is-unknown' } as const;

interface Pulse {
  link: GLink;
  start: number;
  dot: SVGCircleElement;
  /** Towards us (entries arriving) or away (our own write leaving). */
  inbound: boolean;
}

const linkKey = (machine: string, lung: Link) => `${lung}:${machine}`;

/**
 * The peer graph: this node in the centre, one circle per other machine (a P2P peer and an
 * HTTP neighbour with the same PeerId are one machine, with one edge per lung linking it).
 * Machines linked by P2P sit on the inner ring, HTTP-only ones on the outer. Simulation
 * nodes are reused by key, so machines keep their place as others come and go.
 */
export function createPeerGraph(opts: { now?: () => number } = {}) {
  /** The drawing follows the stage's real size (viewBox = CSS pixels), so text stays legible. */
  let W = 800;
  let H = 460;
  let CX = W / 2;
  let CY = H / 2;
  const RING: Record<Ring, number> = { self: 0, p2p: 135, http: 200 };
  /** Node glyph scale: larger stages (full HD, projector) get larger nodes and labels. */
  let K = 1;

  function layoutFor(w: number, hh: number): void {
    W = w;
    H = hh;
    CX = w / 2;
    CY = hh / 2;
    const r = Math.min(w * 0.9, hh) / 2;
    RING.p2p = Math.max(70, r * 0.5);
    RING.http = Math.max(110, r * 0.74);
    K = Math.min(1.7, Math.max(0.8, Math.min(w, hh) / 480));
  }

  const now = opts.now ?? (() => performance.now());
  const edgeLayer = s('g', { class: 'graph__edges' });
  const pulseLayer = s('g', { class: 'graph__pulses' });
  const nodeLayer = s('g', { class: 'graph__nodes' });
  const empty = s('text', { class: 'graph__empty', x: CX, y: CY + 115, 'text-anchor': 'middle' });
  const orbitP2p = s('circle', { class: 'graph__orbit', cx: CX, cy: CY, r: RING.p2p });
  const orbitHttp = s('circle', { class: 'graph__orbit graph__orbit--http', cx: CX, cy: CY, r: RING.http });
  const svg = s('svg', { class: 'graph__svg', viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'xMidYMid meet', role: 'img', 'aria-label': 'Peer graph' },
    orbitP2p, orbitHttp, edgeLayer, pulseLayer, nodeLayer, empty);

  const details = h('aside', { class: 'graph__details', attrs: { hidden: '' } });
  const legend = h('div', { class: 'legend' },
    h('span', { class: 'legend__item legend__item--p2p', text: 'P2P link' }),
    h('span', { class: 'legend__item legend__item--http', text: 'HTTP link' }),
    h('span', { class: 'legend__item legend__item--insync', text: AGREEMENT_WORDS.match }),
    h('span', { class: 'legend__item legend__item--diverged', text: AGREEMENT_WORDS.differs }),
    h('span', { class: 'legend__item legend__item--unknown', text: AGREEMENT_WORDS.unknown }),
  );
  const stage = h('div', { class: 'graph__stage' }, svg, details);
  const el = h('section', { class: 'card graph', attrs: { 'aria-label': 'Peer graph' } },
    h('header', { class: 'card__head' }, h('h2', { class: 'card__title', text: 'Machines' }), legend),
    stage,
  );

  const nodes = new Map<string, GNode>();
  const links = new Map<string, GLink>();
  let frame: Frame | null = null;
  let current: Machine[] = [];
  let selected: string | null = null;
  let lost = false;
  const pulses: Pulse[] = [];
  let pulseRaf = 0;

  const sim: Simulation<GNode, GLink> = forceSimulation<GNode, GLink>([])
    .force('link', forceLink<GNode, GLink>([]).id((d) => d.key).distance((l) => RING[l.target.ring]).strength(0.15))
    .force('charge', forceManyBody<GNode>().strength(-250))
    .force('collide', forceCollide<GNode>(() => 58 * K))
    .force('radial', forceRadial<GNode>((d) => RING[d.ring], CX, CY).strength(0.9))
    .alphaDecay(0.05)
    .on('tick', draw);
  sim.stop();

  /**
   * Where each machine settles: spread evenly around its ring in key order, so three
   * machines make a triangle rather than a clump wherever their hashes happen to fall.
   */
  const targets = new Map<string, { x: number; y: number }>();
  function placeTargets(): void {
    targets.clear();
    for (const ring of ['p2p', 'http'] as const) {
      const keys = [...nodes.values()].filter((n) => n.ring === ring).map((n) => n.key).sort();
      const start = ring === 'p2p' ? -Math.PI / 2 : -Math.PI / 2 + Math.PI / Math.max(keys.length, 1);
      keys.forEach((k, i) => {
        const a = start + (i * 2 * Math.PI) / keys.length;
        targets.set(k, { x: CX + Math.cos(a) * RING[ring], y: CY + Math.sin(a) * RING[ring] });
      });
    }
    // d3 reads a force's targets once, when it is set: set them again.
    sim.force('x', forceX<GNode>((d) => targets.get(d.key)?.x ?? CX).strength(0.6));
    sim.force('y', forceY<GNode>((d) => targets.get(d.key)?.y ?? CY).strength(0.6));
  }


  function makeNode(key: string, ring: Ring): GNode {
    const self = ring === 'self';
    const label = s('text', { class: 'gnode__label', 'text-anchor': 'middle', y: self ? 50 : 36 });
    const sub = s('text', { class: 'gnode__sub num', 'text-anchor': 'middle', y: self ? 68 : 53 });
    const g = s('g', { class: 'gnode', tabindex: 0, role: 'button' },
      s('circle', { class: 'gnode__halo', r: self ? 36 : 24 }),
      s('circle', { class: 'gnode__dot', r: self ? 28 : 18 }),
      label, sub);
    const a = hashAngle(key);
    const at = targets.get(key);
    const n: GNode = { key, ring, g, label, sub, x: at?.x ?? CX + Math.cos(a) * RING[ring], y: at?.y ?? CY + Math.sin(a) * RING[ring] };
    if (self) {
      n.fx = CX;
      n.fy = CY;
    }
    const open = () => {
      selected = selected === key ? null : key;
      renderDetails();
      highlight();
    };
    g.addEventListener('click', open);
    g.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        open();
      }
    });
    nodeLayer.append(g);
    return n;
  }

  /** Two lungs linking one machine: their lines run side by side, a few pixels apart. */
  function draw(): void {
    for (const n of nodes.values()) n.g.setAttribute('transform', `translate(${(n.x ?? CX).toFixed(1)},${(n.y ?? CY).toFixed(1)}) scale(${K.toFixed(3)})`);
    for (const l of links.values()) {
      const [x1, y1, x2, y2] = [l.source.x ?? CX, l.source.y ?? CY, l.target.x ?? CX, l.target.y ?? CY];
      const both = links.has(linkKey(l.target.key, 'p2p')) && links.has(linkKey(l.target.key, 'http'));
      const len = Math.hypot(x2 - x1, y2 - y1) || 1;
      const off = both ? (l.lung === 'p2p' ? -3.5 : 3.5) * K : 0;
      const [ox, oy] = [(-(y2 - y1) / len) * off, ((x2 - x1) / len) * off];
      l.line.setAttribute('x1', (x1 + ox).toFixed(1));
      l.line.setAttribute('y1', (y1 + oy).toFixed(1));
      l.line.setAttribute('x2', (x2 + ox).toFixed(1));
      l.line.setAttribute('y2', (y2 + oy).toFixed(1));
    }
  }

  function highlight(): void {
    for (const n of nodes.values()) n.g.classList.toggle('is-selected', n.key === selected);
  }

  function renderDetails(): void {
    if (!selected || !frame) {
      details.setAttribute('hidden', '');
      details.replaceChildren();
      return;
    }
    const st = frame.status;
    const rows: [string, string][] = [];
    let title = '';
    if (selected === 'self') {
      title = nodeLabel(st);
      rows.push(['PeerId', st.node.peer_id], ['API', st.node.http_listen], ['Version', st.node.version], ['Started', clock(st.node.started_at_ms)], ['Root', st.merkle_root], ['Entries', String(st.entry_count)]);
      if (st.p2p_listen.length) rows.push(['Listening', st.p2p_listen.join('\n')]);
    } else {
      const m = current.find((x) => x.key === selected);
      if (!m) {
        title = 'Machine gone';
        rows.push(['Id', selected], ['State', 'no longer linked']);
      } else {
        title = m.label;
        rows.push(['Links', m.links.map((l) => l.toUpperCase()).join(' + ')], ['Ledger', AGREEMENT_WORDS[m.agreement]]);
        if (m.peerId) rows.push(['PeerId', m.peerId]);
        const p = m.peer;
        if (p) {
          rows.push(['P2P address', p.address ?? '—'], ['Path', `${p.path ?? 'direct'} over ${p.transport}`], ['Connected since', `${clock(p.connected_since_ms)} (${duration(st.now_ms - p.connected_since_ms)})`], ['Round trip', rtt(p.rtt_ms)], ['Ready to sync', p.sync_capable ? 'yes' : 'no'], ['Last heard', clock(p.last_heard_ms)], ['Root (P2P)', p.root ?? 'unknown'], ['Last P2P sync', clock(p.last_sync_ms)]);
        }
        const n = m.neighbor;
        if (n) {
          rows.push(['URL', n.url], ['Health', n.health], ['Last checked', clock(n.checked_at_ms)], ['Root (HTTP)', n.root ?? 'unknown'], ['Last HTTP sync', clock(n.last_sync_ms)], ['Failures in a row', String(n.consecutive_failures)], ['Last error', n.last_error ? `${n.last_error_kind ?? 'error'}: ${n.last_error}` : 'none']);
          if (n.next_attempt_ms != null) rows.push(['Next attempt', clock(n.next_attempt_ms)]);
        }
      }
    }
    const dl = h('dl', { class: 'kv' });
    for (const [k, v] of rows) dl.append(h('dt', { text: k }), h('dd', { class: 'mono', text: v }));
    details.replaceChildren(
      h('header', { class: 'details__head' }, h('h3', { text: title }), h('button', { class: 'icon-btn', text: '×', title: 'Close', attrs: { type: 'button', 'aria-label': 'Close details' }, on: { click: () => { selected = null; renderDetails(); highlight(); } } })),
      dl,
    );
    details.removeAttribute('hidden');
  }

  function machineSub(m: Machine, stale: boolean, ageMs: number | null): string {
    if (stale && ageMs != null) return `checked ${ago(ageMs)}`;
    if (m.neighbor?.health === 'unhealthy' && !m.peer) return 'unreachable';
    return AGREEMENT_WORDS[m.agreement];
  }

  function update(f: Frame): void {
    frame = f;
    const st = f.status;
    current = machines(st);
    const want = new Map<string, Machine | null>([['self', null]]);
    for (const m of current) want.set(m.key, m);
    let changed = false;
    for (const [key, n] of nodes) {
      const m = want.get(key);
      const ring: Ring | undefined = key === 'self' ? 'self' : m ? (m.peer ? 'p2p' : 'http') : undefined;
      if (m === undefined || ring !== n.ring) {
        n.g.remove();
        nodes.delete(key);
        changed = true;
      }
    }
    for (const [key, l] of links) {
      const m = want.get(l.target.key);
      if (!m || !m.links.includes(l.lung) || !nodes.has(l.target.key)) {
        l.line.remove();
        links.delete(key);
        changed = true;
      }
    }
    let self = nodes.get('self');
    if (!self) {
      self = makeNode('self', 'self');
      nodes.set('self', self);
      changed = true;
    }
    setText(self.label, nodeLabel(st));
    setText(self.sub, counted(st.entry_count, 'entry', 'entries'));
    self.g.setAttribute('class', `gnode gnode--self${selected === 'self' ? ' is-selected' : ''}`);
    self.g.setAttribute('aria-label', `This node ${nodeLabel(st)}`);
    const fresh: GNode[] = [];
    for (const m of current) {
      let n = nodes.get(m.key);
      if (!n) {
        n = makeNode(m.key, m.peer ? 'p2p' : 'http');
        nodes.set(m.key, n);
        fresh.push(n);
        changed = true;
      }
      const fr = freshness(m, st, f.nodeNow);
      const stale = fr.stale || f.lost;
      setText(n.label, m.label);
      setText(n.sub, machineSub(m, stale, fr.ageMs ?? (f.lost ? f.nodeNow - f.status.now_ms : null)));
      const kind = m.links.length === 2 ? 'both' : m.links[0]!;
      const cls = ['gnode', `gnode--${kind}`, AGREEMENT_CLASS[m.agreement], m.neighbor ? `is-${m.neighbor.health}` : '', m.peer && !m.peer.sync_capable ? 'is-nosync' : '', m.key === selected ? 'is-selected' : ''];
      n.g.setAttribute('class', cls.filter(Boolean).join(' '));
      n.g.setAttribute('aria-label', `${m.label}: ${m.links.map((l) => l.toUpperCase()).join(' and ')}, ${AGREEMENT_WORDS[m.agreement]}`);
      n.g.setAttribute('data-machine', m.key);
      n.g.setAttribute('data-graph-machine', m.key);
      n.g.setAttribute('data-links', linksAttr(m));
      n.g.setAttribute('data-agreement', m.agreement);
      markStale(n.g, stale);
      for (const lung of m.links) {
        const key = linkKey(m.key, lung);
        if (links.has(key)) continue;
        const line = s('line', { class: `gedge gedge--${lung}` });
        edgeLayer.append(line);
        links.set(key, { key, lung, line, source: self, target: n });
        changed = true;
      }
    }
    for (const l of links.values()) {
      const m = want.get(l.target.key);
      const active = l.lung === 'p2p' ? st.sync_state === 'p2p' && !!m?.peer?.sync_capable : st.sync_state === 'http' && m?.neighbor?.health === 'healthy';
      l.line.classList.toggle('is-active', active);
      l.line.classList.toggle('is-unhealthy', l.lung === 'http' && m?.neighbor?.health === 'unhealthy');
      // A relayed link (through a relay's circuit, waiting for a hole punch) is dashed.
      const relayed = l.lung === 'p2p' && m?.peer?.path === 'relayed';
      l.line.classList.toggle('is-relayed', relayed);
      if (relayed) l.line.setAttribute('stroke-dasharray', '6 5');
      else l.line.removeAttribute('stroke-dasharray');
    }
    svg.classList.toggle('is-http', st.sync_state === 'http');
    setText(empty, nodes.size === 1 ? (st.p2p_state === 'cut' ? 'P2P cut: no other machine linked' : 'No other machine linked yet') : '');
    setLost(f.lost);
    if (changed) {
      sim.nodes([...nodes.values()]);
      placeTargets();
      // A machine that just appeared starts where it belongs; the others glide there.
      for (const n of fresh) {
        const at = targets.get(n.key);
        if (at) [n.x, n.y] = [at.x, at.y];
      }
      sim.force<ReturnType<typeof forceLink<GNode, GLink>>>('link')?.links([...links.values()]);
      if (!lost) sim.alpha(0.5).restart();
    }
    draw();
    if (selected) renderDetails();
  }

  /** A face that lost its node moves nothing: layout and pulses stop where they are. */
  function setLost(on: boolean): void {
    if (on === lost) return;
    lost = on;
    if (on) {
      sim.stop();
      for (const p of pulses.splice(0)) p.dot.remove();
    } else sim.alpha(0.3).restart();
  }

  function animatePulses(): void {
    pulseRaf = 0;
    const t = now();
    for (let i = pulses.length - 1; i >= 0; i--) {
      const p = pulses[i]!;
      const k = (t - p.start) / 1100;
      if (k >= 1 || !links.has(p.link.key)) {
        p.dot.remove();
        pulses.splice(i, 1);
        continue;
      }
      const e = k < 0.5 ? 2 * k * k : 1 - (-2 * k + 2) ** 2 / 2;
      const [from, to] = p.inbound ? [p.link.target, p.link.source] : [p.link.source, p.link.target];
      const x = (from.x ?? CX) + ((to.x ?? CX) - (from.x ?? CX)) * e;
      const y = (from.y ?? CY) + ((to.y ?? CY) - (from.y ?? CY)) * e;
      p.dot.setAttribute('cx', x.toFixed(1));
      p.dot.setAttribute('cy', y.toFixed(1));
    }
    if (pulses.length && typeof requestAnimationFrame === 'function') pulseRaf = requestAnimationFrame(animatePulses);
  }

  function startPulse(link: GLink, inbound: boolean): void {
    if (pulses.filter((p) => p.link === link).length >= 3) return;
    const from = inbound ? link.target : link.source;
    const dot = s('circle', { class: `gpulse gpulse--${link.lung}`, r: (6 * K).toFixed(1), cx: from.x ?? CX, cy: from.y ?? CY });
    pulseLayer.append(dot);
    pulses.push({ link, start: now(), dot, inbound });
    if (!pulseRaf && typeof requestAnimationFrame === 'function') pulseRaf = requestAnimationFrame(animatePulses);
  }

  /**
   * Entries arriving from `who` (a PeerId or a neighbour URL): a dot travels along the edge
   * of `lung` (the lung that carried them; by default the one carrying sync), or along the
   * machine's other edge if that lung does not link it.
   */
  function pulse(who: string, lung?: Link): boolean {
    if (lost) return false;
    const bare = who.replace(/\/$/, '');
    const m = current.find((x) => x.key === who || x.peerId === who || (x.neighbor && x.neighbor.url.replace(/\/$/, '') === bare));
    if (!m) return false;
    const prefer: Link = lung ?? (frame?.status.sync_state === 'http' ? 'http' : 'p2p');
    const link = links.get(linkKey(m.key, prefer)) ?? links.get(linkKey(m.key, prefer === 'p2p' ? 'http' : 'p2p'));
    if (!link) return false;
    startPulse(link, true);
    return true;
  }

  /** Our own write leaving: a dot out along every edge of the lung carrying sync. */
  function pulseOut(): number {
    if (lost || !frame) return 0;
    const lung: Link | null = frame.status.sync_state === 'p2p' ? 'p2p' : frame.status.sync_state === 'http' ? 'http' : null;
    if (!lung) return 0;
    let n = 0;
    for (const l of links.values()) {
      if (l.lung === lung && l.line.classList.contains('is-active')) {
        startPulse(l, false);
        n++;
      }
    }
    return n;
  }

  /** Re-fits the drawing to the stage, moving nodes with their rings so nothing jumps. */
  function resize(w: number, hh: number): void {
    if (w < 50 || hh < 50 || (Math.abs(w - W) < 1 && Math.abs(hh - H) < 1)) return;
    const [ocx, ocy, op, oh] = [CX, CY, RING.p2p, RING.http];
    layoutFor(w, hh);
    svg.setAttribute('viewBox', `0 0 ${W.toFixed(0)} ${H.toFixed(0)}`);
    for (const o of [orbitP2p, orbitHttp]) {
      o.setAttribute('cx', String(CX));
      o.setAttribute('cy', String(CY));
    }
    orbitP2p.setAttribute('r', RING.p2p.toFixed(1));
    orbitHttp.setAttribute('r', RING.http.toFixed(1));
    empty.setAttribute('x', String(CX));
    empty.setAttribute('y', String(CY + 115));
    for (const n of nodes.values()) {
      if (n.ring === 'self') {
        n.fx = CX;
        n.fy = CY;
      }
      const k = n.ring === 'http' ? RING.http / oh : RING.p2p / op;
      n.x = CX + ((n.x ?? ocx) - ocx) * k;
      n.y = CY + ((n.y ?? ocy) - ocy) * k;
    }
    sim.force('radial', forceRadial<GNode>((d) => RING[d.ring], CX, CY).strength(0.9));
    sim.force('collide', forceCollide<GNode>(() => 58 * K));
    placeTargets();
    if (!lost) sim.alpha(0.2).restart();
    draw();
  }
  if (typeof ResizeObserver === 'function') {
    new ResizeObserver((entries) => {
      const r = entries[0]?.contentRect;
      if (r) resize(r.width, r.height);
    }).observe(stage);
  }

  /** Nothing moves after this: the layout and any pulse stop for good. */
  function stop(): void {
    setLost(true);
    if (pulseRaf && typeof cancelAnimationFrame === 'function') cancelAnimationFrame(pulseRaf);
    pulseRaf = 0;
  }

  return { el, stage, update, pulse, pulseOut, stop, nodeKeys: () => [...nodes.keys()] };
}

export type PeerGraph = ReturnType<typeof createPeerGraph>;

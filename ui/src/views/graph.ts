import { forceCollide, forceLink, forceManyBody, forceRadial, forceSimulation, type Simulation, type SimulationLinkDatum, type SimulationNodeDatum } from 'd3-force';
import type { NeighborStatus, PeerStatus, Status } from '../backend/types';
import { h, s, setText } from '../dom';
import { clock, counted, duration, rtt, shortId, shortUrl } from '../format';

type Kind = 'self' | 'p2p' | 'http';

interface GNode extends SimulationNodeDatum {
  key: string;
  kind: Kind;
  g: SVGGElement;
  label: SVGTextElement;
  sub: SVGTextElement;
}

interface GLink extends SimulationLinkDatum<GNode> {
  key: string;
  line: SVGLineElement;
  source: GNode;
  target: GNode;
}

/** Stable graph keys: PeerIds for P2P peers, URLs for HTTP neighbours. */
export const peerKey = (p: PeerStatus) => `p2p:${p.peer_id}`;
export const neighborKey = (n: NeighborStatus) => `http:${n.url}`;

function hashAngle(key: string): number {
  let x = 2166136261;
  for (let i = 0; i < key.length; i++) x = Math.imul(x ^ key.charCodeAt(i), 16777619);
  return ((x >>> 0) / 2 ** 32) * 2 * Math.PI;
}

function rootClass(m: boolean | null): string {
  return m === true ? 'is-insync' : m === false ? 'is-diverged' : 'is-unknown';
}

interface Pulse {
  link: GLink;
  start: number;
  dot: SVGCircleElement;
}

/**
 * The peer graph: this node in the centre, P2P peers on the inner ring, HTTP neighbours on
 * the outer one. Simulation nodes are reused by key, so peers keep their place as others
 * come and go; only a change in the set of nodes re-heats the layout.
 */
export function createPeerGraph(opts: { now?: () => number } = {}) {
  /** The drawing follows the stage's real size (viewBox = CSS pixels), so text stays legible. */
  let W = 800;
  let H = 460;
  let CX = W / 2;
  let CY = H / 2;
  const RING: Record<'self' | 'p2p' | 'http', number> = { self: 0, p2p: 135, http: 200 };
  /** Node glyph scale: larger stages (full HD, projector) get larger nodes and labels. */
  let K = 1;

  function layoutFor(w: number, h: number): void {
    W = w;
    H = h;
    CX = w / 2;
    CY = h / 2;
    const r = Math.min(w * 0.9, h) / 2;
    RING.p2p = Math.max(70, r * 0.52);
    RING.http = Math.max(110, r * 0.82);
    K = Math.min(1.7, Math.max(0.8, Math.min(w, h) / 480));
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
    h('span', { class: 'legend__item legend__item--http', text: 'HTTP neighbour' }),
    h('span', { class: 'legend__item legend__item--insync', text: 'in sync' }),
    h('span', { class: 'legend__item legend__item--diverged', text: 'diverged' }),
    h('span', { class: 'legend__item legend__item--unknown', text: 'unknown' }),
  );
  const el = h('section', { class: 'card graph', attrs: { 'aria-label': 'Peer graph' } },
    h('header', { class: 'card__head' }, h('h2', { class: 'card__title', text: 'Peer graph' }), legend),
    h('div', { class: 'graph__stage' }, svg, details),
  );
  const stage = el.querySelector('.graph__stage') as HTMLElement;

  const nodes = new Map<string, GNode>();
  const links = new Map<string, GLink>();
  let status: Status | null = null;
  let selected: string | null = null;
  const pulses: Pulse[] = [];
  let pulseRaf = 0;

  const sim: Simulation<GNode, GLink> = forceSimulation<GNode, GLink>([])
    .force('link', forceLink<GNode, GLink>([]).id((d) => d.key).distance((l) => RING[l.target.kind]).strength(0.15))
    .force('charge', forceManyBody<GNode>().strength(-700))
    .force('collide', forceCollide<GNode>(() => 58 * K))
    .force('radial', forceRadial<GNode>((d) => RING[d.kind], CX, CY).strength(0.9))
    .alphaDecay(0.05)
    .on('tick', draw);
  sim.stop();

  function makeNode(key: string, kind: Kind): GNode {
    const label = s('text', { class: 'gnode__label', 'text-anchor': 'middle', y: kind === 'self' ? 50 : 36 });
    const sub = s('text', { class: 'gnode__sub num', 'text-anchor': 'middle', y: kind === 'self' ? 68 : 53 });
    const g = s('g', { class: `gnode gnode--${kind}`, tabindex: 0, role: 'button' },
      s('circle', { class: 'gnode__halo', r: kind === 'self' ? 36 : 24 }),
      s('circle', { class: 'gnode__dot', r: kind === 'self' ? 28 : 18 }),
      label, sub);
    const a = hashAngle(key);
    const n: GNode = { key, kind, g, label, sub, x: CX + Math.cos(a) * RING[kind], y: CY + Math.sin(a) * RING[kind] };
    if (kind === 'self') {
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

  function draw(): void {
    for (const n of nodes.values()) n.g.setAttribute('transform', `translate(${(n.x ?? CX).toFixed(1)},${(n.y ?? CY).toFixed(1)}) scale(${K.toFixed(3)})`);
    for (const l of links.values()) {
      l.line.setAttribute('x1', (l.source.x ?? CX).toFixed(1));
      l.line.setAttribute('y1', (l.source.y ?? CY).toFixed(1));
      l.line.setAttribute('x2', (l.target.x ?? CX).toFixed(1));
      l.line.setAttribute('y2', (l.target.y ?? CY).toFixed(1));
    }
  }

  function highlight(): void {
    for (const n of nodes.values()) n.g.classList.toggle('is-selected', n.key === selected);
  }

  function renderDetails(): void {
    if (!selected || !status) {
      details.setAttribute('hidden', '');
      details.replaceChildren();
      return;
    }
    const st = status;
    const rows: [string, string][] = [];
    let title = '';
    if (selected === 'self') {
      title = 'This node';
      rows.push(['PeerId', st.node.peer_id], ['API', st.node.http_listen], ['Version', st.node.version], ['Started', clock(st.node.started_at_ms)], ['Root', st.merkle_root], ['Entries', String(st.entry_count)]);
      if (st.p2p_listen.length) rows.push(['Listening', st.p2p_listen.join('\n')]);
    } else if (selected.startsWith('p2p:')) {
      const p = st.peers.find((x) => peerKey(x) === selected);
      if (!p) {
        title = 'Peer gone';
        rows.push(['PeerId', selected.slice(4)], ['State', 'no longer connected']);
      } else {
        title = 'P2P peer';
        rows.push(['PeerId', p.peer_id], ['Address', p.address ?? '—'], ['Transport', p.transport], ['Connected since', `${clock(p.connected_since_ms)} (${duration(st.now_ms - p.connected_since_ms)})`], ['RTT', rtt(p.rtt_ms)], ['Gossip mesh', p.in_mesh ? 'yes' : 'no'], ['Sync-capable', p.sync_capable ? 'yes' : 'no'], ['Root', p.root ?? 'unknown'], ['Ledger', p.root_matches === true ? 'in sync' : p.root_matches === false ? 'diverged' : 'unknown'], ['Last sync', clock(p.last_sync_ms)]);
      }
    } else {
      const n = st.neighbors.find((x) => neighborKey(x) === selected);
      if (!n) {
        title = 'Neighbour gone';
        rows.push(['URL', selected.slice(5)]);
      } else {
        title = 'HTTP neighbour';
        rows.push(['URL', n.url], ['Health', n.health], ['Root', n.root ?? 'unknown'], ['Ledger', n.root_matches === true ? 'in sync' : n.root_matches === false ? 'diverged' : 'unknown'], ['Last sync', clock(n.last_sync_ms)], ['Event stream', n.events_connected ? 'connected' : 'not connected'], ['Failures in a row', String(n.consecutive_failures)], ['Last error', n.last_error ? `${n.last_error_kind ?? 'error'}: ${n.last_error}` : 'none']);
        if (n.next_attempt_ms != null) rows.push(['Next attempt', clock(n.next_attempt_ms)]);
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

  function update(st: Status): void {
    status = st;
    const want = new Map<string, { kind: Kind; label: string; sub: string; cls: string[] }>();
    want.set('self', { kind: 'self', label: shortId(st.node.peer_id, 6, 4), sub: counted(st.entry_count, 'entry', 'entries'), cls: ['is-self'] });
    for (const p of st.peers) {
      want.set(peerKey(p), { kind: 'p2p', label: shortId(p.peer_id, 6, 4), sub: rtt(p.rtt_ms), cls: [rootClass(p.root_matches), p.sync_capable ? '' : 'is-nosync'] });
    }
    for (const n of st.neighbors) {
      want.set(neighborKey(n), { kind: 'http', label: shortUrl(n.url), sub: n.health, cls: [rootClass(n.root_matches), `is-${n.health}`] });
    }
    let changed = false;
    for (const [key, n] of nodes) {
      if (!want.has(key)) {
        n.g.remove();
        nodes.delete(key);
        const l = links.get(key);
        l?.line.remove();
        links.delete(key);
        changed = true;
      }
    }
    const self = nodes.get('self') ?? (() => { const n = makeNode('self', 'self'); nodes.set('self', n); changed = true; return n; })();
    for (const [key, w] of want) {
      let n = nodes.get(key);
      if (!n) {
        n = makeNode(key, w.kind);
        nodes.set(key, n);
        changed = true;
      }
      setText(n.label, w.label);
      setText(n.sub, w.sub);
      n.g.setAttribute('class', ['gnode', `gnode--${w.kind}`, ...w.cls.filter(Boolean), key === selected ? 'is-selected' : ''].filter(Boolean).join(' '));
      n.g.setAttribute('aria-label', `${w.kind === 'self' ? 'This node' : w.kind === 'p2p' ? 'P2P peer' : 'HTTP neighbour'} ${w.label}`);
      if (key !== 'self' && !links.has(key)) {
        const line = s('line', { class: `gedge gedge--${w.kind}` });
        edgeLayer.append(line);
        links.set(key, { key, line, source: self, target: n });
      }
    }
    for (const l of links.values()) {
      const active = (l.target.kind === 'p2p' && st.sync_mode === 'P2P' && !st.p2p_blocked) || (l.target.kind === 'http' && st.sync_mode === 'HTTP');
      l.line.classList.toggle('is-active', active);
      const tgt = l.key.startsWith('http:') ? st.neighbors.find((x) => neighborKey(x) === l.key) : undefined;
      l.line.classList.toggle('is-unhealthy', tgt?.health === 'unhealthy');
    }
    svg.classList.toggle('is-http', st.sync_mode === 'HTTP');
    setText(empty, nodes.size === 1 ? (st.p2p_blocked ? 'P2P cut: no peers, no neighbours' : 'No P2P peers and no HTTP neighbours') : '');
    if (changed) {
      sim.nodes([...nodes.values()]);
      sim.force<ReturnType<typeof forceLink<GNode, GLink>>>('link')?.links([...links.values()]);
      sim.alpha(0.5).restart();
    }
    draw();
    if (selected) renderDetails();
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
      // From the peer towards us: entries flowing in.
      const e = k < 0.5 ? 2 * k * k : 1 - (-2 * k + 2) ** 2 / 2;
      const x = (p.link.target.x ?? CX) + ((p.link.source.x ?? CX) - (p.link.target.x ?? CX)) * e;
      const y = (p.link.target.y ?? CY) + ((p.link.source.y ?? CY) - (p.link.target.y ?? CY)) * e;
      p.dot.setAttribute('cx', x.toFixed(1));
      p.dot.setAttribute('cy', y.toFixed(1));
    }
    if (pulses.length && typeof requestAnimationFrame === 'function') pulseRaf = requestAnimationFrame(animatePulses);
  }

  /** A pulse along the edge to `who` (a PeerId or a neighbour URL), if we draw that edge. */
  function pulse(who: string): boolean {
    const link = links.get(`p2p:${who}`) ?? links.get(`http:${who}`) ?? links.get(`http:${who.endsWith('/') ? who : `${who}/`}`);
    if (!link) return false;
    if (pulses.filter((p) => p.link === link).length >= 3) return true;
    const dot = s('circle', { class: `gpulse gpulse--${link.target.kind}`, r: (6 * K).toFixed(1), cx: link.target.x ?? CX, cy: link.target.y ?? CY });
    pulseLayer.append(dot);
    pulses.push({ link, start: now(), dot });
    if (!pulseRaf && typeof requestAnimationFrame === 'function') pulseRaf = requestAnimationFrame(animatePulses);
    return true;
  }

  /** Re-fits the drawing to the stage, moving nodes with their rings so nothing jumps. */
  function resize(w: number, h: number): void {
    if (w < 50 || h < 50 || (Math.abs(w - W) < 1 && Math.abs(h - H) < 1)) return;
    const [ocx, ocy, op, oh] = [CX, CY, RING.p2p, RING.http];
    layoutFor(w, h);
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
      if (n.kind === 'self') {
        n.fx = CX;
        n.fy = CY;
      }
      const k = n.kind === 'http' ? RING.http / oh : RING.p2p / op;
      n.x = CX + ((n.x ?? ocx) - ocx) * k;
      n.y = CY + ((n.y ?? ocy) - ocy) * k;
    }
    sim.force('radial', forceRadial<GNode>((d) => RING[d.kind], CX, CY).strength(0.9));
    sim.force('collide', forceCollide<GNode>(() => 58 * K));
    sim.alpha(0.2).restart();
    draw();
  }
  if (typeof ResizeObserver === 'function') {
    new ResizeObserver((entries) => {
      const r = entries[0]?.contentRect;
      if (r) resize(r.width, r.height);
    }).observe(stage);
  }

  return { el, update, pulse, nodeKeys: () => [...nodes.keys()] };
}


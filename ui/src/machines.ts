import type { NeighborStatus, PeerStatus, Status } from './backend/types';
import { shortId, shortUrl } from './format';

export type Link = 'p2p' | 'http';
export type Agreement = 'match' | 'differs' | 'unknown';

/**
 * One other machine, however many lungs link it: a P2P peer and an HTTP neighbour that
 * name the same PeerId are one machine, so a 4-node cluster draws 3 circles, not 6.
 */
export interface Machine {
  /** Its PeerId, or the neighbour URL while no PeerId is known (CONTRACT.md `data-machine`). */
  key: string;
  peerId: string | null;
  name: string | null;
  /** What the audience reads: the name, else a short PeerId, else a short URL. */
  label: string;
  links: Link[];
  agreement: Agreement;
  peer: PeerStatus | null;
  neighbor: NeighborStatus | null;
  /** The id of the other ledger it keeps, when it keeps another: it is refused, not synced. */
  otherLedger: string | null;
}

const agreementOf = (m: boolean | null | undefined): Agreement | null =>
  m === true ? 'match' : m === false ? 'differs' : null;

/**
 * Every other machine in the snapshot, peers first (in the node's order), then neighbours
 * that are no peer. A machine linked by both lungs takes the P2P agreement when P2P knows
 * one, since P2P compares roots on every sync; the neighbour's otherwise.
 */
export function machines(s: Status): Machine[] {
  const out: Machine[] = [];
  const byPeer = new Map<string, Machine>();
  for (const p of s.peers) {
    const m: Machine = { key: p.peer_id, peerId: p.peer_id, name: null, label: '', links: ['p2p'], agreement: 'unknown', peer: p, neighbor: null, otherLedger: null };
    byPeer.set(p.peer_id, m);
    out.push(m);
  }
  for (const n of s.neighbors) {
    const same = n.peer_id ? byPeer.get(n.peer_id) : undefined;
    if (same && !same.neighbor) {
      same.neighbor = n;
      same.links = ['p2p', 'http'];
      continue;
    }
    out.push({ key: n.peer_id ?? n.url, peerId: n.peer_id, name: null, label: '', links: ['http'], agreement: 'unknown', peer: null, neighbor: n, otherLedger: null });
  }
  for (const m of out) {
    m.name = m.neighbor?.name ?? null;
    m.label = m.name ?? (m.peerId ? shortId(m.peerId, 6, 4) : shortUrl(m.neighbor!.url));
    m.agreement = agreementOf(m.peer?.root_matches) ?? agreementOf(m.neighbor?.root_matches) ?? 'unknown';
    const theirs = m.peer?.other_ledger ?? (m.neighbor?.last_error_kind === 'other_ledger' ? m.neighbor.ledger ?? 'another' : null);
    if (theirs) {
      m.otherLedger = theirs;
      m.agreement = 'unknown';
      m.label += ' · other ledger';
    } else if (m.peer?.admitted === false) {
      // Connected but not admitted: neither synced with nor counted until someone accepts it.
      m.agreement = 'unknown';
      m.label += ' · awaiting Accept';
    }
  }
  return out;
}

/** `data-links`: "p2p", "http" or "p2p,http". */
export const linksAttr = (m: Machine): string => m.links.join(',');

/** The ledgers the "identical" banner counts (the other machines and this one), or null. */
export function identicalLedgers(ms: readonly Machine[]): number | null {
  return ms.length > 0 && ms.every((m) => m.agreement === 'match') ? ms.length + 1 : null;
}

/** How fresh one machine's data is, on the node's clock. */
export interface Freshness {
  /** Milliseconds since the freshest thing heard of it (null: never checked). */
  ageMs: number | null;
  stale: boolean;
}

/**
 * A machine is stale when every lung's news of it is older than twice that lung's refresh
 * interval: a peer's last proof of life vs. the heartbeat (pings run at least once per
 * heartbeat), a neighbour's last check vs. the HTTP poll interval.
 */
export function freshness(m: Machine, s: Status, nodeNow: number): Freshness {
  const parts: { age: number; limit: number }[] = [];
  if (m.peer) parts.push({ age: nodeNow - m.peer.last_heard_ms, limit: 2 * s.heartbeat_ms });
  if (m.neighbor?.checked_at_ms != null) parts.push({ age: nodeNow - m.neighbor.checked_at_ms, limit: 2 * s.http_poll_ms });
  if (!parts.length) return { ageMs: null, stale: false };
  const ageMs = Math.max(0, Math.min(...parts.map((p) => p.age)));
  return { ageMs, stale: parts.every((p) => p.age > p.limit) };
}

/** The watched node's own name: LATTICE_NODE_NAME, else its short PeerId. */
export const nodeLabel = (s: Status): string => s.node.name ?? shortId(s.node.peer_id, 10, 6);

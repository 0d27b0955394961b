import { describe, expect, it } from 'vitest';
import { freshness, identicalLedgers, linksAttr, machines } from '../src/machines';
import { fixture } from './helpers';

describe('machines', () => {
  it('merges a P2P peer and an HTTP neighbour with the same PeerId into one machine with both links', () => {
    const s = fixture();
    const ms = machines(s);
    expect(ms).toHaveLength(3);
    expect(ms.map(linksAttr)).toEqual(['p2p,http', 'p2p,http', 'p2p,http']);
    expect(ms.map((m) => m.label).sort()).toEqual(['Branch B', 'Branch C', 'Branch D']);
    expect(ms.every((m) => m.key === m.peerId && m.peer && m.neighbor)).toBe(true);
  });

  it('keys a neighbour by its URL while its PeerId is unknown, and keeps it apart from the peers', () => {
    const s = fixture();
    s.neighbors[0] = { ...s.neighbors[0]!, peer_id: null, name: null };
    const ms = machines(s);
    expect(ms).toHaveLength(4);
    const byUrl = ms.find((m) => m.key === s.neighbors[0]!.url)!;
    expect(linksAttr(byUrl)).toBe('http');
    expect(byUrl.label).toBe('127.0.0.1:44025');
    // The peer it would have matched stands alone, linked by P2P only, labelled by short PeerId.
    const lone = ms.find((m) => m.key === '12D3KooWR79bSBdcZJfmeEX6P3DtphXNpKPZ9g7Ai4Ws2ymX69vo')!;
    expect(linksAttr(lone)).toBe('p2p');
    expect(lone.label).toBe('12D3Ko…69vo');
  });

  it('marks a machine of another ledger as such, never as agreeing', () => {
    const s = fixture();
    const alien = '12D3KooWAlienAlienAlienAlienAlienAlienAlienAlien';
    s.peers.push({ ...s.peers[0]!, peer_id: alien, sync_capable: false, other_ledger: 'ffee01', root_matches: true });
    s.neighbors.push({ ...s.neighbors[0]!, url: 'http://127.0.0.1:9/', peer_id: null, name: null, ledger: 'ffee02', last_error_kind: 'other_ledger', root_matches: null });
    const ms = machines(s);
    const peer = ms.find((m) => m.key === alien)!;
    expect(peer.otherLedger).toBe('ffee01');
    expect(peer.agreement).toBe('unknown');
    expect(peer.label).toMatch(/other ledger$/);
    expect(ms.find((m) => m.key === 'http://127.0.0.1:9/')!.otherLedger).toBe('ffee02');
    expect(identicalLedgers(ms)).toBeNull();
    expect(ms.filter((m) => !m.otherLedger).every((m) => m.otherLedger === null)).toBe(true);
  });

  it('marks a connected peer that waits for Accept as such, never as agreeing', () => {
    const s = fixture();
    const stranger = '12D3KooWStrangerStrangerStrangerStrangerStrang';
    s.peers.push({ ...s.peers[0]!, peer_id: stranger, admitted: false, root_matches: true });
    const ms = machines(s);
    const m = ms.find((x) => x.key === stranger)!;
    expect(m.agreement).toBe('unknown');
    expect(m.label).toMatch(/awaiting Accept$/);
    expect(identicalLedgers(ms)).toBeNull();
  });

  it('takes P2P’s agreement when P2P knows one, the neighbour’s otherwise', () => {
    const s = fixture();
    const id = s.peers[0]!.peer_id;
    const n = s.neighbors.find((x) => x.peer_id === id)!;
    s.peers[0]!.root_matches = true;
    n.root_matches = false;
    expect(machines(s).find((m) => m.key === id)!.agreement).toBe('match');
    s.peers[0]!.root_matches = null;
    expect(machines(s).find((m) => m.key === id)!.agreement).toBe('differs');
    n.root_matches = null;
    expect(machines(s).find((m) => m.key === id)!.agreement).toBe('unknown');
  });

  it('counts identical ledgers only when every machine matches and there is at least one', () => {
    const s = fixture();
    expect(identicalLedgers(machines(s))).toBe(4);
    s.peers[1]!.root_matches = false;
    expect(identicalLedgers(machines(s))).toBeNull();
    expect(identicalLedgers([])).toBeNull();
  });

  it('calls a machine stale only when every lung’s news of it is older than twice its interval', () => {
    const s = fixture({ heartbeat_ms: 500, http_poll_ms: 1000 });
    const T = s.now_ms;
    s.peers.forEach((p) => (p.last_heard_ms = T));
    s.neighbors.forEach((n) => (n.checked_at_ms = T));
    const m = machines(s)[0]!;
    expect(freshness(m, s, T + 900)).toEqual({ ageMs: 900, stale: false });
    // P2P silent for longer than 2 heartbeats, but HTTP checked within 2 polls: still fresh.
    expect(freshness(m, s, T + 1500).stale).toBe(false);
    expect(freshness(m, s, T + 2500)).toEqual({ ageMs: 2500, stale: true });
    // Only HTTP links it: the poll interval alone decides.
    const httpOnly = { ...m, peer: null, links: ['http' as const] };
    expect(freshness(httpOnly, s, T + 1500).stale).toBe(false);
    expect(freshness(httpOnly, s, T + 2001).stale).toBe(true);
  });

  it('never calls a neighbour that was never checked stale', () => {
    const s = fixture({ peers: [] });
    s.neighbors.forEach((n) => (n.checked_at_ms = null));
    expect(machines(s).map((m) => freshness(m, s, s.now_ms + 1e9))).toEqual([
      { ageMs: null, stale: false }, { ageMs: null, stale: false }, { ageMs: null, stale: false },
    ]);
  });
});

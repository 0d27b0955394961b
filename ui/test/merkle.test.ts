// @vitest-environment node
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bitAt, verifyProof } from '../src/merkle';
import type { Proof } from '../src/backend/types';
import real from './fixtures/real-proof.json';

// Independent reference hashing with node:crypto (not the module under test).
const sha = (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest();
const leaf = (id: Buffer) => sha(Buffer.from([0]), id);
const node = (l: Buffer, r: Buffer) => sha(Buffer.from([1]), l, r);
const hex = (b: Buffer) => b.toString('hex');

// Three ids chosen for their leading bits: A = 00…, B = 01…, C = 1….
// The crit-bit tree splits at bit 0 ({A,B} | {C}) and then at bit 1 (A | B).
const A = Buffer.alloc(32, 0x11);
A[0] = 0x00;
const B = Buffer.alloc(32, 0x22);
B[0] = 0x40;
const C = Buffer.alloc(32, 0x33);
C[0] = 0x80;
const AB = node(leaf(A), leaf(B));
const ROOT = hex(node(AB, leaf(C)));

const proofA: Proof = { id: hex(A), root: ROOT, steps: [{ bit: 0, sibling: hex(leaf(C)) }, { bit: 1, sibling: hex(leaf(B)) }] };
const proofB: Proof = { id: hex(B), root: ROOT, steps: [{ bit: 0, sibling: hex(leaf(C)) }, { bit: 1, sibling: hex(leaf(A)) }] };
const proofC: Proof = { id: hex(C), root: ROOT, steps: [{ bit: 0, sibling: hex(AB) }] };

describe('inclusion proof verification (WebCrypto)', () => {
  it('numbers bits from the most significant bit of byte 0', () => {
    expect(bitAt(Uint8Array.of(0x80), 0)).toBe(1);
    expect(bitAt(Uint8Array.of(0x40), 1)).toBe(1);
    expect(bitAt(Uint8Array.of(0x40), 0)).toBe(0);
    expect(bitAt(Uint8Array.of(0x00, 0x01), 15)).toBe(1);
  });

  it('accepts a proof for every leaf of a hand-built three-leaf tree', async () => {
    for (const p of [proofA, proofB, proofC]) {
      const v = await verifyProof(p.id, p, ROOT);
      expect(v).toMatchObject({ ok: true, computedRoot: ROOT });
    }
  });

  it('rejects a proof whose sibling was tampered with', async () => {
    const sib = Buffer.from(proofA.steps[1]!.sibling, 'hex');
    sib[31] = (sib[31] ?? 0) ^ 1;
    const bad = { ...proofA, steps: [proofA.steps[0]!, { bit: 1, sibling: hex(sib) }] };
    const v = await verifyProof(bad.id, bad, ROOT);
    expect(v.ok).toBe(false);
    if (!v.ok) expect(v.reason).toMatch(/do not chain/);
  });

  it('rejects swapped left/right order (the id bit decides the side)', async () => {
    const v = await verifyProof(proofB.id, { ...proofB, id: hex(B) }, ROOT);
    expect(v.ok).toBe(true);
    // B's proof presented for A: same siblings would need the other side.
    const w = await verifyProof(hex(A), { ...proofB, id: hex(A) }, ROOT);
    expect(w.ok).toBe(false);
  });

  it('rejects critical bits that do not strictly increase from the root down', async () => {
    const v = await verifyProof(proofA.id, { ...proofA, steps: [...proofA.steps].reverse() }, ROOT);
    expect(v.ok).toBe(false);
    if (!v.ok) expect(v.reason).toMatch(/strictly increase/);
  });

  it('says when the proof is valid but its root is not the current ledger root', async () => {
    const v = await verifyProof(proofC.id, proofC, 'ab'.repeat(32));
    expect(v.ok).toBe(false);
    if (!v.ok) {
      expect(v.reason).toMatch(/not the node's current Merkle root/);
      expect(v.computedRoot).toBe(ROOT);
    }
  });

  it('rejects a proof for another id and malformed input', async () => {
    expect((await verifyProof(hex(A), proofC, ROOT)).ok).toBe(false);
    expect((await verifyProof('xyz', proofA, ROOT)).ok).toBe(false);
    expect((await verifyProof(proofA.id, { ...proofA, steps: [{ bit: 0, sibling: 'zz' }] }, ROOT)).ok).toBe(false);
  });

  it('treats a one-entry ledger as a lone leaf with no steps', async () => {
    const root = hex(leaf(A));
    expect((await verifyProof(hex(A), { id: hex(A), root, steps: [] }, root)).ok).toBe(true);
  });

  it('verifies a proof produced by the real Rust node', async () => {
    const p = real.proof as Proof;
    const v = await verifyProof(real.entry.id, p, p.root);
    expect(v.ok).toBe(true);
  });
});

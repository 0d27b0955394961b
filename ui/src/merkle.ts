/**
 * Inclusion-proof verification in the browser, with WebCrypto, by the node's rules
 * (RFC 6962 domain separation): leaf = H(0x00 || id), node = H(0x01 || left || right).
 * Proof steps run from the root down with strictly increasing critical bits; we fold from
 * the leaf up. A proof is only "verified" if it reproduces its root AND that root is the
 * ledger root the node shows right now; the result says which check failed.
 */
import type { Proof } from './backend/types';

export type Digest = (data: Uint8Array) => Promise<Uint8Array>;

export const sha256: Digest = async (data) => {
  const buf = await globalThis.crypto.subtle.digest('SHA-256', data as BufferSource);
  return new Uint8Array(buf);
};

export function hexToBytes(hex: string): Uint8Array | null {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) return null;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function bytesToHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** Bit `bit` of `bytes`, bit 0 being the most significant bit of byte 0. */
export function bitAt(bytes: Uint8Array, bit: number): 0 | 1 {
  const byte = bytes[bit >> 3] ?? 0;
  return ((byte >> (7 - (bit & 7))) & 1) as 0 | 1;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function leafHash(id: Uint8Array, h: Digest = sha256): Promise<Uint8Array> {
  return h(concat(Uint8Array.of(0), id));
}

export function nodeHash(left: Uint8Array, right: Uint8Array, h: Digest = sha256): Promise<Uint8Array> {
  return h(concat(Uint8Array.of(1), left, right));
}

export type ProofVerdict =
  | { ok: true; computedRoot: string; currentRoot: string }
  | { ok: false; reason: string; computedRoot?: string };

/**
 * Verifies `proof` for entry `id` against the ledger root the node currently shows.
 * Pure apart from hashing; never trusts the node's own `proof_verified` flag.
 */
export async function verifyProof(
  id: string,
  proof: Proof,
  currentRoot: string,
  h: Digest = sha256,
): Promise<ProofVerdict> {
  const idBytes = hexToBytes(id);
  if (!idBytes || idBytes.length !== 32) return { ok: false, reason: 'the entry id is not 64 hex characters' };
  if (proof.id.toLowerCase() !== id.toLowerCase()) {
    return { ok: false, reason: 'the proof is for a different entry id' };
  }
  const root = proof.root.toLowerCase();
  if (!hexToBytes(root) || root.length !== 64) return { ok: false, reason: 'the proof root is not a SHA-256 hex digest' };
  const steps = proof.steps;
  for (let i = 0; i < steps.length; i++) {
    const s = steps[i]!;
    if (!Number.isInteger(s.bit) || s.bit < 0 || s.bit >= 256) {
      return { ok: false, reason: `step ${i} has an impossible bit index ${s.bit}` };
    }
    if (i > 0 && steps[i - 1]!.bit >= s.bit) {
      return { ok: false, reason: `critical bits do not strictly increase from the root down (step ${i})` };
    }
  }
  const siblings: Uint8Array[] = [];
  for (let i = 0; i < steps.length; i++) {
    const b = hexToBytes(steps[i]!.sibling);
    if (!b || b.length !== 32) return { ok: false, reason: `step ${i} has a malformed sibling hash` };
    siblings.push(b);
  }
  let acc = await leafHash(idBytes, h);
  for (let i = steps.length - 1; i >= 0; i--) {
    const sib = siblings[i]!;
    acc = bitAt(idBytes, steps[i]!.bit) === 0 ? await nodeHash(acc, sib, h) : await nodeHash(sib, acc, h);
  }
  const computedRoot = bytesToHex(acc);
  if (computedRoot !== root) {
    return { ok: false, reason: 'the proof does not reproduce its root (hashes do not chain)', computedRoot };
  }
  if (root !== currentRoot.toLowerCase()) {
    return {
      ok: false,
      reason: "the proof is valid for its root, but that is not the node's current Merkle root",
      computedRoot,
    };
  }
  return { ok: true, computedRoot, currentRoot: currentRoot.toLowerCase() };
}

import type { Agreement } from '../machines';

/** How a machine's ledger compares with ours, in the audience's words. */
export const AGREEMENT_WORDS: Record<Agreement, string> = {
  match: 'in sync',
  differs: 'differs',
  unknown: 'not compared yet',
};

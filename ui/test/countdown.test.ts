import { describe, expect, it } from 'vitest';
import { clockSkew, formatCountdown, remainingFraction, remainingMs } from '../src/countdown';

describe('fallback countdown math', () => {
  it('counts down from the node deadline on the node clock', () => {
    // Node says now=10_000 when we receive it at local 10_000: no skew.
    expect(remainingMs(16_000, 10_000, 0, 6000)).toBe(6000);
    expect(remainingMs(16_000, 12_500, 0, 6000)).toBe(3500);
  });

  it('corrects for a node clock that runs ahead of ours', () => {
    const skew = clockSkew(50_000, 48_000); // node is 2 s ahead
    expect(skew).toBe(2000);
    // Deadline 54_000 node time; local 49_000 = node 51_000 -> 3 s left.
    expect(remainingMs(54_000, 49_000, skew, 6000)).toBe(3000);
  });

  it('corrects for a node clock that runs behind ours', () => {
    const skew = clockSkew(10_000, 13_000); // node is 3 s behind
    expect(remainingMs(15_000, 13_000, skew, 6000)).toBe(5000);
  });

  it('clamps to zero after the deadline and to the total before it', () => {
    expect(remainingMs(1000, 5000, 0, 6000)).toBe(0);
    expect(remainingMs(100_000, 0, 0, 6000)).toBe(6000);
  });

  it('gives the ring fraction', () => {
    expect(remainingFraction(3000, 6000)).toBe(0.5);
    expect(remainingFraction(0, 6000)).toBe(0);
    expect(remainingFraction(10, 0)).toBe(0);
  });

  it('formats with a fixed shape per range', () => {
    expect(formatCountdown(5340)).toBe('5.3 s');
    expect(formatCountdown(0)).toBe('0.0 s');
    expect(formatCountdown(42_100)).toBe('43 s');
    expect(formatCountdown(65_000)).toBe('1:05');
  });
});

import { describe, expect, it } from 'vitest';
import { backoffDelay } from '../../../src/flow/backoff.js';

const policy = { baseDelayMs: 100, maxDelayMs: 1_000 };
const fixed = (value: number) => () => value;
/** Just below 1: the top of what Math.random can return. */
const top = 1 - Number.EPSILON;

describe('backoffDelay', () => {
  it('draws uniformly from [0, base · 2^retry): the full jitter range, never its ceiling', () => {
    expect(backoffDelay(0, policy, undefined, fixed(0))).toBe(0);
    expect(backoffDelay(0, policy, undefined, fixed(0.5))).toBe(50);
    expect(backoffDelay(0, policy, undefined, fixed(top))).toBe(99);
    expect(backoffDelay(2, policy, undefined, fixed(0))).toBe(0);
    expect(backoffDelay(2, policy, undefined, fixed(top))).toBe(399);
  });

  it('doubles the ceiling with each retry', () => {
    const ceilings = [0, 1, 2, 3].map((retry) => backoffDelay(retry, policy, undefined, fixed(top)) + 1);
    expect(ceilings).toEqual([100, 200, 400, 800]);
  });

  it('stops growing at maxDelayMs', () => {
    expect(backoffDelay(4, policy, undefined, fixed(top))).toBe(999);
    expect(backoffDelay(10, policy, undefined, fixed(top))).toBe(999);
    expect(backoffDelay(10, policy, undefined, fixed(0.5))).toBe(500);
  });

  it('stays within bounds for any random draw', () => {
    for (let i = 0; i <= 100; i++) {
      const delay = backoffDelay(3, policy, undefined, fixed(Math.min(i / 100, top)));
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThan(800);
      expect(Number.isInteger(delay)).toBe(true);
    }
  });

  it('waits nothing when the base delay is zero', () => {
    expect(backoffDelay(5, { baseDelayMs: 0, maxDelayMs: 1_000 }, undefined, fixed(top))).toBe(0);
  });

  it('treats Retry-After as a floor: never shorter, even beyond maxDelayMs', () => {
    expect(backoffDelay(0, policy, 250, fixed(0))).toBe(250);
    expect(backoffDelay(0, policy, 250, fixed(top))).toBe(250);
    expect(backoffDelay(0, policy, 5_000, fixed(top))).toBe(5_000);
  });

  it('keeps the jittered delay when it is longer than Retry-After', () => {
    expect(backoffDelay(3, policy, 250, fixed(0.5))).toBe(400);
    expect(backoffDelay(3, policy, 0, fixed(0.5))).toBe(400);
  });
});

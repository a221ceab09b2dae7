import { describe, expect, it } from 'vitest';
import {
  type BreakerState,
  CircuitBreaker,
  type CircuitBreakerOptions,
} from '../../../src/flow/circuit-breaker.js';
import { ManualClock } from '../../../src/time/manual-clock.js';

function setup(options: CircuitBreakerOptions = {}) {
  const clock = new ManualClock();
  const changes: string[] = [];
  const breaker = new CircuitBreaker(
    {
      windowMs: 10_000,
      minRequests: 20,
      failureRate: 0.5,
      openMs: 5_000,
      halfOpenProbes: 3,
      onStateChange: (state: BreakerState, previous: BreakerState) => changes.push(`${previous} → ${state}`),
      ...options,
    },
    clock,
  );
  const record = (successes: number, failures: number) => {
    for (let i = 0; i < successes; i++) breaker.record(true);
    for (let i = 0; i < failures; i++) breaker.record(false);
  };
  /** Opens the breaker, then waits until it half-opens. */
  const halfOpen = () => {
    record(0, 20);
    clock.advance(5_000);
    expect(breaker.state).toBe('half-open');
  };
  return { clock, breaker, changes, record, halfOpen };
}

describe('CircuitBreaker', () => {
  it('stays closed below minRequests, even when every request fails', () => {
    const { breaker, record } = setup();
    record(0, 19);
    expect(breaker.state).toBe('closed');
    expect(breaker.allow()).toBe(true);
  });

  it('opens when the failure rate reaches the threshold over at least minRequests', () => {
    const { breaker, record } = setup();
    record(11, 9); // 45 %
    expect(breaker.state).toBe('closed');
    record(0, 2); // 50 %
    expect(breaker.state).toBe('open');
    expect(breaker.allow()).toBe(false);
  });

  it('forgets outcomes older than the window', () => {
    const { clock, breaker, record } = setup();
    record(0, 15);
    clock.advance(10_000);
    record(0, 15);
    expect(breaker.state).toBe('closed');
    record(0, 5);
    expect(breaker.state).toBe('open');
  });

  it('half-opens after openMs and lets only halfOpenProbes requests through at once', () => {
    const { clock, breaker, record } = setup();
    record(0, 20);
    clock.advance(4_999);
    expect(breaker.allow()).toBe(false);
    clock.advance(1);
    expect([breaker.allow(), breaker.allow(), breaker.allow(), breaker.allow()]).toEqual([
      true,
      true,
      true,
      false,
    ]);
    expect(breaker.state).toBe('half-open');
  });

  it('closes after halfOpenProbes successful probes, with a fresh window', () => {
    const { breaker, changes, record, halfOpen } = setup();
    halfOpen();
    for (let i = 0; i < 3; i++) expect(breaker.allow()).toBe(true);
    record(2, 0);
    expect(breaker.state).toBe('half-open');
    record(1, 0);
    expect(breaker.state).toBe('closed');
    // The failures that opened it are gone.
    record(0, 19);
    expect(breaker.state).toBe('closed');
    expect(changes).toEqual(['closed → open', 'open → half-open', 'half-open → closed']);
  });

  it('reopens on a failed probe with the open time doubled, up to maxOpenMs', () => {
    const { clock, breaker, halfOpen } = setup({ maxOpenMs: 30_000 });
    halfOpen();
    const openTimes: number[] = [];
    for (let i = 0; i < 4; i++) {
      expect(breaker.allow()).toBe(true);
      breaker.record(false);
      const openedAt = clock.now();
      while (breaker.state === 'open') clock.advance(1_000);
      openTimes.push(clock.now() - openedAt);
    }
    expect(openTimes).toEqual([10_000, 20_000, 30_000, 30_000]);
  });

  it('starts again from openMs once it has closed', () => {
    const { clock, breaker, record, halfOpen } = setup();
    halfOpen();
    breaker.allow();
    record(0, 1); // open for 10 s
    clock.advance(10_000);
    for (let i = 0; i < 3; i++) breaker.allow();
    record(3, 0);
    expect(breaker.state).toBe('closed');
    record(0, 20);
    clock.advance(4_999);
    expect(breaker.state).toBe('open');
    clock.advance(1);
    expect(breaker.state).toBe('half-open');
  });

  it('ignores outcomes that arrive while open: they were allowed before it opened', () => {
    const { clock, breaker, record } = setup();
    record(0, 20);
    record(50, 0);
    expect(breaker.state).toBe('open');
    clock.advance(5_000);
    expect(breaker.state).toBe('half-open');
  });

  it('frees a probe slot when a probe ends without an outcome', () => {
    const { breaker, halfOpen } = setup();
    halfOpen();
    for (let i = 0; i < 3; i++) breaker.allow();
    expect(breaker.allow()).toBe(false);
    breaker.release();
    expect(breaker.allow()).toBe(true);
    expect(breaker.state).toBe('half-open');
  });
});

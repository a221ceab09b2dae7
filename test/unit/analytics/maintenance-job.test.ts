import { describe, expect, it } from 'vitest';
import { startMaintenanceJob } from '../../../src/analytics/maintenance-job.js';
import { ManualClock } from '../../../src/time/manual-clock.js';

/** Lets the promise callbacks a fired timer started run to their end. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('the maintenance job', () => {
  it('runs a pass at once, then one interval after each pass ends', async () => {
    const clock = new ManualClock(1_000);
    const passes: number[] = [];
    const job = startMaintenanceJob({
      clock,
      intervalMs: 60_000,
      pass: async () => {
        passes.push(clock.now());
      },
      onError: () => {},
    });
    clock.advance(0);
    await settle();
    clock.advance(59_999);
    await settle();
    expect(passes).toEqual([1_000]);
    clock.advance(1);
    await settle();
    clock.advance(60_000);
    await settle();
    expect(passes).toEqual([1_000, 61_000, 121_000]);
    await job.stop();
    clock.advance(600_000);
    await settle();
    expect(passes).toHaveLength(3);
    expect(clock.pending).toBe(0);
  });

  it('reports a failed pass and tries again at the next interval', async () => {
    const clock = new ManualClock(0);
    const errors: string[] = [];
    let calls = 0;
    const job = startMaintenanceJob({
      clock,
      intervalMs: 1_000,
      pass: async () => {
        calls++;
        if (calls === 1) throw new Error('store is down');
      },
      onError: (error) => errors.push((error as Error).message),
    });
    clock.advance(0);
    await settle();
    clock.advance(1_000);
    await settle();
    expect(errors).toEqual(['store is down']);
    expect(calls).toBe(2);
    await job.stop();
  });

  it('waits for the pass in progress when stopped, and starts no other', async () => {
    const clock = new ManualClock(0);
    let finish: () => void = () => {};
    let started = 0;
    const job = startMaintenanceJob({
      clock,
      intervalMs: 1_000,
      pass: () => {
        started++;
        return new Promise<void>((resolve) => {
          finish = resolve;
        });
      },
      onError: () => {},
    });
    clock.advance(0);
    let stopped = false;
    const stopping = job.stop().then(() => {
      stopped = true;
    });
    await settle();
    expect(stopped).toBe(false);
    finish();
    await stopping;
    clock.advance(10_000);
    await settle();
    expect(started).toBe(1);
  });
});

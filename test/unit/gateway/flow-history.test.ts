import { describe, expect, it } from 'vitest';
import type { Priority } from '../../../src/flow/priority.js';
import { type FlowSample, recordFlowHistory } from '../../../src/gateway/flow-history.js';
import { ManualClock } from '../../../src/time/manual-clock.js';

const epoch = Date.UTC(2025, 0, 1, 12, 0, 0);

function shed(counts: Partial<Record<Priority, number>> = {}): Record<Priority, number> {
  return { critical: 0, high: 0, normal: 0, low: 0, batch: 0, ...counts };
}

function sample(target: string, fields: Partial<FlowSample> = {}): FlowSample {
  return {
    target,
    limit: 10,
    inflight: 0,
    queued: 0,
    shedByPriority: shed(),
    breaker: 'closed',
    latencyMs: null,
    ...fields,
  };
}

/** A history over a flow state the test sets by hand, on a fake clock whose time is epoch ms. */
function setup(options: { capacity?: number } = {}) {
  const clock = new ManualClock(epoch);
  let state: FlowSample[] = [];
  const history = recordFlowHistory({
    sample: () => state,
    clock,
    wallTime: () => clock.now(),
    intervalMs: 2_000,
    ...options,
  });
  return {
    clock,
    history,
    set: (next: FlowSample[]) => {
      state = next;
    },
  };
}

describe('flow history', () => {
  it('samples at start and every interval, stamped with wall time', () => {
    const { clock, history, set } = setup();
    set([sample('sim/a', { limit: 20, inflight: 3, queued: 1 })]);
    clock.advance(2_000);
    set([sample('sim/a', { limit: 24, inflight: 5, queued: 0 })]);
    clock.advance(2_000);

    const view = history.read(900);
    expect(view.intervalMs).toBe(2_000);
    expect(view.t).toEqual([epoch, epoch + 2_000, epoch + 4_000]);
    expect(view.targets).toEqual([
      expect.objectContaining({
        target: 'sim/a',
        limit: [null, 20, 24],
        inflight: [null, 3, 5],
        queued: [null, 1, 0],
        breaker: [null, 'closed', 'closed'],
      }),
    ]);
  });

  it('reports shed requests per interval, not the cumulative count', () => {
    const { clock, history, set } = setup();
    set([sample('sim/a', { shedByPriority: shed({ batch: 4 }) })]);
    clock.advance(2_000);
    set([sample('sim/a', { shedByPriority: shed({ batch: 10, low: 1 }) })]);
    clock.advance(2_000);
    set([sample('sim/a', { shedByPriority: shed({ batch: 10, low: 1 }) })]);
    clock.advance(2_000);

    const [a] = history.read(900).targets;
    expect(a?.shed.batch).toEqual([null, 4, 6, 0]);
    expect(a?.shed.low).toEqual([null, 0, 1, 0]);
    expect(a?.shed.critical).toEqual([null, 0, 0, 0]);
  });

  it('counts from zero again when a reload rebuilt a target’s limiter', () => {
    const { clock, history, set } = setup();
    set([sample('sim/a', { shedByPriority: shed({ normal: 50 }) })]);
    clock.advance(2_000);
    set([sample('sim/a', { shedByPriority: shed({ normal: 3 }) })]);
    clock.advance(2_000);

    expect(history.read(900).targets[0]?.shed.normal).toEqual([null, 50, 3]);
  });

  it('fills null where a target did not exist yet or any more', () => {
    const { clock, history, set } = setup();
    set([sample('sim/a')]);
    clock.advance(2_000);
    set([sample('sim/a'), sample('sim/b', { breaker: 'open' })]);
    clock.advance(2_000);
    set([sample('sim/b', { breaker: 'half-open' })]);
    clock.advance(2_000);

    const view = history.read(900);
    expect(view.targets.map((t) => t.target)).toEqual(['sim/a', 'sim/b']);
    expect(view.targets[0]?.breaker).toEqual([null, 'closed', 'closed', null]);
    expect(view.targets[1]?.breaker).toEqual([null, null, 'open', 'half-open']);
  });

  it('keeps only the newest samples once the ring is full', () => {
    const { clock, history, set } = setup({ capacity: 3 });
    for (let limit = 1; limit <= 5; limit++) {
      set([sample('sim/a', { limit })]);
      clock.advance(2_000);
    }
    const view = history.read(900);
    expect(view.t).toEqual([epoch + 6_000, epoch + 8_000, epoch + 10_000]);
    expect(view.targets[0]?.limit).toEqual([3, 4, 5]);
  });

  it('reads only the last `seconds`', () => {
    const { clock, history } = setup();
    clock.advance(20_000);
    const view = history.read(5);
    expect(view.t).toEqual([epoch + 16_000, epoch + 18_000, epoch + 20_000]);
  });

  it('takes no more samples once stopped', () => {
    const { clock, history } = setup();
    clock.advance(4_000);
    history.stop();
    clock.advance(10_000);
    expect(history.read(900).t).toHaveLength(3);
    expect(clock.pending).toBe(0);
  });
});

import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/time/manual-clock.js';

describe('ManualClock', () => {
  it('fires timers in time order, ties in the order they were set, including timers set by timers', () => {
    const clock = new ManualClock();
    const fired: string[] = [];
    clock.setTimer(20, () => fired.push('b'));
    clock.setTimer(10, () => {
      fired.push('a');
      clock.setTimer(5, () => fired.push('a+5'));
    });
    clock.setTimer(20, () => fired.push('c'));
    clock.advance(14);
    expect(fired).toEqual(['a']);
    expect(clock.now()).toBe(14);
    clock.advance(10);
    expect(fired).toEqual(['a', 'a+5', 'b', 'c']);
  });

  it('never fires a cancelled timer', () => {
    const clock = new ManualClock();
    let fired = false;
    clock
      .setTimer(1, () => {
        fired = true;
      })
      .cancel();
    expect(clock.runAll()).toBe(0);
    expect(fired).toBe(false);
    expect(clock.pending).toBe(0);
  });
});

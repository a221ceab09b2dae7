import { describe, expect, it } from 'vitest';
import { periodAt } from '../../../src/policy/budget-period.js';

const at = (iso: string) => Date.parse(iso);

describe('budget periods (UTC)', () => {
  it('a day runs from 00:00 UTC to the next 00:00 UTC', () => {
    expect(periodAt('day', at('2026-03-14T23:59:59.999Z'))).toEqual({
      id: '2026-03-14',
      startsAt: at('2026-03-14T00:00:00Z'),
      resetsAt: at('2026-03-15T00:00:00Z'),
    });
    expect(periodAt('day', at('2026-03-15T00:00:00.000Z')).id).toBe('2026-03-15');
  });

  it('a month runs from the 1st at 00:00 UTC, whatever its length, across the year end', () => {
    expect(periodAt('month', at('2028-02-29T12:00:00Z'))).toEqual({
      id: '2028-02',
      startsAt: at('2028-02-01T00:00:00Z'),
      resetsAt: at('2028-03-01T00:00:00Z'),
    });
    expect(periodAt('month', at('2026-12-31T23:59:59Z')).resetsAt).toBe(at('2027-01-01T00:00:00Z'));
    expect(periodAt('day', at('2026-12-31T08:00:00Z')).resetsAt).toBe(at('2027-01-01T00:00:00Z'));
  });

  it('total never resets', () => {
    expect(periodAt('total', at('2026-03-14T10:00:00Z'))).toEqual({
      id: 'total',
      startsAt: null,
      resetsAt: null,
    });
  });
});

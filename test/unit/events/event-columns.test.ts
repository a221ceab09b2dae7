import { describe, expect, it } from 'vitest';
import { eventTimeMs } from '../../../src/events/event-columns.js';

describe('event time in epoch ms', () => {
  it('reads every ISO form Date.parse reads, across hours, days and years', () => {
    const times = [
      '2026-03-01T12:00:00.000Z',
      '2026-03-01T12:59:59.999Z',
      '2026-03-01T13:00:00.001Z',
      '2026-03-01T12:30:00.500Z',
      '2026-12-31T23:59:59.999Z',
      '2027-01-01T00:00:00.000Z',
      '2026-03-01T12:00:00Z',
      '2026-03-01T14:00:00.250+02:00',
      '1969-12-31T23:59:59.999Z',
      '1969-12-31T23:00:00.001Z',
    ];
    for (const time of times) expect(eventTimeMs({ id: 'x', time })).toBe(Date.parse(time));
  });

  it('refuses a time it cannot read, naming the event', () => {
    expect(() => eventTimeMs({ id: 'evt-1', time: 'yesterday' })).toThrowError(
      'wide event evt-1 has an unreadable time: yesterday',
    );
    eventTimeMs({ id: 'x', time: '2026-03-01T12:00:00.000Z' });
    expect(() => eventTimeMs({ id: 'evt-2', time: '2026-03-01T12:7x:00.000Z' })).toThrowError('evt-2');
  });
});

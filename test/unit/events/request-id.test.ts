import { describe, expect, it } from 'vitest';
import { requestId, requestIdTimeMs } from '../../../src/events/request-id.js';

describe('request ids (UUIDv7)', () => {
  it('are RFC 9562 version 7 UUIDs that carry the millisecond they were made', () => {
    const at = Date.UTC(2026, 10, 30, 3, 10, 0, 123);
    const id = requestId(at);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(requestIdTimeMs(id)).toBe(at);
  });

  it('sort by time, and differ within one millisecond', () => {
    const earlier = requestId(1_000);
    const later = requestId(2_000);
    expect(earlier < later).toBe(true);
    const same = new Set(Array.from({ length: 1_000 }, () => requestId(5_000)));
    expect(same.size).toBe(1_000);
  });

  it('say nothing about the time of any other id', () => {
    expect(requestIdTimeMs('6f1c2a7e-3b4d-4c5e-8f60-718293a4b5c6')).toBeUndefined();
    expect(requestIdTimeMs('not-a-uuid')).toBeUndefined();
    expect(requestIdTimeMs('')).toBeUndefined();
  });
});

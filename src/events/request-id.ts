import { randomUUID } from 'node:crypto';

/**
 * Request ids are UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits. They sort by
 * time, and a request's id says when it arrived, so finding one event among millions reads only
 * the stretch of the event store around that time instead of every id in it.
 */
export function requestId(nowMs: number = Date.now()): string {
  const time = Math.max(0, Math.floor(nowMs)).toString(16).padStart(12, '0').slice(-12);
  // A v4 UUID's random bits and variant, with the time in front and the version set to 7.
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-7${randomUUID().slice(15)}`;
}

const v7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

/** When a UUIDv7 request id was made (epoch ms); undefined for any other id. */
export function requestIdTimeMs(id: string): number | undefined {
  if (!v7.test(id)) return undefined;
  return Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}

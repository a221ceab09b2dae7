import type { WideEvent } from '../../src/events/wide-event.js';

/** A successful, unremarkable chat event: tests override what they are about. */
export function plainEvent(id: string, overrides: Partial<WideEvent> = {}): WideEvent {
  return {
    schemaVersion: 2,
    id,
    traceId: null,
    time: '2025-01-01T00:00:00.000Z',
    operation: 'chat',
    wire: 'openai',
    stream: false,
    keyName: null,
    keyId: null,
    team: null,
    org: null,
    requestedModel: 'gpt-4o-mini',
    route: null,
    target: 'sim/gpt-4o-mini',
    provider: 'sim',
    model: 'gpt-4o-mini',
    region: null,
    routeVersion: null,
    promptId: null,
    promptVersion: null,
    retrievalIndexHash: null,
    status: 200,
    errorClass: null,
    errorCode: null,
    errorMessage: null,
    clientAborted: false,
    timings: { totalMs: 12, firstTokenMs: null, upstreamMs: null },
    tokens: { input: 10, output: 20, cachedInput: 0, cacheWrite: 0, reasoning: 0 },
    costUsd: null,
    cacheStatus: null,
    attempts: [],
    retries: 0,
    fallbacks: 0,
    hedges: 0,
    priority: null,
    queuedMs: 0,
    shed: false,
    shedReason: null,
    tags: {},
    requestBody: null,
    responseBody: null,
    ...overrides,
  };
}

/** Text with every character a column encoder must escape or count in bytes, and a 4-byte one. */
export const oddText = 'nul\u0000 tab\t nl\n cr\r back\\slash \'q\' "dq" é 日本 🌊';

/**
 * Values at the edges of each column's type and length encoding, for an event's overrides: a
 * time past 2^32 ms, strings whose byte length takes one, two and three LEB128 bytes, the
 * smallest Int32, float extremes and sums that text formats round, booleans set.
 */
export const edgeValues = {
  time: '2100-01-01T00:00:00.123Z', // over 2^32 ms: the Int64's high half is used
  stream: true,
  keyName: oddText,
  keyId: 'a'.repeat(127), // the longest one-byte length
  team: 'b'.repeat(128), // the shortest two-byte length
  org: `${'c'.repeat(126)}é`, // 127 characters, 128 bytes
  route: 'd'.repeat(16_384), // a three-byte length
  region: '',
  status: -2_147_483_648,
  errorMessage: `${oddText} ${'x'.repeat(300)}`,
  clientAborted: true,
  // 3.47 read as text by ClickHouse 18.16 came back 3.4699999999999998: binary floats arrive exact.
  timings: { totalMs: 3.47, firstTokenMs: 0.1 + 0.2, upstreamMs: 5e-324 },
  tokens: { input: 2_147_483_647, output: -1, cachedInput: 0, cacheWrite: 1e9, reasoning: 7 },
  queuedMs: -123.456,
  shed: true,
  shedReason: 'overload',
  tags: { note: oddText },
  responseBody: oddText,
} satisfies Partial<WideEvent>;

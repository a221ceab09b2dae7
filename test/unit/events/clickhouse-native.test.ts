import { describe, expect, it } from 'vitest';
import { nativeBlock } from '../../../src/events/clickhouse-native.js';
import { clickhouseType, eventColumns, toRow } from '../../../src/events/event-columns.js';
import type { WideEvent } from '../../../src/events/wide-event.js';
import { edgeValues, plainEvent } from '../../support/wide-events.js';

/** Reads Native blocks back as ClickHouse does, by each column's declared type (an independent decoder). */
function readBlocks(bytes: Buffer): Record<string, unknown>[] {
  let at = 0;
  const leb = (): number => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      const byte = bytes[at++]!;
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
  };
  const text = (): string => {
    const length = leb();
    at += length;
    return bytes.toString('utf8', at - length, at);
  };
  const result: Record<string, unknown>[] = [];
  while (at < bytes.length) {
    expect(leb()).toBe(eventColumns.length);
    const rows = leb();
    const block: Record<string, unknown>[] = Array.from({ length: rows }, () => ({}));
    for (const col of eventColumns) {
      expect(text()).toBe(col.name);
      expect(text()).toBe(clickhouseType(col));
      const nulls = col.nullable ? [...bytes.subarray(at, at + rows)] : [];
      if (col.nullable) at += rows;
      for (const row of block) {
        let value: unknown;
        if (col.kind === 'string') value = text();
        else if (col.kind === 'int') {
          value = bytes.readInt32LE(at);
          at += 4;
        } else if (col.kind === 'bigint') {
          value = Number(bytes.readBigInt64LE(at));
          at += 8;
        } else if (col.kind === 'float') {
          value = bytes.readDoubleLE(at);
          at += 8;
        } else {
          const byte = bytes[at++];
          expect(byte === 0 || byte === 1).toBe(true);
          value = byte === 1;
        }
        row[col.name] = value;
      }
      // A null row still holds the type's default in the values: read, then replaced by null.
      nulls.forEach((isNull, r) => {
        expect(isNull === 0 || isNull === 1).toBe(true);
        if (isNull === 0) return;
        expect(block[r]![col.name]).toBe(col.kind === 'string' ? '' : 0);
        block[r]![col.name] = null;
      });
    }
    result.push(...block);
  }
  expect(at).toBe(bytes.length);
  return result;
}

const events: WideEvent[] = [
  plainEvent('plain'),
  plainEvent('every-field', {
    ...edgeValues,
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    costUsd: 1e308,
    requestBody: '{"lone":"\ud800"}',
  }),
  plainEvent('before-1970', { time: '1969-12-31T23:59:59.999Z' }), // a negative Int64
  // A different value in every column, so two columns written in each other's place show.
  plainEvent('distinct', {
    traceId: 'trace',
    operation: 'embeddings',
    wire: 'anthropic',
    keyName: 'key-name',
    keyId: 'key-id',
    team: 'team',
    org: 'org',
    requestedModel: 'requested',
    route: 'route',
    target: 'target',
    provider: 'provider',
    model: 'model',
    region: 'region',
    routeVersion: 'route-version',
    promptId: 'prompt-id',
    promptVersion: 'prompt-version',
    retrievalIndexHash: 'retrieval',
    status: 429,
    errorClass: 'rate_limited',
    errorCode: 'error-code',
    errorMessage: 'error-message',
    timings: { totalMs: 1.5, firstTokenMs: 2.5, upstreamMs: 3.5 },
    tokens: { input: 11, output: 12, cachedInput: 13, cacheWrite: 14, reasoning: 15 },
    costUsd: 4.5,
    cacheStatus: 'hit',
    retries: 21,
    fallbacks: 22,
    hedges: 23,
    priority: 'batch',
    queuedMs: 5.5,
    shedReason: 'shed-reason',
    tags: { a: 'b' },
    requestBody: 'request-body',
    responseBody: 'response-body',
  }),
];

describe('nativeBlock', () => {
  it('writes every column by its declared type, in table order, each column whole', () => {
    const rows = readBlocks(nativeBlock(events));
    const expected = events.map((event) => {
      const row = toRow(event) as Record<string, unknown>;
      // UTF-8 cannot carry a lone surrogate: it is written as U+FFFD, as any UTF-8 encoder writes it.
      if (typeof row.request_body === 'string') row.request_body = Buffer.from(row.request_body).toString();
      return row;
    });
    expect(rows).toEqual(expected);
    expect(rows[1]!.request_body).toBe('{"lone":"\ufffd"}');
    expect(rows[2]!.time_ms).toBe(-1);
  });

  it('writes an empty batch as no bytes', () => {
    expect(nativeBlock([]).length).toBe(0);
  });

  it('writes a block after one with a value of megabytes (a column then let go of its memory)', () => {
    const before = readBlocks(nativeBlock(events));
    const large = plainEvent('large', { requestBody: 'b'.repeat(2_000_000) });
    expect(readBlocks(nativeBlock([large]))[0]!.request_body).toBe(large.requestBody);
    expect(readBlocks(nativeBlock(events))).toEqual(before);
  });

  it('starts every block afresh: two blocks read back as their own rows', () => {
    const rows = readBlocks(Buffer.concat([nativeBlock(events.slice(0, 3)), nativeBlock(events.slice(3))]));
    expect(rows.map((row) => row.id)).toEqual(events.map((event) => event.id));
  });

  it('refuses a value of the wrong type, naming the event and the column', () => {
    const bad = (overrides: object) => () =>
      nativeBlock([plainEvent('bad', overrides as Partial<WideEvent>)]);
    expect(bad({ status: 200.5 })).toThrowError('wide event bad: column status must be a 32-bit integer');
    expect(bad({ status: 2 ** 31 })).toThrowError('column status must be a 32-bit integer');
    expect(bad({ operation: 7 })).toThrowError('column operation must be text, not number 7');
    expect(bad({ stream: 'yes' })).toThrowError('column stream must be a boolean');
    expect(bad({ time: '1e400' })).toThrowError('unreadable time');
    expect(bad({ timings: { totalMs: '12', firstTokenMs: null } })).toThrowError(
      'column timings_total_ms must be a number',
    );
    expect(bad({ operation: null })).toThrowError('column operation must be text, not object null');
  });
});

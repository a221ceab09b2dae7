import { describe, expect, it } from 'vitest';
import { type WideEvent, wideEventSchema } from '../../../src/events/wide-event.js';
import { ByteWriter, wideEventCodec } from '../../../src/events/wide-event-codec.js';
import { plainEvent } from '../../support/wide-events.js';

/** What the spool gave back when it wrote JSON: the codec must give back the same. */
const viaJson = (event: unknown): unknown => JSON.parse(JSON.stringify(event));

function roundTrip(events: readonly unknown[]): { decoded: unknown[]; bytes: number } {
  const out = new ByteWriter(16); // small: growing is exercised too
  for (const event of events) wideEventCodec.encode(event as WideEvent, out);
  const bytes = Buffer.from(out.bytes.subarray(0, out.length));
  return { decoded: wideEventCodec.decode(bytes, events.length), bytes: out.length };
}

const busyEvent = (id: string): WideEvent =>
  plainEvent(id, {
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    time: '2026-11-30T12:00:00.123Z',
    stream: true,
    keyName: 'app-1',
    keyId: 'key_1',
    team: 'search',
    org: 'acme',
    route: 'chat',
    region: 'eu-west',
    routeVersion: 'a1b2c3',
    promptId: 'p',
    promptVersion: '7',
    retrievalIndexHash: 'h',
    status: 502,
    errorClass: 'upstream',
    errorCode: 'upstream_error',
    errorMessage: 'upstream returned 502',
    timings: { totalMs: 833.07, firstTokenMs: 12.5, upstreamMs: 832.07 },
    tokens: { input: 724, output: 335, cachedInput: 241, cacheWrite: 3, reasoning: 9 },
    costUsd: 0.0003096,
    cacheStatus: 'miss',
    attempts: [
      {
        target: 'a/m',
        reason: 'first',
        outcome: 'timeout',
        status: null,
        startMs: 0.41,
        durationMs: 500,
        firstByteMs: null,
        queuedMs: 1.25,
        error: 'deadline exceeded',
      },
      {
        target: 'b/m',
        reason: 'fallback',
        outcome: 'error',
        status: 502,
        startMs: 501.5,
        durationMs: 331.57,
        firstByteMs: 20.01,
        queuedMs: 0,
        error: 'upstream returned 502',
        costUsd: null,
        priceVersion: 'config',
        usageEstimated: true,
      },
    ],
    fallbacks: 1,
    priority: 'high',
    queuedMs: 1.25,
    tags: { feature: 'chat', ab: 'b', '10': 'numeric key first' },
    requestBody: `{"messages":[${'"x",'.repeat(100)}"y"]}`,
    responseBody: 'ok',
  });

describe('wideEventCodec', () => {
  it('carries every field of the schema: a field added to it without the codec fails here', () => {
    const busy = busyEvent('all');
    expect(Object.keys(busy).sort()).toEqual(Object.keys(wideEventSchema.shape).sort());
    expect(Object.keys(busy.attempts[1]!).sort()).toEqual(
      Object.keys(wideEventSchema.shape.attempts.element.shape).sort(),
    );
    expect(roundTrip([busy]).decoded).toEqual([viaJson(busy)]);
  });

  it('gives back what a JSON round trip gives, for events of every shape the record stage builds', () => {
    const events = [plainEvent('plain'), busyEvent('busy'), busyEvent('again')];
    const { decoded, bytes } = roundTrip(events);
    expect(decoded).toEqual(events.map(viaJson));
    // The point of it: fewer bytes than the JSON too.
    expect(bytes).toBeLessThan(events.reduce((sum, e) => sum + JSON.stringify(e).length, 0));
  });

  it('keeps any text exactly: other scripts, quotes, control characters, emoji and lone surrogates', () => {
    const texts = [
      'naïve café',
      'Grüße, 你好, مرحبا',
      'say "hi" \\ back\n\t\u0000\u001f',
      'emoji 😀 pair',
      'lone \ud800 high',
      'lone \udc00 low',
      `${'long ascii '.repeat(20)}`,
      `${'long ünïcödé '.repeat(20)}\ud83d`,
      '',
    ];
    const events = texts.map((text, i) =>
      plainEvent(`t${i}`, {
        errorMessage: text,
        keyName: text,
        tags: { [text]: text },
        requestBody: text,
        attempts: [
          {
            target: text,
            reason: 'first',
            outcome: 'ok',
            status: 200,
            startMs: 0,
            durationMs: 1,
            firstByteMs: null,
            queuedMs: null,
            error: text,
          },
        ],
      }),
    );
    const { decoded } = roundTrip(events);
    expect(decoded).toEqual(events.map(viaJson));
    expect((decoded[4] as WideEvent).errorMessage).toBe('lone \ud800 high');
  });

  it('writes numbers as JSON does: NaN and infinities as null, -0 as 0, fractions exactly', () => {
    const event = plainEvent('n', {
      costUsd: Number.NaN,
      queuedMs: -0,
      timings: { totalMs: Number.POSITIVE_INFINITY, firstTokenMs: 0.1 + 0.2, upstreamMs: 1e-7 },
      tokens: { input: 2 ** 53, output: -1, cachedInput: 0, cacheWrite: 0, reasoning: 0 },
    });
    const { decoded } = roundTrip([event]);
    expect(decoded).toEqual([viaJson(event)]);
    expect(Object.is((decoded[0] as WideEvent).queuedMs, 0)).toBe(true);
    expect((decoded[0] as WideEvent).costUsd).toBeNull();
  });

  it('leaves out fields left undefined (an older event, an attempt without a price), as JSON does', () => {
    const older = plainEvent('old') as Partial<WideEvent>;
    delete older.traceId;
    delete older.keyId;
    delete older.region;
    (older.timings as { upstreamMs?: number | null }).upstreamMs = undefined;
    older.tags = { a: 'x', b: undefined as unknown as string };
    const { decoded } = roundTrip([older]);
    expect(decoded).toEqual([viaJson(older)]);
    expect(decoded[0]).not.toHaveProperty('traceId');
    expect((decoded[0] as WideEvent).timings).not.toHaveProperty('upstreamMs');
    expect((decoded[0] as WideEvent).tags).toEqual({ a: 'x' });
  });

  it('spools an event not of the schema’s shape as its JSON, whole', () => {
    const odd = [
      { id: 'bare', time: '2026-01-01T00:00:00.000Z' },
      { ...plainEvent('typed'), status: '200' },
      { ...plainEvent('tags'), tags: { n: 5 } },
      { ...plainEvent('attempt'), attempts: [null] },
      { ...plainEvent('flag'), stream: 'yes' },
    ];
    const { decoded } = roundTrip([plainEvent('before'), ...odd, plainEvent('after')]);
    expect(decoded).toEqual([plainEvent('before'), ...odd, plainEvent('after')].map(viaJson));
  });

  it('refuses bytes it cannot read rather than making events up', () => {
    const out = new ByteWriter();
    wideEventCodec.encode(busyEvent('x'), out);
    const bytes = Buffer.from(out.bytes.subarray(0, out.length));
    expect(() => wideEventCodec.decode(bytes.subarray(0, bytes.length - 3), 1)).toThrow(/record ends/);
    expect(() => wideEventCodec.decode(bytes, 2)).toThrow(/record ends/);
    expect(() => wideEventCodec.decode(Buffer.concat([bytes, Buffer.from([1])]), 1)).toThrow(/left after/);
    const bad = Buffer.from(bytes);
    bad[0] = 9;
    expect(() => wideEventCodec.decode(bad, 1)).toThrow(/unknown form/);
  });
});

import { describe, expect, it } from 'vitest';
import { isApiError } from '../../../src/http/api-error.js';
import { callLabels } from '../../../src/http/call-labels.js';

describe('callLabels: what a request says about itself in headers', () => {
  it('reads tags as name=value pairs, trimming spaces and skipping empty entries', () => {
    expect(callLabels({ 'x-sluice-tags': ' feature=autocomplete, ab.bucket=b,,team= search ' })).toEqual({
      tags: { feature: 'autocomplete', 'ab.bucket': 'b', team: 'search' },
    });
  });

  it('has no tags and no labels when the headers are absent', () => {
    expect(callLabels({})).toEqual({ tags: {} });
  });

  it('refuses a tag without a value separator, naming the header and the pair', () => {
    const result = callLabels({ 'x-sluice-tags': 'feature=x,oops' });
    expect(isApiError(result) && result).toMatchObject({
      status: 400,
      code: 'invalid_header',
      param: 'x-sluice-tags',
      message: expect.stringContaining("'oops'"),
    });
  });

  it('refuses too many tags and too long values', () => {
    const many = Array.from({ length: 17 }, (_, i) => `t${i}=v`).join(',');
    expect(isApiError(callLabels({ 'x-sluice-tags': many }))).toBe(true);
    expect(isApiError(callLabels({ 'x-sluice-tags': `k=${'v'.repeat(129)}` }))).toBe(true);
    expect(isApiError(callLabels({ 'x-sluice-tags': `k=${'v'.repeat(128)}` }))).toBe(false);
  });

  it('takes the trace id from a W3C traceparent before x-sluice-trace-id', () => {
    const traceparent = '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01';
    expect(callLabels({ traceparent, 'x-sluice-trace-id': 'mine' })).toMatchObject({
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    });
  });

  it('ignores an unreadable or all-zero traceparent, as W3C asks, and falls back to x-sluice-trace-id', () => {
    expect(callLabels({ traceparent: 'garbage', 'x-sluice-trace-id': 'run-42' })).toMatchObject({
      traceId: 'run-42',
    });
    const zero = `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`;
    expect(callLabels({ traceparent: zero })).toEqual({ tags: {} });
  });

  it('reads the prompt and retrieval index the application owns', () => {
    expect(
      callLabels({
        'x-sluice-prompt-id': 'summarise',
        'x-sluice-prompt-version': 'v7',
        'x-sluice-retrieval-index': 'idx@2026-11-01',
      }),
    ).toEqual({ tags: {}, promptId: 'summarise', promptVersion: 'v7', retrievalIndexHash: 'idx@2026-11-01' });
  });

  it('refuses a label with characters that do not belong in a version', () => {
    const result = callLabels({ 'x-sluice-prompt-version': 'v1; DROP TABLE' });
    expect(isApiError(result) && result).toMatchObject({ status: 400, param: 'x-sluice-prompt-version' });
  });
});

import { describe, expect, it } from 'vitest';
import { Cancellation } from '../../../src/flow/cancel.js';

describe('Cancellation', () => {
  it('tells each listener once when the client goes away, and not the ones removed', () => {
    const client = new Cancellation();
    const heard: string[] = [];
    const kept = () => heard.push('kept');
    const removed = () => heard.push('removed');
    client.addEventListener('abort', kept);
    client.addEventListener('abort', removed);
    client.removeEventListener('abort', removed);
    expect(client.aborted).toBe(false);
    client.abort();
    client.abort();
    expect(client.aborted).toBe(true);
    expect(heard).toEqual(['kept']);
  });

  it('tells every listener even when one throws, then throws its error', () => {
    const cancel = new Cancellation();
    const heard: string[] = [];
    cancel.addEventListener('abort', () => {
      throw new Error('listener failed');
    });
    cancel.addEventListener('abort', () => heard.push('second'));
    expect(() => cancel.abort()).toThrow('listener failed');
    expect(heard).toEqual(['second']);
    expect(cancel.aborted).toBe(true);
  });

  it('gives a real AbortSignal on demand, aborted with it or already aborted', () => {
    const early = new Cancellation();
    const signal = early.signal;
    expect(signal.aborted).toBe(false);
    early.abort();
    expect(signal.aborted).toBe(true);
    const late = new Cancellation();
    late.abort();
    expect(late.signal.aborted).toBe(true);
    expect(AbortSignal.any([late.signal]).aborted).toBe(true);
  });
});

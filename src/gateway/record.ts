import type { WideEvent } from '../events/wide-event.js';
import type { Call } from './call.js';

/** The record stage: a finished Call becomes its wide event. */
export function wideEvent(call: Call): WideEvent {
  const last = call.attempts.at(-1);
  const ok = call.status !== undefined && call.status < 400;
  const tokens = call.usage;
  return {
    schemaVersion: 1,
    id: call.id,
    time: new Date(call.receivedAt).toISOString(),
    operation: call.operation,
    wire: call.wire,
    stream: call.stream,
    keyName: call.principal.keyName,
    requestedModel: call.requestedModel,
    route: call.route ?? null,
    target: last?.target ?? null,
    provider: last?.provider ?? null,
    model: last?.model ?? null,
    status: call.status ?? 0,
    errorCode: ok ? null : (call.error?.code ?? null),
    errorMessage: ok ? null : (call.error?.message ?? null),
    clientAborted: call.clientAborted ?? false,
    timings: {
      totalMs: round(call.totalMs ?? 0),
      firstTokenMs: call.firstTokenMs === undefined ? null : round(call.firstTokenMs),
    },
    tokens: {
      input: tokens?.inputTokens ?? 0,
      output: tokens?.outputTokens ?? 0,
      cachedInput: tokens?.cachedInputTokens ?? 0,
      cacheWrite: tokens?.cacheWriteTokens ?? 0,
      reasoning: tokens?.reasoningTokens ?? 0,
    },
    attempts: call.attempts.map((a) => ({
      target: a.target,
      reason: a.reason,
      outcome: a.outcome,
      status: a.status ?? null,
      startMs: round(a.startMs),
      durationMs: a.durationMs === undefined ? null : round(a.durationMs),
      firstByteMs: a.firstByteMs === undefined ? null : round(a.firstByteMs),
      queuedMs: a.queuedMs === undefined ? null : round(a.queuedMs),
      error: a.error ?? null,
    })),
    retries: call.attempts.filter((a) => a.reason === 'retry').length,
    fallbacks: call.attempts.filter((a) => a.reason === 'fallback').length,
    hedges: call.attempts.filter((a) => a.reason === 'hedge').length,
    priority: call.priority ?? null,
    queuedMs: round(call.attempts.reduce((sum, a) => sum + (a.queuedMs ?? 0), 0)),
    shed:
      !ok &&
      call.attempts.length > 0 &&
      call.attempts.every((a) => a.outcome === 'shed' || a.outcome === 'skipped'),
  };
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

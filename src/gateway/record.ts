import { type ErrorClass, WIDE_EVENT_VERSION, type WideEvent } from '../events/wide-event.js';
import type { ApiError } from '../http/api-error.js';
import { toUsd } from '../policy/cost.js';
import type { Call } from './call.js';

const noTags: Record<string, string> = {};

/** The record stage: a finished Call becomes its wide event. */
export function wideEvent(call: Call, region: string | null = null): WideEvent {
  const last = call.attempts.at(-1);
  const ok = call.status !== undefined && call.status < 400;
  const tokens = call.usage;
  const labels = call.labels;
  const shed =
    !ok &&
    call.attempts.length > 0 &&
    call.attempts.every((a) => a.outcome === 'shed' || a.outcome === 'skipped');
  return {
    schemaVersion: WIDE_EVENT_VERSION,
    id: call.id,
    traceId: labels?.traceId ?? null,
    time: new Date(call.receivedAt).toISOString(),
    operation: call.operation,
    wire: call.wire,
    stream: call.stream,
    keyName: call.principal.keyName,
    keyId: call.principal.keyId ?? null,
    team: call.principal.team ?? null,
    org: call.principal.org ?? null,
    requestedModel: call.requestedModel,
    route: call.route ?? null,
    target: last?.target ?? null,
    provider: last?.provider ?? null,
    model: last?.model ?? null,
    region,
    routeVersion: call.routeVersion ?? null,
    promptId: labels?.promptId ?? null,
    promptVersion: labels?.promptVersion ?? null,
    retrievalIndexHash: labels?.retrievalIndexHash ?? null,
    status: call.status ?? 0,
    errorClass: ok ? null : errorClass(call.status ?? 0, call.error, call.clientAborted === true),
    errorCode: ok ? null : (call.error?.code ?? null),
    errorMessage: ok ? null : (call.error?.message ?? null),
    clientAborted: call.clientAborted ?? false,
    timings: {
      totalMs: round(call.totalMs ?? 0),
      firstTokenMs: call.firstTokenMs === undefined ? null : round(call.firstTokenMs),
      upstreamMs: last?.durationMs === undefined ? null : round(last.durationMs - (last.queuedMs ?? 0)),
    },
    tokens: {
      input: tokens?.inputTokens ?? 0,
      output: tokens?.outputTokens ?? 0,
      cachedInput: tokens?.cachedInputTokens ?? 0,
      cacheWrite: tokens?.cacheWriteTokens ?? 0,
      reasoning: tokens?.reasoningTokens ?? 0,
    },
    costUsd: call.costUsd ?? null,
    cacheStatus: call.cacheStatus ?? null,
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
      ...(a.cost !== undefined && { costUsd: a.cost === null ? null : toUsd(a.cost) }),
      ...(a.priceVersion !== undefined && { priceVersion: a.priceVersion }),
      ...(a.usage?.estimated && { usageEstimated: true }),
    })),
    retries: call.attempts.filter((a) => a.reason === 'retry').length,
    fallbacks: call.attempts.filter((a) => a.reason === 'fallback').length,
    hedges: call.attempts.filter((a) => a.reason === 'hedge').length,
    priority: call.priority ?? null,
    queuedMs: round(call.attempts.reduce((sum, a) => sum + (a.queuedMs ?? 0), 0)),
    shed,
    shedReason: shed && call.error?.code?.startsWith('shed_') ? call.error.code.slice(5) : null,
    tags: labels?.tags ?? noTags,
    requestBody: call.requestBody ?? null,
    responseBody: call.responseBody ?? null,
  };
}

/** The failure's kind, for breakdowns: who should act on it (the client, an operator, a provider). */
export function errorClass(status: number, error: ApiError | undefined, clientAborted: boolean): ErrorClass {
  const code = error?.code ?? '';
  if (clientAborted || status === 499) return 'client_aborted';
  if (code.startsWith('shed_')) return 'shed';
  if (code === 'budget_exceeded' || status === 402) return 'budget';
  if (code === 'rate_limit_exceeded') return 'rate_limited';
  if (status === 401 || status === 403) return 'auth';
  if (status === 504 || error?.kind === 'timeout') return 'timeout';
  if (
    code.startsWith('upstream_') ||
    code === 'circuit_open' ||
    code === 'retry_budget_exhausted' ||
    code === 'no_target'
  )
    return 'upstream';
  if (status >= 400 && status < 500) return 'client';
  return 'internal';
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

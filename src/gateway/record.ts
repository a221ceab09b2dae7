import { type ErrorClass, WIDE_EVENT_VERSION, type WideEvent } from '../events/wide-event.js';
import type { ApiError } from '../http/api-error.js';
import { toUsd } from '../policy/cost.js';
import { isoTime } from '../time/iso-time.js';
import type { Attempt, Call } from './call.js';

const noTags: Record<string, string> = {};

/** The record stage: a finished Call becomes its wide event. */
export function wideEvent(call: Call, region: string | null = null): WideEvent {
  // One pass over the attempts for everything the event says about them (this runs for every
  // request with events on), and each attempt's record built in one shape, without spreads.
  const attempts: WideEvent['attempts'] = new Array(call.attempts.length);
  let retries = 0;
  let fallbacks = 0;
  let hedges = 0;
  let queuedMs = 0;
  let allShed = call.attempts.length > 0;
  for (let i = 0; i < call.attempts.length; i++) {
    const a = call.attempts[i]!;
    if (a.reason === 'retry') retries++;
    else if (a.reason === 'fallback') fallbacks++;
    else if (a.reason === 'hedge') hedges++;
    queuedMs += a.queuedMs ?? 0;
    if (a.outcome !== 'shed' && a.outcome !== 'skipped') allShed = false;
    attempts[i] = attemptRecord(a);
  }
  const last = call.attempts.at(-1);
  const ok = call.status !== undefined && call.status < 400;
  const tokens = call.usage;
  const labels = call.labels;
  const shed = !ok && allShed;
  return {
    schemaVersion: WIDE_EVENT_VERSION,
    id: call.id,
    traceId: labels?.traceId ?? null,
    time: isoTime(call.receivedAt),
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
    attempts,
    retries,
    fallbacks,
    hedges,
    priority: call.priority ?? null,
    queuedMs: round(queuedMs),
    shed,
    shedReason: shed && call.error?.code?.startsWith('shed_') ? call.error.code.slice(5) : null,
    tags: labels?.tags ?? noTags,
    requestBody: call.requestBody ?? null,
    responseBody: call.responseBody ?? null,
  };
}

function attemptRecord(a: Attempt): WideEvent['attempts'][number] {
  const record: WideEvent['attempts'][number] = {
    target: a.target,
    reason: a.reason,
    outcome: a.outcome,
    status: a.status ?? null,
    startMs: round(a.startMs),
    durationMs: a.durationMs === undefined ? null : round(a.durationMs),
    firstByteMs: a.firstByteMs === undefined ? null : round(a.firstByteMs),
    queuedMs: a.queuedMs === undefined ? null : round(a.queuedMs),
    error: a.error ?? null,
  };
  if (a.cost !== undefined) record.costUsd = a.cost === null ? null : toUsd(a.cost);
  if (a.priceVersion !== undefined) record.priceVersion = a.priceVersion;
  if (a.usage?.estimated) record.usageEstimated = true;
  return record;
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

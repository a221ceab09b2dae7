import type { WideEvent } from '../../events/wide-event.js';
import type { FlowHistoryView } from '../../gateway/flow-history.js';
import type { FlowState } from '../../gateway/flow-state.js';

/** The signed-in caller, from GET /api/whoami. */
export interface Whoami {
  admin: boolean;
  keyName: string | null;
  keyId: string | null;
  team: string | null;
  org: string | null;
}

export type Metric =
  | 'requests'
  | 'rps'
  | 'errors'
  | 'error_rate'
  | 'latency_p50'
  | 'latency_p95'
  | 'latency_p99'
  | 'ttft_p50'
  | 'ttft_p95'
  | 'ttft_p99'
  | 'tokens_input'
  | 'tokens_output'
  | 'tokens_per_s'
  | 'cost_usd'
  | 'cost_per_hour'
  | 'shed'
  | 'cache_hit_rate';

export type MetricValues<M extends Metric> = Record<M, number | null>;

export interface Timeseries<M extends Metric> {
  from: string;
  to: string;
  stepMs: number;
  t: number[];
  series: Array<{ group: string | null; values: Record<M, Array<number | null>> }>;
}

export interface Breakdown<M extends Metric> {
  by: string;
  rows: Array<{ group: string | null; values: MetricValues<M> }>;
}

/** A request in the list: the wide event without its bodies. */
export type RequestRow = Omit<WideEvent, 'requestBody' | 'responseBody'>;

export interface RequestPage {
  data: RequestRow[];
  nextCursor: string | null;
}

export interface RequestDetail {
  event: WideEvent;
  related: Array<Record<string, unknown>>;
}

export interface FlowReport {
  enabled: boolean;
  targets: ReturnType<FlowState['snapshot']>;
  retryBudgets: ReturnType<FlowState['budgetSnapshot']>;
  routes: Record<string, { targets: string[]; fallbacks: string[] }>;
}

/** One limit's numbers for this period, from GET /admin/budgets. */
export interface BudgetSpend {
  limit: number;
  spent: number;
  /** Held by requests in flight. */
  reserved: number;
}

/** A budget with this period's spend, as GET /admin/budgets lists it. */
export interface BudgetReport {
  name: string;
  source: 'config' | 'store';
  id: string | null;
  scope: Record<string, string>;
  period: 'day' | 'month' | 'total';
  softLimitPct: number | null;
  resetsAt: string | null;
  usd: BudgetSpend | null;
  tokens: BudgetSpend | null;
}

export type { FlowHistoryView, WideEvent };

/** A refused or failed API call, with the gateway's own message when it sent one. */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string | null = null,
  ) {
    super(message);
  }
}

/** Query parameters; arrays repeat the name (route=a&route=b), empty values are left out. */
export type Params = Record<string, string | number | boolean | undefined | null | readonly string[]>;

export function queryString(params: Params): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '' || value === false) continue;
    if (Array.isArray(value)) for (const v of value) search.append(name, v);
    else search.append(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

/**
 * The gateway's API as the console uses it: every call carries the signed-in key, and a refusal
 * becomes an ApiFailure whose message can be shown as is.
 */
export function apiClient(key: string, onUnauthorized: () => void = () => {}) {
  const get = async <T>(path: string, params: Params = {}, signal?: AbortSignal): Promise<T> => {
    let response: Response;
    try {
      response = await fetch(path + queryString(params), {
        headers: { authorization: `Bearer ${key}` },
        signal,
      });
    } catch (error) {
      if ((error as Error).name === 'AbortError') throw error;
      throw new ApiFailure(0, 'The gateway cannot be reached: is `sluice up` still running?');
    }
    if (response.ok) return (await response.json()) as T;
    const failure = await failureOf(response);
    if (response.status === 401) onUnauthorized();
    throw failure;
  };
  return {
    whoami: (signal?: AbortSignal) => get<Whoami>('/api/whoami', {}, signal),
    timeseries: <M extends Metric>(params: Params & { metrics: readonly M[] }, signal?: AbortSignal) =>
      get<Timeseries<M>>(
        '/api/analytics/timeseries',
        { ...params, metrics: params.metrics.join(',') },
        signal,
      ),
    breakdown: <M extends Metric>(
      params: Params & { by: string; metrics: readonly M[] },
      signal?: AbortSignal,
    ) =>
      get<Breakdown<M>>('/api/analytics/breakdown', { ...params, metrics: params.metrics.join(',') }, signal),
    summary: <M extends Metric>(params: Params & { metrics: readonly M[] }, signal?: AbortSignal) =>
      get<{ values: MetricValues<M> }>(
        '/api/analytics/summary',
        { ...params, metrics: params.metrics.join(',') },
        signal,
      ),
    requests: (params: Params, signal?: AbortSignal) => get<RequestPage>('/api/requests', params, signal),
    request: (id: string, signal?: AbortSignal) =>
      get<RequestDetail>(`/api/requests/${encodeURIComponent(id)}`, {}, signal),
    flow: (signal?: AbortSignal) => get<FlowReport>('/admin/flow', {}, signal),
    flowHistory: (seconds: number, signal?: AbortSignal) =>
      get<FlowHistoryView>('/admin/flow/history', { seconds }, signal),
    keys: (signal?: AbortSignal) => get<unknown>('/admin/keys', {}, signal),
    budgets: (signal?: AbortSignal) => get<{ budgets: BudgetReport[] }>('/admin/budgets', {}, signal),
  };
}

export type Api = ReturnType<typeof apiClient>;

async function failureOf(response: Response): Promise<ApiFailure> {
  try {
    const body = (await response.json()) as { error?: { message?: string; code?: string | null } };
    if (body.error?.message)
      return new ApiFailure(response.status, body.error.message, body.error.code ?? null);
  } catch {
    // Not JSON: a proxy's page or an empty body; the status says enough.
  }
  return new ApiFailure(response.status, `The gateway answered ${response.status} ${response.statusText}.`);
}

import type { Priority } from '../flow/priority.js';
import type { ApiError } from '../http/api-error.js';
import type { TokenUsage } from '../providers/canonical.js';
import type { Admission } from './limits.js';

/** Who is calling: an API key's name, or anonymous when the API is open. */
export interface Principal {
  keyName: string | null;
  /** The virtual key's id; null for keys declared in sluice.yaml and anonymous calls. */
  keyId?: string | null;
  /** The names of the virtual key's team and org; null when it has none. */
  team?: string | null;
  org?: string | null;
  /** A virtual key's tags, e.g. {"env": "prod"}: the defaults of its requests' tags. */
  tags?: Readonly<Record<string, string>>;
  /** Routes this key may use; undefined means all. */
  routes?: readonly string[];
  /** Flow-control priority of this key's requests unless they say otherwise. */
  priority?: Priority;
}

/** One try against one target. */
export interface Attempt {
  target: string;
  provider: string;
  model: string;
  /** Milliseconds since the call was received. */
  startMs: number;
  durationMs?: number;
  firstByteMs?: number;
  status?: number;
  /** `shed`: the target's limiter refused it; `skipped`: the target's circuit was open. */
  outcome: 'pending' | 'ok' | 'error' | 'timeout' | 'aborted' | 'shed' | 'skipped';
  /** Time spent in the target's admission queue. */
  queuedMs?: number;
  error?: string;
  /** Why this attempt exists: the first try, a retry of the same target, a fallback to another, a hedge. */
  reason: 'first' | 'retry' | 'fallback' | 'hedge';
  /** What the provider billed this attempt for (src/gateway/metering.ts); undefined: nothing seen. */
  usage?: TokenUsage;
  /** Pico-dollars (src/policy/cost.ts) for `usage`; null: the target has no known price. */
  cost?: number | null;
  /** The price catalog version that priced it, or "config" (sluice.yaml). */
  priceVersion?: string;
}

/**
 * One request through the gateway, from ingress to the wide event it becomes
 * (ARCHITECTURE.md). Stages fill it in; `record` turns it into an event.
 */
export interface Call {
  id: string;
  /** Epoch milliseconds, for the event. */
  receivedAt: number;
  /** performance.now() at ingress: all durations are relative to it. */
  startedAt: number;
  wire: 'openai' | 'anthropic';
  operation: 'chat' | 'embeddings';
  stream: boolean;
  principal: Principal;
  /** The model name the client asked for. */
  requestedModel: string;
  route?: string;
  attempts: Attempt[];
  usage?: TokenUsage;
  firstTokenMs?: number;
  totalMs?: number;
  status?: number;
  error?: ApiError;
  /** Flow-control priority (x-sluice-priority, or the key's default). */
  priority?: string;
  /** The client went away before the answer was complete. */
  clientAborted?: boolean;
  /** What the client told us about itself: x-sluice-tags, trace and version headers. */
  labels?: CallLabels;
  /** Digest of the route's definition (Route.version). */
  routeVersion?: string;
  /** USD over every billable attempt; null when a price is unknown, undefined when not priced. */
  costUsd?: number | null;
  /** The price catalog version that priced it, or "config" (sluice.yaml). */
  priceVersion?: string;
  cacheStatus?: 'hit' | 'miss' | 'semantic_hit';
  /** Captured only when events.bodies is enabled, already capped and redacted. */
  requestBody?: string;
  responseBody?: string;
  /** Budget room and rate-limit units the admit stage took; settled when the call finishes. */
  admission?: Admission;
}

/** Labels a request carries in headers, recorded on its wide event. */
export interface CallLabels {
  tags: Record<string, string>;
  traceId?: string;
  promptId?: string;
  promptVersion?: string;
  retrievalIndexHash?: string;
}

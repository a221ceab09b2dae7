import type { Priority } from '../flow/priority.js';
import type { ApiError } from '../http/api-error.js';
import type { TokenUsage } from '../providers/canonical.js';

/** Who is calling: an API key's name, or anonymous when the API is open. */
export interface Principal {
  keyName: string | null;
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
}

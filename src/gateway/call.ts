import type { ApiError } from '../http/api-error.js';
import type { TokenUsage } from '../providers/canonical.js';

/** Who is calling: an API key's name, or anonymous when the API is open. */
export interface Principal {
  keyName: string | null;
  /** Routes this key may use; undefined means all. */
  routes?: readonly string[];
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
  outcome: 'pending' | 'ok' | 'error' | 'timeout' | 'aborted';
  error?: string;
  /** Why this attempt exists: the first try, a retry of the same target, or a fallback to another. */
  reason: 'first' | 'retry' | 'fallback';
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
  /** The client went away before the answer was complete. */
  clientAborted?: boolean;
}

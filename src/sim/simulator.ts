import { type ApiError, apiError } from '../http/api-error.js';
import { type Clock, systemClock } from '../time/clock.js';
import { type Completion, rememberedPlanner, type SimPrompt } from './completion.js';
import type { ModelProfile, SimConfig } from './config.js';
import { Deployment } from './deployment.js';
import { embed } from './embedding.js';
import { type FaultEffect, FaultTimeline } from './faults.js';
import { Quota, type QuotaState } from './quota.js';
import { createRng, hashSeed } from './rng.js';
import { countTokens } from './tokens.js';

export interface GenerationListener {
  /** Decode step `step` finished (steps below `completion.reasoningTokens` are hidden reasoning). */
  onToken(step: number): void;
  onFinish(): void;
  /** A cut fault fired: the wire layer must drop the connection now, mid-answer. */
  onCut(): void;
}

export interface Generation {
  completion: Completion;
  cachedTokens: number;
  quota: QuotaState;
  /** Queue wait and time to first token, known once they happen. */
  timings: { queuedMs?: number; firstTokenMs?: number };
  /** The client went away: leave the queue or free the slot. */
  cancel(): void;
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: ApiError; quota?: QuotaState };

interface Counters {
  completed: number;
  rejected: number;
  faulted: number;
  cut: number;
  tokensIn: number;
  tokensOut: number;
}

/** A realistic LLM serving stack in one object: models, their queues, quotas, faults and counters. */
export class Simulator {
  readonly faults: FaultTimeline;
  private readonly profiles = new Map<string, ModelProfile>();
  private readonly deployments = new Map<string, Deployment>();
  private readonly quotas = new Map<string, Quota>();
  private readonly counters = new Map<string, Counters>();
  private readonly seenPrefixes = new Map<number, number>();
  private readonly startedAt: number;
  private readonly plan: (prompt: SimPrompt, profile: ModelProfile) => Completion;

  constructor(
    readonly config: SimConfig,
    readonly clock: Clock = systemClock,
  ) {
    this.startedAt = clock.now();
    this.plan = rememberedPlanner(config.seed);
    this.faults = new FaultTimeline(createRng(hashSeed(config.seed, 'faults')));
    this.faults.add(config.faults, this.startedAt);
    for (const profile of config.models) {
      this.profiles.set(profile.name, profile);
      this.deployments.set(profile.name, new Deployment(profile, clock));
      if (profile.quota) this.quotas.set(profile.name, new Quota(profile.quota, this.startedAt));
      this.counters.set(profile.name, {
        completed: 0,
        rejected: 0,
        faulted: 0,
        cut: 0,
        tokensIn: 0,
        tokensOut: 0,
      });
    }
  }

  get models(): ModelProfile[] {
    return [...this.profiles.values()];
  }

  /** The profile serving `name`, or a 404 in the provider's words. */
  resolveModel(name: string, kind: ModelProfile['kind']): Outcome<ModelProfile> {
    const exact = this.profiles.get(name);
    if (exact && exact.kind === kind) return { ok: true, value: exact };
    if (!exact && this.config.unknownModels === 'serve') {
      const fallback = this.models.find((m) => m.kind === kind);
      if (fallback) return { ok: true, value: fallback };
    }
    const message = exact
      ? `The model '${name}' is ${exact.kind === 'embedding' ? 'an embedding' : 'a chat'} model and does not support this endpoint.`
      : `The model '${name}' does not exist or you do not have access to it.`;
    return {
      ok: false,
      error: apiError('not_found', 404, message, { code: 'model_not_found', param: 'model' }),
    };
  }

  /** Admits a chat request: faults, context window, quota, then the model's queue. */
  generate(prompt: SimPrompt, profile: ModelProfile, listener: GenerationListener): Outcome<Generation> {
    const completion = this.plan(prompt, profile);
    const requested = prompt.maxTokens ?? Math.max(1, completion.completionTokens);
    if (completion.promptTokens + (prompt.maxTokens ?? 0) > profile.contextWindow) {
      return {
        ok: false,
        error: apiError(
          'invalid_request',
          400,
          `This model's maximum context length is ${profile.contextWindow} tokens. However, you requested ${completion.promptTokens + (prompt.maxTokens ?? 0)} tokens (${completion.promptTokens} in the messages, ${prompt.maxTokens ?? 0} in the completion). Please reduce the length of the messages or completion.`,
          { code: 'context_length_exceeded', param: 'messages' },
        ),
      };
    }
    const admitted = this.admit(profile, completion.promptTokens + requested);
    if (!admitted.ok) return admitted;
    const { effect, quota } = admitted.value;
    const counters = this.countersOf(profile);
    const cachedTokens = this.cachedPrefixTokens(prompt, profile);
    const timings: Generation['timings'] = {};
    const arrivedAt = this.clock.now();
    if (effect.hang) {
      // Accept the request and never answer: the client's own timeout is all that ends it.
      return { ok: true, value: { completion, cachedTokens, quota, timings, cancel: () => {} } };
    }
    const deployment = this.deployments.get(profile.name) as Deployment;
    let stopped = false;
    const admission = deployment.submit(
      {
        promptTokens: completion.promptTokens,
        decodeSteps: completion.decodeSteps,
        latencyMultiplier: effect.latencyMultiplier,
        extraFirstTokenMs: effect.slowFirstByteMs,
      },
      {
        onStart: (at) => {
          timings.queuedMs = at - arrivedAt;
        },
        onToken: (step, at) => {
          if (effect.cutAfterTokens !== undefined && step >= effect.cutAfterTokens) {
            stopped = true;
            counters.cut++;
            sequence.cancel();
            listener.onCut();
            return;
          }
          if (step === 0) timings.firstTokenMs = at - arrivedAt;
          listener.onToken(step);
        },
        onFinish: () => {
          if (stopped) return;
          counters.completed++;
          counters.tokensIn += completion.promptTokens;
          counters.tokensOut += completion.completionTokens;
          listener.onFinish();
        },
      },
    );
    if (!admission.admitted) return this.queueFull(profile, admission.retryAfterMs, quota);
    const sequence = admission.sequence;
    const cancel = (): void => {
      stopped = true;
      sequence.cancel();
    };
    return { ok: true, value: { completion, cachedTokens, quota, timings, cancel } };
  }

  /** Embeds `inputs`: each costs a prefill in the model's queue, no decode. */
  embed(
    inputs: readonly string[],
    profile: ModelProfile,
    dimensions: number,
    done: (vectors: Float32Array[], promptTokens: number) => void,
  ): Outcome<{ quota: QuotaState; cancel(): void }> {
    const promptTokens = inputs.reduce((sum, text) => sum + countTokens(text), 0);
    const admitted = this.admit(profile, promptTokens);
    if (!admitted.ok) return admitted;
    const { effect, quota } = admitted.value;
    if (effect.hang) return { ok: true, value: { quota, cancel: () => {} } };
    const counters = this.countersOf(profile);
    const deployment = this.deployments.get(profile.name) as Deployment;
    const admission = deployment.submit(
      {
        promptTokens,
        decodeSteps: 0,
        latencyMultiplier: effect.latencyMultiplier,
        extraFirstTokenMs: effect.slowFirstByteMs,
      },
      {
        onToken: () => {},
        onFinish: () => {
          counters.completed++;
          counters.tokensIn += promptTokens;
          done(
            inputs.map((text) => embed(text, dimensions, this.config.seed)),
            promptTokens,
          );
        },
      },
    );
    if (!admission.admitted) return this.queueFull(profile, admission.retryAfterMs, quota);
    return { ok: true, value: { quota, cancel: admission.sequence.cancel } };
  }

  stats(): Record<string, unknown> {
    const byModel: Record<string, unknown> = {};
    const total = {
      inFlight: 0,
      queued: 0,
      completed: 0,
      rejected: 0,
      faulted: 0,
      cut: 0,
      tokensIn: 0,
      tokensOut: 0,
    };
    for (const profile of this.models) {
      const deployment = this.deployments.get(profile.name) as Deployment;
      const c = this.countersOf(profile);
      const row = { inFlight: deployment.busy, queued: deployment.queued, slots: profile.slots, ...c };
      byModel[profile.name] = row;
      for (const key of Object.keys(total) as Array<keyof typeof total>) total[key] += row[key];
    }
    return { uptimeMs: Math.round(this.clock.now() - this.startedAt), ...total, models: byModel };
  }

  private countersOf(profile: ModelProfile): Counters {
    return this.counters.get(profile.name) as Counters;
  }

  /** The checks every model call passes before it may queue: scripted faults, then the quota. */
  private admit(profile: ModelProfile, tokens: number): Outcome<{ effect: FaultEffect; quota: QuotaState }> {
    const now = this.clock.now();
    const counters = this.countersOf(profile);
    const effect = this.faults.effectFor(profile.name, now);
    if (effect.errorStatus !== undefined) {
      counters.faulted++;
      return { ok: false, error: faultError(effect.errorStatus) };
    }
    const quota = this.quotas.get(profile.name);
    if (!quota) return { ok: true, value: { effect, quota: {} } };
    const decision = quota.take(tokens, now);
    if (!decision.allowed) {
      counters.rejected++;
      const allowance = decision.state[decision.exhausted];
      const unit = decision.exhausted === 'requests' ? 'requests per min (RPM)' : 'tokens per min (TPM)';
      const seconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
      return {
        ok: false,
        quota: decision.state,
        error: apiError(
          'rate_limit',
          429,
          `Rate limit reached for ${profile.name} on ${unit}: Limit ${allowance?.limit}, Remaining ${allowance?.remaining}, Requested ${decision.exhausted === 'requests' ? 1 : tokens}. Please try again in ${seconds}s.`,
          { code: 'rate_limit_exceeded', headers: { 'retry-after': String(seconds) } },
        ),
      };
    }
    return { ok: true, value: { effect, quota: decision.state } };
  }

  private queueFull(profile: ModelProfile, retryAfterMs: number, quota: QuotaState): Outcome<never> {
    this.countersOf(profile).rejected++;
    const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
    return {
      ok: false,
      quota,
      error: apiError(
        'rate_limit',
        429,
        `The model ${profile.name} is at capacity (${profile.slots} busy slots, ${profile.queueLimit} queued). Please try again in ${seconds}s.`,
        { code: 'engine_overloaded', headers: { 'retry-after': String(seconds) } },
      ),
    };
  }

  /** Provider-style prompt caching: a repeated prefix (all but the last message) of enough tokens is cached. */
  private cachedPrefixTokens(prompt: SimPrompt, profile: ModelProfile): number {
    if (prompt.messages.length < 2 || profile.promptCacheMinTokens === 0) return 0;
    const prefix = prompt.messages.slice(0, -1);
    const key = hashSeed(profile.name, prefix.map((m) => `${m.role}:${m.text}`).join('\u0000'));
    const known = this.seenPrefixes.get(key);
    if (known !== undefined) return known;
    const tokens = prefix.reduce((sum, m) => sum + 3 + countTokens(m.text), 0);
    if (tokens < profile.promptCacheMinTokens) return 0;
    if (this.seenPrefixes.size >= 10_000) this.seenPrefixes.clear();
    this.seenPrefixes.set(key, tokens);
    return 0;
  }
}

function faultError(status: number): ApiError {
  switch (status) {
    case 429:
      return apiError('rate_limit', 429, 'Rate limit reached (injected fault). Please try again in 1s.', {
        code: 'rate_limit_exceeded',
        headers: { 'retry-after': '1' },
      });
    case 502:
      return apiError('server_error', 502, 'Bad gateway (injected fault).', { code: 'bad_gateway' });
    case 503:
      return apiError(
        'overloaded',
        503,
        'The engine is currently overloaded, please try again later (injected fault).',
        {
          code: 'service_unavailable',
        },
      );
    case 529:
      return apiError('overloaded', 529, 'Overloaded (injected fault).', { code: 'overloaded' });
    default:
      return apiError(
        'server_error',
        500,
        'The server had an error while processing your request (injected fault).',
        {
          code: 'server_error',
        },
      );
  }
}

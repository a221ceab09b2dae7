import type { Priority } from '../flow/priority.js';
import { type Clock, systemClock, type Timer } from '../time/clock.js';
import type { FaultInput } from './faults.js';
import { createRng, type Rng } from './rng.js';

/** One kind of caller in the demo: what it sends, how often, with which key, priority and tags. */
export interface DemoCaller {
  /** The API key's name (as in auth.apiKeys). */
  name: string;
  key: string;
  priority: Priority;
  /** Share of the traffic, relative to the other callers. */
  weight: number;
  requests: readonly DemoRequest[];
}

export interface DemoRequest {
  kind: 'chat' | 'stream' | 'embeddings' | 'anthropic-stream';
  route: string;
  tags: Record<string, string>;
}

/** The callers `sluice up --demo` plays, over the built-in simulator's routes. */
export function demoCallers(
  keys: Record<'web-app' | 'support-bot' | 'search' | 'nightly-batch', string>,
): DemoCaller[] {
  return [
    {
      name: 'web-app',
      key: keys['web-app'],
      priority: 'high',
      weight: 5,
      requests: [
        { kind: 'stream', route: 'default', tags: { feature: 'assistant', tier: 'pro' } },
        { kind: 'stream', route: 'default', tags: { feature: 'assistant', tier: 'free' } },
        { kind: 'chat', route: 'sim-fast', tags: { feature: 'autocomplete', tier: 'free' } },
        { kind: 'anthropic-stream', route: 'sim-smart', tags: { feature: 'writer', tier: 'pro' } },
      ],
    },
    {
      name: 'support-bot',
      key: keys['support-bot'],
      priority: 'normal',
      weight: 2,
      requests: [
        { kind: 'stream', route: 'sim-smart', tags: { feature: 'support' } },
        { kind: 'chat', route: 'default', tags: { feature: 'triage' } },
      ],
    },
    {
      name: 'search',
      key: keys.search,
      priority: 'normal',
      weight: 3,
      requests: [{ kind: 'embeddings', route: 'sim-embed', tags: { feature: 'semantic-search' } }],
    },
    {
      name: 'nightly-batch',
      key: keys['nightly-batch'],
      priority: 'batch',
      weight: 1,
      requests: [{ kind: 'chat', route: 'sim-reasoner', tags: { feature: 'summaries' } }],
    },
  ];
}

/** Faults the demo injects now and then, so retries, fallbacks and breakers have something to do. */
export const demoFaults: readonly FaultInput[] = [
  { kind: 'error', status: 503, rate: 0.4, models: ['sim-fast'], to: '15s' },
  { kind: 'latency', multiplier: 4, models: ['sim-smart'], to: '20s' },
  { kind: 'slow-first-byte', delayMs: 1_500, models: ['sim-fast'], to: '15s' },
  { kind: 'error', status: 429, rate: 0.5, models: ['sim-reasoner'], to: '15s' },
];

const prompts = [
  'Summarise the attached meeting notes in three bullet points.',
  'What is the capital of Australia?',
  'Write a haiku about rate limits.',
  'Explain the difference between latency and throughput to a new engineer.',
  'Suggest a subject line for a product launch email.',
  'Translate "the gateway is healthy" into French.',
  'List three ways to reduce the cost of an LLM feature.',
  'Draft a polite reply to a customer asking for a refund.',
];

export interface DemoTrafficOptions {
  /** The gateway, e.g. http://127.0.0.1:7878. */
  gatewayUrl: string;
  /** The simulator's control API, for faults; none: no faults. */
  simUrl?: string;
  callers: readonly DemoCaller[];
  /** Mean requests per second; the actual rate drifts slowly around it. */
  ratePerSecond?: number;
  /** Mean time between fault episodes; the first comes after half of it. */
  faultEveryMs?: number;
  /** Every so often the batch caller sends a burst at once, to show queueing and shedding. */
  burstEveryMs?: number;
  burstSize?: number;
  /** Requests in flight at most; arrivals beyond it are skipped, so a stalled gateway is not piled on. */
  maxInflight?: number;
  seed?: number;
  clock?: Clock;
  /** Told about a failure to reach the gateway or the simulator (not about error answers, which are the point). */
  onError?: (error: Error) => void;
}

export interface DemoTrafficStats {
  sent: number;
  answered: number;
  failed: number;
  skipped: number;
  faults: number;
  bursts: number;
}

export interface DemoTraffic {
  stats(): DemoTrafficStats;
  /** Stops sending and waits for the requests in flight. */
  stop(): Promise<void>;
}

/**
 * Steady, mixed sample traffic for a newcomer's first look at the console: chat, streamed chat
 * (OpenAI and Anthropic style) and embeddings from several keys, priorities and tags, at a rate
 * that drifts like real load, with a fault in the simulator now and then and an occasional burst
 * of batch work.
 */
export function startDemoTraffic(options: DemoTrafficOptions): DemoTraffic {
  const clock = options.clock ?? systemClock;
  const rng = createRng(options.seed ?? 7);
  const rate = options.ratePerSecond ?? 4;
  const maxInflight = options.maxInflight ?? 64;
  const faultEveryMs = options.faultEveryMs ?? 60_000;
  const burstEveryMs = options.burstEveryMs ?? 90_000;
  const burstSize = options.burstSize ?? 40;
  const stats: DemoTrafficStats = { sent: 0, answered: 0, failed: 0, skipped: 0, faults: 0, bursts: 0 };
  const inflight = new Set<Promise<void>>();
  const timers = new Set<Timer>();
  const controller = new AbortController();
  const startedAt = clock.now();
  let stopped = false;
  let faultIndex = 0;
  const totalWeight = options.callers.reduce((sum, c) => sum + c.weight, 0);

  const later = (ms: number, fn: () => void) => {
    const timer = clock.setTimer(ms, () => {
      timers.delete(timer);
      if (!stopped) fn();
    });
    timers.add(timer);
  };

  const fire = (caller: DemoCaller, request: DemoRequest) => {
    if (inflight.size >= maxInflight) {
      stats.skipped++;
      return;
    }
    stats.sent++;
    const done = send(options.gatewayUrl, caller, request, rng, controller.signal).then(
      (ok) => {
        if (ok) stats.answered++;
      },
      (error: Error) => {
        if (stopped) return;
        stats.failed++;
        options.onError?.(error);
      },
    );
    inflight.add(done);
    void done.finally(() => inflight.delete(done));
  };

  const arrive = () => {
    // The rate drifts ±40% over a four-minute wave, so the charts show load rising and falling.
    const elapsed = clock.now() - startedAt;
    const current = rate * (1 + 0.4 * Math.sin((2 * Math.PI * elapsed) / 240_000));
    const caller = pickCaller(options.callers, totalWeight, rng);
    fire(caller, rng.pick(caller.requests));
    later(exponential(rng, 1000 / current), arrive);
  };

  const fault = () => {
    const simUrl = options.simUrl;
    if (!simUrl) return;
    const next = demoFaults[faultIndex++ % demoFaults.length]!;
    stats.faults++;
    fetch(`${simUrl}/sim/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(next),
      signal: controller.signal,
    }).then(
      (response) => {
        if (!response.ok)
          options.onError?.(new Error(`the simulator refused a demo fault: ${response.status}`));
      },
      (error: Error) => {
        if (!stopped) options.onError?.(error);
      },
    );
    later(faultEveryMs * (0.5 + rng.next()), fault);
  };

  const burst = () => {
    const batch = options.callers.find((c) => c.priority === 'batch');
    if (batch) {
      stats.bursts++;
      for (let i = 0; i < burstSize; i++) fire(batch, rng.pick(batch.requests));
    }
    later(burstEveryMs * (0.75 + rng.next() / 2), burst);
  };

  arrive();
  if (options.simUrl) later(faultEveryMs / 2, fault);
  later(burstEveryMs / 3, burst);

  return {
    stats: () => ({ ...stats }),
    async stop() {
      stopped = true;
      for (const timer of timers) timer.cancel();
      timers.clear();
      controller.abort();
      await Promise.allSettled([...inflight]);
    },
  };
}

function pickCaller(callers: readonly DemoCaller[], totalWeight: number, rng: Rng): DemoCaller {
  let roll = rng.next() * totalWeight;
  for (const caller of callers) {
    roll -= caller.weight;
    if (roll < 0) return caller;
  }
  return callers.at(-1)!;
}

/** An exponentially distributed wait with this mean: arrivals of a Poisson process. */
function exponential(rng: Rng, meanMs: number): number {
  return -Math.log(1 - rng.next()) * meanMs;
}

/** Sends one request and reads the whole answer (streams to their end); true for a 2xx. */
async function send(
  gatewayUrl: string,
  caller: DemoCaller,
  request: DemoRequest,
  rng: Rng,
  signal: AbortSignal,
): Promise<boolean> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    authorization: `Bearer ${caller.key}`,
    'x-sluice-priority': caller.priority,
    'x-sluice-tags': Object.entries(request.tags)
      .map(([k, v]) => `${k}=${v}`)
      .join(','),
  };
  const prompt = rng.pick(prompts);
  const maxTokens = rng.int(16, 160);
  const [path, body] =
    request.kind === 'embeddings'
      ? ['/v1/embeddings', { model: request.route, input: prompt }]
      : request.kind === 'anthropic-stream'
        ? [
            '/v1/messages',
            {
              model: request.route,
              max_tokens: maxTokens,
              stream: true,
              messages: [{ role: 'user', content: prompt }],
            },
          ]
        : [
            '/v1/chat/completions',
            {
              model: request.route,
              max_tokens: maxTokens,
              stream: request.kind === 'stream',
              messages: [{ role: 'user', content: prompt }],
            },
          ];
  const response = await fetch(gatewayUrl + path, {
    method: 'POST',
    headers,
    body: JSON.stringify(body),
    signal,
  });
  await response.arrayBuffer();
  return response.ok;
}

import type { LimitAlgorithm } from '../../../src/flow/limit.js';
import { createRng } from '../../../src/sim/rng.js';

/**
 * A deterministic load test for limit algorithms, on a fake clock.
 *
 * The target has `capacity` slots, each serving one request for `baseLatencyMs` (± `jitter`); requests
 * beyond the free slots wait in a FIFO queue. A request's latency is its queue wait plus its service
 * time, like an LLM provider's time to first token: `baseLatencyMs` while at most `capacity` are in
 * flight, about `baseLatencyMs · n / capacity` with n in flight beyond (Little's law).
 *
 * The limiter admits a request only while fewer than `algorithm.limit` are in flight. A rejected
 * request is not a sample; an admitted one is, when it finishes.
 *
 * Load comes either from `clients` (closed loop: each sends one request at a time, again after a
 * short think time when it finishes or a short pause when rejected), or from `offeredLoad` (open loop:
 * Poisson arrivals at `offeredLoad × capacity / baseLatencyMs`, a rejected request is not retried).
 */
export interface SimulationOptions {
  capacity: number;
  baseLatencyMs: number;
  clients?: number;
  offeredLoad?: number;
  /** Relative spread of the service time: uniform in [1 − jitter, 1 + jitter]. Default 0.1. */
  jitter?: number;
  /** Mean pause of a client after a rejection, as a fraction of baseLatencyMs. Default 0.1. */
  retryPause?: number;
  /** Mean pause of a client between a finished request and its next one, as a fraction of baseLatencyMs. Default 0.05. */
  thinkTime?: number;
  seed?: number;
}

/** What happened to one admitted request, recorded when it finished. */
export interface SampleRecord {
  at: number;
  latencyMs: number;
  inflight: number;
  /** The algorithm's limit after learning from this sample. */
  limit: number;
  /** Requests rejected by the limiter since the previous sample. */
  rejectedBefore: number;
}

export interface Simulation {
  /** Runs until `samples` more requests have finished; returns their records. */
  run(samples: number): SampleRecord[];
  setCapacity(capacity: number): void;
  /** Changes the service time of requests sent from now on, as a slower model revision would. */
  setBaseLatency(baseLatencyMs: number): void;
  /** Adds closed-loop clients, up to `clients` in all. */
  setClients(clients: number): void;
}

/** The next thing that happens: a client (or, in the open loop, a new user) sends, or a request finishes. */
type Pending =
  | { kind: 'send'; at: number; client: number }
  | { kind: 'finish'; at: number; client: number; startedAt: number; inflight: number; atLimit: boolean };

/** Marks the open loop's arrivals, which are not a client. */
const arrival = -1;

export function simulate(algorithm: LimitAlgorithm, options: SimulationOptions): Simulation {
  const rng = createRng(options.seed ?? 1);
  let base = options.baseLatencyMs;
  const jitter = options.jitter ?? 0.1;
  const retryPause = options.retryPause ?? 0.1;
  const thinkTime = options.thinkTime ?? 0.05;
  /** When each slot is next free: FIFO gives each request the earliest free slot. */
  let slots: number[] = Array.from({ length: options.capacity }, () => 0);
  const pending: Pending[] = [];
  let clients = 0;
  let now = 0;
  let inflight = 0;
  let rejected = 0;

  const pause = (mean: number) => base * mean * 2 * rng.next();
  const interarrival = () => (-Math.log(1 - rng.next()) * base) / ((options.offeredLoad ?? 0) * slots.length);

  const setClients = (count: number) => {
    for (let client = clients; client < count; client++) {
      pending.push({ kind: 'send', at: now + pause(retryPause), client });
    }
    clients = count;
  };
  if (options.offeredLoad !== undefined) pending.push({ kind: 'send', at: interarrival(), client: arrival });
  setClients(options.clients ?? 0);

  const send = (client: number) => {
    if (client === arrival) pending.push({ kind: 'send', at: now + interarrival(), client });
    else if (client >= clients) return;
    if (inflight >= algorithm.limit) {
      rejected++;
      if (client !== arrival) pending.push({ kind: 'send', at: now + pause(retryPause), client });
      return;
    }
    inflight++;
    let slot = 0;
    for (let i = 1; i < slots.length; i++) if (slots[i]! < slots[slot]!) slot = i;
    const finish = Math.max(now, slots[slot]!) + base * (1 + jitter * (2 * rng.next() - 1));
    slots[slot] = finish;
    pending.push({
      kind: 'finish',
      at: finish,
      client,
      startedAt: now,
      inflight,
      atLimit: inflight >= algorithm.limit,
    });
  };

  return {
    setCapacity(capacity) {
      // Work already queued stays on its slot; new requests only see the slots that remain.
      const sorted = [...slots].sort((a, b) => a - b);
      slots = sorted.slice(0, capacity);
      while (slots.length < capacity) slots.push(now);
    },
    setBaseLatency(baseLatencyMs) {
      base = baseLatencyMs;
    },
    setClients,
    run(samples) {
      const records: SampleRecord[] = [];
      while (records.length < samples) {
        let next = 0;
        for (let i = 1; i < pending.length; i++) if (pending[i]!.at < pending[next]!.at) next = i;
        const event = pending[next]!;
        pending[next] = pending[pending.length - 1]!;
        pending.pop();
        now = event.at;
        if (event.kind === 'send') {
          send(event.client);
          continue;
        }
        inflight--;
        const latencyMs = now - event.startedAt;
        const limit = algorithm.update({
          latencyMs,
          inflight: event.inflight,
          atLimit: event.atLimit,
          dropped: false,
          at: now,
        });
        records.push({ at: now, latencyMs, inflight: event.inflight, limit, rejectedBefore: rejected });
        rejected = 0;
        if (event.client !== arrival && event.client < clients) {
          pending.push({ kind: 'send', at: now + pause(thinkTime), client: event.client });
        }
      }
      return records;
    },
  };
}

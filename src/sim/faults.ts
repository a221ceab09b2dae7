import { z } from 'zod';
import { durationSchema } from './duration.js';
import type { Rng } from './rng.js';

const windowFields = {
  from: durationSchema.optional().describe('Start, as an offset from when the fault was loaded.'),
  to: durationSchema
    .optional()
    .describe('End, as an offset from when the fault was loaded; absent = forever.'),
  models: z.array(z.string()).optional().describe('Only these models; absent = every model.'),
};
const rate = z.number().min(0).max(1).default(1);

/** One scripted misbehaviour. Faults of different kinds active at once combine. */
export const faultSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('latency'), multiplier: z.number().positive(), ...windowFields }),
  z.strictObject({
    kind: z.literal('error'),
    status: z.union([z.literal(500), z.literal(502), z.literal(503), z.literal(529), z.literal(429)]),
    rate,
    ...windowFields,
  }),
  z.strictObject({ kind: z.literal('hang'), rate, ...windowFields }),
  z.strictObject({ kind: z.literal('cut'), afterTokens: z.int().min(0), rate, ...windowFields }),
  z.strictObject({ kind: z.literal('slow-first-byte'), delayMs: durationSchema, ...windowFields }),
]);

export type Fault = z.infer<typeof faultSchema>;
export type FaultInput = z.input<typeof faultSchema>;

/** What the active faults do to one request, decided when it arrives. */
export interface FaultEffect {
  latencyMultiplier: number;
  errorStatus?: number;
  hang: boolean;
  cutAfterTokens?: number;
  slowFirstByteMs: number;
}

interface Scheduled {
  id: string;
  fault: Fault;
  start: number;
  end: number;
}

export const noFault: FaultEffect = { latencyMultiplier: 1, hang: false, slowFirstByteMs: 0 };

/** The faults in force over time: loaded from a timeline file at start, or added by the control API. */
export class FaultTimeline {
  private entries: Scheduled[] = [];
  private nextId = 1;

  constructor(private readonly rng: Rng) {}

  /** Schedules faults whose `from`/`to` are offsets from `now`; returns their ids. */
  add(faults: readonly Fault[], now: number): string[] {
    return faults.map((fault) => {
      const id = `fault_${this.nextId++}`;
      const start = now + (fault.from ?? 0);
      const end = fault.to === undefined ? Number.POSITIVE_INFINITY : now + fault.to;
      this.entries.push({ id, fault, start, end });
      return id;
    });
  }

  remove(id: string): boolean {
    const before = this.entries.length;
    this.entries = this.entries.filter((e) => e.id !== id);
    return this.entries.length < before;
  }

  clear(): void {
    this.entries = [];
  }

  list(now: number): Array<{ id: string; active: boolean } & Fault> {
    return this.entries.map((e) => ({ id: e.id, active: e.start <= now && now < e.end, ...e.fault }));
  }

  /** Rolls each active fault for one request to `model` at time `now`. */
  effectFor(model: string, now: number): FaultEffect {
    if (this.entries.length === 0) return noFault;
    const effect: FaultEffect = { ...noFault };
    for (const { fault, start, end } of this.entries) {
      if (now < start || now >= end) continue;
      if (fault.models && !fault.models.includes(model)) continue;
      switch (fault.kind) {
        case 'latency':
          effect.latencyMultiplier *= fault.multiplier;
          break;
        case 'error':
          if (effect.errorStatus === undefined && this.roll(fault.rate)) effect.errorStatus = fault.status;
          break;
        case 'hang':
          if (this.roll(fault.rate)) effect.hang = true;
          break;
        case 'cut':
          if (this.roll(fault.rate)) {
            effect.cutAfterTokens = Math.min(effect.cutAfterTokens ?? fault.afterTokens, fault.afterTokens);
          }
          break;
        case 'slow-first-byte':
          effect.slowFirstByteMs += fault.delayMs;
          break;
      }
    }
    return effect;
  }

  private roll(rate: number): boolean {
    return rate >= 1 || this.rng.next() < rate;
  }
}

import type { Clock } from '../time/clock.js';

/**
 * A latency estimate that rises at once and falls slowly (Finagle, Linkerd): a sample above
 * the estimate replaces it; one below pulls it down with time constant `decayMs`, weighted by
 * the time since the previous sample. Between samples the estimate decays toward zero, so a
 * target that was slow once and then left idle is tried again and re-measured.
 */
export class PeakEwma {
  private estimate: number | undefined;
  private at = 0;

  constructor(private readonly decayMs = 10_000) {}

  observe(ms: number, now: number): void {
    if (this.estimate === undefined || ms >= this.estimate) {
      this.estimate = ms;
    } else {
      const keep = Math.exp(-Math.max(0, now - this.at) / this.decayMs);
      this.estimate = this.estimate * keep + ms * (1 - keep);
    }
    this.at = now;
  }

  /** The estimate at `now`; undefined until a sample has been observed. */
  value(now: number): number | undefined {
    if (this.estimate === undefined) return undefined;
    return this.estimate * Math.exp(-Math.max(0, now - this.at) / this.decayMs);
  }
}

export interface BalancerCandidate {
  id: string;
  /** Relative share of traffic; 0 takes none unless every candidate is 0. */
  weight: number;
  inflight(): number;
  latency: PeakEwma;
}

/** Chooses one target per attempt. `random` returns [0, 1), injected so tests are deterministic. */
export interface Balancer {
  readonly name: string;
  pick<C extends BalancerCandidate>(candidates: readonly C[], random: () => number): C;
}

/** Each candidate in proportion to its weight. */
export const weightedRandom: Balancer = {
  name: 'weighted_random',
  pick(candidates, random) {
    return byWeight(candidates, random, undefined) ?? first(candidates);
  },
};

/** The fewest requests in flight per unit of weight; ties broken at random. */
export const leastInflight: Balancer = {
  name: 'least_inflight',
  pick(candidates, random) {
    const weigh = weigher(candidates);
    let best = first(candidates);
    let bestLoad = Number.POSITIVE_INFINITY;
    let ties = 0;
    for (const c of candidates) {
      const w = weigh(c);
      if (w === 0) continue;
      const load = (c.inflight() + 1) / w;
      if (load < bestLoad) {
        best = c;
        bestLoad = load;
        ties = 1;
      } else if (load === bestLoad && random() * ++ties < 1) {
        best = c;
      }
    }
    return best;
  },
};

/**
 * Power of two choices over peak-EWMA cost: draw two distinct candidates by weight and take the
 * cheaper, cost = latency × (inflight + 1). Two random draws avoid the herd that always picking
 * the global best causes, and the loser of one draw still wins others, so every target is measured.
 */
export function p2cPeakEwma(clock: Clock): Balancer {
  return {
    name: 'p2c_peak_ewma',
    pick(candidates, random) {
      const a = byWeight(candidates, random, undefined) ?? first(candidates);
      const b = byWeight(candidates, random, a);
      if (b === undefined) return a;
      const now = clock.now();
      const la = a.latency.value(now);
      const lb = b.latency.value(now);
      // An unmeasured target costs what the other does per request, so it is tried when less busy.
      const costA = (la ?? lb ?? 1) * (a.inflight() + 1);
      const costB = (lb ?? la ?? 1) * (b.inflight() + 1);
      return costB < costA ? b : a;
    },
  };
}

/** Weights as used: negative counts as 0, and when every weight is 0 they all count as 1. */
function weigher(candidates: readonly BalancerCandidate[]): (c: BalancerCandidate) => number {
  const allZero = candidates.every((c) => c.weight <= 0);
  return allZero ? () => 1 : (c) => Math.max(c.weight, 0);
}

/** A candidate drawn in proportion to weight, never `except`; undefined when none is left. */
function byWeight<C extends BalancerCandidate>(
  candidates: readonly C[],
  random: () => number,
  except: C | undefined,
): C | undefined {
  const weigh = weigher(candidates);
  let total = 0;
  for (const c of candidates) if (c !== except) total += weigh(c);
  let point = random() * total;
  let last: C | undefined;
  for (const c of candidates) {
    const w = c === except ? 0 : weigh(c);
    if (w === 0) continue;
    last = c;
    point -= w;
    if (point < 0) return c;
  }
  // Rounding can leave `point` a hair above zero: the last eligible candidate then takes it.
  return last;
}

function first<C>(candidates: readonly C[]): C {
  const c = candidates[0];
  if (c === undefined) throw new RangeError('Balancer: no candidates to choose from');
  return c;
}

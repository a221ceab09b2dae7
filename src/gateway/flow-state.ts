import type { FlowConfig, SluiceConfig } from '../config/schema.js';
import { type Balancer, leastInflight, PeakEwma, p2cPeakEwma, weightedRandom } from '../flow/balancer.js';
import { CircuitBreaker } from '../flow/circuit-breaker.js';
import { createLimitAlgorithm, type LimitAlgorithmSpec } from '../flow/limit-algorithms.js';
import { Limiter, type LimiterSnapshot } from '../flow/limiter.js';
import { RetryBudget, type RetryBudgetSnapshot } from '../flow/retry-budget.js';
import type { Clock } from '../time/clock.js';
import type { Route, Target } from './runtime.js';

/** The flow-control state of one upstream target, shared by every route that uses it. */
export interface TargetFlow {
  id: string;
  limiter: Limiter;
  breaker?: CircuitBreaker;
  /** Peak-EWMA of the latency signal, for the p2c balancer. */
  latency: PeakEwma;
  /** Recent attempt durations (ms) of successes, for a hedge's p95 delay. */
  recent: number[];
  spec: string;
}

const recentSize = 200;
const maxTargets = 10_000;

/**
 * Flow control across requests: a limiter (adaptive limit + admission queue) and a breaker per
 * target, a retry budget per route. It outlives config reloads, so learned limits survive them;
 * a target whose limit settings changed starts afresh.
 */
export class FlowState {
  private readonly targets = new Map<string, TargetFlow>();
  private readonly budgets = new Map<string, RetryBudget>();
  private readonly specKeys = new WeakMap<object, string>();
  private readonly p2c: Balancer;
  private config: FlowConfig;

  constructor(
    config: SluiceConfig,
    private readonly clock: Clock,
  ) {
    this.config = config.flow;
    this.p2c = p2cPeakEwma(clock);
  }

  get enabled(): boolean {
    return this.config.enabled;
  }

  /** Takes the flow settings of a new config; targets keep their state unless their limit settings changed. */
  reconfigure(config: SluiceConfig): void {
    const changed = JSON.stringify(config.flow) !== JSON.stringify(this.config);
    this.config = config.flow;
    if (changed) {
      this.targets.clear();
      this.budgets.clear();
    }
  }

  target(target: Target): TargetFlow {
    const spec: LimitAlgorithmSpec = target.limit ?? this.config.limit;
    // Called on every attempt: the spec's key is computed once per spec object, not per request.
    let key = this.specKeys.get(spec);
    if (key === undefined) {
      key = JSON.stringify(spec);
      this.specKeys.set(spec, key);
    }
    let flow = this.targets.get(target.id);
    if (flow && flow.spec === key) return flow;
    const { queue, breaker } = this.config;
    flow = {
      id: target.id,
      spec: key,
      limiter: new Limiter(
        {
          target: target.id,
          algorithm: createLimitAlgorithm(spec),
          maxQueue: queue.maxQueue,
          queueShare: queue.shares,
          delayTarget: queue.delayTarget,
          delayInterval: queue.delayInterval,
          delayExempt: queue.delayExempt,
          delayTargetMinMs: queue.delayTargetMinMs,
          delayIntervalMinMs: queue.delayIntervalMinMs,
        },
        this.clock,
      ),
      breaker: breaker.enabled ? new CircuitBreaker(breaker, this.clock) : undefined,
      latency: new PeakEwma(),
      recent: [],
    };
    // Direct "provider/model" names come from clients: bound the map, forgetting idle targets first.
    if (this.targets.size >= maxTargets) {
      for (const [id, old] of this.targets) {
        if (old.limiter.inflight === 0) {
          this.targets.delete(id);
          break;
        }
      }
    }
    this.targets.set(target.id, flow);
    return flow;
  }

  budget(route: Route): RetryBudget {
    let budget = this.budgets.get(route.name);
    if (!budget) {
      budget = new RetryBudget(this.config.retryBudget, this.clock);
      this.budgets.set(route.name, budget);
    }
    return budget;
  }

  /** The route's balancer: p2c with peak-EWMA when its targets are equivalent (equal weights). */
  balancer(route: Route): Balancer {
    const choice =
      route.balancer ??
      (route.targets.every((t) => t.weight === route.targets[0]?.weight)
        ? 'p2c-peak-ewma'
        : 'weighted-random');
    if (choice === 'p2c-peak-ewma') return this.p2c;
    return choice === 'least-inflight' ? leastInflight : weightedRandom;
  }

  recordSuccess(flow: TargetFlow, durationMs: number, signalMs: number): void {
    flow.latency.observe(signalMs, this.clock.now());
    if (flow.recent.length >= recentSize) flow.recent.shift();
    flow.recent.push(durationMs);
  }

  /** The target's p95 attempt duration, or undefined before it has 20 samples. */
  p95(flow: TargetFlow): number | undefined {
    if (flow.recent.length < 20) return undefined;
    const sorted = [...flow.recent].sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length * 0.95)];
  }

  snapshot(): Array<LimiterSnapshot & { target: string; breaker: string; latencyMs: number | null }> {
    return [...this.targets.values()].map((flow) => ({
      target: flow.id,
      ...flow.limiter.snapshot(),
      breaker: flow.breaker?.state ?? 'disabled',
      latencyMs: flow.latency.value(this.clock.now()) ?? null,
    }));
  }

  budgetSnapshot(): Record<string, RetryBudgetSnapshot> {
    return Object.fromEntries([...this.budgets.entries()].map(([route, b]) => [route, b.snapshot()]));
  }
}

import type { Budget, ControlStore } from '../store/control-store.js';
import type { Clock } from '../time/clock.js';
import type { BudgetRule } from './limit-rules.js';
import { PeriodicReload } from './periodic-reload.js';
import { configPolicy, type PolicySource } from './policy-source.js';

/** The control store's budgets as the hot path reads them: from memory. */
export interface StoredBudgets {
  /** The budgets loaded last, indexed by scope. */
  policy(): PolicySource;
  /** The store's record of a budget by name, when the store has one. */
  record(name: string): Budget | undefined;
}

export const noStoredBudgets: StoredBudgets = {
  policy: () => emptyPolicy,
  record: () => undefined,
};

const emptyPolicy = configPolicy({ budgets: [], rateLimits: [] });

export interface BudgetDirectoryOptions {
  store: ControlStore;
  /** How often to reload from the store, so budgets changed on other nodes take effect here. */
  refreshMs: number;
  /** Schedules the reloads. */
  clock?: Clock;
  /** A reload failed (the store is down): the budgets already loaded stay in force. */
  onRefreshError?: (error: unknown) => void;
}

/** A stored budget as the same rule sluice.yaml declares: one ledger enforces both. */
export function budgetRule(record: Budget): BudgetRule {
  return {
    name: record.name,
    scope: { [record.scope]: record.scopeName } as BudgetRule['scope'],
    period: record.period,
    ...(record.limitUsd !== null && { limitUsd: record.limitUsd }),
    ...(record.limitTokens !== null && { limitTokens: record.limitTokens }),
    ...(record.softLimitPct !== null && { softLimitPct: record.softLimitPct }),
    ...(record.webhook !== null && { webhook: record.webhook }),
  };
}

/**
 * The store's budgets in memory, swapped whole on each load: admission never waits on the
 * store. The admin API reloads after each write on this node (`refresh`); writes made on
 * other nodes sharing the store arrive with the next periodic reload, every `refreshMs`.
 */
export class BudgetDirectory implements StoredBudgets {
  private current = emptyPolicy;
  private records = new Map<string, Budget>();
  private readonly reload: PeriodicReload;

  constructor(private readonly options: BudgetDirectoryOptions) {
    this.reload = new PeriodicReload({
      load: () => this.load(),
      refreshMs: options.refreshMs,
      clock: options.clock,
      onError: options.onRefreshError,
    });
  }

  policy(): PolicySource {
    return this.current;
  }

  record(name: string): Budget | undefined {
    return this.records.get(name);
  }

  /** Loads every budget, then reloads every `refreshMs` until `stop()`. */
  start(): Promise<void> {
    return this.reload.start();
  }

  stop(): void {
    this.reload.stop();
  }

  /**
   * Reloads from the store. A call during a reload gets one more reload that starts after it,
   * so a write made before the call is always seen once the promise resolves.
   */
  refresh(): Promise<void> {
    return this.reload.refresh();
  }

  /** Resolves when no reload is in flight. */
  settled(): Promise<void> {
    return this.reload.settled();
  }

  private async load(): Promise<void> {
    const records = await this.options.store.budgets.list();
    this.records = new Map(records.map((record) => [record.name, record]));
    this.current = configPolicy({ budgets: records.map(budgetRule), rateLimits: [] });
  }
}

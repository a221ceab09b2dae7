import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { type ApiError, apiError } from '../http/api-error.js';
import { invalidRequestFromIssues } from '../http/wire/invalid-request.js';
import type { Budget, ControlStore } from '../store/control-store.js';
import type { BudgetDirectory } from './budget-directory.js';
import { budgetRule } from './budget-directory.js';
import type { BudgetStatus } from './ledger.js';
import { type BudgetRule, budgetFields, budgetSchema, scopeParts } from './limit-rules.js';

/** POST /admin/budgets: the very rule sluice.yaml's `budgets:` entries are. */
export const createBudgetBody = budgetSchema;

const { shape } = budgetFields;
/** PATCH /admin/budgets/:name: the fields to change; null removes an optional one. */
export const updateBudgetBody = z.strictObject({
  name: shape.name.optional(),
  scope: shape.scope.optional(),
  period: shape.period.unwrap().optional(),
  limitUsd: shape.limitUsd.unwrap().nullable().optional().describe('null: no dollar limit.'),
  limitTokens: shape.limitTokens.unwrap().nullable().optional().describe('null: no token limit.'),
  softLimitPct: shape.softLimitPct.unwrap().nullable().optional().describe('null: no soft limit.'),
  webhook: shape.webhook.unwrap().nullable().optional().describe('null: no webhook.'),
});

/** A budget as the admin API shows it: its rule, where it is declared, and this period's spend. */
export interface BudgetView {
  object: 'budget';
  name: string;
  /** config: sluice.yaml, read-only here; store: created over the admin API. */
  source: 'config' | 'store';
  /** The store's id; null for a config budget. */
  id: string | null;
  scope: BudgetRule['scope'];
  period: BudgetRule['period'];
  softLimitPct: number | null;
  /** Only the webhook's origin: its path often carries a secret. */
  webhook: string | null;
  periodStart: string | null;
  resetsAt: string | null;
  usd: { limit: number; spent: number; reserved: number } | null;
  tokens: { limit: number; spent: number; reserved: number } | null;
  createdAt: string | null;
  updatedAt: string | null;
}

export interface BudgetAdminDeps {
  store: ControlStore;
  directory: BudgetDirectory;
  /** The running config's budgets: their names are taken, and they cannot be changed here. */
  configBudgets(): readonly BudgetRule[];
  /** The current period's spend of each rule (the ledger). */
  status(rules: readonly BudgetRule[]): Promise<BudgetStatus[]>;
  /** Epoch milliseconds. */
  now?: () => number;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

function webhookOrigin(url: string | undefined): string | null {
  if (url === undefined) return null;
  try {
    return `${new URL(url).origin}/…`;
  } catch {
    return '…';
  }
}

export function budgetView(status: BudgetStatus, record: Budget | undefined): BudgetView {
  const { rule, window } = status;
  return {
    object: 'budget',
    name: rule.name,
    source: record ? 'store' : 'config',
    id: record?.id ?? null,
    scope: rule.scope,
    period: rule.period,
    softLimitPct: rule.softLimitPct ?? null,
    webhook: webhookOrigin(rule.webhook),
    periodStart: iso(window.startsAt),
    resetsAt: iso(window.resetsAt),
    usd: status.usd ?? null,
    tokens: status.tokens ?? null,
    createdAt: iso(record?.createdAt ?? null),
    updatedAt: iso(record?.updatedAt ?? null),
  };
}

const notFound = (name: string) =>
  apiError('not_found', 404, `No budget named '${name}'. List budgets with GET /admin/budgets.`, {
    code: 'budget_not_found',
  });

const readOnly = (name: string) =>
  apiError(
    'invalid_request',
    409,
    `Budget '${name}' is declared in sluice.yaml, so it is read-only here: change it in the file and reload (POST /admin/config/reload).`,
    { code: 'config_budget_read_only' },
  );

const nameTaken = (name: string, where: 'config' | 'store') =>
  apiError(
    'invalid_request',
    409,
    where === 'config'
      ? `A budget named '${name}' is declared in sluice.yaml: choose another name.`
      : `A budget named '${name}' already exists: choose another name, or change it with PATCH /admin/budgets/${name}.`,
    { code: 'budget_name_taken', param: 'name' },
  );

/** A rule as the store's columns. */
function columns(rule: BudgetRule) {
  const [scope, scopeName] = scopeParts(rule.scope) as [Budget['scope'], string];
  return {
    name: rule.name,
    scope,
    scopeName,
    period: rule.period,
    limitUsd: rule.limitUsd ?? null,
    limitTokens: rule.limitTokens ?? null,
    softLimitPct: rule.softLimitPct ?? null,
    webhook: rule.webhook ?? null,
  };
}

/**
 * The admin operations on budgets. Config budgets are shown but not changed; store budgets are
 * written to the store, then this node's directory reloads before the response leaves, so a
 * change is in force here at once (and on other nodes at their next reload).
 */
export function budgetAdmin(deps: BudgetAdminDeps) {
  const { store, directory } = deps;
  const now = deps.now ?? Date.now;
  const inConfig = (name: string) => deps.configBudgets().some((rule) => rule.name === name);
  const findStored = async (name: string) => (await store.budgets.list({ name }))[0];

  const view = async (rule: BudgetRule, record: Budget | undefined): Promise<BudgetView> => {
    const [status] = await deps.status([rule]);
    return budgetView(status as BudgetStatus, record);
  };

  return {
    /** Every budget, config's first, with this period's spend. */
    async list(): Promise<BudgetView[]> {
      const rules = [...deps.configBudgets(), ...directory.policy().budgets()];
      const statuses = await deps.status(rules);
      const configCount = deps.configBudgets().length;
      return statuses.map((status, i) =>
        budgetView(status, i < configCount ? undefined : directory.record(status.rule.name)),
      );
    },

    async show(name: string): Promise<BudgetView | ApiError> {
      const configRule = deps.configBudgets().find((rule) => rule.name === name);
      if (configRule) return view(configRule, undefined);
      const record = await findStored(name);
      return record ? view(budgetRule(record), record) : notFound(name);
    },

    async create(rule: BudgetRule): Promise<BudgetView | ApiError> {
      if (inConfig(rule.name)) return nameTaken(rule.name, 'config');
      const at = now();
      const inserted = await store.budgets.insert({
        id: `budget_${randomBytes(8).toString('hex')}`,
        ...columns(rule),
        createdAt: at,
        updatedAt: at,
      });
      if (typeof inserted === 'string') return nameTaken(rule.name, 'store');
      await directory.refresh();
      return view(rule, inserted);
    },

    async update(name: string, change: z.infer<typeof updateBudgetBody>): Promise<BudgetView | ApiError> {
      if (inConfig(name)) return readOnly(name);
      const record = await findStored(name);
      if (!record) return notFound(name);
      // The changed rule must still be a whole, valid rule (a limit left, say).
      const merged: Record<string, unknown> = { ...budgetRule(record) };
      for (const [field, value] of Object.entries(change)) {
        if (value === null) delete merged[field];
        else if (value !== undefined) merged[field] = value;
      }
      const parsed = budgetSchema.safeParse(merged, { reportInput: true });
      if (!parsed.success) return invalidRequestFromIssues(parsed.error.issues);
      const rule = parsed.data;
      if (rule.name !== name && inConfig(rule.name)) return nameTaken(rule.name, 'config');
      const updated = await store.budgets.update(record.id, { ...columns(rule), updatedAt: now() });
      if (updated === 'missing') return notFound(name);
      if (updated === 'conflict') return nameTaken(rule.name, 'store');
      if (updated === 'dangling')
        throw new Error('budgets refer to nothing: no dangling reference is possible');
      await directory.refresh();
      return view(rule, updated);
    },

    async delete(
      name: string,
    ): Promise<{ object: 'budget'; id: string; name: string; deleted: true } | ApiError> {
      if (inConfig(name)) return readOnly(name);
      const record = await findStored(name);
      if (!record) return notFound(name);
      const deleted = await store.budgets.delete(record.id);
      if (deleted !== 'deleted') return notFound(name);
      await directory.refresh();
      return { object: 'budget', id: record.id, name, deleted: true };
    },
  };
}

export type BudgetAdmin = ReturnType<typeof budgetAdmin>;

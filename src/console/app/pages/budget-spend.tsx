import type { BudgetReport, BudgetSpend } from '../api.js';
import { formatCount, formatPercent, formatUsd, formatWhen } from '../format.js';
import { Empty } from '../states.js';

interface Line {
  budget: BudgetReport;
  unit: 'usd' | 'tokens';
  spend: BudgetSpend;
}

/** One line per limit: a budget with dollars and tokens has two, each with its own bar. */
function lines(budgets: readonly BudgetReport[]): Line[] {
  return budgets.flatMap((budget) => [
    ...(budget.usd ? [{ budget, unit: 'usd' as const, spend: budget.usd }] : []),
    ...(budget.tokens ? [{ budget, unit: 'tokens' as const, spend: budget.tokens }] : []),
  ]);
}

const amount = (unit: Line['unit'], n: number) =>
  unit === 'usd' ? formatUsd(n) : `${formatCount(n)} tokens`;
const scopeText = (scope: Record<string, string>) =>
  Object.entries(scope)
    .map(([kind, name]) => `${kind} ${name}`)
    .join(', ');

/** Over the hard limit, past the soft limit, or fine: the bar's colour, and words for those who cannot see it. */
function level(fraction: number, softLimitPct: number | null): { className: string; label: string | null } {
  if (fraction >= 1) return { className: 'bar bar-over', label: 'limit reached' };
  if (softLimitPct !== null && fraction * 100 >= softLimitPct)
    return { className: 'bar bar-warn', label: 'past soft limit' };
  return { className: 'bar', label: null };
}

/** Each budget's spend against its limit in the current period (GET /admin/budgets). */
export function BudgetSpendTable({ budgets }: { budgets: readonly BudgetReport[] }) {
  if (budgets.length === 0) {
    return (
      <Empty title="No budgets yet.">
        Create one with <code>sluice budgets create --name search-daily --team search --usd 50</code>, POST
        /admin/budgets, or a <code>budgets:</code> entry in sluice.yaml.
      </Empty>
    );
  }
  return (
    <div class="table-wrap">
      <table class="data-table" data-testid="budgets-table">
        <caption class="sr-only">Budgets with their spend against their limit in the current period</caption>
        <thead>
          <tr>
            <th scope="col">Budget</th>
            <th scope="col">Scope</th>
            <th scope="col">Period</th>
            <th scope="col" class="num">
              Spent of limit
            </th>
            <th scope="col" class="bar-col">
              <span class="sr-only">Share of the limit spent</span>
            </th>
            <th scope="col" class="num">
              Used
            </th>
            <th scope="col">Resets</th>
          </tr>
        </thead>
        <tbody>
          {lines(budgets).map(({ budget, unit, spend }) => {
            const fraction = spend.limit > 0 ? spend.spent / spend.limit : 0;
            const state = level(fraction, budget.softLimitPct);
            return (
              <tr key={`${budget.name}:${unit}`} data-budget={budget.name}>
                <th scope="row">
                  {budget.name}
                  {budget.source === 'config' && <span class="muted"> (sluice.yaml)</span>}
                </th>
                <td>{scopeText(budget.scope)}</td>
                <td>{budget.period}</td>
                <td class="num">
                  {amount(unit, spend.spent)} of {amount(unit, spend.limit)}
                  {spend.reserved > 0 && (
                    <span class="muted"> (+{amount(unit, spend.reserved)} in flight)</span>
                  )}
                </td>
                <td class="bar-col">
                  <span class="bar-track">
                    <span class={state.className} style={{ width: `${Math.min(1, fraction) * 100}%` }} />
                  </span>
                </td>
                <td class="num">
                  {formatPercent(fraction)}
                  {state.label && <span class="sr-only">, {state.label}</span>}
                </td>
                <td>
                  {budget.resetsAt === null ? (
                    'never'
                  ) : (
                    <time dateTime={budget.resetsAt}>{formatWhen(budget.resetsAt)}</time>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

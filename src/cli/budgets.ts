import type { BudgetView } from '../policy/budget-admin.js';
import { type AdminAction, adminOptions, runAdminAction } from './admin-client.js';
import { type Command, UsageError } from './command.js';
import { formatFields, formatTable } from './table.js';

type Values = Record<string, string | boolean | undefined>;
type Spend = BudgetView['usd'];

/** A number flag, checked here so the message names the flag; the gateway checks its range. */
function numberFlag(values: Values, flag: string): number | undefined {
  const text = values[flag];
  if (typeof text !== 'string') return undefined;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value))
    throw new UsageError(`--${flag} "${text}" is not a number`);
  return value;
}

const scopeText = (scope: BudgetView['scope']) => Object.entries(scope)[0]?.join(' ') ?? '-';

function spendText(spend: Spend, unit: 'usd' | 'tokens'): string {
  if (!spend) return '-';
  const amount = (n: number) => (unit === 'usd' ? `$${Number(n.toFixed(4))}` : String(n));
  const pct = spend.limit > 0 ? Math.round((spend.spent / spend.limit) * 100) : 0;
  return `${amount(spend.spent)} / ${amount(spend.limit)} (${pct}%)`;
}

function budgetFieldsText(budget: BudgetView): string {
  return formatFields([
    ['name', budget.name],
    ['source', budget.source],
    ['id', budget.id ?? '-'],
    ['scope', scopeText(budget.scope)],
    ['period', budget.period],
    ['usd', spendText(budget.usd, 'usd')],
    ['tokens', spendText(budget.tokens, 'tokens')],
    ['soft limit', budget.softLimitPct === null ? '-' : `${budget.softLimitPct}%`],
    ['webhook', budget.webhook ?? '-'],
    ['resets', budget.resetsAt ?? 'never'],
  ]);
}

function budgetTable(budgets: BudgetView[]): string {
  return formatTable(
    ['NAME', 'SOURCE', 'SCOPE', 'PERIOD', 'USD', 'TOKENS', 'RESETS'],
    budgets.map((b) => [
      b.name,
      b.source,
      scopeText(b.scope),
      b.period,
      spendText(b.usd, 'usd'),
      spendText(b.tokens, 'tokens'),
      b.resetsAt ?? 'never',
    ]),
  );
}

function print(values: Values, body: unknown, text: () => string): void {
  process.stdout.write(values.json ? `${JSON.stringify(body, null, 2)}\n` : text());
}

function oneName(subcommand: string, names: string[]): string {
  if (names.length !== 1)
    throw new UsageError(`${subcommand} takes one budget name (see \`sluice budgets list\`)`);
  return encodeURIComponent(names[0] as string);
}

/** The scope flags: exactly one of --key, --team, --org, or none. */
function scopeFrom(values: Values): Record<string, string> | undefined {
  const given = (['key', 'team', 'org'] as const).filter((flag) => typeof values[flag] === 'string');
  if (given.length > 1) throw new UsageError('a budget has one scope: pass one of --key, --team or --org');
  const [flag] = given;
  return flag ? { [flag]: values[flag] as string } : undefined;
}

/** The fields of a create or update body that flags set; null removes (update). */
function budgetBody(values: Values): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  const scope = scopeFrom(values);
  if (scope) body.scope = scope;
  if (typeof values.period === 'string') body.period = values.period;
  const usd = numberFlag(values, 'usd');
  const tokens = numberFlag(values, 'tokens');
  const soft = numberFlag(values, 'soft-limit');
  if (usd !== undefined) body.limitUsd = usd;
  if (tokens !== undefined) body.limitTokens = tokens;
  if (soft !== undefined) body.softLimitPct = soft;
  if (typeof values.webhook === 'string') body.webhook = values.webhook;
  if (values['no-usd']) body.limitUsd = null;
  if (values['no-tokens']) body.limitTokens = null;
  if (values['no-soft-limit']) body.softLimitPct = null;
  if (values['no-webhook']) body.webhook = null;
  return body;
}

const removals = ['no-usd', 'no-tokens', 'no-soft-limit', 'no-webhook', 'rename'];

const actions: Record<string, AdminAction> = {
  async list(client, values, names) {
    if (names.length > 0)
      throw new UsageError('list takes no name: show one with `sluice budgets show <name>`');
    const answer = (await client.call('GET', '/admin/budgets')) as { budgets: BudgetView[] };
    print(values, answer, () =>
      answer.budgets.length === 0
        ? 'No budgets. Create one with `sluice budgets create --name N --team T --usd 100`.\n'
        : budgetTable(answer.budgets),
    );
  },
  async show(client, values, names) {
    const budget = (await client.call('GET', `/admin/budgets/${oneName('show', names)}`)) as BudgetView;
    print(values, budget, () => budgetFieldsText(budget));
  },
  async create(client, values, names) {
    if (names.length > 0) throw new UsageError('create takes no positional name: pass --name');
    if (typeof values.name !== 'string') throw new UsageError('create needs --name');
    if (removals.some((flag) => values[flag] !== undefined)) {
      throw new UsageError(`--${removals.join(', --')} are for update`);
    }
    const body: Record<string, unknown> = { name: values.name, ...budgetBody(values) };
    if (!body.scope) throw new UsageError('create needs a scope: --key, --team or --org');
    const budget = (await client.call('POST', '/admin/budgets', body)) as BudgetView;
    print(values, budget, () => budgetFieldsText(budget));
  },
  async update(client, values, names) {
    const name = oneName('update', names);
    if (typeof values.name === 'string')
      throw new UsageError('update names the budget first; rename with --rename');
    const body = budgetBody(values);
    if (typeof values.rename === 'string') body.name = values.rename;
    if (Object.keys(body).length === 0) {
      throw new UsageError(
        'update needs a change: --key/--team/--org, --period, --usd, --tokens, --soft-limit, --webhook, --rename or a --no-* flag',
      );
    }
    const budget = (await client.call('PATCH', `/admin/budgets/${name}`, body)) as BudgetView;
    print(values, budget, () => budgetFieldsText(budget));
  },
  async delete(client, values, names) {
    const answer = await client.call('DELETE', `/admin/budgets/${oneName('delete', names)}`);
    print(values, answer, () => `Deleted budget ${names[0]}.\n`);
  },
};

export const budgetsCommand: Command = {
  name: 'budgets',
  summary: 'List budgets with their spend; create, update and delete the control store’s budgets.',
  details: [
    'Subcommands:',
    '  list                                 Every budget (sluice.yaml’s and the store’s) with this period’s spend.',
    '  show <name>',
    '  create --name N (--key K | --team T | --org O) [--period day|month|total]',
    '         [--usd X] [--tokens N] [--soft-limit PCT] [--webhook URL]',
    '  update <name> [--key K | --team T | --org O] [--period P] [--usd X | --no-usd]',
    '         [--tokens N | --no-tokens] [--soft-limit PCT | --no-soft-limit]',
    '         [--webhook URL | --no-webhook] [--rename N]',
    '  delete <name>',
    '',
    'A budget needs --usd, --tokens or both. Scopes are names: the key’s, team’s or org’s.',
    'Budgets declared in sluice.yaml are listed but read-only here: change them in the file.',
    'Editing a limit keeps the spend: spend is counted per scope, unit and period.',
    '',
    'Examples:',
    '  export SLUICE_ADMIN_KEY=...',
    '  sluice budgets create --name search-daily --team search --period day --usd 50 --soft-limit 80',
    '  sluice budgets update search-daily --usd 75',
    '  sluice budgets list',
    '  sluice budgets delete search-daily',
    '',
    'See docs/keys-and-budgets.md.',
  ].join('\n'),
  options: {
    ...adminOptions,
    name: { type: 'string', value: 'name', description: 'The budget’s name (create).' },
    key: { type: 'string', value: 'name', description: 'Scope: one API key, by name.' },
    team: { type: 'string', value: 'name', description: 'Scope: one team, by name.' },
    org: { type: 'string', value: 'name', description: 'Scope: one org, by name.' },
    period: {
      type: 'string',
      value: 'period',
      description: 'day, month or total (create default: month).',
    },
    usd: { type: 'string', value: 'X', description: 'Hard limit in US dollars.' },
    tokens: { type: 'string', value: 'N', description: 'Hard limit in tokens (prompt + output).' },
    'soft-limit': { type: 'string', value: 'pct', description: 'Percent of a limit that raises a warning.' },
    webhook: { type: 'string', value: 'url', description: 'Receives a POST when the soft limit is crossed.' },
    rename: { type: 'string', value: 'name', description: 'A new name (update).' },
    'no-usd': { type: 'boolean', description: 'Remove the dollar limit (update).' },
    'no-tokens': { type: 'boolean', description: 'Remove the token limit (update).' },
    'no-soft-limit': { type: 'boolean', description: 'Remove the soft limit (update).' },
    'no-webhook': { type: 'boolean', description: 'Remove the webhook (update).' },
  },
  run: (values, positionals) => runAdminAction(actions, values, positionals),
};

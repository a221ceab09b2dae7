import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { paramPath } from '../http/wire/invalid-request.js';
import { budgetSchema, rateLimitSchema } from '../policy/limit-rules.js';
import {
  apiKeySchema,
  providerSchema,
  retriesSchema,
  routeCacheSchema,
  routeSchema,
  type SluiceConfig,
  sluiceConfigSchema,
  targetSchema,
  timeoutsSchema,
} from './schema.js';

/** One thing wrong with a config, where it is, and how to fix it. */
export interface ConfigProblem {
  /** "routes.chat.targets[0].provider", or "line 3, column 5" for YAML syntax. */
  path: string;
  message: string;
  hint?: string;
}

/** A config that cannot be used; carries every problem found, not just the first. */
export class ConfigError extends Error {
  readonly code = 'invalid_config';
  /** Admin API: the config it was asked to load is invalid. */
  readonly status = 400;

  constructor(
    readonly problems: ConfigProblem[],
    readonly source = 'config',
  ) {
    const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
    super(`${source} is invalid (${count}):\n${formatConfigProblems(problems)}`);
    this.name = 'ConfigError';
  }
}

/** One line per problem, its hint indented below it. */
export function formatConfigProblems(problems: readonly ConfigProblem[]): string {
  return problems
    .flatMap((p) => [`  ${p.path}: ${p.message}`, ...(p.hint ? [`    hint: ${p.hint}`] : [])])
    .join('\n');
}

type Path = readonly PropertyKey[];

interface Interpolation {
  value: unknown;
  unset: { path: Path; name: string }[];
  /** Strings that were exactly one reference: they may fill a number or boolean field. */
  whole: Path[];
}

// $${X} is the escape for a literal ${X}; anything else that is not a valid reference stays as written.
const reference = /\$(\$)?\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;
const wholeReference = /^\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}$/;

function interpolate(doc: unknown, env: NodeJS.ProcessEnv): Interpolation {
  const unset: Interpolation['unset'] = [];
  const whole: Path[] = [];
  const visit = (node: unknown, path: PropertyKey[]): unknown => {
    if (typeof node === 'string') {
      if (!node.includes('${')) return node;
      if (wholeReference.test(node)) whole.push(path);
      return node.replace(
        reference,
        (match, escaped: string | undefined, name: string, fallback?: string) => {
          if (escaped) return match.slice(1);
          const value = env[name];
          // Shell semantics for ":-": an empty variable takes the default too.
          if (value !== undefined && (value !== '' || fallback === undefined)) return value;
          if (fallback !== undefined) return fallback;
          unset.push({ path, name });
          return '';
        },
      );
    }
    if (Array.isArray(node)) return node.map((item, i) => visit(item, [...path, i]));
    if (isRecord(node)) {
      return Object.fromEntries(
        Object.entries(node).map(([key, value]) => [key, visit(value, [...path, key])]),
      );
    }
    return node;
  };
  return { value: visit(doc, []), unset, whole };
}

/**
 * Replaces `${NAME}` and `${NAME:-default}` in every string of a parsed document (keys are left
 * alone); `$${X}` stays a literal `${X}`. An unset variable without a default becomes "" and is
 * listed in `missing` as "providers.openai.apiKey: OPENAI_API_KEY is not set".
 */
export function interpolateEnv(doc: unknown, env: NodeJS.ProcessEnv): { value: unknown; missing: string[] } {
  const { value, unset } = interpolate(doc, env);
  return { value, missing: unset.map(({ path, name }) => `${pathName(path)}: ${name} is not set`) };
}

/** Reads, interpolates and validates a sluice.yaml; throws ConfigError listing every problem. */
export async function loadConfigFile(
  path: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<SluiceConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error(`${path}: no such file (write one like examples/sluice.yaml)`);
    }
    throw error;
  }
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: false });
  if (document.errors.length > 0) {
    const lines = text.split('\n');
    throw new ConfigError(
      document.errors.map((error) => {
        const { line, col } = lineCounter.linePos(error.pos[0]);
        // In { } and [ ], braces are YAML syntax: an unquoted ${NAME} breaks the line.
        const hint =
          yamlHints[error.code] ?? (lines[line - 1]?.includes('${') ? flowReferenceHint : undefined);
        return { path: `line ${line}, column ${col}`, message: error.message, ...(hint && { hint }) };
      }),
      path,
    );
  }
  return parseConfig(document.toJS(), env, path);
}

const flowReferenceHint = "inside { } or [ ], quote a reference: apiKey: '${OPENAI_API_KEY}'";

const yamlHints: Partial<Record<string, string>> = {
  DUPLICATE_KEY: 'a key may appear once per mapping: merge the two entries or rename one',
  TAB_AS_INDENT: 'indent with spaces; YAML does not allow tabs for indentation',
  BAD_INDENT: 'indent every entry of a mapping or list by the same number of spaces',
  MISSING_CHAR: 'close the quote or bracket opened here',
};

/** Validates an already-parsed document (env references not yet replaced); throws ConfigError. */
export function parseConfig(
  doc: unknown,
  env: NodeJS.ProcessEnv = process.env,
  source = 'config',
): SluiceConfig {
  const { value, unset, whole } = interpolate(doc ?? {}, env);
  for (const path of whole) coerceScalar(value, path);

  const problems: ConfigProblem[] = unset.map(({ path, name }) => ({
    path: pathName(path),
    message: `${name} is not set`,
    hint: `export ${name}=… or write \${${name}:-default}`,
  }));
  const unsetPaths = new Set(problems.map((p) => p.path));
  const parsed = sluiceConfigSchema.safeParse(value, { reportInput: true });
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      // The unset variable is the cause; "too small" on the empty string it left adds nothing.
      if (unsetPaths.has(pathName(issue.path))) continue;
      problems.push(...issueProblems(issue, value));
    }
  }
  problems.push(...semanticProblems(value));
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems, source);
  return parsed.data;
}

/** The JSON Schema of sluice.yaml as written (defaults optional), for editors and docs. */
export function configJsonSchema(): object {
  // draft-07 is the draft editors (VS Code's YAML extension) understand best.
  const { $schema, ...rest } = z.toJSONSchema(sluiceConfigSchema, {
    io: 'input',
    target: 'draft-07',
    metadata: new DefinitionsRegistry(),
  });
  return {
    $schema,
    $id: 'urn:sluice:config',
    title: 'sluice.yaml',
    description: 'The Sluice gateway configuration. See docs/configuration.md.',
    ...rest,
  };
}

// Named definitions, so editors and readers see "Provider" and "Route" instead of inlined copies.
const definitionIds = new Map<z.core.$ZodType, string>([
  [providerSchema, 'Provider'],
  [routeSchema, 'Route'],
  [targetSchema, 'Target'],
  [timeoutsSchema, 'Timeouts'],
  [retriesSchema, 'Retries'],
  [routeCacheSchema, 'RouteCache'],
  [apiKeySchema, 'ApiKey'],
  [budgetSchema, 'Budget'],
  [rateLimitSchema, 'RateLimit'],
]);

/** The global registry's metadata (the `.describe()` texts) plus the ids above. */
class DefinitionsRegistry extends z.core.$ZodRegistry<z.core.GlobalMeta> {
  override get<S extends z.core.$ZodType>(schema: S): z.core.$replace<z.core.GlobalMeta, S> | undefined {
    const meta = z.globalRegistry.get(schema);
    const id = definitionIds.get(schema);
    return (id ? { ...meta, id } : meta) as z.core.$replace<z.core.GlobalMeta, S> | undefined;
  }
}

function issueProblems(issue: z.core.$ZodIssue, doc: unknown): ConfigProblem[] {
  const path = pathName(issue.path);
  const input = (issue as { input?: unknown }).input;
  switch (issue.code) {
    case 'unrecognized_keys': {
      const schema = schemaAt(issue.path, doc)?.schema;
      const allowed = schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
      return issue.keys.map((key) => ({
        path: pathName([...issue.path, key]),
        message: `unknown field "${key}"`,
        hint: withSuggestion(`allowed fields: ${allowed.join(', ')}`, key, allowed),
      }));
    }
    case 'invalid_value': {
      const allowed = issue.values.map(String);
      return [
        {
          path,
          message: `invalid value ${JSON.stringify(input)}`,
          hint: withSuggestion(`allowed values: ${allowed.join(', ')}`, String(input), allowed),
        },
      ];
    }
    case 'invalid_union': {
      const { discriminator, options } = issue as { discriminator?: string; options?: unknown[] };
      if (discriminator && options) {
        const allowed = options.map(String);
        const tag = isRecord(input) ? input[discriminator] : undefined;
        const message =
          tag === undefined ? 'required field is missing' : `unknown ${discriminator} ${JSON.stringify(tag)}`;
        return [
          {
            path,
            message,
            hint: withSuggestion(`allowed values: ${allowed.join(', ')}`, String(tag), allowed),
          },
        ];
      }
      break;
    }
    case 'invalid_type':
      if (input === undefined) {
        const description = schemaAt(issue.path, doc)?.description;
        return [{ path, message: 'required field is missing', ...(description && { hint: description }) }];
      }
      break;
    case 'invalid_key': {
      const inner = issue.issues.map((i) => i.message).join('; ');
      const hint =
        issue.path[0] === 'providers' ? 'provider names may contain letters, digits, "_" and "-"' : '';
      return [{ path, message: `invalid name: ${inner}`, ...(hint && { hint }) }];
    }
  }
  const description = schemaAt(issue.path, doc)?.description;
  return [{ path: path || '(top level)', message: issue.message, ...(description && { hint: description }) }];
}

/** What the schema cannot see: names that must refer to each other, and values that must differ. */
function semanticProblems(doc: unknown): ConfigProblem[] {
  if (!isRecord(doc)) return [];
  const problems: ConfigProblem[] = [];
  const providers = Object.keys(asRecord(doc.providers));
  const routes = asRecord(doc.routes);
  const routeNames = Object.keys(routes);

  for (const [name, route] of Object.entries(routes)) {
    if (doc.directModels === true && name.includes('/')) {
      problems.push({
        path: pathName(['routes', name]),
        message: `route name "${name}" contains "/", which directModels reads as provider/model`,
        hint: `rename the route (e.g. "${name.replaceAll('/', '-')}") or set directModels: false`,
      });
    }
    if (!isRecord(route)) continue;
    const targets = Array.isArray(route.targets) ? route.targets : [];
    for (const list of ['targets', 'fallbacks'] as const) {
      const entries = Array.isArray(route[list]) ? (route[list] as unknown[]) : [];
      entries.forEach((target, i) => {
        if (!isRecord(target) || typeof target.provider !== 'string' || target.provider === '') return;
        if (providers.includes(target.provider)) return;
        problems.push({
          path: pathName(['routes', name, list, i, 'provider']),
          message: `unknown provider "${target.provider}"`,
          hint:
            providers.length === 0
              ? 'no providers are defined: add one under `providers:`'
              : withSuggestion(`providers defined: ${providers.join(', ')}`, target.provider, providers),
        });
      });
    }
    if (isRecord(route.cache)) problems.push(...cacheProblems(name, route.cache, routeNames));
    if (targets.length > 0 && targets.every((t) => isRecord(t) && t.weight === 0)) {
      problems.push({
        path: pathName(['routes', name, 'targets']),
        message: 'every target has weight 0, so the route can send no traffic',
        hint: 'give at least one target a weight above 0 (the default is 1)',
      });
    }
  }

  for (const key of Object.keys(asRecord(doc.prices))) {
    const provider = key.split('/')[0] ?? '';
    if (!key.includes('/') || providers.includes(provider)) continue;
    problems.push({
      path: pathName(['prices', key]),
      message: `unknown provider "${provider}"`,
      hint: withSuggestion(
        `keys are "provider/model"; providers defined: ${providers.join(', ')}`,
        provider,
        providers,
      ),
    });
  }

  const apiKeys = isRecord(doc.auth) && Array.isArray(doc.auth.apiKeys) ? doc.auth.apiKeys : [];
  const firstWithKey = new Map<string, number>();
  apiKeys.forEach((apiKey, i) => {
    if (!isRecord(apiKey)) return;
    if (Array.isArray(apiKey.routes)) {
      apiKey.routes.forEach((route, j) => {
        if (typeof route !== 'string' || routeNames.includes(route)) return;
        problems.push({
          path: pathName(['auth', 'apiKeys', i, 'routes', j]),
          message: `unknown route "${route}"`,
          hint:
            routeNames.length === 0
              ? 'no routes are defined: add one under `routes:`'
              : withSuggestion(`routes defined: ${routeNames.join(', ')}`, route, routeNames),
        });
      });
    }
    // Empty keys come from unset variables, reported already.
    if (typeof apiKey.key !== 'string' || apiKey.key === '') return;
    const first = firstWithKey.get(apiKey.key);
    if (first === undefined) {
      firstWithKey.set(apiKey.key, i);
      return;
    }
    problems.push({
      path: pathName(['auth', 'apiKeys', i, 'key']),
      message: `same key as auth.apiKeys[${first}]`,
      hint: 'every client needs its own key so its traffic and spend can be told apart; generate one with `openssl rand -hex 24`',
    });
  });
  problems.push(...limitProblems(doc, routeNames));
  return problems;
}

/** Budget names are unique; a rate limit's route exists; one rate limit per scope. */
function limitProblems(doc: Record<string, unknown>, routeNames: readonly string[]): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const budgets = Array.isArray(doc.budgets) ? doc.budgets : [];
  const firstWithName = new Map<string, number>();
  budgets.forEach((budget, i) => {
    if (!isRecord(budget) || typeof budget.name !== 'string') return;
    const first = firstWithName.get(budget.name);
    if (first === undefined) firstWithName.set(budget.name, i);
    else
      problems.push({
        path: pathName(['budgets', i, 'name']),
        message: `budget name "${budget.name}" is used by budgets[${first}] too`,
        hint: 'give every budget its own name: 402 errors, metrics and webhooks name it',
      });
  });
  const rateLimits = Array.isArray(doc.rateLimits) ? doc.rateLimits : [];
  const firstWithScope = new Map<string, number>();
  rateLimits.forEach((limit, i) => {
    if (!isRecord(limit) || !isRecord(limit.scope)) return;
    const route = limit.scope.route;
    if (
      typeof route === 'string' &&
      !routeNames.includes(route) &&
      !(doc.directModels === true && route.includes('/'))
    ) {
      problems.push({
        path: pathName(['rateLimits', i, 'scope', 'route']),
        message: `unknown route "${route}"`,
        hint:
          routeNames.length === 0
            ? 'no routes are defined: add one under `routes:`'
            : withSuggestion(`routes defined: ${routeNames.join(', ')}`, route, routeNames),
      });
    }
    const scope = JSON.stringify(limit.scope);
    const first = firstWithScope.get(scope);
    if (first === undefined) firstWithScope.set(scope, i);
    else
      problems.push({
        path: pathName(['rateLimits', i, 'scope']),
        message: `rateLimits[${first}] has the same scope`,
        hint: 'put requestsPerMinute and tokensPerMinute of one scope in one entry',
      });
  });
  return problems;
}

const semanticOnly = ['embeddingRoute', 'threshold', 'embeddingTimeoutMs'] as const;

/** A semantic cache needs an embedding route that exists and is not the route itself. */
function cacheProblems(name: string, cache: Record<string, unknown>, routeNames: string[]): ConfigProblem[] {
  const path = (field: string) => pathName(['routes', name, 'cache', field]);
  if (cache.mode !== 'semantic') {
    return semanticOnly
      .filter((field) => cache[field] !== undefined)
      .map((field) => ({
        path: path(field),
        message: `${field} is only used by the semantic cache`,
        hint: 'set mode: semantic, or remove the field',
      }));
  }
  const embeddingRoute = cache.embeddingRoute;
  if (embeddingRoute === undefined) {
    return [
      {
        path: path('embeddingRoute'),
        message: 'mode semantic needs an embedding route',
        hint: 'name a route whose targets are embedding models, e.g. embeddingRoute: embed',
      },
    ];
  }
  if (typeof embeddingRoute !== 'string' || embeddingRoute === '') return [];
  if (embeddingRoute === name) {
    return [
      {
        path: path('embeddingRoute'),
        message: 'a route cannot embed its own requests',
        hint: 'name a separate route whose targets are embedding models',
      },
    ];
  }
  if (routeNames.includes(embeddingRoute)) return [];
  return [
    {
      path: path('embeddingRoute'),
      message: `unknown route "${embeddingRoute}"`,
      hint: withSuggestion(`routes defined: ${routeNames.join(', ')}`, embeddingRoute, routeNames),
    },
  ];
}

function withSuggestion(hint: string, word: string, candidates: readonly string[]): string {
  const match = closest(word, candidates);
  return match ? `${hint}; did you mean "${match}"?` : hint;
}

/** The candidate nearest to `word` by edit distance, if it is near enough to be a typo. */
function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Levenshtein distance, one row at a time. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      row.push(Math.min(previous[j]! + 1, row[j - 1]! + 1, substitution));
    }
    previous = row;
  }
  return previous[b.length]!;
}

/** The schema that validates the value at `path` of `doc`, unwrapped, and its description. */
function schemaAt(path: Path, doc: unknown): { schema: z.core.$ZodType; description?: string } | undefined {
  let value = doc;
  let at = unwrap(sluiceConfigSchema, value);
  for (const key of path) {
    const { schema } = at;
    let next: z.core.$ZodType | undefined;
    if (schema instanceof z.ZodObject) next = (schema.shape as Record<string, z.core.$ZodType>)[String(key)];
    else if (schema instanceof z.ZodRecord) next = schema.valueType;
    else if (schema instanceof z.ZodArray) next = schema.element;
    if (!next) return undefined;
    value =
      isRecord(value) || Array.isArray(value) ? (value as Record<PropertyKey, unknown>)[key] : undefined;
    at = unwrap(next, value);
  }
  return at;
}

/** Looks through defaults and optionals, and picks a provider's variant by its `type`. */
function unwrap(schema: z.core.$ZodType, value: unknown): { schema: z.core.$ZodType; description?: string } {
  let description: string | undefined;
  for (;;) {
    description ??= z.globalRegistry.get(schema)?.description;
    if (schema instanceof z.ZodDefault || schema instanceof z.ZodOptional) {
      schema = schema.unwrap() as z.core.$ZodType;
    } else if (schema instanceof z.ZodDiscriminatedUnion) {
      const discriminator = schema.def.discriminator;
      const tag = isRecord(value) ? value[discriminator] : undefined;
      const option = (schema.options as z.core.$ZodType[]).find((o) =>
        o._zod.propValues?.[discriminator]?.has(tag as string),
      );
      if (!option) return { schema, ...(description && { description }) };
      schema = option;
    } else {
      return { schema, ...(description && { description }) };
    }
  }
}

/** `port: ${PORT:-7878}` reads as the number 7878 where the schema wants a number. */
function coerceScalar(doc: unknown, path: Path): void {
  const key = path.at(-1);
  if (key === undefined) return;
  let parent: unknown = doc;
  for (const step of path.slice(0, -1)) parent = (parent as Record<PropertyKey, unknown>)[step];
  const container = parent as Record<PropertyKey, unknown>;
  const raw = container[key];
  if (typeof raw !== 'string') return;
  const schema = schemaAt(path, doc)?.schema;
  if (schema instanceof z.ZodNumber && /^-?\d+(\.\d+)?$/.test(raw.trim())) container[key] = Number(raw);
  else if (schema instanceof z.ZodBoolean && (raw === 'true' || raw === 'false'))
    container[key] = raw === 'true';
}

function pathName(path: Path): string {
  return paramPath(path) || '(top level)';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function asRecord(value: unknown): Record<string, unknown> {
  return isRecord(value) ? value : {};
}

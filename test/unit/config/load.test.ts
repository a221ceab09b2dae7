// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${VAR} references are the subject under test
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  ConfigError,
  type ConfigProblem,
  configJsonSchema,
  formatConfigProblems,
  interpolateEnv,
  loadConfigFile,
  parseConfig,
} from '../../../src/config/load.js';

const exampleEnv = {
  OPENAI_API_KEY: 'sk-openai-test',
  ANTHROPIC_API_KEY: 'sk-ant-test',
  GEMINI_API_KEY: 'gemini-test',
  AZURE_OPENAI_API_KEY: 'azure-test',
  SLUICE_ADMIN_KEY: 'admin-0123456789abcdef',
  WEB_APP_KEY: 'web-0123456789abcdef',
  BATCH_JOB_KEY: 'batch-0123456789abcdef',
};

const minimal = {
  providers: {
    openai: { type: 'openai', apiKey: 'sk-test' },
    claude: { type: 'anthropic', apiKey: 'sk-ant' },
  },
  routes: { chat: { targets: [{ provider: 'openai', model: 'gpt-4o-mini' }] } },
};

/** The problems parseConfig reports for `doc`; fails the test when it accepts it. */
function problemsOf(doc: unknown, env: NodeJS.ProcessEnv = {}): ConfigProblem[] {
  try {
    parseConfig(doc, env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected the config to be rejected');
}

describe('interpolateEnv', () => {
  it('replaces ${NAME} and uses ${NAME:-default} when the variable is unset or empty', () => {
    const { value, missing } = interpolateEnv(
      { url: 'http://${HOST}:${PORT:-8000}/v1', empty: '${EMPTY:-fallback}', set: '${HOST:-other}' },
      { HOST: 'gpu-1', EMPTY: '' },
    );
    expect(value).toEqual({ url: 'http://gpu-1:8000/v1', empty: 'fallback', set: 'gpu-1' });
    expect(missing).toEqual([]);
  });

  it('keeps $${X} as a literal ${X}', () => {
    const { value } = interpolateEnv({ template: 'cost: $${PRICE} and ${A}' }, { PRICE: '3', A: 'a' });
    expect(value).toEqual({ template: 'cost: ${PRICE} and a' });
  });

  it('leaves an unset variable empty and lists it with its path, inside nested arrays too', () => {
    const { value, missing } = interpolateEnv(
      {
        providers: { openai: { apiKey: '${OPENAI_API_KEY}' } },
        routes: { chat: { targets: [{ params: { stop: ['a', 'x${STOP}y'] } }] } },
      },
      {},
    );
    expect(value).toEqual({
      providers: { openai: { apiKey: '' } },
      routes: { chat: { targets: [{ params: { stop: ['a', 'xy'] } }] } },
    });
    expect(missing).toEqual([
      'providers.openai.apiKey: OPENAI_API_KEY is not set',
      'routes.chat.targets[0].params.stop[1]: STOP is not set',
    ]);
  });

  it('does not touch keys or non-string values', () => {
    const { value } = interpolateEnv({ '${KEY}': 1, flag: true, none: null }, { KEY: 'k' });
    expect(value).toEqual({ '${KEY}': 1, flag: true, none: null });
  });
});

describe('parseConfig', () => {
  it('accepts a valid config and fills defaults', () => {
    const config = parseConfig(minimal, {});
    expect(config.server.port).toBe(7878);
    expect(config.routes.chat?.targets[0]?.weight).toBe(1);
    expect(config.routes.chat?.retries.attempts).toBe(2);
  });

  it('reads a whole ${...} as a number or boolean where the schema wants one', () => {
    const config = parseConfig(
      { ...minimal, server: { port: '${PORT:-9000}' }, directModels: '${DIRECT}' },
      { DIRECT: 'true' },
    );
    expect(config.server.port).toBe(9000);
    expect(config.directModels).toBe(true);
  });

  it('reports an unset variable with a hint, and not also the empty value it left', () => {
    const problems = problemsOf({ providers: { openai: { type: 'openai', apiKey: '${OPENAI_API_KEY}' } } });
    expect(problems).toEqual([
      {
        path: 'providers.openai.apiKey',
        message: 'OPENAI_API_KEY is not set',
        hint: 'export OPENAI_API_KEY=… or write ${OPENAI_API_KEY:-default}',
      },
    ]);
  });

  it('names the providers defined and the nearest one for an unknown provider', () => {
    const problems = problemsOf({
      ...minimal,
      routes: {
        chat: {
          targets: [{ provider: 'opnai', model: 'gpt-4o-mini' }],
          fallbacks: [
            { provider: 'claude', model: 'x' },
            { provider: 'mistral', model: 'y' },
          ],
        },
      },
    });
    expect(problems).toEqual([
      {
        path: 'routes.chat.targets[0].provider',
        message: 'unknown provider "opnai"',
        hint: 'providers defined: openai, claude; did you mean "openai"?',
      },
      {
        path: 'routes.chat.fallbacks[1].provider',
        message: 'unknown provider "mistral"',
        hint: 'providers defined: openai, claude',
      },
    ]);
  });

  it('names the provider of a price key that does not exist, and a price the arithmetic cannot hold', () => {
    const problems = problemsOf({
      ...minimal,
      prices: {
        'openai/gpt-4o': { input: 2.5, output: 10 },
        'opnai/gpt-4o': { input: 2.5, output: 10 },
        'claude/claude-x': { input: 0.0000001, output: 1 },
      },
    });
    expect(problems).toEqual([
      {
        path: 'prices.claude/claude-x.input',
        message: 'at most 6 decimal places (USD per million tokens)',
        hint: 'Prompt tokens neither read from nor written to a cache.',
      },
      {
        path: 'prices.opnai/gpt-4o',
        message: 'unknown provider "opnai"',
        hint: 'keys are "provider/model"; providers defined: openai, claude; did you mean "openai"?',
      },
    ]);
  });

  it('rejects a route name with "/" only when directModels is on', () => {
    const routes = { 'team/chat': minimal.routes.chat };
    expect(() => parseConfig({ ...minimal, routes }, {})).not.toThrow();
    expect(problemsOf({ ...minimal, routes, directModels: true })).toEqual([
      {
        path: 'routes.team/chat',
        message: 'route name "team/chat" contains "/", which directModels reads as provider/model',
        hint: 'rename the route (e.g. "team-chat") or set directModels: false',
      },
    ]);
  });

  it('requires a target with weight above 0', () => {
    const targets = [
      { provider: 'openai', model: 'a', weight: 0 },
      { provider: 'claude', model: 'b', weight: 0 },
    ];
    expect(problemsOf({ ...minimal, routes: { chat: { targets } } })).toEqual([
      {
        path: 'routes.chat.targets',
        message: 'every target has weight 0, so the route can send no traffic',
        hint: 'give at least one target a weight above 0 (the default is 1)',
      },
    ]);
  });

  it('checks that an api key’s routes exist', () => {
    const auth = { apiKeys: [{ name: 'web', key: 'k'.repeat(16), routes: ['chat', 'chta'] }] };
    expect(problemsOf({ ...minimal, auth })).toEqual([
      {
        path: 'auth.apiKeys[0].routes[1]',
        message: 'unknown route "chta"',
        hint: 'routes defined: chat; did you mean "chat"?',
      },
    ]);
  });

  it('rejects two api keys with the same value without printing it', () => {
    const auth = {
      apiKeys: [
        { name: 'web', key: '${SHARED}' },
        { name: 'batch', key: 'batch-0123456789abcdef' },
        { name: 'mobile', key: '${SHARED}' },
      ],
    };
    const problems = problemsOf({ ...minimal, auth }, { SHARED: 'shared-0123456789abcdef' });
    expect(problems).toEqual([
      {
        path: 'auth.apiKeys[2].key',
        message: 'same key as auth.apiKeys[0]',
        hint: expect.stringContaining('openssl rand -hex 24'),
      },
    ]);
    expect(JSON.stringify(problems)).not.toContain('shared-0123456789abcdef');
  });

  it('lists the allowed fields for an unknown field, with a suggestion', () => {
    const problems = problemsOf({
      ...minimal,
      providers: { openai: { type: 'openai', apiKey: 'sk', baseURL: 'http://x' } },
    });
    expect(problems).toEqual([
      {
        path: 'providers.openai.baseURL',
        message: 'unknown field "baseURL"',
        hint: 'allowed fields: type, apiKey, organization, baseUrl, headers, maxConnections; did you mean "baseUrl"?',
      },
    ]);
  });

  it("bounds DuckDB's memory by default and explains a limit that is not a size", () => {
    expect(parseConfig(minimal, {}).events.duckdb.memoryLimit).toBe('1GiB');
    const set = parseConfig({ ...minimal, events: { duckdb: { memoryLimit: '512MiB' } } }, {});
    expect(set.events.duckdb.memoryLimit).toBe('512MiB');
    expect(
      parseConfig({ ...minimal, events: { duckdb: { memoryLimit: '1.5 gb' } } }, {}).events.duckdb,
    ).toEqual({
      memoryLimit: '1.5 gb',
    });
    expect(problemsOf({ ...minimal, events: { duckdb: { memoryLimit: '80%' } } })).toEqual([
      expect.objectContaining({ path: 'events.duckdb.memoryLimit', message: 'a size such as 512MiB or 2GB' }),
    ]);
    expect(problemsOf({ ...minimal, events: { duckdb: { memoryLimit: '60MiB' } } })).toContainEqual(
      expect.objectContaining({
        path: 'events.duckdb.memoryLimit',
        message: 'at least 64MiB: a batch of events is appended in memory',
      }),
    );
  });

  it('lists the allowed values for an enum and for a provider type', () => {
    const problems = problemsOf({
      ...minimal,
      logLevel: 'verbose',
      providers: { ...minimal.providers, x: { type: 'opnai' } },
    });
    expect(problems).toContainEqual({
      path: 'logLevel',
      message: 'invalid value "verbose"',
      hint: 'allowed values: fatal, error, warn, info, debug, trace, silent',
    });
    expect(problems).toContainEqual({
      path: 'providers.x.type',
      message: 'unknown type "opnai"',
      hint: 'allowed values: openai, openai-compatible, anthropic, gemini, azure-openai, sim; did you mean "openai"?',
    });
  });

  it('keeps keys in SQLite under the data dir unless the store says PostgreSQL', () => {
    const config = parseConfig(minimal, {});
    expect(config.store).toEqual({ type: 'sqlite' });
    expect(config.auth.keyRefreshMs).toBe(5_000);
    const shared = parseConfig(
      { ...minimal, store: { type: 'postgres', url: '${DATABASE_URL}' }, auth: { keyRefreshMs: 1000 } },
      { DATABASE_URL: 'postgres://sluice:pw@db:5432/sluice' },
    );
    expect(shared.store).toEqual({
      type: 'postgres',
      url: 'postgres://sluice:pw@db:5432/sluice',
      maxConnections: 10,
    });
    expect(shared.auth.keyRefreshMs).toBe(1000);
  });

  it('explains a store without its url, a url that is not PostgreSQL, and an unknown store type', () => {
    expect(problemsOf({ ...minimal, store: { type: 'postgres' } })).toEqual([
      {
        path: 'store.url',
        message: 'required field is missing',
        hint: 'postgres://user:password@host:5432/database; e.g. ${SLUICE_DATABASE_URL}.',
      },
    ]);
    expect(problemsOf({ ...minimal, store: { type: 'postgres', url: 'mysql://db/sluice' } })[0]?.path).toBe(
      'store.url',
    );
    expect(problemsOf({ ...minimal, store: { type: 'redis' } })).toEqual([
      {
        path: 'store.type',
        message: 'unknown type "redis"',
        hint: 'allowed values: sqlite, postgres',
      },
    ]);
  });

  it('explains a missing required field with its description', () => {
    const problems = problemsOf({ providers: { openai: { type: 'openai' } } });
    expect(problems).toEqual([
      {
        path: 'providers.openai.apiKey',
        message: 'required field is missing',
        hint: 'OpenAI API key; write ${OPENAI_API_KEY} to read it from the environment.',
      },
    ]);
  });

  it('reports every problem at once: env, schema and semantics together', () => {
    const problems = problemsOf({
      server: { port: 'eighty' },
      providers: { openai: { type: 'openai', apiKey: '${OPENAI_API_KEY}' } },
      routes: { chat: { targets: [{ provider: 'opnai', model: 'm' }] }, empty: { targets: [] } },
    });
    expect(problems.map((p) => p.path)).toEqual([
      'providers.openai.apiKey',
      'server.port',
      'routes.empty.targets',
      'routes.chat.targets[0].provider',
    ]);
  });
});

describe('loadConfigFile', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-config-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('validates examples/sluice.yaml when its variables are set', async () => {
    const config = await loadConfigFile('examples/sluice.yaml', exampleEnv);
    expect(Object.keys(config.providers)).toEqual(['sim', 'openai', 'claude', 'gemini', 'vllm', 'azure']);
    expect(Object.keys(config.routes)).toEqual(['chat', 'cheap', 'sim']);
    expect(config.server.port).toBe(7878);
    expect(config.auth.adminKey).toBe(exampleEnv.SLUICE_ADMIN_KEY);
  });

  it('names each variable examples/sluice.yaml needs when none is set', async () => {
    const error = await loadConfigFile('examples/sluice.yaml', {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    const messages = (error as ConfigError).problems.map((p) => p.message).sort();
    expect(messages).toEqual(
      Object.keys(exampleEnv)
        .map((name) => `${name} is not set`)
        .sort(),
    );
  });

  it('reports YAML syntax errors with line and column', async () => {
    const file = join(dir, 'broken.yaml');
    await writeFile(file, 'providers:\n  openai:\n    type: openai\n    type: anthropic\nroutes: [a, b\n');
    const error = (await loadConfigFile(file, {}).catch((e: unknown) => e)) as ConfigError;
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.problems[0]).toMatchObject({ path: 'line 4, column 5', message: 'Map keys must be unique' });
    expect(error.message).toContain(`${file} is invalid`);
  });

  it('tells to quote a ${...} reference inside a flow mapping', async () => {
    const file = join(dir, 'flow.yaml');
    await writeFile(file, 'providers:\n  openai: { type: openai, apiKey: ${OPENAI_API_KEY} }\n');
    const error = (await loadConfigFile(file, {}).catch((e: unknown) => e)) as ConfigError;
    expect(error.problems[0]).toMatchObject({
      path: 'line 2, column 36',
      hint: "inside { } or [ ], quote a reference: apiKey: '${OPENAI_API_KEY}'",
    });
  });

  it('says so when the file does not exist', async () => {
    await expect(loadConfigFile(join(dir, 'absent.yaml'), {})).rejects.toThrow(/absent\.yaml: no such file/);
  });
});

describe('budgets and rate limits in the config', () => {
  const withKeys = {
    ...minimal,
    auth: { apiKeys: [{ name: 'web', key: 'web-0123456789abcdef', team: 'search', org: 'acme' }] },
  };

  it('accepts budgets per key, team and org and rate limits per key, team and route, with defaults', () => {
    const config = parseConfig(
      {
        ...withKeys,
        budgets: [
          {
            name: 'web-monthly',
            scope: { key: 'web' },
            limitUsd: 100,
            softLimitPct: 80,
            webhook: 'https://hooks.example.com/x',
          },
          { name: 'search-daily', scope: { team: 'search' }, period: 'day', limitTokens: 2_000_000 },
          { name: 'acme', scope: { org: 'acme' }, period: 'total', limitUsd: 10_000 },
        ],
        rateLimits: [
          { scope: { key: 'web' }, requestsPerMinute: 600, tokensPerMinute: 200_000 },
          { scope: { route: 'chat' }, requestsPerMinute: 5000 },
        ],
      },
      {},
    );
    expect(config.budgets[0]?.period).toBe('month');
    expect(config.rateLimits).toHaveLength(2);
    expect(config.auth.apiKeys[0]).toMatchObject({ team: 'search', org: 'acme' });
    expect(config.state).toEqual({
      store: 'memory',
      keyPrefix: 'sluice:limits:',
      timeoutMs: 1000,
      flushMs: 5000,
    });
  });

  it('reports a budget without a limit, repeated budget names, unknown routes and repeated scopes', () => {
    const problems = problemsOf({
      ...withKeys,
      budgets: [
        { name: 'web', scope: { key: 'web' }, limitUsd: 5 },
        { name: 'web', scope: { team: 'search' }, limitTokens: 5 },
        { name: 'empty', scope: { key: 'web' } },
      ],
      rateLimits: [
        { scope: { route: 'caht' }, requestsPerMinute: 1 },
        { scope: { key: 'web' }, requestsPerMinute: 1 },
        { scope: { key: 'web' }, tokensPerMinute: 1 },
      ],
    });
    expect(problems).toEqual([
      {
        path: 'budgets[2].limitUsd',
        message: 'a budget needs limitUsd, limitTokens or both',
        hint: expect.any(String),
      },
      {
        path: 'budgets[1].name',
        message: 'budget name "web" is used by budgets[0] too',
        hint: 'give every budget its own name: 402 errors, metrics and webhooks name it',
      },
      {
        path: 'rateLimits[0].scope.route',
        message: 'unknown route "caht"',
        hint: 'routes defined: chat; did you mean "chat"?',
      },
      {
        path: 'rateLimits[2].scope',
        message: 'rateLimits[1] has the same scope',
        hint: 'put requestsPerMinute and tokensPerMinute of one scope in one entry',
      },
    ]);
  });

  it('needs a Redis URL for the redis store', () => {
    expect(problemsOf({ ...minimal, state: { store: 'redis' } })).toEqual([
      {
        path: 'state.redisUrl',
        message: 'store redis needs state.redisUrl',
        hint: 'Required when store is redis, e.g. redis://redis:6379 or ${REDIS_URL}.',
      },
    ]);
    const config = parseConfig(
      { ...minimal, state: { store: 'redis', redisUrl: 'redis://cache:6379/0' } },
      {},
    );
    expect(config.state).toMatchObject({
      redisUrl: 'redis://cache:6379/0',
      keyPrefix: 'sluice:limits:',
      timeoutMs: 1000,
    });
  });
});

describe('formatConfigProblems', () => {
  it('writes one line per problem and its hint below', () => {
    expect(
      formatConfigProblems([
        { path: 'a.b', message: 'bad', hint: 'fix it' },
        { path: 'c', message: 'worse' },
      ]),
    ).toBe('  a.b: bad\n    hint: fix it\n  c: worse');
  });
});

describe('configJsonSchema', () => {
  const schema = configJsonSchema() as {
    $id: string;
    title: string;
    definitions: Record<string, unknown>;
    properties: Record<string, unknown>;
  };

  it('has an id, a title, field descriptions and named provider and route definitions', () => {
    expect(schema.$id).toBe('urn:sluice:config');
    expect(schema.title).toBe('sluice.yaml');
    expect(Object.keys(schema.definitions)).toEqual(expect.arrayContaining(['Provider', 'Route', 'Target']));
    const text = JSON.stringify(schema);
    expect(text).toContain('Share of traffic among the route’s targets.');
    expect(text).toContain('Tried in order when the chosen target fails for good (after its retries).');
    expect(schema.properties.directModels).toMatchObject({
      description: expect.stringContaining('provider/model'),
    });
  });

  it('accepts examples/sluice.yaml once interpolated, as an editor would check it', async () => {
    const { readFile } = await import('node:fs/promises');
    const doc = parseYaml(await readFile('examples/sluice.yaml', 'utf8'));
    const { value } = interpolateEnv(doc, exampleEnv);
    (value as { server: { port: unknown } }).server.port = 7878;
    const validate = new Ajv({ strict: false, validateFormats: false }).compile(schema);
    expect(validate(value), JSON.stringify(validate.errors)).toBe(true);
  });
});

describe('sluice config', () => {
  const exec = promisify(execFile);
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-config-cli-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    exec('node', ['dist/cli/main.js', 'config', ...args], { env: { PATH: process.env.PATH, ...env } }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (error: { code: number; stdout: string; stderr: string }) => error,
    );

  it('check prints a summary for a valid file', async () => {
    const { code, stdout } = await run(['check', 'examples/sluice.yaml'], exampleEnv);
    expect(code).toBe(0);
    expect(stdout).toBe('examples/sluice.yaml is valid: 6 providers, 3 routes (chat, cheap, sim)\n');
  });

  it('check prints every problem and exits 1 for an invalid file', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(
      file,
      [
        'providers:',
        '  openai: { type: openai, apiKey: "${OPENAI_API_KEY}" }',
        'routes:',
        '  chat:',
        '    targets: [{ provider: opnai, model: gpt-4o-mini }]',
        'logLevel: loud',
        '',
      ].join('\n'),
    );
    const { code, stdout, stderr } = await run(['check', file]);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toContain(`${file} is invalid (3 problems)`);
    expect(stderr).toContain('  providers.openai.apiKey: OPENAI_API_KEY is not set\n');
    expect(stderr).toContain('  routes.chat.targets[0].provider: unknown provider "opnai"\n');
    expect(stderr).toContain('    hint: providers defined: openai; did you mean "openai"?');
    expect(stderr).toContain('  logLevel: invalid value "loud"');
    expect(stderr).not.toContain('Usage:');
  });

  it('schema prints the JSON Schema', async () => {
    const { code, stdout } = await run(['schema']);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual(configJsonSchema());
  });

  it('--help describes both subcommands', async () => {
    const { code, stdout } = await run(['--help']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/check \[file\]/);
    expect(stdout).toMatch(/schema {2,}Print the JSON Schema/);
  });
});

#!/usr/bin/env node
/**
 * The console benchmark: how long each page of the web console takes, in headless Chromium, from
 * the start of its navigation until its data is shown (the page's region turns aria-busy="false"
 * once every panel's first fetch answered), against a gateway whose DuckDB holds 1M and 10M
 * synthetic events (the same generator as bench/analytics-queries.mjs).
 *
 *   npm run bench:console                                      # build, then 1M and 10M, docs updated
 *   node bench/console-pages.mjs --rows 1000000 --no-docs      # one size, docs untouched
 *   node bench/console-pages.mjs --help
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { chromium } from 'playwright-core';
import { DAY_MS, FALLBACK, fillDuckdbEvents, PRIMARY, ROUTES } from './synthetic-events.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');

const { values: flags } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000,10000000' },
    days: { type: 'string', default: '7' },
    loads: { type: 'string', default: '5' },
    'target-ms': { type: 'string', default: '1000' },
    'no-docs': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    cache: { type: 'string', default: process.env.SLUICE_BENCH_EVENTS_CACHE ?? '' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (flags.help) {
  process.stdout.write(`Usage: node bench/console-pages.mjs [options]

  --rows <list>      Events in the gateway's DuckDB, one run per size (default 1000000,10000000)
  --days <n>         Days the events span, ending when the run starts (default 7)
  --loads <n>        Timed loads per page, after one warm-up load; median and max reported (default 5)
  --target-ms <n>    The target every page should meet, marked in the table (default 1000)
  --no-docs          Print only; leave docs/benchmarks.md alone
  --keep             Keep the data directories (printed at the end)
  --cache <dir>      Reuse the events files kept in <dir> (outside the repository), moved forward
                     by whole hours to end near now; generated and kept there the first time
`);
  process.exit(0);
}

const chromiumPath = '/usr/bin/chromium';
for (const [path, fix] of [
  [join(dist, 'cli', 'platform.js'), 'run `npm run build` first'],
  [join(dist, 'console', 'index.html'), 'run `npm run build` first'],
  [chromiumPath, 'install Debian chromium (apt-get install chromium)'],
]) {
  if (!existsSync(path)) {
    process.stderr.write(`${path} is missing: ${fix}.\n`);
    process.exit(1);
  }
}

const { startPlatform } = await import(join(dist, 'cli', 'platform.js'));
const { sluiceConfigSchema } = await import(join(dist, 'config', 'schema.js'));

const days = Number(flags.days);
const loads = Number(flags.loads);
const targetMs = Number(flags['target-ms']);
const sizes = flags.rows.split(',').map(Number);
const work = mkdtempSync(join(tmpdir(), 'sluice-console-bench-'));
const adminKey = 'console-bench-admin-key-000001';

/** The pages, as a user opens them: each at its default range, and the overview's longer ranges. */
const pages = [
  { name: 'Overview (last 15 min)', path: '/' },
  { name: 'Overview, last 24 h', path: '/?range=24h' },
  { name: 'Overview, last 7 d', path: '/?range=7d' },
  { name: 'Routes and targets', path: '/targets' },
  { name: 'Requests (last 15 min)', path: '/requests' },
  { name: 'Request detail', path: (sample) => `/requests/${encodeURIComponent(sample.id)}` },
  { name: 'Keys and budgets (last 24 h)', path: '/keys' },
];

/** Routes named as the synthetic events name them, over simulated providers, so the pages match. */
function platformConfig(dataDir) {
  const target = (name) => {
    const [provider, model] = name.split('/');
    return { provider, model };
  };
  return sluiceConfigSchema.parse({
    server: { host: '127.0.0.1', port: 0 },
    dataDir,
    logLevel: 'warn',
    auth: { adminKey },
    providers: { openai: { type: 'sim' }, anthropic: { type: 'sim' }, cohere: { type: 'sim' } },
    routes: Object.fromEntries(
      ROUTES.map((route, i) => [route, { targets: [target(PRIMARY[i])], fallbacks: [target(FALLBACK[i])] }]),
    ),
    events: { sink: 'duckdb', retention: { rawDays: days + 1 } },
  });
}

/** The 50 keys the synthetic events name, in the control store, for the Keys page. */
async function createKeys(url) {
  for (let i = 0; i < 50; i++) {
    const response = await fetch(`${url}/admin/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: `key-${i}` }),
    });
    if (response.status !== 201)
      throw new Error(`POST /admin/keys: ${response.status} ${await response.text()}`);
  }
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** An API call as the table names it: its path, with the analytics breakdown's dimension. */
function callName(url) {
  const { pathname, searchParams } = new URL(url);
  const by = searchParams.get('by') ?? searchParams.get('groupBy');
  const path = pathname.startsWith('/api/requests/') ? '/api/requests/:id' : pathname;
  return by ? `${path}?${searchParams.has('by') ? 'by' : 'groupBy'}=${by}` : path;
}

/**
 * One load of a page in a fresh tab: the time from navigation start (performance.now() counts
 * from it) until the page's region reads aria-busy="false", and how long each API call took.
 */
async function loadPage(context, url) {
  const page = await context.newPage();
  const calls = [];
  page.on('requestfinished', (request) => {
    if (!/\/(api|admin)\//.test(request.url())) return;
    calls.push({ name: callName(request.url()), ms: request.timing().responseEnd });
  });
  await page.goto(url, { waitUntil: 'commit' });
  const ready = await page.waitForFunction(
    () => document.querySelector('#main > section[aria-busy="false"]') && performance.now(),
    null,
    { polling: 'raf', timeout: 120_000 },
  );
  const ms = await ready.jsonValue();
  const failed = await page.locator('[role=alert]').count();
  await page.close();
  if (failed > 0) throw new Error(`${url}: the page shows an error`);
  return { ms, calls };
}

async function measure(count) {
  const dataDir = join(work, `data-${count}`);
  mkdirSync(dataDir, { recursive: true });
  const filled = await fillDuckdbEvents(dist, {
    path: join(dataDir, 'events.duckdb'),
    count,
    days,
    nowMs: Math.floor(Date.now() / 60_000) * 60_000,
    cache: flags.cache || undefined,
    shift: true,
  });
  const nowMs = filled.nowMs;
  // A request from two days into the range, for the detail page.
  const sampled = await filled.store.query(
    {
      sql: `SELECT id FROM events WHERE time_ms >= ${nowMs - (days - 2) * DAY_MS} ORDER BY time_ms LIMIT 1`,
    },
    { timeoutMs: 60_000 },
  );
  const sample = { id: String(sampled.rows[0][0]) };
  await filled.store.close();
  process.stdout.write(
    `${count.toLocaleString('en')} events: ${filled.cached ? 'copied from the cache' : 'generated'} in ${(filled.generateMs / 1000).toFixed(1)} s, rollups in ${(filled.rollupMs / 1000).toFixed(1)} s\n`,
  );

  const platform = await startPlatform(platformConfig(dataDir), { logger: pino({ level: 'warn' }) });
  const profile = mkdtempSync(join(tmpdir(), 'sluice-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1440, height: 900 },
  });
  try {
    await createKeys(platform.url);
    // Signed in as a returning user is: the key already in the tab's session storage.
    await context.addInitScript((key) => sessionStorage.setItem('sluice.key', key), adminKey);
    const results = [];
    for (const { name, path } of pages) {
      const url = `${platform.url}/#${typeof path === 'function' ? path(sample) : path}`;
      await loadPage(context, url); // warm-up: the engine's caches, the browser's compiled bundle
      const timed = [];
      for (let i = 0; i < loads; i++) timed.push(await loadPage(context, url));
      const times = timed.map((load) => load.ms);
      // The slowest API call of each load, then the one that was slowest most often, by its median.
      const byCall = new Map();
      for (const load of timed) {
        for (const call of load.calls) byCall.set(call.name, [...(byCall.get(call.name) ?? []), call.ms]);
      }
      const [slowest, slowestMs] = [...byCall]
        .map(([call, ms]) => [call, median(ms)])
        .sort((a, b) => b[1] - a[1])[0] ?? ['—', 0];
      const result = { name, medianMs: median(times), maxMs: Math.max(...times), slowest, slowestMs };
      results.push(result);
      process.stdout.write(
        `  ${name.padEnd(30)} ${result.medianMs.toFixed(0).padStart(6)} ms  (max ${result.maxMs.toFixed(0)}; slowest call ${slowest} ${slowestMs.toFixed(0)} ms)\n`,
      );
    }
    return { rows: count, generateMs: filled.generateMs, rollupMs: filled.rollupMs, results };
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
    await platform.close();
  }
}

const loadBefore = loadavg()[0];
const runsBySize = [];
for (const count of sizes) runsBySize.push(await measure(count));
const loadAfter = loadavg()[0];

const label = (rows) => (rows >= 1e6 ? `${rows / 1e6}M` : String(rows));
const mark = (ms) => (ms < targetMs ? '' : ' ✗');

function table() {
  const heads = runsBySize.flatMap((r) => [`${label(r.rows)}: median`, `${label(r.rows)}: max`]);
  const last = runsBySize.at(-1);
  const lines = [
    `| page | ${heads.join(' | ')} | slowest API call at ${label(last.rows)} (median) |`,
    `| --- | ${heads.map(() => '---:').join(' | ')} | --- |`,
  ];
  for (const [i, { name }] of pages.entries()) {
    const cells = runsBySize.flatMap((r) => {
      const result = r.results[i];
      return [`${result.medianMs.toFixed(0)}${mark(result.medianMs)}`, `${result.maxMs.toFixed(0)}`];
    });
    const slow = last.results[i];
    lines.push(`| ${name} | ${cells.join(' | ')} | \`${slow.slowest}\` ${slow.slowestMs.toFixed(0)} |`);
  }
  return lines.join('\n');
}

const rendered = `Run of ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC: ${days} days of events, in ms from navigation start until the page's data is shown; median and max of ${loads} loads after a warm-up; ✗: at or over the ${targetMs} ms target; load average ${loadBefore.toFixed(1)} before, ${loadAfter.toFixed(1)} after, on a machine shared with other work.

${table()}`;
process.stdout.write(`\n${rendered}\n`);
mkdirSync(join(root, 'bench', 'results'), { recursive: true });
writeFileSync(
  join(root, 'bench', 'results', 'console-latest.json'),
  `${JSON.stringify({ days, loads, targetMs, loadBefore, loadAfter, runs: runsBySize }, null, 2)}\n`,
);

if (!flags['no-docs']) {
  const docs = join(root, 'docs', 'benchmarks.md');
  const text = readFileSync(docs, 'utf8');
  const start = '<!-- bench:console:start -->';
  const end = '<!-- bench:console:end -->';
  if (text.includes(start) && text.includes(end)) {
    writeFileSync(
      docs,
      `${text.slice(0, text.indexOf(start) + start.length)}\n\n${rendered}\n\n${text.slice(text.indexOf(end))}`,
    );
    process.stdout.write('docs/benchmarks.md updated\n');
  } else {
    process.stderr.write(`docs/benchmarks.md has no ${start} … ${end} markers: not updated\n`);
  }
}
if (flags.keep) process.stdout.write(`kept: ${work}\n`);
else rmSync(work, { recursive: true, force: true });

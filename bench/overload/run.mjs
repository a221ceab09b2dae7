#!/usr/bin/env node
/**
 * The overload benchmark: a simulator of fixed capacity is offered 0.5×, then 3×, then 0.5× that
 * capacity, with a mix of priorities, through Sluice with adaptive flow control, Sluice with flow
 * control off and the Portkey gateway, one after the other in one run. It measures goodput,
 * latency and time to first token of successful requests, outcomes per priority and how fast each
 * figure settles after a step; it writes the tables and a plot to docs/benchmarks.md and
 * docs/img/overload.png. docs/benchmarks.md ("Overload") describes the method.
 *
 *   npm run bench:overload                        # build, run (about 5 minutes), rewrite the docs
 *   node bench/overload/run.mjs --quick --no-docs # a 1-minute smoke run of the harness
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { cpus, homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { convergence, percentile, phaseBounds, rolling, summarisePhase } from './analyse.mjs';
import { closeAgent, closedLoop, openLoop, schedule, send } from './load.mjs';
import { svgChart, writePng } from './plot.mjs';
import { markdownReport, writeDocs } from './report.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
// The same Portkey install as bench/run.mjs, in the same cache folder: 1.15.2 with
// @hono/node-server pinned to 1.13.8, the last release with which its streams work
// (Portkey-AI/gateway#1389, #1550; docs/benchmarks.md explains).
const PORTKEY_VERSION = '1.15.2';
const PORTKEY_NODE_SERVER = '1.13.8';

const { values: flags } = parseArgs({
  options: {
    slots: { type: 'string', default: '16' },
    steps: { type: 'string', default: '0.5,3,0.5' },
    'step-seconds': { type: 'string', default: '10' },
    mix: { type: 'string', default: 'critical=0.2,normal=0.5,batch=0.3' },
    'calibrate-seconds': { type: 'string', default: '10' },
    'timeout-factor': { type: 'string', default: '10' },
    systems: { type: 'string', default: 'adaptive,off,portkey' },
    seed: { type: 'string', default: '1' },
    flow: { type: 'string' },
    'deadline-ms': { type: 'string' },
    quick: { type: 'boolean', default: false },
    'no-docs': { type: 'boolean', default: false },
    cache: { type: 'string' },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (flags.help) {
  process.stdout.write(`usage: node bench/overload/run.mjs [options]   (method: docs/benchmarks.md, "Overload")
  --slots N              the simulator's slots (default 16)
  --steps A,B,C          offered load of each step, as multiples of capacity (default 0.5,3,0.5)
  --step-seconds S       length of each step (default 10)
  --mix P=share,...      priorities of the requests (default critical=0.2,normal=0.5,batch=0.3)
  --calibrate-seconds S  length of the calibration run (default 10)
  --timeout-factor F     client timeout per request, in uncontended p99s (default 10)
  --systems LIST         any of adaptive,off,portkey (default all three)
  --seed N               seed of the arrivals, priorities and the simulator (default 1)
  --flow YAML            the adaptive Sluice's \`flow\` section, to try other settings, e.g.
                         --flow '{limit: {algorithm: gradient2, initialLimit: 20}}'
  --deadline-ms N        x-sluice-deadline-ms sent with each request (default: the client
                         timeout less the uncontended p99)
  --quick                4 s steps and calibration: a smoke test, not figures to publish
  --no-docs              do not rewrite docs/benchmarks.md and docs/img/overload.png
  --cache DIR            where Portkey is installed (default ~/.cache/sluice-bench)
  --keep                 keep the work directory (configs, server logs, SVG)
`);
  process.exit(0);
}

const quick = flags.quick;
const settings = {
  slots: positive('slots'),
  steps: flags.steps.split(',').map(Number),
  stepSeconds: quick ? 4 : positive('step-seconds'),
  calibrateSeconds: quick ? 4 : positive('calibrate-seconds'),
  timeoutFactor: positive('timeout-factor'),
  seed: positive('seed'),
  mix: Object.fromEntries(
    flags.mix.split(',').map((part) => {
      const [priority, share] = part.split('=');
      return [priority.trim(), Number(share)];
    }),
  ),
  systems: flags.systems.split(',').map((s) => s.trim()),
  flow: flags.flow,
  deadlineMs: flags['deadline-ms'] === undefined ? undefined : positive('deadline-ms'),
};
if (settings.steps.some((x) => !(x > 0))) fail('--steps must be positive numbers');
for (const [priority, share] of Object.entries(settings.mix)) {
  if (!['critical', 'high', 'normal', 'low', 'batch'].includes(priority) || !(share >= 0))
    fail(`--mix: bad entry ${priority}=${share}`);
}
for (const s of settings.systems)
  if (!['adaptive', 'off', 'portkey'].includes(s)) fail(`unknown system ${s}`);
const writeToDocs = !flags['no-docs'] && !quick;

function positive(name) {
  const value = Number(flags[name]);
  if (!Number.isFinite(value) || value <= 0) fail(`--${name} must be a positive number`);
  return value;
}

function fail(message) {
  process.stderr.write(`bench:overload: ${message}\n`);
  process.exit(1);
}

const log = (message) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${message}\n`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// Machine: the client and the simulator on CPU 0, the gateway under test alone on CPU 1.

const pinned = spawnSync('taskset', ['-V']).status === 0 && cpus().length >= 2;
const CLIENT_CPU = '0';
const GATEWAY_CPU = '1';
// Every thread of this process (the load generator), so its timers do not compete with the gateway.
if (pinned) spawnSync('taskset', ['-a', '-cp', CLIENT_CPU, String(process.pid)], { stdio: 'ignore' });

const builtCli = join(root, 'dist/cli/main.js');
if (!existsSync(builtCli)) fail('dist/cli/main.js is missing: npm run build');
const work = mkdtempSync(join(tmpdir(), 'sluice-overload-'));
// A copy of the build, so a rebuild during the run cannot mix two versions of the gateway.
cpSync(join(root, 'dist'), join(work, 'dist'), { recursive: true });
cpSync(join(root, 'package.json'), join(work, 'package.json'));
symlinkSync(join(root, 'node_modules'), join(work, 'node_modules'));
const cli = join(work, 'dist/cli/main.js');

/** @type {Set<import('node:child_process').ChildProcess>} */
const children = new Set();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));

function startServer(name, args, cpu) {
  const argv = pinned ? ['taskset', '-c', cpu, process.execPath, ...args] : [process.execPath, ...args];
  const out = openSync(join(work, `${name}.log`), 'a');
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', out, out] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

async function stopServer(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

// ---------------------------------------------------------------------------------------------
// Other work on the machine moves every figure: wait for quiet, and measure what remains.

const clockTicks = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

function busyTicks() {
  const [, ...numbers] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  const [user, nice, system, , , irq, softirq, steal] = numbers.map(Number);
  return user + nice + system + irq + softirq + steal;
}

function processTicks(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

/** Cores busy with anything but this process and `pids`, between the call and the returned function's. */
function backgroundMeter(pids) {
  const ours = () => processTicks(process.pid) + pids.reduce((sum, pid) => sum + processTicks(pid), 0);
  const start = { at: performance.now(), busy: busyTicks(), ours: ours() };
  return () => {
    const seconds = (performance.now() - start.at) / 1000;
    const busy = (busyTicks() - start.busy) / clockTicks;
    const mine = (ours() - start.ours) / clockTicks;
    return { backgroundCores: Math.max(0, (busy - mine) / seconds), oursCores: mine / seconds };
  };
}

/** Waits (at most 60 s) until the machine is idle but for a quarter of a core. */
async function waitForQuiet() {
  const until = Date.now() + 60_000;
  do {
    const before = busyTicks();
    await sleep(1000);
    if ((busyTicks() - before) / clockTicks < 0.25) return;
  } while (Date.now() < until);
  log('the machine is still busy after 60 s: measuring anyway (the report says how busy)');
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

async function waitReady(url, child, name) {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null)
      throw new Error(`${name} exited with ${child.exitCode}: see ${work}/${name}.log`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await response.arrayBuffer();
      if (response.status < 500) return;
    } catch {}
    await sleep(250);
  }
  throw new Error(`${name} did not answer ${url} within 60 s: see ${work}/${name}.log`);
}

// ---------------------------------------------------------------------------------------------
// The upstream: one model of fixed capacity whose queue never overflows, so overload shows as
// queueing delay, as at a real provider. No batch slowdown: a request takes as long with 16 busy
// slots as with one, so the capacity measured uncontended is the capacity under load.

const MODEL = 'overload';
const simConfig = `seed: ${settings.seed}
models:
  - name: ${MODEL}
    slots: ${settings.slots}
    queueLimit: 100000
    prefillBaseMs: 40
    prefillMsPerToken: 0
    decodeMsPerToken: 8
    batchSlowdown: 0
    outputTokens: { mean: 40, spread: 0.5 }
`;
// The simulator answers the same request with the same text: a number in each prompt varies
// the answers' lengths (20 to 60 tokens), as real traffic's do.
const bodyFor = (index) =>
  JSON.stringify({
    model: MODEL,
    stream: true,
    stream_options: { include_usage: true },
    messages: [{ role: 'user', content: `Tell me about rivers and sluices, #${index}.` }],
  });

async function startSim() {
  const port = await freePort();
  writeFileSync(join(work, 'sim.yaml'), simConfig);
  const child = startServer(
    'sim',
    [cli, 'sim', '--port', String(port), '--config', join(work, 'sim.yaml')],
    CLIENT_CPU,
  );
  const url = `http://127.0.0.1:${port}`;
  await waitReady(`${url}/healthz`, child, 'sim');
  return { child, url };
}

const adminKey = `bench-admin-${Math.random().toString(36).slice(2)}-${Date.now()}`;

async function startSluice(simUrl, flowEnabled) {
  const port = await freePort();
  const name = flowEnabled ? 'sluice-adaptive' : 'sluice-off';
  const file = join(work, `${name}.yaml`);
  writeFileSync(
    file,
    `server: { host: 127.0.0.1, port: ${port} }
logLevel: warn
dataDir: ${join(work, `${name}-data`)}
auth: { adminKey: '${adminKey}' }
providers:
  sim: { type: sim, baseUrl: '${simUrl}' }
routes:
  ${MODEL}:
    targets: [{ provider: sim, model: ${MODEL} }]
events: { sink: none }
flow: ${flowEnabled ? (settings.flow ?? '{ enabled: true }') : '{ enabled: false }'}
`,
  );
  const child = startServer(name, [cli, 'up', '--config', file], GATEWAY_CPU);
  const url = `http://127.0.0.1:${port}`;
  await waitReady(`${url}/healthz`, child, name);
  return { child, url, headers: {} };
}

function installPortkey() {
  const base = flags.cache ?? process.env.SLUICE_BENCH_CACHE ?? join(homedir(), '.cache', 'sluice-bench');
  const dir = join(base, `portkey-gateway-${PORTKEY_VERSION}`);
  const entry = join(dir, 'node_modules/@portkey-ai/gateway/build/start-server.js');
  if (existsSync(entry)) return { entry };
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'package.json'),
    `${JSON.stringify({ private: true, overrides: { '@hono/node-server': PORTKEY_NODE_SERVER } }, null, 2)}\n`,
  );
  log(`installing @portkey-ai/gateway@${PORTKEY_VERSION} into ${dir}`);
  const npm = spawnSync(
    'npm',
    ['install', '--prefix', dir, '--no-audit', '--no-fund', `@portkey-ai/gateway@${PORTKEY_VERSION}`],
    { encoding: 'utf8', timeout: 600_000 },
  );
  if (npm.status !== 0 || !existsSync(entry)) {
    throw new Error(
      `npm install @portkey-ai/gateway@${PORTKEY_VERSION} failed: ${(npm.stderr ?? '').slice(-500)}`,
    );
  }
  return { entry };
}

async function startPortkey(simUrl) {
  const { entry } = installPortkey();
  const port = await freePort();
  // 1.15.2 reads only "--port=N": with "--port N" it silently listens on 8787.
  const child = startServer('portkey', [entry, `--port=${port}`, '--headless'], GATEWAY_CPU);
  const url = `http://127.0.0.1:${port}`;
  await waitReady(`${url}/`, child, 'portkey');
  return {
    child,
    url,
    headers: {
      'x-portkey-provider': 'openai',
      'x-portkey-custom-host': `${simUrl}/v1`,
      authorization: 'Bearer sk-bench',
    },
  };
}

const systems = {
  adaptive: { label: 'Sluice, adaptive flow control', start: (sim) => startSluice(sim, true) },
  off: { label: 'Sluice, flow control off', start: (sim) => startSluice(sim, false) },
  portkey: { label: `Portkey ${PORTKEY_VERSION}`, start: (sim) => startPortkey(sim) },
};

async function getJson(url, headers = {}) {
  try {
    const response = await fetch(url, { headers, signal: AbortSignal.timeout(1000) });
    return response.ok ? await response.json() : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Calibration: half the slots busy, closed loop, straight to the simulator.

async function calibrate() {
  const sim = await startSim();
  try {
    await waitForQuiet();
    const concurrency = Math.max(1, Math.floor(settings.slots / 2));
    log(
      `calibration: ${concurrency} in flight for ${settings.calibrateSeconds} s, straight to the simulator`,
    );
    const records = await closedLoop({
      url: `${sim.url}/v1/chat/completions`,
      // Other prompts than the measured runs', with the same spread of lengths.
      bodyFor: (i) => bodyFor(1_000_000 + i),
      headers: {},
      concurrency,
      seconds: settings.calibrateSeconds,
      timeoutMs: 30_000,
    });
    const ok = records.filter((r) => r.outcome === 'ok');
    if (ok.length < 10)
      throw new Error(`calibration: only ${ok.length} of ${records.length} requests succeeded`);
    const latencies = ok.map((r) => r.end - r.start);
    const meanMs = latencies.reduce((a, b) => a + b, 0) / latencies.length;
    return {
      requests: ok.length,
      meanMs,
      p50Ms: percentile(latencies, 0.5),
      p99Ms: percentile(latencies, 0.99),
      ttftP50Ms: percentile(
        ok.map((r) => r.ttft),
        0.5,
      ),
      ttftP99Ms: percentile(
        ok.map((r) => r.ttft),
        0.99,
      ),
      capacityPerSecond: (settings.slots * 1000) / meanMs,
    };
  } finally {
    await stopServer(sim.child);
  }
}

// ---------------------------------------------------------------------------------------------
// One system: a fresh simulator and gateway, the whole step sequence, samples every 250 ms.

async function measure(key, plan) {
  const system = systems[key];
  const sim = await startSim();
  let gateway;
  try {
    gateway = await system.start(sim.url);
    const url = `${gateway.url}/v1/chat/completions`;
    const check = await send({
      url,
      body: bodyFor(-1),
      headers: gateway.headers,
      timeoutMs: 10_000,
      t0: performance.now(),
    });
    if (check.outcome !== 'ok') {
      throw new Error(`a first request through ${system.label} failed: ${check.status} ${check.detail}`);
    }
    await waitForQuiet();
    log(`${system.label}: ${plan.arrivals.length} requests over ${plan.durationMs / 1000} s`);
    const meter = backgroundMeter([sim.child.pid, gateway.child.pid]);
    const samples = [];
    let sampling = false;
    const onTick = (t) => {
      if (sampling) return; // a slow answer skips a sample rather than piling requests up
      sampling = true;
      Promise.all([
        getJson(`${sim.url}/sim/stats`),
        key === 'adaptive'
          ? getJson(`${gateway.url}/admin/flow`, { authorization: `Bearer ${adminKey}` })
          : undefined,
      ]).then(([stats, flow]) => {
        sampling = false;
        const target = flow?.targets?.[0];
        samples.push({
          t,
          simBusy: stats?.inFlight,
          simQueued: stats?.queued,
          ...(target && {
            limit: target.limit,
            inflight: target.inflight,
            queued: target.queued,
            shedByPriority: target.shedByPriority,
          }),
        });
      });
    };
    const headersFor = (priority) => ({
      ...gateway.headers,
      'x-sluice-priority': priority,
      'x-sluice-deadline-ms': String(plan.deadlineMs),
    });
    const run = await openLoop({
      url,
      bodyFor,
      headersFor,
      arrivals: plan.arrivals,
      timeoutMs: plan.timeoutMs,
      onTick,
    });
    const cpu = meter();
    await sleep(300); // the last sample
    const errors = run.records.filter((r) => r.outcome === 'error');
    if (errors.length > 0) log(`  ${errors.length} errors, e.g. ${errors[0].status} ${errors[0].detail}`);
    return { key, label: system.label, ...run, samples, ...cpu };
  } finally {
    if (gateway) await stopServer(gateway.child);
    await stopServer(sim.child);
  }
}

// ---------------------------------------------------------------------------------------------

function analyse(result, plan) {
  const bounds = phaseBounds(plan.phases);
  const phases = bounds.map((b, i) => summarisePhase(result.records, b, i));
  // Past the last step too: how the backlog drains.
  const series = rolling(result.records, Math.max(plan.durationMs, result.durationMs));
  const p99Convergence = bounds.map((b) =>
    convergence(
      series.map((s) => ({ t: s.t, value: s.p99Ms })),
      b,
    ),
  );
  const limitSamples = result.samples
    .filter((s) => s.limit !== undefined)
    .map((s) => ({ t: s.t, value: s.limit }));
  const limitConvergence =
    limitSamples.length > 0 ? bounds.map((b) => convergence(limitSamples, b)) : undefined;
  return { phases, series, p99Convergence, limitConvergence };
}

function gitState() {
  const git = (args) => spawnSync('git', args, { cwd: root, encoding: 'utf8' }).stdout.trim();
  return {
    commit: git(['rev-parse', '--short', 'HEAD']),
    dirty: git(['status', '--porcelain', '--', 'src']).length > 0,
    built: statSync(builtCli).mtime.toISOString(),
  };
}

function plot(results, plan, calibration) {
  const colors = { adaptive: '#1f77b4', off: '#d62728', portkey: '#2ca02c' };
  const bounds = phaseBounds(plan.phases);
  const s = (t) => t / 1000;
  const offered = bounds.flatMap((b) => [
    [s(b.from), b.rate],
    [s(b.to), b.rate],
  ]);
  const adaptive = results.find((r) => r.key === 'adaptive');
  // Past the last step: how each backlog drains.
  const lastS = Math.ceil(Math.max(...results.map((r) => r.durationMs)) / 1000);
  const panels = [
    {
      title: 'Goodput: successful answers per second (1-s window)',
      unit: 'answers/s',
      series: [
        { label: 'offered', color: '#999', points: offered, dashed: true },
        {
          label: 'capacity',
          color: '#555',
          dashed: true,
          points: [
            [0, calibration.capacityPerSecond],
            [lastS, calibration.capacityPerSecond],
          ],
        },
        ...results.map((r) => ({
          label: r.label.replace('Sluice, ', ''),
          color: colors[r.key],
          points: r.analysis.series.map((x) => [s(x.t), x.goodput]),
        })),
      ],
    },
    {
      title: 'p99 latency of successful requests sent in each 1-s window (no line: none succeeded)',
      unit: 'seconds',
      series: [
        {
          label: 'client timeout',
          color: '#999',
          dashed: true,
          points: [
            [0, plan.timeoutMs / 1000],
            [lastS, plan.timeoutMs / 1000],
          ],
        },
        {
          label: '1.5× uncontended p99',
          color: '#555',
          dashed: true,
          points: [
            [0, (1.5 * calibration.p99Ms) / 1000],
            [lastS, (1.5 * calibration.p99Ms) / 1000],
          ],
        },
        ...results.map((r) => ({
          label: r.label.replace('Sluice, ', ''),
          color: colors[r.key],
          points: r.analysis.series.map((x) => [s(x.t), x.p99Ms === undefined ? undefined : x.p99Ms / 1000]),
        })),
      ],
    },
  ];
  if (adaptive) {
    const pts = (field) =>
      adaptive.samples.filter((x) => x[field] !== undefined).map((x) => [s(x.t), x[field]]);
    panels.push({
      title:
        'Sluice, adaptive: the target’s limit, in flight and queued (GET /admin/flow), and the simulator',
      unit: 'requests',
      series: [
        { label: 'limit', color: '#1f77b4', width: 2.4, points: pts('limit') },
        { label: 'in flight', color: '#ff7f0e', points: pts('inflight') },
        { label: 'queued in Sluice', color: '#9467bd', points: pts('queued') },
        { label: 'queued in simulator', color: '#8c564b', points: pts('simQueued') },
        {
          label: `slots (${settings.slots})`,
          color: '#555',
          dashed: true,
          points: [
            [0, settings.slots],
            [lastS, settings.slots],
          ],
        },
      ],
    });
  }
  return svgChart({
    title: `Overload: ${plan.phases.map((p) => `${p.multiple}×`).join(' → ')} capacity (${calibration.capacityPerSecond.toFixed(1)} req/s, ${settings.slots} slots)`,
    durationS: lastS,
    boundaries: bounds.map((b) => s(b.to)),
    panels,
  });
}

async function main() {
  const git = gitState();
  const calibration = await calibrate();
  log(
    `capacity ${calibration.capacityPerSecond.toFixed(1)} req/s (${settings.slots} slots / ${calibration.meanMs.toFixed(0)} ms); ` +
      `uncontended p50 ${calibration.p50Ms.toFixed(0)} ms, p99 ${calibration.p99Ms.toFixed(0)} ms`,
  );
  const phases = settings.steps.map((multiple) => ({
    multiple,
    rate: multiple * calibration.capacityPerSecond,
    seconds: settings.stepSeconds,
  }));
  const timeoutMs = Math.round(settings.timeoutFactor * calibration.p99Ms);
  const plan = {
    phases,
    arrivals: schedule(phases, settings.mix, settings.seed),
    durationMs: phases.reduce((sum, p) => sum + p.seconds * 1000, 0),
    timeoutMs,
    // The latest start from which an uncontended answer still arrives before the client gives up.
    deadlineMs: settings.deadlineMs ?? Math.max(1, Math.round(timeoutMs - calibration.p99Ms)),
  };
  const results = [];
  for (const key of settings.systems) {
    try {
      let result = await measure(key, plan);
      if (result.backgroundCores > 0.3) {
        log(
          `  other work took ${result.backgroundCores.toFixed(2)} cores meanwhile: once more, keeping the quieter run`,
        );
        const again = await measure(key, plan);
        if (again.backgroundCores < result.backgroundCores) result = again;
      }
      result.analysis = analyse(result, plan);
      results.push(result);
    } catch (error) {
      log(`${systems[key].label}: not measured: ${error.message}`);
      results.push({ key, label: systems[key].label, error: error.message });
    }
  }
  await closeAgent();
  const measured = results.filter((r) => !r.error);
  const report = markdownReport({ settings, plan, calibration, results, pinned, git });
  process.stdout.write(`\n${report}\n`);

  const resultsDir = join(root, 'bench/overload/results');
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(
    join(resultsDir, 'latest.json'),
    `${JSON.stringify(
      {
        settings,
        git,
        calibration,
        plan: { ...plan, arrivals: plan.arrivals.length },
        results,
      },
      null,
      1,
    )}\n`,
  );
  log(`raw figures: ${join(resultsDir, 'latest.json')}`);

  if (measured.length > 0) {
    const svgPath = join(work, 'overload.svg');
    const pngPath = writeToDocs ? join(root, 'docs/img/overload.png') : join(work, 'overload.png');
    mkdirSync(dirname(pngPath), { recursive: true });
    const problem = writePng(plot(measured, plan, calibration), svgPath, pngPath);
    if (problem) log(problem);
    else log(`plot: ${pngPath}`);
  }
  if (writeToDocs) {
    writeDocs(join(root, 'docs/benchmarks.md'), report);
    log('docs/benchmarks.md: the overload tables are rewritten');
  }
}

let failed = false;
try {
  await main();
} catch (error) {
  failed = true;
  log(`failed: ${error.stack ?? error.message}`);
} finally {
  for (const child of children) child.kill('SIGKILL');
  if (flags.keep || failed) log(`work directory kept: ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);

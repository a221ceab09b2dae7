#!/usr/bin/env node
/**
 * The gateway benchmark: the simulator directly, through Sluice, through a minimal Node proxy and
 * through the Portkey gateway, side by side in one run on loopback. Throughput at a fixed
 * concurrency (wrk), latency and time to first token at a fixed request rate (bench/open-loop.mjs),
 * CPU time per request and memory of each server. Figures are medians of `--rounds` rounds;
 * ratios are taken within a round, against baselines measured minutes apart at most.
 * bench/README.md explains each figure; docs/benchmarks.md holds the latest table.
 *
 *   npm run bench                      # build, run, rewrite the table in docs/benchmarks.md
 *   npm run bench -- --quick --no-docs # a 2-minute smoke run
 *   npm run bench -- --profile         # CPU profiles of Sluice under load, summarised
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { cpus, homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { summariseProfile } from './cpu-profile.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PORTKEY_VERSION = '1.15.2';
// Portkey 1.15.2 mutates the headers of the upstream fetch() response when it streams; newer
// @hono/node-server releases (1.14+, which its "^1.3.3" range resolves to) pass those immutable
// headers through, so every stream fails with "TypeError: immutable" (Portkey-AI/gateway#1389,
// #1550). 1.13.8 is the last release that copies them.
const PORTKEY_NODE_SERVER = '1.13.8';

const { values: flags } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '64' },
    rate: { type: 'string', default: '1000' },
    'stream-rate': { type: 'string', default: '300' },
    quick: { type: 'boolean', default: false },
    'no-portkey': { type: 'boolean', default: false },
    'no-variants': { type: 'boolean', default: false },
    'no-docs': { type: 'boolean', default: false },
    'side-rounds': { type: 'string', default: '12' },
    'side-seconds': { type: 'string', default: '5' },
    profile: { type: 'boolean', default: false },
    'profile-variant': { type: 'string' },
    render: { type: 'string' },
    cache: { type: 'string' },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (flags.help) {
  process.stdout.write(`usage: node bench/run.mjs [options]   (see bench/README.md)
  --rounds N         rounds, each measuring every path once (default 3); medians are reported
  --seconds S        length of each measured run (default 10)
  --warmup S         unmeasured load before each run (default 3)
  --concurrency C    wrk connections for throughput (default 64)
  --rate R           requests per second for the latency runs (default 1000)
  --stream-rate R    streams per second for the time-to-first-token runs (default 300)
  --quick            1 round of 3 s runs: a smoke test, not figures to publish
  --no-portkey       skip the Portkey gateway
  --no-variants      skip Sluice with events on and with key + budget + rate limit
  --no-docs          do not rewrite the table in docs/benchmarks.md
  --side-rounds N    rounds of the side-by-side target checks (default 12; 0 skips them)
  --side-seconds S   length of each side-by-side run (default 5)
  --profile          instead: CPU-profile Sluice under load and print where the time goes
  --profile-variant V  which Sluice to profile: sluice (default), sluice-events, sluice-policy
  --render FILE      instead: print (and write to the docs) the table of a saved results file
  --cache DIR        where Portkey is installed (default ~/.cache/sluice-bench)
  --keep             keep the work directory (configs, server logs, profiles)
`);
  process.exit(0);
}
const quick = flags.quick;
const config = {
  rounds: quick ? 1 : positive('rounds'),
  seconds: quick ? 3 : positive('seconds'),
  warmup: quick ? 1 : positive('warmup'),
  concurrency: positive('concurrency'),
  rate: positive('rate'),
  streamRate: positive('stream-rate'),
  sideRounds: quick ? 2 : Number(flags['side-rounds']),
  sideSeconds: quick ? 2 : positive('side-seconds'),
};
if (!Number.isInteger(config.sideRounds) || config.sideRounds < 0)
  fail(`--side-rounds must be a whole number, got ${flags['side-rounds']}`);
const withPortkey = !flags['no-portkey'];
const writeDocs = !flags['no-docs'] && !quick;

function positive(name) {
  const value = Number(flags[name]);
  if (!Number.isFinite(value) || value <= 0) fail(`--${name} must be a positive number`);
  return value;
}

function fail(message) {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(1);
}

const log = (message) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${message}\n`);

// ---------------------------------------------------------------------------------------------
// Machine: two roles pinned apart, when there are two cores to pin to.

const clockTicks = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;
const cores = cpus().length;
const hasTaskset = spawnSync('taskset', ['-V']).status === 0;
const pinned = hasTaskset && cores >= 2;
// CPU 0: the load generator and the simulator (the same work per request on every path).
// CPU 1: the proxy under test, alone, so its cost is not mixed with the client's.
const LOAD_CPU = '0';
const SERVER_CPU = '1';

// Flags of every Node process the harness starts. Each server logs its collections (a line each,
// a few a second), so that each latency run can tell how long the simulator and the proxy paused
// (see gcPauses()). A process pinned to one CPU collects on its main thread alone: V8 otherwise
// splits a scavenge over helper threads that the pin puts on that same CPU, next to the client or
// the other server, and the main thread waits for them (with another process busy on the core,
// the simulator's scavenges took 2 to 5 times as long, Sluice's 3 times).
const NODE_FLAGS = pinned ? ['--single-threaded-gc'] : [];
const SERVER_NODE_FLAGS = [...NODE_FLAGS, '--trace-gc'];

function command(cpu, cmd, args) {
  return pinned && cpu !== undefined ? ['taskset', ['-c', cpu, cmd, ...args]] : [cmd, args];
}

if (!flags.render && spawnSync('wrk', ['-v']).error) fail('wrk is not installed: apt-get install -y wrk');
const cli = join(root, 'dist/cli/main.js');
if (!existsSync(cli)) fail('dist/cli/main.js is missing: npm run build');

const work = mkdtempSync(join(tmpdir(), 'sluice-bench-'));

// ---------------------------------------------------------------------------------------------
// Processes: every child is tracked and stopped on exit, whatever happens.

/** @type {Set<import('node:child_process').ChildProcess>} */
const children = new Set();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));

/** Each server's log file: its output, and its collections (node --trace-gc). */
const logOf = new Map();

/** Starts a server; its output goes to <work>/<name>.log. */
function startServer(name, cmd, args, { cpu = SERVER_CPU, env = {} } = {}) {
  const [bin, argv] = command(cpu, cmd, args);
  const out = openSync(join(work, `${name}.log`), 'a');
  const child = spawn(bin, argv, { stdio: ['ignore', out, out], env: { ...process.env, ...env } });
  children.add(child);
  logOf.set(child, join(work, `${name}.log`));
  child.on('exit', () => children.delete(child));
  return child;
}

/** Stops a server: SIGTERM, then SIGKILL after 10 s. */
async function stopServer(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** Runs a tool to completion and returns its stdout; killed after `timeoutMs`. */
function runTool(cmd, args, { cpu = LOAD_CPU, env = {}, timeoutMs }) {
  const [bin, argv] = command(cpu, cmd, args);
  return new Promise((resolve, reject) => {
    const child = spawn(bin, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else reject(new Error(`${cmd} ${signal ? `killed (${signal})` : `exited ${code}`}: ${stderr.trim()}`));
    });
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `url` until it answers; servers start slowly on a busy core, so up to 60 s. */
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
// /proc: CPU time and memory of a process, and how busy the whole machine is.

function cpuTicks(pid, thread = false) {
  // A process's main thread has the process's id: its own stat is the event loop's CPU time.
  const stat = readFileSync(thread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime, stime, and (for this process) cutime, cstime: the load tools it has waited for.
  return { own: Number(fields[11]) + Number(fields[12]), children: Number(fields[13]) + Number(fields[14]) };
}

function machineTicks() {
  const [, ...numbers] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = numbers.map(Number);
  return {
    busy: user + nice + system + irq + softirq + steal,
    all: user + nice + system + idle + iowait + irq + softirq + steal,
    // Time the hypervisor gave this machine's CPUs to someone else: a stall no process here causes.
    steal,
  };
}

const logSize = (child) => statSync(logOf.get(child)).size;

/**
 * The collections a server ran (node --trace-gc lines of its pid in its log) after `from` bytes:
 * their number, and the total and longest pause of its main thread, in ms. A server's pause
 * holds up every request it has and every one that arrives meanwhile.
 */
function gcPauses(child, from) {
  const text = readFileSync(logOf.get(child)).subarray(from).toString('latin1');
  const line = new RegExp(
    `^\\[${child.pid}:[^\\]]*\\]\\s+\\d+ ms: (Scavenge|Mark-Compact|Minor Mark-Sweep)[^,]*, ([\\d.]+) / `,
    'gm',
  );
  const pauses = { count: 0, totalMs: 0, maxMs: 0, markCompacts: 0 };
  for (const [, kind, ms] of text.matchAll(line)) {
    pauses.count++;
    pauses.totalMs += Number(ms);
    pauses.maxMs = Math.max(pauses.maxMs, Number(ms));
    if (kind === 'Mark-Compact') pauses.markCompacts++;
  }
  pauses.totalMs = Math.round(pauses.totalMs * 100) / 100;
  return pauses;
}

function memoryKiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rss: field('VmRSS'), peak: field('VmHWM') };
}

/**
 * CPU used by each pid (all its threads, and its main thread alone: the event loop) and by
 * everything else on the machine, between start() and stop().
 */
function cpuMeter(pids) {
  const before = { at: performance.now(), machine: machineTicks(), self: cpuTicks(process.pid) };
  const ticks = new Map(pids.map((pid) => [pid, cpuTicks(pid).own]));
  const loopTicks = new Map(pids.map((pid) => [pid, cpuTicks(pid, true).own]));
  return () => {
    const seconds = (performance.now() - before.at) / 1000;
    const machine = machineTicks();
    const self = cpuTicks(process.pid);
    const used = new Map(pids.map((pid) => [pid, (cpuTicks(pid).own - (ticks.get(pid) ?? 0)) / clockTicks]));
    const loopUsed = new Map(
      pids.map((pid) => [pid, (cpuTicks(pid, true).own - (loopTicks.get(pid) ?? 0)) / clockTicks]),
    );
    const ours =
      [...used.values()].reduce((a, b) => a + b, 0) +
      (self.own - before.self.own + self.children - before.self.children) / clockTicks;
    const busy = (machine.busy - before.machine.busy) / clockTicks;
    // The load tools this process waited for (wrk, open-loop.mjs) in the meantime.
    const tools = (self.children - before.self.children) / clockTicks;
    return { seconds, used, loopUsed, tools, backgroundCores: Math.max(0, (busy - ours) / seconds) };
  };
}

/**
 * Waits (at most 20 s per run, 5 min per benchmark) while other processes keep more than a
 * quarter of a core busy: on a shared 2-core machine a compiler in the background moves every
 * figure. What remains is recorded as `backgroundCores` next to each result.
 */
let quietWaitLeftMs = 300_000;
async function waitForQuiet() {
  const started = Date.now();
  const until = started + Math.min(20_000, quietWaitLeftMs);
  do {
    const before = machineTicks();
    await sleep(1000);
    if ((machineTicks().busy - before.busy) / clockTicks < 0.25) break;
  } while (Date.now() < until);
  quietWaitLeftMs = Math.max(0, quietWaitLeftMs - (Date.now() - started));
}

// ---------------------------------------------------------------------------------------------
// The upstream and the paths to it.

const bodies = {
  plain: { model: 'bench', messages: [{ role: 'user', content: 'Say hello to the benchmark.' }] },
  stream: {
    model: 'bench',
    stream: true,
    stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'Say hello to the benchmark.' }],
  },
};
const bodyFile = { plain: join(work, 'plain.json'), stream: join(work, 'stream.json') };
for (const mode of /** @type {const} */ (['plain', 'stream'])) {
  writeFileSync(bodyFile[mode], JSON.stringify(bodies[mode]));
}

// One fast, wide model: the upstream must not be what limits the paths under test.
const simConfig = `seed: 42
models:
  - name: sim-fast
    slots: 4096
    queueLimit: 100000
    prefillBaseMs: 0
    prefillMsPerToken: 0
    decodeMsPerToken: 0
    batchSlowdown: 0
    outputTokens: { mean: 16, spread: 0 }
`;

/**
 * @typedef {object} Path one way to the simulator
 * @property {string} key
 * @property {string} label
 * @property {string} url empty when the server could not be started
 * @property {Record<string, string>} headers
 * @property {import('node:child_process').ChildProcess} [child]
 * @property {Partial<Record<'plain' | 'stream', string>>} unavailable why a kind of request is not measured
 */

async function startSim() {
  const port = await freePort();
  writeFileSync(join(work, 'sim.yaml'), simConfig);
  const child = startServer(
    'sim',
    process.execPath,
    [...SERVER_NODE_FLAGS, cli, 'sim', '--port', String(port), '--config', join(work, 'sim.yaml')],
    { cpu: LOAD_CPU },
  );
  const url = `http://127.0.0.1:${port}`;
  await waitReady(`${url}/healthz`, child, 'sim');
  return { child, url, port };
}

/**
 * Sluice as each row measures it. Flow control is on (limiter, queue, breaker, retry budget) with
 * a fixed limit: at saturation the adaptive limit reads Sluice's own CPU queue as upstream latency
 * and sheds, as it should in production, but a shed 429 is not a served request.
 */
const sluiceVariants = {
  sluice: { label: 'Sluice', yaml: 'events: { sink: none }\n' },
  'sluice-events': {
    label: 'Sluice, events on (DuckDB)',
    yaml: 'events: { sink: duckdb }\n',
  },
  'sluice-policy': {
    label: 'Sluice, key + budget + rate limit',
    headers: { authorization: 'Bearer sk-bench-0123456789abcdef' },
    yaml: `events: { sink: none }
auth:
  apiKeys:
    - { name: bench, key: sk-bench-0123456789abcdef, team: perf, org: bench-org }
budgets:
  - { name: bench-daily, scope: { key: bench }, period: day, limitUsd: 1000000, limitTokens: 100000000000 }
  - { name: perf-monthly, scope: { team: perf }, period: month, limitUsd: 1000000 }
rateLimits:
  - { scope: { key: bench }, requestsPerMinute: 10000000, tokensPerMinute: 10000000000 }
`,
  },
};

async function startSluice(simUrl, nodeFlags = [], variant = 'sluice') {
  const port = await freePort();
  const file = join(work, `${variant}.yaml`);
  writeFileSync(
    file,
    `server: { host: 127.0.0.1, port: ${port} }
logLevel: warn
dataDir: ${join(work, `${variant}-data`)}
providers:
  sim: { type: sim, baseUrl: '${simUrl}' }
routes:
  bench:
    targets: [{ provider: sim, model: sim-fast, limit: { algorithm: fixed, limit: 4096 } }]
${sluiceVariants[variant].yaml}`,
  );
  const child = startServer('sluice', process.execPath, [
    ...nodeFlags,
    ...SERVER_NODE_FLAGS,
    cli,
    'up',
    '--config',
    file,
  ]);
  const url = `http://127.0.0.1:${port}`;
  await waitReady(`${url}/healthz`, child, 'sluice');
  return { child, url };
}

async function startMinimal(simUrl) {
  const port = await freePort();
  const child = startServer('minimal', process.execPath, [
    ...SERVER_NODE_FLAGS,
    join(root, 'bench/minimal-proxy.mjs'),
    '--port',
    String(port),
    '--upstream',
    simUrl,
  ]);
  const url = `http://127.0.0.1:${port}`;
  await waitReady(`${url}/healthz`, child, 'minimal');
  return { child, url };
}

/** Installs Portkey into the cache (once) with npm; returns its entry point or why not. */
function installPortkey() {
  const base = flags.cache ?? process.env.SLUICE_BENCH_CACHE ?? join(homedir(), '.cache', 'sluice-bench');
  const dir = join(base, `portkey-gateway-${PORTKEY_VERSION}`);
  const entry = join(dir, 'node_modules/@portkey-ai/gateway/build/start-server.js');
  if (existsSync(entry)) return { entry, dir };
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
    const detail = (npm.stderr || npm.error?.message || '').trim().split('\n').slice(-5).join(' ');
    return { error: `npm install @portkey-ai/gateway@${PORTKEY_VERSION} failed: ${detail}` };
  }
  return { entry, dir };
}

async function startPortkey(simUrl) {
  const install = installPortkey();
  if (install.error) return { error: install.error };
  const port = await freePort();
  // 1.15.2 reads only "--port=N": with "--port N" it silently listens on 8787.
  const child = startServer('portkey', process.execPath, [
    ...SERVER_NODE_FLAGS,
    install.entry,
    `--port=${port}`,
    '--headless',
  ]);
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitReady(`${url}/`, child, 'portkey');
  } catch (error) {
    await stopServer(child);
    return { error: `Portkey did not start: ${error.message}` };
  }
  const headers = {
    'x-portkey-provider': 'openai',
    'x-portkey-custom-host': `${simUrl}/v1`,
    authorization: 'Bearer sk-bench',
  };
  return { child, url, headers, dir: install.dir };
}

/** One request of each kind through a path: what does not work is not measured, and says why. */
async function probe(path, mode) {
  try {
    const response = await fetch(`${path.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...path.headers },
      body: JSON.stringify(bodies[mode]),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    if (response.status !== 200) return `HTTP ${response.status}: ${text.slice(0, 200)}`;
    if (mode === 'plain' && !JSON.parse(text).choices?.[0]?.message)
      return `no choices: ${text.slice(0, 200)}`;
    if (mode === 'stream' && !(text.startsWith('data: ') && text.includes('data: [DONE]')))
      return `not an event stream: ${text.slice(0, 200)}`;
    return undefined;
  } catch (error) {
    return error.message;
  }
}

// ---------------------------------------------------------------------------------------------
// Measurements.

const median = (xs) => {
  const sorted = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/**
 * One wrk run's result. wrk has once (on 1 December, minutes after the VM was forked by its
 * host) exited 0 without printing its result: such a run is run once more, not the benchmark lost.
 */
async function wrk(path, mode, seconds, connections = config.concurrency) {
  for (let attempt = 1; ; attempt++) {
    const result = await wrkOnce(path, mode, seconds, connections);
    if (result !== undefined) return result;
    if (attempt === 2) throw new Error(`wrk printed no result twice in a row for ${path.label}`);
    log(`  wrk printed no result for ${path.label}: once more`);
  }
}

function wrkOnce(path, mode, seconds, connections) {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '10s'];
  args.push('-s', join(root, 'bench/post.lua'), `${path.url}/v1/chat/completions`);
  const headers = Object.entries(path.headers)
    .map(([name, value]) => `${name}: ${value}`)
    .join('\n');
  return runTool('wrk', args, {
    env: { BENCH_BODY_FILE: bodyFile[mode], BENCH_HEADERS: headers },
    timeoutMs: (seconds + 30) * 1000,
  }).then((stdout) => {
    const last = stdout.trim().split('\n').at(-1) ?? '';
    return last.startsWith('{') ? JSON.parse(last) : undefined;
  });
}

/** Every server's pid: what they use is ours, not background. */
const serverPids = [];

/**
 * Rounds whose CPU a request, for one path, spans more than this (largest over smallest) make a
 * ratio of its medians inconclusive: the targets' margins are 10 and 25%.
 */
const UNSTEADY_ROUNDS = 1.25;

/**
 * Runs a measurement after waiting for quiet; when other processes still took more than
 * `NOISY` cores during it, runs it once more and keeps the less disturbed of the two.
 */
const NOISY = 0.3;
async function leastDisturbed(measure) {
  let best;
  for (let attempt = 0; attempt < 2; attempt++) {
    await waitForQuiet();
    const result = await measure();
    if (!best || result.backgroundCores < best.backgroundCores) best = result;
    if (result.backgroundCores < NOISY) break;
    log(
      `  ${result.backgroundCores.toFixed(2)} cores busy elsewhere during the run${attempt === 0 ? ': once more' : ''}`,
    );
  }
  return best;
}

async function throughput(path, mode, sim) {
  await wrk(path, mode, config.warmup);
  const stop = cpuMeter(serverPids);
  const result = await wrk(path, mode, config.seconds);
  const cpu = stop();
  const errors = result.connect + result.read + result.write + result.timeout + result.status;
  const perRequest = (pid) => ((cpu.used.get(pid) ?? 0) * 1e6) / Math.max(1, result.requests);
  return {
    rps: result.requests / (result.durationUs / 1e6),
    errors,
    closedLoopP50Ms: result.p50Us / 1000,
    closedLoopP99Ms: result.p99Us / 1000,
    simCpuUs: perRequest(sim.child.pid),
    proxyCpuUs: path.key === 'direct' ? null : perRequest(path.child.pid),
    backgroundCores: cpu.backgroundCores,
  };
}

/**
 * A target check run side by side: plain Sluice and a variant served at the same time on the same
 * core, each under its own wrk with half the connections. Whatever disturbs a run (the
 * hypervisor taking the CPU, a neighbour's burst, a collection in the simulator) then disturbs
 * both alike, where runs one after the other moved the same path's CPU a request by a third.
 * The core is shared fairly, so the ratio of CPU a request is also the ratio of throughputs.
 */
async function sideBySide(base, variant) {
  const half = Math.max(1, Math.floor(config.concurrency / 2));
  await Promise.all([wrk(base, 'plain', config.warmup, half), wrk(variant, 'plain', config.warmup, half)]);
  const stop = cpuMeter(serverPids);
  const [baseRun, variantRun] = await Promise.all([
    wrk(base, 'plain', config.sideSeconds, half),
    wrk(variant, 'plain', config.sideSeconds, half),
  ]);
  const cpu = stop();
  const perRequest = (path, run, used = cpu.used) =>
    ((used.get(path.child.pid) ?? 0) * 1e6) / Math.max(1, run.requests);
  const errors = (run) => run.connect + run.read + run.write + run.timeout + run.status;
  return {
    baseCpuUs: perRequest(base, baseRun),
    cpuUs: perRequest(variant, variantRun),
    baseLoopUs: perRequest(base, baseRun, cpu.loopUsed),
    loopUs: perRequest(variant, variantRun, cpu.loopUsed),
    baseRps: baseRun.requests / (baseRun.durationUs / 1e6),
    rps: variantRun.requests / (variantRun.durationUs / 1e6),
    errors: errors(baseRun) + errors(variantRun),
    backgroundCores: cpu.backgroundCores,
  };
}

/** The fixed-rate client's command line for a path and a kind of request. */
function openLoopArgs(path, mode, seconds, warmup) {
  const rate = mode === 'stream' ? config.streamRate : config.rate;
  const args = [...NODE_FLAGS, join(root, 'bench/open-loop.mjs'), '--url', `${path.url}/v1/chat/completions`];
  args.push('--body', bodyFile[mode], '--headers', JSON.stringify(path.headers));
  args.push('--rate', String(rate), '--seconds', String(seconds), '--warmup', String(warmup));
  if (mode === 'stream') args.push('--stream');
  return args;
}

/**
 * Unmeasured load through a path at the fixed rate, once before the first round: a process's first
 * seconds under load (compiling its hot code, promoting and collecting what it built at startup,
 * filling its pools) are not what a request through it costs, and would land in round 1 only.
 */
async function warmUp(path, mode) {
  await runTool(process.execPath, openLoopArgs(path, mode, config.warmup, 0), {
    timeoutMs: (config.warmup + 40) * 1000,
  });
}

async function latency(path, mode, sim) {
  const rate = mode === 'stream' ? config.streamRate : config.rate;
  const args = openLoopArgs(path, mode, config.seconds, config.warmup);
  // What could stall a request besides the path itself: collections of the simulator and of the
  // proxy, and CPU time the hypervisor took from this machine.
  const servers = path.key === 'direct' ? [sim.child] : [sim.child, path.child];
  const logFrom = servers.map(logSize);
  const stealFrom = machineTicks().steal;
  const stop = cpuMeter(serverPids);
  const stdout = await runTool(process.execPath, args, {
    timeoutMs: (config.seconds + config.warmup + 40) * 1000,
  });
  const cpu = stop();
  const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}');
  const [simGc, proxyGc] = servers.map((child, i) => gcPauses(child, logFrom[i]));
  // How busy the load generator's core was: the client and the simulator share it, and near
  // saturation every stall of either (a GC pause, a burst) shows as a tail of the baseline's latency.
  const simCpu = cpu.used.get(sim.child.pid) ?? 0;
  const sent = Math.max(1, (result.requests ?? 0) + Math.round(config.warmup * rate));
  return {
    ...result,
    loadCoreBusy: (simCpu + cpu.tools) / cpu.seconds,
    simCpuUs: (simCpu * 1e6) / sent,
    clientCpuUs: (cpu.tools * 1e6) / sent,
    backgroundCores: cpu.backgroundCores,
    simGc,
    ...(proxyGc && { proxyGc }),
    stealMs: ((machineTicks().steal - stealFrom) * 1000) / clockTicks,
  };
}

// ---------------------------------------------------------------------------------------------
// The benchmark.

async function benchmark() {
  const started = new Date();
  log(`work directory ${work}; ${pinned ? 'load and simulator on CPU 0, proxies on CPU 1' : 'no pinning'}`);
  const sim = await startSim();
  const sluice = await startSluice(sim.url);
  const minimal = await startMinimal(sim.url);
  const variants = [];
  for (const variant of flags['no-variants'] ? [] : ['sluice-events', 'sluice-policy']) {
    const started = await startSluice(sim.url, [], variant);
    const { label, headers = {} } = sluiceVariants[variant];
    variants.push({ key: variant, label, url: started.url, headers, child: started.child, unavailable: {} });
  }
  /** @type {Path[]} */
  const paths = [
    {
      key: 'direct',
      label: 'simulator, direct',
      url: sim.url,
      headers: {},
      child: sim.child,
      unavailable: {},
    },
    { key: 'sluice', label: 'Sluice', url: sluice.url, headers: {}, child: sluice.child, unavailable: {} },
    {
      key: 'minimal',
      label: 'minimal Node proxy',
      url: minimal.url,
      headers: {},
      child: minimal.child,
      unavailable: {},
    },
    ...variants,
  ];
  const notes = [];
  if (withPortkey) {
    const portkey = await startPortkey(sim.url);
    if (portkey.error) {
      notes.push(`Portkey ${PORTKEY_VERSION} not measured: ${portkey.error}`);
      const unavailable = { plain: portkey.error, stream: portkey.error };
      paths.push({ key: 'portkey', label: `Portkey ${PORTKEY_VERSION}`, url: '', headers: {}, unavailable });
    } else {
      paths.push({
        key: 'portkey',
        label: `Portkey ${PORTKEY_VERSION}`,
        url: portkey.url,
        headers: portkey.headers,
        child: portkey.child,
        unavailable: {},
      });
    }
  }
  for (const path of paths) {
    for (const mode of /** @type {const} */ (['plain', 'stream'])) {
      if (path.unavailable[mode]) continue;
      const problem = await probe(path, mode);
      if (problem) {
        path.unavailable[mode] = problem;
        notes.push(
          `${path.label}, ${mode === 'plain' ? 'non-streaming' : 'streaming'}: not measured: ${problem}`,
        );
        log(`${path.label} ${mode}: ${problem}`);
      }
    }
  }
  for (const path of paths) if (path.child?.pid) serverPids.push(path.child.pid);
  const idleMemory = Object.fromEntries(
    paths.filter((p) => p.url).map((p) => [p.key, memoryKiB(/** @type {number} */ (p.child.pid))]),
  );

  for (const path of paths) {
    for (const mode of /** @type {const} */ (['plain', 'stream'])) {
      if (path.unavailable[mode]) continue;
      log(`warming up ${mode} ${path.label}`);
      await warmUp(path, mode);
    }
  }

  /** @type {Record<string, Record<string, {throughput: any[], latency: any[]}>>} */
  const results = {};
  for (const path of paths) {
    results[path.key] = { plain: { throughput: [], latency: [] }, stream: { throughput: [], latency: [] } };
  }
  // Every latency round first, then every throughput round: wrk at full speed leaves the
  // simulator and each proxy an old generation grown under 64 concurrent requests, and collecting
  // it during a later fixed-rate run would show as that run's tail latency.
  for (const kind of /** @type {const} */ (['latency', 'throughput'])) {
    for (let round = 0; round < config.rounds; round++) {
      // Each round starts with a different path, so a slow drift in the machine is shared out.
      const order = paths.map((_, i) => paths[(i + round) % paths.length]);
      for (const mode of /** @type {const} */ (['plain', 'stream'])) {
        for (const path of order) {
          if (path.unavailable[mode]) continue;
          log(`round ${round + 1}/${config.rounds} ${mode} ${path.label}: ${kind}`);
          const measure = kind === 'latency' ? latency : throughput;
          results[path.key][mode][kind].push(await leastDisturbed(() => measure(path, mode, sim)));
        }
      }
    }
  }
  /** @type {Record<string, any[]>} */
  const sideBySideRuns = {};
  const base = paths.find((p) => p.key === 'sluice');
  for (let round = 0; round < config.sideRounds; round++) {
    // Each round starts with a different variant, as the rounds above do.
    const order = variants.map((_, i) => variants[(i + round) % variants.length]);
    for (const variant of order) {
      if (variant.unavailable.plain || base.unavailable.plain) continue;
      log(`side by side ${round + 1}/${config.sideRounds}: Sluice and ${variant.label}`);
      sideBySideRuns[variant.key] ??= [];
      sideBySideRuns[variant.key].push(await leastDisturbed(() => sideBySide(base, variant)));
    }
  }
  const memory = Object.fromEntries(
    paths
      .filter((p) => p.url)
      .map((p) => [
        p.key,
        { idle: idleMemory[p.key], after: memoryKiB(/** @type {number} */ (p.child.pid)) },
      ]),
  );
  for (const path of paths) if (path.child) await stopServer(path.child);

  const machine = {
    date: started.toISOString(),
    cores,
    cpu: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    pinned,
    load: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
  };
  return {
    machine,
    config,
    paths: paths.map(({ key, label, unavailable }) => ({ key, label, unavailable })),
    notes,
    results,
    sideBySide: sideBySideRuns,
    memory,
  };
}

// ---------------------------------------------------------------------------------------------
// The table.

const fixed = (x, digits = 0) => (x === null || x === undefined ? 'n/a' : x.toFixed(digits));
const signed = (x, digits = 2) =>
  x === null || x === undefined ? 'n/a' : `${x >= 0 ? '+' : ''}${x.toFixed(digits)}`;
const ratio = (x) => (x === null || x === undefined ? 'n/a' : `${x.toFixed(2)}×`);

/** Median over rounds of a figure computed within each round (so ratios pair same-round runs). */
function perRound(report, key, mode, kind, figure) {
  const runs = report.results[key]?.[mode]?.[kind] ?? [];
  return median(runs.map((run, round) => figure(run, round)));
}

function summarise(report) {
  const modes = /** @type {const} */ (['plain', 'stream']);
  const out = {};
  for (const mode of modes) {
    out[mode] = {};
    for (const { key } of report.paths) {
      const tp = (run, round, base) => {
        const other = report.results[base]?.[mode]?.throughput[round];
        return other ? run.rps / other.rps : null;
      };
      const added = (field, p) => (run, round) => {
        const direct = report.results.direct[mode].latency[round];
        const mine = run[field]?.[p];
        return direct?.[field]?.[p] != null && mine != null ? mine - direct[field][p] : null;
      };
      out[mode][key] = {
        rps: perRound(report, key, mode, 'throughput', (r) => r.rps),
        vsMinimal: perRound(report, key, mode, 'throughput', (r, i) => tp(r, i, 'minimal')),
        vsDirect: perRound(report, key, mode, 'throughput', (r, i) => tp(r, i, 'direct')),
        proxyCpuUs: perRound(report, key, mode, 'throughput', (r) => r.proxyCpuUs),
        simCpuUs: perRound(report, key, mode, 'throughput', (r) => r.simCpuUs),
        errors:
          (report.results[key]?.[mode]?.throughput ?? []).reduce((a, r) => a + r.errors, 0) +
          (report.results[key]?.[mode]?.latency ?? []).reduce((a, r) => a + r.errors, 0),
        p50: perRound(report, key, mode, 'latency', (r) => r.latencyMs?.p50),
        p99: perRound(report, key, mode, 'latency', (r) => r.latencyMs?.p99),
        addedP50: perRound(report, key, mode, 'latency', added('latencyMs', 'p50')),
        addedP99: perRound(report, key, mode, 'latency', added('latencyMs', 'p99')),
        ttftP50: perRound(report, key, mode, 'latency', (r) => r.firstChunkMs?.p50),
        ttftP99: perRound(report, key, mode, 'latency', (r) => r.firstChunkMs?.p99),
        addedTtftP50: perRound(report, key, mode, 'latency', added('firstChunkMs', 'p50')),
        addedTtftP99: perRound(report, key, mode, 'latency', added('firstChunkMs', 'p99')),
        lagP99: perRound(report, key, mode, 'latency', (r) => r.scheduleLagMs?.p99),
      };
    }
  }
  const background = median(
    Object.values(report.results).flatMap((byMode) =>
      Object.values(byMode).flatMap((kinds) =>
        [...kinds.throughput, ...kinds.latency].map((r) => r.backgroundCores),
      ),
    ),
  );
  return { ...out, background };
}

/** A Markdown table padded as Biome formats it: the first column left-aligned, the others right. */
function markdownTable(header, rows) {
  const widths = header.map((_, i) => Math.max(3, ...[header, ...rows].map((row) => row[i].length)));
  const line = (cells) =>
    `| ${cells.map((text, i) => (i === 0 ? text.padEnd(widths[i]) : text.padStart(widths[i]))).join(' | ')} |`;
  const rule = widths.map((width, i) => (i === 0 ? '-'.repeat(width) : `${'-'.repeat(width - 1)}:`));
  return [line(header), `| ${rule.join(' | ')} |`, ...rows.map(line)].join('\n');
}

function renderTable(report) {
  const s = summarise(report);
  const { machine, config: c } = report;
  const na = (mode, key) => report.paths.find((p) => p.key === key)?.unavailable[mode];
  const dash = (key, text) => (key === 'direct' ? '—' : text);
  const table = (mode, header, cells) =>
    markdownTable(
      header,
      report.paths.map(({ key, label }) =>
        na(mode, key) ? [label, ...header.slice(1).map(() => 'n/a')] : [label, ...cells(s[mode][key], key)],
      ),
    );
  const lines = [
    `Run ${machine.date.slice(0, 16).replace('T', ' ')} UTC · ${machine.cores} cores (${machine.cpu}) · ` +
      `Node ${machine.node} · ${c.rounds} rounds of ${c.seconds} s after ${c.warmup} s warm-up, medians · ` +
      `${machine.pinned ? 'load generator and simulator on CPU 0, proxy on CPU 1' : 'no CPU pinning'} · ` +
      `other processes kept ${fixed(s.background, 2)} cores busy (median)`,
    '',
    `**Non-streaming** chat completion (16 output tokens): throughput with ${c.concurrency} connections ` +
      `(wrk), latency at ${c.rate} requests/s (open loop).`,
    '',
    table(
      'plain',
      [
        'path',
        'req/s',
        'vs minimal',
        'vs direct',
        'proxy CPU µs/req',
        'p50 ms',
        'p99 ms',
        'added p50 ms',
        'added p99 ms',
        'errors',
      ],
      (r, key) => [
        fixed(r.rps),
        ratio(r.vsMinimal),
        ratio(r.vsDirect),
        dash(key, fixed(r.proxyCpuUs)),
        fixed(r.p50, 2),
        fixed(r.p99, 2),
        dash(key, signed(r.addedP50)),
        dash(key, signed(r.addedP99)),
        String(r.errors),
      ],
    ),
    '',
    `**Streaming** (16 tokens, usage chunk): throughput with ${c.concurrency} connections, time to first ` +
      `\`data:\` chunk (TTFT) at ${c.streamRate} streams/s.`,
    '',
    table(
      'stream',
      [
        'path',
        'streams/s',
        'vs minimal',
        'vs direct',
        'proxy CPU µs/stream',
        'TTFT p50 ms',
        'TTFT p99 ms',
        'added TTFT p50 ms',
        'added TTFT p99 ms',
        'errors',
      ],
      (r, key) => [
        fixed(r.rps),
        ratio(r.vsMinimal),
        ratio(r.vsDirect),
        dash(key, fixed(r.proxyCpuUs)),
        fixed(r.ttftP50, 2),
        fixed(r.ttftP99, 2),
        dash(key, signed(r.addedTtftP50)),
        dash(key, signed(r.addedTtftP99)),
        String(r.errors),
      ],
    ),
    '',
    '**Memory** of each server process (MiB): resident at rest before the load, resident after it, peak.',
    '',
    markdownTable(
      ['path', 'RSS idle', 'RSS after', 'peak RSS'],
      report.paths
        .filter(({ key }) => report.memory[key])
        .map(({ key, label }) => {
          const { idle, after } = report.memory[key];
          const mib = (kib) => fixed(kib / 1024);
          return [
            `${label}${key === 'direct' ? ' (the simulator)' : ''}`,
            mib(idle.rss),
            mib(after.rss),
            mib(after.peak),
          ];
        }),
    ),
    '',
  ];
  const sl = s.plain.sluice;
  const perCore = sl.proxyCpuUs ? s.plain.minimal.proxyCpuUs / sl.proxyCpuUs : null;
  const verdict = (x, ok) => (x === null ? 'n/a' : ok ? 'met' : 'missed');
  // A ratio of medians compares each path's rounds; when a path's CPU a request moved by more
  // than a target's margin from one round to the next (the machine's speed changes under it),
  // the medians mix fast and slow phases and the ratio says nothing either way.
  const roundSpread = (key) => {
    const cpu = (report.results[key]?.plain?.throughput ?? [])
      .map((run) => run.proxyCpuUs)
      .filter((x) => x > 0);
    return cpu.length > 1 ? Math.max(...cpu) / Math.min(...cpu) : 1;
  };
  const inTurnVerdict = (keys, x, ok) => {
    const worst = Math.max(...keys.map(roundSpread));
    return worst > UNSTEADY_ROUNDS
      ? `inconclusive: a path's CPU a request moved by up to ${fixed(worst, 2)}× between rounds`
      : verdict(x, ok);
  };
  // An added latency is only meaningful when the baseline itself kept up with the rate, and only
  // resolves 1 ms when the baseline's own p99 moved less than that from round to round.
  const baseline = report.results.direct?.plain?.latency ?? [];
  const baselineErrors = baseline.reduce((sum, run) => sum + run.errors, 0);
  const baselineP99 = baseline.map((run) => run.latencyMs?.p99).filter((x) => typeof x === 'number');
  const baselineSpread = baselineP99.length > 0 ? Math.max(...baselineP99) - Math.min(...baselineP99) : null;
  const latencyVerdict =
    baselineErrors > 0
      ? `not measured: the simulator called directly could not sustain ${c.rate} requests/s on this machine (${baselineErrors} requests not served), so there is no baseline to add to`
      : baselineSpread !== null && baselineSpread >= 1
        ? `${signed(sl.addedP99)} ms, inconclusive: the direct simulator's own p99 moved by ${fixed(baselineSpread, 1)} ms between rounds`
        : `${signed(sl.addedP99)} ms, ${verdict(sl.addedP99, sl.addedP99 !== null && sl.addedP99 < 1)}`;
  // The floor of the machine: the minimal proxy forwards and does nothing else, so what it adds at
  // p99 is what two more loopback hops and one more process on its own core cost here.
  const floor = s.plain.minimal?.addedP99 ?? null;
  const floorNote =
    floor !== null && floor >= 1
      ? `; the minimal Node proxy, which only forwards, added ${signed(floor)} ms in the same rounds: on this machine even a bare Node proxy cannot show the target`
      : '';
  lines.push(
    `Targets: Sluice throughput ≥ 0.75× the minimal proxy: **measured ${ratio(sl.vsMinimal)}, ` +
      `${inTurnVerdict(['sluice', 'minimal'], sl.vsMinimal, sl.vsMinimal !== null && sl.vsMinimal >= 0.75)}; per core ${ratio(perCore)}, ` +
      `${inTurnVerdict(['sluice', 'minimal'], perCore, perCore !== null && perCore >= 0.75)}** (CPU per request ${fixed(s.plain.minimal.proxyCpuUs)} µs ` +
      `minimal vs ${fixed(sl.proxyCpuUs)} µs Sluice; the measured ratio is capped when the simulator's core saturates first). ` +
      `Added p99 latency < 1 ms at ${c.rate} requests/s: **${latencyVerdict}**${floorNote}.`,
  );
  // What the baseline's stability rests on: how busy the core shared by the client and the
  // simulator was (older saved results lack the figure).
  const loadBusy = median(baseline.map((run) => run.loadCoreBusy));
  if (loadBusy !== null) {
    const perRequest = (field) => fixed(median(baseline.map((run) => run[field])));
    lines.push(
      '',
      `Baseline: at ${c.rate} requests/s the load generator and the simulator kept ${fixed(loadBusy, 2)} of ` +
        `${machine.pinned ? 'CPU 0' : 'a core'} busy (median over rounds; the simulator ${perRequest('simCpuUs')} µs ` +
        `and the client ${perRequest('clientCpuUs')} µs of CPU a request); the direct p99 ranged ` +
        `${fixed(Math.min(...baselineP99), 2)} to ${fixed(Math.max(...baselineP99), 2)} ms over the rounds.`,
    );
  }
  // What stalled the non-streaming fixed-rate runs besides the path's own work (older saved results
  // lack the figures): each process's longest collection pause, and the hypervisor's steal.
  if (baseline.some((run) => run.simGc)) {
    const longest = (key, figure) =>
      fixed(median((report.results[key]?.plain?.latency ?? []).map(figure)), 1);
    const proxies = report.paths
      .filter(({ key }) => key !== 'direct' && report.results[key]?.plain?.latency.some((run) => run.proxyGc))
      .map(({ key, label }) => `${label} ${longest(key, (run) => run.proxyGc?.maxMs)} ms`);
    const runs = Object.values(report.results).flatMap((byMode) => byMode.plain.latency);
    lines.push(
      '',
      `Stalls in the ${c.rate} requests/s runs (median over rounds of the longest collection pause): ` +
        `simulator ${longest('direct', (run) => run.simGc.maxMs)} ms, client ${longest('direct', (run) => run.clientGcMs?.max)} ms ` +
        `(direct runs)${proxies.length > 0 ? `; ${proxies.join(', ')}` : ''}; ` +
        `the hypervisor took ${fixed(median(runs.map((run) => run.stealMs)), 0)} ms of CPU time a run, both CPUs (median).`,
    );
  }
  // Features switched on, each against plain Sluice in the same round: wrk throughput and, since
  // the measured throughput is capped by the simulator's core, CPU per request too.
  for (const [key, what, issue] of [
    ['sluice-events', 'events on (DuckDB) vs off', 'analytics'],
    ['sluice-policy', 'an API key with two budgets and a rate limit vs an open API', 'keys and budgets'],
  ]) {
    if (!s.plain[key]) continue;
    const vsSluice = perRound(report, key, 'plain', 'throughput', (run, round) => {
      const base = report.results.sluice.plain.throughput[round];
      return base ? run.rps / base.rps : null;
    });
    const perCoreVs = s.plain[key].proxyCpuUs ? sl.proxyCpuUs / s.plain[key].proxyCpuUs : null;
    // Older saved results have no side-by-side runs.
    const side = report.sideBySide?.[key] ?? [];
    const sideRatios = side.map((run) => run.baseCpuUs / run.cpuUs);
    const sideRatio = median(sideRatios);
    // The event loop's CPU a request (its main thread's): the throughput it can give while the
    // process's other threads (the event worker, DuckDB's, libuv's) have another core. Here they
    // share its core, and an event loop given less of it handles more requests a turn, so the
    // figure is an upper bound: shown, not judged. Older saved results have no such figure.
    const loopSide = side.filter((run) => run.loopUs > 0);
    const loopRatios = loopSide.map((run) => run.baseLoopUs / run.loopUs);
    const loopRatio = median(loopRatios);
    const sideText =
      (side.length === 0
        ? ''
        : `; side by side ${ratio(sideRatio)}, ${verdict(sideRatio, sideRatio !== null && sideRatio >= 0.9)}`) +
      (loopSide.length === 0
        ? ''
        : `; event loop side by side ${ratio(loopRatio)}, no verdict (an upper bound, see Method)`);
    const sideDetail =
      side.length === 0
        ? ''
        : ` Side by side (both served at once on CPU 1, ${side.length} runs of ${c.sideSeconds} s): the median of ` +
          `the runs' ratios of CPU per request, which ranged ${fixed(Math.min(...sideRatios), 2)} to ` +
          `${fixed(Math.max(...sideRatios), 2)}; ${fixed(median(side.map((run) => run.baseCpuUs)))} µs vs ` +
          `${fixed(median(side.map((run) => run.cpuUs)))} µs a request (medians), ` +
          `${side.reduce((sum, run) => sum + run.errors, 0)} errors.` +
          (loopSide.length === 0
            ? ''
            : ` The event loop (main thread) alone: ${fixed(median(loopSide.map((run) => run.baseLoopUs)))} µs vs ` +
              `${fixed(median(loopSide.map((run) => run.loopUs)))} µs a request, the runs' ratios ranged ` +
              `${fixed(Math.min(...loopRatios), 2)} to ${fixed(Math.max(...loopRatios), 2)}.`);
    lines.push(
      '',
      `Target (${issue}): Sluice with ${what} ≥ 0.9× the throughput of plain Sluice: **measured ${ratio(vsSluice)}, ` +
        `${inTurnVerdict(['sluice', key], vsSluice, vsSluice !== null && vsSluice >= 0.9)}; per core ${ratio(perCoreVs)}, ` +
        `${inTurnVerdict(['sluice', key], perCoreVs, perCoreVs !== null && perCoreVs >= 0.9)}${sideText}** (CPU per request ${fixed(sl.proxyCpuUs)} µs vs ${fixed(s.plain[key].proxyCpuUs)} µs).${sideDetail}`,
    );
  }
  const failures = [];
  for (const { key, label } of report.paths) {
    for (const mode of /** @type {const} */ (['plain', 'stream'])) {
      const kinds = {};
      for (const run of report.results[key]?.[mode]?.latency ?? []) {
        for (const [kind, count] of Object.entries(run.errorKinds ?? {}))
          kinds[kind] = (kinds[kind] ?? 0) + count;
      }
      const text = Object.entries(kinds)
        .map(([kind, count]) => `${count} × ${kind}`)
        .join(', ');
      if (text) failures.push(`${label}, ${mode === 'plain' ? 'non-streaming' : 'streaming'}: ${text}`);
    }
  }
  if (failures.length > 0) lines.push('', `Errors in the fixed-rate runs: ${failures.join('; ')}.`);
  for (const note of report.notes) lines.push('', `Note: ${note}`);
  return lines.join('\n');
}

function writeDocsTable(table) {
  const file = join(root, 'docs/benchmarks.md');
  const start = '<!-- bench:results:start -->';
  const end = '<!-- bench:results:end -->';
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  if (from < 0 || to < from) {
    log(`docs/benchmarks.md has no ${start} … ${end} markers: table not written`);
    return;
  }
  writeFileSync(file, `${text.slice(0, from + start.length)}\n${table}\n${text.slice(to)}`);
  log('table written to docs/benchmarks.md');
}

// ---------------------------------------------------------------------------------------------
// --profile: where Sluice spends its CPU under load.

async function profile() {
  const sim = await startSim();
  const reports = [];
  for (const mode of /** @type {const} */ (['plain', 'stream'])) {
    const dir = join(work, `profile-${mode}`);
    const variant = flags['profile-variant'] ?? 'sluice';
    if (!sluiceVariants[variant]) fail(`--profile-variant: one of ${Object.keys(sluiceVariants).join(', ')}`);
    const sluice = await startSluice(sim.url, ['--cpu-prof', '--cpu-prof-dir', dir], variant);
    const path = {
      key: variant,
      label: sluiceVariants[variant].label,
      url: sluice.url,
      headers: sluiceVariants[variant].headers ?? {},
      child: sluice.child,
      unavailable: {},
    };
    await wrk(path, mode, config.warmup);
    log(`profiling Sluice, ${mode}, ${config.seconds} s`);
    const stop = cpuMeter([/** @type {number} */ (sluice.child.pid)]);
    const result = await wrk(path, mode, config.seconds);
    const cpu = stop();
    await stopServer(sluice.child);
    const file = readdirSync(dir).find((name) => name.endsWith('.cpuprofile'));
    if (!file) throw new Error(`no profile written in ${dir}`);
    const cpuUs = ((cpu.used.get(/** @type {number} */ (sluice.child.pid)) ?? 0) * 1e6) / result.requests;
    reports.push(
      `## ${mode === 'plain' ? 'Non-streaming' : 'Streaming'}: ${fixed(result.requests / (result.durationUs / 1e6))} req/s, ` +
        `${fixed(cpuUs)} µs CPU per request (${join(dir, file)})\n\n${summariseProfile(
          JSON.parse(readFileSync(join(dir, file), 'utf8')),
          {
            lastSeconds: config.seconds + 1,
          },
        )}`,
    );
  }
  await stopServer(sim.child);
  return reports.join('\n\n');
}

// ---------------------------------------------------------------------------------------------

try {
  if (flags.profile) {
    process.stdout.write(`${await profile()}\n`);
  } else if (flags.render) {
    const table = renderTable(JSON.parse(readFileSync(flags.render, 'utf8')));
    process.stdout.write(`${table}\n`);
    if (writeDocs) writeDocsTable(table);
  } else {
    const report = await benchmark();
    const table = renderTable(report);
    const resultsDir = join(root, 'bench/results');
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(join(resultsDir, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`\n${table}\n\nraw results: bench/results/latest.json\n`);
    if (writeDocs) writeDocsTable(table);
  }
} catch (error) {
  log(`failed: ${error.stack ?? error}`);
  log(`server logs in ${work}`);
  process.exitCode = 1;
  flags.keep = true;
} finally {
  for (const child of [...children]) await stopServer(child);
  if (!flags.keep) rmSync(work, { recursive: true, force: true });
}

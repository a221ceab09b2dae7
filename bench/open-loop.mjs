#!/usr/bin/env node
/**
 * An open-loop client: sends requests on a fixed schedule (`--rate` per second), whether or not
 * earlier answers have come back, so a slow server cannot slow the client down and hide its
 * latency (the coordinated-omission trap of closed-loop tools). Prints one JSON line: latency
 * percentiles of the whole answer and, with --stream, of the first `data:` chunk (TTFT).
 *
 * It speaks HTTP/1.1 on raw keep-alive sockets with the request bytes built once: a full HTTP
 * client costs this 2-core machine several hundred microseconds per request, which would share
 * the load generator's core with the simulator and blur the sub-millisecond figures it measures.
 *
 *   node bench/open-loop.mjs --url http://127.0.0.1:7878/v1/chat/completions --body body.json \
 *     --rate 1000 --seconds 10 --warmup 2 [--stream] [--headers '{"x-name":"value"}']
 */
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    body: { type: 'string' },
    headers: { type: 'string', default: '{}' },
    rate: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    connections: { type: 'string', default: '512' },
    stream: { type: 'boolean', default: false },
  },
});
if (!values.url || !values.body) {
  process.stderr.write('usage: open-loop.mjs --url URL --body file [--rate N --seconds S --stream]\n');
  process.exit(2);
}

const url = new URL(values.url);
const body = readFileSync(values.body);
const extra = Object.entries(JSON.parse(values.headers))
  .map(([name, value]) => `${name}: ${value}\r\n`)
  .join('');
const request = Buffer.concat([
  Buffer.from(
    `POST ${url.pathname} HTTP/1.1\r\nhost: ${url.host}\r\ncontent-type: application/json\r\n` +
      `content-length: ${body.length}\r\n${extra}\r\n`,
    'latin1',
  ),
  body,
]);
const rate = Number(values.rate);
const warmupCount = Math.round(Number(values.warmup) * rate);
const total = warmupCount + Math.round(Number(values.seconds) * rate);
const intervalMs = 1000 / rate;
const maxConnections = Number(values.connections);
const timeoutMs = 10_000;

const totalMs = [];
const firstChunkMs = [];
const lagMs = [];
/** The client's own collection pauses once measuring: it shares a core with the server it loads. */
const gcMs = [];
/** Failures by kind: "HTTP 429", "timeout", ... */
const errorKinds = {};
let pending = 0;
let opened = 0;

/**
 * One keep-alive connection and the response it is reading. Text is handled as latin1, one
 * character per byte, so lengths and offsets are byte counts.
 * @typedef {{ socket: import('node:net').Socket, job?: Job, buffer: string, state: 'head' | 'length' | 'size' | 'data' | 'crlf' | 'trailer', left: number, status: number, tail: string }} Connection
 * @typedef {{ start: number, measured: boolean, first?: number }} Job
 */

/** @type {Connection[]} */
const idle = [];
/** @type {Set<Connection>} */
const busy = new Set();

function open() {
  opened++;
  const socket = connect({ host: url.hostname, port: Number(url.port), noDelay: true });
  /** @type {Connection} */
  const connection = { socket, buffer: '', state: 'head', left: 0, status: 0, tail: '' };
  socket.setEncoding('latin1');
  socket.on('data', (text) => read(connection, text));
  socket.on('error', (error) => finish(connection, error.message));
  socket.on('close', () => {
    const at = idle.indexOf(connection);
    if (at >= 0) idle.splice(at, 1);
    if (connection.job) finish(connection, 'connection closed mid-response');
  });
  return connection;
}

function send(index, scheduledAt) {
  const start = performance.now();
  const measured = index >= warmupCount;
  if (measured) lagMs.push(start - scheduledAt);
  const connection = idle.pop() ?? (opened < maxConnections ? open() : undefined);
  if (!connection) {
    if (measured) fault(`not sent: ${maxConnections} requests in flight`);
    return;
  }
  Object.assign(connection, { job: { start, measured }, buffer: '', state: 'head', tail: '' });
  busy.add(connection);
  pending++;
  connection.socket.write(request);
}

/** A payload byte range of the body: the first `data:` is the first token; `[DONE]` ends a stream. */
function payload(connection, text) {
  const job = connection.job;
  if (job && job.first === undefined && text.includes('data:')) job.first = performance.now() - job.start;
  connection.tail = (connection.tail + text).slice(-64);
}

/** An incremental HTTP/1.1 response parser: content-length or chunked bodies. */
function read(connection, text) {
  if (!connection.job) return;
  let buffer = connection.buffer + text;
  for (;;) {
    if (connection.state === 'head') {
      const end = buffer.indexOf('\r\n\r\n');
      if (end < 0) break;
      const head = buffer.slice(0, end).toLowerCase();
      buffer = buffer.slice(end + 4);
      connection.status = Number(head.slice(9, 12));
      const length = /\r\ncontent-length:\s*(\d+)/.exec(head);
      if (length) {
        connection.state = 'length';
        connection.left = Number(length[1]);
      } else if (/\r\ntransfer-encoding:\s*chunked/.test(head)) {
        connection.state = 'size';
      } else {
        return finish(connection, 'response without length');
      }
    } else if (connection.state === 'length') {
      const take = Math.min(connection.left, buffer.length);
      if (take > 0) payload(connection, buffer.slice(0, take));
      buffer = buffer.slice(take);
      connection.left -= take;
      if (connection.left === 0) return finish(connection);
      break;
    } else if (connection.state === 'size') {
      const end = buffer.indexOf('\r\n');
      if (end < 0) break;
      connection.left = Number.parseInt(buffer.slice(0, end), 16);
      buffer = buffer.slice(end + 2);
      connection.state = connection.left === 0 ? 'trailer' : 'data';
    } else if (connection.state === 'data') {
      const take = Math.min(connection.left, buffer.length);
      if (take > 0) payload(connection, buffer.slice(0, take));
      buffer = buffer.slice(take);
      connection.left -= take;
      if (connection.left > 0) break;
      connection.state = 'crlf';
    } else if (connection.state === 'crlf') {
      if (buffer.length < 2) break;
      buffer = buffer.slice(2);
      connection.state = 'size';
    } else {
      if (!buffer.includes('\r\n')) break;
      return finish(connection);
    }
  }
  connection.buffer = buffer;
}

function fault(kind) {
  errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
}

function finish(connection, error) {
  const job = connection.job;
  if (!job) return;
  connection.job = undefined;
  busy.delete(connection);
  pending--;
  let problem = error;
  if (!problem && connection.status !== 200) problem = `HTTP ${connection.status}`;
  if (!problem && values.stream && (job.first === undefined || !connection.tail.includes('[DONE]')))
    problem = 'stream ended without [DONE]';
  if (problem) {
    if (job.measured) fault(problem);
    connection.socket.destroy();
    return;
  }
  if (job.measured) {
    totalMs.push(performance.now() - job.start);
    if (values.stream) firstChunkMs.push(/** @type {number} */ (job.first));
  }
  idle.push(connection);
}

// Requests with no answer after the timeout fail, and their connection is dropped.
const sweeper = setInterval(() => {
  const now = performance.now();
  for (const connection of busy) {
    if (connection.job && now - connection.job.start > timeoutMs) finish(connection, 'timeout');
  }
}, 250);

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const rank = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return Math.round(sorted[Math.max(0, rank)] * 1000) / 1000;
}

function summary(samples) {
  const sorted = Float64Array.from(samples).sort();
  return { p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99) };
}

const started = performance.now();
let next = 0;
// A pause of the client delays every answer it is reading and every request falling due, exactly
// as a pause of the server would: reporting them tells the two apart.
const gcObserver = new PerformanceObserver((list) => {
  if (next < warmupCount) return;
  for (const entry of list.getEntries()) gcMs.push(entry.duration);
});
gcObserver.observe({ entryTypes: ['gc'] });

// Fires every request whose time has come, then sleeps until the next one: timers have 1 ms
// granularity, so at 1,000/s requests leave one or two at a time, never in a burst.
await new Promise((resolve) => {
  const tick = () => {
    const now = performance.now();
    while (next < total && started + next * intervalMs <= now) {
      send(next, started + next * intervalMs);
      next++;
    }
    if (next >= total) return resolve(undefined);
    setTimeout(tick, Math.max(0, started + next * intervalMs - performance.now()));
  };
  tick();
});
const sentMs = performance.now() - started;
// Bounded wait for the last answers: the sweeper fails whatever is older than the timeout.
const drainDeadline = performance.now() + timeoutMs + 1000;
while (pending > 0 && performance.now() < drainDeadline) await new Promise((r) => setTimeout(r, 10));
clearInterval(sweeper);
gcObserver.disconnect();
for (const connection of [...idle, ...busy]) connection.socket.destroy();

const measuredCount = total - warmupCount;
process.stdout.write(
  `${JSON.stringify({
    requests: measuredCount,
    ok: totalMs.length,
    // Failed, not sent, or not answered before the client stopped waiting.
    errors: measuredCount - totalMs.length,
    errorKinds,
    connections: opened,
    achievedRate: Math.round((total / sentMs) * 1000),
    scheduleLagMs: summary(lagMs),
    latencyMs: summary(totalMs),
    clientGcMs: {
      count: gcMs.length,
      total: Math.round(gcMs.reduce((a, b) => a + b, 0) * 1000) / 1000,
      max: Math.round(Math.max(0, ...gcMs) * 1000) / 1000,
    },
    ...(values.stream && { firstChunkMs: summary(firstChunkMs) }),
  })}\n`,
);

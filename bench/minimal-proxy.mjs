#!/usr/bin/env node
/**
 * The least a Node gateway must do, as the benchmark's "physical limit": node:http in front,
 * an undici pool behind, the request body parsed and re-serialised (the model renamed, streams
 * asked for usage), a whole answer parsed and re-serialised, a stream passed through as it
 * arrives while each `data:` event is parsed on the side to count usage. No validation, no
 * routing table, no retries, no events.
 *
 *   node bench/minimal-proxy.mjs --port 8080 --upstream http://127.0.0.1:7979 --model sim-fast
 */
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    upstream: { type: 'string' },
    model: { type: 'string', default: 'sim-fast' },
    connections: { type: 'string', default: '256' },
  },
});
if (!values.upstream) {
  process.stderr.write('usage: minimal-proxy.mjs --port N --upstream http://host:port [--model id]\n');
  process.exit(2);
}

const pool = new Pool(values.upstream, { connections: Number(values.connections) });

/** Reads the whole request body. */
function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Counts usage from SSE `data:` lines split across chunks, as a gateway's accounting would. */
function usageCounter() {
  let carry = '';
  const usage = { completionTokens: 0 };
  return {
    usage,
    push(text) {
      const lines = (carry + text).split('\n');
      carry = lines.pop() ?? '';
      for (const line of lines) {
        if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
        const event = JSON.parse(line.slice(6));
        if (event.usage) usage.completionTokens = event.usage.completion_tokens;
      }
    },
  };
}

function fail(res, status, message) {
  if (res.headersSent) return res.destroy();
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { message, type: 'proxy_error' } }));
}

async function handle(req, res) {
  if (req.method === 'GET' && req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'application/json' });
    return res.end('{"status":"ok"}');
  }
  if (req.method !== 'POST' || req.url !== '/v1/chat/completions') return fail(res, 404, 'unknown URL');
  const body = JSON.parse((await readBody(req)).toString('utf8'));
  body.model = values.model;
  if (body.stream) body.stream_options = { include_usage: true };
  const abort = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) abort.abort();
  });
  const upstream = await pool.request({
    method: 'POST',
    path: '/v1/chat/completions',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: abort.signal,
  });
  if (!body.stream || upstream.statusCode !== 200) {
    const answer = await upstream.body.json();
    res.writeHead(upstream.statusCode, { 'content-type': 'application/json' });
    return res.end(JSON.stringify(answer));
  }
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
  const counter = usageCounter();
  upstream.body.setEncoding('utf8');
  for await (const text of upstream.body) {
    counter.push(text);
    if (!res.write(text)) await new Promise((resolve) => res.once('drain', resolve));
  }
  res.end();
}

const server = createServer((req, res) => {
  handle(req, res).catch((error) => fail(res, 502, `upstream failed: ${error.message}`));
});
server.keepAliveTimeout = 72_000;
server.listen(Number(values.port), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ listening: server.address().port })}\n`);
});
const stop = () => server.close(() => pool.close().then(() => process.exit(0)));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

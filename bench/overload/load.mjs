/**
 * The overload benchmark's client: streaming chat requests sent open-loop (on a schedule fixed in
 * advance, whatever the answers do) or closed-loop (for calibration), each recorded as
 * { priority, phase, at, start, ttft, end, status, outcome }. Times are ms from the run's start.
 * Loopback only, bounded in time (a timeout per request, a drain limit) and in count (maxInflight).
 */
import { Agent, request } from 'undici';

/** mulberry32: a small seeded generator, so every system is sent the same arrivals. */
export function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The arrivals of a run: Poisson at each phase's rate, each with a priority drawn from `mix`
 * ({critical: 0.2, ...}). The same seed gives the same list.
 * @param {Array<{rate: number, seconds: number}>} phases
 */
export function schedule(phases, mix, seed) {
  const random = seededRandom(seed);
  const entries = Object.entries(mix);
  const total = entries.reduce((sum, [, share]) => sum + share, 0);
  const pick = () => {
    let x = random() * total;
    for (const [priority, share] of entries) {
      x -= share;
      if (x < 0) return priority;
    }
    return entries.at(-1)[0];
  };
  const arrivals = [];
  let phaseStart = 0;
  phases.forEach(({ rate, seconds }, phase) => {
    const end = phaseStart + seconds * 1000;
    let at = phaseStart;
    for (;;) {
      at += (-Math.log(1 - random()) / rate) * 1000;
      if (at >= end) break;
      arrivals.push({ at, phase, priority: pick() });
    }
    phaseStart = end;
  });
  return arrivals;
}

const agent = new Agent({ keepAliveTimeout: 10_000, connections: null });

/**
 * One streaming request; resolves with its record, never rejects. `outcome` is `ok` (200 and a
 * stream ending in [DONE]), `shed` (429 or 503: refused for overload), `timeout` (no complete
 * answer within timeoutMs; the request is then cancelled) or `error` (anything else).
 */
export async function send({ url, headers, body, timeoutMs, t0 }) {
  const start = performance.now() - t0;
  const record = { start, ttft: undefined, end: undefined, status: 0, outcome: 'error', detail: undefined };
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error('timeout')), timeoutMs);
  try {
    const response = await request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
      dispatcher: agent,
      signal: controller.signal,
      headersTimeout: 0,
      bodyTimeout: 0,
    });
    record.status = response.statusCode;
    if (response.statusCode !== 200) {
      const text = await response.body.text();
      record.outcome = response.statusCode === 429 || response.statusCode === 503 ? 'shed' : 'error';
      record.detail = text.slice(0, 300);
    } else {
      let tail = '';
      for await (const chunk of response.body) {
        const text = chunk.toString();
        if (record.ttft === undefined && text.includes('data:')) record.ttft = performance.now() - t0 - start;
        tail = (tail + text).slice(-64);
      }
      if (tail.includes('data: [DONE]')) record.outcome = 'ok';
      else record.detail = `stream ended without [DONE]: …${tail}`;
    }
  } catch (error) {
    const timedOut = controller.signal.aborted;
    record.outcome = timedOut ? 'timeout' : 'error';
    if (!timedOut) record.detail = error.message;
  } finally {
    clearTimeout(timer);
  }
  record.end = performance.now() - t0;
  return record;
}

/**
 * Sends `arrivals` at their times (open loop) and resolves when every request has ended.
 * `bodyFor(index)` gives a request's body and `headersFor(priority)` its headers; `onTick(ms)` is
 * called every `tickMs` while the run lasts (for sampling the servers).
 */
export async function openLoop({
  url,
  bodyFor,
  headersFor,
  arrivals,
  timeoutMs,
  maxInflight = 5000,
  onTick,
  tickMs = 250,
}) {
  const t0 = performance.now();
  const records = [];
  const pending = new Set();
  let inflight = 0;
  let maxLagMs = 0;
  let ticker;
  if (onTick) {
    onTick(0);
    ticker = setInterval(() => onTick(performance.now() - t0), tickMs);
  }
  let next = 0;
  await new Promise((resolve) => {
    const fire = () => {
      const now = performance.now() - t0;
      while (next < arrivals.length && arrivals[next].at <= now) {
        const index = next++;
        const arrival = arrivals[index];
        maxLagMs = Math.max(maxLagMs, now - arrival.at);
        if (inflight >= maxInflight) {
          records.push({
            ...arrival,
            start: now,
            end: now,
            status: 0,
            outcome: 'error',
            detail: 'client overflow',
          });
          continue;
        }
        inflight++;
        const done = send({
          url,
          headers: headersFor(arrival.priority),
          body: bodyFor(index),
          timeoutMs,
          t0,
        }).then((r) => {
          inflight--;
          records.push({ ...arrival, ...r });
          pending.delete(done);
        });
        pending.add(done);
      }
      if (next >= arrivals.length) return resolve();
      setTimeout(fire, Math.max(0, arrivals[next].at - (performance.now() - t0)));
    };
    fire();
  });
  await Promise.all(pending);
  if (ticker) clearInterval(ticker);
  records.sort((a, b) => a.at - b.at);
  return { records, maxLagMs, durationMs: performance.now() - t0 };
}

/** `concurrency` requests in flight for `seconds`, each sent when the previous one ends. */
export async function closedLoop({ url, bodyFor, headers, concurrency, seconds, timeoutMs }) {
  const t0 = performance.now();
  const until = seconds * 1000;
  const records = [];
  let sent = 0;
  const worker = async () => {
    while (performance.now() - t0 < until) {
      records.push(await send({ url, headers, body: bodyFor(sent++), timeoutMs, t0 }));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return records;
}

export async function closeAgent() {
  await agent.close();
}

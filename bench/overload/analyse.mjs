/**
 * The overload benchmark's figures, from the client's records (bench/overload/load.mjs) and the
 * servers' samples: per phase of offered load, rolling series for the plot, and convergence.
 */

export const priorities = ['critical', 'high', 'normal', 'low', 'batch'];

/** Nearest-rank percentile; undefined for no values. */
export function percentile(values, q) {
  if (values.length === 0) return undefined;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

const latency = (r) => r.end - r.start;

/** Start and end (ms from the run's start) of each phase. */
export function phaseBounds(phases) {
  let at = 0;
  return phases.map((p) => {
    const bounds = { ...p, from: at, to: at + p.seconds * 1000 };
    at = bounds.to;
    return bounds;
  });
}

/**
 * Figures of one phase. Requests belong to the phase they were sent in (latency, TTFT, outcome
 * by priority); goodput counts successful answers that *ended* within the phase, per second.
 */
export function summarisePhase(records, bounds, index) {
  const sent = records.filter((r) => r.phase === index);
  const ok = sent.filter((r) => r.outcome === 'ok');
  const seconds = (bounds.to - bounds.from) / 1000;
  const ended = records.filter((r) => r.outcome === 'ok' && r.end >= bounds.from && r.end < bounds.to).length;
  const byPriority = {};
  for (const priority of priorities) {
    const mine = sent.filter((r) => r.priority === priority);
    if (mine.length === 0) continue;
    const count = (outcome) => mine.filter((r) => r.outcome === outcome).length;
    byPriority[priority] = {
      sent: mine.length,
      ok: count('ok'),
      shed: count('shed'),
      timeout: count('timeout'),
      // Timed out after the first token: an upstream slot was spent on an answer nobody received.
      timeoutStreaming: mine.filter((r) => r.outcome === 'timeout' && r.ttft !== undefined).length,
      error: count('error'),
      p99Ms: percentile(mine.filter((r) => r.outcome === 'ok').map(latency), 0.99),
    };
  }
  return {
    offeredPerSecond: sent.length / seconds,
    goodputPerSecond: ended / seconds,
    sent: sent.length,
    ok: ok.length,
    shed: sent.filter((r) => r.outcome === 'shed').length,
    timeout: sent.filter((r) => r.outcome === 'timeout').length,
    error: sent.filter((r) => r.outcome === 'error').length,
    p50Ms: percentile(ok.map(latency), 0.5),
    p99Ms: percentile(ok.map(latency), 0.99),
    ttftP50Ms: percentile(
      ok.map((r) => r.ttft),
      0.5,
    ),
    ttftP99Ms: percentile(
      ok.map((r) => r.ttft),
      0.99,
    ),
    byPriority,
  };
}

/**
 * Trailing 1-second windows every `stepMs`: p99 latency of the successful requests *sent* in the
 * window (what an arrival at that moment went on to get), and goodput, the successful answers
 * that *ended* in it, per second.
 */
export function rolling(records, durationMs, { windowMs = 1000, stepMs = 250 } = {}) {
  const ok = records.filter((r) => r.outcome === 'ok');
  const series = [];
  for (let t = windowMs; t <= durationMs + 1e-9; t += stepMs) {
    const sent = ok.filter((r) => r.start > t - windowMs && r.start <= t).map(latency);
    const ended = ok.filter((r) => r.end > t - windowMs && r.end <= t).length;
    series.push({ t, p99Ms: percentile(sent, 0.99), goodput: (ended * 1000) / windowMs });
  }
  return series;
}

/**
 * How long after a phase began a series settled: the time from the phase's start to the first
 * sample after which every sample of the phase stays within ±`band` of the phase's final value
 * (the mean of its last `tailMs`). `settled` is false when the tail itself is not within the
 * band (the series was still moving when the phase ended); a sample without a value (no
 * successful request in its window) counts as outside.
 * @param {Array<{t: number, value: number | undefined}>} samples
 */
export function convergence(samples, bounds, { band = 0.2, tailMs = 2000 } = {}) {
  const inPhase = samples.filter((s) => s.t > bounds.from && s.t <= bounds.to);
  const tail = inPhase.filter((s) => s.t > bounds.to - tailMs);
  if (tail.length === 0 || tail.some((s) => s.value === undefined)) {
    return { final: undefined, settled: false, ms: undefined };
  }
  const final = tail.reduce((sum, s) => sum + s.value, 0) / tail.length;
  const within = (s) => s.value !== undefined && Math.abs(s.value - final) <= band * final;
  let lastOutside = -1;
  inPhase.forEach((s, i) => {
    if (!within(s)) lastOutside = i;
  });
  const settled = tail.every(within);
  const first = inPhase[lastOutside + 1];
  return { final, settled, ms: settled && first ? first.t - bounds.from : undefined };
}

/**
 * The overload benchmark's tables (Markdown) and their place in docs/benchmarks.md, between the
 * `bench:overload` markers; the rest of that file is left as it is.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { priorities } from './analyse.mjs';

const START = '<!-- bench:overload:start -->';
const END = '<!-- bench:overload:end -->';

const int = (x) => (x === undefined ? '–' : Math.round(x).toLocaleString('en-US'));
const pct = (x, digits = 1) => (x === undefined || Number.isNaN(x) ? '–' : `${(x * 100).toFixed(digits)}%`);
const mark = (ok) => (ok ? '✅' : '❌');

function settledText(c) {
  if (!c) return '–';
  if (c.final === undefined) return 'no successes';
  return c.settled ? `${(c.ms / 1000).toFixed(2)} s (${int(c.final)})` : 'not settled';
}

/** Tables, target checks and the plot's reference, as Markdown. */
export function markdownReport({ settings, plan, calibration, results, pinned, git }) {
  const measured = results.filter((r) => !r.error);
  const peak = plan.phases.reduce((best, p, i) => (p.multiple > plan.phases[best].multiple ? i : best), 0);
  const lines = [];
  const mix = Object.entries(settings.mix)
    .map(([p, share]) => `${Math.round(share * 100)}% ${p}`)
    .join(', ');
  lines.push(
    `Run of ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, commit ${git.commit}` +
      `${git.dirty ? ' with uncommitted changes in src/' : ''}, build of ${git.built.slice(0, 16).replace('T', ' ')}. ` +
      `Simulator: ${settings.slots} slots, mean service ${int(calibration.meanMs)} ms, so a capacity of ` +
      `**${calibration.capacityPerSecond.toFixed(1)} requests/s**; uncontended latency p50 ${int(calibration.p50Ms)} ms, ` +
      `p99 **${int(calibration.p99Ms)} ms**, time to first token p50 ${int(calibration.ttftP50Ms)} ms ` +
      `(${calibration.requests} requests, ${Math.floor(settings.slots / 2)} in flight). ` +
      `Steps: ${plan.phases.map((p) => `${p.multiple}× (${p.rate.toFixed(1)}/s)`).join(' → ')}, ${settings.stepSeconds} s each; ` +
      `${mix}. Client timeout ${int(plan.timeoutMs)} ms (${settings.timeoutFactor}× the uncontended p99), ` +
      `\`x-sluice-deadline-ms: ${plan.deadlineMs}\`. ` +
      (settings.flow ? `Adaptive Sluice with \`flow: ${settings.flow}\`. ` : '') +
      (pinned
        ? 'Load generator and simulator on CPU 0, gateway on CPU 1.'
        : 'Not pinned (taskset or a second core missing).'),
    '',
  );
  for (const r of results.filter((x) => x.error))
    lines.push(`- **${r.label}**: not measured: ${r.error}`, '');
  if (measured.length > 0)
    lines.push(
      `Other work on the machine during each system's run (cores): ${measured
        .map((r) => `${r.label} ${r.backgroundCores.toFixed(2)}`)
        .join(
          ', ',
        )}${measured.some((r) => r.backgroundCores > 0.3) ? ' — **a busy machine: these figures are disturbed**' : ''}.`,
      '',
    );

  lines.push(
    '| system | step | offered/s | goodput/s | goodput ÷ capacity | failed | p50 ms | p99 ms | TTFT p50 ms | TTFT p99 ms | p99 settled after (to ms) |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const r of measured) {
    r.analysis.phases.forEach((p, i) => {
      lines.push(
        `| ${r.label} | ${plan.phases[i].multiple}× | ${p.offeredPerSecond.toFixed(1)} | ${p.goodputPerSecond.toFixed(1)} | ` +
          `${pct(p.goodputPerSecond / calibration.capacityPerSecond, 0)} | ${pct((p.sent - p.ok) / p.sent)} | ` +
          `${int(p.p50Ms)} | ${int(p.p99Ms)} | ${int(p.ttftP50Ms)} | ${int(p.ttftP99Ms)} | ${settledText(r.analysis.p99Convergence[i])} |`,
      );
    });
  }
  lines.push('');

  lines.push(
    `Outcome by priority of the requests sent during the ${plan.phases[peak].multiple}× step ` +
      '(mid-stream: timed out after the first token, so an upstream slot was spent on an answer nobody received):',
    '',
    '| system | priority | sent | succeeded | shed (429/503) | timed out | … of which mid-stream | other errors | p99 ms of successes |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const r of measured) {
    const byPriority = r.analysis.phases[peak].byPriority;
    for (const priority of priorities) {
      const x = byPriority[priority];
      if (!x) continue;
      lines.push(
        `| ${r.label} | ${priority} | ${x.sent} | ${pct(x.ok / x.sent)} | ${pct(x.shed / x.sent)} | ` +
          `${pct(x.timeout / x.sent)} | ${pct(x.timeoutStreaming / x.sent)} | ${pct(x.error / x.sent)} | ${int(x.p99Ms)} |`,
      );
    }
  }
  lines.push('');

  const adaptive = measured.find((r) => r.key === 'adaptive');
  if (adaptive?.analysis.limitConvergence) {
    lines.push(
      'The adaptive limit (`GET /admin/flow`, every 250 ms): ' +
        plan.phases
          .map((p, i) => {
            const c = adaptive.analysis.limitConvergence[i];
            return `${p.multiple}× step: ${c.final === undefined ? '–' : c.final.toFixed(1)} at the end, settled ${c.settled ? `after ${(c.ms / 1000).toFixed(2)} s` : 'never'}`;
          })
          .join('; ') +
        '.',
      '',
    );
  }

  const checks = targetChecks(measured, plan, calibration, peak);
  lines.push(
    `Targets, at the ${plan.phases[peak].multiple}× step and after each step:`,
    '',
    `| target | ${measured.map((r) => r.label).join(' | ')} |`,
    `| --- | ${measured.map(() => '---').join(' | ')} |`,
  );
  for (const check of checks) lines.push(`| ${check.name} | ${check.cells.join(' | ')} |`);
  lines.push('', '![Goodput, p99 latency and the adaptive limit over time](img/overload.png)');
  return lines.join('\n');
}

function targetChecks(measured, plan, calibration, peak) {
  const transitions = plan.phases.map((_, i) => i).slice(1);
  const maxP99 = 1.5 * calibration.p99Ms;
  const failureRate = (x) => (x ? (x.sent - x.ok) / x.sent : 0);
  return [
    {
      name: 'goodput ≥ 95% of capacity',
      cells: measured.map((r) => {
        const ratio = r.analysis.phases[peak].goodputPerSecond / calibration.capacityPerSecond;
        return `${pct(ratio, 0)} ${mark(ratio >= 0.95)}`;
      }),
    },
    {
      name: `p99 of successes ≤ 1.5× uncontended p99 (${int(maxP99)} ms)`,
      cells: measured.map((r) => {
        const p99 = r.analysis.phases[peak].p99Ms;
        return p99 === undefined
          ? 'no successes ❌'
          : `${int(p99)} ms = ${(p99 / calibration.p99Ms).toFixed(2)}× ${mark(p99 <= maxP99)}`;
      }),
    },
    {
      name: 'critical ≥ 99.9% successful',
      cells: measured.map((r) => {
        const c = r.analysis.phases[peak].byPriority.critical;
        const rate = c ? c.ok / c.sent : undefined;
        return `${pct(rate, 2)} ${mark(rate !== undefined && rate >= 0.999)}`;
      }),
    },
    {
      name: 'batch takes the shedding (failed: critical / normal / batch; batch ≥ normal ≥ critical, batch ≥ 1.5× critical)',
      cells: measured.map((r) => {
        const b = r.analysis.phases[peak].byPriority;
        const [c, n, bt] = [failureRate(b.critical), failureRate(b.normal), failureRate(b.batch)];
        return `${pct(c, 0)} / ${pct(n, 0)} / ${pct(bt, 0)} failed ${mark(bt >= n && n >= c && bt >= 1.5 * c && bt > 0)}`;
      }),
    },
    {
      name: 'p99 settles within 2 s of each step',
      cells: measured.map((r) => {
        const cs = transitions.map((i) => r.analysis.p99Convergence[i]);
        return `${cs.map(settledText).join(', ')} ${mark(cs.every((c) => c.settled && c.ms <= 2000))}`;
      }),
    },
    {
      name: 'the limit settles within 2 s of each step',
      cells: measured.map((r) => {
        const cs = r.analysis.limitConvergence && transitions.map((i) => r.analysis.limitConvergence[i]);
        return cs
          ? `${cs.map(settledText).join(', ')} ${mark(cs.every((c) => c.settled && c.ms <= 2000))}`
          : '–';
      }),
    },
  ];
}

/** Puts `report` between the markers in docs/benchmarks.md, or appends a section with them. */
export function writeDocs(file, report) {
  const text = readFileSync(file, 'utf8');
  const start = text.indexOf(START);
  const end = text.indexOf(END);
  if (start < 0 || end < start) {
    writeFileSync(file, `${text.trimEnd()}\n\n## Overload\n\n${START}\n${report}\n${END}\n`);
    return;
  }
  writeFileSync(file, `${text.slice(0, start + START.length)}\n${report}\n${text.slice(end)}`);
}

import type { WideEvent } from './api.js';
import { formatMs } from './format.js';

type Attempt = WideEvent['attempts'][number];

/** An attempt's time split into its phases, in ms since the request arrived. */
export interface Phases {
  start: number;
  queue: number;
  /** From leaving the queue to the first byte (non-streamed) or token (streamed). */
  wait: number;
  /** From the first byte or token to the end. */
  transfer: number;
}

export function phasesOf(attempt: Attempt): Phases {
  const duration = attempt.durationMs ?? 0;
  const queue = Math.min(attempt.queuedMs ?? 0, duration);
  const firstByte = attempt.firstByteMs === null ? duration : Math.min(attempt.firstByteMs, duration);
  return {
    start: attempt.startMs,
    queue,
    wait: Math.max(0, firstByte - queue),
    transfer: Math.max(0, duration - Math.max(firstByte, queue)),
  };
}

const outcomeText: Record<Attempt['outcome'], string> = {
  ok: 'answered',
  error: 'failed',
  timeout: 'timed out',
  aborted: 'aborted (client left)',
  shed: 'shed by the limiter',
  skipped: 'skipped: circuit open',
  pending: 'still running',
};

/**
 * The attempts of one request on a shared time axis: queue wait, time to first byte (or first
 * token, for streams) and transfer. The table is the accessible form; the bars are drawn in it.
 */
export function Waterfall({ event }: { event: WideEvent }) {
  const phases = event.attempts.map(phasesOf);
  const end = Math.max(
    event.timings.totalMs,
    ...phases.map((p) => p.start + p.queue + p.wait + p.transfer),
    1,
  );
  const pct = (ms: number) => `${(ms / end) * 100}%`;
  const transferLabel = event.stream ? 'streaming' : 'receiving';
  const firstLabel = event.stream ? 'to first token' : 'to first byte';
  return (
    <div class="waterfall" data-testid="waterfall">
      <ul class="legend" aria-label="Legend">
        <li>
          <span class="swatch phase-queue" aria-hidden="true" /> queued (admission)
        </li>
        <li>
          <span class="swatch phase-wait" aria-hidden="true" /> waiting {firstLabel}
        </li>
        <li>
          <span class="swatch phase-transfer" aria-hidden="true" /> {transferLabel}
        </li>
      </ul>
      <table class="data-table waterfall-table">
        <caption class="sr-only">Attempts, in order, with their timings</caption>
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">Target</th>
            <th scope="col">Why</th>
            <th scope="col">Outcome</th>
            <th scope="col" class="num">
              Queued
            </th>
            <th scope="col" class="num">
              First {event.stream ? 'token' : 'byte'}
            </th>
            <th scope="col" class="num">
              Duration
            </th>
            <th scope="col" class="timeline-col">
              Timeline (0 – {formatMs(end)})
            </th>
          </tr>
        </thead>
        <tbody>
          {event.attempts.map((attempt, i) => {
            const p = phases[i]!;
            return (
              <tr key={`${i}-${attempt.target}`} data-testid="attempt">
                <td>{i + 1}</td>
                <td>{attempt.target}</td>
                <td>{attempt.reason}</td>
                <td>
                  <span class={`outcome outcome-${attempt.outcome}`}>{outcomeText[attempt.outcome]}</span>
                  {attempt.status !== null && <span class="muted"> · {attempt.status}</span>}
                  {attempt.error && <div class="small muted attempt-error">{attempt.error}</div>}
                </td>
                <td class="num">{formatMs(attempt.queuedMs)}</td>
                <td class="num">{formatMs(attempt.firstByteMs)}</td>
                <td class="num">{formatMs(attempt.durationMs)}</td>
                <td class="timeline-col">
                  <div
                    class="timeline"
                    role="img"
                    aria-label={`Starts at ${formatMs(p.start)}: queued ${formatMs(p.queue)}, waiting ${formatMs(p.wait)}, ${transferLabel} ${formatMs(p.transfer)}`}
                  >
                    <span class="phase phase-queue" style={{ left: pct(p.start), width: pct(p.queue) }} />
                    <span
                      class="phase phase-wait"
                      style={{ left: pct(p.start + p.queue), width: pct(p.wait) }}
                    />
                    <span
                      class="phase phase-transfer"
                      style={{ left: pct(p.start + p.queue + p.wait), width: pct(p.transfer) }}
                    />
                  </div>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

import { formatTime } from './format.js';
import { type TimeRange, timeRanges } from './time-range.js';

export function RangeSelect({ value, onChange }: { value: TimeRange; onChange: (id: string) => void }) {
  return (
    <label class="field">
      <span>Time range</span>
      <select value={value.id} onChange={(e) => onChange((e.target as HTMLSelectElement).value)}>
        {timeRanges.map((r) => (
          <option key={r.id} value={r.id}>
            {r.label}
          </option>
        ))}
      </select>
    </label>
  );
}

export function LiveToggle({ live, onChange }: { live: boolean; onChange: (live: boolean) => void }) {
  return (
    <button
      type="button"
      class="button button-quiet live-toggle"
      aria-pressed={live}
      onClick={() => onChange(!live)}
    >
      <span class={live ? 'dot dot-live' : 'dot'} aria-hidden="true" />
      {live ? 'Live' : 'Paused'}
    </button>
  );
}

/** "Updated 12:00:05", or that an update is on its way. */
export function Updated({ at, loading }: { at: number | undefined; loading: boolean }) {
  return (
    <span class="muted small updated">
      {at === undefined ? 'Loading…' : `Updated ${formatTime(at)}`}
      {loading && at !== undefined ? ' · refreshing' : ''}
    </span>
  );
}
